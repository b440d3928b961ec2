"""Run one resolved config end to end and write its run directory.

``run_config`` is the single path from a :class:`~steadygrad.experiments.config.RunConfig` to
results; the sweep workers and the CLI's ``train`` command both call it. The steps are plain
library calls, one per config section::

    data    = steadygrad.data.datasets.load(data.name, **data.kwargs)
    model   = steadygrad.nn.build.mlp(data.input_shape, **[model], output=data.task, ...)
    history = steadygrad.train.loop.fit(model, data, **[train], monitor=[diagnostics].every)

then the run directory gets ``config.toml``/``config.json`` (first), ``history.csv``,
``health.json`` (when diagnostics are enabled), ``weights.safetensors`` and, last,
``summary.json`` (see :mod:`steadygrad.experiments.store`); ``steadygrad report RUN_DIR``
adds ``report.html``.

The run's ``status`` is ``done``, ``diverged`` (training hit NaN/Inf: the summary's
``diverged`` entry gives the kind, the step and the first faulty layer) or ``failed`` (an
exception: the summary's ``error`` holds the traceback). ``run_config`` itself does not raise
for a failing run, so a sweep goes on.

Example:
    >>> import tempfile
    >>> from steadygrad.experiments.config import config_from_dict
    >>> cfg = config_from_dict({"data": {"name": "digits", "n_train": 120},
    ...     "model": {"hidden": [8]}, "train": {"epochs": 2, "batch_size": 32},
    ...     "diagnostics": {"every": 2}})
    >>> result = run_config(cfg, tempfile.mkdtemp())
    >>> result.status, sorted(p.name for p in result.run_dir.iterdir())
    ('done', ['config.json', 'config.toml', 'health.json', 'history.csv', 'summary.json',
     'weights.safetensors'])
    >>> result.summary["epochs_run"], 0.0 <= result.metrics["val_accuracy"] <= 1.0
    (2, True)
"""

from __future__ import annotations

import hashlib
import math
import platform
import re
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from steadygrad.errors import NonFiniteError
from steadygrad.experiments.config import RunConfig
from steadygrad.experiments.loader import save_config
from steadygrad.experiments.store import atomic_write_json, atomic_write_text

__all__ = [
    "RunResult",
    "build_model",
    "fit_arguments",
    "load_data",
    "parse_divergence",
    "run_config",
]

_NON_FINITE = re.compile(
    r"^non_finite (?:at step (?P<step>\d+)|between steps (?P<first>\d+) and (?P<last>\d+)),"
    r" (?P<where>.*)$", re.S,
)


@dataclass(frozen=True)
class RunResult:
    """The outcome of :func:`run_config`.

    Attributes:
        status: ``"done"``, ``"diverged"`` or ``"failed"``.
        run_dir: the run directory that was written.
        summary: the content of ``summary.json``.
        error: the traceback text of a failed run.

    Example:
        >>> r = RunResult("done", Path("."), {"final": {"loss": 0.1}})
        >>> r.metrics
        {'loss': 0.1}
    """

    status: str
    run_dir: Path
    summary: dict[str, Any]
    error: str | None = None

    @property
    def metrics(self) -> dict[str, float | None]:
        """The last epoch's logged values (``loss``, ``val_loss``, ``val_accuracy``, ...)."""
        out: dict[str, float | None] = self.summary.get("final", {})
        return out


def parse_divergence(reason: str | None) -> dict[str, Any] | None:
    """The ``diverged`` entry of a summary from the trainer's ``stopped_reason``, else None.

    >>> d = parse_divergence("non_finite at step 12, layer 2 (Linear '2'): non-finite output")
    >>> d["kind"], d["step"], d["layer"]
    ('non-finite output', 12, "layer 2 (Linear '2')")
    >>> parse_divergence("early stopping") is None
    True
    """
    if not reason:
        return None
    match = _NON_FINITE.match(reason)
    if match is None:
        return None
    step = match["step"] if match["step"] is not None else match["last"]
    layer, _, kind = match["where"].partition(": ")
    if not kind:
        layer, kind = "", match["where"]
    return {"kind": kind, "step": int(step), "layer": layer or None, "reason": reason}


