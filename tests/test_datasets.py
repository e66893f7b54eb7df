"""medlab.datasets: registry, checksummed fetch (cache / local store / download) and loaders."""

from __future__ import annotations

import csv
import hashlib
import math
import os
import shutil
import subprocess
import sys
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from medlab import datasets
from medlab._atomic import is_temporary
from medlab._image import check_same_grid
from medlab.datasets import _fetch, _registry
from medlab.errors import ChecksumError, DatasetError

STORE = Path(os.environ["MEDLAB_DATA_STORE"]) if os.environ.get("MEDLAB_DATA_STORE") else None
needs_store = pytest.mark.skipif(
    STORE is None or not (STORE / "MANIFEST.csv").is_file(), reason="local data store not available"
)

STORE_SETS = ["ibsi_digital_phantom", "ibsi_ct_phantom", "ibsi_reference", "sts", "pyradiomics", "hc18", "busi", "dcm_qa_nih"]
PACKAGE_SETS = ["pydicom_data", "mni152", "deid_echo", "skimage_retina"]


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


@pytest.fixture(autouse=True)
def full_data(monkeypatch):
    """These tests are about the full data sets' channel (cache, store, download); the embedded
    sample, which a machine without a store uses by default, is tested in test_sample.py."""
    monkeypatch.setenv("MEDLAB_DATA_SOURCE", "full")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache folder for one test."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("MEDLAB_CACHE_DIR", str(folder))
    return folder


@pytest.fixture
def offline(monkeypatch):
    """No network: every download attempt fails like a machine without internet, and is counted."""
    calls = []

    def fail(url, out):
        calls.append(url)
        raise urllib.error.URLError("network is unreachable (test)")

    monkeypatch.setattr(_fetch, "_stream", fail)
    return calls


