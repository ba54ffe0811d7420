"""Keep the dock within the window whatever the names it shows.

Model and layer names can be long and unbroken (an nnU-Net folder is named
``Dataset991_Name__nnUNetTrainer__nnUNetPlans__3d_fullres``), and so can the
paths in status lines; a widget sized to such a text pushed the whole dock
wider than the window, so it scrolled sideways. Tables are exactly as high as
their rows (`fit_rows`), and lists as their lines up to a few (`WrappingList`), so
the dock has no empty frames.
"""
from __future__ import annotations

from collections.abc import Sequence

from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import (
    QComboBox, QLabel, QListWidget, QStyle, QStyleOptionComboBox, QStylePainter, QTableWidget,
    QWidget)

#: characters a combo box is sized for; its list still shows whole names
COMBO_CHARACTERS = 14
#: the property that sizes a combo box of short, fixed choices for fewer characters
CHARACTERS_PROPERTY = "medseg_characters"


def fit_width(root: QWidget) -> None:
    """Let every combo box and wrapped label under ``root`` be narrower than its text.

    Combo boxes size to `COMBO_CHARACTERS` characters, or to their
    `CHARACTERS_PROPERTY` (short fixed choices such as the device); they grow
    with the dock and their list shows whole names. A wrapped label breaks at spaces and
    zero-width spaces (`wrappable`) and clips a word longer than the dock.

    Parameters
    ----------
    root : QWidget
        The dock's body.
    """
    for combo in root.findChildren(QComboBox):
        combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        combo.setMinimumContentsLength(combo.property(CHARACTERS_PROPERTY) or COMBO_CHARACTERS)
    for label in root.findChildren(QLabel):
        if label.wordWrap():
            label.setMinimumWidth(1)


def wrappable(text: str) -> str:
    """``text`` with zero-width spaces after ``_``, ``/`` and ``\\``: a wrapped label may
    break long names and paths there.

    Parameters
    ----------
    text : str
        A name, path or sentence holding them.
    """
    for mark in ("_", "/", "\\"):
        text = text.replace(mark, mark + "\u200b")
    return text


def fit_rows(table: QTableWidget, rows: int, most: int | None = None) -> None:
    """Give ``table`` ``rows`` rows and exactly their height (header, rows, frame), or
    the height of ``most`` rows when there are more (they scroll); an empty table is
    hidden, not left as an empty frame.

    Parameters
    ----------
    table : QTableWidget
        The table.
    rows : int
        How many rows it holds.
    most : int, optional
        Rows shown without scrolling (default: all).
    """
    table.setRowCount(rows)
    shown = rows if most is None else min(rows, most)
    table.setFixedHeight(table.horizontalHeader().sizeHint().height()
                         + table.verticalHeader().defaultSectionSize() * shown
                         + 2 * table.frameWidth())
    table.setVisible(rows > 0)


class WrappingList(QListWidget):
    """A list whose long lines wrap at the dock's width (no sideways scrolling), as high
    as its first few wrapped lines (more scroll), hidden while empty.

    Parameters
    ----------
    rows : int
        Lines shown without scrolling.
    """

    def __init__(self, rows: int = 5, parent: QWidget | None = None):
        super().__init__(parent)
        self.rows = rows
        self.setWordWrap(True)
        self.setTextElideMode(Qt.TextElideMode.ElideNone)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setResizeMode(QListWidget.ResizeMode.Adjust)  # lines re-wrap as the dock resizes
        self.setSpacing(1)  # a gap tells one wrapped line from the next
        self.setVisible(False)

    def show_lines(self, lines: Sequence[str]) -> None:
        """Replace the items with ``lines``; hidden when there are none.

        Parameters
        ----------
        lines : sequence of str
            One item each.
        """
        self.clear()
        self.addItems(list(lines))
        self.setVisible(bool(lines))
        self._fit_height()
        # again once laid out: shown, and with its scroll bar, its lines wrap differently
        QTimer.singleShot(0, self._fit_height)

    def _fit_height(self) -> None:
        if not self.count() or not self.isVisible():
            return
        self.doItemsLayout()  # wrapped heights at the current width
        first = self.visualItemRect(self.item(0))
        last = self.visualItemRect(self.item(min(self.rows, self.count()) - 1))
        height = last.bottom() - first.top() + 1 + 2 * self.spacing()
        self.setFixedHeight(height + 2 * self.frameWidth())

    def showEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().showEvent(event)
        self._fit_height()  # filled while its section was folded

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        if event.size().width() != event.oldSize().width():
            self._fit_height()  # a narrower dock wraps into more lines


class ElidingComboBox(QComboBox):
    """A combo box that shows a name too long for it with an ellipsis in the middle
    (``T1 (Bra…-002)``: its start and end, which tell cases apart) instead of
    cutting its end off unmarked; the whole name is its tooltip and in its list."""

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        painter = QStylePainter(self)
        option = QStyleOptionComboBox()
        self.initStyleOption(option)
        option.currentText = self.shown_text()
        painter.drawComplexControl(QStyle.ComplexControl.CC_ComboBox, option)
        painter.drawControl(QStyle.ControlElement.CE_ComboBoxLabel, option)

    def shown_text(self) -> str:
        """The text as painted (elided when the box is too narrow for it)."""
        option = QStyleOptionComboBox()
        self.initStyleOption(option)
        field = self.style().subControlRect(QStyle.ComplexControl.CC_ComboBox, option,
                                            QStyle.SubControl.SC_ComboBoxEditField, self)
        return self.fontMetrics().elidedText(self.currentText(), Qt.TextElideMode.ElideMiddle,
                                             field.width())