def load_data(config: RunConfig) -> Any:
    """``steadygrad.data.datasets.load`` with the ``[data]`` section.

    >>> from steadygrad.experiments.config import config_from_dict
    >>> load_data(config_from_dict({"data": {"name": "digits", "n_train": 50}})).x_train.shape
    torch.Size([50, 64])
    """
    from steadygrad.data import datasets

    return datasets.load(config.data.name, **config.data.kwargs)


def build_model(config: RunConfig, data: Any) -> Any:
    """``steadygrad.nn.build.mlp`` with the ``[model]`` section, sized for ``data``.

    The output head follows the dataset's task; the init seed is ``model.seed`` or, when
    that is unset, ``train.seed``.

    >>> from steadygrad.experiments.config import config_from_dict
    >>> cfg = config_from_dict({"model": {"hidden": [16], "batch_norm": "before"}})
    >>> net = build_model(cfg, load_data(cfg))
    >>> [name for name, _ in net.named_children()]
    ['dense1', 'bn1', 'act1', 'output']
    """
    from steadygrad.nn import build

    m = config.model
    return build.mlp(
        data.input_shape, m.hidden,
        activation=m.activation.to_value(),
        kernel_initializer=m.kernel_initializer.to_value(),
        bias_initializer=m.bias_initializer.to_value(),
        batch_norm=m.batch_norm, input_batch_norm=m.input_batch_norm,
        dropout=m.dropout, input_dropout=m.input_dropout, dropout_kind=m.dropout_kind,
        l1=m.l1, l2=m.l2, max_norm=m.max_norm,
        bn_momentum=m.bn_momentum, bn_eps=m.bn_eps,
        output=data.task,
        num_outputs=data.num_classes if data.task == "multiclass" else None,
        seed=m.seed if m.seed is not None else config.train.seed,
    )


def fit_arguments(config: RunConfig) -> dict[str, Any]:
    """The keyword arguments of ``steadygrad.train.loop.fit`` for ``[train]``/``[diagnostics]``.

    >>> from steadygrad.experiments.config import config_from_dict
    >>> args = fit_arguments(config_from_dict({"train": {"epochs": 3, "optimizer": {
    ...     "name": "sgd", "learning_rate": 0.1, "momentum": 0.9, "clipnorm": 1.0}}}))
    >>> args["optimizer"], args["monitor"], args["epochs"]
    ({'name': 'sgd', 'learning_rate': 0.1, 'momentum': 0.9, 'clipnorm': 1.0}, 10, 3)
    """
    t, d = config.train, config.diagnostics
    optimizer = {"name": t.optimizer.name, **t.optimizer.kwargs, **t.optimizer.clipping}
    early = None
    if t.early_stopping is not None:
        e = t.early_stopping
        early = {"monitor": e.monitor, "min_delta": e.min_delta, "patience": e.patience,
                 "mode": e.mode, "baseline": e.baseline,
                 "restore_best_weights": e.restore_best_weights,
                 "start_from_epoch": e.start_from_epoch}
    return {
        "epochs": t.epochs,
        "batch_size": t.batch_size,
        "optimizer": optimizer,
        "schedule": None if t.schedule is None else t.schedule.to_value(),
        "early_stopping": early,
        "monitor": d.every if d.enabled else None,
        "seed": t.seed,
        "on_non_finite": t.on_non_finite,
    }


