"""One loader per registered data set (``LOADERS``), behind :func:`load` and :func:`cases`.

Images are read with :func:`medlab.io.read` and keep their physical meaning (CT in HU, PET in
SUV); masks and label maps come back as ``sitkUInt8``. Optional packages (nilearn, pydicom,
scikit-image) are imported inside the loaders that need them.
"""

from __future__ import annotations

import csv
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from medlab._image import as_sitk
from medlab._options import check_choice
from medlab.errors import DatasetError

from . import _registry
from ._case import Case
from ._fetch import fetch, fetch_with_source
from ._sample import data_source, sample_files

__all__ = ["load", "cases", "LOADERS"]


def _read(path: Path) -> sitk.Image:
    # the one read path of medlab (physical units, clear errors); imported here so that
    # ``import medlab.datasets`` stays light
    from medlab.io import read

    return read(path)


def _as_mask(img: sitk.Image) -> sitk.Image:
    """Label maps as uint8 (values are checked to fit, never wrapped)."""
    if img.GetPixelID() == sitk.sitkUInt8:
        return img
    arr = sitk.GetArrayViewFromImage(img)
    if arr.size and (arr.min() < 0 or arr.max() > 255 or not np.array_equal(arr, np.round(arr))):
        return img
    return sitk.Cast(img, sitk.sitkUInt8)


def _no_case(name: str, case) -> None:
    if case is not None:
        raise ValueError(f"`case` is not used by data set {name!r} (it has no cases); got {case!r}")


def _case(name: str, case, source: str, image=None, *, labels=None, meta=None, paths=None) -> Case:
    """A :class:`Case` of data set ``name`` with the registry's licence."""
    return Case(dataset=name, id=case, image=image, labels=labels or {}, meta=meta or {},
                paths=paths or {}, source=source, licence=_registry._raw(name).get("licence") or "")


def _image_and_mask(name: str, case, root: Path, source: str, image_rel: str, mask_rel: str,
                    label: str, *, meta=None) -> Case:
    """A case of one image file and one mask file (read, the mask as uint8)."""
    paths = {"image": root / image_rel, label: root / mask_rel}
    return _case(name, case, source, _read(paths["image"]), labels={label: _as_mask(_read(paths[label]))},
                 meta=meta, paths=paths)


# ---------------------------------------------------------------- store data sets


def _ibsi_digital_phantom(case=None, *, progress=True):
    """The 5x4x4 phantom (grey levels) and its 74-voxel ROI mask (label ``'roi'``)."""
    _no_case("ibsi_digital_phantom", case)
    root, source = fetch_with_source("ibsi_digital_phantom", progress=progress)
    return _image_and_mask("ibsi_digital_phantom", None, root, source, "image.nii.gz", "mask.nii.gz", "roi")


def _ibsi_ct_phantom(case=None, *, progress=True):
    """CT in HU from NIfTI (204x201x60, 0.977x0.977x3 mm) and the GTV mask (label ``'gtv'``).

    The DICOM series and RTSTRUCT are in ``fetch('ibsi_ct_phantom') / 'dicom'``.
    """
    _no_case("ibsi_ct_phantom", case)
    root, source = fetch_with_source("ibsi_ct_phantom", ["nifti/*"], progress=progress)
    return _image_and_mask("ibsi_ct_phantom", None, root, source, "nifti/image.nii.gz", "nifti/mask.nii.gz", "gtv")


def _ibsi_reference(case=None, *, progress=True):
    """No image; ``paths['file']``: ``03_Image_features.rst`` (IBSI consensus values and tolerances)."""
    _no_case("ibsi_reference", case)
    root, source = fetch_with_source("ibsi_reference", progress=progress)
    return _case("ibsi_reference", None, source, paths={"file": root / "03_Image_features.rst"})


_STS_MODALITIES = ("CT", "MR_T1", "PET")


def _sts(case, *, modality="CT", progress=True):
    """One patient and modality (CT in HU, PET in SUV, MR normalised) with the tumour mask
    (label ``'gtv'``); ``meta['modality']``.

    ``modality`` is one of 'CT', 'MR_T1', 'PET'.
    """
    check_choice("modality", modality, _STS_MODALITIES)
    files = [f"{case}/{modality}_image.nii.gz", f"{case}/{modality}_mask.nii.gz"]
    root, source = fetch_with_source("sts", files, progress=progress)
    return _image_and_mask("sts", case, root, source, *files, "gtv", meta={"modality": modality})


