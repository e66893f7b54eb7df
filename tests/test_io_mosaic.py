"""Siemens mosaic series read natively (:mod:`medlab.io._native`) against the dcm2niix route.

The native route unpacks the tiles by the CSA header's NumberOfImagesInMosaic, places them by
ImagePositionPatient, the tile size and the CSA SliceNormalVector, and takes slice timing and
phase encoding from the CSA header. Each case is read twice, natively and with the native route
refused (so dcm2niix converts it, as before): voxels, dtype, geometry, metadata and warnings
must agree (the real series of dcm_qa_nih: tests/test_dcm_qa_nih.py). Synthetic mosaics are
built from a real one of dcm_qa_nih (its other headers kept) with a CSA image header written
here; every refusal is checked with its reason, and the series is then read as before.
"""

from __future__ import annotations

import copy
import struct
import warnings

import numpy as np
import pytest
import SimpleITK as sitk

import medlab.datasets
import medlab.io as mio
from medlab.errors import ImageIOError
from medlab.io import _native, _series

pydicom = pytest.importorskip("pydicom")
pytest.importorskip("nibabel")


def _store_mosaic():
    try:
        c = medlab.datasets.load("dcm_qa_nih", case=medlab.datasets.cases("dcm_qa_nih")[4])
    except Exception:  # noqa: BLE001 - the data may not be in the store
        pytest.skip("dcm_qa_nih is not in the data store")
    files = sorted(c.paths["series"].glob("*.dcm")) if hasattr(c.paths["series"], "glob") else []
    if not files:
        pytest.skip("no Siemens mosaic in dcm_qa_nih")
    return files


def _csa(tags: dict) -> bytes:
    """A CSA2 ('SV10') header: name -> (VR, list of values as text)."""
    out = [b"SV10", b"\x04\x03\x02\x01", struct.pack("<2I", len(tags), 77)]
    for name, (vr, values) in tags.items():
        out.append(struct.pack("<64si4s3i", name.encode(), len(values), vr.encode(), 0, len(values), 77))
        for value in values:
            data = value.encode() + b"\0"
            out.append(struct.pack("<4i", len(data), len(data), 77, len(data)))
            out.append(data + b"\0" * (-len(data) % 4))
    return b"".join(out)


def _write_series(folder, *, n=7, tile=(10, 12), normal_sign=1.0, oblique_deg=0.0, times=None, volumes=3,
                  csa_edit=None, header_edit=None, seed=0):
    """A mosaic series of ``volumes`` files; returns the folder."""
    base = pydicom.dcmread(_store_mosaic()[0])
    rng = np.random.default_rng(seed)
    across = int(np.ceil(np.sqrt(n)))
    rows, cols = tile[0] * across, tile[1] * across
    a = np.deg2rad(oblique_deg)
    row = np.array([np.cos(a), 0.0, np.sin(a)])
    col = np.array([0.0, np.cos(a / 2), -np.sin(a / 2)])
    col -= row * (row @ col)
    col /= np.linalg.norm(col)
    normal = np.cross(row, col) * normal_sign
    times = times or [[(k * 37.5) % (n * 75.0) for k in range(n)]] * volumes
    folder.mkdir(parents=True, exist_ok=True)
    for v in range(volumes):
        ds = copy.deepcopy(base)
        ds.Rows, ds.Columns = rows, cols
        ds.ImageOrientationPatient = [f"{x:.10f}" for x in (*row, *col)]
        ds.ImagePositionPatient = ["-101.5", "-87.25", "12.125"]
        ds.PixelSpacing = ["2.5", "2.25"]
        ds.SpacingBetweenSlices = "3.5"
        ds.InstanceNumber = v + 1
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"1.2.826.0.1.3680043.8.498.{seed}.{v + 1}"
        ds.AcquisitionTime = f"{122400.1 + 2.4 * v:.6f}"
        pixels = rng.integers(0, 4096, (rows, cols), dtype=np.uint16)
        ds.PixelData = pixels.tobytes()
        tags = {
            "NumberOfImagesInMosaic": ("US", [str(n)]),
            "SliceNormalVector": ("FD", [f"{x:.8f}" for x in normal]),
            "MosaicRefAcqTimes": ("FD", [f"{t:.8f}" for t in times[v]]),
            "PhaseEncodingDirectionPositive": ("IS", ["1"]),
            "ProtocolSliceNumber": ("IS", ["0"]),
        }
        if csa_edit is not None:
            csa_edit(v, tags)
        ds.private_block(0x0029, "SIEMENS CSA HEADER")[0x10].value = _csa(tags)
        for tag in ((0x0019, 0x1029),):  # Siemens' public copy of the slice times: as in the CSA header
            if tag in ds:
                del ds[tag]
        if header_edit is not None:
            header_edit(v, ds)
        ds.save_as(folder / f"m{v:03d}.dcm", enforce_file_format=True)
    return folder


