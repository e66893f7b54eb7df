"""``Case``: what :func:`medlab.datasets.load` returns for every registered data set."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import SimpleITK as sitk

from medlab.errors import DatasetError

__all__ = ["Case", "SOURCES"]

#: Where a case's files came from (the same words as the fetch log that reports read):
#: the sample embedded in medlab, the local store (``$MEDLAB_DATA_STORE``), the cache
#: (``$MEDLAB_CACHE_DIR``; also where downloads land) or an installed PyPI package.
SOURCES = ("sample", "store", "cache", "package")


def _describe_image(img: sitk.Image) -> str:
    ptype = sitk.GetPixelIDValueAsString(img.GetPixelID())
    axes = ", ".join("xyzt"[: img.GetDimension()])
    size = "x".join(str(n) for n in img.GetSize())
    spacing = "x".join(f"{s:.4g}" for s in img.GetSpacing())
    return f"{ptype}, size ({axes}) {size}, spacing {spacing} mm"


@dataclass(frozen=True, eq=False, repr=False)
class Case:
    """One case of a registered data set: image, labels, metadata, files, source and licence.

    Every data set loader returns this type (:func:`medlab.datasets.load`); what differs
    between data sets is which entries the mappings hold, never the type.

    Attributes
    ----------
    dataset : str
        The data set's name (:func:`medlab.datasets.list_datasets`).
    id : str or None
        The case id (:func:`medlab.datasets.cases`); None for a data set with one image.
    image : SimpleITK.Image or None
        The case's image with its physical geometry (mm, LPS) and intensities in physical
        units (CT in HU, PET in SUV). None for data sets of files that are not read here
        (``pydicom_data``, ``ibsi_reference``, ``dcm_qa_nih``: see ``paths``).
    labels : dict of str to SimpleITK.Image
        Masks and label maps on the grid of ``image``, as ``sitkUInt8``, by name (e.g.
        ``'gtv'``, ``'head'``, ``'brain'``); empty when the data set has none.
        :attr:`label` gives the one label of a case that has exactly one.
    meta : dict
        Per-case values, with units in the key (e.g. ``hc_mm``, ``pixel_size_mm``,
        ``modality``, ``class``, ``resolution_mm``); empty when there are none.
    paths : dict of str to pathlib.Path
        The files and folders the case was made from, by name (e.g. ``'image'``, ``'file'``,
        ``'series'``, ``'reference'``, ``'sidecar'``).
    source : {'sample', 'store', 'cache', 'package'}
        Where the files came from: the sample embedded in medlab, the local store
        (``$MEDLAB_DATA_STORE``), the cache (``$MEDLAB_CACHE_DIR``, where downloads land too) or
        an installed PyPI package.
    licence : str
        The data set's licence, as :func:`medlab.datasets.info` gives it.

    Notes
    -----
    Synthetic phantoms (:class:`medlab.datasets.Phantom`) are not cases: they are generated
    from a seed and carry their exact ground truth and one label map.

    Examples
    --------
    >>> from medlab import datasets
    >>> brain = datasets.load("pyradiomics", case="brain1", progress=False)
    >>> brain.name, list(brain.labels), brain.label.GetPixelIDTypeAsString()
    ('pyradiomics/brain1', ['tumour'], '8-bit unsigned integer')
    """

    dataset: str
    id: str | None
    image: sitk.Image | None
    labels: Mapping[str, sitk.Image] = field(default_factory=dict)
    meta: Mapping[str, object] = field(default_factory=dict)
    paths: Mapping[str, Path] = field(default_factory=dict)
    source: str = "cache"
    licence: str = ""

    def __post_init__(self):
        if self.source not in SOURCES:
            raise ValueError(f"`source` must be one of {SOURCES}; got {self.source!r}")
        if self.image is not None and not isinstance(self.image, sitk.Image):
            raise TypeError(f"`image` must be a SimpleITK.Image or None; got {type(self.image).__name__}")
        for name, img in self.labels.items():
            if not isinstance(img, sitk.Image):
                raise TypeError(f"`labels[{name!r}]` must be a SimpleITK.Image; got {type(img).__name__}")
        # plain dicts owned by this case (a caller's later change to its own dict changes nothing here)
        object.__setattr__(self, "labels", dict(self.labels))
        object.__setattr__(self, "meta", dict(self.meta))
        object.__setattr__(self, "paths", {k: Path(v) for k, v in self.paths.items()})

    @property
    def name(self) -> str:
        """``'dataset/id'`` (or the data set's name alone when it has no cases)."""
        return self.dataset if self.id is None else f"{self.dataset}/{self.id}"

    @property
    def label(self) -> sitk.Image:
        """The case's one label image.

        Raises
        ------
        DatasetError
            The case has no label, or several (the message names them: pick one from
            :attr:`labels`).
        """
        if len(self.labels) == 1:
            return next(iter(self.labels.values()))
        if not self.labels:
            raise DatasetError(f"{self.name} has no label image (data set {self.dataset!r} has no masks)")
        raise DatasetError(
            f"{self.name} has {len(self.labels)} label images ({', '.join(self.labels)}); "
            f"pick one, e.g. case.labels[{next(iter(self.labels))!r}]"
        )

    def __repr__(self) -> str:
        head = f"Case({self.dataset!r}, {self.id!r}, source={self.source!r}, licence={self.licence!r})"
        lines = [head, "  image: " + ("none (files only, see paths)" if self.image is None
                                      else _describe_image(self.image))]
        for name, img in self.labels.items():
            lines.append(f"  labels[{name!r}]: {_describe_image(img)}")
        if self.meta:
            lines.append("  meta: " + ", ".join(f"{k}={v!r}" for k, v in self.meta.items()))
        for name, path in self.paths.items():
            lines.append(f"  paths[{name!r}]: {path}")
        return "\n".join(lines)
