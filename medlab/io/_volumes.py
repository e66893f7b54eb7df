"""4D images: several 3D volumes of one geometry on a fourth axis, with per-volume metadata.

A 4D ``SimpleITK.Image`` has size (x, y, z, t). Its first three axes carry the 3D geometry
(spacing in mm, origin, direction); the fourth axis is the volume index: spacing 1.0, origin
0.0, and the 4x4 direction is the 3D direction extended by the identity. As a numpy array it is
indexed (t, z, y, x).

Per-volume metadata (echo times, b-values, gradient directions, acquisition times, slice
timing, phase-encoding direction) travel with the image as one JSON string in its metadata
dictionary under the key :data:`VOLUME_METADATA_KEY`; :func:`volume_metadata` decodes it.
SimpleITK keeps that dictionary on copies of the image, but image filters drop it: read it
right after :func:`medlab.io.read` when it matters.
"""

from __future__ import annotations

import json

import numpy as np
import SimpleITK as sitk

VOLUME_METADATA_KEY = "medlab_volume_metadata"
"""Key of the JSON string, in a read image's metadata dictionary, decoded by :func:`volume_metadata`."""

# Per-volume lists: sliced by volume()/volumes().
PER_VOLUME = (
    "echo_times_ms",
    "b_values_s_per_mm2",
    "gradient_directions",
    "gradient_directions_lps",
    "acquisition_times_s",
    "trigger_times_ms",
    "frame_times_ms",
)
# Whole-series values.
PER_SERIES = ("repetition_time_ms", "slice_timing_s", "phase_encoding_direction", "source")

VOLUME_METADATA_KEYS = ("volumes",) + PER_VOLUME + PER_SERIES
"""Every key of the dict returned by :func:`volume_metadata`."""


def empty_volume_metadata(n: int) -> dict:
    meta = {key: None for key in VOLUME_METADATA_KEYS}
    meta["volumes"] = n
    return meta


def attach(image: sitk.Image, meta: dict) -> sitk.Image:
    """Store ``meta`` (keys of :data:`VOLUME_METADATA_KEYS`) on ``image``; returns ``image``."""
    out = empty_volume_metadata(number_of_volumes(image))
    out.update({k: v for k, v in meta.items() if k in out and k != "volumes"})
    image.SetMetaData(VOLUME_METADATA_KEY, json.dumps(out))
    return image


def number_of_volumes(image: sitk.Image) -> int:
    return image.GetSize()[3] if image.GetDimension() == 4 else 1


def volume_metadata(image: sitk.Image) -> dict:
    """Per-volume and acquisition metadata of an image read by :func:`medlab.io.read`.

    Parameters
    ----------
    image : SimpleITK.Image
        3D or 4D, as returned by :func:`medlab.io.read` (or by :func:`volume` /
        :func:`volumes`, which keep the entries of the volumes they take).

    Returns
    -------
    dict
        Keys :data:`VOLUME_METADATA_KEYS`; a value is None when the data do not say it:

        - ``volumes``: number of volumes (size of the fourth axis; 1 for a 3D image).
        - per volume (lists of length ``volumes``): ``echo_times_ms``;
          ``b_values_s_per_mm2``; ``gradient_directions``: diffusion gradient unit vectors
          in the **image frame**, i.e. components along the image's own (x, y, z) index axes
          (the axes of the returned image, after any flip); ``gradient_directions_lps``: the
          same directions in the patient frame (LPS, ``direction @ g``);
          ``acquisition_times_s``: seconds since midnight of each volume's first slice
          (DICOM AcquisitionTime); ``trigger_times_ms``: cardiac trigger delay of each volume;
          ``frame_times_ms``: time of each frame of a cine (ultrasound, XA: a multi-frame
          file whose frames are instants of one plane, read as (x, y, 1, frame)) from the
          first frame, from FrameTime or FrameTimeVector.
        - per series: ``repetition_time_ms``; ``slice_timing_s``: the acquisition time of
          each slice (index z of the returned image) relative to the start of its volume, in
          seconds; ``phase_encoding_direction``: 'i', 'j' or 'k' (image index axes x, y, z)
          with a trailing '-' when it runs towards lower indices (BIDS notation, in the
          frame of the returned image); ``source``: how the series was assembled
          ('dcm2niix <version>'; 'medlab voxels, dcm2niix <version> metadata': a classic 4D
          MR series whose pixels medlab read itself, its metadata converted from its first
          volumes; 'gdcm' or 'pydicom').

    Examples
    --------
    >>> import SimpleITK as sitk, medlab.io
    >>> image = sitk.Image([4, 4, 3, 2], sitk.sitkInt16)
    >>> medlab.io.volume_metadata(image)["volumes"]
    2
    """
    if not isinstance(image, sitk.Image):
        raise TypeError(f"`image` must be a SimpleITK.Image; got {type(image).__name__}")
    out = empty_volume_metadata(number_of_volumes(image))
    if image.HasMetaDataKey(VOLUME_METADATA_KEY):
        stored = json.loads(image.GetMetaData(VOLUME_METADATA_KEY))
        out.update({k: v for k, v in stored.items() if k in out and k != "volumes"})
    return out


