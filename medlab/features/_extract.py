"""Feature tables: one row per case/ROI, one column per feature (and aggregation)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from medlab._options import check_choice

from ._intensity import (
    histogram_features,
    ivh_features,
    local_intensity_features,
    statistics_features,
)
from ._morph import morphology_features
from ._prepare import FeatureSettings, prepare_roi
from ._reference import FAMILIES, family_of, ibsi_reference_values

__all__ = ["compare_with_reference", "compliance_summary", "extract", "extract_table", "long_table"]

_TEXTURE = ("cm", "rlm", "szm", "dzm", "ngt", "ngl")


def _row(image, mask, settings: FeatureSettings, spacing, label) -> dict[str, float]:
    roi = prepare_roi(image, mask, settings, spacing=spacing, label=label)
    # features undefined for a degenerate ROI (one grey level, one voxel, ...) are NaN
    with np.errstate(divide="ignore", invalid="ignore"):
        return _features(roi, settings)


def _features(roi, settings: FeatureSettings) -> dict[str, float]:
    fams = settings.families or tuple(FAMILIES)
    out: dict[str, float] = {}
    if "morph" in fams:
        out.update(morphology_features(roi))
    if "loc" in fams:
        out.update(local_intensity_features(roi))
    if "stat" in fams:
        out.update(statistics_features(roi))
    if "ih" in fams:
        out.update(histogram_features(roi))
    if "ivh" in fams:
        out.update(ivh_features(roi))
    tex = tuple(f for f in _TEXTURE if f in fams)
    if tex:
        from ._texture import texture_features

        out.update(texture_features(roi, tex))
    return out


def extract(image, mask, settings: FeatureSettings | None = None, *, spacing=None, label=None,
            name: str = "roi", **changes) -> pd.DataFrame:
    """IBSI features of one ROI as a one-row table.

    Parameters
    ----------
    image : sitk.Image or (M, N[, P]) ndarray
        Intensities in their physical units (HU, SUV, ...). A numpy array is indexed
        ``(z, y, x)``; its voxel size is ``spacing``.
    mask : sitk.Image or ndarray
        The ROI: nonzero voxels, or the voxels equal to ``label``. Same grid as ``image``.
    settings : FeatureSettings, optional
        Processing and families (interpolation, re-segmentation, discretisation, texture
        aggregation); default :class:`FeatureSettings` (no interpolation, FBN 32 bins, 3D).
        IBSI reference settings: :func:`ibsi_settings`.
    spacing : float or sequence of float, optional
        Voxel size in mm, array axis order, for numpy input.
    label : int, optional
        Use ``mask == label`` as the ROI.
    name : str
        Index of the row (case or ROI name).
    **changes
        Settings to override, e.g. ``bins=64`` (see :class:`FeatureSettings`).

    Returns
    -------
    pandas.DataFrame
        One row; columns named ``<family>_<feature>`` after the IBSI feature tags
        (``morph_vol``, ``stat_mean``, ``cm_joint_max``, ...), with an aggregation suffix for
        texture families (``cm_joint_max_3D_avg``, ``szm_sze_2.5D``; see
        :data:`medlab.features.AGGREGATIONS`). Morphology is in mm, mm^2, mm^3. ``long_table``
        turns it into one row per feature with its family.

    Examples
    --------
    >>> import numpy as np
    >>> from medlab import features
    >>> img = np.arange(27, dtype=float).reshape(3, 3, 3)
    >>> t = features.extract(img, np.ones((3, 3, 3)), spacing=1.0, families=["stat"])
    >>> float(t.loc["roi", "stat_mean"]), float(t.loc["roi", "stat_max"])
    (13.0, 26.0)
    """
    settings = (settings or FeatureSettings()).replace(**changes) if changes else (settings or FeatureSettings())
    return pd.DataFrame([_row(image, mask, settings, spacing, label)], index=pd.Index([name], name="case"))


def extract_table(cases, settings: FeatureSettings | None = None, *, progress: Callable | None = None,
                  **changes) -> pd.DataFrame:
    """Features of many cases: one row per case (or per case and label).

    Parameters
    ----------
    cases : mapping or iterable
        ``{name: (image, mask)}`` or an iterable of ``(name, image, mask)`` or
        ``(name, image, mask, label)``; images as in :func:`extract` (``SimpleITK.Image``; numpy
        arrays need ``(name, image, mask, label, spacing)`` with ``label`` None for nonzero).
    settings : FeatureSettings, optional
        As in :func:`extract`; ``**changes`` override it.
    progress : callable, optional
        ``progress(fraction, message)`` after each case; returning False stops with
        InterruptedError.

    Returns
    -------
    pandas.DataFrame
        Index ``case``; columns as in :func:`extract`.
    """
    settings = settings or FeatureSettings()
    if changes:
        settings = settings.replace(**changes)
    items = list(cases.items()) if isinstance(cases, Mapping) else list(cases)
    rows, names = [], []
    for k, item in enumerate(items):
        if isinstance(cases, Mapping):
            name, (image, mask) = item
            label = spacing = None
        else:
            name, image, mask, *rest = item
            label = rest[0] if rest else None
            spacing = rest[1] if len(rest) > 1 else None
        rows.append(_row(image, mask, settings, spacing, label))
        names.append(name)
        if progress is not None and progress((k + 1) / len(items), f"features of {name}") is False:
            raise InterruptedError(f"extract_table stopped by the `progress` callback after {name!r}")
    return pd.DataFrame(rows, index=pd.Index(names, name="case"))


def long_table(table: pd.DataFrame) -> pd.DataFrame:
    """One row per case and feature: ``case, family, feature, aggregation, value``.

    Parameters
    ----------
    table : pandas.DataFrame
        A feature table from :func:`extract` (one row per case, one column per feature value).
    """
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"`table` must be a pandas.DataFrame from extract(); got {type(table).__name__}")
    long = table.rename_axis("case").reset_index().melt(id_vars="case", var_name="column", value_name="value")
    parts = long["column"].map(_split_column)
    long["feature"] = [p[0] for p in parts]
    long["aggregation"] = [p[1] for p in parts]
    long["family"] = long["feature"].map(family_of)
    return long[["case", "family", "feature", "aggregation", "value"]]


_SUFFIXES = ("2D_avg", "2D_smrg", "2.5D_dmrg", "2.5D_mrg", "3D_avg", "3D_mrg", "2D", "2.5D", "3D")


def _split_column(col: str) -> tuple[str, str]:
    for suf in _SUFFIXES:
        if col.endswith("_" + suf):
            return col[: -len(suf) - 1], suf
    return col, ""


def compare_with_reference(table: pd.DataFrame | pd.Series, data: str, reference: pd.DataFrame | None = None,
                           *, case=None) -> pd.DataFrame:
    """Compare computed features with the IBSI consensus values of one reference data set.

    Parameters
    ----------
    table : DataFrame (one row, or pick it with ``case``) or Series
        From :func:`extract` with the settings of ``data`` (:func:`ibsi_settings`).
    data : {'digital phantom', 'A', 'B', 'C', 'D', 'E'}
        The reference data set.
    reference : DataFrame, optional
        From :func:`ibsi_reference_values` (parsed from the IBSI document by default).

    Returns
    -------
    pandas.DataFrame
        One row per reference value: ``family, feature, aggregation, column, reference,
        tolerance, value`` (NaN where medlab has no such feature), ``implemented``,
        ``difference`` and ``within`` (``|value - reference| <= tolerance``).
    """
    check_choice("data", data, ["digital phantom", "A", "B", "C", "D", "E"])
    if isinstance(table, pd.DataFrame):
        if case is None:
            if len(table) != 1:
                raise ValueError(f"`table` has {len(table)} rows; pick one with `case`")
            row = table.iloc[0]
        else:
            row = table.loc[case]
    else:
        row = table
    ref = ibsi_reference_values(data=data) if reference is None else reference[reference["data"] == data]
    out = ref[["family", "feature", "aggregation", "column", "value", "tolerance", "consensus"]].rename(
        columns={"value": "reference"}
    )
    out = out.reset_index(drop=True)
    out["value"] = [float(row[c]) if c in row.index else np.nan for c in out["column"]]
    out["implemented"] = out["column"].isin(row.index)
    out["difference"] = out["value"] - out["reference"]
    # a relative slack of 1e-9 keeps exact matches at the tolerance edge from failing on float noise
    slack = 1e-9 * np.maximum(np.abs(out["reference"]), 1.0)
    out["within"] = np.abs(out["difference"]) <= out["tolerance"] + slack
    return out


def compliance_summary(comparisons: Mapping[str, pd.DataFrame] | pd.DataFrame) -> pd.DataFrame:
    """Per family: reference values, implemented and within tolerance (per data set).

    ``comparisons`` is one :func:`compare_with_reference` table or a mapping
    ``{data set: table}``; the result has one row per family (and a total row), with columns
    ``<data> reference``, ``<data> implemented``, ``<data> within``.

    Parameters
    ----------
    comparisons : pandas.DataFrame or mapping of str to pandas.DataFrame
        One :func:`compare_with_reference` table, or ``{data set: table}``.
    """
    if isinstance(comparisons, pd.DataFrame):
        comparisons = {"": comparisons}
    cols = {}
    for data, comp in comparisons.items():
        pre = f"{data} " if data else ""
        g = comp.groupby("family")
        cols[pre + "reference"] = g.size()
        cols[pre + "implemented"] = g["implemented"].sum()
        cols[pre + "within"] = g["within"].sum()
    summary = pd.DataFrame(cols).fillna(0).astype(int)
    order = [f for f in FAMILIES.values() if f in summary.index]
    summary = summary.loc[order]
    summary.loc["total"] = summary.sum()
    return summary