def _read(path, *, native: bool):
    orig = _native.refusal
    if not native:
        _native.refusal = lambda *a, **k: "refused by the test"
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            image = mio.read(path)
    finally:
        _native.refusal = orig
    return image, [str(w.message) for w in caught]


def _assert_same(path):
    (a, wa), (b, wb) = _read(path, native=True), _read(path, native=False)
    ma, mb = mio.volume_metadata(a), mio.volume_metadata(b)
    assert ma["source"].startswith("medlab") and mb["source"].startswith("dcm2niix")
    assert a.GetSize() == b.GetSize() and a.GetPixelID() == b.GetPixelID()
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(a), sitk.GetArrayViewFromImage(b))
    # the dcm2niix route's geometry passes through float32 NIfTI fields; the native one is
    # DICOM's doubles: equal to that precision
    np.testing.assert_allclose(a.GetOrigin(), b.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(a.GetSpacing(), b.GetSpacing(), atol=1e-5)
    np.testing.assert_allclose(a.GetDirection(), b.GetDirection(), atol=1e-6)
    ma.pop("source"), mb.pop("source")
    assert ma == mb
    assert wa == wb
    return a, ma


def _layout(path):
    info = _series.select_series(str(path), series_uid=None)
    return _series._layout(info, where=str(path)), info.modality


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n": 7, "tile": (10, 12)},  # odd tile count, empty tiles, non-square tiles
        {"n": 5, "tile": (8, 8), "normal_sign": -1.0},  # tiles against the normal: reversed
        {"n": 6, "tile": (9, 7), "oblique_deg": 20.0},
        {"n": 4, "tile": (6, 6), "oblique_deg": -35.0, "normal_sign": -1.0},
    ],
    ids=["odd", "descending", "oblique", "oblique-descending"],
)
def test_synthetic_mosaics_equal_the_dcm2niix_route(tmp_path, kwargs):
    folder = _write_series(tmp_path / "s", **kwargs)
    layout, modality = _layout(folder)
    assert _native.refusal(layout, modality) is None
    image, meta = _assert_same(folder)
    n = kwargs["n"]
    assert image.GetSize() == (kwargs["tile"][1], kwargs["tile"][0], n, 3)
    times = [(k * 37.5) % (n * 75.0) / 1000 for k in range(n)]
    assert meta["slice_timing_s"] == pytest.approx(times[::-1] if kwargs.get("normal_sign", 1) < 0 else times)
    # the first tile of the first file, where the normal says it is
    first = pydicom.dcmread(sorted(folder.glob("*.dcm"))[0]).pixel_array[: kwargs["tile"][0], : kwargs["tile"][1]]
    arr = sitk.GetArrayViewFromImage(image)
    np.testing.assert_array_equal(arr[0, -1 if kwargs.get("normal_sign", 1) < 0 else 0], first)


def test_first_volume_timed_differently_takes_the_second_volumes_times(tmp_path):
    t2 = [0.0, 150.0, 75.0, 225.0, 300.0]
    folder = _write_series(tmp_path / "s", n=5, tile=(6, 6), times=[[0.0, 150.0, 75.0, 220.0, 290.0], t2, t2])
    _, meta = _assert_same(folder)
    assert meta["slice_timing_s"] == pytest.approx([t / 1000 for t in t2])


