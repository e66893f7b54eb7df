"""Apply the profile to one parsed dataset, recursively, recording every change for the audit."""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass, field

from medlab.privacy import _keys
from medlab.privacy._profile import (
    CLEAN_DESCRIPTORS,
    NOT_LONGITUDINAL,
    PATIENT_CHARACTERISTICS_CLEAN,
    PATIENT_CHARACTERISTICS_KEEP,
    profile_action,
)

PATIENT_ID = 0x00100020
PATIENT_NAME = 0x00100010

# How a combined action of the table is carried out when the IOD (and so whether the attribute
# is Type 1, 2 or 3) is not known: the choice that keeps the object valid in every IOD.
_RESOLVE = {
    "X": "X",
    "Z": "Z",
    "D": "D",
    "U": "U",
    "X/Z": "Z",
    "X/D": "D",
    "Z/D": "D",
    "X/Z/D": "D",
    "X/Z/U*": "U*",
}

DUMMY_TEXT = "ANONYMIZED"
# Dummy values (action D) by VR; the value of a text VR fits the shortest VR (SH, AE: 16).
DUMMY = {
    **dict.fromkeys(("AE", "CS", "LO", "LT", "SH", "ST", "UC", "UT", "PN"), DUMMY_TEXT),
    "AS": "000D",
    "DA": "19000101",
    "DT": "19000101000000",
    "TM": "000000",
    "DS": "0",
    "IS": "0",
    "UR": "http://anonymized.invalid",
    **dict.fromkeys(("FL", "FD"), 0.0),
    **dict.fromkeys(("SL", "SS", "UL", "US", "SV", "UV", "AT"), 0),
    **dict.fromkeys(("OB", "OD", "OF", "OL", "OV", "OW", "UN"), b"\x00\x00"),
}
_TEXT_VRS = frozenset({"LO", "SH", "LT", "ST", "UT", "UC"})
_IDENTIFIER_VRS = frozenset({"PN", "LO", "SH", "LT", "ST", "UT", "UC", "AE", "DA", "DT"})

# Free-text patterns removed by the clean action whatever the dataset holds: dates in common
# notations and runs of 5+ digits (record numbers, telephone numbers).
_GENERIC = re.compile(
    r"\b\d{4}[-./]?\d{2}[-./]?\d{2}\b|\b\d{1,2}[-./]\d{1,2}[-./]\d{2,4}\b|\d{5,}"
)


def tag_text(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


@dataclass
class Context:
    """The settings and per-patient replacements for one dataset, and its audit rows."""

    key: bytes
    pseudonym: str
    shift_days: int | None  # None: dates are not retained
    retain_patient_characteristics: bool
    clean_descriptors: bool
    identifiers: list = field(default_factory=list)
    rows: list = field(default_factory=list)  # (tag path, keyword path, action, old value hash)

    def log(self, path: str, names: str, action: str, old: bytes) -> None:
        self.rows.append((path, names, action, _keys.audit_hash(self.key, old)))


# --------------------------------------------------------------------------- values


def value_bytes(elem) -> bytes:
    """A canonical byte form of an element's value (for hashing into the audit only)."""
    value = elem.value
    if value is None:
        return b""
    if isinstance(value, bytes):
        return value
    if elem.VR == "SQ":
        return "\n".join(str(item) for item in value).encode("utf-8", "surrogateescape")
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value).encode("utf-8", "surrogateescape")
    return str(value).encode("utf-8", "surrogateescape")


def _values(elem) -> list:
    value = elem.value
    if value is None or value == "":
        return []
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        return [value]
    return list(value)


def _set(elem, values: list) -> None:
    elem.value = values[0] if len(values) == 1 else values


def is_well_known_uid(value: str) -> bool:
    from pydicom.uid import UID_dictionary

    return value in UID_dictionary


def _keeps_uid(keyword: str) -> bool:
    # Class UIDs and transfer syntaxes name a kind of object, not an instance.
    return keyword.endswith("ClassUID") or keyword == "TransferSyntaxUID"


def map_uid(key: bytes, value) -> str:
    text = str(value).strip(" \x00")
    if not text or is_well_known_uid(text):
        return text
    return _keys.uid_for(key, text)


