#!/usr/bin/env bash
# medlab developer entry point: every command sets up what it needs on a fresh machine
# (a virtual environment in .venv from constraints.txt), then does its job.
#
#   bash tools/dev.sh report   run every notebook through papermill -> reports/index.html
#   bash tools/dev.sh gallery  the same, then the README's notebook gallery and table
#   bash tools/dev.sh test     the whole test suite (unit tests + notebooks)
#   bash tools/dev.sh lab      JupyterLab on notebooks/ (127.0.0.1 only)
#   bash tools/dev.sh bench    benchmarks -> benchmarks/results/latest.json
#   bash tools/dev.sh docs     documentation site -> docs/_build/html/index.html (offline)
#   bash tools/dev.sh env      only create/update the environment
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
EXTRAS="data,jupyter,test,batch,dl,napari,pacs"

find_python() {
  for cand in "${PYTHON:-}" python3.11 python3 python; do
    [ -n "$cand" ] || continue
    if command -v "$cand" >/dev/null 2>&1 &&
       "$cand" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      echo "$cand"; return 0
    fi
  done
  echo "medlab needs Python >= 3.11 (set PYTHON=/path/to/python3.11)" >&2
  return 1
}

ensure_env() {
  local stamp="$VENV/.medlab-installed"
  local want
  want="$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)-$EXTRAS"
  if [ -x "$VENV/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  if [ ! -x "$VENV/bin/python" ]; then
    "$(find_python)" -m venv "$VENV"
  fi
  echo "== installing medlab into $VENV (pinned by constraints.txt)" >&2
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet -c constraints.txt -e ".[$EXTRAS]"
  echo "$want" > "$stamp"
}

# Real data come through medlab's dataset registry; on these machines its local store is
# ../shared/data (override by exporting MEDLAB_DATA_STORE yourself).
if [ -z "${MEDLAB_DATA_STORE:-}" ] && [ -d "$ROOT/../shared/data" ]; then
  export MEDLAB_DATA_STORE="$(cd "$ROOT/../shared/data" && pwd)"
fi

cmd="${1:-help}"; shift || true
case "$cmd" in
  env)
    ensure_env ;;
  report)
    ensure_env
    out="${MEDLAB_REPORTS:-$ROOT/reports}"
    "$VENV/bin/medlab" report --all --out "$out" "$@"
    echo "== reports: $out/index.html" ;;
  gallery)
    ensure_env
    "$VENV/bin/python" tools/make_gallery.py --run --reports "${MEDLAB_REPORTS:-$ROOT/reports}" "$@" ;;
  test)
    ensure_env
    "$VENV/bin/python" -m pytest -n "${MEDLAB_TEST_WORKERS:-2}" --dist loadscope "$@" ;;
  lab)
    ensure_env
    exec "$VENV/bin/jupyter" lab --no-browser --ip=127.0.0.1 --ServerApp.root_dir="$ROOT/notebooks" "$@" ;;
  bench)
    ensure_env
    "$VENV/bin/python" benchmarks/run.py "$@" ;;
  docs)
    # API reference from the docstrings, the executed notebooks of reports/ (run `report` first),
    # install, data and benchmark pages; every warning is an error
    ensure_env
    "$VENV/bin/python" -c "import sphinx, numpydoc, myst_nb" 2>/dev/null ||
      "$VENV/bin/python" -m pip install --quiet -c constraints.txt -e ".[docs]"
    MEDLAB_REPORTS="${MEDLAB_REPORTS:-$ROOT/reports}" \
      "$VENV/bin/python" -m sphinx -W --keep-going -q -b html docs/site docs/_build/html "$@"
    echo "== docs: $ROOT/docs/_build/html/index.html" ;;
  *)
    sed -n '2,11p' "$0"; [ "$cmd" = help ] ;;
esac
