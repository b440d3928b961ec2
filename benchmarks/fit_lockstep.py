"""Eager ``fit`` vs the minimal hand-written loop, in lockstep pairs (issue 20).

The workloads and contenders of ``trainer_speed.py`` (``fit`` eager with ``threads=<count>``,
monitor off; ``minimal``: in-memory tensors, ``randperm`` slicing), one epoch per run, but each
``fit`` run is timed against a ``minimal`` run in a lockstep pair (:mod:`_lockstep`): two new
processes take turns every ``--turn-steps`` steps (at one thread both pinned to one core; at
more threads they alternate on all cores), so both see the same slow and fast spells of the
machine, and the ratio of their epoch CPU times (``time.process_time``) is the figure. On this
VM back-to-back epochs of the same loop differ by 10-40%, more than the 5% goal. ``fit``
receives its turns through an ``on_batch_end`` callback (its dispatch costs ``fit`` a few
microseconds per step), the minimal loop through a direct call. An A/A pair (``--aa``) shows
the method's noise. Goal (issue 20): ``fit`` ≤ 1.05 × minimal at the same thread count.

Usage::

    python benchmarks/fit_lockstep.py --quick --repeats 1                 # smoke test
    python benchmarks/fit_lockstep.py --repeats 5 --write
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence
from typing import Any

import _common as common
import _lockstep as lockstep
from _lockstep import Turn

WORKLOADS = ("shallow", "deep")
BATCH = 32
QUICK_ROWS = 4096
GOAL = 1.05
SECTION = "Trainer speed"
SUBSECTION = "Eager fit vs the minimal loop, lockstep pairs"


def _side(turn: Turn, contender: str, workload: str, threads: int, limit: int | None,
          seed: int, r: int) -> tuple[float, float]:
    """One side, in a child process: warm up, then one timed epoch in turns with the other
    side: ``(epoch CPU s, final loss)``."""
    common.configure_threads(threads)
    import _contenders as contenders
    import torch

    torch.set_num_threads(threads)
    x, y = common.load_fashion_mnist(limit)
    wl = contenders.workloads()[workload]

    def run(n: int, s: int, t: Turn | None) -> Any:
        if contender == "fit":
            return contenders.run_fit(wl, x[:n], y[:n], 1, s, threads=threads, turn=t)
        return contenders.run_minimal(wl, x[:n], y[:n], 1, s, turn=t)

    run(8 * BATCH, seed, None)  # untimed warm-up of the code path
    turn.reset()
    out = run(x.shape[0], seed + r, turn)
    turn.done()
    return out.cpu[0], out.loss


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse and validate the command line (errors exit before any work)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    p.add_argument("--repeats", type=int, default=5, help="pairs per cell (default 5)")
    p.add_argument("--workloads", default=",".join(WORKLOADS))
    p.add_argument("--thread-counts", default="1,default", type=common.thread_counts,
                   help="comma-separated counts; 'default' is torch's (default: 1,default)")
    p.add_argument("--turn-steps", type=int, default=64,
                   help="steps per turn (default 64)")
    p.add_argument("--limit", type=int, default=None, help="training rows (default: all)")
    p.add_argument("--quick", action="store_true", help=f"{QUICK_ROWS:,} rows")
    p.add_argument("--aa", action="store_true", help="also an A/A pair (minimal vs minimal)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--write", action="store_true",
                   help=f"write '### {SUBSECTION}' into '{SECTION}' of docs/benchmarks.md")
    args = p.parse_args(argv)
    for name in ("repeats", "turn_steps"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')}: got {getattr(args, name)}; expected an "
                    "int >= 1")
    if args.limit is not None and args.limit < BATCH:
        p.error(f"--limit: got {args.limit}; expected at least one batch ({BATCH} rows)")
    args.workloads = [w for w in args.workloads.split(",") if w]
    bad = [w for w in args.workloads if w not in WORKLOADS]
    if bad or not args.workloads:
        p.error(f"--workloads: got {bad or args.workloads}; expected names from "
                f"{', '.join(WORKLOADS)}")
    if args.quick:
        args.limit = args.limit or QUICK_ROWS
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the pairs; print (and with ``--write`` store) the table."""
    args = parse_args(argv)
    common.configure_threads(None)
    os.environ.pop("OMP_NUM_THREADS", None)
    import torch

    default = torch.get_num_threads()
    counts = sorted({default if c == "default" else int(c) for c in args.thread_counts})
    info = common.system_info(default, keras=False)
    rows_n = common.load_fashion_mnist(args.limit)[0].shape[0]
    steps = math.ceil(rows_n / BATCH)
    print(f"{rows_n:,} rows, {steps} steps/epoch, thread counts {counts}", flush=True)
    pairs = [("minimal", "fit")] + [("minimal", "minimal")] * args.aa
    rows, verdicts = [], []
    for w in args.workloads:
        for t in counts:
            for ref, con in pairs:
                cpus = []
                for r in range(args.repeats):
                    a, b = lockstep.run_pair(
                        _side, ((ref, w, t, args.limit, args.seed, r),
                                (con, w, t, args.limit, args.seed, r)),
                        every=args.turn_steps, hash_seed=args.seed + r,
                        first=r % 2,  # each side starts every other repeat
                        pin=t == 1)  # one core: both share its slow and fast spells
                    cpus.append((a[0], b[0]))
                    print(f"[{w} @{t}, repeat {r + 1}/{args.repeats}] {ref} {a[0]:.2f} s, "
                          f"{con} {b[0]:.2f} s CPU (losses {a[1]:.4f}, {b[1]:.4f})",
                          flush=True)
                cells, verdict = lockstep.summary(cpus, GOAL, same=ref == con)
                rows.append([w, f"{con}@{t}", f"{ref}@{t}", *cells])
                verdicts.append(f"{w}: {con}@{t} / {ref}@{t}: {verdict}")
    info["load_after"] = common.load_average()
    table = common.markdown_table(
        ["workload", "contender", "reference", "reference median epoch CPU s",
         "contender median epoch CPU s", "CPU ratio (median)", "per-repeat range", "goal"],
        rows)
    body = "\n".join([
        "Measured by `benchmarks/fit_lockstep.py` (issue 20). The workloads and contenders of "
        f"the table above, one epoch per run ({rows_n:,} rows, {steps:,} steps), each `fit` "
        "epoch timed against a minimal-loop epoch in a lockstep pair: two new processes take "
        f"turns every {args.turn_steps} steps (`_lockstep`; at one thread both pinned to one "
        "core), so both see the same slow and fast spells of the machine; the ratio is of "
        f"their epoch CPU times, the median over {args.repeats} pair(s), each side starting "
        "every other repeat.",
        "",
        table,
        "",
        *[f"- {v}" for v in verdicts],
        "",
        *common.environment(info, threads=False,
                            note=" (this benchmark's own two processes included)"),
    ])
    print("\n" + body)
    if args.write:
        print(f"wrote {common.write_subsection(SECTION, SUBSECTION, body)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
