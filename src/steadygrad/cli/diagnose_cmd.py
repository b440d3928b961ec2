"""``steadygrad diagnose``: train the first N steps of a config under the gradient monitor.

The model, data, optimizer, clipping and schedule are the config's (through the same
``load_data``/``build_model``/``fit_arguments`` as ``steadygrad train``); training stops after
``--steps`` optimizer steps (the epochs are extended when the config's run is shorter), the
:class:`~steadygrad.diagnostics.monitor.GradientMonitor` samples one step in ``--every`` and its
:class:`~steadygrad.diagnostics.report.HealthReport` is printed. Nothing is written unless
``--save`` is given.

Training goes through :func:`steadygrad.train.loop.fit` (not the plain loop of
:func:`steadygrad.diagnostics.diagnose.diagnose`) so that the diagnosed steps are exactly the
first steps of ``steadygrad train`` on the same config: same batches, clipping
(``clipnorm``/``clipvalue``/``global_clipnorm``), schedule, regularization penalties and
constraints.

Exit codes: 0, or 1 with ``--fail-on SEVERITY`` when a finding at least that severe exists (for
CI); 2 bad input; 3 training diverged (NaN/Inf).

Example:
    >>> import tempfile, pathlib
    >>> from steadygrad.cli.main import main
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "tiny.toml").write_text('[data]\\nname = "digits"\\nn_train = 100\\n'
    ...                                  '[model]\\nhidden = [8]\\n')
    >>> main(["diagnose", str(d / "tiny.toml"), "--steps", "8", "--every", "2",
    ...       "--quiet"])  # doctest: +ELLIPSIS
    gradient health  (8 checks, steps 0..7, every 2 after the first 16)
    ...
"""

from __future__ import annotations

import argparse
import math
import sys
import warnings
from typing import Any

from steadygrad.cli._common import (
    add_config_arguments,
    load_run_config,
    make_parser,
    positive_int,
    show_progress,
)
from steadygrad.errors import ConfigError
from steadygrad.train.callbacks import Callback

__all__ = ["StopAfterSteps", "add_parser", "run"]

_EXAMPLES = """
  steadygrad diagnose run.toml --steps 200
  steadygrad diagnose run.toml --steps 300 --set model.activation=sigmoid \\
      --set model.depth=10 --set model.units=64
  steadygrad diagnose run.toml --steps 200 --fail-on warning   # CI: exit 1 on any warning
  steadygrad diagnose run.toml --steps 200 --json > health.json

exit codes: 0 ok, 1 a finding at or above --fail-on, 2 bad input, 3 diverged (NaN/Inf)
"""



def add_parser(sub: Any) -> None:
    """Register the ``diagnose`` subcommand.

    Example:
        >>> import argparse
        >>> sub = argparse.ArgumentParser(prog="steadygrad").add_subparsers()
        >>> add_parser(sub)
        >>> args = sub.choices["diagnose"].parse_args(["run.toml", "--steps", "20",
        ...                                             "--fail-on", "error"])
        >>> args.config, args.steps, args.every, args.fail_on, args.func is run
        ('run.toml', 20, None, 'error', True)
    """
    parser = make_parser(
        sub, "diagnose", help="train N steps under the gradient monitor and report its health",
        description="Train the first N steps of a config with the per-layer gradient monitor "
        "attached; print the health table, the findings and their remedies.",
        examples=_EXAMPLES,
    )
    add_config_arguments(parser)
    parser.add_argument("--steps", type=positive_int, required=True, metavar="N",
                        help="optimizer steps to train")
    parser.add_argument("--every", type=positive_int, default=None, metavar="K",
                        help="sample one step in K after the first 16, which are all sampled "
                             "(default: the config's diagnostics.every)")
    parser.add_argument("--fail-on", choices=("warning", "error"), default=None,
                        help="exit with code 1 when a finding at least this severe exists")
    parser.add_argument("--save", default=None, metavar="PATH",
                        help="also write the health report (JSON, steadygrad.health/2) there")
    parser.add_argument("--quiet", action="store_true", help="no progress display")
    parser.add_argument("--json", action="store_true",
                        help="print the health report as one JSON document")
    parser.set_defaults(func=run)


class StopAfterSteps(Callback):
    """Stop training once ``steps`` optimizer steps have run.

    Example:
        >>> import torch
        >>> from steadygrad.train.loop import fit
        >>> x, y = torch.randn(64, 3), torch.randint(0, 2, (64,))
        >>> net = torch.nn.Linear(3, 2)
        >>> h = fit(net, (x, y), epochs=5, batch_size=8, callbacks=[StopAfterSteps(11)], verbose=0)
        >>> len(h), h.params.get("steps_per_epoch")
        (2, 8)
    """

    def __init__(self, steps: int) -> None:
        self.steps = steps

    def on_batch_end(self, step: int, logs: dict[str, Any]) -> bool | None:
        """Stop after global step ``steps - 1``."""
        return step + 1 >= self.steps


def run(args: argparse.Namespace) -> int:
    """Train under the monitor and print (or save) the health report.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "tiny.toml").write_text("[model]\\nhidden = [8]\\n")
        >>> from steadygrad.cli.main import build_parser
        >>> args = build_parser().parse_args(["diagnose", str(d / "tiny.toml"), "--steps", "3",
        ...                                   "--save", str(d)])
        >>> run(args)  # checked before any training
        Traceback (most recent call last):
        ...
        steadygrad.errors.ConfigError: --save: got '...'; expected a file path for the JSON report
    """
    from dataclasses import replace
    from pathlib import Path

    from steadygrad.experiments.execute import build_model, fit_arguments, load_data
    from steadygrad.experiments.store import atomic_write_text
    from steadygrad.train.loop import fit

    config = load_run_config(args)
    save = Path(args.save) if args.save is not None else None
    if save is not None and save.is_dir():
        raise ConfigError("--save", str(save), "a file path for the JSON report")
    every = args.every if args.every is not None else config.diagnostics.every
    config = replace(config, diagnostics=replace(config.diagnostics, enabled=True, every=every))
    data = load_data(config)
    model = build_model(config, data)
    kwargs = fit_arguments(config)
    steps_per_epoch = math.ceil(data.x_train.shape[0] / kwargs["batch_size"])
    kwargs["epochs"] = max(kwargs["epochs"], math.ceil(args.steps / steps_per_epoch))
    kwargs["early_stopping"] = None
    verbose = 1 if show_progress(args, sys.stdout) else 0
    with warnings.catch_warnings():  # the divergence is reported below, not as a warning
        warnings.filterwarnings("ignore", "training stopped", RuntimeWarning)
        history = fit(model, data, callbacks=[StopAfterSteps(args.steps)], verbose=verbose,
                      **kwargs)
    report = history.health
    report.meta.setdefault("every", every)
    reason = history.stopped_reason or ""
    diverged = reason.startswith("non_finite")
    if save is not None:
        atomic_write_text(save, report.to_json(indent=1))
    if args.json:
        print(report.to_json())
    else:
        print(report.render())
        if diverged:
            print(f"\ntraining diverged: {reason}")
    if diverged:
        return 3
    if args.fail_on is not None and report.has(args.fail_on):
        if not args.json:
            print(f"\nsteadygrad diagnose: a finding at or above '{args.fail_on}' "
                  f"(worst: {report.worst()})", file=sys.stderr)
        return 1
    return 0