def _pyradiomics(case, *, progress=True):
    """MR volume and tumour label map (label ``'tumour'``), from NRRD."""
    files = [f"{case}_image.nrrd", f"{case}_label.nrrd"]
    root, source = fetch_with_source("pyradiomics", files, progress=progress)
    return _image_and_mask("pyradiomics", case, root, source, *files, "tumour")


_HC18_CSV = "training_set_pixel_size_and_HC.csv"


def _first_channel(img: sitk.Image) -> sitk.Image:
    return sitk.VectorIndexSelectionCast(img, 0) if img.GetNumberOfComponentsPerPixel() > 1 else img


def _hc18(case, *, progress=True):
    """The 2D image (uint8, spacing = pixel size), the filled head (label ``'head'``, 0/1) and
    ``meta``: ``pixel_size_mm``, ``hc_mm`` (the sonographer's head circumference)."""
    files = [f"training_set/{case}.png", f"training_set/{case}_Annotation.png", _HC18_CSV]
    root, source = fetch_with_source("hc18", files, progress=progress)
    with open(root / _HC18_CSV, newline="", encoding="utf-8") as fh:
        rows = {r[0]: r for r in csv.reader(fh)}
    try:
        _, pixel_size, hc = rows[f"{case}.png"]
    except KeyError:
        raise DatasetError(f"{root / _HC18_CSV}: no row for {case}.png") from None
    pixel_size_mm, hc_mm = float(pixel_size), float(hc)
    image = _first_channel(_read(root / files[0]))
    mask = sitk.Cast(_first_channel(_read(root / files[1])) > 0, sitk.sitkUInt8)
    for img in (image, mask):
        img.SetSpacing((pixel_size_mm, pixel_size_mm))
    return _case("hc18", case, source, image, labels={"head": mask},
                 meta={"pixel_size_mm": pixel_size_mm, "hc_mm": hc_mm},
                 paths={"image": root / files[0], "head": root / files[1], "table": root / _HC18_CSV})


def _busi_file(case: str) -> str:
    m = re.fullmatch(r"(benign|malignant|normal) \(\d+\)", case)
    if not m:
        raise DatasetError(f"BUSI case {case!r} does not name a class folder")
    return f"{m.group(1)}/{case}.png"


def _busi(case, *, progress=True):
    """The 2D RGB image (256x256, uint8 per channel), no label image; ``meta['class']``:
    'benign', 'malignant' or 'normal' (from the folder)."""
    rel = _busi_file(case)
    root, source = fetch_with_source("busi", [rel], progress=progress)
    return _case("busi", case, source, _read(root / rel), meta={"class": rel.split("/")[0]},
                 paths={"image": root / rel})


# ---------------------------------------------------------------- package data sets


def _nibabel_to_sitk(img) -> sitk.Image:
    """A nibabel image as ``sitk.Image``; RAS affine -> LPS spacing, origin, direction."""
    data = np.asanyarray(img.dataobj)
    if data.ndim != 3:
        raise DatasetError(f"expected a 3D image from nilearn, got shape {data.shape}")
    # nibabel indexes (i, j, k) = (x, y, z); medlab/numpy index (z, y, x).
    out, _ = as_sitk(np.ascontiguousarray(data.transpose(2, 1, 0)))
    affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ np.asarray(img.affine, dtype=float)
    m = affine[:3, :3]
    spacing = np.linalg.norm(m, axis=0)
    out.SetSpacing(tuple(float(s) for s in spacing))
    out.SetDirection(tuple(float(v) for v in (m / spacing).ravel()))
    out.SetOrigin(tuple(float(v) for v in affine[:3, 3]))
    return out


def _mni152(case=None, *, resolution=1, progress=True):
    """The T1 template with labels ``'brain'``, ``'gm'``, ``'wm'`` (masks) on one grid;
    ``meta['resolution_mm']``.

    ``resolution`` is 1 or 2 (mm). Geometry is in ITK's LPS frame (converted from RAS).
    """
    _no_case("mni152", case)
    if resolution not in (1, 2) or isinstance(resolution, bool):
        raise ValueError(f"`resolution` must be 1 or 2 (mm); got {resolution!r}")
    _, source = fetch_with_source("mni152", progress=progress)  # a clear error when nilearn is missing
    from nilearn import datasets as nd

    template = _nibabel_to_sitk(nd.load_mni152_template(resolution=resolution))
    getters = {"brain": nd.load_mni152_brain_mask, "gm": nd.load_mni152_gm_mask, "wm": nd.load_mni152_wm_mask}
    labels = {key: sitk.Cast(_nibabel_to_sitk(get(resolution=resolution)) > 0, sitk.sitkUInt8)
              for key, get in getters.items()}
    return _case("mni152", None, source, template, labels=labels, meta={"resolution_mm": resolution})


