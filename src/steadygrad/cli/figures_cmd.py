"""``steadygrad figures``: the chapter's pictures, computed by the library, on one HTML page.

Example:
    >>> import argparse
    >>> sub = argparse.ArgumentParser(prog="steadygrad").add_subparsers()
    >>> add_parser(sub)
    >>> args = sub.choices["figures"].parse_args(["--out", "figs", "--only", "dropout"])
    >>> args.out, args.only
    ('figs', ['dropout'])
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from steadygrad.cli._common import make_parser, print_json, show_progress

__all__ = ["add_parser", "run"]

_EXAMPLES = """
  steadygrad figures                      # writes figures/figures.html
  steadygrad figures --out docs/figures   # somewhere else
  steadygrad figures --only activations --only depth
"""


def add_parser(sub: Any) -> None:
    """Register the ``figures`` subcommand."""
    from steadygrad.figures import FIGURES

    parser = make_parser(
        sub, "figures", help="draw the chapter's figures (computed, one HTML page)",
        description="Activation functions and derivatives, signal and gradient scale vs "
        "depth per initialization, optimizer paths on a 2-D loss, schedules, batch norm in "
        "training vs inference, inverted dropout, MC-dropout uncertainty and reliability: "
        "computed by steadygrad, each with a caption stating the numbers.",
        examples=_EXAMPLES,
    )
    parser.add_argument("--out", default="figures", metavar="DIR",
                        help="folder for figures.html (default: figures)")
    parser.add_argument("--only", action="append", default=None, choices=list(FIGURES),
                        metavar="NAME", help=f"only this figure (repeatable): "
                        f"{', '.join(FIGURES)}")
    parser.add_argument("--json", action="store_true", help="print the path as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Compute the figures and write the page."""
    from steadygrad.figures import FIGURES, write_figures

    names = args.only or list(FIGURES)
    if show_progress(args, sys.stderr):
        print(f"computing {len(names)} figures ({', '.join(names)})...", file=sys.stderr,
              flush=True)
    path = write_figures(args.out, names)
    if args.json:
        print_json({"html": str(path), "figures": names})
    else:
        print(f"html: {path}")
    return 0
