"""The ``medlab`` command line.

``medlab report NOTEBOOK... --out DIR [-p NAME VALUE ...]``
    Run notebooks through papermill, write executed notebooks and HTML reports, print the
    recorded headline numbers.
``medlab data list | info NAME | fetch NAME``
    The dataset registry: what is registered, where it comes from, and fetching it (from the
    cache, the local store in ``$MEDLAB_DATA_STORE``, or the source URL).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _report(args) -> int:
    from medlab.errors import MedlabError
    from medlab.reports import parse_value, run_notebook

    params = {name: parse_value(value) for name, value in args.parameter}
    failed = 0
    for nb in args.notebooks:
        try:
            rep = run_notebook(nb, args.out, params, html=not args.no_html, progress=not args.quiet)
        except (MedlabError, ValueError, FileNotFoundError) as exc:
            print(f"FAILED {nb}: {exc}", file=sys.stderr)
            failed += 1
            continue
        print(f"{Path(nb).name}: {rep.seconds:.1f} s -> {rep.html or rep.notebook}")
        for k, v in rep.records.items():
            print(f"    {k} = {json.dumps(v)}")
    print(f"reports in {Path(args.out).resolve()}")
    return 1 if failed else 0


def _data(args) -> int:
    import medlab.datasets as ds

    if args.action == "list":
        for name in ds.list_datasets():
            info = ds.info(name)
            print(f"{name:24s} {info.get('modality', '')!s:28s} {info.get('title', '')}")
        return 0
    if not args.name:
        print(f"medlab data {args.action}: give a data set name (see `medlab data list`)", file=sys.stderr)
        return 2
    if args.action == "info":
        print(json.dumps(ds.info(args.name), indent=2, default=str))
        return 0
    root = ds.fetch(args.name)
    print(root)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="medlab", description="medlab: medical image analysis for Jupyter")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("report", help="run notebooks through papermill and write HTML reports")
    r.add_argument("notebooks", nargs="+", help="notebook files (.ipynb)")
    r.add_argument("--out", required=True, help="output folder for executed notebooks and HTML")
    r.add_argument(
        "-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
        help="set a parameter (value parsed as a Python literal if it is one)",
    )
    r.add_argument("--no-html", action="store_true", help="skip the HTML export")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    r.set_defaults(func=_report)

    d = sub.add_parser("data", help="the dataset registry")
    d.add_argument("action", choices=["list", "info", "fetch"])
    d.add_argument("name", nargs="?")
    d.set_defaults(func=_data)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from medlab.errors import MedlabError

    try:
        return args.func(args)
    except MedlabError as exc:
        print(f"medlab: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
