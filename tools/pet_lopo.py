"""Leave-one-patient-out choice of the one-click PET settings on the ten teaching sarcoma PETs.

    python tools/pet_lopo.py [--json benchmarks/results/pet_lopo.json]

For each of the ten patients of ``medlab.datasets.cases('sts')`` (FDG PET in SUV, GTV drawn on
CT/MR), the other nine choose, and the held-out one measures:

1. **Method and parameters** of :func:`medlab.segmentation.segment_pet_tumour` among a small grid
   (otsu_box with margin 15/30/45 mm and first step 30/40/50 %, percent_suvmax 40/50 %, SUV 2.5):
   the configuration with the best mean Dice on the nine; its Dice on the tenth is the LOPO Dice.
   The click is the hottest voxel inside the GTV (:func:`medlab.segmentation.seed_from_mask`).
2. **Plausibility thresholds** learnt from data (:data:`medlab.segmentation.PET_PLAUSIBILITY`):
   ``min_contrast`` = half the lowest contrast of the nine correct clicks and ``max_volume_ml`` =
   twice their largest region, so no correct click of the nine is flagged for either. The others
   are stated a priori (``min_suvmax`` 2.5 SUV, ``min_voxels`` 8, ``max_hotter_ratio`` 2).
   The held-out patient then measures: is its correct click flagged (a false alarm, unless its
   region really touches the cropped field of view), are five *missed clicks* (seeds in body
   tissue at least 25 mm from its GTV) flagged, and is a *semi-synthetic hot structure* (a 25 mm
   sphere at SUV 40, like a bladder, placed 45 mm from the tumour) flagged when it is in the box.

Prints a table and writes the numbers as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if "MEDLAB_DATA_STORE" not in os.environ and (ROOT.parent / "shared" / "data").is_dir():
    os.environ["MEDLAB_DATA_STORE"] = str(ROOT.parent / "shared" / "data")

CONFIGS = {
    **{f"otsu_box m{m} p{p}": {"method": "otsu_box", "margin_mm": m, "percent": p}
       for m in (15.0, 30.0, 45.0) for p in (30.0, 40.0, 50.0)},
    "percent_suvmax 40": {"method": "percent_suvmax", "percent": 40.0},
    "percent_suvmax 50": {"method": "percent_suvmax", "percent": 50.0},
    "suv 2.5": {"method": "suv", "suv": 2.5},
}


def _missed_clicks(pet_arr, gtv, spacing, n=5, seed=0):
    import numpy as np
    from scipy import ndimage as ndi

    d = ndi.distance_transform_edt(~gtv, sampling=spacing)
    cand = np.argwhere((d >= 25.0) & (pet_arr > 0.3))
    rng = np.random.default_rng(seed)
    return [tuple(int(v) for v in cand[i]) for i in rng.choice(len(cand), size=min(n, len(cand)), replace=False)]


def _implant(pet, gtv_arr, seed_zyx):
    """A copy of ``pet`` with a 25 mm-diameter sphere of SUV 40 whose centre is 45 mm from the
    seed (along the axis with the most room), or None when it does not fit."""
    import numpy as np
    import SimpleITK as sitk

    arr = sitk.GetArrayFromImage(pet).astype(np.float32)
    sp = np.array(pet.GetSpacing()[::-1])
    for ax in np.argsort(-np.array(arr.shape) * sp):
        for sign in (1, -1):
            c = np.array(seed_zyx, float)
            c[ax] += sign * 45.0 / sp[ax]
            if not (0 <= c[ax] < arr.shape[ax]):
                continue
            zz = np.indices(arr.shape)
            d2 = sum(((zz[k] - c[k]) * sp[k]) ** 2 for k in range(3))
            ball = d2 <= 12.5 ** 2
            if (ball & gtv_arr).any():
                continue
            arr[ball] = 40.0
            out = sitk.GetImageFromArray(arr)
            out.CopyInformation(pet)
            return out
    return None


def main(argv=None):
    import numpy as np
    import SimpleITK as sitk

    from medlab import datasets
    from medlab import segmentation as seg
    from medlab.metrics import dice

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", seg.ImplausibleSegmentationWarning)
    t0 = time.time()
    cases = list(datasets.cases("sts"))
    data = {}
    for case in cases:
        pet_case = datasets.load("sts", case=case, modality="PET", progress=False)
        pet, gtv = pet_case.image, pet_case.label
        g = sitk.GetArrayFromImage(gtv) > 0
        seed = seg.seed_from_mask(gtv, pet, rule="max")
        scores = {}
        for name, kw in CONFIGS.items():
            out, info = seg.segment_pet_tumour(pet, seed_index=seed, return_info=True, **kw)
            scores[name] = (dice(out, gtv), info["verdict"])
        data[case] = {"pet": pet, "gtv": g, "seed": seed, "scores": scores}
    rows = []
    for held in cases:
        train = [c for c in cases if c != held]
        best = max(CONFIGS, key=lambda k: np.mean([data[c]["scores"][k][0] for c in train]))
        kw = CONFIGS[best]
        contrast = [data[c]["scores"][best][1].values["contrast"] for c in train]
        volume = [data[c]["scores"][best][1].values["volume_ml"] for c in train]
        thresholds = {"min_contrast": round(min(contrast) / 2, 2), "max_volume_ml": round(2 * max(volume), -1)}
        d = data[held]
        out, info = seg.segment_pet_tumour(d["pet"], seed_index=d["seed"], return_info=True, plausibility=thresholds, **kw)
        v = info["verdict"]
        pet_arr = sitk.GetArrayFromImage(d["pet"])
        missed = _missed_clicks(pet_arr, d["gtv"], d["pet"].GetSpacing()[::-1])
        missed_flags = []
        for s in missed:
            _, mi = seg.segment_pet_tumour(d["pet"], seed_index=s, return_info=True, plausibility=thresholds, **kw)
            missed_flags.append(mi["verdict"].values["failed"])
        hot = _implant(d["pet"], d["gtv"], d["seed"])
        hot_row = {}
        if hot is not None:
            ho, hi = seg.segment_pet_tumour(hot, seed_index=d["seed"], return_info=True, plausibility=thresholds, **kw)
            hot_row = {"hot_failed": list(hi["verdict"].values["failed"]), "hot_dice": dice(sitk.GetArrayFromImage(ho), d["gtv"])}
        rows.append({"case": held, "chosen": best, "dice": dice(sitk.GetArrayFromImage(out), d["gtv"]),
                     "thresholds": thresholds, "flagged": not v.plausible, "failed": list(v.values["failed"]),
                     "contrast": v.values["contrast"], "volume_ml": v.values["volume_ml"],
                     "missed_clicks": len(missed), "missed_flagged": sum(bool(f) for f in missed_flags),
                     "missed_failed": [list(f) for f in missed_flags], **hot_row})
    summary = {
        "n_patients": len(rows),
        "lopo_dice_mean": float(np.mean([r["dice"] for r in rows])),
        "lopo_dice_min": float(np.min([r["dice"] for r in rows])),
        "lopo_dice_max": float(np.max([r["dice"] for r in rows])),
        "chosen": sorted({r["chosen"] for r in rows}),
        "correct_clicks_flagged": int(sum(r["flagged"] for r in rows)),
        "correct_clicks_flagged_other_than_border": int(sum(bool(set(r["failed"]) - {"border"}) for r in rows)),
        "missed_clicks": int(sum(r["missed_clicks"] for r in rows)),
        "missed_clicks_flagged": int(sum(r["missed_flagged"] for r in rows)),
        "hot_implants": int(sum("hot_failed" in r for r in rows)),
        "hot_implants_flagged_hotter": int(sum("hotter" in r.get("hot_failed", []) for r in rows)),
        "hot_implant_dice_mean": float(np.mean([r["hot_dice"] for r in rows if "hot_dice" in r])),
        "all_nine_dice_of_default": {c: float(data[c]["scores"]["otsu_box m30.0 p40.0"][0]) for c in cases},
        "seconds": round(time.time() - t0, 1),
    }
    for r in rows:
        print(f"{r['case']}: chose {r['chosen']:<20} Dice {r['dice']:.3f}  thresholds {r['thresholds']}  "
              f"flagged {r['failed']}  missed clicks flagged {r['missed_flagged']}/{r['missed_clicks']}  "
              f"hot implant {r.get('hot_failed')} (Dice {r.get('hot_dice', float('nan')):.3f})")
    print(json.dumps({k: v for k, v in summary.items() if k != "all_nine_dice_of_default"}, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"summary": summary, "folds": rows}, indent=1, default=float) + "\n")


if __name__ == "__main__":
    main()
