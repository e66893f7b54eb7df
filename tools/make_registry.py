"""Regenerate ``medlab/datasets/registry.json`` from the data store's MANIFEST.csv.

The metadata of every data set (title, licence, citation, source repository at a pinned commit,
how local file names map to upstream paths) lives in ``DATASETS`` below; file names, sha256
and sizes come from ``MANIFEST.csv`` (columns ``path,sha256,bytes``, paths relative to the
store). Run it after the store changes::

    python tools/make_registry.py                       # MANIFEST of ../shared/data
    python tools/make_registry.py --manifest PATH --out medlab/datasets/registry.json

The output is deterministic (sorted), so an unchanged store gives an unchanged file.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MANIFEST = ROOT.parent / "shared" / "data" / "MANIFEST.csv"
DEFAULT_OUT = ROOT / "medlab" / "datasets" / "registry.json"

IBSI_DATA = {
    "repository": "https://github.com/theibsi/data_sets",
    "commit": "6da96021bc91faf4c0cb7fd7fa56a4225d2064a8",
}
IBSI_CITATION = (
    "Zwanenburg A, Vallieres M, Abdalah MA, et al. The Image Biomarker Standardization "
    "Initiative: standardized quantitative radiomics for high-throughput image-based "
    "phenotyping. Radiology. 2020;295(2):328-338. doi:10.1148/radiol.2020191145"
)

# Each ``store`` entry: ``root`` is the folder inside the store; ``upstream`` rewrites a local
# path (relative to root) to the path in the source repository: the first rule whose key is the
# whole local path, or a prefix of it ending in "/", or "" (anything), wins.
DATASETS: dict[str, dict] = {
    "ibsi_digital_phantom": {
        "kind": "store",
        "root": "ibsi/digital_phantom",
        "title": "IBSI 1 digital phantom",
        "description": (
            "The IBSI chapter 1 digital phantom: a 5x4x4-voxel image at 2 mm isotropic spacing "
            "with grey levels 1-9 and a region-of-interest mask of 74 voxels, used to check "
            "radiomics feature implementations against consensus values."
        ),
        "modality": ["synthetic"],
        "ground_truth": "ROI mask (74 voxels); IBSI consensus feature values in `ibsi_reference`",
        "licence": "CC BY 4.0",
        "licence_file": "ibsi/LICENSE-ibsi_1_digital_phantom.md",
        "readme_file": "ibsi/README-ibsi_1_digital_phantom.md",
        "citation": IBSI_CITATION,
        "source": {
            **IBSI_DATA,
            "upstream": {
                "image.nii.gz": "ibsi_1_digital_phantom/nifti/image/phantom.nii.gz",
                "mask.nii.gz": "ibsi_1_digital_phantom/nifti/mask/mask.nii.gz",
            },
        },
        "url_note": (
            "Upstream names (nifti/image/phantom.nii.gz, nifti/mask/mask.nii.gz) follow how "
            "other projects reference this repository; the NIfTI paths were not checked "
            "against the tree of the pinned commit."
        ),
        "case_pattern": None,
    },
    "ibsi_ct_phantom": {
        "kind": "store",
        "root": "ibsi/ct_phantom",
        "title": "IBSI 1 CT radiomics phantom",
        "description": (
            "A lung-cancer CT (204x201x60 voxels, 0.977x0.977x3 mm) used by the IBSI as the "
            "radiomics phantom; as NIfTI image + voxel mask and as a DICOM series of 60 slices "
            "with an RTSTRUCT (ROI 'GTV-1')."
        ),
        "modality": ["CT"],
        "ground_truth": (
            "GTV mask (NIfTI voxel mask nifti/mask.nii.gz; RTSTRUCT dicom/mask/DCM_RS_00060.dcm); "
            "IBSI reference feature values for configurations A-E in `ibsi_reference`"
        ),
        "licence": "CC BY-NC 3.0 (non-commercial use only)",
        "licence_file": "ibsi/LICENSE-ibsi_1_ct_radiomics_phantom.md",
        "readme_file": "ibsi/README-ibsi_1_ct_radiomics_phantom.md",
        "citation": (
            "Lambin P, Leijenaar RTH, Deist TM, et al. Radiomics: the bridge between medical "
            "imaging and personalized medicine. Nat Rev Clin Oncol. 2017;14(12):749-762. "
            "Lambin P. Radiomics Digital Phantom, CancerData (2016), "
            "doi:10.17195/candat.2016.08.1. " + IBSI_CITATION
        ),
        "source": {
            **IBSI_DATA,
            "upstream": {
                "nifti/image.nii.gz": "ibsi_1_ct_radiomics_phantom/nifti/image/phantom.nii.gz",
                "nifti/mask.nii.gz": "ibsi_1_ct_radiomics_phantom/nifti/mask/mask.nii.gz",
                "": "ibsi_1_ct_radiomics_phantom/",
            },
        },
        "url_note": (
            "NIfTI files are renamed here (upstream nifti/image/phantom.nii.gz and "
            "nifti/mask/mask.nii.gz, as other projects reference them); DICOM paths keep their "
            "upstream names. Not checked against the tree of the pinned commit."
        ),
        "case_pattern": None,
    },
    "ibsi_reference": {
        "kind": "store",
        "root": "ibsi/reference",
        "title": "IBSI reference feature values",
        "description": (
            "The IBSI chapter 1 feature definitions with, per feature, the consensus value and "
            "tolerance for the digital phantom and for the CT phantom under configurations A-E "
            "(reStructuredText)."
        ),
        "modality": [],
        "ground_truth": "reference feature values and tolerances",
        "licence": "IBSI documentation (theibsi/ibsi-doc); no separate licence file in the store",
        "citation": IBSI_CITATION,
        "source": {
            "repository": "https://github.com/theibsi/ibsi-doc",
            "commit": "b952e71e9d40",
            "upstream": {"": "docs/"},
        },
        "url_note": (
            "Only the abbreviated commit b952e71e9d40 is known; the raw URL uses it as given."
        ),
        "case_pattern": None,
    },
    "sts": {
        "kind": "store",
        "root": "sts",
        "title": "IBSI validation: soft-tissue sarcoma CT, MR T1 and FDG PET",
        "description": (
            "10 soft-tissue-sarcoma patients (STS_001-006, 008, 010, 012, 014) from the TCIA "
            "Soft-tissue-Sarcoma collection, each with CT (HU), T1-weighted MR (N4-corrected, "
            "normalised to subcutaneous fat) and FDG PET in SUV, cropped 5 cm around the tumour."
        ),
        "modality": ["CT", "MR", "PET"],
        "ground_truth": "tumour (GTV_Mass) voxel mask per modality",
        "licence": "CC BY 3.0",
        "licence_file": "ibsi/LICENSE-ibsi_validation.md",
        "readme_file": "ibsi/README-ibsi_validation.md",
        "citation": (
            "Vallieres M, Freeman CR, Skamene SR, El Naqa I. A radiomics model from joint "
            "FDG-PET and MRI texture features for the prediction of lung metastases in "
            "soft-tissue sarcomas of the extremities. Phys Med Biol. 2015;60(14):5471. "
            "doi:10.1088/0031-9155/60/14/5471. Data: The Cancer Imaging Archive, "
            "doi:10.7937/K9/TCIA.2015.7GO2GSKS. Clark K, et al. The Cancer Imaging Archive "
            "(TCIA). J Digit Imaging. 2013;26(6):1045-1057. " + IBSI_CITATION
        ),
        "source": {**IBSI_DATA, "upstream": {"": "ibsi_validation/nifti/"}},
        "url_note": (
            "Paths are ibsi_validation/nifti/<case>/<file> as referenced by other projects; "
            "not checked against the tree of the pinned commit."
        ),
        "case_pattern": r"^(STS_\d+)/",
    },
    "pyradiomics": {
        "kind": "store",
        "root": "pyradiomics",
        "title": "PyRadiomics test cases (brain1, brain2, breast1)",
        "description": (
            "MR test volumes of the PyRadiomics repository with tumour label maps, as NRRD: "
            "brain1 and brain2 (256x256x25, 0.78x0.78x6.5 mm) and breast1."
        ),
        "modality": ["MR"],
        "ground_truth": "tumour label map",
        "licence": "BSD-3-Clause (repository licence, LICENSE.txt)",
        "citation": (
            "van Griethuysen JJM, Fedorov A, Parmar C, et al. Computational radiomics system to "
            "decode the radiographic phenotype. Cancer Res. 2017;77(21):e104-e107. "
            "doi:10.1158/0008-5472.CAN-17-0339"
        ),
        "source": {
            "repository": "https://github.com/AIM-Harvard/pyradiomics",
            "commit": "8ed579383b44",
            "upstream": {"LICENSE.txt": "LICENSE.txt", "": "data/"},
        },
        "url_note": (
            "Only the abbreviated commit 8ed579383b44 is known; the raw URL uses it as given."
        ),
        "case_pattern": r"^(.+)_image\.nrrd$",
    },
    "hc18": {
        "kind": "store",
        "root": "hc18",
        "title": "HC18 fetal head circumference (training subset, all trimesters)",
        "description": (
            "2D fetal-head ultrasound (800x540 PNG), 873 images: all of subjects 000-299 and, "
            "of subjects 300-805, those whose number is not a multiple of 5 (the others are "
            "kept back as an unseen benchmark). The set is ordered by gestational age: head "
            "circumference rises from 44 mm (subject 000) to 346 mm (subject 805). A filled "
            "head annotation per image; the CSV gives the pixel size (mm) and the "
            "sonographer's head circumference (mm)."
        ),
        "modality": ["US"],
        "ground_truth": "filled head mask (*_Annotation.png) and head circumference in mm (CSV)",
        "licence": "CC BY 4.0",
        "citation": (
            "van den Heuvel TLA, de Bruijn D, de Korte CL, van Ginneken B. Automated measurement "
            "of fetal head circumference using 2D ultrasound images. PLoS ONE. "
            "2018;13(8):e0200412. doi:10.1371/journal.pone.0200412. Data: Zenodo, "
            "doi:10.5281/zenodo.1327317"
        ),
        "source": {
            "repository": "https://github.com/rileyaquilano/Ultrasound_Final",
            "commit": "97880301776e972b44d34a94087ea11ec6f0bc66",
            "upstream": {"": ""},
        },
        "url_note": "A copy of Zenodo record 1327317 (HC18 challenge) kept in a GitHub repository.",
        "case_pattern": r"^training_set/(\d{3}_\d?HC)\.png$",
    },
    "busi": {
        "kind": "store",
        "root": "busi",
        "title": "BUSI breast ultrasound (subset, 256x256)",
        "description": (
            "Breast ultrasound images (Al-Dhabyani et al. 2020) resized to 256x256 RGB, in "
            "folders benign/, malignant/ and normal/. Known caveats: about 19% near-duplicate "
            "images and a few lesions present in both the benign and malignant folders, so "
            "split by de-duplicated groups."
        ),
        "modality": ["US"],
        "ground_truth": "class label (folder name: benign, malignant, normal)",
        "licence": "research use (terms of the original BUSI release)",
        "citation": (
            "Al-Dhabyani W, Gomaa M, Khaled H, Fahmy A. Dataset of breast ultrasound images. "
            "Data Brief. 2020;28:104863. doi:10.1016/j.dib.2019.104863"
        ),
        "source": {
            "repository": "https://github.com/TongxinWang0405/BMI702_project",
            "commit": "922c9469dff20e816d3144880eadd28cdad8efa2",
            "upstream": {"": "Dataset_BUSI_with_GT/"},
        },
        "url_note": None,
        "case_pattern": r"^(?:benign|malignant|normal)/(.+)\.png$",
    },
    "dcm_qa_nih": {
        "kind": "store",
        "root": "dcm_qa_nih",
        "title": "dcm2niix validation corpus: GE and Siemens MR DICOM (dcm_qa_nih)",
        "description": (
            "The same phantom scanned on a GE MR scanner (In/20180918GE/mr_000N: EPI series of "
            "151 single-slice files, 15 slices x 10 volumes) and on a Siemens MR scanner "
            "(In/20180918Si/mr_000N: mosaic EPI, 2 files = 2 volumes each), with dcm2niix's reference "
            "conversions (Ref/*.nii: voxels and world geometry; Ref/*.json: BIDS sidecars with "
            "slice timing and phase encoding)."
        ),
        "modality": ["MR"],
        "ground_truth": "reference NIfTI volumes and BIDS sidecars written by dcm2niix",
        "licence": "BSD-2-Clause (dcm_qa_nih/LICENSE); images acquired by the NIH",
        "licence_file": "dcm_qa_nih/LICENSE",
        "citation": (
            "Li X, Morgan PS, Ashburner J, Smith J, Rorden C. The first step for neuroimaging "
            "data analysis: DICOM to NIfTI conversion. J Neurosci Methods. 2016;264:47-56. "
            "doi:10.1016/j.jneumeth.2016.03.001. Data: github.com/neurolabusc/dcm_qa_nih"
        ),
        "source": {
            "repository": "https://github.com/neurolabusc/dcm_qa_nih",
            "commit": "d302d6e241dd",
            "upstream": {"": ""},
        },
        "url_note": (
            "Only the abbreviated commit d302d6e241dd is known; the raw URL uses it as given."
        ),
        "case_pattern": r"^In/(\d{8}(?:GE|Si)/mr_\d{4})/",
    },
    # ---- data that ships inside PyPI packages (nothing to download) ----
    "pydicom_data": {
        "kind": "package",
        "title": "pydicom and pydicom-data test files",
        "description": (
            "DICOM test files: CT (CT_small.dcm, 693_J2KI.dcm, eCT_Supplemental.dcm), MR "
            "(MR_small.dcm, MR2_*, emri_small.dcm), chest CR (RG1_UNCI.dcm), extremity CR "
            "(RG3_*), ultrasound (US1_*, OBXXXX1A.dcm, examples_ybr_color.dcm), NM "
            "(JPEG2000.dcm), DICOM SEG (liver_1frame.dcm, liver.dcm)."
        ),
        "modality": ["CT", "MR", "CR", "US", "NM", "SEG"],
        "ground_truth": "none (DICOM conformance test files)",
        "licence": "MIT (pydicom, pydicom-data); see each package for the files' provenance",
        "citation": "Mason D, et al. pydicom: an open source DICOM library. https://github.com/pydicom/pydicom",
        "package": {"pip": "pydicom-data", "module": "data_store", "subdir": "data",
                    "files": ["RG1_UNCI.dcm"]},
    },
    "mni152": {
        "kind": "package",
        "title": "MNI ICBM152 2009 T1 template with brain, GM and WM masks (nilearn)",
        "description": (
            "The ICBM152 2009 nonlinear asymmetric T1 template as shipped by nilearn, at 1 mm "
            "(197x233x189) or 2 mm, with whole-brain, grey-matter and white-matter masks."
        ),
        "modality": ["MR"],
        "ground_truth": "brain, grey-matter and white-matter masks",
        "licence": (
            "ICBM152 2009 terms: free use with the copyright notice of the McConnell Brain "
            "Imaging Centre, MNI, McGill University; nilearn is BSD-3-Clause"
        ),
        "citation": (
            "Fonov VS, Evans AC, McKinstry RC, Almli CR, Collins DL. Unbiased nonlinear average "
            "age-appropriate brain templates from birth to adulthood. NeuroImage. 2009;47:S102. "
            "Fonov V, Evans AC, Botteron K, et al. Unbiased average age-appropriate atlases for "
            "pediatric studies. NeuroImage. 2011;54(1):313-327."
        ),
        "package": {"pip": "nilearn", "module": "nilearn", "subdir": "datasets/data",
                    "files": ["mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
                              "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
                              "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz"]},
    },
    "deid_echo": {
        "kind": "package",
        "title": "Colour-Doppler echocardiogram cine (deid-data)",
        "description": (
            "A real multiframe ultrasound DICOM (30 frames of 600x800 RGB) from the deid-data "
            "package: ultrasounds/ultrasound-multiframe.dcm."
        ),
        "modality": ["US"],
        "ground_truth": "none",
        "licence": "MIT (deid-data package)",
        "citation": "Sochat V, et al. deid: best-effort anonymization for medical images. https://github.com/pydicom/deid",
        "package": {"pip": "deid-data", "module": "deid_data", "subdir": "data",
                    "files": ["ultrasounds/ultrasound-multiframe.dcm"]},
    },
    "skimage_retina": {
        "kind": "package",
        "title": "Fundus photograph of a normal left eye (scikit-image)",
        "description": "A 1411x1411 RGB retinal fundus photograph bundled with scikit-image.",
        "modality": ["fundus photography"],
        "ground_truth": "none",
        "licence": "CC0 1.0 (public domain dedication)",
        "citation": (
            "Haggstrom M. Medical gallery of Mikael Haggstrom 2014. WikiJournal of Medicine. "
            "2014;1(2). doi:10.15347/wjm/2014.008"
        ),
        "package": {"pip": "scikit-image", "module": "skimage", "subdir": "data",
                    "files": ["retina.jpg"]},
    },
}


def read_manifest(path: Path) -> dict[str, tuple[str, int]]:
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    out = {}
    for row in rows:
        if not re.fullmatch(r"[0-9a-f]{64}", row["sha256"]):
            raise ValueError(f"{path}: bad sha256 for {row['path']!r}: {row['sha256']!r}")
        out[row["path"]] = (row["sha256"], int(row["bytes"]))
    return out


def upstream_path(rel: str, rules: dict[str, str]) -> str:
    """The path of local file ``rel`` in the source repository (see DATASETS)."""
    if rel in rules:
        return rules[rel]
    for key, target in rules.items():
        if key == "" or (key.endswith("/") and rel.startswith(key)):
            return target + (rel[len(key):] if key else rel)
    raise ValueError(f"no upstream rule for {rel!r}")


def build(manifest: dict[str, tuple[str, int]]) -> dict:
    datasets = {}
    for name, meta in DATASETS.items():
        entry = {"name": name, **{k: v for k, v in meta.items() if k != "source"}}
        if meta["kind"] == "store":
            src = meta["source"]
            prefix = meta["root"].rstrip("/") + "/"
            files = {}
            for path in sorted(manifest):
                if path.startswith(prefix):
                    sha, nbytes = manifest[path]
                    rel = path[len(prefix):]
                    files[rel] = {"sha256": sha, "bytes": nbytes,
                                  "upstream": upstream_path(rel, src["upstream"])}
            if not files:
                raise ValueError(f"{name}: no file of the manifest lies under {prefix!r}")
            entry["source"] = {
                "repository": src["repository"],
                "commit": src["commit"],
                "url": f"{src['repository']}/tree/{src['commit']}",
                "raw_base": src["repository"].replace("https://github.com/", "https://raw.githubusercontent.com/")
                + f"/{src['commit']}/",
            }
            for key in ("licence_file", "readme_file"):
                if entry.get(key):
                    if entry[key] not in manifest:
                        raise ValueError(f"{name}: {key} {entry[key]!r} is not in the manifest")
                    sha, nbytes = manifest[entry[key]]
                    entry[key] = {"path": entry[key], "sha256": sha, "bytes": nbytes}
            entry["files"] = files
        datasets[name] = entry
    return {"version": 1, "datasets": datasets}


def dumps(registry: dict) -> str:
    """JSON with one line per file, so diffs of the registry stay readable."""
    text = json.dumps(registry, indent=1, ensure_ascii=False)
    return re.sub(
        r'\{\n\s*"sha256": ("[0-9a-f]{64}"),\n\s*"bytes": (\d+),\n\s*"upstream": ("(?:[^"\\]|\\.)*")\n\s*\}',
        r'{"sha256": \1, "bytes": \2, "upstream": \3}',
        text,
    ) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    text = dumps(build(read_manifest(args.manifest)))
    json.loads(text)  # the compaction above must keep it valid JSON
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(args.out)
    n = sum(len(d.get("files", ())) for d in json.loads(text)["datasets"].values())
    sys.stderr.write(f"wrote {args.out} ({n} files)\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
