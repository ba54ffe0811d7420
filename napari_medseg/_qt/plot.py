"""A small matplotlib bar chart styled for napari's dark theme."""
from __future__ import annotations

from collections.abc import Sequence

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure

BACKGROUND = "#262930"
FOREGROUND = "#d1d2d4"


class BarChart(FigureCanvasQTAgg):
    """Horizontal-axis bars with optional error bars (one bar per contrast)."""

    def __init__(self, height_px: int = 190):
        figure = Figure(figsize=(4, 2), facecolor=BACKGROUND, tight_layout=True)
        super().__init__(figure)
        self.axes = figure.add_subplot(111)
        self.setFixedHeight(height_px)
        self.clear()

    def clear(self) -> None:
        """Empty chart with a hint."""
        self.axes.clear()
        self._style()
        self.axes.text(0.5, 0.5, "press Explain", color=FOREGROUND, ha="center", va="center",
                       transform=self.axes.transAxes)
        self.draw_idle()

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
        self.axes.clear()
        self._style()
        colours = ["#66bb6a" if value >= 0 else "#ef5350" for value in values]
        self.axes.bar(list(names), list(values), yerr=errors, color=colours,
                      ecolor=FOREGROUND, capsize=4)
        self.axes.axhline(0, color=FOREGROUND, linewidth=0.8)
        self.axes.set_title(title, color=FOREGROUND, fontsize=9)
        self.axes.set_ylabel(ylabel, color=FOREGROUND, fontsize=8)
        self.draw_idle()

    def _style(self) -> None:
        self.axes.set_facecolor(BACKGROUND)
        for spine in self.axes.spines.values():
            spine.set_color(FOREGROUND)
        self.axes.tick_params(colors=FOREGROUND, labelsize=8)
