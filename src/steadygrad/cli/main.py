"""The ``steadygrad`` command: parse arguments, build a config, call the library.

Each subcommand lives in its own module exposing ``add_parser(subparsers)``, which
registers the subcommand and sets ``func`` (``argparse.Namespace -> int`` exit code).

Exit codes: 0 success, 1 a finding at or above ``--fail-on`` (diagnose) or a failed run,
2 bad input (usage, config, data), 3 training diverged (non-finite values).

Example:
    >>> from steadygrad.cli.main import build_parser
    >>> sorted(build_parser()._subparsers._group_actions[0].choices)
    ['diagnose', 'doctor', 'figures', 'lr-find', 'report', 'study', 'summary', 'sweep',
     'train']
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from steadygrad import __version__
from steadygrad.cli import (
    diagnose_cmd,
    doctor_cmd,
    figures_cmd,
    lr_find_cmd,
    report_cmd,
    study_cmd,
    summary_cmd,
    sweep_cmd,
    train_cmd,
)
from steadygrad.errors import NonFiniteError, SteadygradError, StorageError

__all__ = ["EXIT_BAD_INPUT", "EXIT_DIVERGED", "EXIT_FAILED", "EXIT_OK", "build_parser", "main"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_DIVERGED = 3

_SUBCOMMANDS = (train_cmd, diagnose_cmd, lr_find_cmd, summary_cmd, sweep_cmd, report_cmd,
                doctor_cmd, study_cmd, figures_cmd)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand registered.

    Example:
        >>> args = build_parser().parse_args(["summary", "deep_sigmoid", "--seed", "3"])
        >>> args.command, args.model, args.seed, args.func.__module__
        ('summary', 'deep_sigmoid', 3, 'steadygrad.cli.summary_cmd')
    """
    parser = argparse.ArgumentParser(
        prog="steadygrad",
        description="Train deep networks stably: diagnose gradient health, try the remedies, "
        "and measure which one works on your data.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Run 'steadygrad COMMAND --help' for a command's options and examples.",
    )
    parser.add_argument("--version", action="version", version=f"steadygrad {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in _SUBCOMMANDS:
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``steadygrad`` console script; returns the exit code.

    Bad input is reported on stderr as ``steadygrad CMD: error: ...`` with exit code 2.

    Example:
        >>> import contextlib, io
        >>> with contextlib.redirect_stdout(io.StringIO()):
        ...     ok = main(["summary", "deep_sigmoid"])
        >>> err = io.StringIO()
        >>> with contextlib.redirect_stderr(err):
        ...     bad = main(["train", "no-such-file.toml"])
        >>> ok, bad, err.getvalue().strip()
        (0, 2, "steadygrad train: error: config file: got 'no-such-file.toml'; expected ...")
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except NonFiniteError as err:
        print(f"steadygrad {args.command}: diverged: {err}", file=sys.stderr)
        return EXIT_DIVERGED
    except StorageError as err:  # disk full and the like: the input was fine
        print(f"steadygrad {args.command}: error: {err}", file=sys.stderr)
        return 1
    except SteadygradError as err:
        print(f"steadygrad {args.command}: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (``steadygrad study --list | head -1``)
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    return code


EXIT_BROKEN_PIPE = 141
"""128 + SIGPIPE: what a shell reports for a command whose output pipe was closed."""


def _silence_stdout() -> None:
    """Point stdout at the null device, so the interpreter's final flush of the closed pipe
    raises nothing (the recipe of Python's ``signal`` documentation, "Note on SIGPIPE")."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout is not a real file here
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
