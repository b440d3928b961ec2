"""Host overhead of the integrations: Lightning and Hugging Face with and without the callback.

Workload: Fashion-MNIST, the shallow MLP (Flatten → Dense 300 relu → Dense 100 relu → Dense 10),
SGD lr 0.01, batch 32, one epoch per run, fresh model from the same seed in both runs of a
repeat. Each contender is measured against its host in a lockstep pair (:func:`run_pair`,
:mod:`_lockstep`): two child processes, pinned to one core at one thread, take turns
every ``--turn-steps`` steps (a waiting process uses no CPU time), so that both runs see the
same slow and fast spells of the machine (on this VM a core's speed drifts by tens of percent
within seconds; two epochs timed one after the other differed by ±15% for the same work). An
A/A pair (``--pairs lightning:lightning``) shows the method's own noise. Contenders:

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

Timed: the CPU time of ``trainer.fit`` / ``trainer.train`` (the callback's report at the end
included; both sides also carry the small callback that passes the turns). Goal: each
``+health`` ≤ 1.05 × its host (median over repeats of the per-repeat ratio).

Usage::

    python benchmarks/integrations_overhead.py --quick --repeats 1   # smoke test, small subset
    python benchmarks/integrations_overhead.py --pairs lightning:lightning --repeats 5  # A/A
    python benchmarks/integrations_overhead.py --repeats 7 --write
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
import _lockstep as lockstep
from _lockstep import Turn

CONTENDERS = ("lightning", "lightning+health", "hf", "hf+health",
              "lightning/log", "lightning/log+health", "hf/log", "hf/log+health")
SECTION = "Host integration overhead"
QUICK_ROWS = 2048
BATCH = 32
GOAL = 1.05
TURN_STEPS = 64
"""Steps per turn of a lockstep pair (about 0.1 s of the shallow MLP under a host)."""
PAIRS = [(CONTENDERS[i], CONTENDERS[i + 1]) for i in range(0, len(CONTENDERS), 2)]
"""Each host and its ``+health``."""


def _lightning(x: Any, y: Any, seed: int, health: bool, log: bool,
               turn: Turn | None = None) -> tuple[float, float, float]:
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
                             callbacks=[*_lightning_turns(turn),
                                        *([GradientHealth(report_dir=False)] if health else [])])
        module = Module()
        if turn is not None:
            turn.begin()
        w0, c0 = time.perf_counter(), time.process_time()
        trainer.fit(module, loader)
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        if turn is not None:
            turn.end()
    return wall, cpu, float(module.last)


def _lightning_turns(turn: Turn | None) -> list[Any]:
    """A Lightning callback that hands the core over every ``turn.every`` batches."""
    if turn is None:
        return []
    import lightning.pytorch as pl

    class Turns(pl.Callback):
        def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any,
                               batch_idx: int) -> None:
            turn.step(batch_idx)

    return [Turns()]


def _hf_turns(turn: Turn | None) -> list[Any]:
    """A ``TrainerCallback`` that hands the core over every ``turn.every`` steps."""
    if turn is None:
        return []
    import transformers

    class Turns(transformers.TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            turn.step(state.global_step - 1)

    return [Turns()]


def _hf(x: Any, y: Any, seed: int, health: bool, log: bool,
        turn: Turn | None = None) -> tuple[float, float, float]:
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
            callbacks=[*_hf_turns(turn),
                       *([GradientHealthCallback(report_dir=False)] if health else [])])
        if turn is not None:
            turn.begin()
        w0, c0 = time.perf_counter(), time.process_time()
        out = trainer.train()
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        if turn is not None:
            turn.end()
    return wall, cpu, float(out.training_loss)


def run(name: str, x: Any, y: Any, seed: int,
        turn: Turn | None = None) -> tuple[float, float, float]:
    """One timed epoch of contender ``name``: (wall s, CPU s, final loss)."""
    host, _, health = name.partition("+")
    host, _, log = host.partition("/")
    fn = _lightning if host == "lightning" else _hf
    return fn(x, y, seed, bool(health), bool(log), turn)


def parse_pairs(text: str) -> list[tuple[str, str]]:
    """``"a:b,c:d"`` -> ``[("a", "b"), ("c", "d")]``, names checked against CONTENDERS.

    >>> parse_pairs("lightning:lightning+health")
    [('lightning', 'lightning+health')]
    """
    pairs = []
    for item in filter(None, text.split(",")):
        a, sep, b = item.partition(":")
        if not sep or a not in CONTENDERS or b not in CONTENDERS:
            raise ValueError(f"got {item!r}; expected REFERENCE:CONTENDER with names from "
                             f"{', '.join(CONTENDERS)}")
        pairs.append((a, b))
    if not pairs:
        raise ValueError("got no pair")
    return pairs


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse and validate the command line (errors exit before any work)."""
    p = argparse.ArgumentParser(description="Overhead of the Lightning/HF health callbacks.")
    p.add_argument("--limit", type=int, default=None,
                   help=f"training rows (default: all; --quick: {QUICK_ROWS:,})")
    p.add_argument("--repeats", type=int, default=5, help="runs per pair (default 5)")
    p.add_argument("--threads", type=int, default=1,
                   help="compute threads (default 1: both sides pinned to one core)")
    p.add_argument("--turn-steps", type=int, default=TURN_STEPS,
                   help=f"steps per turn of a lockstep pair (default {TURN_STEPS})")
    p.add_argument("--pairs", default=",".join(f"{a}:{b}" for a, b in PAIRS),
                   help="REFERENCE:CONTENDER pairs (default: each host and its +health; "
                        "an A/A pair such as lightning:lightning shows the noise floor)")
    p.add_argument("--quick", action="store_true", help=f"{QUICK_ROWS:,} rows")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--write", action="store_true",
                   help=f"replace the '{SECTION}' section of docs/benchmarks.md")
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error(f"--repeats: got {args.repeats}; expected an int >= 1")
    if args.limit is not None and args.limit < BATCH:
        p.error(f"--limit: got {args.limit}; expected at least one batch ({BATCH} rows)")
    if args.threads < 1:
        p.error(f"--threads: got {args.threads}; expected an int >= 1")
    if args.turn_steps < 1:
        p.error(f"--turn-steps: got {args.turn_steps}; expected an int >= 1")
    try:
        args.pairs = parse_pairs(args.pairs)
    except ValueError as exc:
        p.error(f"--pairs: {exc}")
    if args.quick:
        args.limit = args.limit or QUICK_ROWS
    return args


