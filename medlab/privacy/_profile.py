"""DICOM PS3.15 Table E.1-1: the Basic Application Level Confidentiality Profile and options.

The Basic Profile column (the action for each attribute) comes from ``dicom-anonymizer``
(KitwareMedical), which generates it from the standard's own tables for each release; medlab
uses its 2026c table and applies it with its own engine (keyed UIDs and pseudonyms, date
shifting, nested sequences, audit). The three option columns medlab implements are
transcribed below from the same table.

Action codes of the table: X remove, Z empty (zero length), D dummy value, U keyed UID,
combinations (X/Z, X/D, Z/D, X/Z/D) where the stronger one keeps the IOD valid, and X/Z/U*
for sequences of references (kept, their UIDs remapped).
"""

from __future__ import annotations

import functools

TABLE_VERSION = "2026c"

_CATEGORIES = {
    "X_TAGS": "X",
    "Z_TAGS": "Z",
    "D_TAGS": "D",
    "U_TAGS": "U",
    "Z_D_TAGS": "Z/D",
    "X_Z_TAGS": "X/Z",
    "X_D_TAGS": "X/D",
    "X_Z_D_TAGS": "X/Z/D",
    "X_Z_U_STAR_TAGS": "X/Z/U*",
}

# Column "Rtn. Pat. Chars. Opt." of Table E.1-1: K keep, C clean.
PATIENT_CHARACTERISTICS_KEEP = frozenset(
    {
        0x00102160,  # Ethnic Group
        0x00101010,  # Patient's Age
        0x00100040,  # Patient's Sex
        0x00102203,  # Patient's Sex Neutered
        0x00101020,  # Patient's Size
        0x00101030,  # Patient's Weight
        0x001021C0,  # Pregnancy Status
        0x001021A0,  # Smoking Status
    }
)
PATIENT_CHARACTERISTICS_CLEAN = frozenset(
    {
        0x00102110,  # Allergies
        0x00380500,  # Patient State
        0x00400012,  # Pre-Medication
        0x00380050,  # Special Needs
    }
)

