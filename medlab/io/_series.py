"""DICOM series in folders: listing, choosing one, and assembling it as a 3D or 4D image.

Every file's header is read once (:mod:`medlab.io._scan`); the series' layout then decides the
route, and nothing about geometry is left to a guess:

- one file per slice position, one orientation and size: a **3D volume**. Pixels are decoded by
  ``sitk.ImageSeriesReader`` (GDCM) in the order found here; spacing, origin and direction are
  set from the slice positions themselves. Non-uniform steps and a gantry tilt are named in a
  :class:`~medlab.io.DicomWarning`; duplicate positions, mixed orientations or sizes raise. A
  regular MR series goes to dcm2niix like a 4D one (one converter for MR).
- every slice position repeated the same number of times (fMRI, diffusion, multi-echo,
  multi-phase), Siemens mosaics, several multi-frame files: a **4D image** converted by
  dcm2niix (:mod:`medlab.io._dcm2niix`), which splits volumes by the vendors' own rules. A
  plain GE or Siemens series of uncompressed single-slice files (fMRI) has its pixels read by
  medlab itself, placed as the headers say (:mod:`medlab.io._native`); so has a Siemens
  mosaic series of such files, unpacked and placed by its CSA image header.
- a single file: :func:`medlab.io._dicom.read_dicom_file`.
"""

from __future__ import annotations

import os
from collections import Counter

import numpy as np
import SimpleITK as sitk

from medlab._image import copy_geometry, to_array
from medlab.errors import ImageIOError
from medlab.io import _dcm2niix, _native, _scan, _tags
from medlab.io._common import UNIFORM_TOL, DicomWarning, fspath, itk_reason, require_exists, warn_if_nonuniform
from medlab.io._dicom import check_mosaic_header, is_mosaic, read_dicom_file
from medlab.io._fields import dataset_metadata
from medlab.io._header import is_dicom_file, open_dicom
from medlab.io._scan import FileInfo, SeriesInfo, scan
from medlab.io._suv import pet_scale
from medlab.io._volumes import attach, volume_metadata

# Slice positions closer than this along the normal (mm) are the same slice position.
POSITION_TOL_MM = 0.01
# Orientation cosines differing by more than this are different orientations.
ORIENTATION_TOL = 1e-4
# A slice-position path deviating more than this from the normal is named as a tilt (degrees).
TILT_TOL_DEG = 0.01


def list_series(folder, *, recursive: bool = True, progress=None) -> list[dict]:
    """The DICOM image series under a folder, with what a user needs to choose one.

    Files are grouped by SeriesInstanceUID, also across subfolders (a study folder with one
    folder per series). Non-DICOM files, DICOMDIR and DICOM objects without an image
    (RTSTRUCT, SR, RTPLAN, ...) are skipped; a DICOM file whose header cannot be parsed is
    skipped with a :class:`~medlab.io.DicomWarning` naming it.

    Parameters
    ----------
    folder : str or os.PathLike
    recursive : bool
        Also look into subfolders (default). False: only the files directly in ``folder``.
    progress : None, bool or callable
        None (default): a progress bar when there are more than 2000 files; False: none;
        True: always a bar; a callable ``progress(fraction, message)`` that may return False
        to stop (InterruptedError).

    Returns
    -------
    list of dict
        One dict per series, in order of first appearance, with keys
        ``series_instance_uid``, ``patient_id``, ``study_instance_uid``, ``study_date``,
        ``study_description``, ``series_number``, ``series_description``, ``modality``
        (str or None), ``size`` (columns, rows, slices per volume), ``volumes`` (int),
        ``number_of_files``, ``folders`` (tuple of the folders holding its files) and
        ``files`` (tuple of paths: sorted along the slice normal for a 3D series,
        else in folder order).

    Raises
    ------
    ImageIOError
        If ``folder`` does not exist or is not a folder.

    Examples
    --------
    >>> import medlab.io, tempfile
    >>> medlab.io.list_series(tempfile.mkdtemp())  # a folder without DICOM
    []
    """
    folder = _check_folder(folder)
    return [_describe_series(s) for s in scan(folder, recursive=recursive, progress=progress)[0]]


