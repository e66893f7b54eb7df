"""medlab: medical image analysis for Jupyter.

Submodules load on first use, so ``import medlab`` stays fast; heavy optional dependencies
(TensorFlow/Keras, Dask, napari) are imported only by the functions that need them.

>>> import medlab
>>> medlab.io  # doctest: +ELLIPSIS
<module 'medlab.io' from ...>
"""

from __future__ import annotations

from medlab._lazy import attach
from medlab.errors import ChecksumError, DatasetError, ImageIOError, MedlabError

__version__ = "0.1.0"

_SUBMODULES = (
    "io",
    "datasets",
    "enhance",
    "filters",
    "metrics",
    "segmentation",
    "registration",
    "fusion",
    "features",
    "classification",
    "detection",
    "privacy",
    "models",
    "batch",
    "display",
    "reports",
    "apps",
    "pacs",
)

__all__ = [*_SUBMODULES, "MedlabError", "ImageIOError", "DatasetError", "ChecksumError", "__version__"]

__getattr__, __dir__ = attach(__name__, submodules=_SUBMODULES, listing=__all__)