def _finite(value: Any) -> Any:
    """JSON-safe numbers: NaN/Inf become None, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _data_seed(config: RunConfig) -> Any:
    """The split seed the loader uses: the config's, else the loader's default."""
    if "seed" in config.data.kwargs:
        return config.data.kwargs["seed"]
    try:
        import inspect

        from steadygrad.data.datasets import DATASETS

        param = inspect.signature(DATASETS.get(config.data.name)).parameters.get("seed")
    except Exception:
        return None
    return None if param is None or param.default is inspect.Parameter.empty else param.default


def _environment(device: str | None) -> dict[str, Any]:
    import numpy
    import torch

    import steadygrad

    return {
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "numpy": numpy.__version__, "steadygrad": steadygrad.__version__},
        "platform": platform.platform(),
        "threads": {"intra_op": torch.get_num_threads(),
                    "inter_op": torch.get_num_interop_threads()},
        "determinism": {
            "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
            "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
            "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        },
        "device": device or "cpu",
    }


def run_config(config: RunConfig, run_dir: str | Path, *, device: str | None = None,
               verbose: int = 0, data: Any = None) -> RunResult:
    """Train one config end to end and write its run directory (never raises for the run).

    Args:
        config: a validated config.
        run_dir: the folder to write (created if missing; files in it are replaced).
        device: torch device for the model and data (None: CPU).
        verbose: ``fit``'s verbosity (0: silent).
        data: the dataset ``[data]`` describes, already loaded (sweep workers reuse one
            dataset across runs with the same ``[data]``); None loads it.

    Returns:
        A :class:`RunResult`; ``summary.json`` holds the same summary.

    Example:
        >>> import tempfile
        >>> from steadygrad.experiments.config import config_from_dict
        >>> bad = config_from_dict({"data": {"name": "digits", "n_train": 10**6}})
        >>> result = run_config(bad, tempfile.mkdtemp())
        >>> result.status, result.error.splitlines()[-1]
        ('failed', 'steadygrad.errors.ConfigError: n_train: got 1000000; expected at most 1149
        (the training rows)')
    """
    from steadygrad.experiments.space import run_id

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(config, run_dir)
    started = time.time()
    summary: dict[str, Any] = {
        "name": config.name, "run_id": run_id(config), "status": "failed",
        "seeds": {"train": config.train.seed,
                  "model": config.model.seed if config.model.seed is not None
                  else config.train.seed,
                  "data": _data_seed(config)},
        "started": started,
    }
    error = None
    try:
        summary.update(_environment(device))
        if data is None:
            data = load_data(config)
        model = build_model(config, data)
        from steadygrad.train.checkpoint import save_weights
        from steadygrad.train.loop import fit

        history = None
        try:
            with warnings.catch_warnings():  # the divergence is recorded in summary.json
                warnings.filterwarnings("ignore", "training stopped", RuntimeWarning)
                history = fit(model, data, device=device, verbose=verbose,
                              **fit_arguments(config))
            reason = history.stopped_reason
        except NonFiniteError as exc:
            reason = str(exc)
        if history is not None:
            atomic_write_text(run_dir / "history.csv", history.to_csv())
            if history.health is not None:
                atomic_write_text(run_dir / "health.json", history.health.to_json(indent=2))
            seconds = list(history.history.get("seconds", []))
            summary.update(
                final=history.last(), epochs_run=len(history),
                seconds_per_epoch=sum(seconds) / len(seconds) if seconds else None,
            )
        save_weights(model, run_dir / "weights.safetensors")
        summary["weights_sha256"] = hashlib.sha256(
            (run_dir / "weights.safetensors").read_bytes()).hexdigest()
        summary["stopped_reason"] = reason
        diverged = parse_divergence(reason)
        summary["status"] = "diverged" if diverged else "done"
        if diverged:
            summary["diverged"] = diverged
    except Exception:
        error = traceback.format_exc()
        summary["error"] = error
    summary["seconds"] = time.time() - started
    summary = _finite(summary)
    atomic_write_json(run_dir / "summary.json", summary)
    return RunResult(summary["status"], run_dir, summary, error)