def _side(turn: Turn, name: str, args: argparse.Namespace, r: int) -> tuple[float, float, int]:
    """One side of a lockstep pair, in a child process: warm up, then repeat ``r``'s timed
    epoch in turns with the other side: ``(CPU s, final loss, turns handed over)``."""
    threads = common.configure_threads(args.threads)
    import torch

    torch.set_num_threads(threads)
    x, y = common.load_fashion_mnist(args.limit)
    run(name, x[:4 * BATCH], y[:4 * BATCH], args.seed)  # untimed warm-up of the code path
    turn.reset()
    _, cpu, loss = run(name, x, y, args.seed + r, turn)
    turn.done()
    return cpu, loss, turn.switches


def run_pair(pair: tuple[str, str], args: argparse.Namespace, r: int) -> tuple[float, float]:
    """``(reference CPU s, contender CPU s)`` of repeat ``r``, the two in lockstep in two new
    processes (:func:`_lockstep.run_pair`)."""
    sides = lockstep.run_pair(_side, ((pair[0], args, r), (pair[1], args, r)),
                              every=args.turn_steps, hash_seed=args.seed + r,
                              first=r % 2,  # each side starts every other repeat
                              pin=args.threads == 1)  # one core: its slow and fast spells
    for name, (cpu, loss, switches) in zip(pair, sides, strict=True):
        print(f"[repeat {r + 1}/{args.repeats}] {name:20s} {cpu:.2f} s CPU, "
              f"loss {loss:.4f}, {switches} turns", flush=True)
    return sides[0][0], sides[1][0]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; print (and with ``--write`` store) the table."""
    args = parse_args(argv)
    threads = common.configure_threads(args.threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from steadygrad.diagnostics.monitor import DEFAULT_EVERY, DENSE_START

    info = common.system_info(threads, keras=False)
    rows_n = common.load_fashion_mnist(args.limit)[0].shape[0]
    steps = math.ceil(rows_n / BATCH)
    print(f"{rows_n:,} rows, {steps} steps/epoch, threads {threads}, "
          f"load {info['load_before']}", flush=True)
    rows, verdicts = [], []
    for pair in args.pairs:
        times = [run_pair(pair, args, r) for r in range(args.repeats)]
        cells, verdict = lockstep.summary(times, GOAL, same=pair[0] == pair[1])
        rows.append([pair[1], pair[0], *cells])
        verdicts.append(f"{pair[1]} vs {pair[0]}: {verdict}")
    info["load_after"] = common.load_average()
    tab = common.markdown_table(["contender", "reference", "reference median CPU s",
                                 "contender median CPU s", "CPU ratio (median)",
                                 "per-repeat range", "goal"], rows)
    body = "\n".join([
        "Measured by `benchmarks/integrations_overhead.py` (issue 17). One epoch of the shallow "
        f"MLP on Fashion-MNIST ({rows_n:,} rows, batch {BATCH}, {steps:,} steps) per run, "
        f"{args.repeats} run(s) per side. The two sides of a pair run in lockstep: two "
        "processes pinned to one core take turns every "
        f"{args.turn_steps} steps (`_lockstep.Turn`; a waiting process uses no CPU time), so "
        "both see the same slow and fast spells of this VM's core, and each run's CPU time "
        "(`time.process_time` of `fit`/`train`) is compared with its partner's; the ratio is "
        "the median over repeats (each side starts every other repeat; every repeat runs in "
        "two new processes, with the same hash seed, since a process's hash seed and memory "
        "layout can bias it by a few percent for its whole life). Wall time is not "
        "reported: in lockstep it includes the partner's turns. The callbacks run at default "
        f"sampling (the first {DENSE_START} steps, then one in {DEFAULT_EVERY}). `/log`: "
        "the hosts' logging on at their defaults (Lightning `CSVLogger`, a log every 50 "
        "steps; HF `logging_steps=500`); without `/log` nothing reads the callbacks' "
        "periodic rule evaluations, so they are skipped.",
        "",
        tab,
        "",
        *[f"- {v}" for v in verdicts],
        "",
        *common.environment(info, note=" (this benchmark's own two processes included)"),
    ])
    print("\n" + body)
    if args.write:
        print(f"wrote {common.write_section(SECTION, body)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
