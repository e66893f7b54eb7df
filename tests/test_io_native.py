"""The native route for classic 4D MR series (medlab.io._native): the same image as dcm2niix's
whole-series conversion, and a refusal (dcm2niix then) for everything it does not know."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.data import get_testdata_file
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

import medlab.io as mio
from medlab.io import _native, _series

MR_SMALL = get_testdata_file("MR_small.dcm")
ROW, COL = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0)


def _write(folder, *, slices=4, volumes=3, orientation=ROW + COL, change=None, unsigned=False, offset=0,
           syntax=ExplicitVRLittleEndian):
    """A GE-like fMRI series from MR_small: pixel = base + offset + 100 * volume + slice;
    ``change(ds, volume, slice)`` edits each file's dataset before it is saved."""
    folder.mkdir(parents=True, exist_ok=True)
    ds = pydicom.dcmread(MR_SMALL)
    base = ds.pixel_array.astype(np.int64) // 4
    del ds[0xFFFCFFFC]  # MR_small's trailing padding after the pixel data (see test_pixel_data_not_at_the_end...)
    ds.Manufacturer = "GE MEDICAL SYSTEMS"
    ds.SeriesInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = syntax
    row, col = np.asarray(orientation[:3]), np.asarray(orientation[3:])
    normal = np.cross(row, col)
    for v in range(volumes):
        for k in range(slices):
            ds.SOPInstanceUID = generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.ImagePositionPatient = [float(x) for x in np.array([-80.0, -90.5, 6.25]) + 3.5 * k * normal]
            ds.ImageOrientationPatient = [float(c) for c in orientation]
            ds.InstanceNumber = v * slices + k + 1
            ds.AcquisitionTime = f"1200{2 * v:02d}.{k:06d}"
            ds.TemporalPositionIdentifier = v + 1
            ds.PixelRepresentation = 0 if unsigned else 1
            values = base + offset + 100 * v + k
            ds.PixelData = values.astype(np.uint16 if unsigned else np.int16).tobytes()
            if change is not None:
                change(ds, v, k)
            ds.save_as(folder / f"f_{v:02d}_{k:02d}.dcm", implicit_vr=syntax == ImplicitVRLittleEndian)
    return folder


# synthetic GE files lack GE's protocol block: dcm2niix says so (a DicomWarning), on either route
pytestmark = pytest.mark.filterwarnings("ignore:.*Missing GE protocol data block")


def _read(folder):
    """The image and the warnings that reading it gave."""
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        image = mio.read(folder)
    return image, sorted({str(w.message) for w in said})


def _whole_conversion(monkeypatch):
    monkeypatch.setattr(_native, "refusal", lambda layout, modality: "forced for the test")


def _same_image(a: sitk.Image, b: sitk.Image):
    assert a.GetSize() == b.GetSize() and a.GetPixelID() == b.GetPixelID()
    assert np.array_equal(sitk.GetArrayViewFromImage(a), sitk.GetArrayViewFromImage(b))
    assert a.GetOrigin() == b.GetOrigin() and a.GetSpacing() == b.GetSpacing() and a.GetDirection() == b.GetDirection()
    ma, mb = mio.volume_metadata(a), mio.volume_metadata(b)
    assert ma.pop("source").startswith("medlab voxels, dcm2niix") and mb.pop("source").startswith("dcm2niix")
    assert ma == mb


