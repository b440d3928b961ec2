"""Trainer speed: ``steadygrad.fit`` vs hand-written PyTorch loops vs Keras 3 on JAX.

Two Fashion-MNIST workloads at batch 32 (issue 3):

(a) ``shallow``: Flatten → Dense 300 relu → Dense 100 relu → Dense 10, SGD lr 0.01;
(b) ``deep``: 20 × [Dense 100 (He, no bias) → BN → ELU] → Dense 10, Nadam lr 1e-3.

Contenders (``--contenders``, default all):

- ``fit``: ``steadygrad.fit`` eager, monitor off, default metrics (accuracy);
- ``minimal``: a hand-written loop on in-memory tensors (``randperm`` slicing,
  ``zero_grad(set_to_none=True)``, the epoch loss accumulated with ``loss.item()``);
- ``dataloader``: the same loop over ``TensorDataset`` + ``DataLoader(shuffle=True)``;
- ``fit_compile``: ``fit(compile=True)``; compile time is reported apart from epoch time;
- ``keras``: Keras 3 ``model.fit`` on the JAX backend (jit-compiled train step, same
  architecture, optimizer, batch, loss and accuracy metric); its compile time is the wall
  time of a warm-up ``fit`` on one full and one partial batch, before the timed call;
- ``fit_compile_monitor``: ``fit(compile=True, monitor=True)``, showing that the monitor
  works in compiled mode (its health report is summarized);
- ``fit_foreach``: ``fit`` eager given a ``foreach=True`` optimizer instance (a proposed
  default: torch enables the multi-tensor kernels only on CUDA by default);
- ``proto_compile``: not steadygrad, a prototype of a faster compiled step proposed for
  ``fit(compile=True)`` (:func:`run_proto_compile`), to show what the change would buy;
- ``fit_auto``: ``fit`` eager with nothing set by the user (no ``threads=``, torch at its
  default thread count, no ``OMP_NUM_THREADS``): ``fit`` picks the thread count itself;
- ``fit_compile_auto``: ``fit(compile=True)`` with nothing set by the user, likewise (the
  count is chosen by the eager probe, then the step is compiled at that count).

Threads (``--thread-counts``, default ``1,default``): every torch contender runs at each count
(``default``: torch's own default on this machine, read before anything sets it); ``fit``
contenders get ``threads=<count>``, so they train at exactly that count. Keras runs once per
repeat at XLA's default threading (XLA's thread pool is fixed at start-up), labelled
``keras@xla``, in a child process of its own (``run_keras_isolated``: XLA's idle worker
threads in this process distorted the torch contenders' 2-thread epochs). ``--threads N``
instead runs everything at N threads (also XLA, as before).

Contenders × thread counts are interleaved repeat by repeat (the order rotates every repeat)
so machine-load drift hits all of them alike; every run builds a fresh model from the same
seed. For every timed epoch the share of the machine's CPU used by *other* processes is read
from ``/proc/stat`` (:mod:`_busy`); epochs above ``--busy-threshold`` (default 0.25) are
left out of the wall-time medians and counted in the table. Reported: median epoch seconds
over the kept epochs, the ratio to the reference contender at the same thread count, compile
seconds and the first epoch including compile, and the facts needed to reproduce the number.

Usage::

    python benchmarks/trainer_speed.py --quick --epochs 1 --repeats 1   # smoke test
    python benchmarks/trainer_speed.py --quick --contenders fit,minimal --workloads shallow
    python benchmarks/trainer_speed.py --epochs 2 --repeats 3 --write
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import _common as common
from _contenders import (
    BATCH,
    Run,
    keras_available,
    run_dataloader,
    run_fit,
    run_fit_foreach,
    run_keras_isolated,
    run_minimal,
    run_proto_compile,
    workloads,
)

CONTENDERS = ("fit", "minimal", "dataloader", "fit_compile", "keras", "fit_compile_monitor",
              "fit_foreach", "proto_compile", "fit_auto", "fit_compile_auto")
AUTO = ("fit_auto", "fit_compile_auto")
"""The contenders run as for a user who set nothing (``fit`` chooses the thread count)."""
KERAS_LABEL = "keras@xla"
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
WORKLOADS = ("shallow", "deep")
QUICK_ROWS = 5000
SECTION = "Trainer speed"


# ------------------------------------------------------------------------------ driver
Runner = Callable[..., Run]


def runner(name: str) -> Runner:
    """``run(workload, x, y, epochs, seed, threads)`` for contender ``name``."""
    table: dict[str, Runner] = {
        "fit": lambda *a, threads: run_fit(*a, threads=threads),
        "minimal": lambda *a, threads: run_minimal(*a),
        "dataloader": lambda *a, threads: run_dataloader(*a),
        "fit_compile": lambda *a, threads: run_fit(*a, compile=True, threads=threads),
        "keras": lambda *a, threads: run_keras_isolated(*a),
        "fit_compile_monitor": lambda *a, threads: run_fit(*a, compile=True, monitor=True,
                                                           threads=threads),
        "fit_foreach": lambda *a, threads: run_fit_foreach(*a, threads=threads),
        "proto_compile": lambda *a, threads: run_proto_compile(*a),
        "fit_auto": lambda *a, threads: run_fit(*a, threads=None),
        "fit_compile_auto": lambda *a, threads: run_fit(*a, compile=True, threads=None),
    }
    return table[name]


def columns(names: Sequence[str], counts: Sequence[int], default: int,
            ) -> list[tuple[str, str, int | None]]:
    """``(label, contender, threads)`` for every contender at every count: the :data:`AUTO`
    ones only at torch's default, Keras once (XLA's threads). Labels are ``name@count``.

    >>> [label for label, _, _ in columns(["fit", "keras", "fit_auto"], [1, 2], 2)]
    ['fit@1', 'fit@2', 'keras@xla', 'fit_auto@2']
    """
    out: list[tuple[str, str, int | None]] = []
    for c in names:
        if c == "keras":
            out.append((KERAS_LABEL, c, None))
        elif c in AUTO:
            out.append((f"{c}@{default}", c, default))
        else:
            out += [(f"{c}@{t}", c, t) for t in counts]
    return out


def _run_at(c: str, t: int | None, default: int, call: Callable[[], Run]) -> Run:
    """Run ``call`` with torch at ``t`` threads (:data:`AUTO`: torch's default and no thread
    variables in the environment, as for a user who set nothing); restore afterwards."""
    import torch

    saved = {k: os.environ.pop(k) for k in THREAD_ENV if k in os.environ}
    if c not in AUTO:
        os.environ.update(saved)
    torch.set_num_threads(t if t is not None else default)
    try:
        return call()
    finally:
        os.environ.update(saved)
        torch.set_num_threads(default)


def interleave(names: Sequence[str], workload_names: Sequence[str], x: Any, y: Any,
               epochs: int, repeats: int, seed: int, counts: Sequence[int] = (1,),
               default: int = 1, log: Callable[[str], None] = print,
               ) -> dict[tuple[str, str], list[Run]]:
    """Run every contender at every thread count on every workload ``repeats`` times,
    rotating the order; results keyed by ``(workload, label)``."""
    wls = workloads()
    cols = columns(names, counts, default)
    results: dict[tuple[str, str], list[Run]] = {(w, label): [] for w in workload_names
                                                  for label, _, _ in cols}
    for w in workload_names:  # untimed warm-up: first-call costs (allocator, lazy init)
        run_minimal(wls[w], x[:8 * BATCH], y[:8 * BATCH], 1, seed)
        run_fit(wls[w], x[:8 * BATCH], y[:8 * BATCH], 1, seed, threads=default)
    for r in range(repeats):
        order = list(cols[r % len(cols):]) + list(cols[:r % len(cols)])
        for w in workload_names:
            for label, c, t in order:
                call = partial(runner(c), wls[w], x, y, epochs, seed + r, threads=t)
                run = _run_at(c, t, default, call)
                results[(w, label)].append(run)
                comp = (""
                        if run.compile_seconds is None else f", compile {run.compile_seconds:.1f}s")
                busy = ", ".join("—" if b is None else f"{b:.2f}" for b in run.busy)
                log(f"[repeat {r + 1}/{repeats}] {w:7s} {label:22s} epochs "
                    f"{', '.join(f'{s:.2f}' for s in run.seconds)} s{comp}, loss {run.loss:.4f}"
                    f", others' CPU share {busy or '—'}")
    return results


def _fmt(v: float | None, digits: int = 2) -> str:
    return "—" if v is None or not math.isfinite(v) else f"{v:.{digits}f}"


def _base(label: str) -> tuple[str, str]:
    name, _, t = label.partition("@")
    return name, t


def kept(run: Run, threshold: float) -> list[float]:
    """The run's epoch seconds whose others' CPU share was at most ``threshold`` (unknown
    shares are kept).

    >>> kept(Run([1.0, 2.0, 3.0], busy=[0.1, 0.6, None]), 0.25)
    [1.0, 3.0]
    """
    busy = list(run.busy) + [None] * (len(run.seconds) - len(run.busy))
    return [s for s, b in zip(run.seconds, busy, strict=True) if b is None or b <= threshold]


def tables(results: dict[tuple[str, str], list[Run]], workload_names: Sequence[str],
           labels: Sequence[str], threshold: float = 1.0) -> tuple[str, list[str]]:
    """The Markdown results table and the goal verdicts (ratios at equal thread counts)."""
    rows, verdicts = [], []
    ref_of = {"fit": "minimal", "dataloader": "minimal", "fit_compile": "keras",
              "fit_compile_monitor": "fit_compile", "proto_compile": "keras",
              "fit_foreach": "minimal", "fit_auto": "minimal", "fit_compile_auto": "keras"}
    med: dict[tuple[str, str], float] = {}
    every: dict[tuple[str, str], float] = {}
    cpu: dict[tuple[str, str], float] = {}
    for key, runs in results.items():
        med[key] = common.median([s for run in runs for s in kept(run, threshold)])
        every[key] = common.median([s for run in runs for s in run.seconds])
        cpu[key] = common.median([s for run in runs for s in run.cpu])

    def ref(label: str) -> str | None:
        name, t = _base(label)
        base = ref_of.get(name)
        if base is None:
            return None
        r = KERAS_LABEL if base == "keras" else f"{base}@{t}"
        return r if r in labels else None

    for w in workload_names:
        for label in labels:
            runs = results[(w, label)]
            r = ref(label)
            comp = [run.compile_seconds for run in runs if run.compile_seconds is not None]
            first = [run.seconds[0] + run.compile_seconds for run in runs
                     if run.compile_seconds is not None and run.seconds]
            threads = sorted({run.notes["threads"] for run in runs if "threads" in run.notes})
            timed = sum(len(run.seconds) for run in runs)
            rows.append([
                w, label, _fmt(med[(w, label)]),
                f"{common.ratio(med[(w, label)], med[(w, r)])} vs {r}" if r else "—",
                _fmt(cpu[(w, label)]),
                f"{common.ratio(cpu[(w, label)], cpu[(w, r)])}" if r else "—",
                _fmt(common.median(comp)) if comp else "—",
                _fmt(common.median(first)) if first else "—",
                _fmt(common.median([run.loss for run in runs]), 3),
                f"{sum(len(kept(run, threshold)) for run in runs)}/{timed}",
                _fmt(every[(w, label)]),
                ",".join(map(str, threads)) or "—",
            ])
        for label in labels:
            name = _base(label)[0]
            r = ref(label)
            if r is None or not med[(w, r)] > 0:
                continue
            goal = {"fit": 1.05, "fit_compile": 0.85, "fit_compile_auto": 0.85,
                    "fit_auto": 1 / 1.3}.get(name)
            if goal is None:
                continue
            q = med[(w, label)] / med[(w, r)]
            qc = cpu[(w, label)] / cpu[(w, r)] if cpu[(w, r)] > 0 else math.nan
            verdicts.append(common.verdict(f"{w}: {label} / {r}", q, qc, goal))
    headers = ["workload", "contender@threads", "median epoch s (wall)", "wall ratio",
               "median epoch CPU s", "CPU ratio", "compile s", "first epoch s (incl. compile)",
               "last-epoch loss", "epochs kept/timed", "median wall s, all epochs",
               "fit's threads"]
    return common.markdown_table(headers, rows), verdicts


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse and validate the command line (errors exit before any work)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    p.add_argument("--epochs", type=int, default=1, help="epochs per run (default 1)")
    p.add_argument("--limit", type=int, default=None,
                   help="training rows (default: all 55,000; --quick: 5,000)")
    p.add_argument("--repeats", type=int, default=3, help="interleaved repeats (default 3)")
    p.add_argument("--threads", type=int, default=None,
                   help="run everything at this many threads (instead of --thread-counts)")
    p.add_argument("--thread-counts", default="1,default", type=common.thread_counts,
                   help="comma-separated torch thread counts; 'default' is torch's default "
                        "(default: 1,default)")
    p.add_argument("--busy-threshold", type=float, default=0.25,
                   help="leave out epochs where other processes used more than this share of "
                        "the machine's CPU (from /proc/stat; default 0.25)")
    p.add_argument("--quick", action="store_true", help=f"{QUICK_ROWS:,} rows, 1 repeat")
    p.add_argument("--contenders", default=",".join(CONTENDERS),
                   help=f"comma-separated subset of {', '.join(CONTENDERS)}")
    p.add_argument("--workloads", default=",".join(WORKLOADS),
                   help=f"comma-separated subset of {', '.join(WORKLOADS)}")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--note", action="append", default=[],
                   help="a sentence to add to the notes of the written section (repeatable)")
    p.add_argument("--flush-denormal", action="store_true",
                   help="torch.set_flush_denormal(True) for the torch contenders (as XLA does)")
    p.add_argument("--subsection", default=None,
                   help=f"with --write: write a '### SUBSECTION' inside '{SECTION}' instead")
    p.add_argument("--cold-compile", action="store_true",
                   help="disable torch Inductor's on-disk caches (every compile from scratch)")
    p.add_argument("--write", action="store_true",
                   help=f"replace the '{SECTION}' section of docs/benchmarks.md")
    p.add_argument("--json", default=None, help="also save the raw results to this file")
    args = p.parse_args(argv)
    for name in ("epochs", "repeats"):
        if getattr(args, name) < 1:
            p.error(f"--{name}: got {getattr(args, name)}; expected an int >= 1")
    if args.limit is not None and args.limit < BATCH:
        p.error(f"--limit: got {args.limit}; expected at least one batch ({BATCH} rows)")
    if args.threads is not None and args.threads < 1:
        p.error(f"--threads: got {args.threads}; expected an int >= 1")
    if not 0.0 <= args.busy_threshold <= 1.0:
        p.error(f"--busy-threshold: got {args.busy_threshold}; expected a share in [0, 1]")
    if args.quick:
        args.limit = args.limit or QUICK_ROWS
    for opt, allowed in (("contenders", CONTENDERS), ("workloads", WORKLOADS)):
        chosen = [c.strip() for c in getattr(args, opt).split(",") if c.strip()]
        bad = [c for c in chosen if c not in allowed]
        if bad or not chosen:
            p.error(f"--{opt}: got {bad or chosen}; expected names from {', '.join(allowed)}")
        setattr(args, opt, chosen)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; print (and with ``--write`` store) the tables."""
    args = parse_args(argv)
    if args.threads is not None:
        threads = common.configure_threads(args.threads)
    else:  # torch keeps its own default; each run sets its count
        common.configure_threads(None)
        os.environ.pop("OMP_NUM_THREADS", None)
    if args.cold_compile:
        os.environ["TORCHINDUCTOR_FORCE_DISABLE_CACHES"] = "1"
    import torch

    default = torch.get_num_threads() if args.threads is None else threads
    counts = ([threads] if args.threads is not None else
              sorted({default if c == "default" else int(c) for c in args.thread_counts}))
    torch.set_num_threads(default)
    if args.flush_denormal and not torch.set_flush_denormal(True):
        print("torch.set_flush_denormal is not supported on this CPU", file=sys.stderr)
    names = list(args.contenders)
    skip = keras_available() if "keras" in names else None
    if skip is not None:
        names.remove("keras")
        print(f"skipping the Keras column: {skip}", file=sys.stderr)
    info = common.system_info(default, keras=skip is None)
    info["thread_counts"], info["busy_threshold"] = counts, args.busy_threshold
    x, y = common.load_fashion_mnist(args.limit)
    print(f"{x.shape[0]:,} rows, {math.ceil(x.shape[0] / BATCH)} steps/epoch, "
          f"thread counts {counts} (torch default {default}), load {info['load_before']}",
          flush=True)
    results = interleave(names, args.workloads, x, y, args.epochs, args.repeats, args.seed,
                         counts, default, log=lambda s: print(s, flush=True))
    info["load_after"] = common.load_average()
    if counts == [1]:
        info["noise"] = common.noise_note([
            (run.seconds[-len(run.cpu) + i], c) for runs in results.values() for run in runs
            for i, c in enumerate(run.cpu)])
    labels = [label for label, _, _ in columns(names, counts, default)]
    table, verdicts = tables(results, args.workloads, labels, args.busy_threshold)
    health = next((run.notes["health"] for (w, c), runs in results.items()
                   if c == "fit_compile_monitor" for run in runs if "health" in run.notes), None)
    body = render(info, args, x.shape[0], table, verdicts, health, skip)
    print("\n" + body)
    if args.json:
        raw = {f"{w}/{c}": [run.__dict__ for run in runs] for (w, c), runs in results.items()}
        with open(args.json, "w") as f:
            json.dump({"info": info, "results": raw}, f, indent=1, default=str)
    if args.write and args.subsection:
        print(f"wrote {common.write_subsection(SECTION, args.subsection, body)}")
    elif args.write:
        print(f"wrote {common.write_section(SECTION, body)}")
    return 0