def _drop(tag):
    def edit(v, ds):
        del ds[tag]
    return edit


@pytest.mark.parametrize(
    "kwargs, reason",
    [
        ({"csa_edit": lambda v, t: t.pop("NumberOfImagesInMosaic")}, "NumberOfImagesInMosaic"),
        ({"n": 5, "tile": (8, 8), "header_edit": lambda v, ds: setattr(ds, "Rows", 20)}, "does not tile"),
        ({"csa_edit": lambda v, t: t.update(NumberOfImagesInMosaic=("US", [str(5 + v)]))}, "differ"),
        ({"csa_edit": lambda v, t: t.update(SliceNormalVector=("FD", ["1", "0", "0"]))}, "SliceNormalVector"),
        ({"csa_edit": lambda v, t: t.update(ProtocolSliceNumber=("IS", ["1"]))}, "ProtocolSliceNumber"),
        ({"csa_edit": lambda v, t: t.pop("PhaseEncodingDirectionPositive")}, "PhaseEncodingDirectionPositive"),
        ({"csa_edit": lambda v, t: t.update(MosaicRefAcqTimes=("FD", ["0", "75"]))}, "MosaicRefAcqTimes"),
        ({"n": 5, "times": [[0, 150, 75, 225, 300.005], [0, 150, 75, 225, 300], [0, 150, 75, 225, 300]]},
         "MosaicRefAcqTimes of the first two volumes"),
        ({"header_edit": _drop("SpacingBetweenSlices")}, "SpacingBetweenSlices"),
        ({"header_edit": _drop(0x00291010)},
         "no Siemens CSA image header"),
        ({"volumes": 1}, "single mosaic file"),
        ({"header_edit": lambda v, ds: setattr(ds, "InstanceNumber", 3 - v)}, "InstanceNumber"),
        ({"header_edit": lambda v, ds: setattr(ds, "ImagePositionPatient", ["0", "0", str(v)])}, "position"),
        ({"header_edit": lambda v, ds: setattr(ds, "Manufacturer", "UIH")}, "manufacturer"),
    ],
    ids=["no-count", "not-tiled", "count-varies", "normal", "protocol-slice", "no-pe", "times-length",
         "times-ambiguous", "no-spacing", "no-csa", "single", "instance-order", "positions", "vendor"],
)
def test_refusals_name_their_reason(tmp_path, kwargs, reason):
    folder = _write_series(tmp_path / "s", **kwargs)
    layout, modality = _layout(folder)
    said = _native.refusal(layout, modality)
    assert said is not None and reason in said, said
    try:  # read as before: by dcm2niix, or refused with medlab's error
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            image = mio.read(folder)
    except ImageIOError:
        return
    assert mio.volume_metadata(image)["source"].startswith("dcm2niix")


def test_truncated_mosaic_file_is_named_not_read(tmp_path):
    """The native route finds no pixel element at the end of a truncated file; dcm2niix would
    read the series without a word (seen by the reader fuzz test): medlab refuses it."""
    folder = _write_series(tmp_path / "s", n=5, tile=(8, 8))
    victim = sorted(folder.glob("*.dcm"))[1]
    victim.write_bytes(victim.read_bytes()[:-100])
    with pytest.raises(ImageIOError, match="m001.dcm.*truncated or corrupt"):
        mio.read(folder)


def test_without_nibabel_the_mosaic_goes_to_dcm2niix(tmp_path, monkeypatch):
    import sys

    folder = _write_series(tmp_path / "s", n=5, tile=(8, 8))
    for name in ("nibabel.nicom", "nibabel.nicom.csareader"):  # their import raises ImportError
        monkeypatch.setitem(sys.modules, name, None)
    layout, modality = _layout(folder)
    assert "nibabel" in _native.refusal(layout, modality)
    assert mio.volume_metadata(mio.read(folder))["source"].startswith("dcm2niix")
