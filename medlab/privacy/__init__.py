"""DICOM de-identification: DICOM PS3.15 Basic Application Level Confidentiality Profile.

=============================== ==============================================================
:func:`deidentify`              DICOM file or folder -> de-identified copies in a new folder,
                                with an audit CSV (keyed hashes of old values, never values)
:class:`DeidSummary`            what was written, skipped (why), flagged for burned-in text
:func:`patient_pseudonym`       the pseudonym a PatientID gets under a key
:func:`remap_uid`               the UID an original UID gets under a key
:func:`profile_action`          the Table E.1-1 action (X, Z, D, U, X/Z, ...) of a tag
:func:`profile_table`           every single-tag entry of Table E.1-1 used
:func:`burned_in_reason`        why a dataset's pixels may show identifying text (or None)
:func:`compare`                 before/after states of one file's attributes (never values)
=============================== ==============================================================

The table is DICOM PS3.15 Table E.1-1 (release ``TABLE_VERSION``) as shipped by the
``dicom-anonymizer`` package; replacements are HMAC-SHA256 under a user key, so they are the
same across runs and studies with the same key. pydicom is imported only when used.
"""

from __future__ import annotations

from medlab.privacy import _keys
from medlab.privacy._compare import COMPARE_COLUMNS, compare
from medlab.privacy._deid import AUDIT_COLUMNS, DeidSummary, deidentify
from medlab.privacy._pixels import burned_in_reason
from medlab.privacy._profile import TABLE_VERSION, profile_action, profile_table


def patient_pseudonym(patient_id: str, *, key) -> str:
    """The pseudonym :func:`deidentify` gives ``patient_id`` under ``key`` (16 hex digits).

    >>> patient_pseudonym("12345", key="a long secret key") == patient_pseudonym("12345", key="a long secret key")
    True

    Parameters
    ----------
    patient_id : str
        The original PatientID.
    key : bytes or str
        The secret key given to :func:`deidentify`.
    """
    return _keys.pseudonym(_keys.key_bytes(key), str(patient_id))


def remap_uid(uid: str, *, key) -> str:
    """The UID :func:`deidentify` gives ``uid`` under ``key`` (well-known UIDs are kept).

    >>> remap_uid("1.2.3.4", key="a long secret key").startswith("2.25.")
    True
    >>> remap_uid("1.2.840.10008.5.1.4.1.1.2", key="a long secret key")  # CT Image Storage
    '1.2.840.10008.5.1.4.1.1.2'

    Parameters
    ----------
    uid : str
        The original UID.
    key
        As for :func:`patient_pseudonym`.
    """
    from medlab.privacy._clean import map_uid

    return map_uid(_keys.key_bytes(key), uid)


__all__ = [
    "deidentify",
    "DeidSummary",
    "patient_pseudonym",
    "remap_uid",
    "profile_action",
    "profile_table",
    "burned_in_reason",
    "compare",
    "COMPARE_COLUMNS",
    "TABLE_VERSION",
    "AUDIT_COLUMNS",
]
