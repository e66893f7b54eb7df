"""Classic segmentation: thresholds, region growing, edge-based methods, morphology, label statistics.

Every function takes a ``SimpleITK.Image`` or a numpy array indexed ``(z, y, x)`` (2D:
``(y, x)``, with an optional ``spacing`` in mm in the same order) and returns the same kind on
the same grid; inputs are never modified. Masks are uint8 (1 inside, 0 outside); a mask given
as input may be any nonzero-inside array or image.

Seeds are named by their frame: ``seeds_index=[(z, y, x), ...]`` are numpy indexes,
``seeds_mm=[(x, y, z), ...]`` physical points in mm (SimpleITK order); give exactly one. A
seed outside the image is a ValueError naming it and the image extent. Sizes named ``*_mm``
are physical and converted with the voxel spacing, per axis.

==================================== ==============================================================
Thresholds
:func:`threshold`                    manual window ``lower <= image <= upper``
:func:`auto_threshold`               Otsu, Li, triangle, Yen, isodata threshold (float), optional mask
:func:`auto_threshold_mask`          ``image > auto_threshold(...)``
:func:`multi_otsu`                   n-class Otsu label image
:func:`hu_mask`, ``HU_RANGES``       CT tissue masks from cited Hounsfield ranges
:func:`suv_threshold`                PET ``SUV >= suv``
:func:`percent_suvmax`               PET ``>= percent`` % of SUVmax in a region of interest
Region growing
:func:`connected_threshold`          flood fill within an intensity range
:func:`confidence_connected`         range learnt from the region (mean +- k std)
:func:`neighborhood_connected`       flood fill requiring the whole neighbourhood in range
:func:`region_grow_percent_suvmax`   PET lesion: connected to the local SUVmax above percent of it
Edge-based
:func:`canny`                        Canny edges (from :mod:`medlab.filters`)
:func:`canny_regions`                regions enclosed by Canny edges
:func:`edge_speed`                   edge-stopping speed image for level sets / fast marching
:func:`watershed`                    marker-controlled watershed of the gradient magnitude
:func:`geodesic_active_contour`      level set attracted to edges (progress, stoppable)
:func:`threshold_level_set`          level set within an intensity range (progress, stoppable)
:func:`fast_marching`                front from seeds with the edge speed
Morphology and components
:func:`opening`, :func:`closing`     radius in mm, per-axis voxel radius from the spacing
:func:`erosion`, :func:`dilation`    shrink or grow a mask by a radius in mm (per axis)
:func:`fill_holes`                   3D or slice-wise
:func:`connected_components`         labels sorted by size
:func:`largest_component`            the largest one
:func:`component_at`                 the component(s) containing seeds
:func:`remove_small_objects`         ``min_voxels``, ``min_volume_ml`` (3D) or ``min_area_mm2`` (2D)
:func:`label_statistics`             size, centroid (mm), bounding box, intensity per label
Lesions from one seed
:func:`segment_pet_tumour`           PET: Otsu in a box, percent of the local SUVmax, or SUV 2.5
:func:`segment_ct_tumour`            CT: HU-range growing in a measured sphere, opening, closing, fill
:func:`segment_mr_tumour`            MR: confidence connected + threshold level set, or watershed
:func:`seed_from_mask`               a seed inside a reference mask (SUVmax or most interior voxel)
:func:`score_methods`                methods x cases from one click each, scored against the reference
Measurement
:func:`longest_diameter`             RECIST-style longest in-plane (axial) diameter in mm
:func:`fit_ellipse`                  ellipse fitted to a 2D outline in mm (partial outlines too)
:func:`ellipse_circumference`        perimeter of an ellipse (Ramanujan); :func:`ellipse_residual`
:func:`suv_metrics`                  PET: SUVmax, SUVmean, SUVpeak, metabolic volume (mL), TLG
:func:`pet_plausibility`             PET: plausibility verdict of a one-click lesion (with reasons)
==================================== ==============================================================
"""

from __future__ import annotations

from ._edges import (
    canny,
    canny_regions,
    edge_speed,
    fast_marching,
    geodesic_active_contour,
    threshold_level_set,
    watershed,
)
from ._evaluate import score_methods
from ._lesion import (
    seed_from_mask,
    segment_ct_tumour,
    segment_mr_tumour,
    segment_pet_tumour,
)
from ._measure import (
    ELLIPSE_METHODS,
    Diameter,
    Ellipse,
    EllipseFit,
    ellipse_circumference,
    ellipse_residual,
    fit_ellipse,
    longest_diameter,
)
from ._morphology import (
    closing,
    component_at,
    connected_components,
    dilation,
    erosion,
    fill_holes,
    label_statistics,
    largest_component,
    opening,
    remove_small_objects,
)
from ._region import (
    confidence_connected,
    connected_threshold,
    neighborhood_connected,
    region_grow_percent_suvmax,
)
from ._threshold import (
    HU_RANGES,
    HURange,
    auto_threshold,
    auto_threshold_mask,
    hu_mask,
    multi_otsu,
    percent_suvmax,
    suv_threshold,
    threshold,
)
from ._uptake import PET_PLAUSIBILITY, ImplausibleSegmentationWarning, PetVerdict, pet_plausibility, suv_metrics

__all__ = [
    # thresholds (_threshold.py)
    "threshold",
    "auto_threshold",
    "auto_threshold_mask",
    "multi_otsu",
    "HU_RANGES",
    "HURange",
    "hu_mask",
    "suv_threshold",
    "percent_suvmax",
    # region growing (_region.py)
    "connected_threshold",
    "confidence_connected",
    "neighborhood_connected",
    "region_grow_percent_suvmax",
    # edge-based (_edges.py)
    "canny",
    "canny_regions",
    "edge_speed",
    "watershed",
    "geodesic_active_contour",
    "threshold_level_set",
    "fast_marching",
    # morphology and components (_morphology.py)
    "opening",
    "closing",
    "erosion",
    "dilation",
    "fill_holes",
    "connected_components",
    "largest_component",
    "component_at",
    "remove_small_objects",
    "label_statistics",
    # one-click lesions (_lesion.py)
    "segment_pet_tumour",
    "segment_ct_tumour",
    "segment_mr_tumour",
    "seed_from_mask",
    "score_methods",
    # measurement (_measure.py)
    "longest_diameter",
    "Diameter",
    "fit_ellipse",
    "Ellipse",
    "EllipseFit",
    "ELLIPSE_METHODS",
    "ellipse_circumference",
    "ellipse_residual",
    # PET uptake of a lesion (_uptake.py)
    "suv_metrics",
    "pet_plausibility",
    "PetVerdict",
    "PET_PLAUSIBILITY",
    "ImplausibleSegmentationWarning",
]