def _check_folder(folder) -> str:
    folder = fspath(folder, "folder")
    require_exists(folder)
    if not os.path.isdir(folder):
        raise ImageIOError(folder, "not a folder")
    return folder


def _describe_series(info: SeriesInfo) -> dict:
    try:
        layout = _layout(info, where=info.series_instance_uid)
        size, volumes, files = layout["size"], layout["volumes"], layout["files"]
    except ImageIOError:
        first = info.files[0]
        size, volumes, files = (first.columns, first.rows, None), None, [f.path for f in info.files]
    return {
        "series_instance_uid": info.series_instance_uid,
        "patient_id": info.patient_id,
        "study_instance_uid": info.study_instance_uid,
        "study_date": info.study_date,
        "study_description": info.study_description,
        "series_number": info.series_number,
        "series_description": info.series_description,
        "modality": info.modality,
        "size": size,
        "volumes": volumes,
        "number_of_files": len(info.files),
        "folders": tuple(info.folders()),
        "files": tuple(files),
    }


def _listing(series: list[dict]) -> str:
    def size(s):
        return "x".join("?" if v is None else str(v) for v in s["size"])

    return "\n".join(
        f"  series_uid={s['series_instance_uid']!r}: {s['modality'] or '?'}, "
        f"{s['series_description'] or 'no description'!r}, {s['number_of_files']} files, "
        f"{size(s)} voxels x {s['volumes'] if s['volumes'] is not None else '?'} volume(s), "
        f"patient {s['patient_id'] or '?'!r}, study {s['study_description'] or s['study_instance_uid'] or '?'!r}, "
        f"in {os.path.commonpath(s['folders']) if s['folders'] else '?'}"
        for s in series
    )


def select_series(folder: str, *, series_uid: str | None, progress=None) -> SeriesInfo:
    """The one series under ``folder`` (or the one with ``series_uid``), else ImageIOError with the listing."""
    found, count = scan(folder, recursive=True, progress=progress)
    if series_uid is not None:
        for info in found:
            if info.series_instance_uid == str(series_uid):
                return info
        listing = (
            f"; the folder holds:\n{_listing([_describe_series(s) for s in found])}"
            if found
            else "; the folder holds no DICOM image series"
        )
        raise ImageIOError(folder, f"no series with SeriesInstanceUID {series_uid!r}{listing}")
    if not found:
        raise ImageIOError(folder, f"no DICOM image series in this folder ({count} files)")
    if len(found) > 1:
        raise ImageIOError(
            folder,
            f"{len(found)} DICOM series in this folder; choose one with series_uid=...:\n"
            + _listing([_describe_series(s) for s in found]),
        )
    return found[0]


def series_files(folder: str, *, series_uid: str | None) -> tuple[str, ...]:
    """Files of the selected series under ``folder`` (3D: sorted along the slice normal)."""
    info = select_series(folder, series_uid=series_uid)
    try:
        return tuple(_layout(info, where=folder)["files"])
    except ImageIOError:
        return tuple(f.path for f in info.files)


# --------------------------------------------------------------------------- layout


def _dedupe(files: list[FileInfo], where: str) -> list[FileInfo]:
    seen: dict[str, FileInfo] = {}
    out = []
    for f in files:
        uid = f.sop_instance_uid
        if uid is not None and uid in seen:
            import warnings

            warnings.warn(
                f"{where}: {f.path} is a second copy of SOPInstanceUID {uid} (first: {seen[uid].path}); "
                "the copy is ignored",
                DicomWarning,
                stacklevel=5,
            )
            continue
        if uid is not None:
            seen[uid] = f
        out.append(f)
    return out


def _counted(values, what: str, files: list[FileInfo], key) -> str:
    parts = []
    for value, n in Counter(values).most_common():
        example = next(f.path for f in files if key(f) == value)
        parts.append(f"{what} {value}: {n} file(s), e.g. {example}")
    return "; ".join(parts)


