"""``steadygrad study NAME``: run a built-in study and write its report.

Quick mode (default) runs minutes on a laptop CPU on the embedded digits data; ``--full`` runs
the classic setup (Fashion-MNIST, 55,000/5,000 split, batch 32, e.g. 100 layers of 100 units),
which takes hours on a CPU. ``steadygrad study --list`` shows the studies.

Example:
    >>> import argparse
    >>> sub = argparse.ArgumentParser(prog="steadygrad").add_subparsers()
    >>> add_parser(sub)
    >>> args = sub.choices["study"].parse_args(["activations", "--seeds", "2"])
    >>> args.name, args.full, args.seeds
    ('activations', False, 2)
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any

from steadygrad.cli._common import make_parser, positive_int, print_json, show_progress

__all__ = ["add_parser", "run"]

_EXAMPLES = """
  steadygrad study --list
  steadygrad study unstable-gradients                 # quick mode, into ./studies/
  steadygrad study activations --seeds 5 --out results
  steadygrad study unstable-gradients --full --workers 2   # classic setup (hours)
  steadygrad study --full --out studies --collect docs/results.md   # one page of them all

exit codes: 0 done, 1 some run failed, 2 bad input
"""



def add_parser(sub: Any) -> None:
    """Register the ``study`` subcommand.

    Example:
        >>> import argparse
        >>> sub = argparse.ArgumentParser(prog="steadygrad").add_subparsers()
        >>> add_parser(sub)
        >>> args = sub.choices["study"].parse_args(["depth", "--full", "--workers", "2"])
        >>> args.name, args.full, args.workers, args.out, args.func is run
        ('depth', True, 2, 'studies', True)
    """
    parser = make_parser(
        sub, "study", help="run a built-in study (sweep + analysis) and write its report",
        description="Run one of the built-in studies (unstable-gradients, initializers, "
        "activations, batch-norm, clipping, optimizers, schedules, regularization, depth, "
        "transfer, pretraining) and "
        "write its report: Markdown, HTML, CSV and plots, with conclusions computed from the "
        "results.",
        examples=_EXAMPLES,
    )
    parser.add_argument("name", metavar="NAME", nargs="?", default=None, help="study name")
    parser.add_argument("--list", action="store_true", help="list the studies and exit")
    parser.add_argument("--full", action="store_true",
                        help="the classic full-size setup (Fashion-MNIST; hours on a CPU)")
    parser.add_argument("--out", default="studies", metavar="DIR",
                        help="results root (default ./studies)")
    parser.add_argument("--seeds", type=positive_int, default=None, metavar="N",
                        help="number of seeds (default: the study's own)")
    parser.add_argument("--workers", type=positive_int, default=1, metavar="N",
                        help="worker processes (default 1)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="override a base config key of every run (e.g. train.epochs=2)")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted study")
    parser.add_argument("--json", action="store_true", help="print the conclusions as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress display")
    parser.add_argument("--collect", metavar="PAGE", default=None,
                        help="run nothing: write one Markdown page of every study found "
                        "under --out (with --full: the full-mode results), its raw results in "
                        "PAGE's folder under results-data/MODE.json (the page is made from "
                        "them alone) and the figures under images/results/")
    parser.set_defaults(func=run)


def _size(name: str, args: argparse.Namespace) -> str:
    """``"8 runs x 4 epochs, last run here 54 s"``: the study's size and, when a result
    exists under ``--out``, the time it took there (measured, not estimated).

    >>> _size("clipping", argparse.Namespace(full=False, seeds=None, out="/nonexistent"))
    '8 runs x 4 epochs, not run here yet...'
    """
    from steadygrad.studies.registry import STUDIES, load_spec
    from steadygrad.studies.runner import expand

    mode = "full" if args.full else "quick"
    spec = load_spec(name, full=args.full)
    if STUDIES.get(name).run is None:
        sweep = expand(spec, getattr(args, "seeds", None), getattr(args, "overrides", ()) or ())
        epochs = sorted({r.config.train.epochs for r in sweep.runs})
        span = f"{epochs[0]}" if len(epochs) == 1 else f"{epochs[0]}-{epochs[-1]}"
        size = f"{len(sweep.runs)} runs x {span} epochs"
    else:
        size = "custom runs"
    done = Path(getattr(args, "out", "studies")) / f"{name}-{mode}" / "study.json"
    try:
        seconds = float(json.loads(done.read_text())["seconds"])
    except (OSError, ValueError, KeyError, TypeError):
        return f"{size}, {_shipped_duration(name, mode)}"
    return f"{size}, last run here {seconds:.0f} s"


def _shipped_duration(name: str, mode: str) -> str:
    """The quick-mode wall time measured on the reference machine
    (``studies/durations.json``, written by ``benchmarks/study_durations.py``), else that the
    study was not run here yet.

    >>> _shipped_duration("clipping", "full")
    'not run here yet'
    """
    from importlib import resources

    try:
        doc = json.loads(resources.files("steadygrad.studies").joinpath("durations.json")
                         .read_text(encoding="utf-8"))
        row = doc["studies"][name.replace("_", "-")] if mode == doc["mode"] else None
        if row is None:
            return "not run here yet"
        return (f"not run here yet; took {float(row['seconds']):.0f} s on "
                f"{int(doc['threads'])} thread(s) of a {doc['machine']} ({doc['date']})")
    except (OSError, ValueError, KeyError, TypeError):
        return "not run here yet"


def run(args: argparse.Namespace) -> int:
    """Execute ``steadygrad study``; returns the exit code.

    Example:
        >>> from steadygrad.cli.main import build_parser
        >>> run(build_parser().parse_args(["study", "--list"]))  # doctest: +ELLIPSIS
        activations          ... runs x ... epochs, ...  Does the usual ranking SELU > ELU > ...
        ...
        unstable-gradients   ...  Which activation/initialization pairs ...
        0
        >>> run(build_parser().parse_args(["study"]))
        Traceback (most recent call last):
        ...
        steadygrad.errors.ConfigError: NAME: got None; expected one of activations, ...
    """
    from steadygrad.errors import ConfigError
    from steadygrad.studies.registry import STUDIES, load_spec
    from steadygrad.studies.runner import run_study

    if args.collect is not None:
        from steadygrad.studies.results_doc import ORDER, write_results

        names = ORDER if args.name is None else (STUDIES.get(args.name).name,)
        page = write_results(args.out, args.collect, mode="full" if args.full else "quick",
                             studies=names)
        print(f"results page: {page}")
        return 0
    if args.list or args.name is None:
        if args.name is None and not args.list:
            raise ConfigError("NAME", None, f"one of {', '.join(STUDIES.names())}",
                              hint="steadygrad study --list")
        for name in STUDIES.names():
            print(f"{name.replace('_', '-'):20s} {_size(name, args)}  "
                  f"{load_spec(name, full=args.full)['question']}")
        return 0
    on_sweep = None
    if show_progress(args, sys.stderr):
        from steadygrad.cli.sweep_cmd import SweepProgress

        print(f"study {args.name} ({'full' if args.full else 'quick'} mode): "
              f"{_size(STUDIES.canonical(args.name), args)}", file=sys.stderr, flush=True)

        def on_sweep(sweep_dir: Path, runs: int) -> SweepProgress:
            return SweepProgress(sweep_dir / "index.sqlite", runs, sys.stderr)

    with warnings.catch_warnings():  # numerical warnings belong in the report, not the tty
        warnings.simplefilter("ignore", RuntimeWarning)
        result = run_study(args.name, full=args.full, out_dir=args.out, seeds=args.seeds,
                           workers=args.workers, resume=args.resume,
                           overrides=args.overrides, on_sweep=on_sweep)
    if args.json:
        print_json({"study": result.name, "mode": result.mode,
                    "conclusions": result.conclusions, "files": result.files})
    else:
        print(f"study {result.name} ({result.mode}):")
        for line in result.conclusions:
            print(f"  - {line}")
        print(f"report: {result.files.get('study_html')}")
    return 0
