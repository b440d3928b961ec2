"""Helpers shared by the subcommands: config arguments, progress decisions, JSON output.

Every subcommand follows the same order: parse the arguments, build and validate the config
(bad input raises a :class:`~steadygrad.errors.ConfigError` or
:class:`~steadygrad.errors.DataError` *before* any work or run directory is created; ``main``
turns it into exit code 2), call the library, print.

Example:
    >>> import argparse
    >>> parser = argparse.ArgumentParser()
    >>> add_config_arguments(parser)
    >>> args = parser.parse_args(["run.toml", "--set", "train.epochs=2",
    ...                           "--set", "model.hidden=[8]"])
    >>> args.config, args.overrides
    ('run.toml', ['train.epochs=2', 'model.hidden=[8]'])
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import textwrap
from collections.abc import Callable
from typing import Any, TextIO

from steadygrad.experiments.config import RunConfig
from steadygrad.experiments.loader import load_config

__all__ = [
    "add_config_arguments",
    "finding_lines",
    "format_metrics",
    "json_safe",
    "load_run_config",
    "make_parser",
    "positive_int",
    "print_json",
    "show_progress",
]


def int_at_least(low: int) -> Callable[[str], int]:
    """``argparse`` type for an integer >= ``low``, with a message naming what was received.

    >>> int_at_least(2)("3")
    3
    >>> int_at_least(2)("1")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: got '1'; expected an integer >= 2
    """

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if value < low:
            raise argparse.ArgumentTypeError(f"got {text!r}; expected an integer >= {low}")
        return value

    return parse


positive_int = int_at_least(1)
"""``argparse`` type for an integer >= 1 (``positive_int("3") == 3``)."""


def make_parser(sub: Any, name: str, *, help: str, description: str,
                examples: str) -> argparse.ArgumentParser:
    """Register subcommand ``name`` with its help, description and an examples epilog.

    Example:
        >>> sub = argparse.ArgumentParser(prog="steadygrad").add_subparsers()
        >>> p = make_parser(sub, "demo", help="h", description="d", examples="  steadygrad demo")
        >>> "examples:" in p.format_help()
        True
    """
    parser: argparse.ArgumentParser = sub.add_parser(
        name, help=help, description=textwrap.fill(description, width=88),
        epilog="examples:\n" + examples.strip("\n").rstrip() + "\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``CONFIG`` file argument and the repeatable ``--set KEY=VALUE`` override.

    Example:
        >>> parser = argparse.ArgumentParser()
        >>> add_config_arguments(parser)
        >>> parser.parse_args(["run.yaml"])
        Namespace(config='run.yaml', overrides=[])
        >>> parser.parse_args(["run.yaml", "--set", "model.activation=selu"]).overrides
        ['model.activation=selu']
    """
    parser.add_argument("config", metavar="CONFIG",
                        help="run config file (.toml, .yaml/.yml or .json)")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override one config key, e.g. --set model.activation=selu (repeatable; the "
        "value is a TOML literal: 0.1, true, [64, 64], {name = \"elu\", alpha = 0.5})",
    )


def load_run_config(args: argparse.Namespace) -> RunConfig:
    """Read ``args.config``, apply ``args.overrides`` and validate (ConfigError on bad input).

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "run.toml"
        >>> _ = p.write_text("[model]\\nhidden = [8]\\n")
        >>> ns = argparse.Namespace(config=str(p), overrides=["train.epochs=2"])
        >>> cfg = load_run_config(ns)
        >>> cfg.model.hidden, cfg.train.epochs
        ((8,), 2)
    """
    return load_config(args.config, list(getattr(args, "overrides", []) or []))


def show_progress(args: argparse.Namespace, stream: TextIO | None = None) -> bool:
    """Whether to draw live progress: only on a terminal, never with ``--quiet``/``--json``.

    Example:
        >>> import io
        >>> show_progress(argparse.Namespace(quiet=False, json=False), io.StringIO())
        False
    """
    if getattr(args, "quiet", False) or getattr(args, "json", False):
        return False
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def json_safe(value: Any) -> Any:
    """A copy with NaN/Inf replaced by None (strict JSON), recursively.

    Example:
        >>> json_safe({"a": [1.0, float("nan")], "b": float("inf")})
        {'a': [1.0, None], 'b': None}
    """
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def print_json(obj: Any, stream: TextIO | None = None) -> None:
    """Print ``obj`` as one strict JSON document (NaN/Inf as null) on stdout.

    Example:
        >>> print_json({"loss": float("nan"), "ok": True})
        {"loss": null, "ok": true}
    """
    print(json.dumps(json_safe(obj), allow_nan=False, default=str),
          file=sys.stdout if stream is None else stream)


def format_metrics(metrics: dict[str, Any], skip: tuple[str, ...] = ("seconds",)) -> str:
    """``"loss 0.3120 - val_accuracy 0.9100"`` (None shown as ``-``; lr in short form).

    Example:
        >>> format_metrics({"loss": 0.31204, "lr": 0.01, "val_loss": None, "seconds": 1.0})
        'loss 0.3120 - lr 0.01 - val_loss -'
        >>> format_metrics({"loss": 1.44e34})
        'loss 1.44e+34'
    """
    parts = []
    for key, value in metrics.items():
        if key in skip:
            continue
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            parts.append(f"{key} -")
        elif key == "lr" or (value != 0 and not 1e-3 <= abs(value) < 1e5):
            parts.append(f"{key} {value:.3g}")
        else:
            parts.append(f"{key} {value:.4f}")
    return " - ".join(parts)


def _literal(value: Any) -> str:
    """A patch value: strings bare, everything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def finding_lines(findings: list[dict[str, Any]], diverged: bool = False) -> list[str]:
    """Compact text lines for findings given as ``steadygrad.health`` dicts.

    Args:
        findings: the ``findings`` list of a health report.
        diverged: the run diverged (an empty list then means "none before the divergence").

    Example:
        >>> lines = finding_lines([{"kind": "dead_units", "severity": "warning",
        ...     "layers": ["fc1"], "first_step": 20, "message": "60% of units never fire.",
        ...     "remedies": [{"patch": {"model.activation": "leaky_relu"},
        ...                   "why": "no zero slope"}]}])
        >>> print("\\n".join(lines))
        WARNING dead_units (layers fc1, from step 20): 60% of units never fire.
            -> model.activation=leaky_relu: no zero slope
        >>> finding_lines([])
        ['no findings: gradients look healthy']
    """
    if not findings:
        if diverged:
            return ["no gradient-health findings at the monitored steps before the divergence"]
        return ["no findings: gradients look healthy"]
    lines = []
    for f in findings:
        layers = ", ".join(f.get("layers", [])) or "-"
        lines.append(f"{f['severity'].upper()} {f['kind']} (layers {layers}, "
                     f"from step {f.get('first_step', '?')}): {f.get('message', '')}")
        for remedy in f.get("remedies", [])[:2]:
            patch = ", ".join(f"{k}={_literal(v)}" for k, v in remedy.get("patch", {}).items())
            lines.append(f"    -> {patch}: {remedy.get('why', '')}")
    return lines