def _copy_from_store(dest_store: Path, rels: list[str]) -> None:
    for rel in rels:
        (dest_store / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(STORE / rel, dest_store / rel)


def _serve_from_store(monkeypatch, calls: list):
    """A fake downloader that serves the right bytes for an upstream URL from the real store."""
    by_url = {}
    for name in STORE_SETS:
        ent = _registry.entry(name)
        for rel in ent["files"]:
            by_url[_registry.file_url(ent, rel)] = STORE / ent["root"] / rel

    def serve(url, out):
        calls.append(url)
        out.write(by_url[url].read_bytes())

    monkeypatch.setattr(_fetch, "_stream", serve)


# ------------------------------------------------------------------ registry


def test_registry_names_and_kinds():
    assert datasets.list_datasets() == STORE_SETS + PACKAGE_SETS
    assert datasets.list_datasets(kind="store") == STORE_SETS
    assert datasets.list_datasets(kind="package") == PACKAGE_SETS
    with pytest.raises(ValueError, match="`kind` must be one of"):
        datasets.list_datasets(kind="stores")


@pytest.mark.parametrize("call", [datasets.fetch, datasets.info, datasets.load, datasets.cases])
def test_unknown_name_suggests(call):
    with pytest.raises(ValueError, match="By 'ibsi_ct_phantm', did you mean 'ibsi_ct_phantom'"):
        call("ibsi_ct_phantm")


def test_info_fields():
    d = datasets.info("ibsi_ct_phantom")
    assert d["n_files"] == 63  # 60 DICOM slices + RTSTRUCT + NIfTI image and mask
    assert d["licence"].startswith("CC BY-NC 3.0")
    assert d["modality"] == ["CT"]
    assert d["source"] == "https://github.com/theibsi/data_sets/tree/6da96021bc91faf4c0cb7fd7fa56a4225d2064a8"
    assert d["licence_file"] == "ibsi/LICENSE-ibsi_1_ct_radiomics_phantom.md"
    assert "Lambin" in d["citation"]
    assert d["total_bytes"] == sum(f["bytes"] for f in _registry.entry("ibsi_ct_phantom")["files"].values())
    pkg = datasets.info("mni152")
    assert pkg["kind"] == "package" and pkg["source"] == "pip install nilearn"
    assert pkg["n_files"] is None and pkg["total_bytes"] is None and pkg["root"] is None
    for name in datasets.list_datasets():
        d = datasets.info(name)
        assert d["licence"] and d["citation"] and d["title"] and d["ground_truth"], name


def test_info_is_a_copy():
    datasets.info("sts")["modality"].append("XR")
    _registry.entry("sts")["files"].clear()
    assert datasets.info("sts")["modality"] == ["CT", "MR", "PET"]
    assert datasets.info("sts")["n_files"] == 60


def test_table_has_a_row_per_data_set():
    df = datasets.table()
    assert list(df.index) == datasets.list_datasets()
    assert df.loc["hc18", "n_files"] == 1747


@needs_store
def test_registry_matches_manifest():
    with open(STORE / "MANIFEST.csv", newline="", encoding="utf-8") as fh:
        manifest = {r["path"]: (r["sha256"], int(r["bytes"])) for r in csv.DictReader(fh)}
    covered = set()
    for name in STORE_SETS:
        ent = _registry.entry(name)
        for rel, f in ent["files"].items():
            path = f"{ent['root']}/{rel}"
            assert manifest[path] == (f["sha256"], f["bytes"]), path
            assert path not in covered, f"{path} registered twice"
            covered.add(path)
        for key in ("licence_file", "readme_file"):
            if ent.get(key):
                assert manifest[ent[key]["path"]] == (ent[key]["sha256"], ent[key]["bytes"])
                covered.add(ent[key]["path"])
    assert covered == set(manifest), sorted(set(manifest) - covered)[:5]


def test_source_urls():
    ct = _registry.entry("ibsi_ct_phantom")
    assert _registry.file_url(ct, "nifti/image.nii.gz") == (
        "https://raw.githubusercontent.com/theibsi/data_sets/6da96021bc91faf4c0cb7fd7fa56a4225d2064a8/"
        "ibsi_1_ct_radiomics_phantom/nifti/image/phantom.nii.gz"
    )
    assert _registry.file_url(ct, "dicom/mask/DCM_RS_00060.dcm").endswith(
        "/ibsi_1_ct_radiomics_phantom/dicom/mask/DCM_RS_00060.dcm"
    )
    busi = _registry.entry("busi")
    assert _registry.file_url(busi, "benign/benign (1).png").endswith(
        "/922c9469dff20e816d3144880eadd28cdad8efa2/Dataset_BUSI_with_GT/benign/benign%20%281%29.png"
    )
    sts = _registry.entry("sts")
    assert _registry.file_url(sts, "STS_001/PET_mask.nii.gz").endswith("/ibsi_validation/nifti/STS_001/PET_mask.nii.gz")
    pyr = _registry.entry("pyradiomics")
    assert _registry.file_url(pyr, "LICENSE.txt").endswith("/8ed579383b44/LICENSE.txt")
    assert _registry.file_url(pyr, "brain1_image.nrrd").endswith("/8ed579383b44/data/brain1_image.nrrd")
    for name in STORE_SETS:
        ent = _registry.entry(name)
        for rel in ent["files"]:
            url = _registry.file_url(ent, rel)
            assert url.startswith("https://raw.githubusercontent.com/") and ent["source"]["commit"] in url


def test_cases():
    assert datasets.cases("sts") == [f"STS_{i:03d}" for i in (1, 2, 3, 4, 5, 6, 8, 10, 12, 14)]
    assert datasets.cases("pyradiomics") == ["brain1", "brain2", "breast1"]
    hc = datasets.cases("hc18")
    assert len(hc) == 873 and "000_HC" in hc and "010_2HC" in hc
    assert not any("Annotation" in c for c in hc)
    busi = datasets.cases("busi")
    assert len(busi) == 625 and "benign (1)" in busi
    assert datasets.cases("ibsi_ct_phantom") == []
    assert "CT_small.dcm" in datasets.cases("pydicom_data")


def test_import_stays_light():
    code = (
        "import sys, medlab.datasets; "
        "print(sorted(m for m in ('nilearn', 'pydicom', 'skimage', 'pandas', 'scipy', 'tqdm', 'nibabel') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------ fetch


@needs_store
def test_fetch_from_store_returns_store_root(offline):
    root = datasets.fetch("ibsi_ct_phantom", progress=False)
    assert root == STORE / "ibsi" / "ct_phantom"
    ent = _registry.entry("ibsi_ct_phantom")
    for rel in ("nifti/mask.nii.gz", "dicom/mask/DCM_RS_00060.dcm"):
        assert _sha(root / rel) == ent["files"][rel]["sha256"]
    assert datasets.fetch("sts", ["STS_003/*"], progress=False) == STORE / "sts"
    assert offline == []


@needs_store
def test_verification_memo_is_used(tmp_path, cache, offline, monkeypatch):
    store = tmp_path / "store"
    _copy_from_store(store, [f"ibsi/digital_phantom/{f}" for f in ("image.nii.gz", "mask.nii.gz")])
    monkeypatch.setenv("MEDLAB_DATA_STORE", str(store))
    hashed = []
    real = _fetch._sha256
    monkeypatch.setattr(_fetch, "_sha256", lambda p: hashed.append(Path(p).name) or real(p))

    assert datasets.fetch("ibsi_digital_phantom") == store / "ibsi" / "digital_phantom"
    assert sorted(hashed) == ["image.nii.gz", "mask.nii.gz"]
    assert (cache / "verified.json").is_file()

    hashed.clear()
    datasets.fetch("ibsi_digital_phantom")
    assert hashed == []  # nothing changed: no file is hashed again

    # a file whose mtime changed is hashed again (and only that one)
    mask = store / "ibsi" / "digital_phantom" / "mask.nii.gz"
    st = mask.stat()
    os.utime(mask, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    datasets.fetch("ibsi_digital_phantom")
    assert hashed == ["mask.nii.gz"]


@needs_store
def test_corrupted_store_file_raises_and_is_not_used(tmp_path, cache, offline, monkeypatch):
    store = tmp_path / "store"
    rels = [f"ibsi/digital_phantom/{f}" for f in ("image.nii.gz", "mask.nii.gz")]
    _copy_from_store(store, rels)
    bad = store / rels[1]
    data = bytearray(bad.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    monkeypatch.setenv("MEDLAB_DATA_STORE", str(store))
    expected = _registry.entry("ibsi_digital_phantom")["files"]["mask.nii.gz"]["sha256"]

    with pytest.raises(ChecksumError) as err:
        datasets.fetch("ibsi_digital_phantom", progress=False)
    msg = str(err.value)
    assert "mask.nii.gz" in msg and expected in msg and _sha(bad) in msg
    assert [p.name for p in _files_under(cache) if p.name != "verified.json"] == []
    # the corrupted file is not remembered as verified either
    with pytest.raises(ChecksumError):
        datasets.fetch("ibsi_digital_phantom", ["mask.nii.gz"], progress=False)
    # the intact file alone is fine
    assert datasets.fetch("ibsi_digital_phantom", ["image.nii.gz"]) == store / "ibsi" / "digital_phantom"


@needs_store
def test_corrupted_cache_file_is_deleted_and_fetched_again(cache, monkeypatch):
    monkeypatch.delenv("MEDLAB_DATA_STORE")
    calls = []
    _serve_from_store(monkeypatch, calls)
    root = cache / "ibsi" / "digital_phantom"
    root.mkdir(parents=True)
    shutil.copyfile(STORE / "ibsi/digital_phantom/image.nii.gz", root / "image.nii.gz")
    (root / "mask.nii.gz").write_bytes(b"not the mask")

    assert datasets.fetch("ibsi_digital_phantom", progress=False) == root
    assert [u.rsplit("/", 1)[-1] for u in calls] == ["mask.nii.gz"]  # only the bad one
    ent = _registry.entry("ibsi_digital_phantom")
    assert _sha(root / "mask.nii.gz") == ent["files"]["mask.nii.gz"]["sha256"]


@needs_store
def test_corrupted_cache_file_without_source_is_gone(cache, offline, monkeypatch):
    monkeypatch.delenv("MEDLAB_DATA_STORE")
    root = cache / "ibsi" / "digital_phantom"
    root.mkdir(parents=True)
    (root / "mask.nii.gz").write_bytes(b"not the mask")
    with pytest.raises(DatasetError, match="failed their sha256 check and were deleted"):
        datasets.fetch("ibsi_digital_phantom", ["mask.nii.gz"], progress=False)
    assert not (root / "mask.nii.gz").exists()


def test_missing_everywhere_raises_dataset_error(tmp_path, cache, offline, monkeypatch):
    monkeypatch.setenv("MEDLAB_DATA_STORE", str(tmp_path / "empty-store"))
    with pytest.raises(DatasetError) as err:
        datasets.fetch("pyradiomics", ["brain1_image.nrrd", "brain1_label.nrrd"], progress=False)
    msg = str(err.value)
    assert "brain1_label.nrrd" in msg and "brain1_image.nrrd" in msg
    assert "MEDLAB_DATA_STORE" in msg and "pyradiomics/<file>" in msg
    assert len(offline) == 1  # the network is down: no second attempt
    assert _files_under(cache) == []  # no partial or temporary file left
    assert not isinstance(err.value, ChecksumError)

    monkeypatch.delenv("MEDLAB_DATA_STORE")
    with pytest.raises(DatasetError, match="MEDLAB_DATA_STORE is not set"):
        datasets.fetch("pyradiomics", ["brain1_label.nrrd"], progress=False)


def test_unreachable_url_is_a_dataset_error(tmp_path, cache, monkeypatch):
    """The real downloader, pointed at a port nothing listens on, must end in DatasetError."""
    monkeypatch.delenv("MEDLAB_DATA_STORE", raising=False)
    ent = _registry._raw("ibsi_digital_phantom")
    monkeypatch.setitem(ent["source"], "raw_base", "http://127.0.0.1:9/")
    with pytest.raises(DatasetError, match="image.nii.gz"):
        datasets.fetch("ibsi_digital_phantom", ["image.nii.gz"], progress=False)
    assert _files_under(cache) == []


def test_downloaded_garbage_raises_and_leaves_nothing(cache, monkeypatch):
    monkeypatch.delenv("MEDLAB_DATA_STORE", raising=False)
    monkeypatch.setattr(_fetch, "_stream", lambda url, out: out.write(b"<html>rate limited</html>"))
    expected = _registry.entry("ibsi_digital_phantom")["files"]["mask.nii.gz"]["sha256"]
    with pytest.raises(ChecksumError, match=expected):
        datasets.fetch("ibsi_digital_phantom", ["mask.nii.gz"], progress=False)
    assert _files_under(cache) == []


def test_interrupted_download_leaves_nothing(cache, monkeypatch):
    monkeypatch.delenv("MEDLAB_DATA_STORE", raising=False)

    def half_then_die(url, out):
        out.write(b"\x1f\x8b partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(_fetch, "_stream", half_then_die)
    with pytest.raises(KeyboardInterrupt):
        datasets.fetch("ibsi_digital_phantom", ["mask.nii.gz"], progress=False)
    assert _files_under(cache) == []


@needs_store
def test_download_into_cache(cache, monkeypatch):
    monkeypatch.delenv("MEDLAB_DATA_STORE")
    calls = []
    _serve_from_store(monkeypatch, calls)
    root = datasets.fetch("sts", ["STS_002/PET_*"], progress=False)
    assert root == cache / "sts"
    assert sorted(p.name for p in (root / "STS_002").iterdir()) == ["PET_image.nii.gz", "PET_mask.nii.gz"]
    assert len(calls) == 2
    assert [p for p in _files_under(cache) if is_temporary(p.name)] == []  # no leftover temporary file
    calls.clear()
    assert datasets.fetch("sts", ["STS_002/PET_*"], progress=False) == root
    assert calls == []  # served from the cache now


@needs_store
def test_partial_store_is_copied_and_rest_downloaded(tmp_path, cache, monkeypatch):
    store = tmp_path / "store"
    _copy_from_store(store, ["pyradiomics/brain2_image.nrrd"])
    monkeypatch.setenv("MEDLAB_DATA_STORE", str(store))
    calls = []
    _serve_from_store(monkeypatch, calls)
    root = datasets.fetch("pyradiomics", ["brain2_*"], progress=False)
    assert root == cache / "pyradiomics"
    assert [u.rsplit("/", 1)[-1] for u in calls] == ["brain2_label.nrrd"]
    assert _sha(root / "brain2_image.nrrd") == _sha(store / "pyradiomics/brain2_image.nrrd")


def test_files_argument():
    with pytest.raises(ValueError, match="`files` must be one of the 60 files of 'sts'.*did you mean 'STS_001/CT_image.nii.gz'"):
        datasets.fetch("sts", ["STS_001/CT_imag.nii.gz"])
    with pytest.raises(ValueError, match="`files`"):
        datasets.fetch("sts", ["STS_999/*"])
    with pytest.raises(TypeError, match="`files`"):
        datasets.fetch("sts", 3)


@needs_store
def test_files_argument_accepts_one_string():
    assert datasets.fetch("sts", "STS_001/CT_mask.nii.gz", progress=False) == STORE / "sts"


def test_package_data_sets():
    root = datasets.fetch("deid_echo")
    assert (root / "ultrasounds" / "ultrasound-multiframe.dcm").is_file()
    assert (datasets.fetch("pydicom_data") / "RG1_UNCI.dcm").is_file()
    assert (datasets.fetch("mni152") / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz").is_file()


def test_missing_package_says_what_to_install(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "deid_data" else real(n, *a))
    with pytest.raises(DatasetError, match="pip install deid-data"):
        datasets.fetch("deid_echo")


# ------------------------------------------------------------------ loaders


@needs_store
def test_load_ibsi_ct_phantom():
    case = datasets.load("ibsi_ct_phantom", progress=False)
    image, mask = case.image, case.label
    assert (case.dataset, case.id, list(case.labels), case.source) == ("ibsi_ct_phantom", None, ["gtv"], "store")
    assert case.licence == "CC BY-NC 3.0 (non-commercial use only)"
    assert case.paths["image"].name == "image.nii.gz" and case.paths["gtv"].name == "mask.nii.gz"
    assert image.GetSize() == (204, 201, 60)
    assert image.GetSpacing() == pytest.approx((0.977, 0.977, 3.0), abs=1e-4)
    assert mask.GetPixelID() == sitk.sitkUInt8
    check_same_grid(image, mask)
    arr, m = sitk.GetArrayViewFromImage(image), sitk.GetArrayViewFromImage(mask)
    assert arr.min() == -1000  # air in HU
    assert set(np.unique(m)) == {0, 1} and 0 < m.sum() < m.size // 10


@needs_store
def test_load_ibsi_digital_phantom():
    case = datasets.load("ibsi_digital_phantom")
    image, mask = case.image, case.labels["roi"]
    assert image.GetSize() == (5, 4, 4) and image.GetSpacing() == (2.0, 2.0, 2.0)
    assert int(sitk.GetArrayViewFromImage(mask).sum()) == 74  # per the IBSI manual
    assert set(np.unique(sitk.GetArrayViewFromImage(image))) == {1, 3, 4, 6, 9}


@needs_store
@pytest.mark.parametrize("modality", ["CT", "MR_T1", "PET"])
def test_load_sts(modality):
    case = datasets.load("sts", case="STS_001", modality=modality, progress=False)
    image, mask = case.image, case.labels["gtv"]
    assert case.meta == {"modality": modality} and case.paths["image"].name == f"{modality}_image.nii.gz"
    check_same_grid(image, mask)
    assert sitk.GetArrayViewFromImage(mask).sum() > 0
    if modality == "PET":
        assert image.GetSpacing() == pytest.approx((4.6875, 4.6875, 3.27), abs=1e-4)
        assert sitk.GetArrayViewFromImage(image).min() >= 0  # SUV


def test_load_sts_bad_modality():
    with pytest.raises(ValueError, match="`modality` must be one of 'CT', 'MR_T1', 'PET'; got 'MR'"):
        datasets.load("sts", case="STS_001", modality="MR")


@needs_store
def test_load_pyradiomics():
    case = datasets.load("pyradiomics", case="brain1")
    image, label = case.image, case.labels["tumour"]
    assert image.GetSize() == (256, 256, 25)
    assert image.GetSpacing() == pytest.approx((0.78125, 0.78125, 6.5), abs=1e-4)
    check_same_grid(image, label)
    assert label.GetPixelID() == sitk.sitkUInt8


@needs_store
def test_load_hc18_units():
    r = datasets.load("hc18", case="000_HC")
    assert r.meta == pytest.approx({"pixel_size_mm": 0.069135804, "hc_mm": 44.3})
    assert r.image.GetSize() == (800, 540) and r.image.GetNumberOfComponentsPerPixel() == 1
    assert list(r.labels) == ["head"] and r.label.GetSpacing() == (r.meta["pixel_size_mm"],) * 2
    # the sonographer's circumference matches the perimeter of the mask's ellipse, in mm
    f = sitk.LabelShapeStatisticsImageFilter()
    f.Execute(r.label)
    a, b = (d / 2 for d in f.GetEquivalentEllipsoidDiameter(1))
    perimeter = math.pi * (3 * (a + b) - math.sqrt((3 * a + b) * (a + 3 * b)))
    assert perimeter == pytest.approx(r.meta["hc_mm"], rel=0.03)


@needs_store
def test_load_busi():
    r = datasets.load("busi", case="malignant (3)")
    assert r.meta == {"class": "malignant"} and r.labels == {}
    assert r.image.GetSize() == (256, 256)
    with pytest.raises(DatasetError, match=r"busi/malignant \(3\) has no label image"):
        r.label
    with pytest.raises(ValueError, match="did you mean 'benign \\(1\\)'"):
        datasets.load("busi", case="benign (1")


def test_load_mni152_grid_and_lps():
    from nilearn import datasets as nd

    r = datasets.load("mni152", resolution=2)
    assert list(r.labels) == ["brain", "gm", "wm"] and r.meta == {"resolution_mm": 2}
    assert r.source == "package"
    with pytest.raises(DatasetError, match=r"mni152 has 3 label images \(brain, gm, wm\); pick one"):
        r.label
    for key, mask in r.labels.items():
        check_same_grid(r.image, mask, names=("image", key))
        assert mask.GetPixelID() == sitk.sitkUInt8
    brain = sitk.GetArrayViewFromImage(r.labels["brain"])
    volume_l = brain.sum() * np.prod(r.labels["brain"].GetSpacing()) / 1e6
    assert 1.2 < volume_l < 2.5  # an adult brain (with the template's generous mask)
    wm = sitk.GetArrayViewFromImage(r.labels["wm"]).astype(bool)
    assert (brain.astype(bool) & wm).sum() > 0.95 * wm.sum()
    # RAS (nibabel) -> LPS (ITK): the same voxel must land on the same anatomical point
    nib = nd.load_mni152_template(resolution=2)
    ijk = (10, 20, 30)
    ras = nib.affine @ np.array([*ijk, 1.0])
    lps = r.image.TransformIndexToPhysicalPoint(ijk)
    assert lps == pytest.approx((-ras[0], -ras[1], ras[2]))
    assert float(sitk.GetArrayViewFromImage(r.image)[30, 20, 10]) == pytest.approx(
        float(np.asanyarray(nib.dataobj)[10, 20, 30])
    )


def test_load_package_images():
    echo = datasets.load("deid_echo").image
    assert echo.GetSize() == (800, 600, 1, 30) and echo.GetNumberOfComponentsPerPixel() == 3  # cine: 4D
    retina = datasets.load("skimage_retina").image
    assert retina.GetDimension() == 2 and retina.GetSize() == (1411, 1411)
    assert retina.GetNumberOfComponentsPerPixel() == 3
    case = datasets.load("pydicom_data", case="CT_small.dcm")
    assert case.image is None and case.labels == {} and case.source == "package"
    assert case.paths["file"].name == "CT_small.dcm" and case.paths["file"].is_file()
    assert "image: none (files only, see paths)" in repr(case)


def test_load_argument_errors():
    with pytest.raises(TypeError, match=r"load\('sts'\) got unknown option\(s\) \['modalty'\]"):
        datasets.load("sts", modalty="PET")
    with pytest.raises(ValueError, match="`case` is not used by data set 'mni152'"):
        datasets.load("mni152", case="x")
    with pytest.raises(ValueError, match="`resolution` must be 1 or 2"):
        datasets.load("mni152", resolution=3)
    with pytest.raises(ValueError, match="did you mean 'CT_small.dcm'"):
        datasets.load("pydicom_data", case="CT_smal.dcm")
    with pytest.raises(ValueError, match="`case` must be one of the 10 cases of 'sts'"):
        datasets.load("sts", case="STS_007")


# ------------------------------------------------------------------ the Case type


def _tiny(value=0):
    img = sitk.Image(4, 3, sitk.sitkUInt8)
    img += value
    return img


def test_case_checks_and_owns_its_mappings():
    labels = {"a": _tiny(1)}
    case = datasets.Case("demo", "c1", _tiny(), labels=labels, meta={"x_mm": 1.5}, paths={"file": "f.nii"},
                         source="sample", licence="CC0")
    labels["b"] = _tiny()  # the caller's dict is not the case's
    assert list(case.labels) == ["a"] and case.paths == {"file": Path("f.nii")}
    assert case.name == "demo/c1" and case.label is case.labels["a"]
    text = repr(case)
    assert text.splitlines()[0] == "Case('demo', 'c1', source='sample', licence='CC0')"
    assert "labels['a']: 8-bit unsigned integer, size (x, y) 4x3, spacing 1x1 mm" in text
    assert "meta: x_mm=1.5" in text and "paths['file']: f.nii" in text
    with pytest.raises(AttributeError):
        case.image = None  # frozen
    with pytest.raises(ValueError, match="`source` must be one of"):
        datasets.Case("demo", None, None, source="internet")
    with pytest.raises(TypeError, match=r"`labels\['a'\]` must be a SimpleITK.Image; got ndarray"):
        datasets.Case("demo", None, _tiny(), labels={"a": np.zeros((3, 4))})
    with pytest.raises(DatasetError, match="demo has 2 label images \\(a, b\\)"):
        datasets.Case("demo", None, _tiny(), labels={"a": _tiny(), "b": _tiny()}).label


@needs_store
@pytest.mark.parametrize(("name", "case", "paths"), [
    ("ibsi_reference", None, {"file": "ibsi/reference/03_Image_features.rst"}),
    ("dcm_qa_nih", "20180918GE/mr_0004", {"series": "dcm_qa_nih/In/20180918GE/mr_0004",
                                          "reference": "dcm_qa_nih/Ref/DCM2NIIX_regression_test_4.nii",
                                          "sidecar": "dcm_qa_nih/Ref/DCM2NIIX_regression_test_4.json"}),
])
def test_file_data_sets_are_cases_with_paths(name, case, paths):
    c = datasets.load(name, case=case, progress=False)
    assert isinstance(c, datasets.Case) and c.image is None and c.labels == {} and c.id == case
    assert c.source == "store" and c.licence == datasets.info(name)["licence"]
    assert {k: v.relative_to(datasets.store_dir()).as_posix() for k, v in c.paths.items()} == paths
    assert all(v.exists() for v in c.paths.values())