def _layout(info: SeriesInfo, *, where: str) -> dict:
    """How to assemble a series: route, ordered files, size, volumes and geometry.

    Raises ImageIOError when the files cannot form one 3D or 4D image.
    """
    files = _dedupe(info.files, where)
    first = files[0]
    mosaic = [f for f in files if f.mosaic]
    multi = [f for f in files if f.frames > 1]
    orientation = first.orientation
    if mosaic or multi:
        if len(files) == 1 and not mosaic:
            if first.cine:  # frames are instants: read as (x, y, 1, frame)
                return {"route": "file", "files": [first.path], "size": (first.columns, first.rows, 1),
                        "volumes": first.frames, "orientation": orientation}
            return {"route": "file", "files": [first.path], "size": (first.columns, first.rows, first.frames),
                    "volumes": 1, "orientation": orientation}
        if len(mosaic) not in (0, len(files)) or len(multi) not in (0, len(files)):
            raise ImageIOError(where, "the series mixes mosaic or multi-frame files with single-slice files")
        ordered = sorted(files, key=lambda f: (f.acquisition_time_s or 0.0, f.instance or 0, f.path))
        return {"route": "dcm2niix", "files": [f.path for f in ordered], "size": (None, None, None),
                "volumes": len(files) if mosaic else None, "orientation": orientation, "ordered": ordered}
    sizes = {(f.rows, f.columns) for f in files}
    if len(sizes) > 1:
        text = _counted([f"{f.columns}x{f.rows}" for f in files], "size", files, lambda f: f"{f.columns}x{f.rows}")
        raise ImageIOError(where, f"the series' files have different image sizes ({text}); they are not one volume")
    if any(f.orientation is None or f.position is None for f in files):
        if all(f.position is None for f in files) and len(files) > 0:
            ordered = sorted(files, key=lambda f: (f.instance or 0, f.path))
            return {"route": "gdcm", "files": [f.path for f in ordered], "size": (first.columns, first.rows, len(files)),
                    "volumes": 1, "orientation": None, "positions": None}
        missing = [f.path for f in files if f.orientation is None or f.position is None]
        raise ImageIOError(
            where,
            f"{len(missing)} of {len(files)} files have no ImagePositionPatient/ImageOrientationPatient "
            f"(e.g. {missing[0]}); the slices cannot be placed",
        )
    cosines = np.array([f.orientation for f in files])
    if np.abs(cosines - cosines[0]).max() > ORIENTATION_TOL:
        labels = [",".join(f"{v:.3f}" for v in f.orientation) for f in files]
        text = _counted(labels, "orientation", files, lambda f: ",".join(f"{v:.3f}" for v in f.orientation))
        raise ImageIOError(
            where, f"the series' files have different orientations ({text}); they are not one volume (a localizer?)"
        )
    row, col = np.asarray(orientation[:3]), np.asarray(orientation[3:])
    normal = np.cross(row, col)
    positions = np.array([f.position for f in files])
    along = positions @ normal
    keys = np.round(along / POSITION_TOL_MM).astype(np.int64)
    counts = Counter(keys.tolist())
    per_position = set(counts.values())
    if len(per_position) > 1:
        common = Counter(counts.values()).most_common(1)[0][0]
        odd = sorted((k for k, n in counts.items() if n != common), key=lambda k: k)[:3]
        detail = ", ".join(f"{k * POSITION_TOL_MM:.2f} mm ({counts[k]} files)" for k in odd)
        raise ImageIOError(
            where,
            f"slice positions occur a different number of times ({len(counts)} positions, most with {common} "
            f"file(s), but {detail} along the normal): files are missing or duplicated, so the volumes "
            "cannot be separated",
        )
    n_volumes = per_position.pop()
    order = np.lexsort((np.array([f.instance or 0 for f in files]), along))
    ordered = [files[i] for i in order]
    if n_volumes == 1:
        return {"route": "gdcm", "files": [f.path for f in ordered], "size": (first.columns, first.rows, len(files)),
                "volumes": 1, "orientation": orientation, "positions": positions[order], "ordered": ordered}
    unique = np.unique(keys, return_index=True)[1]
    return {"route": "dcm2niix", "files": [f.path for f in ordered], "size": (first.columns, first.rows, len(counts)),
            "volumes": n_volumes, "orientation": orientation, "ordered": ordered,
            "slice_positions": positions[unique]}


