"""IBSI-conformant radiomics features: morphology, intensity, histogram and texture families.

Features follow the Image Biomarker Standardisation Initiative (IBSI 1) definitions and names,
and are checked against the IBSI consensus values for the digital phantom and the CT phantom
(configurations A and B) in the test suite. Processing before feature calculation is explicit
(:class:`FeatureSettings`): interpolation on a grid aligned at the image centre, re-segmentation
(range, outliers) into an intensity mask beside the morphological mask, and discretisation with a
fixed bin number or a fixed bin size.

Images are ``SimpleITK.Image`` or numpy arrays indexed ``(z, y, x)`` with ``spacing`` in mm in the
same order; morphological features are in mm, mm^2 and mm^3; intensities keep their units.

Output is a tidy table (pandas): one row per case/ROI, one column per feature. Column names are
the IBSI feature tags with ``_`` for ``.`` (``morph_vol``, ``stat_mean``, ``ih_entropy``,
``cm_joint_max``, ...), family prefix first; texture columns end with the IBSI aggregation
method (``cm_joint_max_2D_avg``, ``rlm_sre_3D_mrg``, ``szm_sze_2.5D``; see ``AGGREGATIONS``).
:func:`long_table` gives one row per feature with its family name.

=================================== ==========================================================
Features
:func:`extract`                     one ROI -> one-row table
:func:`extract_table`               many cases -> one row per case (progress, stoppable)
:func:`long_table`                  case, family, feature, aggregation, value
Processing
:class:`FeatureSettings`            interpolation, re-segmentation, discretisation, families
:func:`ibsi_settings`               the IBSI reference settings ('digital phantom', 'A'..'E')
:func:`prepare_roi`                 the processed image and masks (diagnostics)
:func:`discretise`                  FBN / FBS grey levels
IBSI reference
:func:`ibsi_reference_values`       consensus values and tolerances parsed from the IBSI document
:func:`compare_with_reference`      computed vs reference, per feature
:func:`compliance_summary`          implemented / within tolerance per family
``FAMILIES``, ``AGGREGATIONS``      family prefixes and aggregation codes
=================================== ==========================================================

Families: ``morph`` morphology, ``loc`` local intensity, ``stat`` intensity statistics, ``ih``
intensity histogram, ``ivh`` intensity-volume histogram, ``cm`` GLCM, ``rlm`` GLRLM, ``szm``
GLSZM, ``dzm`` GLDZM, ``ngt`` NGTDM, ``ngl`` NGLDM. Features that IBSI gives no reference value
for (OMBB and MVEE densities, area under the IVH curve) are not computed.
"""

from __future__ import annotations

from ._extract import (
    compare_with_reference,
    compliance_summary,
    extract,
    extract_table,
    long_table,
)
from ._prepare import (
    FeatureSettings,
    PreparedROI,
    discretise,
    ibsi_settings,
    prepare_roi,
)
from ._reference import (
    AGGREGATIONS,
    FAMILIES,
    column_name,
    family_of,
    ibsi_reference_values,
)

__all__ = [
    # tables (_extract.py)
    "extract",
    "extract_table",
    "long_table",
    "compare_with_reference",
    "compliance_summary",
    # processing (_prepare.py)
    "FeatureSettings",
    "ibsi_settings",
    "prepare_roi",
    "PreparedROI",
    "discretise",
    # IBSI reference (_reference.py)
    "ibsi_reference_values",
    "FAMILIES",
    "AGGREGATIONS",
    "column_name",
    "family_of",
]
