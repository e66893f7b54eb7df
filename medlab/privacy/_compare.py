"""Before/after of one de-identified file, without showing any value.

:func:`compare` lists what :func:`medlab.privacy.deidentify` did to each top-level attribute
that the Basic Profile names (or that is private), as states only: ``present``/``empty`` before;
``removed``/``emptied``/``replaced``/``kept`` after (``added`` for the de-identification
attributes themselves). It also looks for each old text value of at least ``MIN_SEARCH_CHARS``
characters in the raw bytes of the output file, so a value that survived anywhere (a nested
sequence, free text, a private block) shows up. Values are never returned.
"""

from __future__ import annotations

import os
from pathlib import Path
from medlab.privacy._clean import tag_text
from medlab.privacy._profile import profile_action

__all__ = ["COMPARE_COLUMNS", "MIN_SEARCH_CHARS", "compare"]

COMPARE_COLUMNS = ("tag", "keyword", "profile_action", "before", "after", "old_value_found")
#: shorter old values (e.g. a PatientID "1") would match unrelated bytes by chance
MIN_SEARCH_CHARS = 4


def _is_empty(elem) -> bool:
    value = elem.value
    return value is None or (hasattr(value, "__len__") and len(value) == 0)


#: value representations whose values can name a person, place or study (names, IDs, free text,
#: UIDs, dates); numbers and codes (DS, IS, CS, TM, ...) match unrelated bytes too easily
_SEARCHED_VRS = frozenset({"PN", "LO", "SH", "LT", "ST", "UT", "UC", "UR", "UI", "DA", "DT", "AE"})


def _text(elem) -> str | None:
    """The element's value as text, when its VR is one that can identify (_SEARCHED_VRS)."""
    if elem.VR not in _SEARCHED_VRS or _is_empty(elem):
        return None
    value = elem.value
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value)


def compare(original, deidentified):
    """What de-identification changed in one DICOM file, as states (never values).

    Parameters
    ----------
    original, deidentified : str or os.PathLike
        The input DICOM file and its de-identified copy (e.g. a pair of
        ``DeidSummary.files``).

    Returns
    -------
    pandas.DataFrame
        One row per top-level attribute of ``original`` that DICOM PS3.15 Table E.1-1 lists or
        that is private, plus attributes that exist only in ``deidentified``. Columns:
        ``tag`` (``'(0010,0010)'``), ``keyword``, ``profile_action`` (``'X'``, ``'Z'``,
        ``'D'``, ``'U'``, ... or ``'private'``; None for added ones), ``before`` (``'present'``,
        ``'empty'``, ``'absent'``), ``after`` (``'removed'``, ``'emptied'``, ``'replaced'``,
        ``'kept'``, ``'added'``) and ``old_value_found``: whether the old value occurs anywhere in
        the output file's bytes, for names, IDs, free text, UIDs and dates (VR PN, LO, SH, LT,
        ST, UT, UC, UR, UI, DA, DT, AE) of at least :data:`MIN_SEARCH_CHARS` characters, else
        None. True is worth a look, not proof of a leak: the same text may also be a kept,
        non-identifying value (a private block's creator named like the manufacturer).

    Examples
    --------
    >>> import tempfile, pydicom.data, medlab.privacy
    >>> src = pydicom.data.get_testdata_file("CT_small.dcm")
    >>> s = medlab.privacy.deidentify(src, tempfile.mkdtemp() + "/out", key="a long secret key", progress=False)
    >>> t = compare(*s.files[0])
    >>> t.set_index("keyword").loc["PatientName", ["before", "after", "old_value_found"]].tolist()
    ['present', 'replaced', False]
    """
    import pandas as pd
    import pydicom


    paths = []
    for name, p in (("original", original), ("deidentified", deidentified)):
        if not isinstance(p, (str, os.PathLike)):
            raise TypeError(f"`{name}` must be a path to a DICOM file; got {type(p).__name__}")
        p = Path(p)
        if not p.is_file():
            raise FileNotFoundError(f"`{name}`: no file at {p}")
        paths.append(p)
    before = pydicom.dcmread(paths[0], stop_before_pixels=True)
    after = pydicom.dcmread(paths[1], stop_before_pixels=True)
    raw = paths[1].read_bytes()
    rows = []
    for elem in before:
        action = "private" if elem.tag.is_private else profile_action(elem.tag)
        if action is None:
            continue
        new = after.get(elem.tag)
        if new is None:
            state = "removed"
        elif _is_empty(new) and not _is_empty(elem):
            state = "emptied"
        elif new.value == elem.value:
            state = "kept"
        else:
            state = "replaced"
        text = _text(elem)
        found = None
        if text is not None and len(text.strip()) >= MIN_SEARCH_CHARS:
            value = text.strip()
            # the file's character set is usually ASCII, Latin-1 or UTF-8: look for each encoding
            found = any(v in raw for v in {value.encode("utf-8"), value.encode("latin-1", "ignore")})
        rows.append((tag_text(int(elem.tag)), elem.keyword or "", action, "empty" if _is_empty(elem) else "present",
                     state, found))
    for elem in after:
        if elem.tag not in before:
            rows.append((tag_text(int(elem.tag)), elem.keyword or "", None, "absent", "added", None))
    return pd.DataFrame(rows, columns=list(COMPARE_COLUMNS))