def _shift_da(text: str, days: int) -> str | None:
    text = text.strip()
    digits = text.replace(".", "") if len(text) == 10 else text  # ACR-NEMA "YYYY.MM.DD"
    if len(digits) != 8 or not digits.isdigit():
        return None
    try:
        day = _dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
        return (day + _dt.timedelta(days=days)).strftime("%Y%m%d")
    except (ValueError, OverflowError):
        return None


def _shift_dt(text: str, days: int) -> str | None:
    text = text.strip()
    shifted = _shift_da(text[:8], days) if len(text) >= 8 else None
    return None if shifted is None else shifted + text[8:]


def clean_text(text: str, identifiers) -> str:
    """``text`` without any identifying value of its dataset, dates or long digit runs."""
    for ident in identifiers:
        text = re.sub(rf"(?<!\w){re.escape(ident)}(?!\w)", " ", text, flags=re.IGNORECASE)
    text = _GENERIC.sub(" ", text)
    return " ".join(text.split())


def collect_identifiers(ds) -> list[str]:
    """Identifying text values of ``ds`` (nested items included), longest first.

    Values of the attributes the profile removes or replaces (and private text), split into
    name components and words of 3+ characters; used to clean descriptors that are kept.
    """
    found: set[str] = set()

    def visit(dataset):
        for elem in dataset:
            tag = int(elem.tag)
            if elem.VR == "SQ":
                for item in elem.value or []:
                    visit(item)
                continue
            if elem.VR not in _IDENTIFIER_VRS:
                continue
            if tag in CLEAN_DESCRIPTORS or tag in PATIENT_CHARACTERISTICS_KEEP or tag in PATIENT_CHARACTERISTICS_CLEAN:
                continue
            if not (elem.tag.is_private or profile_action(tag) is not None):
                continue
            for value in _values(elem):
                text = str(value).strip(" \x00")
                parts = re.split(r"[\^=\\]+", text)
                for part in [text, *parts, *(w for p in parts for w in p.split())]:
                    part = part.strip(" ,;")
                    if len(part) >= 3:
                        found.add(part)

    visit(ds)
    return sorted(found, key=lambda s: (-len(s), s))


# --------------------------------------------------------------------------- actions


def _decide(ctx: Context, elem, clean_text_leaves: bool) -> str:
    tag = int(elem.tag)
    if tag in (PATIENT_ID, PATIENT_NAME):
        return "P"
    vr = elem.VR
    basic = profile_action(tag)
    if ctx.retain_patient_characteristics:
        if tag in PATIENT_CHARACTERISTICS_KEEP:
            return "K"
        if tag in PATIENT_CHARACTERISTICS_CLEAN:
            return "C"
    if ctx.clean_descriptors and tag in CLEAN_DESCRIPTORS:
        return "C"
    if ctx.shift_days is not None and vr in ("DA", "DT", "TM") and tag not in NOT_LONGITUDINAL:
        # Whole-day shifts leave times of day as they are.
        return "K" if vr == "TM" else "S"
    if basic is None:
        if vr == "SQ":
            return "K"
        if vr == "UI" and not _keeps_uid(elem.keyword):
            # Instance UIDs outside the table (e.g. in references) must follow the same
            # mapping, or the references break; well-known UIDs are kept by map_uid.
            return "U"
        if clean_text_leaves and vr in _TEXT_VRS:
            return "C"
        return "K"
    return _RESOLVE[basic]


def clean_dataset(ctx: Context, ds, prefix: str = "", names: str = "", clean_text_leaves: bool = False) -> None:
    """Apply the profile (with the options of ``ctx``) to ``ds`` in place, recursively."""
    for tag in list(ds.keys()):
        tag_int = int(tag)
        path = prefix + tag_text(tag_int)
        if tag.is_private or (tag.element == 0 and tag.group != 0x0002):
            # Private attributes (the profile removes them all) and group lengths (wrong
            # once values change): removed without parsing their values.
            raw = ds.get_item(tag)
            old = raw.value if isinstance(raw.value, bytes) else value_bytes(raw)
            ds.pop(tag)
            ctx.log(path, names + ("<private>" if tag.is_private else "<group length>"), "X", old)
            continue
        elem = ds[tag]
        keyword = elem.keyword or "<unknown>"
        action = _decide(ctx, elem, clean_text_leaves)
        _apply(ctx, ds, elem, action, path, names + keyword, clean_text_leaves)


