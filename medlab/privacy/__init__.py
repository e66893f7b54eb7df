"""DICOM de-identification (PS3.15 Basic Profile) with an audit; filled by the privacy issue."""
