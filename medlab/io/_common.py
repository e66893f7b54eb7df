"""Small helpers shared by the ``medlab.io`` modules (paths, extensions, ITK error text)."""

from __future__ import annotations

import os
import re
import warnings

import numpy as np

from medlab.errors import ImageIOError

# Extensions read and written by SimpleITK's own ImageIO classes (not DICOM).
# Longest first so that ``.nii.gz`` wins over ``.gz``.
ITK_EXTENSIONS = (
    ".nii.gz",
    ".nii",
    ".nrrd",
    ".nhdr",
    ".mha",
    ".mhd",
    ".png",
    ".jpg",
    ".jpeg",
    ".tif",
    ".tiff",
    ".bmp",
)


def fspath(path, name: str = "path") -> str:
    """``os.fspath(path)`` with a TypeError that names the argument."""
    try:
        return os.fspath(path)
    except TypeError:
        raise TypeError(
            f"`{name}` must be a str or os.PathLike; got {type(path).__name__}"
        ) from None


def extension(path: str) -> str:
    """The lower-case extension of ``path`` as listed in ``ITK_EXTENSIONS``, else its last suffix."""
    low = os.path.basename(path).lower()
    for ext in ITK_EXTENSIONS:
        if low.endswith(ext):
            return ext
    return os.path.splitext(low)[1]


_ADDRESS = re.compile(r"\w*\(0x[0-9a-fA-F]+\):\s*")
# A source location of the library build ("/path/to/itkFoo.cxx:123:" or "in file /...").
_SOURCE = re.compile(r"(?:in file\s+)?\S*/\S+\.(?:cxx|cpp|cc|hxx|txx|h|c)(?::\d+)?:?\s*")
_NO_FILE = re.compile(r"no such file or directory", re.IGNORECASE)


def itk_reason(exc: BaseException, path: str | None = None) -> str:
    """The useful part of a SimpleITK ``RuntimeError`` message (drops build paths, addresses).

    When ``path`` exists but the library says "No such file or directory" (ITK's MetaImage
    reader reports errno after failing on a corrupted file), the reason says the content is
    unreadable instead.
    """
    text = str(exc).strip()
    if "ERROR:" in text:
        text = text.rsplit("ERROR:", 1)[1]
    text = _ADDRESS.sub("", text)
    text = _SOURCE.sub("", text)
    text = " ".join(text.split()) or type(exc).__name__
    if path is not None and os.path.exists(path) and _NO_FILE.search(text):
        text = _NO_FILE.sub("unreadable content", text)
        text = f"the file exists but its header or data cannot be parsed ({text})"
    return text


def require_exists(path: str) -> None:
    """Raise ImageIOError unless ``path`` names an existing file or folder."""
    if not os.path.exists(path):
        raise ImageIOError(path, "no such file or folder")


class DicomWarning(UserWarning):
    """A DICOM series or file was read, but under an assumption the message states.

    Raised (as a warning) for non-uniform slice spacing, a gantry tilt, duplicate files,
    unreadable files skipped in a folder and what dcm2niix reports while converting. Turn it
    into an error with ``warnings.simplefilter("error", medlab.io.DicomWarning)``.
    """


# Relative deviation of slice steps from their mean above which a stack is reported.
UNIFORM_TOL = 1e-3


def warn_if_nonuniform(steps: np.ndarray, path: str, *, stacklevel: int) -> None:
    """UserWarning when slice steps (mm, along the normal) differ from their mean.

    Volumes are built with the mean step ((last - first) / (n - 1), as ITK does), so a missing
    or misplaced slice would silently shift every slice after it.
    """
    steps = np.asarray(steps, float)
    if steps.size == 0:
        return
    mean = float(steps.mean())
    if np.abs(steps - mean).max() > UNIFORM_TOL * abs(mean) + 1e-4:
        warnings.warn(
            f"{path}: slices are not uniformly spaced (steps from {steps.min():.4g} to "
            f"{steps.max():.4g} mm along the slice normal; a slice may be missing); the volume "
            f"uses their mean {mean:.4g} mm",
            DicomWarning,
            stacklevel=stacklevel + 1,
        )
