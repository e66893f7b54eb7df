"""Multi-volume DICOM (4D series, Siemens mosaic, enhanced multi-frame MR) through dcm2niix.

Why dcm2niix: measured on dcm2niix's NIH validation corpus (GE and Siemens EPI, 8 series; see
the issue note and ``benchmarks/bench_dicom.py``), the dcm2niix binary (PyPI ``dcm2niix``)
and ``dicom2nifti`` both reproduce the reference volumes exactly, dcm2niix about ten times
faster; dcm2niix also knows the vendor rules (mosaic CSA headers, GE/Philips/Canon private
tags, slice timing, diffusion vectors) of corpora not seen here. medlab keeps to what it must
add: a ``SimpleITK.Image`` with exact LPS geometry in DICOM row/column order, per-volume
metadata, ``ImageIOError``/``DicomWarning`` instead of console text, and no files left behind.

The binary runs in a private temporary folder that holds links to the series' files and its
output; the folder is removed whatever happens. Its console output is captured: its warnings
become :class:`~medlab.io.DicomWarning`, its errors the reason of an ``ImageIOError``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import warnings

import numpy as np
import SimpleITK as sitk

from medlab.errors import ImageIOError
from medlab.io._common import DicomWarning, itk_reason
from medlab.io._volumes import attach, geometry_4d

# dcm2niix reports these facts as "Warning:" although nothing is assumed about the image
# (Issue870: the slice-timing range of a volume compared with its TR; an empty protocol name
# only changes dcm2niix's file name). Kept out of warnings.
_INFORMATIONAL = ("Issue870", "Empty protocol name")

# Grids of the parts dcm2niix writes for one series must agree to this (mm) to be stacked.
_GRID_TOL_MM = 1e-3


def binary() -> str:
    """Path of the dcm2niix executable shipped by the ``dcm2niix`` wheel."""
    try:
        import dcm2niix
    except ImportError as exc:  # pragma: no cover - a core dependency
        raise ImportError(
            "reading multi-volume DICOM needs the package 'dcm2niix' (pip install dcm2niix)"
        ) from exc
    return dcm2niix.bin


def version() -> str:
    try:
        import dcm2niix

        return str(dcm2niix.__version__)
    except ImportError:  # pragma: no cover
        return "?"


#: A memory file system for dcm2niix's links and output, when it has room (see :func:`scratch`).
SHM = "/dev/shm"


def _entries(folder: str) -> list:
    try:
        with os.scandir(folder) as it:
            return [e for e in it if e.is_file()]
    except OSError:
        return []


def _sizes(paths) -> int:
    total = 0
    for path in paths:
        try:
            total += os.path.getsize(path)
        except OSError:
            pass
    return total


def scratch(nbytes: int) -> str | None:
    """Folder for a conversion of ``nbytes`` of DICOM: :data:`SHM` when it is a writable
    memory file system with room for four times that (dcm2niix's output, then the image
    loaded from it), else None (the system's temporary folder).

    Creating and removing a conversion's links and output on a disk file system (an ext4
    /tmp) takes long next to a memory one (``benchmarks/bench_dicom.py``); a large series
    keeps to the disk.
    """
    try:
        if nbytes <= 1 << 30 and os.access(SHM, os.W_OK):
            st = os.statvfs(SHM)
            if st.f_bavail * st.f_frsize > 4 * nbytes + (64 << 20):
                return SHM
    except OSError:
        pass
    return None


def _link(files, folder: str) -> None:
    for i, path in enumerate(files):
        target = os.path.join(folder, f"{i:06d}.dcm")
        try:
            os.symlink(os.path.abspath(path), target)
        except OSError:  # file systems without symbolic links
            shutil.copyfile(path, target)


def _command(src: str, out: str) -> list[str]:
    return [binary(), "-g", "i", "-b", "y", "-ba", "n", "-z", "n", "-w", "1", "-d", "0", "-f", "%s_%j", "-o", out, src]


def _run(files, where: str, tmp: str, folder: str | None) -> tuple[list[str], list[str]]:
    """Run dcm2niix on ``files`` (or on ``folder``, which holds them and no other DICOM file);
    return (output .nii paths, warning lines)."""
    src, out = os.path.join(tmp, "in"), os.path.join(tmp, "out")
    os.mkdir(out)
    if folder is None:
        os.mkdir(src)
        _link(files, src)
    else:  # no links to make and remove (unlinking is not free on every file system)
        src = folder
    try:
        done = subprocess.run(_command(src, out), capture_output=True, text=True, errors="replace", timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ImageIOError(where, f"dcm2niix could not run: {exc}") from exc
    return _outputs(done.returncode, done.stdout + "\n" + done.stderr, out, where, len(files))


def _outputs(returncode: int, text: str, out: str, where: str, n_files: int) -> tuple[list[str], list[str]]:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    niftis = sorted(os.path.join(out, n) for n in os.listdir(out) if n.endswith(".nii"))
    errors = [ln for ln in lines if ln.lower().startswith("error")]
    if returncode != 0 or not niftis:
        said = "; ".join(errors or lines[-3:]) or f"exit status {returncode}"
        raise ImageIOError(where, f"dcm2niix could not convert this DICOM series ({n_files} files): {said}")
    found = [ln for ln in lines if ln.lower().startswith("warning") and not any(k in ln for k in _INFORMATIONAL)]
    return niftis, found


def _exited(proc: subprocess.Popen, timeout: float) -> bool:
    """Wait for ``proc`` to end (True) or ``timeout`` seconds (False).

    ``Popen.wait(timeout)`` polls with sleeps of up to 50 ms, which would add up to 50 ms to
    every read; a pidfd wakes as soon as the process ends (Linux 5.3 and later).
    """
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # other systems: the polling wait
        try:
            proc.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            return False
    try:
        import select

        return bool(select.select([fd], [], [], timeout)[0]) or proc.poll() is not None
    finally:
        os.close(fd)


class Started:
    """dcm2niix already running on a whole folder, before the folder's scan has decided.

    Reading a folder of MR files scans every header in Python, then converts the series with
    dcm2niix; both read every file. Started first, dcm2niix runs on the second core during
    the scan. Its result is taken only when the scan decides exactly that conversion (one
    series filling the folder: :func:`convert` with the same ``folder``); otherwise the
    process is stopped and its folder removed. Use as a context manager: the process never
    outlives the ``with`` block, and its temporary folder is always removed.

    With ``files`` instead of ``folder``, it converts those files only (the sample volumes
    of :mod:`medlab.io._native`); ``folder`` is then None.
    """

    def __init__(self, folder: str | None = None, *, files=None):
        self.folder = folder
        self._tmp = tempfile.TemporaryDirectory(prefix="medlab-dcm2niix-", dir=scratch(
            _sizes(files) if files is not None else _sizes(e.path for e in _entries(folder))))
        self.out = os.path.join(self._tmp.name, "out")
        os.mkdir(self.out)
        if files is not None:  # these files only, through links (see _run)
            folder = os.path.join(self._tmp.name, "in")
            os.mkdir(folder)
            _link(files, folder)
        self._log = open(os.path.join(self._tmp.name, "log.txt"), "w+b")  # no pipe to fill up
        try:
            self._proc = subprocess.Popen(_command(folder, self.out), stdout=self._log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL)
        except (OSError, ImportError):
            self._proc = None  # convert(), if the scan needs it, runs it again and reports the failure

    def result(self, where: str, n_files: int) -> tuple[list[str], list[str]] | None:
        """(output .nii paths, warning lines) once dcm2niix has finished; None if it could not start."""
        if self._proc is None:
            return None
        if not _exited(self._proc, 600.0):
            raise ImageIOError(where, "dcm2niix could not run: no result after 600 s")
        returncode = self._proc.wait()
        self._log.seek(0)
        return _outputs(returncode, self._log.read().decode("utf-8", "replace"), self.out, where, n_files)

    def close(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._log.close()
        self._tmp.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _load_part(nii: str, where: str) -> dict:
    try:
        img = sitk.ReadImage(nii)
    except RuntimeError as exc:
        raise ImageIOError(where, f"cannot load dcm2niix's output: {itk_reason(exc)}") from exc
    stem = nii[: -len(".nii")]
    sidecar = {}
    if os.path.exists(stem + ".json"):
        # dcm2niix copies header strings into its sidecar: a corrupted header can put control
        # characters or invalid UTF-8 there (seen by the reader fuzz test).
        try:
            with open(stem + ".json", encoding="utf-8", errors="replace") as fh:
                sidecar = json.load(fh, strict=False)
        except ValueError as exc:
            raise ImageIOError(where, f"dcm2niix's metadata sidecar is unreadable ({exc}): corrupted DICOM header") from exc
    arr = sitk.GetArrayFromImage(img)  # (t, z, y, x) or (z, y, x)
    if arr.ndim == 3:
        arr = arr[np.newaxis]
    dim = img.GetDimension()
    d = np.asarray(img.GetDirection(), float).reshape(dim, dim)[:3, :3]
    part = {
        "name": os.path.basename(nii),
        "array": arr,
        "spacing": np.asarray(img.GetSpacing()[:3], float),
        "origin": np.asarray(img.GetOrigin()[:3], float),
        "direction": d,
        "sidecar": sidecar,
        "bvals": None,
        "bvecs": None,
    }
    if os.path.exists(stem + ".bval") and os.path.exists(stem + ".bvec"):
        part["bvals"] = np.loadtxt(stem + ".bval", ndmin=1)
        bvecs = np.loadtxt(stem + ".bvec", ndmin=2)
        # FSL convention: components along the voxel axes, the first one negated when the
        # NIfTI (RAS) affine has a positive determinant. LPS flips x and y, not the sign of
        # the determinant of the 3x3 part times diag(-1, -1, 1): det(RAS) = det(LPS).
        if np.linalg.det(d * part["spacing"]) > 0:
            bvecs = bvecs * np.array([[-1.0], [1.0], [1.0]])
        part["bvecs"] = bvecs.T  # (volumes, 3), image frame of the NIfTI's voxel axes
    return part


def _same_grid(a: dict, b: dict) -> bool:
    return (
        a["array"].shape[1:] == b["array"].shape[1:]
        and np.allclose(a["spacing"], b["spacing"], atol=_GRID_TOL_MM)
        and np.allclose(a["origin"], b["origin"], atol=_GRID_TOL_MM)
        and np.allclose(a["direction"], b["direction"], atol=1e-6)
    )


def _flip_to_dicom(part: dict, orientation) -> list[int]:
    """Flip axes so that x runs along the DICOM rows, y down the columns, z along the normal.

    dcm2niix stores rows bottom-up (NIfTI convention); this restores DICOM's pixel order, the
    one SimpleITK's DICOM reader gives, without changing any voxel's world position.
    Returns the flipped axes (0 = x, 1 = y, 2 = z).
    """
    if orientation is None:
        return []
    row, col = np.asarray(orientation[:3], float), np.asarray(orientation[3:], float)
    targets = (row, col, np.cross(row, col))
    flipped = []
    d, arr = part["direction"], part["array"]
    for axis, target in enumerate(targets):
        if float(d[:, axis] @ target) < -0.5:
            flipped.append(axis)
            n = arr.shape[3 - axis]
            part["origin"] = part["origin"] + d[:, axis] * part["spacing"][axis] * (n - 1)
            d[:, axis] = -d[:, axis]
            arr = np.flip(arr, axis=3 - axis)
    part["array"] = np.ascontiguousarray(arr)
    return flipped


def _pe_direction(text, flipped: list[int]):
    if not text or text[0] not in "ijk":
        return None
    axis = "ijk".index(text[0])
    negative = text.endswith("-")
    if axis in flipped:
        negative = not negative
    return text[0] + ("-" if negative else "")


def _exact_geometry(part: dict, positions, where: str, orientation, pixel_spacing) -> None:
    """Check the converted grid against the DICOM geometry, then take the DICOM values.

    ``positions``: ImagePositionPatient (mm, LPS) of the distinct slices, any order. The first
    voxel of slice k, and the far in-plane corner of each slice, must lie where the DICOM
    header puts them within 0.01 mm; otherwise ImageIOError (never a silently misplaced
    volume). Then origin, spacing and direction are set from ImagePositionPatient,
    ImageOrientationPatient and PixelSpacing themselves, not from their float32 NIfTI copies.
    """
    positions = np.asarray(positions, float).reshape(-1, 3)
    d, sp, origin = part["direction"], part["spacing"], part["origin"]
    nz, ny, nx = part["array"].shape[1:4]
    if len(positions) != nz:
        raise ImageIOError(
            where, f"dcm2niix made {nz} slices per volume from {len(positions)} distinct DICOM slice positions"
        )
    positions = positions[np.argsort(positions @ d[:, 2])]
    mine = origin + np.arange(nz)[:, None] * sp[2] * d[:, 2]
    error = float(np.abs(mine - positions).max())
    exact = None
    if orientation is not None and pixel_spacing is not None:
        row, col = np.asarray(orientation[:3], float), np.asarray(orientation[3:], float)
        dy, dx = (float(v) for v in pixel_spacing)
        far = positions + (nx - 1) * dx * row + (ny - 1) * dy * col
        mine_far = mine + (nx - 1) * sp[0] * d[:, 0] + (ny - 1) * sp[1] * d[:, 1]
        error = max(error, float(np.abs(mine_far - far).max()))
        if nz > 1:
            path = positions[-1] - positions[0]
            third, step = path / np.linalg.norm(path), float(np.linalg.norm(path)) / (nz - 1)
        else:
            third, step = np.cross(row, col), float(sp[2])
        exact = np.column_stack([row, col, third]), np.array([dx, dy, step])
    if error > 0.01:
        raise ImageIOError(
            where,
            f"dcm2niix placed the slices up to {error:.3g} mm from their DICOM positions (ImagePositionPatient); "
            "the series' geometry is inconsistent, so it is not read",
        )
    part["origin"] = positions[0].copy()
    if exact is not None:
        part["direction"], part["spacing"] = exact


def convert(
    files,
    where: str,
    *,
    orientation=None,
    positions=None,
    pixel_spacing=None,
    per_volume: dict | None = None,
    stacklevel: int = 4,
    folder: str | None = None,
    started: Started | None = None,
) -> sitk.Image:
    """Convert the DICOM ``files`` of one series with dcm2niix into a 3D or 4D image.

    Parameters
    ----------
    files : sequence of str
        The series' files (any order).
    where : str
        Path named in errors and warnings (the folder or file the user gave).
    orientation : 6 floats, optional
        ImageOrientationPatient of the series: the result's axes follow its rows, columns and
        normal.
    positions : (N, 3) array, optional
        ImagePositionPatient of the distinct slices (not for mosaics, whose header position
        is that of the tiled picture): the result is checked against them and takes its
        geometry from them.
    pixel_spacing : (row, column) mm, optional
        PixelSpacing, with ``positions`` and ``orientation``: the exact in-plane geometry.
    per_volume : dict, optional
        Per-volume lists computed from the DICOM headers (acquisition times, trigger times),
        kept when their length equals the number of volumes.
    stacklevel : int
        For dcm2niix's warnings: frames between here and the user's call, plus one.
    folder : str, optional
        A folder whose DICOM files are exactly ``files`` (no subfolders): dcm2niix reads it
        directly instead of links to the files.
    started : Started, optional
        dcm2niix already running; its result is used when it was started on ``folder``.
    """
    done = started.result(where, len(files)) if started is not None and folder == started.folder else None
    if done is not None:
        niftis, found = done
        parts = [_load_part(n, where) for n in niftis]
    else:
        with tempfile.TemporaryDirectory(prefix="medlab-dcm2niix-", dir=scratch(_sizes(files))) as tmp:
            niftis, found = _run(files, where, tmp, folder)
            parts = [_load_part(n, where) for n in niftis]
    for line in found:
        warnings.warn(f"{where}: dcm2niix: {line}", DicomWarning, stacklevel=stacklevel)
    first = parts[0]
    for part in parts[1:]:
        if not _same_grid(first, part):
            listing = "; ".join(f"{p['name']}: {p['array'].shape[::-1][:3]} voxels, {p['array'].shape[0]} volume(s)" for p in parts)
            raise ImageIOError(
                where,
                f"dcm2niix splits this series into {len(parts)} images on different grids ({listing}); "
                "they are not one 3D/4D image: read them from separate folders",
            )
    parts.sort(key=lambda p: (float(p["sidecar"].get("EchoTime") or 0.0), p["name"]))
    for part in parts:
        to_dicom_grid(part, where, orientation=orientation, positions=positions, pixel_spacing=pixel_spacing)
    return assemble(parts, per_volume)


def to_dicom_grid(part: dict, where: str, *, orientation, positions, pixel_spacing) -> None:
    """Put a converted part (see :func:`_load_part`) in DICOM row/column/normal order and, with
    ``positions``, check its grid against the DICOM geometry and take the DICOM values."""
    part["flipped"] = _flip_to_dicom(part, orientation)
    if positions is not None:
        _exact_geometry(part, positions, where, orientation, pixel_spacing)


def assemble(parts: list[dict], per_volume: dict | None = None, *, source: str | None = None) -> sitk.Image:
    """The 3D or 4D image of converted parts on one grid (after :func:`to_dicom_grid`), their
    volumes in order, with the per-volume metadata of the parts' sidecars and ``per_volume``."""
    first = parts[0]
    arr = np.concatenate([p["array"] for p in parts]) if len(parts) > 1 else first["array"]
    n = arr.shape[0]
    meta = _metadata(parts, n)
    if source is not None:
        meta["source"] = source
    for key, values in (per_volume or {}).items():
        if values is not None and len(values) == n:
            meta[key] = list(values)
    if meta.get("gradient_directions") is not None:
        meta["gradient_directions_lps"] = [list(first["direction"] @ np.asarray(g)) for g in meta["gradient_directions"]]
    if n == 1:
        img = sitk.GetImageFromArray(arr[0], isVector=False)
        img.SetSpacing(first["spacing"].tolist())
        img.SetOrigin(first["origin"].tolist())
        img.SetDirection(first["direction"].ravel().tolist())
    else:
        img = geometry_4d(sitk.GetImageFromArray(arr, isVector=False), first["spacing"], first["origin"], first["direction"])
    return attach(img, meta)