@pytest.mark.parametrize(
    "kind", ["signed", "unsigned 16 bits", "unsigned 12 bits", "unsigned above int16", "implicit VR", "oblique"]
)
def test_native_image_equals_whole_series_conversion(tmp_path, monkeypatch, kind):
    options = {
        "unsigned 16 bits": dict(unsigned=True),
        "unsigned 12 bits": dict(unsigned=True, change=lambda ds, v, k: (setattr(ds, "BitsStored", 12),
                                                                          setattr(ds, "HighBit", 11))),
        "unsigned above int16": dict(unsigned=True, offset=40000),
        "implicit VR": dict(syntax=ImplicitVRLittleEndian),
        "oblique": dict(orientation=(0.9659258, 0.258819, 0.0, -0.2241439, 0.8365163, -0.5)),
    }.get(kind, {})
    folder = _write(tmp_path / "s", **options)
    native, said = _read(folder)
    assert native.GetSize() == (64, 64, 4, 3)
    _whole_conversion(monkeypatch)
    whole, said_whole = _read(folder)
    _same_image(native, whole)
    assert said == said_whole and said  # dcm2niix's warning on the missing protocol block, once
    assert mio.volume_metadata(native)["source"].startswith("medlab voxels")
    # dcm2niix's types: unsigned 16-bit stays unsigned; fewer bits stored become int16
    expected = {"unsigned 16 bits": sitk.sitkUInt16, "unsigned above int16": sitk.sitkUInt16}
    assert native.GetPixelID() == expected.get(kind, sitk.sitkInt16)


def _refusal(folder):
    info = _series.select_series(str(folder), series_uid=None)
    return _native.refusal(_series._layout(info, where=str(folder)), info.modality)


def _one_file(edit):
    return lambda ds, v, k: edit(ds) if (v, k) == (1, 2) else None


