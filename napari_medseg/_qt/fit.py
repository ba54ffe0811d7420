"""Keep the dock within the window whatever the names it shows.

Model and layer names can be long and unbroken (an nnU-Net folder is named
``Dataset991_Name__nnUNetTrainer__nnUNetPlans__3d_fullres``), and so can the
paths in status lines; a widget sized to such a text pushed the whole dock
wider than the window, so it scrolled sideways. Tables are exactly as high as
their rows (`fit_rows`), so the dock has no empty frames.
"""
from __future__ import annotations

from qtpy.QtWidgets import QComboBox, QLabel, QTableWidget, QWidget

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


def fit_rows(table: QTableWidget, rows: int) -> None:
    """Give ``table`` ``rows`` rows and exactly their height (header, rows, frame); an
    empty table is hidden, not left as an empty frame.

    Parameters
    ----------
    table : QTableWidget
        A table without a vertical scroll bar of its own.
    rows : int
        How many rows it shows.
    """
    table.setRowCount(rows)
    table.setFixedHeight(table.horizontalHeader().sizeHint().height()
                         + table.verticalHeader().defaultSectionSize() * rows
                         + 2 * table.frameWidth())
    table.setVisible(rows > 0)