_DEID_ECHO = "ultrasounds/ultrasound-multiframe.dcm"


def _deid_echo(case=None, *, progress=True):
    """The colour-Doppler echo cine as a 4D RGB image (800x600x1x30, frames on the time axis)."""
    _no_case("deid_echo", case)
    root, source = fetch_with_source("deid_echo", progress=progress)
    return _case("deid_echo", None, source, _read(root / _DEID_ECHO), paths={"image": root / _DEID_ECHO})


def _skimage_retina(case=None, *, progress=True):
    """The fundus photograph as a 2D RGB image (1411x1411, pixel size unknown: 1)."""
    _no_case("skimage_retina", case)
    _, source = fetch_with_source("skimage_retina", progress=progress)
    from skimage import data

    img, _ = as_sitk(data.retina(), vector=True)
    return _case("skimage_retina", None, source, img)


def _pydicom_folders() -> list[Path]:
    import pydicom.data

    folders = [Path(pydicom.data.__file__).parent / "test_files"]
    try:
        folders.append(fetch("pydicom_data", progress=False))
    except DatasetError:
        pass  # pydicom-data not installed: pydicom's own test files are still there
    return folders


def _pydicom_cases() -> list[str]:
    return sorted({p.name for f in _pydicom_folders() for p in f.glob("*.dcm")})


def _pydicom_data(case, *, progress=True):
    """No image (not every test file is one); ``paths['file']``: the pydicom / pydicom-data
    test file (``pydicom.data.get_testdata_file``)."""
    import pydicom.data

    path = pydicom.data.get_testdata_file(case)
    if path is None:
        raise DatasetError(f"pydicom cannot find test file {case!r}; install pydicom-data")
    return _case("pydicom_data", case, "package", paths={"file": Path(path)})


def _dcm_qa_nih(case, *, progress=True):
    """No image (the point is to read the series); ``paths``: ``series`` (the DICOM series
    folder, ``In/<study>/<series>``), ``reference`` (dcm2niix's reference NIfTI) and
    ``sidecar`` (its BIDS JSON).

    The reference of a series is the ``Ref`` file of its vendor whose name ends in the series
    number: GE ``mr_0004`` -> ``DCM2NIIX_regression_test_4``, Siemens ``mr_0003`` ->
    ``EPI_PE=AP_3``.
    """
    study, series = case.split("/")
    number = int(series.split("_")[1])
    prefix = "DCM2NIIX_regression_test_" if study.endswith("GE") else "EPI_PE="
    refs = [rel for rel in _registry._raw("dcm_qa_nih")["files"]
            if rel.startswith("Ref/" + prefix) and rel.endswith(f"_{number}.nii")]
    if len(refs) != 1:
        raise DatasetError(f"dcm_qa_nih: no single reference volume for {case!r} (found {refs})")
    ref = refs[0]
    files = [f"In/{case}/*", ref, ref[:-len(".nii")] + ".json"]
    root, source = fetch_with_source("dcm_qa_nih", files, progress=progress)
    return _case("dcm_qa_nih", case, source,
                 paths={"series": root / "In" / study / series, "reference": root / ref,
                        "sidecar": root / (ref[:-len(".nii")] + ".json")})


# ---------------------------------------------------------------- table and dispatch


@dataclass(frozen=True)
class _Loader:
    func: Callable
    #: case ids, or None for the registry's case_pattern; no cases -> [] from the registry
    cases: Callable[[], list[str]] | None = None
    default_case: str | None = None


LOADERS: dict[str, _Loader] = {
    "ibsi_digital_phantom": _Loader(_ibsi_digital_phantom),
    "ibsi_ct_phantom": _Loader(_ibsi_ct_phantom),
    "ibsi_reference": _Loader(_ibsi_reference),
    "sts": _Loader(_sts, default_case="STS_001"),
    "pyradiomics": _Loader(_pyradiomics, default_case="brain1"),
    "hc18": _Loader(_hc18, default_case="000_HC"),
    "busi": _Loader(_busi, default_case="benign (1)"),
    "dcm_qa_nih": _Loader(_dcm_qa_nih, default_case="20180918GE/mr_0004"),
    "mni152": _Loader(_mni152),
    "deid_echo": _Loader(_deid_echo),
    "skimage_retina": _Loader(_skimage_retina),
    "pydicom_data": _Loader(_pydicom_data, cases=_pydicom_cases, default_case="CT_small.dcm"),
}