REFUSED = {
    "deflate (header left to pydicom)": (dict(syntax=DeflatedExplicitVRLittleEndian), "pydicom"),
    "RLE compressed": ("rle", "transfer syntax 1.2.840.10008.1.2.5"),
    "varying bits stored": (dict(change=_one_file(lambda ds: setattr(ds, "BitsStored", 12))), "bits_stored"),
    "signed and unsigned": (dict(change=_one_file(lambda ds: setattr(ds, "PixelRepresentation", 0))),
                            "pixel_representation"),
    "per-file rescale": (dict(change=_one_file(lambda ds: setattr(ds, "RescaleSlope", 2))), "rescale_slope"),
    "rescale": (dict(change=lambda ds, v, k: setattr(ds, "RescaleIntercept", -10)), "intercept -10.0"),
    "padding": (dict(change=lambda ds, v, k: ds.add_new(0x00280120, "SS", 0)), "padding"),
    "bits stored with sign": (dict(change=lambda ds, v, k: (setattr(ds, "BitsStored", 12), setattr(ds, "HighBit", 11))),
                              "12 bits stored"),
    "MONOCHROME1": (dict(change=lambda ds, v, k: setattr(ds, "PhotometricInterpretation", "MONOCHROME1")),
                    "MONOCHROME1"),
    "Philips": (dict(change=lambda ds, v, k: setattr(ds, "Manufacturer", "Philips Medical Systems")), "Philips"),
    "GE b-value": (dict(change=lambda ds, v, k: ds.add_new(0x00431039, "IS", ["1000", "0", "0", "0"])),
                   "diffusion"),
    "Siemens b-value": (dict(change=lambda ds, v, k: ds.add_new(0x0019100C, "IS", str(500 * v))), "diffusion"),
    "DiffusionBValue": (dict(change=lambda ds, v, k: setattr(ds, "DiffusionBValue", 0.0)), "diffusion"),
    "echo times": (dict(change=lambda ds, v, k: setattr(ds, "EchoTime", 20 + 10 * v)), "3 echo times"),
    "two volumes": (dict(volumes=2), "2 volume(s)"),
    "CT": (dict(change=lambda ds, v, k: setattr(ds, "Modality", "CT")), "not MR"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused_with_the_reason(tmp_path, case):
    options, reason = REFUSED[case]
    if options == "rle":
        folder = _write(tmp_path / "s")
        for path in folder.iterdir():
            ds = pydicom.dcmread(path)
            ds.compress(pydicom.uid.RLELossless)
            ds.save_as(path)
    else:
        folder = _write(tmp_path / "s", **options)
    said = _refusal(folder)
    assert said is not None and reason in said, said


def test_plain_ge_series_is_accepted(tmp_path):
    assert _refusal(_write(tmp_path / "s")) is None
    # GE's b-value tag with b = 0 (as in GE's fMRI files) is no diffusion
    zero = _write(tmp_path / "z", change=lambda ds, v, k: ds.add_new(0x00431039, "IS", ["0", "268435456", "0", "0"]))
    assert _refusal(zero) is None


def test_refused_series_is_read_by_dcm2niix_as_before(tmp_path):
    folder = _write(tmp_path / "s", change=_one_file(lambda ds: setattr(ds, "RescaleSlope", 2)))
    image = mio.read(folder)
    assert mio.volume_metadata(image)["source"].startswith("dcm2niix")
    assert image.GetSize() == (64, 64, 4, 3)


def test_pixel_data_not_at_the_end_goes_to_dcm2niix(tmp_path, monkeypatch):
    """A file whose last element is not its pixel data: the whole series is converted."""
    def trailing(ds, v, k):
        if (v, k) == (2, 3):
            ds.add_new(0xFFFCFFFC, "OB", b"\0\0\0\0")  # DataSetTrailingPadding after the pixels
    folder = _write(tmp_path / "s", change=trailing)
    assert _refusal(folder) is None
    image = mio.read(folder)
    assert mio.volume_metadata(image)["source"].startswith("dcm2niix")
    _whole_conversion(monkeypatch)
    assert np.array_equal(sitk.GetArrayViewFromImage(image), sitk.GetArrayViewFromImage(mio.read(folder)))


def test_sample_disagreeing_with_native_voxels_goes_to_dcm2niix(tmp_path, monkeypatch):
    folder = _write(tmp_path / "s")
    pixels = _native._pixels

    def off_by_one(*args):
        out = pixels(*args)
        out[1, 0, 5, 5] += 1  # a sample voxel that dcm2niix reads otherwise
        return out

    monkeypatch.setattr(_native, "_pixels", off_by_one)
    image = mio.read(folder)
    assert mio.volume_metadata(image)["source"].startswith("dcm2niix")
    arr = sitk.GetArrayViewFromImage(image)
    assert arr[1, 0, 5, 5] == pydicom.dcmread(MR_SMALL).pixel_array[5, 5] // 4 + 100


def test_no_early_whole_folder_conversion_for_a_native_series(tmp_path, monkeypatch):
    """dcm2niix runs once, on the sample volumes only; a refused series keeps the early run."""
    from medlab.io import _dcm2niix

    runs = []
    start = _dcm2niix.Started.__init__

    def counted(self, folder=None, *, files=None):
        runs.append("folder" if files is None else len(files))
        start(self, folder, files=files)

    monkeypatch.setattr(_dcm2niix.Started, "__init__", counted)
    image = mio.read(_write(tmp_path / "s"))
    assert runs == [8] and mio.volume_metadata(image)["source"].startswith("medlab voxels")
    runs.clear()
    philips = _write(tmp_path / "p", change=lambda ds, v, k: setattr(ds, "Manufacturer", "Philips Medical Systems"))
    _read(philips)  # dcm2niix notes MR_small's repetition time against the acquisition times
    assert runs == ["folder"]


def test_conversions_work_in_memory_and_leave_nothing(tmp_path, monkeypatch):
    from medlab.io import _dcm2niix

    shm = tmp_path / "shm"
    shm.mkdir()
    monkeypatch.setattr(_dcm2niix, "SHM", str(shm))
    assert _dcm2niix.scratch(1000) == str(shm) and _dcm2niix.scratch(2 << 30) is None  # large: on disk
    made = []
    real = _dcm2niix.tempfile.TemporaryDirectory

    def spy(*args, **kwargs):
        made.append(kwargs.get("dir"))
        return real(*args, **kwargs)

    monkeypatch.setattr(_dcm2niix.tempfile, "TemporaryDirectory", spy)
    mio.read(_write(tmp_path / "s"))
    assert made == [str(shm)] and os.listdir(shm) == []
