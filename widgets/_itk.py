"""view3d: an optional adapter to itkwidgets for 3D rendering (online only).

itkwidgets is not part of medlab's environment (see README, "Versions"): 0.32 pins
ipywidgets 7 and does not render in JupyterLab 4; the 1.0 pre-releases load their viewer
from the internet at run time, so they never render offline, and their cell watcher blocks
every later cell of an executed notebook (papermill, nbconvert, nbval) until the viewer
reports back. Use ``view3d`` only interactively, online, and never in a notebook that is
executed unattended (guard it behind a parameter that is off by default).
"""

from __future__ import annotations

from medlab._options import require

__all__ = ["view3d"]


def view3d(image, *, label_image=None, **kwargs):
    """Show a 3D image (and labels) with itkwidgets. Online only; never in executed notebooks.

    Parameters
    ----------
    image : sitk.Image or ndarray
        3D image (a ``sitk.Image`` keeps its spacing and origin in the view).
    label_image : sitk.Image or ndarray, optional
        Label volume on the same grid.
    **kwargs
        Passed to ``itkwidgets.view``.

    Returns
    -------
    The itkwidgets viewer.

    Raises
    ------
    ImportError
        Without itkwidgets, with the command that installs it
        (``pip install -e ".[itk]" --pre``; 1.0 pre-release with ``ngff-zarr==0.12.2``).
    """
    itkwidgets = require("itkwidgets", extra="itk",
                         purpose="medlab.widgets.view3d (3D rendering, online only)")
    if label_image is not None:
        kwargs["label_image"] = label_image
    return itkwidgets.view(image, **kwargs)