def _volume_groups(layout: dict) -> list[list[FileInfo]]:
    """The files of each volume, slices in order along the normal (volume = k-th file per position)."""
    ordered: list[FileInfo] = layout.get("ordered") or []
    n = layout.get("volumes")
    if not ordered or not n:
        return []
    if ordered[0].mosaic:
        return [[f] for f in ordered]
    if ordered[0].position is None or ordered[0].orientation is None:
        return []
    o = np.asarray(ordered[0].orientation, float)
    normal = np.cross(o[:3], o[3:])
    by_position: dict = {}
    for f in ordered:
        by_position.setdefault(int(round(float(np.dot(f.position, normal)) / POSITION_TOL_MM)), []).append(f)
    stacks = [
        sorted(by_position[key], key=lambda f: (f.temporal_position or 0, f.acquisition_time_s or 0.0, f.instance or 0))
        for key in sorted(by_position)
    ]
    return [[stack[v] for stack in stacks] for v in range(n)]


def _per_volume_times(layout: dict) -> dict:
    """Acquisition and trigger times of each volume from the headers (volume = k-th file per slice)."""
    groups = _volume_groups(layout)
    if not groups:
        return {}
    out = {}
    for key, attr in (("acquisition_times_s", "acquisition_time_s"), ("trigger_times_ms", "trigger_time_ms")):
        values = [[getattr(f, attr) for f in g if getattr(f, attr) is not None] for g in groups]
        if all(values) and len({min(v) for v in values}) > 1:
            out[key] = [min(v) for v in values]
    return out


# --------------------------------------------------------------------------- reading


def read_series(
    folder: str, *, series_uid: str | None, pet_units: str, progress=None, max_bytes: int | None = None
) -> sitk.Image:
    """Read one DICOM series as a 3D or 4D image (see :func:`medlab.io.read`).

    ``max_bytes`` bounds the voxel data the headers declare (8 bytes a voxel: the widest type a
    rescaled series is read as) before anything is decoded; see :func:`medlab.io.read`.
    """
    started = None
    if series_uid is None:
        image = _flat_single_series(folder, pet_units, max_bytes=max_bytes)
        if image is not None:
            return image
        if _flat_mr_folder(folder):
            # MR that dcm2niix converts: start it now, beside the header scan (see _dcm2niix.Started)
            started = _dcm2niix.Started(folder)
    try:
        info = select_series(folder, series_uid=series_uid, progress=progress)
        layout = _layout(info, where=folder)
        _check_declared_bytes(info, layout, folder, max_bytes)
        layout["whole_folder"] = info.whole_folder and len(layout["files"]) == len(info.files)
        layout["started"] = started
        layout["modality"] = info.modality
        if layout["route"] == "file" or len(layout["files"]) == 1 and layout["route"] == "gdcm":
            return read_dicom_file(layout["files"][0], pet_units=pet_units, max_bytes=max_bytes)
        # a converter may read a file cut short without a word (dcm2niix does, e.g. when the pixel
        # data's declared length was cut too): every file's pixel data must hold its image
        _scan.check_pixel_data(layout.get("ordered") or [])
        modality = (info.modality or "").upper()
        if layout["route"] == "dcm2niix":
            mosaics = [f for f in layout["ordered"] if f.mosaic]
            if mosaics:
                layout["native_refusal"] = _native.refusal(layout, layout.get("modality"))
                if layout["native_refusal"] is not None:
                    # anonymisers strip the CSA header from a whole series: the first file tells
                    check_mosaic_header(mosaics[0].path)
            image = _convert(layout, folder)
            return _pet_units_4d(image, layout, pet_units, folder) if modality == "PT" else image
        if modality == "MR" and _regular(layout):
            # 3D MR through dcm2niix too: one converter for all MR, with its vendor rules (e.g.
            # Philips' precise scaling) and acquisition metadata (slice timing, phase encoding).
            try:
                return _convert({**layout, "slice_positions": layout["positions"]}, folder)
            except ImageIOError as exc:
                import warnings

                warnings.warn(
                    f"{folder}: dcm2niix did not make one volume of this MR series ({exc.reason}); "
                    "read by SimpleITK's DICOM reader instead, without acquisition metadata",
                    DicomWarning,
                    stacklevel=3,
                )
        return _read_volume(layout, folder, pet_units, modality=modality)
    finally:
        if started is not None:
            started.close()


