"""Monitor overhead: what the gradient-health monitor costs per epoch of ``fit`` (issue 4).

Workload: Fashion-MNIST, 20 × [Dense 100 (He, no bias) → BN → ELU] → Dense 10, Nadam lr 1e-3,
batch 32 (the ``deep`` workload of ``trainer_speed.py``). Contenders, all ``steadygrad.fit``
eager, interleaved repeat by repeat (rotating order), fresh model from the same seed each run:

- ``off``: ``monitor=False``;
- ``default``: ``monitor=True`` (the first ``DENSE_START`` steps, then one step in
  ``DEFAULT_EVERY`` sampled);
- ``every1``: ``monitor=1`` (statistics on every step);
- ``naive``: no steadygrad monitor, but a naive per-step monitor written here for context:
  forward hooks on every leaf module that read the output's mean and std with ``.item()``
  and a tensor hook that reads each output gradient's norm with ``.item()`` (a host sync per
  statistic per layer per step, the way such monitors are often written).

Goals: ``default`` ≤ 1.05 × ``off`` and ``every1`` ≤ 1.25 × ``off`` (median epoch time).

Usage::

    python benchmarks/monitor_overhead.py --quick
    python benchmarks/monitor_overhead.py --epochs 1 --repeats 3 --write
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from collections.abc import Sequence
from typing import Any

import _common as common
import _contenders as ts

CONTENDERS = ("off", "default", "every1", "naive")
SECTION = "Monitor overhead"
QUICK_ROWS = 5000
GOALS = {"default": 1.05, "every1": 1.25}


class NaiveMonitor:
    """Per-step statistics with a host sync (``.item()``) per statistic and layer.

    Records, for every leaf module on every forward pass, the output mean and standard
    deviation, and on backward the output gradient's L2 norm, as Python floats.

    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.ReLU())
    >>> with NaiveMonitor(net) as mon:
    ...     net(torch.ones(4, 3)).sum().backward()
    >>> sorted({name for name, _, _ in mon.records}), len(mon.records)
    (['0', '1'], 6)
    >>> len(net[0]._forward_hooks)
    0
    """

    def __init__(self, model: Any) -> None:
        self.model = model
        self.records: list[tuple[str, str, float]] = []
        self._handles: list[Any] = []

    def __enter__(self) -> NaiveMonitor:
        for name, module in self.model.named_modules():
            if not any(True for _ in module.children()):
                self._handles.append(module.register_forward_hook(self._hook(name)))
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def _hook(self, name: str) -> Any:
        records = self.records

        def grad_hook(g: Any) -> None:
            records.append((name, "grad_norm", g.norm().item()))

        def hook(module: Any, args: Any, out: Any) -> None:
            records.append((name, "mean", out.detach().mean().item()))
            records.append((name, "std", out.detach().std().item()))
            if out.requires_grad:
                out.register_hook(grad_hook)

        return hook


def run_naive(wl: ts.Workload, x: Any, y: Any, epochs: int, seed: int) -> ts.Run:
    """``fit`` with the monitor off and :class:`NaiveMonitor`'s hooks on the model."""
    model = wl.build(seed)
    with NaiveMonitor(model) as mon:
        run = ts.run_fit(dataclasses.replace(wl, build=lambda _seed: model), x, y, epochs, seed)
    run.notes["records"] = len(mon.records)
    return run


def runner(name: str) -> Any:
    """The function running contender ``name``."""
    return {
        "off": lambda *a: ts.run_fit(*a, monitor=False),
        "default": lambda *a: ts.run_fit(*a, monitor=True),
        "every1": lambda *a: ts.run_fit(*a, monitor=1),
        "naive": run_naive,
    }[name]


def measure(names: Sequence[str], x: Any, y: Any, epochs: int, repeats: int, seed: int
            ) -> dict[str, list[ts.Run]]:
    """Run the contenders ``repeats`` times, interleaved with a rotating order."""
    wl = ts.workloads()["deep"]
    ts.run_fit(wl, x[:8 * ts.BATCH], y[:8 * ts.BATCH], 1, seed, monitor=1)  # untimed warm-up
    results: dict[str, list[ts.Run]] = {c: [] for c in names}
    for r in range(repeats):
        order = list(names[r % len(names):]) + list(names[:r % len(names)])
        for c in order:
            run = runner(c)(wl, x, y, epochs, seed + r)
            results[c].append(run)
            print(f"[repeat {r + 1}/{repeats}] {c:8s} epochs "
                  f"{', '.join(f'{s:.2f}' for s in run.seconds)} s wall, "
                  f"{', '.join(f'{s:.2f}' for s in run.cpu)} s CPU, loss {run.loss:.4f}",
                  flush=True)
    return results


