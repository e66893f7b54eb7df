"""Benchmarks of medlab.registration against ANTsPy on real CT/MR/PET and on the MNI152 T1.

Known-transform experiments (issue 4, "Accuracy on real multimodal data" and "Benchmarks"):

* **Sarcoma CT/MR/PET** (``medlab.datasets.cases('sts')``, 10 patients): the MR_T1 or PET is
  moved by a known random rigid (<= 10 degrees about the CT GTV centre, <= 15 mm) or affine
  (the same plus <= 5 % scale and shear) transform ``truth`` (``move_image``; its GTV mask too,
  nearest neighbour) and registered back to the CT with Mattes mutual information:
  medlab ``register(ct, moving, transform='rigid'|'affine')`` (its affine runs a rigid stage
  first and rejects a collapsed affine stage: ``rigid_first``), the affine without that stage
  ("direct", ``rigid_first=False``), and ANTsPy ``ants.registration(type_of_transform='Rigid'|'Affine',
  aff_metric='mattes')`` twice: with its defaults ("ANTs": it starts by matching the intensity
  centres of mass) and started at the identity like medlab ("ANTs(id)",
  ``initial_transform='Identity'``). A registration that fails (diverges, leaves the image) is
  recorded as such and left out of the means. Scores (``registration_scores``): TRE over the CT
  GTV voxels (mean, p95, mm) against ``truth``, Dice of the moved GTV mask brought back onto
  the CT GTV, wall time.
* **Drift**: the unperturbed pair is registered too (truth = identity). The sarcoma MR is not
  in the CT's anatomical pose (the IBSI set resampled it onto the CT around the tumour; bone
  and leg posture differ by about 2 cm), so the mutual-information optimum is not the provided
  alignment: ``drift`` = TRE of that result against the identity, the floor of any TRE
  measured against the provided alignment. ``TRE vs own optimum`` compares a result with
  ``truth o drift`` (the unperturbed optimum moved by the truth): how well each method finds
  its own optimum again from the displaced start, free of the data's misalignment.
* **Deformable**: MNI152 T1 at 2 mm (``datasets.load('mni152', resolution=2)``), truth =
  ``random_deformation(t1, max_displacement_mm=6, seed=s)``, moving =
  ``resample(move_image(t1, truth), t1)``; medlab B-spline, demons, diffeomorphic demons vs
  ANTs ``SyN`` (defaults). Mean displacement error over the brain mask, folding (Jacobian
  determinant <= 0, in the brain and on the whole grid), wall time.

ANTs <-> SimpleITK: images go through numpy (ANTs arrays are indexed (x, y, z), SimpleITK's
(z, y, x)) with the same origin, spacing and direction (both ITK, LPS physical space). ANTs'
forward transforms (``fwdtransforms``, the list ``apply_transforms`` uses to pull the moving
image onto the fixed grid) map fixed points to moving points, medlab's convention: the
``.mat`` is read by ``SimpleITK.ReadTransform``, a SyN warp by ``SimpleITK.ReadImage`` into a
``DisplacementFieldTransform``, composed as ``affine(warp(x))``. :func:`check_conversion`
verifies all of it on known translations (run first by the standalone run, stored in the
JSON).

Standalone (per-patient tables, markdown + JSON; written after every patient, so a stopped
run leaves what it measured)::

    MEDLAB_DATA_STORE=../shared/data .venv/bin/python benchmarks/bench_registration.py \\
        --out benchmarks/results/registration

``BENCHMARKS`` (for ``benchmarks/run.py``) holds three single-case entries: rigid CT-MR and
affine CT-PET of one patient, and B-spline vs SyN on the MNI152 T1 (one seed).

Run time of the standalone run on 2 cores (load about 2, medlab at 63d048e): about 28 min
(1702 s; over the 20 min aimed at: --no-direct, --no-ants or fewer --cases shorten it) for
10 patients x 2 modalities x 2 truths (each row: 2-4 medlab, 4 ANTs registrations of 2-30 s)
and 3 MNI152 seeds (about 1.5 min each).

Times are wall times on whatever machine runs it (2 shared cores for the committed results),
ITK's default threads for both libraries (all cores); medlab and ANTs alternate case by case.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if "MEDLAB_DATA_STORE" not in os.environ and (ROOT.parent / "shared" / "data").is_dir():
    os.environ["MEDLAB_DATA_STORE"] = str(ROOT.parent / "shared" / "data")

MODALITIES = ("MR_T1", "PET")
LINEAR_TRUTHS = ("rigid", "affine")
DEFORMABLE = ("bspline", "demons", "diffeomorphic_demons")
#: seeds of the random truths: one per patient and transform kind (the same truth for MR and
#: PET of a patient, so that the two modalities meet the same displacement)
SEED_BASE = {"rigid": 100, "affine": 200}
MNI_SEEDS = (0, 1, 2)
MAX_DISPLACEMENT_MM = 6.0
#: ANTs samples the metric at random (a new draw per run by default, and results differ by
#: centimetres on some sarcoma pairs): a fixed seed makes runs repeatable; nothing else of
#: ANTs' defaults is changed
ANTS_SEED = 1

NOTES = [
    ("medlab: `register` defaults (Mattes MI for CT-MR/CT-PET, pyramid 4-2-1, conjugate-gradient line "
    "search, 25 % sampling), start = identity (the data set's physical alignment). ANTs: "
    "`ants.registration` defaults (Mattes, 4 levels 6-4-2-1, 20 % regular sampling, start = centres "
    "of mass of the intensities) with `random_seed=1` for repeatability; its centre-of-mass start "
    "is far off for the MR, whose field of view differs from the CT's, which is where its large "
    "MR errors come from (not measured here: ANTs with `initial_transform='Identity'`)."),
    ("Truths: seed 100 + patient index (rigid), 200 + patient index (affine), the same for MR and "
    "PET of a patient; about the CT GTV centroid."),
    ("Dice: the modality's own GTV (drawn on the MR or PET), moved with the image, brought back "
     "through the result onto the CT GTV; Dice truth (through the true transform) is its ceiling."),
    ("drift / vs own: the MR is not in the CT's anatomical pose (the IBSI set resampled it onto the "
    "CT around the tumour), so TRE against the provided alignment cannot fall below the drift; "
    "vs own is the error against where the same method puts the unperturbed pair."),
    ("MNI152: error = mean |result(x) - truth(x)| over the brain voxels (mm); the truth's own mean "
    "displacement there is the start column (max 6 mm, smooth). SyN includes ANTs' affine stage."),
]


# ----------------------------------------------------------------------------- conversion
def to_ants(img):
    """A SimpleITK image as an ANTsImage (float32): same voxels, origin, spacing, direction."""
    import ants
    import numpy as np
    import SimpleITK as sitk

    arr = sitk.GetArrayFromImage(img).astype(np.float32).T.copy()  # (z,y,x) -> (x,y,z)
    d = img.GetDimension()
    return ants.from_numpy(arr, origin=tuple(img.GetOrigin()), spacing=tuple(img.GetSpacing()),
                           direction=np.asarray(img.GetDirection(), dtype=float).reshape(d, d))


def from_ants(aimg):
    """An ANTsImage as a SimpleITK image (the inverse of :func:`to_ants`)."""
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(aimg.numpy().T.copy())
    img.SetOrigin(tuple(float(v) for v in aimg.origin))
    img.SetSpacing(tuple(float(v) for v in aimg.spacing))
    img.SetDirection(tuple(float(v) for v in aimg.direction.ravel()))
    return img


def ants_transform(fwdtransforms):
    """ANTs' forward transform list (fixed -> moving) as one SimpleITK transform.

    ``[affine.mat]`` -> the affine; ``[warp.nii.gz, affine.mat]`` (SyN) -> ``affine(warp(x))``:
    the warp, found last, acts first on a fixed point (checked by :func:`_check_composition`
    against ``ants.apply_transforms``).
    """
    import SimpleITK as sitk

    from medlab.registration import compose

    parts = []
    for path in fwdtransforms:
        if str(path).endswith((".nii.gz", ".nii")):
            field = sitk.ReadImage(str(path), sitk.sitkVectorFloat64)
            parts.append(sitk.DisplacementFieldTransform(field))
        else:
            parts.append(sitk.ReadTransform(str(path)))
    return compose(*reversed(parts))  # [warp, affine] -> affine(warp(x))


def _cleanup(reg_out):
    for key in ("fwdtransforms", "invtransforms"):
        paths = reg_out.get(key) or []
        for p in [paths] if isinstance(paths, str) else paths:
            try:
                os.remove(p)
            except OSError:
                pass


def ants_register(fixed_a, moving_a, kind, **kw):
    """``ants.registration`` -> (SimpleITK fixed -> moving transform, wall seconds)."""
    import ants

    kw.setdefault("random_seed", ANTS_SEED)
    t0 = time.perf_counter()
    out = ants.registration(fixed_a, moving_a, type_of_transform=kind, **kw)
    tx = ants_transform(out["fwdtransforms"])
    seconds = time.perf_counter() - t0
    _cleanup(out)
    return tx, seconds


def check_conversion():
    """Known-translation checks of the image and transform conversions (numbers in mm / HU).

    * ``image_roundtrip_max_abs``: SimpleITK -> ANTs -> SimpleITK of the sarcoma CT (voxels,
      with the geometry compared exactly in ``image_geometry_equal``);
    * ``apply_vs_resample_max_abs``: a translation (5, -3, 7) mm written as an ITK ``.mat``,
      applied by ``ants.apply_transforms`` and by ``SimpleITK.Resample`` (linear): same image
      (so the forward list pulls the moving image through fixed -> moving, like medlab);
    * ``points_forward_error_mm`` / ``points_inverse_error_mm``: ``ants.apply_transforms_to_points``
      of fixed points with that ``.mat`` vs ``t(p)``: with the forward list ANTs maps points the
      same way as it pulls images (fixed -> moving, error 0); ``whichtoinvert=[True]`` is the
      other way;
    * ``tre_translation_mm``: ANTs ``Rigid`` of the CT onto itself moved by that translation,
      converted, TRE over the GTV against the truth (< 0.1 mm);
    * ``warp_affine_vs_resample_max_pct``: see :func:`_check_composition` (warp + affine
      composed in the right order).
    """
    import ants
    import numpy as np
    import pandas as pd
    import SimpleITK as sitk

    from medlab import datasets
    from medlab.registration import move_image, registration_scores

    ct_case = datasets.load("sts", case=datasets.cases("sts")[0], modality="CT")
    ct, mask = ct_case.image, ct_case.label
    back = from_ants(to_ants(ct))
    res = {
        "image_roundtrip_max_abs": float(np.abs(sitk.GetArrayFromImage(back)
                                                - sitk.GetArrayFromImage(ct)).max()),
        "image_geometry_equal": bool(back.GetOrigin() == ct.GetOrigin()
                                     and back.GetSpacing() == ct.GetSpacing()
                                     and back.GetDirection() == ct.GetDirection()),
    }
    shift = (5.0, -3.0, 7.0)
    truth = sitk.TranslationTransform(3, shift)
    moving = move_image(ct, truth)
    tmp = Path(tempfile.mkdtemp(prefix="medlab_bench_"))
    try:
        aff = sitk.AffineTransform(3)
        aff.SetTranslation(shift)
        mat = str(tmp / "t.mat")
        sitk.WriteTransform(aff, mat)
        fa, ma = to_ants(ct), to_ants(moving)
        warped = from_ants(ants.apply_transforms(fa, ma, [mat], interpolator="linear"))
        ref = sitk.Resample(moving, ct, ants_transform([mat]), sitk.sitkLinear, float(
            sitk.GetArrayViewFromImage(moving).min()), sitk.sitkFloat32)
        inner = sitk.GetArrayViewFromImage(mask) != 0
        res["apply_vs_resample_max_abs"] = float(np.abs(
            sitk.GetArrayFromImage(warped)[inner] - sitk.GetArrayFromImage(ref)[inner]).max())
        pts = np.array([[0.0, 0.0, -850.0], [40.0, -20.0, -860.0], [10.0, 30.0, -840.0]])
        df = pd.DataFrame(pts, columns=["x", "y", "z"])
        fwd = ants.apply_transforms_to_points(3, df, [mat])[["x", "y", "z"]].to_numpy()
        inv = ants.apply_transforms_to_points(3, df, [mat], whichtoinvert=[True])[["x", "y", "z"]].to_numpy()
        want = pts + np.asarray(shift)
        res["points_forward_error_mm"] = float(np.abs(fwd - want).max())
        res["points_inverse_error_mm"] = float(np.abs(inv - want).max())
        tx, sec = ants_register(fa, ma, "Rigid", aff_metric="mattes")
        res["tre_translation_mm"] = registration_scores(tx, truth, target_mask=mask)["tre_mean_mm"]
        res["tre_translation_ants_seconds"] = sec
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    res["warp_affine_vs_resample_max_pct"] = _check_composition()
    res["ok"] = bool(res["image_roundtrip_max_abs"] == 0 and res["image_geometry_equal"]
                     and res["apply_vs_resample_max_abs"] < 1e-2 and res["tre_translation_mm"] < 0.1
                     and res["warp_affine_vs_resample_max_pct"] < 0.1)
    return res


def _check_composition():
    """ANTs' forward list ``[warp, affine]`` (as SyN writes it) against :func:`ants_transform`:
    a known displacement field (``random_deformation`` of the MNI T1, max 6 mm) written as
    ``warp.nii.gz`` and a known affine (10 degrees, 15 mm, 5 %) as ``affine.mat``; the MNI T1
    pulled by ``ants.apply_transforms`` vs ``SimpleITK.Resample`` through the converted
    transform: max |difference| over the brain, percent of the brain intensity range (the
    other order, ``warp(affine(x))``, differs by tens of percent)."""
    import ants
    import numpy as np
    import SimpleITK as sitk

    from medlab import datasets
    from medlab.registration import random_affine, random_deformation

    d = datasets.load("mni152", resolution=2)
    t1, brain = d.image, d.labels["brain"]
    field = sitk.DisplacementFieldTransform(
        random_deformation(t1, max_displacement_mm=MAX_DISPLACEMENT_MM, seed=0)).GetDisplacementField()
    aff = random_affine(centre_mm=(0.0, 0.0, 20.0), seed=3)
    tmp = Path(tempfile.mkdtemp(prefix="medlab_bench_"))
    try:
        fwd = [str(tmp / "1Warp.nii.gz"), str(tmp / "0GenericAffine.mat")]
        sitk.WriteImage(field, fwd[0])
        sitk.WriteTransform(aff, fwd[1])
        fa = to_ants(t1)
        pulled = from_ants(ants.apply_transforms(fa, fa, fwd, interpolator="linear"))
        ours = sitk.Resample(t1, t1, ants_transform(fwd), sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    inner = sitk.GetArrayViewFromImage(brain) != 0
    rng = float(np.ptp(sitk.GetArrayViewFromImage(t1)[inner]))
    diff = float(np.abs(sitk.GetArrayFromImage(pulled)[inner] - sitk.GetArrayFromImage(ours)[inner]).max())
    return 100.0 * diff / rng


# ----------------------------------------------------------------------------- sarcoma cases
def _gtv_centre(mask):
    import SimpleITK as sitk

    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(sitk.Cast(mask != 0, sitk.sitkUInt8))
    return stats.GetCentroid(1)


def truth_for(kind, case_index, centre):
    from medlab.registration import random_affine, random_rigid

    seed = SEED_BASE[kind] + case_index
    if kind == "rigid":
        return random_rigid(max_angle_deg=10.0, max_translation_mm=15.0, centre_mm=centre, seed=seed), seed
    return random_affine(max_angle_deg=10.0, max_translation_mm=15.0, max_scale=0.05, max_shear=0.05,
                         centre_mm=centre, seed=seed), seed


def _attempt(func):
    """Run one registration -> (transform or None, wall seconds, error text or None): a
    registration that fails is a result (recorded), not the end of the run."""
    from medlab.registration import RegistrationError

    t0 = time.perf_counter()
    try:
        tx = func()
        return tx, time.perf_counter() - t0, None
    except (RegistrationError, RuntimeError, ValueError) as exc:
        return None, time.perf_counter() - t0, f"{type(exc).__name__}: {str(exc)[:160]}"


def _scores(tx, truth, ct_mask, moved_mask, own_optimum):
    from medlab.registration import (
        compose,
        registration_scores,
        target_registration_error,
    )

    s = registration_scores(tx, truth, target_mask=ct_mask, fixed_mask=ct_mask, moving_mask=moved_mask)
    out = {"tre_mean_mm": s["tre_mean_mm"], "tre_p95_mm": s["tre_p95_mm"], "dice": s["dice"],
           "tre_start_mean_mm": s["tre_start_mean_mm"], "dice_start": s["dice_start"],
           "dice_truth": s["dice_truth"]}
    if own_optimum is not None:
        out["tre_vs_own_optimum_mm"] = target_registration_error(
            tx, compose(truth, own_optimum), mask=ct_mask).mean
    return out


#: the methods of a sarcoma row: medlab ``register`` (and its affine without the rigid stage), ANTs with
#: its defaults (start: centres of mass) and ANTs started at the identity like medlab
WHO = ("medlab", "direct", "ants", "antsid")


def run_case(case, case_index, mod, *, kinds=LINEAR_TRUTHS, direct=True, use_ants=True, log=print,
             register_kwargs=None):
    """All registrations of one patient and modality -> list of row dicts (one per truth)."""
    import SimpleITK as sitk

    from medlab import datasets
    from medlab.registration import move_image, register, registration_scores

    ct_case = datasets.load("sts", case=case, modality="CT")
    ct, ct_mask = ct_case.image, ct_case.label
    image_case = datasets.load("sts", case=case, modality=mod)
    image, mask = image_case.image, image_case.label
    # Dice: the modality's own GTV (drawn on the MR/PET), moved by the truth and brought back
    # onto the CT GTV; ``dice_truth`` (through the truth itself) is its ceiling
    centre = _gtv_centre(ct_mask)
    identity = sitk.Transform(3, sitk.sitkIdentity)
    fa = to_ants(ct) if use_ants else None
    ants_kind = {"rigid": "Rigid", "affine": "Affine"}

    def one(kind):
        truth, seed = truth_for(kind, case_index, centre)
        moving = move_image(image, truth)
        moved_mask = move_image(mask, truth, is_label=True)
        row = {"patient": case, "modality": mod, "transform": kind, "truth_seed": seed}

        def med(mov, k=kind, **kw):
            return register(ct, mov, transform=k, modalities=("CT", mod), **{**(register_kwargs or {}), **kw}).transform


        def ants_run(mov, **kw):
            return ants_register(fa, to_ants(mov), ants_kind[kind], aff_metric="mattes", **kw)[0]

        plan = {"medlab": (lambda: med(image), lambda: med(moving))}
        if kind == "affine" and direct:
            plan["direct"] = (lambda: med(image, rigid_first=False), lambda: med(moving, rigid_first=False))
        if use_ants:
            plan["ants"] = (lambda: ants_run(image), lambda: ants_run(moving))
            plan["antsid"] = (lambda: ants_run(image, initial_transform="Identity"),
                              lambda: ants_run(moving, initial_transform="Identity"))
        drifts = {}
        for who, (drift_f, reg_f) in plan.items():
            if drift_f is not None:
                d_tx, d_sec, d_err = _attempt(drift_f)
                drifts[who] = d_tx
                row[f"{who}_drift_s"] = d_sec
                if d_err:
                    row[f"{who}_drift_error"] = d_err
                else:
                    d = registration_scores(d_tx, identity, target_mask=ct_mask)
                    row[f"{who}_drift_mm"], row[f"{who}_drift_p95_mm"] = d["tre_mean_mm"], d["tre_p95_mm"]
            own = drifts.get(who, drifts.get("medlab"))
            tx, sec, err = _attempt(reg_f)
            row[f"{who}_s"] = sec
            if err:
                row[f"{who}_error"] = err
            else:
                row.update({f"{who}_{k}": v for k, v in _scores(tx, truth, ct_mask, moved_mask, own).items()})
        row.setdefault("medlab_tre_start_mean_mm", registration_scores(
            identity, truth, target_mask=ct_mask)["tre_mean_mm"])
        log(f"  {case} {mod:5s} {kind:6s} start {row['medlab_tre_start_mean_mm']:5.1f} mm | " + " | ".join(
            f"{who} " + (f"TRE {_f(row.get(f'{who}_tre_mean_mm'))} drift {_f(row.get(f'{who}_drift_mm'))} "
                         f"own {_f(row.get(f'{who}_tre_vs_own_optimum_mm'))} Dice {_f(row.get(f'{who}_dice'), 3)}"
                         if f"{who}_error" not in row else "FAILED") + f" {row[f'{who}_s']:.1f} s"
            for who in plan))
        return row

    return [one(kind) for kind in kinds]


# ----------------------------------------------------------------------------- deformable
def run_mni(seed, *, methods=DEFORMABLE, use_ants=True, log=print):
    """One MNI152 deformation seed -> list of row dicts (one per method)."""
    import SimpleITK as sitk

    from medlab import datasets
    from medlab.registration import (
        folding_count,
        jacobian_determinant,
        move_image,
        random_deformation,
        register,
        registration_scores,
        resample,
    )

    d = datasets.load("mni152", resolution=2)
    t1, brain = d.image, d.labels["brain"]
    brain = sitk.Cast(brain != 0, sitk.sitkUInt8)
    truth = random_deformation(t1, max_displacement_mm=MAX_DISPLACEMENT_MM, seed=seed)
    moving = resample(move_image(t1, truth), t1)
    rows = []

    def score(name, tx, sec):
        s = registration_scores(tx, truth, target_mask=brain)
        row = {"seed": seed, "method": name, "error_mean_mm": s["tre_mean_mm"], "error_p95_mm": s["tre_p95_mm"],
               "error_start_mm": s["tre_start_mean_mm"], "folding_brain": s.get("folding", 0),
               "folding_grid": folding_count(jacobian_determinant(tx, t1)),
               "jacobian_min_brain": s.get("jacobian_min"), "seconds": sec}
        log(f"  MNI seed {seed} {name:22s} error {row['error_mean_mm']:.2f} mm (start {row['error_start_mm']:.2f}) "
            f"folding {row['folding_brain']}/{row['folding_grid']} {sec:6.1f} s")
        rows.append(row)

    for m in methods:
        t0 = time.perf_counter()
        r = register(t1, moving, transform=m)
        score(f"medlab {m}", r.transform, time.perf_counter() - t0)
        if use_ants and m == methods[0]:
            tx, sec = ants_register(to_ants(t1), to_ants(moving), "SyN")
            score("ANTs SyN", tx, sec)
    return rows


# ----------------------------------------------------------------------------- summaries
def _mean(rows, key):
    vals = [r[key] for r in rows if r.get(key) is not None]
    return statistics.fmean(vals) if vals else None


def summarise(rows, mni_rows):
    out = {}
    for mod in MODALITIES:
        for kind in LINEAR_TRUTHS:
            sel = [r for r in rows if r["modality"] == mod and r["transform"] == kind]
            if not sel:
                continue
            s = {"n": len(sel)}
            for who in WHO:
                for k in ("tre_mean_mm", "tre_p95_mm", "dice", "tre_vs_own_optimum_mm", "drift_mm", "s"):
                    v = _mean(sel, f"{who}_{k}")
                    if v is not None:
                        s[f"{who}_{k}"] = v
                if any(f"{who}_s" in r for r in sel):
                    s[f"{who}_failed"] = sum(f"{who}_error" in r for r in sel)
                    s[f"{who}_tre_le_2mm"] = sum((r.get(f"{who}_tre_mean_mm") or 1e9) <= 2 for r in sel)
            for base in ("ants", "antsid"):
                if f"{base}_s" in s:
                    s[f"time_ratio_medlab_over_{base}"] = s["medlab_s"] / s[f"{base}_s"]
                    if f"{base}_tre_mean_mm" in s and "medlab_tre_mean_mm" in s:
                        s[f"tre_ratio_medlab_over_{base}"] = s["medlab_tre_mean_mm"] / s[f"{base}_tre_mean_mm"]
            out[f"{mod} {kind}"] = s
    methods = sorted({r["method"] for r in mni_rows})
    mni = {}
    for m in methods:
        sel = [r for r in mni_rows if r["method"] == m]
        mni[m] = {k: _mean(sel, k) for k in ("error_mean_mm", "error_p95_mm", "error_start_mm",
                                             "folding_brain", "folding_grid", "seconds")}
        mni[m]["n"] = len(sel)
    syn = mni.get("ANTs SyN")
    if syn:
        for m in methods:
            if m != "ANTs SyN":
                mni[m]["time_ratio_over_syn"] = mni[m]["seconds"] / syn["seconds"]
                mni[m]["error_ratio_over_syn"] = mni[m]["error_mean_mm"] / syn["error_mean_mm"]
    out["mni152"] = mni
    return out


def _f(v, nd=2):
    return "" if v is None else (f"{v:.{nd}f}" if isinstance(v, float) else str(v))


def markdown(results):
    lines = ["# medlab.registration vs ANTsPy: known transforms on the sarcoma CT/MR/PET and MNI152", ""]
    m = results["machine"]
    lines += [(f"Run {results['started']} - {results.get('finished', '(unfinished)')}, {m['cpus']} CPUs "
              f"(load at start {m['load_start']}), Python {m['python']}, SimpleITK {m['simpleitk']}, "
              f"antspyx {m['antspyx']}, medlab at {m['git']}. Command: `{results['command']}`."), ""]
    lines += [("start TRE: the displacement to recover (identity vs truth). Dice truth: the GTV Dice through "
               "the true transform (the ceiling set by the two GTVs and their grids). "
               "TRE: over the CT GTV voxels against the known truth (mm). drift: the unperturbed pair's "
              "result against the data set's own alignment (the floor of TRE against that alignment). "
              "vs own: TRE against truth o (the unperturbed result). Dice: GTV after registration. "
              "direct: medlab affine without its rigid stage (rigid_first=False). Times: wall seconds per registration."), ""]
    cc = results.get("conversion_check")
    if cc:
        lines += ["Conversion check: " + ", ".join(f"{k} = {_f(v, 4) if isinstance(v, float) else v}"
                                                   for k, v in cc.items()), ""]
    names = {"medlab": "medlab", "direct": "direct", "ants": "ANTs", "antsid": "ANTs(id)"}

    def cells(r, who, full=True):
        if f"{who}_s" not in r:
            return [""] * (6 if full else 3)
        tre = "failed" if f"{who}_error" in r else _f(r.get(f"{who}_tre_mean_mm"))
        if not full:
            return [tre, _f(r.get(f"{who}_tre_vs_own_optimum_mm")), _f(r.get(f"{who}_s"), 1)]
        return [tre, _f(r.get(f"{who}_tre_p95_mm")), _f(r.get(f"{who}_dice"), 3),
                _f(r.get(f"{who}_drift_mm")) or ("failed" if f"{who}_drift_error" in r else ""),
                _f(r.get(f"{who}_tre_vs_own_optimum_mm")), _f(r.get(f"{who}_s"), 1)]

    hdr = ("| patient | modality | transform | start TRE | Dice truth | medlab TRE | p95 | Dice | drift | vs own | s "
           "| direct TRE | vs own | s | ANTs TRE | p95 | Dice | drift | vs own | s "
           "| ANTs(id) TRE | p95 | Dice | drift | vs own | s |")
    lines += ["## Per patient", "", hdr, "|" + "---|" * (hdr.count("|") - 1)]
    for r in results["rows"]:
        lines.append("| " + " | ".join(
            [r["patient"], r["modality"], r["transform"], _f(r.get("medlab_tre_start_mean_mm")),
             _f(r.get("medlab_dice_truth"), 3)] + cells(r, "medlab") + cells(r, "direct", full=False)
            + cells(r, "ants") + cells(r, "antsid")) + " |")
    errors = [f"{r['patient']} {r['modality']} {r['transform']} {names[w]}{' drift' if e.endswith('drift_error') else ''}: "
              f"{r[e]}" for r in results["rows"] for w in WHO for e in (f"{w}_error", f"{w}_drift_error") if e in r]
    if errors:
        lines += ["", "Failed registrations (counted as failures, left out of the means):", ""]
        lines += [f"- {e}" for e in errors]
    lines += ["", "## Summary (means over patients; failed registrations left out, counted in 'failed')", ""]
    hdr = ("| modality transform | n | method | TRE mean | p95 | Dice | drift | vs own | s | failed "
           "| TRE <= 2 mm | time ratio medlab / this | TRE ratio medlab / this |")
    lines += [hdr, "|" + "---|" * (hdr.count("|") - 1)]
    for key, s in results["summary"].items():
        if key == "mni152":
            continue
        for who in WHO:
            if f"{who}_failed" not in s:
                continue
            lines.append("| " + " | ".join([
                key, str(s["n"]), names[who], _f(s.get(f"{who}_tre_mean_mm")), _f(s.get(f"{who}_tre_p95_mm")),
                _f(s.get(f"{who}_dice"), 3), _f(s.get(f"{who}_drift_mm")), _f(s.get(f"{who}_tre_vs_own_optimum_mm")),
                _f(s.get(f"{who}_s"), 1), str(s[f"{who}_failed"]), f"{s[f'{who}_tre_le_2mm']}/{s['n']}",
                _f(s.get(f"time_ratio_medlab_over_{who}")), _f(s.get(f"tre_ratio_medlab_over_{who}"))]) + " |")
    mni = results["summary"].get("mni152") or {}
    if mni:
        lines += ["", (f"## MNI152 T1 2 mm, known deformation (max {MAX_DISPLACEMENT_MM} mm), "
                  f"seeds {sorted({r['seed'] for r in results['mni_rows']})}"), ""]
        hdr = "| method | n | error mean mm | p95 | start | folding brain | folding grid | time s | time / SyN | error / SyN |"
        lines += [hdr, "|" + "---|" * (hdr.count("|") - 1)]
        for meth, s in mni.items():
            lines.append("| " + " | ".join([meth, str(s["n"]), _f(s["error_mean_mm"]), _f(s["error_p95_mm"]),
                                            _f(s["error_start_mm"]), _f(s["folding_brain"], 1),
                                            _f(s["folding_grid"], 1), _f(s["seconds"], 1),
                                            _f(s.get("time_ratio_over_syn")), _f(s.get("error_ratio_over_syn"))]) + " |")
        lines += ["", "| seed | method | error mean | p95 | folding brain | folding grid | time s |", "|---|---|---|---|---|---|---|"]
        for r in results["mni_rows"]:
            lines.append(f"| {r['seed']} | {r['method']} | {_f(r['error_mean_mm'])} | {_f(r['error_p95_mm'])} | "
                         f"{r['folding_brain']} | {r['folding_grid']} | {_f(r['seconds'], 1)} |")
    if results.get("missing"):
        lines += ["", "Not measured: " + "; ".join(results["missing"])]
    lines += ["", "## Notes", ""] + [f"- {n}" for n in NOTES + results.get("notes", [])]
    return "\n".join(lines) + "\n"


def _write(results, out):
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    results["summary"] = summarise(results["rows"], results["mni_rows"])
    for suffix, text in ((".json", json.dumps(results, indent=1, default=float)), (".md", markdown(results))):
        tmp = out.with_name(out.name + suffix + ".partial")
        tmp.write_text(text)
        tmp.replace(out.with_name(out.name + suffix))


def _machine():
    import subprocess

    import ants
    import SimpleITK as sitk

    git = subprocess.run(["git", "log", "-1", "--format=%h %s"], check=False, cwd=ROOT, capture_output=True, text=True).stdout
    dirty = subprocess.run(["git", "status", "--porcelain", "medlab"], check=False, cwd=ROOT, capture_output=True, text=True).stdout
    return {"cpus": os.cpu_count(), "load_start": round(os.getloadavg()[0], 2), "python": platform.python_version(),
            "simpleitk": sitk.Version_VersionString(), "antspyx": getattr(ants, "__version__", "?"),
            "git": git.strip()[:90] + (" (medlab/ has uncommitted changes)" if dirty.strip() else "")}


def main(argv=None):
    import warnings

    from medlab import datasets

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=str(HERE / "results" / "registration"),
                   help="output stem: STEM.md and STEM.json")
    p.add_argument("--cases", nargs="*", help="patients (default: all 10)")
    p.add_argument("--modalities", nargs="*", default=list(MODALITIES))
    p.add_argument("--mni-seeds", nargs="*", type=int, default=list(MNI_SEEDS))
    p.add_argument("--mni-methods", nargs="*", default=list(DEFORMABLE))
    p.add_argument("--transforms", nargs="*", default=list(LINEAR_TRUTHS), choices=LINEAR_TRUTHS)
    p.add_argument("--no-direct", action="store_true", help="skip the affine without its rigid stage")
    p.add_argument("--no-ants", action="store_true")
    p.add_argument("--search-mm", type=float, default=0.0,
                   help="medlab register(search_mm=...): multi-start over +-this many mm (default 0: off)")
    p.add_argument("--no-check", action="store_true", help="skip the conversion check")
    p.add_argument("--parts", nargs="*", default=["sarcoma", "mni"], choices=["sarcoma", "mni"],
                   help="which parts, in this order (default: sarcoma then mni)")
    p.add_argument("--interleave", action="store_true",
                   help="one MNI152 seed first, the others between the patients")
    p.add_argument("--render", action="store_true",
                   help="only rewrite STEM.md (and the summary in STEM.json) from an existing STEM.json")
    args = p.parse_args(argv)
    if args.render:
        _write(json.loads(Path(args.out).with_name(Path(args.out).name + ".json").read_text()), args.out)
        return 0
    all_cases = datasets.cases("sts")
    cases = args.cases or all_cases
    results = {"started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "machine": _machine(),
               "command": "python benchmarks/bench_registration.py " + " ".join(argv if argv is not None else sys.argv[1:]),
               "rows": [], "mni_rows": [], "missing": [], "notes": []}
    warnings.simplefilter("ignore")  # RegistrationWarning etc. are recorded as numbers, not text
    t_all = time.perf_counter()
    if not args.no_check and not args.no_ants:
        print("conversion check", flush=True)
        results["conversion_check"] = check_conversion()
        print("  ", results["conversion_check"], flush=True)

    def one_case(case):
        for mod in args.modalities:
            results["rows"].extend(run_case(case, all_cases.index(case), mod, kinds=tuple(args.transforms),
                                            direct=not args.no_direct, use_ants=not args.no_ants,
                                            register_kwargs={"search_mm": args.search_mm} if args.search_mm else None,
                                            log=lambda s: print(s, flush=True)))
            _write(results, args.out)

    def one_seed(seed):
        results["mni_rows"].extend(run_mni(seed, methods=tuple(args.mni_methods), use_ants=not args.no_ants,
                                           log=lambda s: print(s, flush=True)))
        _write(results, args.out)

    tasks = []
    for part in args.parts:
        tasks += [(one_case, c) for c in cases] if part == "sarcoma" else [(one_seed, s) for s in args.mni_seeds]
    if args.interleave and set(args.parts) == {"sarcoma", "mni"}:
        # one MNI seed first, the others spread between the patients: a run stopped early
        # still has some of each
        seeds, every = list(args.mni_seeds), max(1, len(cases) // max(1, len(args.mni_seeds)))
        tasks = [(one_seed, seeds.pop(0))] if seeds else []
        for i, c in enumerate(cases):
            tasks.append((one_case, c))
            if seeds and (i + 1) % every == 0:
                tasks.append((one_seed, seeds.pop(0)))
        tasks += [(one_seed, s) for s in seeds]

    def stop(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, stop)
    try:
        for func, arg in tasks:
            func(arg)
    except KeyboardInterrupt as exc:
        done = {(r["patient"], r["modality"]) for r in results["rows"]}
        left = [f"{c} {m}" for c in cases for m in args.modalities if (c, m) not in done] if "sarcoma" in args.parts else []
        seeds = sorted(set(args.mni_seeds) - {r["seed"] for r in results["mni_rows"]}) if "mni" in args.parts else []
        results["missing"] += ([f"sarcoma {', '.join(left)}"] if left else []) + (
            [f"MNI152 seeds {seeds}"] if seeds else [])
        results["notes"].append(f"run stopped ({exc or 'interrupt'}) after {time.perf_counter() - t_all:.0f} s")
    results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    results["total_seconds"] = time.perf_counter() - t_all
    _write(results, args.out)
    print(f"{time.perf_counter() - t_all:.0f} s; results: {args.out}.md / .json", flush=True)
    return 0


# ----------------------------------------------------------------------------- run.py entries
def _entry(medlab_s, ants_s, target_ok, target, note, **extra):
    ratio = medlab_s / ants_s
    return {"medlab_ms": 1e3 * medlab_s, "baseline_ms": 1e3 * ants_s, "ratio": ratio, "target": target,
            "ok": bool(target_ok(ratio)), "note": note, **extra}


def _linear_entry(case, mod, kind):
    from medlab import datasets

    import warnings

    with warnings.catch_warnings():  # recorded as numbers (as the standalone run does)
        warnings.simplefilter("ignore")
        (r,) = run_case(case, datasets.cases("sts").index(case), mod, kinds=(kind,), direct=False,
                        log=lambda s: None)
    own_m, own_a = r.get("medlab_tre_vs_own_optimum_mm", 1e9), r.get("antsid_tre_vs_own_optimum_mm", 1e9)
    return _entry(
        r["medlab_s"], r["antsid_s"],
        lambda ratio: ratio <= 2.0 and own_m <= max(2.0, own_a),
        "time ratio <= 2 and medlab TRE vs its own unperturbed optimum <= max(2 mm, ANTs')",
        f"{case} CT <- {mod}, random {kind} truth (seed {r['truth_seed']}); baseline = ants.registration "
        f"'{kind.capitalize()}' (mattes, defaults) started at the identity like medlab (initial_transform="
        "'Identity'); ants_* = ANTs' own centre-of-mass start; TRE over the CT GTV",
        **{f"{w}_{k}": r.get(f"{w}_{k}") for w in ("medlab", "ants", "antsid")
           for k in ("tre_mean_mm", "drift_mm", "tre_vs_own_optimum_mm", "dice", "error")},
        ants_com_start_ms=1e3 * r["ants_s"])


def bench_registration_rigid_ct_mr():
    return _linear_entry("STS_001", "MR_T1", "rigid")


def bench_registration_affine_ct_pet():
    return _linear_entry("STS_001", "PET", "affine")


def bench_registration_bspline_mni():
    rows = run_mni(0, methods=("bspline",), log=lambda s: None)
    ours = next(r for r in rows if r["method"] == "medlab bspline")
    syn = next(r for r in rows if r["method"] == "ANTs SyN")
    return _entry(
        ours["seconds"], syn["seconds"],
        lambda ratio: ratio <= 1.0 and ours["error_mean_mm"] <= 1.5 * syn["error_mean_mm"] and ours["folding_brain"] == 0,
        "time ratio <= 1, mean error <= 1.5 x SyN's, no folding in the brain",
        f"MNI152 T1 2 mm, random deformation max {MAX_DISPLACEMENT_MM} mm (seed 0); baseline = ants.registration 'SyN' "
        "(defaults, includes its affine stage); error over the brain mask",
        medlab_error_mm=ours["error_mean_mm"], ants_error_mm=syn["error_mean_mm"],
        error_start_mm=ours["error_start_mm"], medlab_folding=ours["folding_brain"], ants_folding=syn["folding_brain"])


BENCHMARKS = {
    "registration_rigid_ct_mr": bench_registration_rigid_ct_mr,
    "registration_affine_ct_pet": bench_registration_affine_ct_pet,
    "registration_bspline_mni": bench_registration_bspline_mni,
}


if __name__ == "__main__":
    sys.exit(main())
