"""IBSI reference values: parse the IBSI chapter on image features into a tidy table.

The IBSI 1 document (``03_Image_features.rst`` of the ibsi-doc repository, reached through
``medlab.datasets.load("ibsi_reference").paths["file"]``) gives, for each feature, a reStructuredText grid
table of consensus values and tolerances for the digital phantom and the CT phantom under
configurations A-E, one row per aggregation method for texture features. Each feature section
names its feature as ``F_{\\mathit{family.name}}`` in its formula; that tag, with dots replaced
by underscores, is the medlab feature name (``morph.vol`` -> ``morph_vol``).
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "AGGREGATIONS",
    "FAMILIES",
    "column_name",
    "family_of",
    "ibsi_reference_values",
]

#: feature-name prefix -> IBSI family name
FAMILIES = {
    "morph": "morphology",
    "loc": "local intensity",
    "stat": "intensity statistics",
    "ih": "intensity histogram",
    "ivh": "intensity-volume histogram",
    "cm": "GLCM",
    "rlm": "GLRLM",
    "szm": "GLSZM",
    "dzm": "GLDZM",
    "ngt": "NGTDM",
    "ngl": "NGLDM",
}

#: IBSI aggregation method (as written in the reference tables) -> medlab code (column suffix)
AGGREGATIONS = {
    "2D, averaged": "2D_avg",
    "2D, slice-merged": "2D_smrg",
    "2.5D, direction-merged": "2.5D_dmrg",
    "2.5D, merged": "2.5D_mrg",
    "3D, averaged": "3D_avg",
    "3D, merged": "3D_mrg",
    "2D": "2D",
    "2.5D": "2.5D",
    "3D": "3D",
}

_DATA = {
    "dig. phantom": "digital phantom",
    "config. A": "A",
    "config. B": "B",
    "config. C": "C",
    "config. D": "D",
    "config. E": "E",
}

# Typos in the reference document's feature tags, corrected so names are regular.
_TAG_FIXES = {"ntg.complexity": "ngt.complexity"}
# Sections whose formula names no tag: tag from the section's label.
_UNTAGGED = {"feat_stat_p10": "stat.p10", "feat_stat_p90": "stat.p90", "feat_int_hist_p10": "ih.p10"}
_LABEL = re.compile(r"^\.\. _([A-Za-z0-9_]+):\s*$")

_TAG = re.compile(r"F_\{\\mathit\{([A-Za-z0-9.]+)\}\}")
_CODE = re.compile(r"<p style=[^>]*>\s*([A-Z0-9]{4})\s*</p>")
_SCI = re.compile(r"^(-?[0-9.]+)\s*\\times\s*10\^\{(-?[0-9]+)\}$")


def family_of(feature: str) -> str:
    """IBSI family name of a medlab feature name (``'cm_joint_max'`` -> ``'GLCM'``).

    Parameters
    ----------
    feature : str
        A medlab feature name.
    """
    prefix = feature.split("_", 1)[0]
    try:
        return FAMILIES[prefix]
    except KeyError:
        raise ValueError(f"`feature` {feature!r} has no known family prefix ({', '.join(FAMILIES)})") from None


def column_name(feature: str, aggregation: str | None = None) -> str:
    """Column of a feature in medlab's feature table: ``feature`` or ``feature_aggregation``.

    Parameters
    ----------
    feature : str
        A medlab feature name (e.g. ``'cm_joint_max'``).
    aggregation : str, optional
        The aggregation suffix (e.g. ``'3D_avg'``); None for features without one.
    """
    return f"{feature}_{aggregation}" if aggregation else feature


def _number(cell: str) -> tuple[float, int | None]:
    """``(value, decimal exponent of the last printed digit)`` of a table cell; NaN for '—'."""
    s = cell.strip().replace("**", "")
    s = s.replace(":math:`-`\\ ", "-").replace(":math:`-`", "-")
    m = re.fullmatch(r":math:`(.*)`", s)
    if m:
        s = m.group(1).strip()
    if s in ("", "—", "-", "--", "–"):
        return math.nan, None
    sci = _SCI.match(s)
    if sci:
        mant, exp = sci.group(1), int(sci.group(2))
    else:
        mant, exp = s, 0
    mant = mant.replace(" ", "")
    value = float(mant) * 10.0**exp
    decimals = len(mant.split(".")[1]) if "." in mant else 0
    return value, exp - decimals


def _tables(lines: list[str]) -> list[list[list[str]]]:
    """Grid tables in ``lines``: each a list of rows, each a list of stripped cells."""
    out, cur = [], None
    for line in lines:
        s = line.strip()
        if s.startswith("+") and s.endswith("+"):
            cur = cur if cur is not None else []
            continue
        if s.startswith("|") and cur is not None:
            cur.append([c.strip() for c in s.strip("|").split("|")])
            continue
        if cur is not None:
            out.append(cur)
            cur = None
    if cur is not None:
        out.append(cur)
    return out


def _sections(lines: list[str]):
    """Yield ``(label, title, body_lines)`` for every ``^^^``-underlined (feature-level) section."""
    heads = [
        i for i in range(1, len(lines))
        if lines[i].startswith("^^^") and set(lines[i].strip()) == {"^"} and lines[i - 1].strip()
    ]
    # a feature section ends at the next heading of any level
    any_head = [
        i for i in range(1, len(lines))
        if lines[i].strip() and set(lines[i].strip()) <= set("^-=~") and len(lines[i].strip()) >= 3
        and lines[i - 1].strip()
    ]
    for h in heads:
        nxt = next((j for j in any_head if j > h), len(lines) + 1)
        label = next(
            (m.group(1) for k in range(h - 2, max(h - 5, -1), -1) if (m := _LABEL.match(lines[k]))), ""
        )
        yield label, lines[h - 1].strip(), lines[h + 1 : nxt - 1]


@lru_cache(maxsize=4)
def _parse(path: str, mtime: float) -> pd.DataFrame:
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    rows = []
    for label, title, body in _sections(lines):
        tables = [t for t in _tables(body) if t and t[0] and "data" in t[0][0].lower()]
        if not tables:
            continue
        text = "\n".join(body)
        code = _CODE.search(text)
        tags = list(dict.fromkeys(_TAG.findall(text))) or ([_UNTAGGED[label]] if label in _UNTAGGED else [])
        if len(tags) < len(tables):
            raise ValueError(f"IBSI reference section {title!r}: {len(tables)} tables but feature tags {tags}")
        for tag, table in zip(tags, tables, strict=False):
            tag = _TAG_FIXES.get(tag, tag)
            feature = tag.replace(".", "_").lower()
            header = [c.replace("*", "").strip().lower() for c in table[0]]
            has_aggr = any("aggr" in h for h in header)
            for cells in table[1:]:
                data = _DATA.get(cells[0].strip())
                if data is None:
                    raise ValueError(f"IBSI reference {feature}: unknown data set {cells[0]!r}")
                aggr_text = cells[1].strip() if has_aggr else ""
                if has_aggr and aggr_text not in AGGREGATIONS:
                    raise ValueError(f"IBSI reference {feature}: unknown aggregation {aggr_text!r}")
                aggregation = AGGREGATIONS[aggr_text] if has_aggr else ""
                k = 2 if has_aggr else 1
                value, last = _number(cells[k])
                tol, _ = _number(cells[k + 1])
                rounding = math.isnan(tol)  # no tolerance printed: the value is exact to its digits
                if rounding and last is not None:
                    tol = 0.5 * 10.0**last
                rows.append(
                    {
                        "feature": feature,
                        "family": family_of(feature),
                        "ibsi_code": code.group(1) if code else "",
                        "title": title.rstrip(),
                        "data": data,
                        "aggregation": aggregation,
                        "column": column_name(feature, aggregation),
                        "value": value,
                        "tolerance": tol,
                        "tolerance_from_rounding": bool(rounding and not math.isnan(value)),
                        "consensus": cells[k + 2].strip() if len(cells) > k + 2 else "",
                    }
                )
    return pd.DataFrame(rows)


def ibsi_reference_values(path=None, *, data=None, with_values: bool = True) -> pd.DataFrame:
    """IBSI consensus reference values as a tidy table, one row per feature, data set and aggregation.

    Parameters
    ----------
    path : str or Path, optional
        The IBSI ``03_Image_features.rst``; by default ``medlab.datasets.load("ibsi_reference").paths["file"]``.
    data : str or sequence of str, optional
        Keep only these data sets: ``'digital phantom'``, ``'A'``, ``'B'``, ``'C'``, ``'D'``, ``'E'``
        (the CT phantom configurations).
    with_values : bool
        Drop rows whose reference value is unset ("—" in the document).

    Returns
    -------
    pandas.DataFrame
        Columns ``feature`` (medlab name, e.g. ``cm_joint_max``), ``family`` (IBSI family),
        ``ibsi_code`` (the 4-character IBSI identifier of the feature), ``title``, ``data``,
        ``aggregation`` (``''`` for families computed on the 3D ROI only, else a code of
        :data:`AGGREGATIONS`), ``column`` (the column of :func:`medlab.features.extract`'s table
        that holds this value), ``value``, ``tolerance``, ``tolerance_from_rounding`` (True where
        the document gives no tolerance: the value is then taken as exact to its printed digits,
        i.e. a tolerance of half a unit in the last digit) and ``consensus``.

    Examples
    --------
    >>> ref = ibsi_reference_values(data="digital phantom")  # doctest: +SKIP
    >>> ref.set_index("column").loc["morph_vol", ["value", "tolerance"]].tolist()  # doctest: +SKIP
    [556.0, 4.0]
    """
    if path is None:
        from medlab import datasets

        path = datasets.load("ibsi_reference", progress=False).paths["file"]
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"`path` {str(path)!r} is not a file")
    table = _parse(str(path.resolve()), path.stat().st_mtime).copy()
    if data is not None:
        wanted = [data] if isinstance(data, str) else list(data)
        known = set(_DATA.values())
        for d in wanted:
            if d not in known:
                from medlab._options import check_choice

                check_choice("data", d, sorted(known))
        table = table[table["data"].isin(wanted)]
    if with_values:
        table = table[np.isfinite(table["value"].to_numpy(float))]
    return table.reset_index(drop=True)
