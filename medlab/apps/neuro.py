"""Neuroimaging: brain extraction, grey/white/CSF tissue classes, simulated atrophy and its
measurement, haemorrhage detection on head CT by Hounsfield units.

Images are ``SimpleITK.Image`` or numpy arrays indexed ``(z, y, x)`` with an optional
``spacing`` (mm, array axis order); masks and label images come back as the same kind.
Volumes are in mL, points ``centroid_mm`` physical ``(x, y, z)`` in mm.

=============================== ==============================================================
:func:`brain_extraction`        threshold (Otsu), opening, largest component, closing, holes
                                filled (classical; for T1 MR)
:func:`tissue_segmentation`     1 CSF, 2 GM, 3 WM inside a brain mask: Gaussian mixture,
                                k-means or multi-Otsu on intensities (T1 ordering)
:func:`simulate_atrophy`        remove a known outer layer of a tissue (set to a fill value);
                                returns the image and the exact lost volume
:func:`tissue_volumes`          volume (mL) per label
:func:`detect_haemorrhage`      intracranial voxels in an HU window (acute blood 50-90 HU),
                                components, table of centroid (mm), volume (mL), mean HU
:func:`match_detections`        detections against true lesions (hit criterion of
                                :func:`medlab.detection.match`), truth beside measurement
:func:`epi_stability`           4D EPI (fMRI) run: tSNR map, head-motion proxy (centroid
                                shift, framewise displacement), DVARS, signal drift
=============================== ==============================================================

Examples
--------
>>> from medlab import datasets
>>> from medlab.apps import neuro
>>> ph = datasets.head_ct_phantom(n_haemorrhages=2, seed=0)
>>> table = neuro.detect_haemorrhage(ph.image)
>>> len(table)
2
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import SimpleITK as sitk
from scipy import ndimage

from medlab._image import as_sitk, check_scalar, mask_array, spacing_zyx
from medlab import detection
from medlab import segmentation as seg
from medlab._options import check_choice, check_int, check_positive

__all__ = [
    "TISSUE_NAMES",
    "brain_extraction",
    "detect_haemorrhage",
    "epi_stability",
    "match_detections",
    "simulate_atrophy",
    "tissue_segmentation",
    "tissue_volumes",
]

#: labels of :func:`tissue_segmentation`
TISSUE_NAMES = {1: "csf", 2: "gm", 3: "wm"}


def _like(arr: np.ndarray, img: sitk.Image, back):
    out = sitk.GetImageFromArray(arr)
    out.CopyInformation(img)
    return back(out)


def brain_extraction(image, *, threshold=None, opening_mm=4.0, closing_mm=2.0, spacing=None):
    """Brain mask of a T1-weighted MR: the classical threshold-and-morphology pipeline.

    Steps: ``image > threshold`` (Otsu's by default); an opening of ``opening_mm`` detaches
    the brain from the scalp and skull marrow through thin bridges; the largest connected
    component; a closing of ``closing_mm`` and 3D hole filling bring back dark sulci and
    ventricles enclosed by the brain.

    Parameters
    ----------
    image : sitk.Image or (Z, Y, X) ndarray
        T1-weighted MR (brain brighter than background).
    threshold : float, optional
        Intensity threshold; None: Otsu's threshold of the whole image.
    opening_mm, closing_mm : float
        Radii (mm) of the opening and the closing; 0: skip.
    spacing : float or sequence of float, optional
        Voxel size in mm, numpy input.

    Returns
    -------
    sitk.Image or ndarray of uint8
    """
    img, back = as_sitk(image, spacing=spacing)
    check_scalar(img, "image")
    op = check_positive("opening_mm", opening_mm, allow_zero=True)
    cl = check_positive("closing_mm", closing_mm, allow_zero=True)
    thr = seg.auto_threshold(img) if threshold is None else float(threshold)
    m = seg.threshold(img, lower=thr)
    if op > 0:
        m = seg.opening(m, op)
    if not sitk.GetArrayViewFromImage(m).any():
        raise ValueError(f"nothing is left above the threshold {thr:g} after the opening of {op:g} mm")
    m = seg.largest_component(m)
    if cl > 0:
        m = seg.closing(m, cl)
    m = seg.fill_holes(m)
    return back(m)


def tissue_segmentation(image, brain_mask, *, method="gmm", seed=0, max_samples=200_000, spacing=None):
    """CSF, grey and white matter classes inside a brain mask, from T1 intensities.

    On T1 the classes are ordered by intensity: CSF < GM < WM, so the fitted classes are
    sorted by their mean and labelled 1, 2, 3.

    Parameters
    ----------
    image : sitk.Image or (Z, Y, X) ndarray
        T1-weighted MR.
    brain_mask : sitk.Image or ndarray
        Brain voxels (nonzero), same grid.
    method : {'gmm', 'kmeans', 'multi_otsu'}
        'gmm': scikit-learn ``GaussianMixture`` (3 components, full variances), each voxel to
        its most probable class; 'kmeans': scikit-learn ``KMeans`` (3 clusters); 'multi_otsu':
        two thresholds maximising the between-class variance
        (:func:`medlab.segmentation.multi_otsu`).
    seed : int
        ``random_state`` of the scikit-learn models.
    max_samples : int
        The mixture / k-means is fitted on at most this many voxels (drawn with ``seed``),
        then applied to all.
    spacing : float or sequence of float, optional
        Voxel size in mm, numpy input.

    Returns
    -------
    sitk.Image or ndarray of uint8
        0 outside the brain, 1 CSF, 2 GM, 3 WM (:data:`TISSUE_NAMES`).
    """
    img, back = as_sitk(image, spacing=spacing)
    check_scalar(img, "image")
    check_choice("method", method, ("gmm", "kmeans", "multi_otsu"))
    n = check_int("max_samples", max_samples, minimum=100)
    m = mask_array(brain_mask, image if not isinstance(image, sitk.Image) else img,
                   name="brain_mask")
    arr = sitk.GetArrayFromImage(img).astype(np.float64)
    x = arr[m]
    out = np.zeros(arr.shape, np.uint8)
    if method == "multi_otsu":
        # a copy: a view of a temporary image outlives its buffer (a segfault under load)
        out[m] = sitk.GetArrayFromImage(seg.multi_otsu(img, 3, mask=m))[m]
        return _like(out, img, back)
    rng = np.random.default_rng(seed)
    fit = x if x.size <= n else rng.choice(x, n, replace=False)
    if method == "gmm":
        from sklearn.mixture import GaussianMixture  # lazy: scikit-learn takes seconds to import

        model = GaussianMixture(3, random_state=seed).fit(fit[:, None])
        means = model.means_.ravel()
    else:
        from sklearn.cluster import KMeans  # lazy: scikit-learn takes seconds to import

        model = KMeans(3, random_state=seed, n_init=4).fit(fit[:, None])
        means = model.cluster_centers_.ravel()
    order = np.argsort(means)
    rank = np.empty(3, np.uint8)
    rank[order] = np.arange(1, 4, dtype=np.uint8)
    out[m] = rank[model.predict(x[:, None])]
    return _like(out, img, back)


def simulate_atrophy(image, region, *, depth_mm, tissue=None, fill_value=None, spacing=None) -> dict:
    """A known atrophy: the outer layer of a region is replaced by a fill value.

    The voxels of ``region`` whose distance (mm, Euclidean) to the outside of ``region`` is
    at most ``depth_mm`` form the layer; with ``tissue``, only the layer's voxels inside
    ``tissue`` change (e.g. cortical grey matter thinning: ``region`` the brain, ``tissue``
    GM). Their intensity becomes ``fill_value`` (e.g. the CSF mean), as when tissue is lost
    and replaced by fluid.

    Parameters
    ----------
    image : sitk.Image or (Z, Y, X) ndarray
        The image to atrophy (not modified).
    region : sitk.Image or ndarray
        Mask whose outer layer is removed (nonzero), same grid.
    depth_mm : float
        Thickness of the layer (mm), > 0.
    tissue : sitk.Image or ndarray, optional
        Only these voxels of the layer change.
    fill_value : float, optional
        New intensity; None: the mean of the image just outside ``region`` (within
        ``depth_mm``).
    spacing : float or sequence of float, optional
        Voxel size in mm, numpy input.

    Returns
    -------
    dict
        ``image`` (same kind as ``image``), ``removed`` (uint8 mask of the changed voxels),
        ``volume_ml`` (exact volume of the changed voxels), ``n_voxels``, ``fill_value``.
    """
    img, back = as_sitk(image, spacing=spacing)
    check_scalar(img, "image")
    ref = image if not isinstance(image, sitk.Image) else img
    reg = mask_array(region, ref, name="region")
    depth = check_positive("depth_mm", depth_mm)
    sp = spacing_zyx(img)
    inside_d = ndimage.distance_transform_edt(reg, sampling=sp)
    layer = reg & (inside_d <= depth)
    if tissue is not None:
        layer &= mask_array(tissue, ref, name="tissue")
    if not layer.any():
        raise ValueError(f"the {depth_mm:g} mm layer of `region` holds no voxel to change")
    arr = sitk.GetArrayFromImage(img).astype(np.float32)
    if fill_value is None:
        outside_d = ndimage.distance_transform_edt(~reg, sampling=sp)
        ring = ~reg & (outside_d <= depth)
        fill_value = float(arr[ring].mean()) if ring.any() else 0.0
    arr[layer] = float(fill_value)
    n = int(layer.sum())
    return {"image": _like(arr, img, back), "removed": _like(layer.astype(np.uint8), img, back),
            "volume_ml": n * float(np.prod(sp)) / 1000.0, "n_voxels": n,
            "fill_value": float(fill_value)}


def tissue_volumes(labels, *, names=None, spacing=None) -> dict:
    """Volume (mL) of each nonzero label, keyed by name (``TISSUE_NAMES`` by default).

    Parameters
    ----------
    labels : sitk.Image or ndarray of int
        A label image (e.g. from :func:`tissue_segmentation`).
    names : dict of int to str, optional
        Label value -> name (default ``TISSUE_NAMES``: 1 'csf', 2 'gm', 3 'wm').
    spacing : float or sequence of float, optional
        Voxel size in mm, array axis order, for numpy input.

    Returns
    -------
    dict of str to float
        mL per name (0.0 for a label with no voxel).
    """
    img, _ = as_sitk(labels, spacing=spacing, name="labels")
    arr = sitk.GetArrayViewFromImage(img)
    vox = float(np.prod(img.GetSpacing())) / 1000.0
    names = TISSUE_NAMES if names is None else names
    counts = np.bincount(np.asarray(arr, dtype=np.int64).ravel(), minlength=max(names) + 1)
    return {nm: float(counts[lab]) * vox for lab, nm in names.items()}


def detect_haemorrhage(ct, *, hu_range=(50.0, 90.0), skull_hu=300.0, inner_margin_mm=2.0,
                       median_radius_mm=None, min_volume_ml=0.1, spacing=None):
    """Acute intracranial haemorrhage candidates on a non-contrast head CT, by HU.

    Steps: bone is ``HU >= skull_hu``; the intracranial space is what the skull encloses
    (holes of the bone mask, filled in 3D, or slice by slice when the skull is open at the
    top or bottom of the scan), minus bone, minus ``inner_margin_mm`` along the inner table
    (partial volume of bone reads as blood HU). A median filter of ``median_radius_mm``
    (default: one in-plane voxel) removes isolated noisy voxels; intracranial voxels whose
    filtered HU lies in ``hu_range``, plus their neighbours whose unfiltered HU lies in the
    range, are grouped in 26-connected components, and those of at least ``min_volume_ml``
    are reported.

    Parameters
    ----------
    ct : sitk.Image or (Z, Y, X) ndarray
        Head CT in HU.
    hu_range : (low, high)
        HU window of acute blood.
    skull_hu : float
        HU threshold of bone.
    inner_margin_mm : float
        Margin removed along the inner table of the skull (mm).
    median_radius_mm : float, optional
        Radius of the median filter (mm; per axis at least 0 voxels); 0: none.
    min_volume_ml : float
        Smallest reported component (mL).
    spacing : float or sequence of float, optional
        Voxel size in mm, numpy input.

    Returns
    -------
    pandas.DataFrame
        A candidate table as in :mod:`medlab.detection` (so :func:`medlab.detection.match` and
        :func:`~medlab.detection.froc` take it), one row per candidate, largest first:
        ``label`` (in ``attrs['mask']``), ``x_mm``, ``y_mm``, ``z_mm`` (centroid),
        ``volume_ml``, ``score`` (= ``volume_ml``), ``voxels``, ``centroid_mm`` (x, y, z),
        ``bbox_index``, ``bbox_size``, ``mean_hu``, ``max_hu`` (of the unfiltered CT).
        ``attrs['mask']`` holds the label image of the candidates (same kind as ``ct``) and
        ``attrs['intracranial']`` the intracranial mask.
    """
    img, back = as_sitk(ct, spacing=spacing, name="ct")
    check_scalar(img, "ct")
    try:
        lo, hi = (float(v) for v in hu_range)
    except (TypeError, ValueError):
        raise ValueError(f"`hu_range` must be a (low, high) pair of HU; got {hu_range!r}") from None
    if not lo < hi:
        raise ValueError(f"`hu_range` must have low < high; got {hu_range!r}")
    margin = check_positive("inner_margin_mm", inner_margin_mm, allow_zero=True)
    min_ml = check_positive("min_volume_ml", min_volume_ml, allow_zero=True)
    sp = np.array(spacing_zyx(img))
    arr = sitk.GetArrayFromImage(img).astype(np.float32)
    bone = arr >= float(skull_hu)
    if not bone.any():
        raise ValueError(f"no bone (HU >= `skull_hu`={skull_hu:g}) in `ct`: is it a head CT in HU?")
    inside = ndimage.binary_fill_holes(bone) & ~bone
    if not inside.any():  # skull open at the ends of the scan: enclose slice by slice
        inside = np.stack([ndimage.binary_fill_holes(b) for b in bone]) & ~bone
    if margin > 0 and inside.any():
        inside &= ndimage.distance_transform_edt(~bone, sampling=sp) > margin
    if not inside.any():
        raise ValueError("the skull encloses no intracranial space")
    r = float(min(sp[1:])) if median_radius_mm is None else check_positive(
        "median_radius_mm", median_radius_mm, allow_zero=True)
    filt = arr
    if r > 0:
        rad = [round(r / s) for s in sp]
        if any(rad):
            filt = ndimage.median_filter(arr, size=[2 * k + 1 for k in rad], mode="nearest")
    cand = inside & (filt >= lo) & (filt <= hi)
    if filt is not arr:
        # the median erodes corners and thin caps: take back neighbours whose own HU is in range
        raw = inside & (arr >= lo) & (arr <= hi)
        cand |= ndimage.binary_dilation(cand, np.ones((3, 3, 3), bool)) & raw
    lab, n = ndimage.label(cand, structure=np.ones((3, 3, 3), bool))
    vox_ml = float(np.prod(sp)) / 1000.0
    sizes = np.bincount(lab.ravel(), minlength=n + 1)
    keep = [k for k in range(1, n + 1) if sizes[k] * vox_ml >= min_ml]
    keep.sort(key=lambda k: -sizes[k])
    relabel = np.zeros(n + 1, np.uint16)
    for i, k in enumerate(keep, 1):
        relabel[k] = i
    labels = relabel[lab]
    lab_img = sitk.GetImageFromArray(labels)
    lab_img.CopyInformation(img)
    columns = ["label", "x_mm", "y_mm", "z_mm", "volume_ml", "score", "voxels", "centroid_mm",
               "bbox_index", "bbox_size", "mean_hu", "max_hu"]
    if keep:
        table = seg.label_statistics(lab_img, img)
        table = table.rename(columns={"mean": "mean_hu", "max": "max_hu"})
        cent = np.array(table["centroid_mm"].tolist(), dtype=np.float64).reshape(-1, 3)
        table["x_mm"], table["y_mm"], table["z_mm"] = cent.T
        table["score"] = table["volume_ml"]
        table = table[columns].reset_index(drop=True)
    else:
        table = pd.DataFrame({c: pd.Series(dtype=float) for c in columns})
    table.attrs["mask"] = back(lab_img)
    table.attrs["intracranial"] = _like(inside.astype(np.uint8), img, back)
    return table


def match_detections(detections, truth, lesions, *, tolerance_mm=0.0):
    """Detections against true lesions: :func:`medlab.detection.match`'s hit criterion, with
    each lesion's true and measured centroid, volume and HU side by side.

    Parameters
    ----------
    detections : pandas.DataFrame
        From :func:`detect_haemorrhage`.
    truth : sitk.Image or ndarray
        Label image on the CT's grid in which each lesion has its own label (e.g. a phantom's
        ``labels``; labels not listed in ``lesions`` are ignored).
    lesions : list of dict
        The true lesions: ``label``, ``centre_mm`` (x, y, z), ``volume_ml`` and optionally
        ``hu``, e.g. ``head_ct_phantom(...).truth['lesions']``.
    tolerance_mm : float
        As in :func:`medlab.detection.match`: 0 means the voxel nearest to the detection's
        centroid must belong to the lesion.

    Returns
    -------
    pandas.DataFrame
        One row per lesion: ``label``, ``true_centre_mm``, ``true_volume_ml``, ``true_hu``,
        ``detected``, ``centroid_mm``, ``distance_mm``, ``volume_ml``,
        ``volume_error_percent``, ``mean_hu``. ``attrs['false_positives']`` counts the
        detections that hit no lesion.
    """
    img, _ = as_sitk(truth, name="truth")
    arr = sitk.GetArrayFromImage(img)
    wanted = [int(les["label"]) for les in lesions]
    only = np.where(np.isin(arr, wanted), arr, 0).astype(np.int64)
    truth_img = sitk.GetImageFromArray(only)
    truth_img.CopyInformation(img)
    cands, _ = detection.match(detections, truth_img, tolerance_mm=tolerance_mm, labelled=True)
    rows = []
    for les in lesions:
        c = np.asarray(les["centre_mm"], float)
        row = {"label": int(les["label"]), "true_centre_mm": tuple(float(v) for v in c),
               "true_volume_ml": float(les["volume_ml"]), "true_hu": float(les.get("hu", np.nan)),
               "detected": False, "centroid_mm": None, "distance_mm": np.nan, "volume_ml": np.nan,
               "volume_error_percent": np.nan, "mean_hu": np.nan}
        tp = cands[(cands["lesion"] == row["label"]) & (cands["outcome"] == "TP")]
        if len(tp):
            det = tp.iloc[0]
            p = np.array([det["x_mm"], det["y_mm"], det["z_mm"]], float)
            row.update(detected=True, centroid_mm=tuple(float(v) for v in p),
                       distance_mm=float(np.linalg.norm(p - c)), volume_ml=float(det["volume_ml"]),
                       mean_hu=float(det["mean_hu"]),
                       volume_error_percent=100.0 * (float(det["volume_ml"]) / row["true_volume_ml"] - 1))
        rows.append(row)
    out = pd.DataFrame(rows, columns=["label", "true_centre_mm", "true_volume_ml", "true_hu", "detected",
                                      "centroid_mm", "distance_mm", "volume_ml",
                                      "volume_error_percent", "mean_hu"])
    out.attrs["false_positives"] = int((cands["outcome"] == "FP").sum()) if len(cands) else 0
    return out


def epi_stability(image, *, mask=None, skip=0) -> dict:
    """Signal stability and a head-motion proxy of a 4D EPI run (fMRI quality control).

    Computed over the volumes after the first ``skip`` (dummy scans before the steady state):

    - **tSNR** per voxel: mean over time / standard deviation over time (ddof 1); its median
      inside ``mask`` summarises the run.
    - **centroid shift**: each volume's intensity-weighted centre (negative values count 0)
      relative to the first volume kept, physical (x, y, z) mm (LPS). For an object that stays
      in the field of view, a rigid translation moves it by exactly that translation; a
      rotation about the centre does not move it, so this is a translation proxy, not a
      realignment. **Framewise displacement**: ``|dx| + |dy| + |dz|`` of the shift between
      consecutive volumes (mm; Power et al. 2012 without its rotation terms), 0 for the first.
    - **DVARS**: root mean square over ``mask`` of the voxel-wise change from the previous
      volume, in % of the run's mean signal inside ``mask``; 0 for the first.
    - **drift**: the straight line fitted to the mean signal inside ``mask`` over the run,
      from its first to its last volume, in % of its value at the first.

    Parameters
    ----------
    image : SimpleITK.Image
        4D (x, y, z, volume) scalar image, e.g. ``medlab.io.read`` of an fMRI DICOM series.
    mask : sitk.Image or (Z, Y, X) ndarray, optional
        Voxels to summarise (nonzero inside), on the grid of one volume. None: the voxels of
        the mean volume above its Otsu threshold (:func:`medlab.segmentation.auto_threshold`).
    skip : int
        Leading volumes left out (>= 0; at least 3 volumes must remain).

    Returns
    -------
    dict
        ``tsnr`` (3D float32 ``sitk.Image`` on the grid of one volume, 0 where the signal does
        not vary), ``tsnr_median``, ``mask`` (3D uint8 image), ``centroid_shift_mm`` (V, 3)
        array, ``framewise_displacement_mm`` (V,), ``dvars_percent`` (V,), ``drift_percent``,
        ``mean_signal`` (V,) mean inside the mask per volume, ``volumes`` (V, kept) and
        ``skipped``.

    Raises
    ------
    ValueError
        If ``image`` is not a 4D scalar image, fewer than 3 volumes remain, or ``mask`` is
        empty or on another grid.

    Examples
    --------
    >>> import numpy as np, SimpleITK as sitk
    >>> run = np.zeros((4, 6, 8, 8), np.float32)
    >>> for k in range(4):
    ...     run[k, 2:4, 2:5, 2 + k:5 + k] = 100.0  # a block moving 1 voxel a volume along x
    >>> image = sitk.JoinSeries([sitk.GetImageFromArray(v) for v in run])
    >>> image.SetSpacing((2.0, 2.0, 3.0, 1.0))
    >>> qc = epi_stability(image, mask=np.ones((6, 8, 8)))
    >>> qc["centroid_shift_mm"][:, 0].tolist(), qc["framewise_displacement_mm"].tolist()
    ([0.0, 2.0, 4.0, 6.0], [0.0, 2.0, 2.0, 2.0])
    """
    if not isinstance(image, sitk.Image) or image.GetDimension() != 4:
        got = f"a {image.GetDimension()}D image" if isinstance(image, sitk.Image) else type(image).__name__
        raise ValueError(
            f"`image` must be a 4D SimpleITK.Image (x, y, z, volume), e.g. medlab.io.read of an fMRI series; got {got}"
        )
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise ValueError("`image` must be a scalar (grey) image; got a vector image")
    skip = check_int("skip", skip, minimum=0)
    n = image.GetSize()[3]
    if n - skip < 3:
        raise ValueError(f"`skip`={skip} leaves {n - skip} of {n} volumes; at least 3 are needed")
    arr = sitk.GetArrayFromImage(image)[skip:].astype(np.float64)  # (V, z, y, x)
    vols = arr.shape[0]
    grid = sitk.Image(list(image.GetSize()[:3]), sitk.sitkUInt8)  # one volume's 3D grid
    d4 = np.asarray(image.GetDirection(), float).reshape(4, 4)
    grid.SetSpacing(image.GetSpacing()[:3])
    grid.SetOrigin(image.GetOrigin()[:3])
    grid.SetDirection(d4[:3, :3].ravel().tolist())
    mean = arr.mean(axis=0)
    sd = arr.std(axis=0, ddof=1)
    if mask is None:
        inside = mean > seg.auto_threshold(mean)
    else:
        inside = mask_array(mask, grid, image_name="one volume of image")
    # centroid in index space from the marginal sums (exact), then to physical mm
    w = np.clip(arr, 0.0, None)
    total = w.reshape(vols, -1).sum(axis=1)
    if np.any(total <= 0):
        raise ValueError("`image` has a volume without positive signal: no centroid")
    centre_ijk = np.stack(
        [(w.sum(axis=tuple(a for a in (1, 2, 3) if a != ax)) * np.arange(arr.shape[ax])).sum(axis=1) / total
         for ax in (3, 2, 1)],
        axis=1,
    )  # (V, 3) in (i, j, k) = (x, y, z) index order
    to_mm = d4[:3, :3] * np.asarray(image.GetSpacing()[:3], float)
    shift = (centre_ijk - centre_ijk[0]) @ to_mm.T
    fd = np.r_[0.0, np.abs(np.diff(shift, axis=0)).sum(axis=1)]
    signal = arr[:, inside].mean(axis=1)
    level = float(mean[inside].mean())
    dvars = np.r_[0.0, np.sqrt((np.diff(arr, axis=0)[:, inside] ** 2).mean(axis=1))] / level * 100.0
    slope, intercept = np.polyfit(np.arange(vols, dtype=float), signal, 1)
    drift = slope * (vols - 1) / intercept * 100.0
    tsnr = np.zeros(mean.shape)
    tsnr[sd > 0] = mean[sd > 0] / sd[sd > 0]
    varies = inside & (sd > 0)
    return {
        "tsnr": _like(tsnr.astype(np.float32), grid, lambda x: x),
        "tsnr_median": float(np.median(tsnr[varies])) if varies.any() else float("nan"),
        "mask": _like(inside.astype(np.uint8), grid, lambda x: x),
        "centroid_shift_mm": shift,
        "framewise_displacement_mm": fd,
        "dvars_percent": dvars,
        "drift_percent": float(drift),
        "mean_signal": signal,
        "volumes": vols,
        "skipped": skip,
    }