def render(info: dict[str, Any], args: argparse.Namespace, rows: int, table: str,
           verdicts: list[str], health: dict[str, Any] | None, skip: str | None) -> str:
    """The Markdown section: what was measured, the table, the verdicts, the facts."""
    wls = workloads()
    lines = [
        "Measured by `benchmarks/trainer_speed.py` (issue 3). Fashion-MNIST, "
        f"{rows:,} training rows, batch {BATCH} ({math.ceil(rows / BATCH):,} steps per epoch), "
        f"{args.epochs} epoch(s) × {args.repeats} interleaved repeat(s) per contender and "
        f"thread count ({', '.join(map(str, info['thread_counts']))}; torch's default here: "
        f"{info['threads']}); median epoch time over the timed epochs in which other processes "
        f"used at most {info['busy_threshold']:.0%} of the machine's CPU (`/proc/stat`). "
        "Workloads: "
        + "; ".join(f"**{w}**: {wls[w].description}" for w in args.workloads) + ".",
        "",
        table,
        "",
        *[f"- {v}" for v in verdicts],
    ]
    if health is not None:
        lines.append(
            f"- Monitor in compiled mode: `fit(compile=True, monitor=True)` produced a health "
            f"report with {health['checks']} sampled checks over {health['steps']} steps "
            f"(every {health['every']}), {health['layers']} layer rows, "
            f"{health['findings']} finding(s) (worst: {health['worst']})."
        )
    if skip is not None:
        lines.append(f"- Keras column skipped: {skip}.")
    if args.flush_denormal:
        lines.append("- Denormals flushed to zero in torch (`torch.set_flush_denormal(True)`, "
                     "`--flush-denormal`), as XLA does by default on CPU.")
    lines.append(
        "- Compile times: "
        + ("torch Inductor's on-disk caches disabled (`--cold-compile`): every compile from "
           "scratch." if args.cold_compile else
           "torch Inductor's on-disk caches enabled (the default; a re-run of the same graphs "
           "reuses compiled kernels, so these are warm-cache times; `--cold-compile` measures "
           "from scratch). JAX's persistent cache is off (its default).")
    )
    lines.append(
        "- CPU seconds (`time.process_time`, all threads of the process) are far less "
        "sensitive than wall time to other processes on the machine; for compiled contenders "
        "they are given only for epochs after the first (the first one compiles)."
    )
    if info["thread_counts"] == [1] and (info["cores"] or 1) > 1:
        lines.append(
            f"- Run with 1 compute thread on a {info['cores']}-core machine shared with other "
            "work: with 2 threads and a load average above the core count, PyTorch's OpenMP "
            "workers wait on each other at every parallel region (one of them is usually "
            "descheduled): in a `--quick` check at load average 5–6, eager epochs were 15–90× "
            "slower than with 1 thread, which measures the machine, not the trainer."
        )
    for note in (common.load_note(info), info.get("noise")):
        if note:
            lines.append(f"- {note}")
    lines += [f"- {n}" for n in args.note]
    lines += [
        "",
        "Contenders: `fit` = `steadygrad.fit` eager, monitor off (computes loss and accuracy); "
        "`minimal` = hand-written loop, in-memory tensors, `randperm` slicing, "
        "`zero_grad(set_to_none=True)`, loss via `.item()`; `dataloader` = same loop over "
        "`TensorDataset` + `DataLoader(shuffle=True)`; `fit_compile` = `fit(compile=True)`; "
        "`keras` = Keras 3 `model.fit` on JAX (jit), loss + accuracy, in a child process of "
        "its own (with JAX in the timing process, XLA's idle threads distorted the torch "
        "contenders' 2-thread epochs); `fit_compile_monitor` = "
        "`fit(compile=True, monitor=True)`; `fit_foreach` = `fit` given the same optimizer "
        "built with `foreach=True` (since the fix below, what a named optimizer gets anyway); "
        "`proto_compile` = not steadygrad: the earlier two-graph design (loss + gradients in one "
        "graph via `torch.func.grad_and_value`, then the compiled `foreach` optimizer step; see "
        "`run_proto_compile`; it does not flush denormals unless `--flush-denormal` is given); "
        "`fit(compile=True)` now runs the whole step as one graph on flat buffers "
        "(`steadygrad.train._flat`), traced once per model state for the full batch (the "
        "partial last batch runs eagerly with the same flat update) with `make_fx` and "
        "compiled with Inductor, called without Dynamo's per-call guards; Inductor's C++ "
        "depends on the thread count, so each count compiles its own graph. "
        "Compile time is excluded from the epoch times "
        "(steadygrad: `history.compile_seconds`; Keras: a warm-up `fit` on one full and one "
        "partial batch).",
        "",
        *common.environment(info),  # keras and jax named when the Keras column ran
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