def table(results: dict[str, list[ts.Run]]) -> tuple[str, list[str]]:
    """The Markdown table and the goal verdicts; a ratio is the median over repeats of the
    repeat's median epoch time divided by ``off``'s in the same repeat."""
    wall = {c: common.median([s for r in runs for s in r.seconds]) for c, runs in results.items()}
    cpu = {c: common.median([s for r in runs for s in r.cpu]) for c, runs in results.items()}

    def per_repeat(c: str, attr: str) -> list[float]:
        return [common.median(getattr(r, attr)) for r in results[c]]

    def paired(c: str, attr: str) -> float:
        if "off" not in results:
            return math.nan
        return common.paired_ratio(per_repeat(c, attr), per_repeat("off", attr))

    rows, verdicts = [], []
    for c, runs in results.items():
        goal = f"≤ {GOALS[c]:.2f}x" if c in GOALS else "—"
        q, qc = paired(c, "seconds"), paired(c, "cpu")
        rows.append([c, f"{wall[c]:.2f}", f"{q:.2f}x", f"{cpu[c]:.2f}", f"{qc:.2f}x", goal,
                     f"{common.median([r.loss for r in runs]):.3f}",
                     sum(len(r.seconds) for r in runs)])
        if c in GOALS and "off" in results:
            each = [a / b for a, b in zip(per_repeat(c, "cpu"), per_repeat("off", "cpu"),
                                          strict=True)]
            verdicts.append(common.verdict(f"{c} vs off", q, qc, GOALS[c])
                            + f"; per-repeat CPU ratios {min(each):.2f}–{max(each):.2f}")
    headers = ["monitor", "median epoch s (wall)", "wall ratio", "median epoch CPU s",
               "CPU ratio", "goal", "last-epoch loss", "epochs timed"]
    return common.markdown_table(headers, rows), verdicts


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse and validate the command line (errors exit before any work)."""
    p = argparse.ArgumentParser(description="Gradient-monitor overhead in steadygrad.fit.")
    p.add_argument("--epochs", type=int, default=1, help="epochs per run (default 1)")
    p.add_argument("--limit", type=int, default=None,
                   help="training rows (default: all 55,000; --quick: 5,000)")
    p.add_argument("--repeats", type=int, default=3, help="interleaved repeats (default 3)")
    p.add_argument("--threads", type=int, default=None, help="compute threads (default: all)")
    p.add_argument("--quick", action="store_true", help=f"{QUICK_ROWS:,} rows")
    p.add_argument("--contenders", default=",".join(CONTENDERS),
                   help=f"comma-separated subset of {', '.join(CONTENDERS)}")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--note", action="append", default=[],
                   help="a sentence to add to the notes of the written section (repeatable)")
    p.add_argument("--write", action="store_true",
                   help=f"replace the '{SECTION}' section of docs/benchmarks.md")
    args = p.parse_args(argv)
    for name in ("epochs", "repeats"):
        if getattr(args, name) < 1:
            p.error(f"--{name}: got {getattr(args, name)}; expected an int >= 1")
    if args.limit is not None and args.limit < ts.BATCH:
        p.error(f"--limit: got {args.limit}; expected at least one batch ({ts.BATCH} rows)")
    if args.threads is not None and args.threads < 1:
        p.error(f"--threads: got {args.threads}; expected an int >= 1")
    if args.quick:
        args.limit = args.limit or QUICK_ROWS
    chosen = [c.strip() for c in args.contenders.split(",") if c.strip()]
    bad = [c for c in chosen if c not in CONTENDERS]
    if bad or not chosen:
        p.error(f"--contenders: got {bad or chosen}; expected names from {', '.join(CONTENDERS)}")
    args.contenders = chosen
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; print (and with ``--write`` store) the table."""
    args = parse_args(argv)
    threads = common.configure_threads(args.threads)
    import torch

    from steadygrad.diagnostics.monitor import DEFAULT_EVERY, DENSE_START

    torch.set_num_threads(threads)
    info = common.system_info(threads, keras=False)
    x, y = common.load_fashion_mnist(args.limit)
    steps = math.ceil(x.shape[0] / ts.BATCH)
    print(f"{x.shape[0]:,} rows, {steps} steps/epoch, threads {threads}, "
          f"load {info['load_before']}", flush=True)
    results = measure(args.contenders, x, y, args.epochs, args.repeats, args.seed)
    info["load_after"] = common.load_average()
    tab, verdicts = table(results)
    noise = common.noise_note([(w, c) for runs in results.values() for r in runs
                               for w, c in zip(r.seconds, r.cpu, strict=True)])
    body = "\n".join([
        "Measured by `benchmarks/monitor_overhead.py` (issue 4). `steadygrad.fit` (eager) on "
        f"Fashion-MNIST, {x.shape[0]:,} training rows, batch {ts.BATCH} ({steps:,} steps per "
        f"epoch), {ts.workloads()['deep'].description}; {args.epochs} epoch(s) × "
        f"{args.repeats} interleaved repeat(s) per contender, median epoch time; a ratio is "
        "the median over repeats of the ratio within each repeat (the contenders of a repeat "
        "run back to back, so a drift of the machine's speed over the run cancels).",
        "",
        tab,
        "",
        *[f"- {v}" for v in verdicts],
        *([f"- {common.load_note(info)}"] if common.load_note(info) else []),
        *([f"- {noise}"] if threads == 1 and noise else []),
        "- On CPU, `.item()` does not stall a queue of pending work as it does on a GPU, so "
        "the naive monitor's cost here is mostly its extra reductions and Python hooks; on an "
        "accelerator its per-statistic host syncs cost far more.",
        *[f"- {n}" for n in args.note],
        "",
        f"Contenders: `off` = `monitor=False`; `default` = `monitor=True` (the first "
        f"{DENSE_START} steps, then one step in {DEFAULT_EVERY} sampled); `every1` = "
        "`monitor=1` (statistics on every step); `naive` "
        "= no steadygrad monitor but per-step hooks written in the benchmark that call "
        "`.item()` on every leaf layer's output mean/std and output-gradient norm (for "
        "context: what a straightforward per-step monitor costs).",
        "",
        *common.environment(info),
    ])
    print("\n" + body)
    if args.write:
        print(f"wrote {common.write_section(SECTION, body)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