def _check_declared_bytes(info, layout: dict, folder: str, max_bytes: int | None) -> None:
    from medlab.io import _guard

    limit = _guard.max_bytes(max_bytes)
    chosen = set(layout["files"])
    voxels = sum(
        int(f.rows or 0) * int(f.columns or 0) * max(int(f.frames or 1), 1) for f in info.files if f.path in chosen
    )
    if voxels * 8 > limit:
        raise ImageIOError(
            folder,
            f"the {len(chosen)} files' Rows x Columns x NumberOfFrames declare {voxels} voxels "
            f"({voxels * 8 / 2**20:.6g} MiB at 8 bytes each), above the limit of {limit / 2**20:.6g} MiB "
            "(pass max_bytes= to medlab.io.read, or set medlab.io.MAX_BYTES, if the data are trusted)",
        )


def _convert(layout: dict, folder: str) -> sitk.Image:
    first = (layout.get("ordered") or [None])[0]
    positions = layout.get("slice_positions")
    if positions is not None and len(positions) > 2:
        o = np.asarray(layout["orientation"], float)
        warn_if_nonuniform(np.diff(np.sort(positions @ np.cross(o[:3], o[3:]))), folder, stacklevel=4)
    if "native_refusal" in layout:  # a mosaic series: asked before the CSA header check
        refused = layout["native_refusal"]
    else:
        refused = _native.refusal(layout, layout.get("modality"))
    if refused is None:
        started = layout.get("started")
        if started is not None:  # the whole-folder conversion is not needed: stop it
            started.close()
            layout["started"] = None
        image = _native.read(layout, _volume_groups(layout), folder, per_volume=_per_volume_times(layout),
                             stacklevel=5)  # read < _convert < read_series < read < caller
        if image is not None:
            return image
    # the spot check's pixels are read first: while a dcm2niix started early is still running
    expected = _spot_pixels(layout) if positions is not None and not first.mosaic else []
    image = _dcm2niix_convert(layout, folder, first, positions)
    _spot_check(image, expected, folder)
    return image


def _spot_pixels(layout: dict) -> list:
    """(volume, slice, path, stored pixels) of the first slice of the first volume and the last
    slice of the last volume, as the headers place them."""
    groups = _volume_groups(layout)
    if not groups:
        return []
    return [
        (v, k, groups[v][k].path, np.asarray(open_dicom(groups[v][k].path).pixel_array, float))
        for v, k in ((0, 0), (len(groups) - 1, len(groups[-1]) - 1))
    ]


def _spot_check(image: sitk.Image, expected: list, folder: str) -> None:
    """The slices of :func:`_spot_pixels` must hold the pixels of the files that the headers
    put there (dcm2niix sorts files by its own rules).

    Compared by correlation, so a vendor scaling (e.g. Philips' precise values) does not matter.
    """
    if not expected:
        return
    arr = sitk.GetArrayViewFromImage(image)
    arr = arr[np.newaxis] if image.GetDimension() == 3 else arr
    for v, k, path, stored in expected:
        mine = np.asarray(arr[v, k], float)
        if stored.shape != mine.shape or stored.std() == 0 or mine.std() == 0:
            continue
        if np.corrcoef(stored.ravel(), mine.ravel())[0, 1] < 0.99:
            raise ImageIOError(
                folder,
                f"dcm2niix did not put {path} at volume {v}, slice {k}, where its position and time "
                "(ImagePositionPatient, TemporalPositionIdentifier, AcquisitionTime, InstanceNumber) put it; "
                "the series' ordering is ambiguous, so it is not read",
            )


