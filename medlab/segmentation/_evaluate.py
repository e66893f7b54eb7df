"""Scoring one-click segmentation methods over a cohort: one row per case and method."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from medlab._options import check_choice
from medlab.metrics import segmentation_scores

from ._lesion import SEED_RULES, seed_from_mask

__all__ = ["score_methods"]


def score_methods(cases: Iterable, methods: Mapping[str, Mapping], *, segment: Callable, seed_rule: str = "max",
                  tolerance_mm: float = 2.0):
    """Segment every case with every method from one click, and score each against its reference.

    For each case, the click is a seed taken from the reference mask (:func:`seed_from_mask`
    with ``seed_rule``: where a reader would click, the mask says only *where* the lesion is);
    every method then runs as ``segment(case.image, seed_index=seed, **options)`` from that same
    seed, and its mask is scored against the reference with
    :func:`medlab.metrics.segmentation_scores`. This is the loop of a method comparison written
    once, so that a notebook shows one case step by step and the cohort as one call.

    Parameters
    ----------
    cases : iterable of medlab.datasets.Case
        Each with an ``image`` and exactly one ``label`` (the reference mask, on the image's
        grid); ``id`` names its rows. A generator is read one case at a time, so a cohort is
        never held in memory at once.
    methods : mapping of str to mapping
        Method name -> keyword options of ``segment`` (e.g. ``{"40% SUVmax": {"method":
        "percent_suvmax", "percent": 40}}``); at least one.
    segment : callable
        ``segment(image, *, seed_index, **options) -> mask``, e.g.
        :func:`segment_pet_tumour`, :func:`segment_ct_tumour`, :func:`segment_mr_tumour`.
    seed_rule : {'max', 'interior'}
        How the click is taken from the reference (:func:`seed_from_mask`): the brightest voxel
        inside it (PET: SUVmax) or its most interior voxel.
    tolerance_mm : float
        Tolerance of the surface Dice (mm).

    Returns
    -------
    pandas.DataFrame
        One row per case and method, cases in the given order and methods in the mapping's
        order: ``case``, ``method``, ``seed_index`` ((z, y, x)) and the keys of
        :func:`medlab.metrics.segmentation_scores` (``dice``, ``hd95_mm``, ``surface_dice``,
        ``prediction_ml``, ``truth_ml``, ...).

    Raises
    ------
    ValueError
        ``methods`` or ``cases`` empty, an unknown ``seed_rule``.

    Examples
    --------
    >>> from medlab import datasets, segmentation as seg
    >>> cohort = (datasets.load("sts", case=c, modality="PET") for c in datasets.cases("sts"))
    >>> table = seg.score_methods(cohort, {"Otsu in box": {"method": "otsu_box"}},
    ...                           segment=seg.segment_pet_tumour)  # doctest: +SKIP
    >>> table.groupby("method")["dice"].mean()  # doctest: +SKIP
    """
    import pandas as pd

    rule = check_choice("seed_rule", seed_rule, SEED_RULES)
    methods = dict(methods)
    if not methods:
        raise ValueError("`methods` is empty: give at least one name -> options of `segment`")
    rows = []
    for case in cases:
        truth = case.label
        seed = seed_from_mask(truth, case.image, rule=rule)
        for name, options in methods.items():
            result = segment(case.image, seed_index=seed, **options)
            scores = segmentation_scores(result, truth, tolerance_mm=tolerance_mm)
            rows.append({"case": case.id, "method": name, "seed_index": seed, **scores})
    if not rows:
        raise ValueError("`cases` is empty: give at least one case with an image and its reference label")
    return pd.DataFrame(rows)