def _metadata(parts: list[dict], n: int) -> dict:
    first = parts[0]
    side = first["sidecar"]
    flipped = first["flipped"]
    meta: dict = {"source": f"dcm2niix {side.get('ConversionSoftwareVersion') or version()}"}
    if side.get("RepetitionTime") is not None:
        meta["repetition_time_ms"] = float(side["RepetitionTime"]) * 1000.0
    timing = side.get("SliceTiming")
    if timing is not None and len(timing) == first["array"].shape[1]:
        meta["slice_timing_s"] = [float(t) for t in (timing[::-1] if 2 in flipped else timing)]
    meta["phase_encoding_direction"] = _pe_direction(side.get("PhaseEncodingDirection"), flipped)
    echoes = []
    for part in parts:
        te = part["sidecar"].get("EchoTime")
        echoes += [None if te is None else float(te) * 1000.0] * part["array"].shape[0]
    meta["echo_times_ms"] = echoes if any(e is not None for e in echoes) else None
    if all(p["bvals"] is not None and len(p["bvals"]) == p["array"].shape[0] for p in parts):
        meta["b_values_s_per_mm2"] = [float(b) for p in parts for b in p["bvals"]]
        vectors = []
        for part in parts:
            for g in part["bvecs"]:
                g = np.asarray(g, float).copy()
                g[part["flipped"]] *= -1.0
                vectors.append([float(v) for v in g])
        meta["gradient_directions"] = vectors
    return meta