def cases(name: str, *, source: str | None = None) -> list[str]:
    """Case ids of a data set (empty for single-image data sets).

    Parameters
    ----------
    name : str
        A name from :func:`list_datasets`.
    source : {'full', 'sample'}, optional
        'full': every case of the registry; 'sample': the cases the sample embedded in medlab
        holds files of (for ``sts``: every patient's PET, the CT and MR of a few; see
        ``medlab/datasets/sample/README.md``). Default: :func:`data_source` (``'sample'`` on a
        machine without a data store, unless ``$MEDLAB_DATA_SOURCE`` says otherwise).

    Returns
    -------
    list of str
        E.g. ``'STS_001'`` for ``sts``, ``'brain1'`` for ``pyradiomics``, ``'000_HC'`` for
        ``hc18``, ``'benign (1)'`` for ``busi``, file names for ``pydicom_data``.

    Examples
    --------
    >>> from medlab import datasets
    >>> datasets.cases("pyradiomics")
    ['brain1', 'brain2', 'breast1']
    """
    check_choice("name", name, list(LOADERS))
    loader = LOADERS[name]
    if loader.cases:
        return loader.cases()
    source = data_source(name) if source is None else check_choice("source", source, ("full", "sample"))
    return _registry.case_names(name, sample_files(name) if source == "sample" else None)


def load(name: str, case: str | None = None, **kw) -> Case:
    """Load a registered data set (fetching and verifying its files first).

    Parameters
    ----------
    name : str
        A name from :func:`list_datasets`.
    case : str, optional
        A case id from :func:`cases`. Default: the first case for data sets with cases
        (``'STS_001'``, ``'brain1'``, ``'000_HC'``, ``'benign (1)'``, ``'CT_small.dcm'``); must be
        None for single-image data sets.
    **kw
        Options of the data set's loader, keyword-only: ``modality`` for ``sts``
        ({'CT', 'MR_T1', 'PET'}, default 'CT'); ``resolution`` for ``mni152`` ({1, 2} mm,
        default 1); ``progress`` (bool) for all.

    Returns
    -------
    Case
        The same type for every data set: ``image`` (``SimpleITK.Image``, geometry in mm, LPS;
        None for data sets of files), ``labels`` (name -> ``sitkUInt8`` mask), ``meta``,
        ``paths``, ``source`` and ``licence``. Per data set:

        - ``ibsi_digital_phantom``: labels ``roi``; ``ibsi_ct_phantom`` (NIfTI), ``sts``:
          labels ``gtv`` (``sts``: ``meta['modality']``); ``pyradiomics``: labels ``tumour``
        - ``hc18``: 2D image, labels ``head``, ``meta``: ``pixel_size_mm``, ``hc_mm``
        - ``busi``: 2D RGB image, ``meta['class']`` (class name), no labels
        - ``mni152``: the T1 template, labels ``brain``, ``gm``, ``wm``; ``meta['resolution_mm']``
        - ``deid_echo``: 4D RGB cine (x, y, 1, frame); ``skimage_retina``: 2D RGB image
        - ``dcm_qa_nih``: no image; ``paths``: ``series`` (DICOM folder), ``reference``
          (dcm2niix's NIfTI), ``sidecar`` (its BIDS JSON)
        - ``ibsi_reference``, ``pydicom_data``: no image; ``paths['file']``

    Examples
    --------
    >>> from medlab import datasets
    >>> case = datasets.load("ibsi_ct_phantom", progress=False)
    >>> case.image.GetSize(), list(case.labels)
    ((204, 201, 60), ['gtv'])
    """
    check_choice("name", name, list(LOADERS))
    loader = LOADERS[name]
    params = inspect.signature(loader.func).parameters
    options = [p for p in params if params[p].kind is inspect.Parameter.KEYWORD_ONLY]
    unknown = [k for k in kw if k not in options]
    if unknown:
        raise TypeError(
            f"load({name!r}) got unknown option(s) {unknown}; its options are {options}"
        )
    if loader.default_case is not None:
        if case is None:
            case = loader.default_case
        # any registered case: one outside the sample is fetched (store, cache or download)
        _registry.check_member(
            "case", case, cases(name, source="full"), what=f"cases of {name!r}",
            hint=f"See medlab.datasets.cases({name!r}).",
        )
    return loader.func(case, **kw)
