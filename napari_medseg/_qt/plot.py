"""A small matplotlib bar chart styled for napari's dark theme.

matplotlib loads with the first chart drawn, not when the dock opens (0.6 s on
the GUI thread there); until then the chart's place holds a hint.
"""
from __future__ import annotations

from collections.abc import Sequence

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QLabel, QVBoxLayout, QWidget

BACKGROUND = "#262930"
FOREGROUND = "#d1d2d4"


class BarChart(QWidget):
    """Horizontal-axis bars with optional error bars (one bar per contrast)."""

    def __init__(self, height_px: int = 190, hint: str = "press Explain"):
        super().__init__()
        self.setFixedHeight(height_px)
        self.axes = None  # matplotlib's axes, once a chart is drawn
        self.hint = QLabel(hint)
        self.hint.setAlignment(Qt.AlignCenter)
        self.hint.setStyleSheet(f"background: {BACKGROUND}; color: {FOREGROUND};")
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.addWidget(self.hint)

    def show_bars(self, names: Sequence[str], values: Sequence[float],
                  errors: Sequence[float] | None = None, title: str = "",
                  ylabel: str = "") -> None:
        """Draw one bar per name; positive bars green, negative red.

        Parameters
        ----------
        names : sequence of str
            One bar each.
        values : sequence of float
            Bar heights.
        errors : sequence of float, optional
            Error bar half-lengths.
        title, ylabel : str
            Chart title and y-axis label.
        """
        axes = self._axes()
        axes.clear()
        self._style(axes)
        colours = ["#66bb6a" if value >= 0 else "#ef5350" for value in values]
        axes.bar(list(names), list(values), yerr=errors, color=colours, ecolor=FOREGROUND,
                 capsize=4)
        axes.axhline(0, color=FOREGROUND, linewidth=0.8)
        axes.set_title(title, color=FOREGROUND, fontsize=9)
        axes.set_ylabel(ylabel, color=FOREGROUND, fontsize=8)
        axes.figure.canvas.draw_idle()

    def clear(self, hint: str) -> None:
        """Take the bars away and show ``hint`` in their place (the chart stays built)."""
        self.hint.setText(hint)
        if self.axes is not None:
            self.axes.clear()
            self.axes.figure.canvas.hide()
        self.hint.show()

    def _axes(self):
        """The chart's axes, shown in the hint's place; the matplotlib canvas is built the
        first time."""
        if self.axes is None:
            from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
            from matplotlib.figure import Figure

            figure = Figure(figsize=(4, 2), facecolor=BACKGROUND, tight_layout=True)
            self._layout.addWidget(FigureCanvasQTAgg(figure))
            self.axes = figure.add_subplot(111)
        self.hint.hide()
        self.axes.figure.canvas.show()
        return self.axes

    @staticmethod
    def _style(axes) -> None:
        axes.set_facecolor(BACKGROUND)
        for spine in axes.spines.values():
            spine.set_color(FOREGROUND)
        axes.tick_params(colors=FOREGROUND, labelsize=8)
