"""RegionStats: size, intensities and a histogram of a ThresholdSlider's or SeedPicker's region.

It follows its component live (the range and the seeds): the region's volume (mL; mm² on a 2D
image), its mean, minimum and maximum in the image's unit (HU, SUV, ...) through
:func:`medlab.segmentation.label_statistics`, and a histogram of the image's intensities with the
region's own values on top and the component's range drawn as two lines.
"""

from __future__ import annotations

import html
import io

import ipywidgets as widgets
import numpy as np

from ._components import SeedPicker, ThresholdSlider, _size_text, region_statistics
from ._live import Throttle

__all__ = ["RegionStats"]


class RegionStats(widgets.VBox):
    """Statistics panel linked to a :class:`ThresholdSlider` or a :class:`SeedPicker`.

    Parameters
    ----------
    component : ThresholdSlider or SeedPicker
        Whose region (``mask`` or ``region``) and range to show.
    bins : int
        Histogram bins over the image's finite intensity range (2..1024).
    width, height : int
        Size of the histogram picture, pixels.

    Attributes
    ----------
    statistics : dict
        ``voxels``, ``volume_ml`` (3D) or ``area_mm2`` (2D), and ``mean``, ``std``, ``min``,
        ``max`` (intensity unit) when the region is not empty.
    counts, region_counts : ndarray of int
        Histogram of the whole image and of the region (same ``edges``).
    edges : ndarray of float
        Bin edges, intensity units.
    """

    def __init__(self, component, *, bins: int = 128, width: int = 360, height: int = 200):
        if not isinstance(component, ThresholdSlider | SeedPicker):
            raise TypeError(f"`component` must be a ThresholdSlider or a SeedPicker; got {type(component).__name__}")
        if isinstance(bins, bool) or not isinstance(bins, int | np.integer) or not 2 <= bins <= 1024:
            raise ValueError(f"`bins` must be an int in [2, 1024]; got {bins!r}")
        super().__init__()
        self.component = component
        v = self.viewer = component.viewer
        self.size = (int(width), int(height))
        values = np.asarray(v.array, dtype=np.float64)
        finite = values[np.isfinite(values)]
        lo, hi = v.intensity_range
        if hi <= lo:
            hi = lo + 1.0
        self.counts, self.edges = np.histogram(finite, bins=int(bins), range=(lo, hi))
        self.region_counts = np.zeros_like(self.counts)
        self.statistics: dict = {}
        self.draws = 0
        self._text = widgets.HTML()
        self._plot = widgets.Image(format="png", width=self.size[0], height=self.size[1])
        self._live = Throttle(self.update, min_interval_s=0.05)
        names = [n for n in ("range", "seeds_index") if component.has_trait(n)]
        component.observe(lambda _c: self._live(), names=names)
        self.children = [self._text, self._plot]
        self.update()

    @property
    def region(self) -> np.ndarray:
        c = self.component
        return c.mask if isinstance(c, ThresholdSlider) else c.region

    def update(self) -> None:
        """Recompute the statistics and redraw the histogram (the component calls it live)."""
        v = self.viewer
        region = self.region
        self.statistics = region_statistics(v, region)
        inside = np.asarray(v.array)[region > 0]
        inside = inside[np.isfinite(inside)] if inside.dtype.kind == "f" else inside
        self.region_counts, _ = np.histogram(inside, bins=self.edges)
        s, unit = self.statistics, html.escape(v.unit)
        word = "voxels" if v.ndim == 3 else "pixels"
        cells = [f"<b>{_size_text(s)}</b>", f"{s['voxels']} {word}"]
        if "mean" in s:
            cells.append(f"mean {s['mean']:.4g} {unit}, min {s['min']:.4g}, max {s['max']:.4g} {unit}")
        else:
            cells.append("<i>empty region</i>")
        self._text.value = "<code>" + " &nbsp;|&nbsp; ".join(cells) + "</code>"
        self._plot.value = self._draw()

    def _draw(self) -> bytes:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        w, h = self.size
        fig = Figure(figsize=(w / 100, h / 100), dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        centres = 0.5 * (self.edges[:-1] + self.edges[1:])
        ax.fill_between(centres, self.counts, step="mid", color="0.75", label="image")
        ax.fill_between(centres, self.region_counts, step="mid", color="tab:blue", alpha=0.8, label="region")
        lower, upper = self.component.range
        for x in (lower, upper):
            ax.axvline(x, color="tab:red", lw=1.2)
        ax.set_yscale("symlog", linthresh=1)
        unit = self.viewer.unit
        ax.set_xlabel(f"intensity ({unit})" if unit else "intensity", fontsize=8)
        ax.set_ylabel("count", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7, loc="upper right")
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        self.draws += 1
        return buf.getvalue()
