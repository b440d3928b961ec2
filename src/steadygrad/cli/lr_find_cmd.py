"""``steadygrad lr-find``: the learning-rate range test on a config's model, data and optimizer.

Calls :func:`steadygrad.optim.lr_finder.lr_find` (Smith 2017, section 3.3; fastai's rules)
with the config's model, training split, optimizer (its hyperparameters and clipping; the
rate is what the test varies), batch size and seed, and prints each suggested rate with the
rule that produced it (:func:`steadygrad.optim.lr_finder.suggest_lr`, the rule the doctor
uses too). On a flat curve it suggests nothing: it says what it measured and exits 1. The
model is restored afterwards; nothing is written unless ``--plot``.

Example:
    >>> import tempfile, pathlib
    >>> from steadygrad.cli.main import main
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "tiny.toml").write_text('[data]\\nname = "digits"\\nn_train = 200\\n'
    ...                                  '[model]\\nhidden = [16]\\n')
    >>> main(["lr-find", str(d / "tiny.toml"), "--steps", "30",
    ...       "--end-lr", "10"])  # doctest: +ELLIPSIS
    suggested learning_rate = ... (steepest: ...)
    ...
    0
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path
from typing import Any

from steadygrad.cli._common import (
    add_config_arguments,
    int_at_least,
    load_run_config,
    make_parser,
    print_json,
    show_progress,
)
from steadygrad.errors import ConfigError

__all__ = ["RULES", "add_parser", "run"]

RULES = {
    "steepest": "where the smoothed loss falls fastest: argmin of d loss / d log10(lr) "
    "before the lowest loss (centered moving average; the doctor uses the same rule)",
    "min_loss_div10": "the rate of the lowest smoothed loss, divided by 10",
}
"""The rule behind each suggestion of :func:`steadygrad.optim.lr_finder.suggest_lrs`."""

_EXAMPLES = """
  steadygrad lr-find run.toml
  steadygrad lr-find run.toml --steps 200 --plot lr.png
  steadygrad lr-find run.toml --set train.optimizer.name=adam --json
  # then: steadygrad train run.toml --set train.optimizer.learning_rate=<suggestion>
"""

_PLOT_FORMATS = (".png", ".svg", ".pdf")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"got {text!r}; expected a number > 0")
    return value


def add_parser(sub: Any) -> None:
    """Register the ``lr-find`` subcommand.

    Example:
        >>> import argparse
        >>> sub = argparse.ArgumentParser(prog="steadygrad").add_subparsers()
        >>> add_parser(sub)
        >>> args = sub.choices["lr-find"].parse_args(["run.toml", "--steps", "50",
        ...                                            "--end-lr", "1"])
        >>> args.config, args.steps, args.start_lr, args.end_lr, args.func is run
        ('run.toml', 50, 1e-07, 1.0, True)
    """
    parser = make_parser(
        sub, "lr-find", help="learning-rate range test: suggest a learning rate",
        description="Train a few steps while the learning rate grows exponentially and "
        "suggest a rate from the loss curve (Smith 2017; fastai's lr_find rules).",
        examples=_EXAMPLES,
    )
    add_config_arguments(parser)
    parser.add_argument("--steps", type=int_at_least(2), default=100, metavar="N",
                        help="steps of the test (default 100)")
    parser.add_argument("--start-lr", type=_positive_float, default=1e-7, metavar="LR",
                        help="first rate (default 1e-7)")
    parser.add_argument("--end-lr", type=_positive_float, default=10.0, metavar="LR",
                        help="last rate (default 10)")
    parser.add_argument("--plot", default=None, metavar="PATH",
                        help="save loss vs rate with the suggestions marked (.png, .svg, .pdf)")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress line (it is only shown on a terminal anyway)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the range test and print the suggestions with their rules.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "tiny.toml").write_text("[model]\\nhidden = [8]\\n")
        >>> from steadygrad.cli.main import build_parser
        >>> args = build_parser().parse_args(["lr-find", str(d / "tiny.toml"),
        ...                                   "--start-lr", "1", "--end-lr", "0.1"])
        >>> run(args)
        Traceback (most recent call last):
        ...
        steadygrad.errors.ConfigError: --start-lr: got 1.0; expected a rate below --end-lr (0.1)
    """
    from steadygrad.experiments.execute import build_model, fit_arguments, load_data
    from steadygrad.experiments.store import atomic_write_bytes
    from steadygrad.optim.lr_finder import lr_find

    config = load_run_config(args)
    if args.start_lr >= args.end_lr:
        raise ConfigError("--start-lr", args.start_lr, f"a rate below --end-lr ({args.end_lr})")
    plot = Path(args.plot) if args.plot is not None else None
    if plot is not None and plot.suffix.lower() not in _PLOT_FORMATS:
        raise ConfigError("--plot", str(plot), "a path ending in .png, .svg or .pdf")
    if plot is not None:
        try:
            import matplotlib  # noqa: F401
        except ImportError:  # pragma: no cover - depends on the environment
            raise ConfigError("--plot", str(plot), "matplotlib installed",
                              hint="pip install 'steadygrad[plot]'") from None
    data = load_data(config)
    model = build_model(config, data)
    fit_args = fit_arguments(config)
    optimizer = {k: v for k, v in fit_args["optimizer"].items() if k != "learning_rate"}
    if show_progress(args, sys.stderr):
        print(f"learning-rate range test: {args.steps} steps from {args.start_lr:g} to "
              f"{args.end_lr:g} (optimizer {optimizer['name']}, batch {fit_args['batch_size']})"
              "...", file=sys.stderr, flush=True)
    result = lr_find(model, data, optimizer=optimizer, start_lr=args.start_lr,
                     end_lr=args.end_lr, num_steps=args.steps,
                     batch_size=fit_args["batch_size"], seed=fit_args["seed"])
    if plot is not None:
        buffer = io.BytesIO()
        fig = result.plot()
        fig.savefig(buffer, format=plot.suffix.lower().lstrip("."), dpi=100)
        atomic_write_bytes(plot, buffer.getvalue())
    if args.json:
        print_json({
            "suggestion": result.suggestions.get("steepest"), "refusal": result.refusal,
            "suggestions": result.suggestions,
            "rules": {k: RULES.get(k, "") for k in result.suggestions},
            "stopped_early": result.stopped_early, "steps_recorded": len(result.lrs),
            "lrs": result.lrs, "losses": result.losses, "smoothed": result.smoothed,
            "plot": str(plot) if plot is not None else None,
        })
        return 0 if result.refusal is None else 1
    if result.refusal is not None:
        print(result.refusal)
        if plot is not None:
            print(f"plot: {plot}")
        return 1
    first, *others = list(result.suggestions)
    print(f"suggested learning_rate = {result.suggestions[first]:.3g} "
          f"({first}: {RULES.get(first, '')})")
    for name in others:
        print(f"alternative learning_rate = {result.suggestions[name]:.3g} "
              f"({name}: {RULES.get(name, '')})")
    stop = ("stopped early: the loss diverged at lr "
            f"{result.lrs[-1]:.3g}" if result.stopped_early else "ran all steps")
    print(f"{len(result.lrs)} steps recorded, {stop}")
    if plot is not None:
        print(f"plot: {plot}")
    print(f"use it: --set train.optimizer.learning_rate={result.suggestion:.3g}")
    return 0