def _dcm2niix_convert(layout: dict, folder: str, first, positions) -> sitk.Image:
    return _dcm2niix.convert(
        layout["files"],
        folder,
        orientation=layout["orientation"],
        positions=layout.get("slice_positions"),
        pixel_spacing=first.pixel_spacing if first is not None else None,
        per_volume=_per_volume_times(layout),
        stacklevel=6,  # convert < _dcm2niix_convert < _convert < read_series < read < caller
        folder=folder if layout.get("whole_folder") else None,
        started=layout.get("started"),
    )


def _pet_units_4d(image: sitk.Image, layout: dict, pet_units: str, folder: str) -> sitk.Image:
    """PET converted by dcm2niix (rescaled stored values, e.g. Bq/mL) in the requested units."""
    meta = dataset_metadata(open_dicom(layout["files"][0], header_only=True), identifying=True)
    if pet_units == "suv" and str(meta.get("decay_correction") or "").upper() == "NONE":
        raise ImageIOError(
            folder,
            "multi-volume PET without decay correction (DecayCorrection NONE): SUV would need each "
            "slice's own decay factor; read it with pet_units='bqml'",
        )
    factor = pet_scale(meta, pet_units, folder)
    if factor is None:
        return image
    kept = volume_metadata(image)
    scaled = sitk.GetImageFromArray(
        sitk.GetArrayViewFromImage(image).astype(np.float32) * np.float32(factor), isVector=False
    )
    scaled.CopyInformation(image)
    return attach(scaled, kept)


def _regular(layout: dict) -> bool:
    """Whether a 3D layout has uniformly spaced slices along the normal of at least 2 files."""
    positions = layout.get("positions")
    if positions is None or len(positions) < 2 or layout.get("orientation") is None:
        return False
    o = np.asarray(layout["orientation"], float)
    normal = np.cross(o[:3], o[3:])
    steps = np.diff(positions @ normal)
    mean = float(steps.mean())
    path = positions[-1] - positions[0]
    tilt = np.degrees(np.arccos(np.clip(abs(path @ normal) / np.linalg.norm(path), -1.0, 1.0)))
    return bool(np.abs(steps - mean).max() <= UNIFORM_TOL * abs(mean) + 1e-4 and tilt <= TILT_TOL_DEG)


def _flat_mr_folder(folder: str) -> bool:
    """Whether ``folder`` has no subfolders and its first DICOM file is MR that dcm2niix will
    convert: not a file that the native route (:mod:`medlab.io._native`) would read."""
    try:
        with os.scandir(folder) as it:
            entries = sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)
        if any(e.is_dir() for e in entries):
            return False
        probe = next((e.path for e in entries if e.is_file() and is_dicom_file(e.path)), None)
    except OSError:
        return False
    return probe is not None and _peek_modality(probe) == "MR" and not _native.likely(probe)


def _peek_modality(path: str) -> str:
    import pydicom

    try:
        return str(_tags.read(path, {0x00080060: "Modality"}, 0x00080060, {0x00080060: b"CS"}).get("Modality") or "").upper()
    except Exception:  # noqa: BLE001 - not a plain file: pydicom below
        pass
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["Modality"], force=True)
        return str(ds.get("Modality") or "").strip().upper()
    except Exception:  # noqa: BLE001 - the full scan reports unreadable files
        return ""


