"""Compile time of ``fit(compile=True)``'s flat step: cold (Inductor caches off) and warm.

Each measurement runs in a fresh interpreter (``python benchmarks/compile_time.py --one ...``)
so that nothing compiled earlier in the process is reused; "cold" sets
``TORCHINDUCTOR_FORCE_DISABLE_CACHES=1`` (every kernel and the wrapper compiled from scratch),
"warm" runs the same graph twice more with the on-disk caches on and reports the second
(the first fills the caches). Reported: seconds of the
first flat call per batch shape (the full batch and the partial last batch), i.e. exactly what
``history.compile_seconds`` counts, for the two benchmark workloads and for the tiny model of
``tests/train/test_engines.py``; ``--python-wrapper`` compiles without Inductor's C++ wrapper
(``cpp_wrapper``, which the flat step uses on CPU) to show what it costs at compile time.

Usage::

    python benchmarks/compile_time.py --workloads tiny,shallow --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

import _common as common

WORKLOADS = ("tiny", "shallow", "deep")
BATCH = 32


def _model(name: str) -> tuple[Any, Any, tuple[int, ...], int]:
    """(model, optimizer, sample shape, classes) of a workload."""
    import torch

    if name == "tiny":
        torch.manual_seed(0)
        model = torch.nn.Linear(4, 3)
        return model, torch.optim.Adam(model.parameters(), lr=0.01), (4,), 3
    if name == "shallow":
        model = common.shallow_mlp(0)
        return model, torch.optim.SGD(model.parameters(), lr=0.01), (28, 28), 10
    model = common.deep_bn_mlp(0)
    return (model, torch.optim.NAdam(model.parameters(), lr=1e-3, eps=1e-7,
                                     momentum_decay=1.0), (28, 28), 10)


def measure_one(name: str, python_wrapper: bool) -> dict[str, float]:
    """In this process: seconds of the first flat call for a full and a partial batch."""
    import torch

    from steadygrad.train._flat.flat import FlatStep
    from steadygrad.train.compiled import begin_compiled_run, end_compiled_run

    model, opt, shape, classes = _model(name)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(BATCH + 7, *shape, generator=g)
    y = torch.randint(0, classes, (BATCH + 7,), generator=g)
    loss = torch.nn.functional.cross_entropy
    loss(model(x[:BATCH]), y[:BATCH]).backward()
    opt.step()
    opt.zero_grad()
    prev = begin_compiled_run(torch.device("cpu"))
    flat = FlatStep.create(model, loss, opt)
    assert isinstance(flat, FlatStep) and flat.engage()
    if python_wrapper:
        flat.options = None
    out = {}
    for label, n in (("full", BATCH), ("partial", 7)):
        start = time.perf_counter()
        flat(x[:n], y[:n])
        out[label] = time.perf_counter() - start
    start = time.perf_counter()
    flat(x[:BATCH], y[:BATCH])
    out["step_after"] = time.perf_counter() - start
    flat.release()
    end_compiled_run(prev)
    return out


def run(name: str, cold: bool, python_wrapper: bool, threads: int) -> dict[str, Any]:
    """One measurement in a fresh interpreter."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    if cold:
        env["TORCHINDUCTOR_FORCE_DISABLE_CACHES"] = "1"
    args = [sys.executable, __file__, "--one", name, "--threads", str(threads)]
    if python_wrapper:
        args.append("--python-wrapper")
    proc = subprocess.run(args, env=env, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line, measure, print a Markdown table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    p.add_argument("--workloads", default="tiny,shallow,deep")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--python-wrapper", action="store_true",
                   help="also measure without Inductor's C++ wrapper")
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.one is not None:
        import torch

        torch.set_num_threads(args.threads)
        print(json.dumps(measure_one(args.one, args.python_wrapper)))
        return 0
    names = [w for w in args.workloads.split(",") if w]
    bad = [w for w in names if w not in WORKLOADS]
    if bad or args.threads < 1:
        p.error(f"--workloads: got {bad}; expected names from {', '.join(WORKLOADS)}; "
                "--threads: an int >= 1")
    rows = []
    for name in names:
        for wrapper in ([False, True] if args.python_wrapper else [False]):
            cold = run(name, True, wrapper, args.threads)
            run(name, False, wrapper, args.threads)  # fills the on-disk caches
            warm = run(name, False, wrapper, args.threads)
            rows.append([name, "python" if wrapper else "C++ (cpp_wrapper)",
                         f"{cold['full']:.1f}", f"{cold['partial']:.1f}",
                         f"{warm['full']:.2f}", f"{warm['partial']:.2f}",
                         f"{1000 * warm['step_after']:.2f}"])
            print(rows[-1], flush=True)
    print(common.markdown_table(
        ["workload", "wrapper", "cold full s", "cold partial s", "warm full s",
         "warm partial s", "step after ms"], rows))
    print(f"load average {common.load_average()}; threads {args.threads}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
