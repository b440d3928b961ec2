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
from typing import Any

from steadygrad.cli._common import make_parser, positive_int, print_json

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
    parser.add_argument("--collect", metavar="PAGE", default=None,
                        help="run nothing: write one Markdown page of every study found "
                        "under --out (with --full: the full-mode results), figures in "
                        "PAGE's folder under images/results/")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Execute ``steadygrad study``; returns the exit code.

    Example:
        >>> from steadygrad.cli.main import build_parser
        >>> run(build_parser().parse_args(["study", "--list"]))  # doctest: +ELLIPSIS
        activations          Does the usual ranking SELU > ELU > ... hold here?
        ...
        unstable-gradients   Which activation/initialization pairs ...
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
            print(f"{name.replace('_', '-'):20s} {load_spec(name)['question']}")
        return 0
    result = run_study(args.name, full=args.full, out_dir=args.out, seeds=args.seeds,
                       workers=args.workers, resume=args.resume,
                       overrides=args.overrides)
    if args.json:
        print_json({"study": result.name, "mode": result.mode,
                    "conclusions": result.conclusions, "files": result.files})
    else:
        print(f"study {result.name} ({result.mode}):")
        for line in result.conclusions:
            print(f"  - {line}")
        print(f"report: {result.files.get('study_html')}")
    return 0