def _flat_single_series(folder: str, pet_units: str, *, max_bytes: int | None = None) -> sitk.Image | None:
    """A CT, PET or other non-MR 3D series alone in a flat folder, found and read by GDCM.

    GDCM's C++ scanner is several times faster than parsing every header in Python; the
    per-slice dictionaries of the read then give the same checks as the full scan. Returns
    None (the caller scans the folder) whenever anything is not plainly one 3D series: a
    subfolder, a file outside the series, MR (dcm2niix), a mosaic or multi-frame file,
    repeated positions (several volumes), several orientations or sizes.
    """
    try:
        with os.scandir(folder) as it:
            entries = [e for e in it if not e.name.startswith(".")]
        if any(e.is_dir() for e in entries):
            return None
        count = sum(1 for e in entries if e.is_file())
        if count < 2:
            return None
        probe = next((e.path for e in entries if e.is_file() and is_dicom_file(e.path)), None)
        if probe is None or _peek_modality(probe) == "MR":  # MR goes to dcm2niix: no GDCM scan
            return None
        files = tuple(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(folder))
        if len(files) != count:
            return None
        ds = open_dicom(files[0], header_only=True)
    except (OSError, RuntimeError, ImageIOError):
        return None
    modality = str(ds.get("Modality") or "").upper()
    if modality == "MR" or is_mosaic(ds) or int(ds.get("NumberOfFrames") or 1) > 1:
        return None
    # the memory bound before GDCM decodes anything: the first header's size for every file (a
    # file that declares more is refused by the full scan, which the caller runs on any doubt)
    from medlab.io import _guard

    try:
        voxels = int(ds.get("Rows") or 0) * int(ds.get("Columns") or 0) * count
    except (TypeError, ValueError):
        return None
    limit = _guard.max_bytes(max_bytes)
    if voxels * 8 > limit:
        raise ImageIOError(
            folder,
            f"the {count} files' Rows x Columns declare {voxels} voxels ({voxels * 8 / 2**20:.6g} MiB at "
            f"8 bytes each), above the limit of {limit / 2**20:.6g} MiB (pass max_bytes= to "
            "medlab.io.read, or set medlab.io.MAX_BYTES, if the data are trusted)",
        )
    # GDCM reads a file whose pixel data was cut short (declared length too) without a word:
    # on any doubt the full scan decides, and names the file (see _scan.check_pixel_data)
    if not _pixel_data_plain(files, ds):
        return None
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    reader.MetaDataDictionaryArrayUpdateOn()
    try:
        img = _execute(reader, folder, files)
        positions = np.array([[float(v) for v in _slice_tag(reader, i, "0020|0032").split("\\")] for i in range(count)])
        cosines = np.array([[float(v) for v in _slice_tag(reader, i, "0020|0037").split("\\")] for i in range(count)])
    except (ImageIOError, ValueError):
        return None
    if positions.shape != (count, 3) or cosines.shape != (count, 6) or img.GetDimension() != 3:
        return None
    if np.abs(cosines - cosines[0]).max() > ORIENTATION_TOL or img.GetSize()[2] != count:
        return None
    along = positions @ np.cross(cosines[0, :3], cosines[0, 3:])
    steps = np.diff(along)
    if np.any(steps <= POSITION_TOL_MM):  # repeated positions or not in order: the full scan decides
        return None
    layout = {"files": files, "positions": positions, "orientation": tuple(cosines[0])}
    return _read_volume(layout, folder, pet_units, modality=modality, done=(reader, img), depth=1)


def _pixel_data_plain(files, first) -> bool:
    """Whether every one of ``files`` has pixel data that holds an image of the header ``first``
    (pydicom dataset), by medlab's header reader (see :func:`medlab.io._scan.pixel_data_problem`)."""
    try:
        attrs = (int(first.Rows), int(first.Columns), 1, first.get("SamplesPerPixel"), first.get("BitsAllocated"))
        for path in files:
            values = _tags.read(path, {}, 0, {}, pixel_data=True)
            located = values.get("PixelData", ())
            if located is None or _scan.located_pixel_data_problem(located, values["TransferSyntaxUID"], *attrs):
                return False
    except (_tags.Fallback, OSError, TypeError, ValueError):
        return False
    return True


def _read_volume(layout: dict, folder: str, pet_units: str, *, modality: str, done=None, depth: int = 0) -> sitk.Image:
    """Decode a 3D layout with GDCM (or finish ``done`` = (reader, image)); ``depth``: extra
    call levels between :func:`medlab.io.read` and here, for warnings to name the caller."""
    files = layout["files"]
    if done is None:
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames(files)
        # Per-slice dictionaries cost nothing measurable and give every slice's rescale values.
        reader.MetaDataDictionaryArrayUpdateOn()
        img = _execute(reader, folder, files)
    else:
        reader, img = done
    if img.GetPixelID() not in (sitk.sitkFloat32, sitk.sitkFloat64) and _fractional_rescale(reader, len(files)):
        # Slices have their own RescaleSlope/Intercept (PET always): GDCM picked an integer
        # type from the first slice, which would truncate the others. Read again as float.
        reader.SetOutputPixelType(sitk.sitkFloat32)
        img = _execute(reader, folder, files)
    if img.GetDimension() != 3 or img.GetSize()[2] != len(files):
        raise ImageIOError(
            folder,
            f"the series holds {len(files)} files but gave size {img.GetSize()}; "
            f"read each file on its own: {files[0]}, ...",
        )
    if layout.get("positions") is not None:
        _set_geometry(img, layout["positions"], layout["orientation"], folder, depth=depth)
    if modality == "PT":
        img = _pet_units(img, files, pet_units, folder)
    return attach(img, {"source": "gdcm"})


