"""Chest radiograph use case: the lung fields of a frontal radiograph, by a classical recipe
(no training data).

On a PA or AP chest radiograph (display convention: larger values brighter) the aerated lungs
are the two large dark regions inside the body; air outside the body is dark too but touches
the image border. The recipe, at a working resolution of about ``working_mm``:

1. Gaussian smoothing (``sigma_mm``), then a global automatic threshold
   (:func:`medlab.segmentation.auto_threshold`, Otsu by default): pixels at or below it are dark;
2. an opening (``opening_mm``) cuts thin dark bridges (between a lung apex and the air
   above the shoulder, trachea, skin folds);
3. dark components touching the image border are removed (air outside the body), and the
   two largest remaining components, each at least ``min_area_fraction`` of the image, are
   the lungs;
4. each lung is closed (``closing_mm``) and its holes are filled, which takes back nodules and
   vessels inside it; then the labels are resampled onto the input grid (nearest neighbour).

It fails where a real radiograph departs from this picture (large effusions, collapse, heavy
consolidation): the lung regions it misses are those as bright as the mediastinum. There is
no ground truth for the radiographs in medlab's data sets, so the recipe is shown and measured
there, not scored; its tests use a synthetic radiograph with known lungs.
"""

from __future__ import annotations

import math

import numpy as np
import SimpleITK as sitk

from medlab._image import as_sitk, check_scalar, copy_geometry
from medlab._options import check_positive
from medlab.segmentation import auto_threshold, closing, connected_components, fill_holes, opening

__all__ = ["lung_fields"]


def _clear_border(labels: np.ndarray) -> np.ndarray:
    """Zero every component of ``labels`` that touches the array border."""
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    return np.where(np.isin(labels, edge[edge > 0]), 0, labels)


def lung_fields(radiograph, *, threshold: str = "otsu", working_mm: float = 1.0, sigma_mm: float = 3.0,
                opening_mm: float = 10.0, closing_mm: float = 10.0, min_area_fraction: float = 0.02,
                return_info: bool = False, spacing=None):
    """Segment the two lung fields of a frontal chest radiograph.

    Parameters
    ----------
    radiograph : sitk.Image or (M, N) ndarray
        2D chest radiograph, larger values brighter (medlab.io.read already maps MONOCHROME1
        files so). Sizes below are in mm through its pixel spacing: with an uncalibrated image
        (spacing 1), set a pixel size first or read them as pixels.
    threshold : {'otsu', 'li', 'triangle', 'yen', 'isodata'}
        The automatic threshold (:func:`medlab.segmentation.auto_threshold`) on the smoothed working image.
    working_mm : float
        Pixel size of the working image (the input is shrunk by an integer factor to about
        this size; it is never enlarged).
    sigma_mm : float
        Gaussian smoothing before thresholding.
    opening_mm, closing_mm : float
        Radii of the opening (cuts bridges between dark regions; 0 skips) and of the per-lung
        closing (0 skips).
    min_area_fraction : float
        A lung must cover at least this fraction of the image.
    return_info : bool
        Also return a dict with ``threshold`` (intensity), ``shrink`` (factor) and
        ``n_lungs`` (0, 1 or 2 found).
    spacing : (float, float), optional
        Pixel size in mm, (row, column), for numpy input.

    Returns
    -------
    labels : sitk.Image or ndarray of uint8
        On the input grid: 0 background, 1 the lung field on the image's left (smaller column
        index), 2 the one on its right. Which is the patient's right lung depends on the view
        and ``PatientOrientation`` (PA with rows towards the patient's left: label 1 is the
        right lung). Fewer labels when fewer lungs meet ``min_area_fraction``.
    info : dict
        Only with ``return_info=True``.

    Examples
    --------
    >>> from medlab import datasets, io
    >>> from medlab.apps import chest
    >>> cr = io.read(datasets.load("pydicom_data", case="RG1_UNCI.dcm").paths["file"])  # doctest: +SKIP
    >>> labels = chest.lung_fields(cr)                                                  # doctest: +SKIP
    """
    img, back = as_sitk(radiograph, spacing=spacing, name="radiograph")
    check_scalar(img, "radiograph")
    if img.GetDimension() != 2:
        raise ValueError(f"`radiograph` must be 2D; got {img.GetDimension()} dimensions")
    working_mm = check_positive("working_mm", working_mm)
    sigma_mm = check_positive("sigma_mm", sigma_mm)
    opening_mm = check_positive("opening_mm", opening_mm, allow_zero=True)
    closing_mm = check_positive("closing_mm", closing_mm, allow_zero=True)
    if not 0 < min_area_fraction < 0.5:
        raise ValueError(f"`min_area_fraction` must be in (0, 0.5); got {min_area_fraction!r}")
    shrink = max(1, math.floor(working_mm / max(img.GetSpacing())))
    small = sitk.Cast(img, sitk.sitkFloat32)
    if shrink > 1:
        small = sitk.BinShrink(small, [shrink, shrink])
    small = sitk.SmoothingRecursiveGaussian(small, sigma_mm)
    level = auto_threshold(small, threshold)
    dark = copy_geometry((sitk.GetArrayViewFromImage(small) <= level).astype(np.uint8), small)
    if opening_mm > 0:
        dark = opening(dark, opening_mm)
    dark_labels = connected_components(dark, sort=False)
    kept = copy_geometry((_clear_border(sitk.GetArrayFromImage(dark_labels)) > 0).astype(np.uint8), small)
    comps = sitk.GetArrayFromImage(connected_components(kept))
    min_pixels = min_area_fraction * comps.size
    sizes = np.bincount(comps.ravel())[1:3]
    lungs = [k + 1 for k, n in enumerate(sizes) if n >= min_pixels]
    # label by position: 1 = the smaller mean column (the image's left)
    lungs.sort(key=lambda k: np.nonzero(comps == k)[1].mean())
    out = np.zeros(comps.shape, np.uint8)
    for new, k in enumerate(lungs, start=1):
        lung = copy_geometry((comps == k).astype(np.uint8), small)
        if closing_mm > 0:
            lung = closing(lung, closing_mm)
        out[sitk.GetArrayFromImage(fill_holes(lung)) > 0] = new
    result = copy_geometry(out, small)
    if shrink > 1:
        result = sitk.Resample(result, img, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    info = {"threshold": float(level), "shrink": shrink, "n_lungs": len(lungs)}
    return (back(result), info) if return_info else back(result)
