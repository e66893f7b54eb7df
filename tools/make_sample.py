"""Build the embedded sample (``medlab/datasets/sample/``) from a data store.

Each archive holds registry files byte for byte, named ``<root>/<file>``; the registry's sha256
is checked for every file written. The archives are deterministic (sorted members, fixed
timestamps), so an unchanged selection gives unchanged files::

    python tools/make_sample.py                 # from ../shared/data
    python tools/make_sample.py --store PATH

What is chosen, and why (the smallest set with which every notebook runs with its defaults):

- ``sts``: patient STS_001 whole (tutorials 00, 01, 02, 04 and the sarcoma use case), the PET of
  every patient (tutorials 03 and 09 loop over the PETs; their numbers equal a full run's);
  ``extra/``: the CTs of STS_002 (tutorial 04's two-patient table), STS_003 and STS_008
  (tutorial 07's default cases).
- ``pyradiomics``: brain1 and breast1; ``extra/``: brain2 (tutorial 03).
- ``hc18``: 000_HC (tutorials 00, 01) and 16 images of the test part of ``hc18_split(seed=0)``
  (the pretrained ``hc18_unet`` never saw them), 5 with a head circumference under 150 mm, 6 from
  150 to 250 mm and 5 over 250 mm, evenly spaced in each band; ``hc18_split`` splits the whole
  data set and keeps the sample's cases in each part, so a sample image called held out is held
  out by the full split too.
- ``dcm_qa_nih`` (``extra/``: 2.4 MB, kept out of the wheel for size): the GE EPI run
  ``In/20180918GE/mr_0004`` (15 slices x 10 volumes, tutorial 01's 4D section) with its dcm2niix
  reference (BSD-2-Clause).
- ``busi`` (``noncommercial/``: research-use terms): 46 images of the test part of
  ``busi_split(seed=0)`` (the pretrained ``busi_resnet`` never saw them), spread evenly:
  24 benign, 16 malignant, 6 normal.
- ``ibsi_ct_phantom`` (``noncommercial/``: CC BY-NC 3.0): every file (tutorial 01 reads the
  DICOM series, the privacy use case de-identifies it).
- ``ibsi_digital_phantom``, ``ibsi_reference``: every file (tutorial 07).

``sample/`` ships in the wheel; ``extra/`` (size) and ``noncommercial/`` (licences) only in a
source checkout.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "medlab" / "datasets" / "sample"
REGISTRY = ROOT / "medlab" / "datasets" / "registry.json"

HC18 = ["000_HC", "030_HC", "089_HC", "106_HC", "136_HC", "194_HC", "204_HC", "210_HC", "295_HC", "359_2HC",
        "612_HC", "686_2HC", "693_HC", "717_HC", "774_HC", "781_HC", "796_HC"]
BUSI = ["benign (1)", "benign (11)", "benign (137)", "benign (147)", "benign (159)", "benign (187)",
        "benign (208)", "benign (228)", "benign (237)", "benign (266)", "benign (281)", "benign (291)",
        "benign (306)", "benign (318)", "benign (346)", "benign (36)", "benign (364)", "benign (372)",
        "benign (404)", "benign (419)", "benign (53)", "benign (63)", "benign (74)", "benign (98)",
        "malignant (102)", "malignant (107)", "malignant (111)", "malignant (127)", "malignant (146)",
        "malignant (148)", "malignant (156)", "malignant (182)", "malignant (192)", "malignant (201)",
        "malignant (57)", "malignant (67)", "malignant (72)", "malignant (78)", "malignant (92)",
        "malignant (99)", "normal (101)", "normal (131)", "normal (28)", "normal (49)", "normal (62)",
        "normal (99)"]

#: folder -> data set -> files (fnmatch patterns relative to the data set root)
SAMPLE: dict[str, dict[str, list[str]]] = {
    "": {
        "ibsi_digital_phantom": ["*"],
        "ibsi_reference": ["*"],
        "sts": ["STS_001/*", "*/PET_*"],
        "pyradiomics": ["brain1_*", "breast1_*"],
        "hc18": ["training_set_pixel_size_and_HC.csv"]
                + [f"training_set/{c}{s}.png" for c in HC18 for s in ("", "_Annotation")],
    },
    "extra": {
        "sts": ["STS_002/CT_*", "STS_003/CT_*", "STS_008/CT_*"],
        "pyradiomics": ["brain2_*"],
        "dcm_qa_nih": ["In/20180918GE/mr_0004/*", "Ref/DCM2NIIX_regression_test_4.*"],
    },
    "noncommercial": {
        "ibsi_ct_phantom": ["*"],
        "busi": [f"{c.split(' ')[0]}/{c}.png" for c in BUSI],
    },
}

#: file types already compressed are stored, the rest deflated
_STORED = (".gz", ".png", ".zip")
_DATE = (2020, 1, 1, 0, 0, 0)


def _select(files: dict, patterns: list[str]) -> list[str]:
    import fnmatch

    out = []
    for pat in patterns:
        hits = [f for f in files if fnmatch.fnmatchcase(f, pat)]
        if not hits:
            raise SystemExit(f"pattern {pat!r} matches no registered file")
        out += [h for h in hits if h not in out]
    return sorted(out)


def _licence_text(name: str, ent: dict, store: Path) -> str:
    lines = [f"# {ent['title']} (`{name}`): licence and attribution", "",
             f"- Licence: **{ent['licence']}**",
             f"- Source: {ent['source']['url']}",
             f"- Citation: {ent['citation']}", "",
             "The files of this data set in the archive beside this file are unchanged copies "
             "of the source's files (sha256 in medlab/datasets/registry.json). They are not "
             "covered by medlab's BSD-3-Clause licence.", ""]
    if "NC" in ent["licence"]:
        lines += ["**Non-commercial use only.** This archive is kept out of medlab's wheel; it "
                  "is in the source repository for teaching and research.", ""]
    if name == "busi":
        lines += ["**Research use.** The BUSI images are distributed by their authors for research; "
                  "this archive is kept out of medlab's wheel. Known caveats: near-duplicate images "
                  "and a few lesions filed under two classes (medlab.models.busi_split groups them).", ""]
    lic = (ent.get("licence_file") or {}).get("path")
    if lic and (store / lic).is_file():
        lines += ["## Licence text from the source", "", (store / lic).read_bytes().decode("utf-8", errors="replace").replace("\ufffd", "\"")]
    elif name == "pyradiomics" and (store / "pyradiomics" / "LICENSE.txt").is_file():
        lines += ["## Licence text from the source", "", "```",
                  (store / "pyradiomics" / "LICENSE.txt").read_text(encoding="utf-8").rstrip(), "```"]
    return "\n".join(lines).rstrip() + "\n"


def build(store: Path, out: Path = OUT) -> dict:
    registry = json.loads(REGISTRY.read_text(encoding="utf-8"))["datasets"]
    summary = {}
    for folder, sets in SAMPLE.items():
        dest = out / folder if folder else out
        dest.mkdir(parents=True, exist_ok=True)
        for name, patterns in sets.items():
            ent = registry[name]
            rels = _select(ent["files"], patterns)
            archive = dest / f"{name}.zip"
            tmp = archive.with_suffix(".zip.part")
            with zipfile.ZipFile(tmp, "w") as zf:
                for rel in rels:
                    data = (store / ent["root"] / rel).read_bytes()
                    sha = hashlib.sha256(data).hexdigest()
                    if sha != ent["files"][rel]["sha256"]:
                        raise SystemExit(f"{store / ent['root'] / rel}: sha256 differs from the registry")
                    info = zipfile.ZipInfo(f"{ent['root']}/{rel}", date_time=_DATE)
                    info.compress_type = zipfile.ZIP_STORED if rel.endswith(_STORED) else zipfile.ZIP_DEFLATED
                    info.external_attr = 0o644 << 16
                    zf.writestr(info, data, compresslevel=9)
            tmp.replace(archive)
            (dest / f"{name}.LICENSE.md").write_text(_licence_text(name, ent, store), encoding="utf-8")
            summary[f"{folder or '.'}/{name}"] = (len(rels), archive.stat().st_size)
    return summary


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--store", default=str(ROOT.parent / "shared" / "data"), help="the data store")
    args = p.parse_args(argv)
    summary = build(Path(args.store))
    for key, (n, size) in summary.items():
        print(f"{key:36s} {n:4d} files {size / 1e6:6.2f} MB")
    print(f"total {sum(s for _, s in summary.values()) / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