def _set_geometry(img: sitk.Image, positions: np.ndarray, orientation, folder: str, *, depth: int = 0) -> None:
    """Origin, z spacing and direction from the sorted slice positions (exact, tilt included)."""
    row, col = np.asarray(orientation[:3], float), np.asarray(orientation[3:], float)
    normal = np.cross(row, col)
    n = len(positions)
    third = normal
    if n > 1:
        path = positions[-1] - positions[0]
        step = float(np.linalg.norm(path)) / (n - 1)
        warn_if_nonuniform(np.diff(positions @ normal), folder, stacklevel=5 + depth)
        third = path / np.linalg.norm(path)
        tilt = float(np.degrees(np.arccos(np.clip(abs(third @ normal), -1.0, 1.0))))
        if tilt > TILT_TOL_DEG:
            import warnings

            warnings.warn(
                f"{folder}: the slices are tilted by {tilt:.2f} degrees from the slice normal (gantry or "
                "detector tilt); the image keeps every voxel at its DICOM position with a non-orthogonal "
                "direction matrix (third column along the slice positions); resample it onto an orthogonal "
                "grid (medlab.registration.resample) before filters that assume one",
                DicomWarning,
                stacklevel=5 + depth,
            )
        else:
            third = normal if third @ normal > 0 else -normal
        img.SetSpacing((*img.GetSpacing()[:2], step))
    img.SetOrigin(tuple(float(v) for v in positions[0]))
    img.SetDirection(tuple(np.column_stack([row, col, third]).ravel().tolist()))


def _execute(reader: sitk.ImageSeriesReader, folder: str, files) -> sitk.Image:
    try:
        return reader.Execute()
    except RuntimeError as exc:
        raise ImageIOError(folder, f"cannot read the DICOM series ({len(files)} files): {itk_reason(exc)}") from exc


def _slice_tag(reader: sitk.ImageSeriesReader, index: int, tag: str) -> str:
    try:
        return reader.GetMetaData(index, tag).strip() if reader.HasMetaDataKey(index, tag) else ""
    except (RuntimeError, UnicodeDecodeError):
        return ""


def _fractional_rescale(reader: sitk.ImageSeriesReader, n: int) -> bool:
    """Whether any slice has a non-integer RescaleSlope or RescaleIntercept."""
    for i in range(n):
        for tag in ("0028|1053", "0028|1052"):
            text = _slice_tag(reader, i, tag)
            try:
                if text and not float(text).is_integer():
                    return True
            except ValueError:
                continue
    return False


def _pet_units(img: sitk.Image, files, pet_units: str, folder: str) -> sitk.Image:
    meta = dataset_metadata(open_dicom(files[0], header_only=True), identifying=True)
    if str(meta.get("decay_correction") or "").upper() == "NONE" and pet_units == "suv":
        # Not decay corrected: every slice is corrected from its own acquisition time.
        factors = [
            pet_scale(dataset_metadata(open_dicom(f, header_only=True), identifying=True), pet_units, f) for f in files
        ]
        arr = to_array(img) * np.asarray(factors, np.float32)[:, None, None]
        return copy_geometry(arr.astype(np.float32), img)
    factor = pet_scale(meta, pet_units, folder)
    img = sitk.Cast(img, sitk.sitkFloat32) if img.GetPixelID() != sitk.sitkFloat32 else img
    return img if factor is None else img * float(factor)
