"""Where the host callbacks spend their time: CPU time inside each hook and part, per epoch.

The workload of ``integrations_overhead.py`` (Fashion-MNIST, the shallow MLP, batch 32, one
epoch, default sampling), with timers (``time.process_time``, so time the process is not
scheduled is not counted) around the callback's hooks and around the monitor's parts:

- ``collect``: the sampled steps' statistics (``GradientMonitor._collect``);
- ``arm``: installing the hooks and snapshotting the weights before a sampled step;
- ``evaluate``: the periodic rule evaluations; ``finish``: the report at the end;
- ``log``: Lightning's ``pl_module.log_dict`` if the callback calls it, else its own logging;
- ``other``: the rest of the hooks (every step's plumbing, the loss bookkeeping).

Each timer costs about a microsecond, so the per-step parts read high; compare versions on
the same machine, not the absolute numbers. ``--logger`` turns the host's logging on, as the
``/log`` contenders of ``integrations_overhead.py`` do (Lightning a ``CSVLogger``, HF
``logging_steps=500``): then the rule evaluations run during fit.

Usage::

    python benchmarks/integrations_breakdown.py --host lightning --repeats 3
    python benchmarks/integrations_breakdown.py --host hf --limit 4096 --logger
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import _common as common
import integrations_overhead as overhead

HOOKS = {
    "lightning": ("on_train_start", "on_before_optimizer_step", "on_train_batch_end",
                  "on_train_end"),
    "hf": ("on_train_begin", "on_step_begin", "_keep_loss", "on_optimizer_step", "on_log",
           "on_train_end"),
}
PARTS = ("collect", "arm", "evaluate", "finish", "log")


def _timed(owner: Any, name: str, label: str, acc: dict[str, float]) -> None:
    """Wrap ``owner.name`` so that its CPU time adds to ``acc[label]`` (if it exists)."""
    fn = getattr(owner, name, None)
    if fn is None:
        return

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t = time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            acc[label] += time.process_time() - t

    setattr(owner, name, wrapper)


def instrument(host: str, acc: dict[str, float]) -> None:
    """Put the timers in place (once per process)."""
    from steadygrad.diagnostics.monitor import GradientMonitor
    from steadygrad.integrations import _session

    if host == "lightning":
        import lightning.pytorch as pl

        from steadygrad.integrations.lightning import GradientHealth

        cb: Any = GradientHealth
        _timed(pl.LightningModule, "log_dict", "log", acc)
        _timed(cb, "_log", "log", acc)
    else:
        from steadygrad.integrations.transformers import GradientHealthCallback

        cb = GradientHealthCallback
    for name in HOOKS[host]:
        _timed(cb, name, "hook:" + name, acc)
    _timed(GradientMonitor, "_collect", "collect", acc)
    _timed(GradientMonitor, "_arm", "arm", acc)
    _timed(_session.HealthSession, "evaluate", "evaluate", acc)
    _timed(_session.HealthSession, "finish", "finish", acc)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the epochs and print the median CPU milliseconds per part."""
    p = argparse.ArgumentParser(description="CPU time per part of the host callbacks.")
    p.add_argument("--host", choices=sorted(HOOKS), default="lightning")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--limit", type=int, default=None, help="training rows (default: all)")
    p.add_argument("--logger", action="store_true", help="the host's logging on (live rules)")
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error(f"--repeats: got {args.repeats}; expected an int >= 1")
    import torch

    torch.set_num_threads(1)
    acc: dict[str, float] = defaultdict(float)
    instrument(args.host, acc)
    fn = overhead._lightning if args.host == "lightning" else overhead._hf
    x, y = common.load_fashion_mnist(args.limit)
    fn(x[:256], y[:256], 0, True, args.logger)  # warm-up
    rows: list[dict[str, float]] = []
    for r in range(args.repeats):
        acc.clear()
        _, cpu, _ = fn(x, y, r, True, args.logger)
        hooks = sum(v for k, v in acc.items() if k.startswith("hook:"))
        inside = sum(acc.get(k, 0.0) for k in PARTS if k != "finish")  # finish is in a hook
        rows.append({"callback": hooks, **{k: acc.get(k, 0.0) for k in PARTS},
                     "other": hooks - inside - acc.get("finish", 0.0), "epoch": cpu})
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    print(f"{args.host}{' + logging' if args.logger else ''}: {x.shape[0]:,} rows, "
          f"median of {args.repeats} epoch(s), CPU ms: "
          + ", ".join(f"{k} {v * 1e3:.0f}" for k, v in med.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
