"""A known-truth registration study over a cohort: one row per patient."""

from __future__ import annotations

from medlab._options import check_choice

from ._method import rotation_centre
from ._register import register
from ._resample import move_image
from ._validation import random_affine, random_rigid, registration_scores

__all__ = ["known_truth_study", "TRUTHS"]

#: the known random motions a study can apply (``truth=``)
TRUTHS = {"rigid": random_rigid, "affine": random_affine}


def known_truth_study(pairs, *, truth: str = "rigid", seed: int = 0, **options):
    """Move each aligned pair's moving scan by a known random motion, register it back, score it.

    The recipe of :mod:`medlab.registration`'s known truth, run for every pair: the motion
    (``random_rigid`` or ``random_affine`` with ``seed``) turns about the centroid of the fixed
    scan's label; :func:`move_image` moves the moving scan and its label by it;
    :func:`register` registers the fixed scan to the moved one with ``options``; and
    :func:`registration_scores` compares the result with the motion over the fixed label (TRE)
    and through the labels (Dice). A notebook shows these steps on one patient, then the cohort
    as this one call.

    Parameters
    ----------
    pairs : iterable of (Case, Case)
        ``(fixed, moving)`` per patient, two :class:`medlab.datasets.Case` that are aligned as
        given (e.g. the CT and the PET of one PET/CT), each with one ``label`` of the same
        structure (e.g. the tumour). A generator is read one pair at a time. The row is named
        by the fixed case's ``id``.
    truth : {'rigid', 'affine'}
        The known motion: rotation and shift, or that plus scales and shears.
    seed : int
        Seed of the motion; the same for every pair (each pair turns about its own centroid).
    **options
        Passed to :func:`register` (``transform=``, ``metric=``, ``modalities=``, ``levels=``,
        ...).

    Returns
    -------
    pandas.DataFrame
        Indexed by case id (``case``): the keys of :func:`registration_scores`
        (``tre_start_mean_mm``, ``tre_mean_mm``, ``tre_p95_mm``, ``tre_max_mm``, ``dice``,
        ``dice_start``, ``dice_truth``) and ``seconds`` (the registration's wall time).

    Raises
    ------
    ValueError
        An unknown ``truth``; ``pairs`` empty.
    """
    import pandas as pd

    make_truth = TRUTHS[check_choice("truth", truth, list(TRUTHS))]
    rows = {}
    for fixed, moving in pairs:
        motion = make_truth(seed=seed, centre_mm=rotation_centre(fixed.image, fixed.label > 0))
        moved = move_image(moving.image, motion)
        moved_label = move_image(moving.label, motion, is_label=True)
        result = register(fixed.image, moved, **options)
        scores = registration_scores(result.transform, motion, target_mask=fixed.label, fixed_mask=fixed.label,
                                     moving_mask=moved_label)
        rows[fixed.id] = {**scores, "seconds": result.seconds}
    if not rows:
        raise ValueError("`pairs` is empty: give at least one (fixed, moving) pair of cases")
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "case"
    return table