def _recurse(ctx, elem, path, names, clean_text_leaves):
    for i, item in enumerate(elem.value or []):
        clean_dataset(ctx, item, f"{path}[{i}].", f"{names}[{i}].", clean_text_leaves)


def _apply(ctx: Context, ds, elem, action: str, path: str, names: str, clean_text_leaves: bool) -> None:
    vr = elem.VR
    if action == "K":
        if vr == "SQ":
            _recurse(ctx, elem, path, names, clean_text_leaves)
        return
    if action == "U*":
        if vr == "SQ":
            _recurse(ctx, elem, path, names, clean_text_leaves)
            return
        action = "U" if vr == "UI" else "Z"
    old = value_bytes(elem)
    if action == "X":
        del ds[elem.tag]
        ctx.log(path, names, "X", old)
        return
    if action == "Z":
        if vr == "SQ":
            if elem.value:
                elem.value = []
                ctx.log(path, names, "Z", old)
        elif old.strip(b" \x00"):
            elem.value = elem.empty_value
            ctx.log(path, names, "Z", old)
        return
    if action == "D":
        if vr == "SQ":
            for item in elem.value or []:
                _dummy_item(ctx, item)
        else:
            elem.value = DUMMY.get(vr, DUMMY_TEXT)
        if value_bytes(elem) != old:
            ctx.log(path, names, "D", old)
        return
    if action == "U":
        values = _values(elem)
        if values:
            _set(elem, [map_uid(ctx.key, v) for v in values])
            if value_bytes(elem) != old:
                ctx.log(path, names, "U", old)
        return
    if action == "P":
        # The pseudonym stands in for both PatientID and PatientName (a dummy value of the
        # Z action that a viewer can show).
        elem.value = ctx.pseudonym
        if value_bytes(elem) != old:
            ctx.log(path, names, "P", old)
        return
    if action == "S":
        shift = _shift_da if vr == "DA" else _shift_dt
        values = _values(elem)
        shifted = [shift(str(v), ctx.shift_days) for v in values]
        if any(s is None for s in shifted):
            # Not a date that can be shifted: the profile's own action applies.
            basic = profile_action(int(elem.tag))
            if basic is not None:
                _apply(ctx, ds, elem, _RESOLVE[basic], path, names, clean_text_leaves)
            return
        if values:
            _set(elem, shifted)
            ctx.log(path, names, "S", old)
        return
    if action == "C":
        if vr == "SQ":
            _recurse(ctx, elem, path, names, True)
            return
        if vr not in _TEXT_VRS and vr != "PN":
            basic = profile_action(int(elem.tag))
            if basic is not None:  # a coded or numeric value: nothing to clean, the profile acts
                _apply(ctx, ds, elem, _RESOLVE[basic], path, names, clean_text_leaves)
            return
        values = [clean_text(str(v), ctx.identifiers) for v in _values(elem)]
        if values:
            _set(elem, values)
            if value_bytes(elem) != old:
                ctx.log(path, names, "C", old)
        return
    raise AssertionError(action)  # pragma: no cover


def _dummy_item(ctx: Context, item) -> None:
    """Dummy values for every attribute of a sequence item (action D on a sequence)."""
    for tag in list(item.keys()):
        if tag.is_private or tag.element == 0:
            item.pop(tag)
            continue
        elem = item[tag]
        if elem.VR == "SQ":
            for sub in elem.value or []:
                _dummy_item(ctx, sub)
        elif elem.VR == "UI":
            if not _keeps_uid(elem.keyword):
                values = _values(elem)
                if values:
                    _set(elem, [map_uid(ctx.key, v) for v in values])
        else:
            elem.value = DUMMY.get(elem.VR, DUMMY_TEXT)
