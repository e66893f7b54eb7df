"""medlab.widgets: interactive Jupyter components on top of the ``medlab`` processing library.

Installed from the top-level ``widgets/`` folder as the subpackage ``medlab.widgets``.
``medlab`` itself never imports this package.

================= ==========================================================================
:class:`SliceViewer`     2D image or 3D volume: axial/coronal/sagittal, slice slider and mouse
                         wheel, zoom/pan, label and contour overlays, cursor readout (mm, HU/SUV)
:class:`WindowLevel`     window/level sliders, modality presets, mouse drag on the image
:class:`ThresholdSlider` live overlay of a threshold range, Otsu/multi-Otsu, volume in mL
:class:`SeedPicker`      click seeds (click again to remove), live region growing + statistics
:class:`RegionStats`     a threshold's or seeds' region: volume (mL / mm²), mean/min/max, histogram
                         with the range drawn, live
:class:`RegistrationBlender` fixed + moving: alpha blend, checkerboard, difference, flicker
                         (medlab.fusion); runs medlab.registration in the background, live
                         metric plot, progress, stop
:class:`ModelRunner`     pretrained or session models (medlab.models): device and backend,
                         training in the background with a live loss curve and a stop button,
                         inference overlay and Grad-CAM
:class:`Panel`           a viewer and the components attached to it, shown together
:class:`ImageCanvas`     the browser view (anywidget): flow-controlled pictures, zoom/pan, mouse events
:class:`View3D`          3D volume rendering and three linked planes (NiiVue, offline WebGL2),
                         labels and PET on CT, linked to a SliceViewer (slice, window, labels)
:func:`view3d`           optional itkwidgets 3D view, online only (never in executed notebooks)
================= ==========================================================================

The napari plugin (readers, sample data, dock widgets) is :mod:`medlab.widgets.napari`, found by
napari through its ``napari.manifest`` entry point (``pip install 'medlab[napari]'``).

Components compose on one viewer (one picture, one renderer: :func:`medlab.display.render`)::

    viewer = SliceViewer(ct, unit="HU", overlay=gtv)
    Panel(viewer, WindowLevel(viewer, preset="mediastinum"), SeedPicker(viewer, lower=-300, upper=300))

Every component also takes an image directly (``WindowLevel(ct)``) and then shows its own
viewer. Every widget has a static PNG fallback (``_repr_mimebundle_``) for exported notebooks.
"""

from ._blender import BLEND_MODES, RegistrationBlender
from ._canvas import EVENTS, ImageCanvas
from ._components import SeedPicker, ThresholdSlider, WindowLevel
from ._itk import view3d
from ._runner import ModelRunner, device_text
from ._stats import RegionStats
from ._view3d import View3D
from ._viewer import Panel, SliceViewer

__all__ = [
    "SliceViewer",
    "WindowLevel",
    "ThresholdSlider",
    "SeedPicker",
    "RegionStats",
    "RegistrationBlender",
    "BLEND_MODES",
    "ModelRunner",
    "device_text",
    "Panel",
    "ImageCanvas",
    "EVENTS",
    "View3D",
    "view3d",
]
