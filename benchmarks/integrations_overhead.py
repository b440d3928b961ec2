"""Host overhead of the integrations: Lightning and Hugging Face with and without the callback.

Workload: Fashion-MNIST, the shallow MLP (Flatten → Dense 300 relu → Dense 100 relu → Dense 10),
SGD lr 0.01, batch 32, one epoch per run, fresh model from the same seed each run. Contenders,
interleaved repeat by repeat (:func:`repeat_order`: each host next to its ``+health``, the host
first in even repeats and second in odd ones):

- ``lightning``: ``lightning.pytorch.Trainer`` (CPU, no logger, no checkpointing, no progress
  bar, no model summary);
- ``lightning+health``: the same with ``GradientHealth()`` at default sampling;
- ``hf``: ``transformers.Trainer`` (CPU, ``report_to=[]``, no saving, no tqdm, constant lr,
  ``max_grad_norm=1.0``) on a module that returns ``{"loss", "logits"}``;
- ``hf+health``: the same with ``GradientHealthCallback()`` at default sampling;
- ``lightning/log``, ``hf/log`` and their ``+health``: the same with the hosts' logging on at
  their defaults (Lightning: a ``CSVLogger``, ``log_every_n_steps=50``; HF:
  ``logging_strategy="steps"``, ``logging_steps=500``), where the callbacks also evaluate
  their rules periodically and log the health scalars (without a reader they skip that).

Timed: the wall and CPU time of ``trainer.fit`` / ``trainer.train`` (the callback's report at
the end included). Goal: each ``+health`` ≤ 1.05 × its host (median over repeats).

Usage::

    python benchmarks/integrations_overhead.py --quick            # smoke test, small subset
    python benchmarks/integrations_overhead.py --repeats 5 --threads 1 --write
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import _common as common

CONTENDERS = ("lightning", "lightning+health", "hf", "hf+health",
              "lightning/log", "lightning/log+health", "hf/log", "hf/log+health")
SECTION = "Host integration overhead"
QUICK_ROWS = 2048
BATCH = 32
GOAL = 1.05


def _lightning(x: Any, y: Any, seed: int, health: bool,
               log: bool) -> tuple[float, float, float]:
    import lightning.pytorch as pl
    import torch
    from torch import nn

    from steadygrad.integrations.lightning import GradientHealth

    class Module(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = common.shallow_mlp(seed)

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            xb, yb = batch
            loss = nn.functional.cross_entropy(self.net(xb), yb)
            self.last = loss.detach()
            return loss

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.01)

    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y),
                                         batch_size=BATCH, shuffle=True,
                                         generator=torch.Generator().manual_seed(seed))
    with tempfile.TemporaryDirectory() as tmp:
        logger = pl.loggers.CSVLogger(tmp) if log else False
        trainer = pl.Trainer(max_epochs=1, accelerator="cpu", devices=1, logger=logger,
                             enable_checkpointing=False, enable_progress_bar=False,
                             enable_model_summary=False, default_root_dir=tmp,
                             callbacks=[GradientHealth(report_dir=False)] if health else [])
        module = Module()
        w0, c0 = time.perf_counter(), time.process_time()
        trainer.fit(module, loader)
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    return wall, cpu, float(module.last)


def _hf(x: Any, y: Any, seed: int, health: bool, log: bool) -> tuple[float, float, float]:
    import torch
    import transformers
    from torch import nn

    from steadygrad.integrations.transformers import GradientHealthCallback

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = common.shallow_mlp(seed)

        def forward(self, pixels: Any, labels: Any = None) -> dict[str, Any]:
            logits = self.net(pixels)
            return {"loss": nn.functional.cross_entropy(logits, labels), "logits": logits}

    class Rows(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return int(x.shape[0])

        def __getitem__(self, i: int) -> dict[str, Any]:
            return {"pixels": x[i], "labels": y[i]}

    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    with tempfile.TemporaryDirectory() as tmp:
        args = transformers.TrainingArguments(
            output_dir=tmp, per_device_train_batch_size=BATCH, num_train_epochs=1,
            report_to=[], save_strategy="no", use_cpu=True, seed=seed, disable_tqdm=True,
            logging_strategy="steps" if log else "no", dataloader_num_workers=0)
        trainer = transformers.Trainer(
            model=model, args=args, train_dataset=Rows(),
            optimizers=(opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)),
            callbacks=[GradientHealthCallback(report_dir=False)] if health else [])
        w0, c0 = time.perf_counter(), time.process_time()
        out = trainer.train()
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    return wall, cpu, float(out.training_loss)


def repeat_order(r: int) -> list[str]:
    """The contenders' order in repeat ``r``: each host right next to its ``+health``
    (their ratio is what counts), the pairs rotated by one per repeat, and within every pair
    the host first in even repeats and second in odd ones (so a drift of the machine's speed
    during a pair favours neither side over the run).

    >>> repeat_order(0)[:4], repeat_order(1)[-2:]
    (['lightning', 'lightning+health', 'hf', 'hf+health'], ['lightning+health', 'lightning'])
    """
    pairs = [CONTENDERS[i:i + 2] for i in range(0, len(CONTENDERS), 2)]
    k = r % len(pairs)
    return [c for pair in pairs[k:] + pairs[:k] for c in (pair if r % 2 == 0 else pair[::-1])]


def run(name: str, x: Any, y: Any, seed: int) -> tuple[float, float, float]:
    """One timed epoch of contender ``name``: (wall s, CPU s, final loss)."""
    host, _, health = name.partition("+")
    host, _, log = host.partition("/")
    fn = _lightning if host == "lightning" else _hf
    return fn(x, y, seed, bool(health), bool(log))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse and validate the command line (errors exit before any work)."""
    p = argparse.ArgumentParser(description="Overhead of the Lightning/HF health callbacks.")
    p.add_argument("--limit", type=int, default=None,
                   help=f"training rows (default: all; --quick: {QUICK_ROWS:,})")
    p.add_argument("--repeats", type=int, default=3, help="interleaved repeats (default 3)")
    p.add_argument("--threads", type=int, default=None, help="compute threads (default: all)")
    p.add_argument("--quick", action="store_true", help=f"{QUICK_ROWS:,} rows")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--write", action="store_true",
                   help=f"replace the '{SECTION}' section of docs/benchmarks.md")
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error(f"--repeats: got {args.repeats}; expected an int >= 1")
    if args.limit is not None and args.limit < BATCH:
        p.error(f"--limit: got {args.limit}; expected at least one batch ({BATCH} rows)")
    if args.threads is not None and args.threads < 1:
        p.error(f"--threads: got {args.threads}; expected an int >= 1")
    if args.quick:
        args.limit = args.limit or QUICK_ROWS
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; print (and with ``--write`` store) the table."""
    args = parse_args(argv)
    threads = common.configure_threads(args.threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    from steadygrad.diagnostics.monitor import DEFAULT_EVERY, DENSE_START

    torch.set_num_threads(threads)
    info = common.system_info(threads, keras=False)
    x, y = common.load_fashion_mnist(args.limit)
    steps = math.ceil(x.shape[0] / BATCH)
    print(f"{x.shape[0]:,} rows, {steps} steps/epoch, threads {threads}, "
          f"load {info['load_before']}", flush=True)
    for name in CONTENDERS:  # untimed warm-up of every code path
        run(name, x[:4 * BATCH], y[:4 * BATCH], args.seed)
    wall: dict[str, list[float]] = {c: [] for c in CONTENDERS}
    cpu: dict[str, list[float]] = {c: [] for c in CONTENDERS}
    for r in range(args.repeats):
        for c in repeat_order(r):
            w, t, loss = run(c, x, y, args.seed + r)
            wall[c].append(w)
            cpu[c].append(t)
            print(f"[repeat {r + 1}/{args.repeats}] {c:17s} {w:.2f} s wall, {t:.2f} s CPU, "
                  f"loss {loss:.4f}", flush=True)
    info["load_after"] = common.load_average()
    med = {c: common.median(v) for c, v in wall.items()}
    medc = {c: common.median(v) for c, v in cpu.items()}
    rows, verdicts = [], []
    for c in CONTENDERS:
        host = c.split("+")[0]
        q, qc = (common.paired_ratio(wall[c], wall[host]),
                 common.paired_ratio(cpu[c], cpu[host]))
        rows.append([c, f"{med[c]:.2f}", f"{q:.2f}x", f"{medc[c]:.2f}", f"{qc:.2f}x",
                     f"≤ {GOAL:.2f}x" if "+" in c else "—"])
        if "+" in c:
            each = [a / b for a, b in zip(cpu[c], cpu[host], strict=True)]
            verdicts.append(common.verdict(f"{c} vs {host}", q, qc, GOAL)
                            + f"; per-repeat CPU ratios {min(each):.2f}–{max(each):.2f}")
    tab = common.markdown_table(["contender", "median epoch s (wall)", "wall ratio",
                                 "median epoch CPU s", "CPU ratio", "goal"], rows)
    body = "\n".join([
        "Measured by `benchmarks/integrations_overhead.py` (issue 17). One epoch of the shallow "
        f"MLP on Fashion-MNIST ({x.shape[0]:,} rows, batch {BATCH}, {steps:,} steps), "
        f"{args.repeats} interleaved repeat(s) per contender (a ratio is the median over "
        "repeats of the ratio within each repeat, where host and host+callback run back to "
        "back, the host first in even repeats and second in odd ones); the callbacks at default "
        f"sampling (the first {DENSE_START} steps, then one in {DEFAULT_EVERY}). `/log`: "
        "the hosts' logging on at their defaults (Lightning `CSVLogger`, a log every 50 "
        "steps; HF `logging_steps=500`); without `/log` nothing reads the callbacks' "
        "periodic rule evaluations, so they are skipped.",
        "",
        tab,
        "",
        *[f"- {v}" for v in verdicts],
        *([f"- {common.load_note(info)}"] if common.load_note(info) else []),
        "",
        f"Environment: {info['date']}; CPU {info['cpu']}, {info['cores']} cores, "
        f"{threads} compute thread(s); Python {info['python']}, torch {info['torch']}; load "
        f"average (1/5/15 min) before {info['load_before']}, after {info['load_after']}.",
        "",
        f"Command: `{info['command']}`",
    ])
    print("\n" + body)
    if args.write:
        print(f"wrote {common.write_section(SECTION, body)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
