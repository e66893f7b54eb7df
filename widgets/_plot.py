"""LinePlot: a small live line chart (a PNG in an ``ipywidgets.Image``) for metric and loss curves.

Drawn with matplotlib's object API on the Agg canvas (no pyplot state, so a background job's
thread may redraw it) and throttled, so a job reporting every iteration does not spend its
time drawing.
"""

from __future__ import annotations

import io
import time

import ipywidgets as widgets

__all__ = ["LinePlot"]


class LinePlot(widgets.Image):
    """A line chart of named series, redrawn at most every ``min_interval_s`` seconds.

    Parameters
    ----------
    xlabel, ylabel, title : str
    width, height : int
        Size in pixels.
    min_interval_s : float
        Throttle of :meth:`update` (``force=True`` draws now).
    integer_x : bool
        Ticks only at whole numbers on the x axis (iterations, epochs).
    """

    def __init__(self, *, xlabel: str = "", ylabel: str = "", title: str = "", width: int = 360,
                 height: int = 220, min_interval_s: float = 0.25, integer_x: bool = False):
        self.integer_x = bool(integer_x)
        super().__init__(format="png", width=width, height=height)
        self.xlabel, self.ylabel, self.title = xlabel, ylabel, title
        self.size = (int(width), int(height))
        self.min_interval_s = float(min_interval_s)
        self.series: dict[str, tuple[list, list]] = {}
        self.draws = 0
        self._last = 0.0
        self.update(force=True)

    def set_series(self, name: str, x, y, *, force: bool = False) -> None:
        """Replace one series (x and y sequences of numbers) and redraw (throttled)."""
        self.series[name] = (list(x), list(y))
        self.update(force=force)

    def clear(self) -> None:
        self.series = {}
        self.update(force=True)

    def update(self, *, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self._last < self.min_interval_s:
            return
        self._last = now
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        w, h = self.size
        fig = Figure(figsize=(w / 100, h / 100), dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        for name, (x, y) in list(self.series.items()):
            ax.plot(x, y, label=name, lw=1.2, marker="o" if len(x) < 30 else None, ms=3)
        if len(self.series) > 1:
            ax.legend(fontsize=7)
        ax.set_xlabel(self.xlabel, fontsize=8)
        ax.set_ylabel(self.ylabel, fontsize=8)
        ax.set_title(self.title, fontsize=9)
        ax.tick_params(labelsize=7)
        if self.integer_x:
            from matplotlib.ticker import MaxNLocator

            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        self.value = buf.getvalue()
        self.draws += 1