# Column "Clean Desc. Opt." of Table E.1-1 (every entry is C).
CLEAN_DESCRIPTORS = frozenset(
    {
        0x00184000,  # Acquisition Comments
        0x00181400,  # Acquisition Device Processing Description
        0x001811BB,  # Acquisition Field Of View Label
        0x00189424,  # Acquisition Protocol Description
        0x001021B0,  # Additional Patient History
        0x00081084,  # Admitting Diagnoses Code Sequence
        0x00081080,  # Admitting Diagnoses Description
        0x00102110,  # Allergies
        0x300A00C3,  # Beam Description
        0x300A00DD,  # Bolus Description
        0x00120072,  # Clinical Trial Series Description
        0x00120051,  # Clinical Trial Time Point Description
        0x00400310,  # Comments on Radiation Dose
        0x00400280,  # Comments on the Performed Procedure Step
        0x300A02EB,  # Compensator Description
        0x3010000F,  # Conceptual Volume Combination Description
        0x30100017,  # Conceptual Volume Description
        0x0040051A,  # Container Description
        0x00180010,  # Contrast/Bolus Agent
        0x0018A003,  # Contribution Description
        0x0018937F,  # Decomposition Description
        0x00082111,  # Derivation Description
        0x0016004B,  # Device Setting Description
        0x00380040,  # Discharge Diagnosis Description
        0x300A0016,  # Dose Reference Description
        0x30100037,  # Entity Description
        0x30100035,  # Entity Label
        0x30100038,  # Entity Long Label
        0x30100036,  # Entity Name
        0x300A0676,  # Equipment Frame of Reference Description
        0x300A0196,  # Fixation Device Description
        0x3010007F,  # Fractionation Notes
        0x300A0072,  # Fraction Group Description
        0x00209158,  # Frame Comments
        0x00084000,  # Identifying Comments
        0x00204000,  # Image Comments
        0x00402400,  # Imaging Service Request Comments
        0x40080300,  # Impressions
        0x300A0742,  # Interlock Description
        0x300A0783,  # Interlock Origin Description
        0x40080115,  # Interpretation Diagnosis Description
        0x4008010B,  # Interpretation Text
        0x22000002,  # Label Text
        0x00500021,  # Long Device Description
        0x0016002B,  # Maker Note
        0x00102000,  # Medical Alerts
        0x0018937B,  # Multi-energy Acquisition Description
        0x00102180,  # Occupation
        0x00104000,  # Patient Comments
        0x00380500,  # Patient State
        0x00400254,  # Performed Procedure Step Description
        0x300A000E,  # Prescription Description
        0x3010007B,  # Prescription Notes
        0x30100081,  # Prescription Notes Sequence
        0x30100061,  # Prior Treatment Dose Description
        0x00181030,  # Protocol Name
        0x300A0619,  # Radiation Dose Identification Label
        0x300A0623,  # Radiation Dose In-Vivo Measurement Label
        0x300A067D,  # Radiation Generation Mode Description
        0x300A067C,  # Radiation Generation Mode Label
        0x300C0113,  # Reason for Omission Description
        0x0040100A,  # Reason for Requested Procedure Code Sequence
        0x00321030,  # Reason for Study
        0x3010005C,  # Reason for Superseding
        0x00402001,  # Reason for the Imaging Service Request
        0x00401002,  # Reason for the Requested Procedure
        0x00321066,  # Reason for Visit
        0x00321067,  # Reason for Visit Code Sequence
        0x00400275,  # Request Attributes Sequence
        0x00321070,  # Requested Contrast Agent
        0x00401400,  # Requested Procedure Comments
        0x00321060,  # Requested Procedure Description
        0x00189937,  # Requested Series Description
        0x00189185,  # Respiratory Motion Compensation Technique Description
        0x40084000,  # Results Comments
        0x30060028,  # ROI Description
        0x30060038,  # ROI Generation Description
        0x30060026,  # ROI Name
        0x30060088,  # ROI Observation Description
        0x30060085,  # ROI Observation Label
        0x3010005A,  # RT Physician Intent Narrative
        0x300A0004,  # RT Plan Description
        0x300A0002,  # RT Plan Label
        0x300A0003,  # RT Plan Name
        0x30100054,  # RT Prescription Label
        0x300A062A,  # RT Tolerance Set Label
        0x30100056,  # RT Treatment Approach Label
        0x00400007,  # Scheduled Procedure Step Description
        0x0008103E,  # Series Description
        0x00380062,  # Service Episode Description
        0x300A01B2,  # Setup Technique Description
        0x300A01A6,  # Shielding Device Description
        0x00400602,  # Specimen Detailed Description
        0x00400600,  # Specimen Short Description
        0x30060006,  # Structure Set Description
        0x30060002,  # Structure Set Label
        0x30060004,  # Structure Set Name
        0x00324000,  # Study Comments
        0x00081030,  # Study Description
        0x300A0608,  # Treatment Position Group Label
        0x30100077,  # Treatment Site
        0x3010007A,  # Treatment Technique Notes
        0x300A0734,  # Treatment Tolerance Violation Description
        0x30100033,  # User Content Label
        0x30100034,  # User Content Long Label
        0x00384000,  # Visit Comments
    }
)

# Column "Rtn. Long. Modif. Dates Opt." marks (C) every date, time and date-time attribute of
# the table except the patient's birth date and time, which stay removed.
NOT_LONGITUDINAL = frozenset({0x00100030, 0x00100032})  # Patient's Birth Date, Birth Time


@functools.lru_cache(maxsize=1)
def _table() -> tuple[dict[int, str], tuple[tuple[int, int, int, int, str], ...]]:
    from dicomanonymizer.dicomfields_selector import (
        dicom_anonymization_database_selector,
    )

    db = dicom_anonymization_database_selector(f"dicomfields_{TABLE_VERSION}")
    single: dict[int, str] = {}
    masked = []
    for category, action in _CATEGORIES.items():
        for entry in db[category]:
            if len(entry) == 2:
                tag = (entry[0] << 16) | entry[1]
                if single.get(tag, action) != action:  # pragma: no cover - table consistency
                    raise AssertionError(f"tag {tag:08X} has two actions in the profile table")
                single[tag] = action
            else:
                group, element, group_mask, element_mask = entry
                masked.append((group, element, group_mask, element_mask, action))
    return single, tuple(masked)


def profile_action(tag) -> str | None:
    """The Basic Profile action of ``tag`` (int or pydicom Tag), or None if it is not listed.

    Private attributes (odd groups) are not in the table; the profile removes them all.

    Parameters
    ----------
    tag : int or pydicom.tag.BaseTag
        A DICOM tag.
    """
    single, masked = _table()
    tag = int(tag)
    action = single.get(tag)
    if action is not None:
        return action
    group, element = tag >> 16, tag & 0xFFFF
    for g, e, gm, em, act in masked:
        if group & gm == g & gm and element & em == e & em:
            return act
    return None


def profile_table() -> dict[int, str]:
    """Every single-tag entry of Table E.1-1 (tag as int -> action code); see :func:`profile_action`."""
    return dict(_table()[0])
