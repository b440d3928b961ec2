"""``steadygrad report``: the HTML report of a run directory, or of a sweep directory.

A run directory (``steadygrad train``'s ``runs/NAME``) gets one self-contained page,
``RUN_DIR/report.html`` (:func:`steadygrad.experiments.run_report.write_run_report`): curves,
learning rate, gradient norm before and after clipping, per-layer health over time and the
findings with remedies.

A sweep directory gets its HTML page, CSV and Markdown summary:

Calls :func:`steadygrad.experiments.report.write_report`: configs ranked by the validation
metric (mean ± std over seeds), learning curves, time per epoch, per-layer gradient plots and
the gradient-health findings of every config. The page is self-contained (inline CSS, images
as data URIs): it opens offline and can be mailed as one file.

Example:
    >>> from steadygrad.cli.main import main
    >>> import tempfile
    >>> main(["report", tempfile.mkdtemp()])  # an empty folder is not a sweep
    2
"""

from __future__ import annotations

import argparse
from typing import Any

from steadygrad.cli._common import make_parser, print_json

__all__ = ["add_parser", "run"]

_EXAMPLES = """
  steadygrad report runs/my-run                        # writes runs/my-run/report.html
  steadygrad report sweeps/activations                 # writes sweeps/activations/report/
  steadygrad report sweeps/activations --out /tmp/rep  # somewhere else
  steadygrad report sweeps/activations --metric val_loss
"""


def add_parser(sub: Any) -> None:
    """Register the ``report`` subcommand.

    Example:
        >>> import argparse
        >>> sub = argparse.ArgumentParser(prog="steadygrad").add_subparsers()
        >>> add_parser(sub)
        >>> args = sub.choices["report"].parse_args(["sweeps/act", "--metric", "val_loss"])
        >>> args.directory, args.out, args.metric, args.json, args.func is run
        ('sweeps/act', None, 'val_loss', False, True)
    """
    parser = make_parser(
        sub, "report", help="write the HTML report of a run or of a sweep",
        description="A run directory: one self-contained report.html (curves, learning "
        "rate, gradient norm before/after clipping, per-layer health, findings). "
        "A sweep directory: ranking with mean ± std over seeds, "
        "learning curves, time per epoch, gradient-health findings and per-layer gradient "
        "plots, as report.html (self-contained), results.csv and report.md.",
        examples=_EXAMPLES,
    )
    parser.add_argument("directory", metavar="DIR", help="a run or sweep directory")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="where to write the report (default: DIR/report for a sweep, "
                        "DIR/report.html for a run)")
    parser.add_argument("--metric", default=None,
                        help="the ranking metric (default: val_accuracy if logged, "
                        "else val_loss, else loss)")
    parser.add_argument("--json", action="store_true",
                        help="print the written paths and the ranking as one JSON document")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the report and print where it is.

    Example:
        >>> import tempfile
        >>> from steadygrad.cli.main import build_parser
        >>> run(build_parser().parse_args(["report", tempfile.mkdtemp()]))
        Traceback (most recent call last):
        ...
        steadygrad.errors.ConfigError: DIR: got '...'; expected a sweep directory ...
    """
    from steadygrad.experiments.report import build_report, write_report
    from steadygrad.experiments.run_report import is_run_dir, write_run_report

    if is_run_dir(args.directory):
        path = write_run_report(args.directory, args.out)
        if args.json:
            print_json({"run": args.directory, "paths": {"html": str(path)}})
        else:
            print(f"html: {path}")
        return 0
    report = build_report(args.directory, metric=args.metric)
    paths = write_report(args.directory, args.out, metric=args.metric, report=report)
    if args.json:
        print_json({
            "sweep": report.name, "metric": report.metric, "paths": {
                k: str(v) for k, v in paths.items()},
            "ranking": [{"config": c.label, "mean": c.mean, "std": c.std, "seeds": c.n,
                         "seconds_per_epoch": c.seconds_per_epoch} for c in report.configs],
        })
        return 0
    for line in report.sentences():
        print(line)
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    return 0