def _check_4d(image, name="image") -> None:
    if not isinstance(image, sitk.Image):
        raise TypeError(f"`{name}` must be a SimpleITK.Image; got {type(image).__name__}")
    if image.GetDimension() != 4:
        raise ValueError(f"`{name}` must be a 4D image (x, y, z, volume); got size {image.GetSize()}")


def _select_meta(image: sitk.Image, index: list[int]) -> dict:
    meta = volume_metadata(image)
    for key in PER_VOLUME:
        if meta[key] is not None and len(meta[key]) == meta["volumes"]:
            meta[key] = [meta[key][i] for i in index]
        else:
            meta[key] = None
    return meta


def volume(image: sitk.Image, index: int) -> sitk.Image:
    """One 3D volume of a 4D image, with its 3D geometry and its volume's metadata.

    Parameters
    ----------
    image : SimpleITK.Image
        4D image (x, y, z, volume).
    index : int
        Volume index; negative counts from the end, as in Python.

    Returns
    -------
    SimpleITK.Image
        3D; ``volume_metadata`` of it has ``volumes == 1`` and one-element lists.

    Raises
    ------
    ValueError
        If ``image`` is not 4D or ``index`` is out of range.

    Examples
    --------
    >>> import SimpleITK as sitk, medlab.io
    >>> image = sitk.JoinSeries([sitk.Image([4, 4, 3], sitk.sitkInt16)] * 5)
    >>> medlab.io.volume(image, -1).GetSize()
    (4, 4, 3)
    """
    _check_4d(image)
    n = image.GetSize()[3]
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not -n <= index < n:
        raise ValueError(f"`index` must be an integer in [-{n}, {n - 1}] (the image has {n} volumes); got {index!r}")
    index = int(index) % n
    out = sitk.Extract(image, [*image.GetSize()[:3], 0], [0, 0, 0, index])
    return attach(out, _select_meta(image, [index]))


def volumes(image: sitk.Image, start: int = 0, stop: int | None = None, step: int = 1) -> sitk.Image:
    """A range of volumes of a 4D image as a 4D image (Python slice semantics).

    Parameters
    ----------
    image : SimpleITK.Image
        4D image (x, y, z, volume).
    start, stop, step : int
        As in ``range(n)[start:stop:step]``; at least one volume must be selected.

    Returns
    -------
    SimpleITK.Image
        4D, same 3D geometry, the selected volumes' metadata.

    Examples
    --------
    >>> import SimpleITK as sitk, medlab.io
    >>> image = sitk.JoinSeries([sitk.Image([4, 4, 3], sitk.sitkInt16)] * 10)
    >>> medlab.io.volumes(image, 2, 8, 2).GetSize()
    (4, 4, 3, 3)
    """
    _check_4d(image)
    index = list(range(image.GetSize()[3]))[slice(start, stop, step)]
    if not index:
        raise ValueError(
            f"`start`, `stop`, `step` ({start}, {stop}, {step}) select no volume of {image.GetSize()[3]}"
        )
    arr = sitk.GetArrayViewFromImage(image)[index]
    out = sitk.GetImageFromArray(np.ascontiguousarray(arr), isVector=image.GetNumberOfComponentsPerPixel() > 1)
    _copy_4d_geometry(out, image)
    return attach(out, _select_meta(image, index))


def _copy_4d_geometry(out: sitk.Image, image: sitk.Image) -> None:
    out.SetSpacing(image.GetSpacing())
    out.SetOrigin(image.GetOrigin())
    out.SetDirection(image.GetDirection())


def stack(volume_images: list[sitk.Image], meta: dict | None = None) -> sitk.Image:
    """Join 3D volumes of one geometry into a 4D image (volume axis: spacing 1, origin 0)."""
    first = volume_images[0]
    out = sitk.JoinSeries(volume_images)
    geometry_4d(out, first.GetSpacing(), first.GetOrigin(), first.GetDirection())
    return attach(out, meta or {})


def geometry_4d(image: sitk.Image, spacing, origin, direction) -> sitk.Image:
    """Give a 4D image the 3D geometry (spacing, origin, 3x3 direction) extended by identity."""
    d3 = np.asarray(direction, float).reshape(3, 3)
    d4 = np.eye(4)
    d4[:3, :3] = d3
    image.SetSpacing([*map(float, spacing[:3]), 1.0])
    image.SetOrigin([*map(float, origin[:3]), 0.0])
    image.SetDirection(d4.ravel().tolist())
    return image
