"""The ``medlab`` command line.

``medlab report NOTEBOOK... --out DIR [-p NAME VALUE ...] [--hide-code]``
    Run notebooks through papermill, write executed notebooks, HTML reports and the recorded
    headline numbers (``NAME.records.json``), and print the numbers.
``medlab report --all --out DIR``
    Every tutorial and use-case notebook with its defaults, a progress bar, and ``index.html``
    linking every report with its picture and numbers.
``medlab deid IN OUT [--key KEY] [--profile-options OPTION ...]``
    De-identify DICOM files (DICOM PS3.15 Basic Profile) into a new folder, with an audit CSV;
    lists skipped files and the images to review for burned-in text.
``medlab batch COHORT.csv --task TASK --out DIR [--scheduler ADDRESS] [--workers N]``
    Run a per-case task over a cohort on Dask (medlab.batch); resumable.
``medlab data list | info NAME | fetch NAME | verify NAME``
    The dataset registry: what is registered, where it comes from, and fetching it (from the
    cache, the local store in ``$MEDLAB_DATA_STORE``, the embedded sample, or the source URL).
``medlab notebooks DIR [--teacher] [--force]``
    Write the students' copies of the tutorial and use-case notebooks that ship with the
    package into ``DIR`` (``DIR/tutorials``, ``DIR/usecases``): the exercises' solution cells
    removed, outputs cleared (``medlab.teaching.student_copy``). ``--teacher`` keeps the
    solutions. Open them in JupyterLab or run them with ``medlab report --all --notebooks-dir DIR``.

Every error is one line on stderr and a non-zero exit code (2: bad usage, 1: the job failed);
``medlab --debug ...`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from medlab.errors import MedlabError


class UsageError(Exception):
    """A command line that cannot work (a bad path, a missing argument): exit code 2."""


def _writable_folder(path, what: str) -> Path:
    """Check that folder ``path`` can be created and written *before* any work starts.

    The nearest existing folder on the way must be a folder in which a file can be created
    (probed with a temporary file, which also catches read-only file systems).
    """
    import tempfile

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{what} {str(path)!r} is a file, not a folder")
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise UsageError(f"{what} {str(path)!r} cannot be created: {str(probe)!r} is a file")
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as exc:
        raise UsageError(f"{what} {str(path)!r} is not writable ({str(probe)!r}: {exc.strerror or exc})") from None
    return path


def _report(args) -> int:
    from medlab.reports import describe_data, find_notebooks, parse_value, run_all, run_notebook

    _writable_folder(args.out, "--out")
    if args.data_source:  # the notebooks' kernels inherit it (medlab.datasets.data_source)
        import os

        os.environ["MEDLAB_DATA_SOURCE"] = args.data_source
    if args.all:
        if args.notebooks or args.parameter:
            print("medlab report --all runs every notebook with its defaults; give no notebooks or -p",
                  file=sys.stderr)
            return 2
        try:
            notebooks = find_notebooks(args.notebooks_dir)
        except FileNotFoundError as exc:
            raise UsageError(str(exc)) from None
        if not notebooks:
            raise UsageError(f"no notebooks in {args.notebooks_dir}/tutorials or /usecases")
        reports = run_all(args.out, notebooks, hide_code=args.hide_code, progress=not args.quiet)
        for rep in reports:
            state = f"FAILED: {rep.error}" if rep.error else f"{rep.seconds:.1f} s; data: {describe_data(rep.data)}"
            print(f"{rep.notebook.stem.replace('.failed', '')}: {state}")
        print(f"index: {Path(args.out).resolve() / 'index.html'}")
        return 1 if any(r.error for r in reports) else 0
    if not args.notebooks:
        print("medlab report: give notebooks, or --all", file=sys.stderr)
        return 2
    params = {name: parse_value(value) for name, value in args.parameter}
    failed = 0
    for nb in args.notebooks:
        try:
            rep = run_notebook(nb, args.out, params, html=not args.no_html, hide_code=args.hide_code,
                               progress=not args.quiet)
        except (MedlabError, ValueError, FileNotFoundError) as exc:
            print(f"FAILED {nb}: {exc}", file=sys.stderr)
            failed += 1
            continue
        print(f"{Path(nb).name}: {rep.seconds:.1f} s -> {rep.html or rep.notebook}")
        print(f"    data: {describe_data(rep.data)}")
        for k, v in rep.records.items():
            print(f"    {k} = {json.dumps(v)}")
    print(f"reports in {Path(args.out).resolve()}")
    return 1 if failed else 0


def _data(args) -> int:
    import medlab.datasets as ds

    if args.action == "list":
        for name in ds.list_datasets():
            info = ds.info(name)
            use = ("sample" if info["data_source"] == "sample" else "full")
            if info["sample_files"]:
                use += f" ({info['sample_files']} of {info['n_files']} files in the sample)"
            print(f"{name:22s} {','.join(info['modality']):20s} {use:40s} {info.get('title', '')}")
        print("(sample: the cases embedded in medlab; a data store or MEDLAB_DATA_SOURCE=full gives the full data)")
        return 0
    if not args.name:
        print(f"medlab data {args.action}: give a data set name (see `medlab data list`)", file=sys.stderr)
        return 2
    if args.action == "info":
        print(json.dumps(ds.info(args.name), indent=2, default=str))
        return 0
    if args.action == "verify":
        root = ds.verify(args.name)
        print(f"{args.name}: every file matches its sha256 ({root})")
        return 0
    root = ds.fetch(args.name)
    print(root)
    return 0


_DEID_OPTIONS = ("retain-dates", "retain-patient-characteristics", "clean-descriptors", "blank-us-header")


def _deid(args) -> int:
    import os

    from medlab.privacy import deidentify

    if args.key_file:
        key = Path(args.key_file).read_bytes().strip()
    else:
        key = args.key or os.environ.get("MEDLAB_DEID_KEY")
    if not key:
        print("medlab deid: give the secret with --key, --key-file or $MEDLAB_DEID_KEY", file=sys.stderr)
        return 2
    opts = set(args.profile_options)
    # before reading any file: the output (and the audit file) must be creatable
    _writable_folder(Path(args.output).parent if Path(args.output).parent != Path("") else ".", "the output's folder")
    if args.audit_csv:
        _writable_folder(Path(args.audit_csv).parent, "the audit file's folder")
    try:
        summary = deidentify(
            args.input,
            args.output,
            key=key,
            retain_dates="shift" if "retain-dates" in opts else False,
            retain_patient_characteristics="retain-patient-characteristics" in opts,
            clean_descriptors="clean-descriptors" in opts,
            blank_us_header="blank-us-header" in opts,
            us_header_rows=args.us_header_rows,
            audit_csv=args.audit_csv,
            progress=not args.quiet,
        )
    except (ValueError, TypeError) as exc:
        print(f"medlab deid: {exc}", file=sys.stderr)
        return 2
    print(f"{len(summary.files)} file(s) de-identified into {summary.output}; audit: {summary.audit_csv}")
    for path, reason in summary.skipped:
        print(f"skipped {path}: {reason}")
    for path, reason in summary.burned_in:
        print(f"REVIEW {path}: {reason}")
    return 0


def _batch(args) -> int:
    from medlab.batch import run_cohort

    res = run_cohort(
        args.cohort, args.task, args.out, scheduler=args.scheduler, n_workers=args.workers,
        progress=not args.quiet,
    )
    print(f"{len(res.computed)} computed, {len(res.skipped)} skipped, {len(res.failed)} failed "
          f"in {res.seconds:.1f} s -> {res.results_csv}")
    for case in res.failed:
        print(f"    failed: {case} (see {res.out_dir / 'cases' / (case + '.json')})")
    return 1 if res.failed else 0


def _notebooks(args) -> int:
    from medlab.reports import find_notebooks, packaged_notebooks
    from medlab.teaching import student_copy

    src = packaged_notebooks()
    notebooks = find_notebooks(src)
    dest = _writable_folder(args.dir, "DIR")
    clash = [dest / nb.relative_to(src) for nb in notebooks if (dest / nb.relative_to(src)).exists()]
    if clash and not args.force:
        raise UsageError(f"{len(clash)} notebook(s) already in {dest} (e.g. {clash[0]}); "
                         f"give --force to overwrite them")
    removed = sum(student_copy(nb, dest / nb.relative_to(src), solutions=args.teacher) for nb in notebooks)
    kind = ("teacher's copies, with the exercises' solutions" if args.teacher
            else f"students' copies: {removed} solution cells left out; --teacher keeps them")
    print(f"{len(notebooks)} notebooks written into {dest.resolve()} (tutorials/, usecases/; {kind}); "
          f"run them all with: medlab report --all --notebooks-dir {dest} --out REPORTS")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="medlab", description="medlab: medical image analysis for Jupyter")
    p.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    sub = p.add_subparsers(dest="command", required=True)

    n = sub.add_parser("notebooks", help="write the students' copies of the tutorial and use-case notebooks "
                                         "(solutions left out) into a folder")
    n.add_argument("dir", help="target folder (created if missing)")
    n.add_argument("--teacher", action="store_true", help="keep the exercises' solution cells (the teacher's copy)")
    n.add_argument("--force", action="store_true", help="overwrite notebooks already there")
    n.set_defaults(func=_notebooks)

    r = sub.add_parser("report", help="run notebooks through papermill and write HTML reports")
    r.add_argument("notebooks", nargs="*", help="notebook files (.ipynb)")
    r.add_argument("--all", action="store_true",
                   help="run every tutorial and use-case notebook and write OUT/index.html")
    r.add_argument("--notebooks-dir", help="with --all: the notebooks folder (default: the project's)")
    r.add_argument("--hide-code", action="store_true", help="leave code out of the HTML reports")
    r.add_argument("--out", required=True, help="output folder for executed notebooks and HTML")
    r.add_argument(
        "-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
        help="set a parameter (value parsed as a Python literal if it is one)",
    )
    r.add_argument("--no-html", action="store_true", help="skip the HTML export")
    r.add_argument("--data-source", choices=["auto", "sample", "full"],
                   help="the data the notebooks use: the sample embedded in medlab, the full data sets "
                        "(store, cache or download), or auto (default, $MEDLAB_DATA_SOURCE): full when "
                        "a data store is set")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    r.set_defaults(func=_report)

    b = sub.add_parser("batch", help="run a per-case task over a cohort table on Dask")
    b.add_argument("cohort", help="CSV with a case_id column (+ image, mask paths for the built-in tasks)")
    b.add_argument("--task", required=True, help="built-in task name or package.module:function")
    b.add_argument("--out", required=True, help="output folder (cases/*.json, results.csv)")
    b.add_argument("--scheduler", help="address of a running Dask scheduler (default: a local cluster)")
    b.add_argument("--workers", type=int, default=2, help="local cluster size (default 2)")
    b.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    b.set_defaults(func=_batch)

    d = sub.add_parser("data", help="the dataset registry")
    d.add_argument("action", choices=["list", "info", "fetch", "verify"])
    d.add_argument("name", nargs="?")
    d.set_defaults(func=_data)

    x = sub.add_parser("deid", help="de-identify DICOM files (PS3.15 Basic Profile) with an audit CSV")
    x.add_argument("input", help="a DICOM file or a folder (never modified)")
    x.add_argument("output", help="a new (or empty) folder outside the input folder")
    x.add_argument("--key", help="secret for pseudonyms, UIDs and date shifts (else $MEDLAB_DEID_KEY)")
    x.add_argument("--key-file", help="read the secret from this file instead")
    x.add_argument(
        "--profile-options", nargs="+", default=[], choices=_DEID_OPTIONS, metavar="OPTION",
        help="PS3.15 options: " + ", ".join(_DEID_OPTIONS) + " (dates are shifted per patient)",
    )
    x.add_argument("--us-header-rows", type=int, help="rows of the ultrasound header band to blank")
    x.add_argument("--audit-csv", help="audit file (default OUTPUT/deid_audit.csv)")
    x.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    x.set_defaults(func=_deid)
    for cmd in sub.choices.values():  # `medlab report --debug ...` as well as `medlab --debug report ...`
        cmd.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return p


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def main(argv=None) -> int:
    """Run the command line; return the exit code (0 ok, 1 the job failed, 2 bad usage, 130 stopped)."""
    args = build_parser().parse_args(argv)

    try:
        return args.func(args)
    except KeyboardInterrupt:
        if args.debug:
            raise
        print("medlab: stopped", file=sys.stderr)
        return 130
    except UsageError as exc:
        if args.debug:
            raise
        print(f"medlab {args.command}: {_one_line(exc)}", file=sys.stderr)
        return 2
    except (MedlabError, ValueError, TypeError, OSError) as exc:
        # data errors, bad arguments named by medlab, files that cannot be read or written
        if args.debug:
            raise
        kind = "" if isinstance(exc, MedlabError) else f"{type(exc).__name__}: "
        print(f"medlab {args.command}: {kind}{_one_line(exc)}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - a bug: still one line, with the way to see more
        if args.debug:
            raise
        print(f"medlab {args.command}: unexpected {type(exc).__name__}: {_one_line(exc)} "
              f"(run with --debug for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
