"""Compile time of ``fit(compile=True)``'s step, cold and warm, next to Keras-on-JAX's.

Each measurement runs in a fresh interpreter (``python benchmarks/compile_time.py --one ...``)
so that nothing compiled earlier in the process is reused. steadygrad: the step is built as
``fit`` builds it (``build_step(compile=True)``) and called as in an epoch with a partial last
batch: an eager first step where the optimizer creates its state (SGD without momentum has
none: the first step is flat and compiles), the first flat step (it compiles), the partial
batch, one more full step; the CPU split is that of the four calls. "cold" points
``TORCHINDUCTOR_CACHE_DIR`` and ``TMPDIR`` (where Inductor keeps its precompiled headers) at a
new empty folder (no FX graph, kernel, autotuning or precompiled-header cache: Inductor
compiles everything from scratch); "warm" runs the same graph again in a new process on the
caches the cold run filled. Reported: the seconds ``history.compile_seconds`` counts (wall),
and where they go in CPU seconds: ``make_fx`` tracing, the rest of the Python side (AOT
autograd, Inductor lowering and code generation) and the C++ compiler processes.
Keras: ``model.fit`` on one full and one partial batch (what ``trainer_speed.py`` counts as
Keras's compile time; JAX has no persistent cache by default, so every process is cold), CPU
seconds of all threads of the process.

``--isa-check`` compiles with Inductor's per-ISA probe check (which the flat step skips with a
recent compiler), ``--python-wrapper`` without the C++ wrapper, ``--pch`` with Inductor's
precompiled header (which the flat step turns off), to show what each costs.

Usage::

    python benchmarks/compile_time.py --workloads tiny --no-keras        # smoke test
    python benchmarks/compile_time.py --workloads shallow,deep --isa-check --write
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import _common as common

WORKLOADS = ("tiny", "shallow", "deep")
BATCH = 32
PARTIAL = 7
SECTION = "Compile time"


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


def _cpu() -> tuple[float, float]:
    """CPU seconds (user + system) of this process and of its finished child processes."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, kids.ru_utime + kids.ru_stime


def measure_one(name: str, variant: str) -> dict[str, Any]:
    """In this process: the step's calls as in an epoch, with the compile's costs."""
    import torch
    from torch.fx.experimental import proxy_tensor

    from steadygrad.train._flat import flat as flat_module
    from steadygrad.train._flat.trace import cpu_options
    from steadygrad.train.compiled import begin_compiled_run, end_compiled_run
    from steadygrad.train.step import build_step

    drop = {"python-wrapper": "cpp_wrapper", "isa-check": "cpp.vec_isa_ok",
            "pch": "cpp_cache_precompile_headers"}.get(variant)
    flat_module.cpu_options = lambda: {  # type: ignore[assignment]
        k: v for k, v in cpu_options().items() if k != drop}
    traced = [0.0]
    make_fx = proxy_tensor.make_fx

    def timed_make_fx(*args: Any, **kwargs: Any) -> Any:
        fn = make_fx(*args, **kwargs)

        def run(*a: Any) -> Any:
            start = time.process_time()
            try:
                return fn(*a)
            finally:
                traced[0] += time.process_time() - start
        return run

    proxy_tensor.make_fx = timed_make_fx
    model, opt, shape, classes = _model(name)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(BATCH + PARTIAL, *shape, generator=g)
    y = torch.randint(0, classes, (BATCH + PARTIAL,), generator=g)
    prev = begin_compiled_run(torch.device("cpu"))
    timer = [0.0]
    step = build_step(model, torch.nn.functional.cross_entropy, opt, compile=True,
                      compile_timer=timer)
    calls, cpu = [], []
    for t, n in enumerate((BATCH, BATCH, PARTIAL, BATCH)):
        before, start = _cpu(), time.perf_counter()
        step(x[:n], y[:n], t)
        calls.append(time.perf_counter() - start)
        after = _cpu()
        cpu.append((after[0] - before[0], after[1] - before[1]))
    step.release()
    end_compiled_run(prev)
    own, kids = (sum(c[i] for c in cpu) for i in (0, 1))  # one of the calls compiles
    return {"engine": step.engine, "compile_s": timer[0], "calls_s": calls,
            "trace_cpu": traced[0], "python_cpu": own - traced[0], "compiler_cpu": kids}


def measure_keras(name: str) -> dict[str, Any]:
    """In this process: Keras-on-JAX's first ``fit`` on one full and one partial batch."""
    import _contenders
    import numpy as np

    wl = _contenders.workloads()[name]
    model = _contenders.keras_model(wl, 0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH + PARTIAL, 28, 28)).astype("float32")
    y = rng.integers(0, 10, BATCH + PARTIAL)
    wall, cpu = time.perf_counter(), time.process_time()
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, shuffle=False)
    return {"engine": "keras-jax", "compile_s": time.perf_counter() - wall,
            "cpu": time.process_time() - cpu}


def run(name: str, cache_dir: str, variant: str, threads: int) -> dict[str, Any]:
    """One measurement in a fresh interpreter, with Inductor's caches in ``cache_dir``."""
    env = dict(os.environ)
    env["TORCHINDUCTOR_CACHE_DIR"] = cache_dir
    env["TMPDIR"] = cache_dir  # Inductor's precompiled headers go under the temp folder
    env.pop("TORCHINDUCTOR_FORCE_DISABLE_CACHES", None)
    args = [sys.executable, __file__, "--one", name, "--threads", str(threads),
            "--variant", variant]
    proc = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line, measure, print a Markdown table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    p.add_argument("--workloads", default="tiny,shallow,deep")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-keras", action="store_true", help="skip the Keras-on-JAX rows")
    p.add_argument("--isa-check", action="store_true",
                   help="also measure with Inductor's per-ISA probe check")
    p.add_argument("--python-wrapper", action="store_true",
                   help="also measure without Inductor's C++ wrapper")
    p.add_argument("--pch", action="store_true",
                   help="also measure with Inductor's precompiled header")
    p.add_argument("--write", action="store_true",
                   help=f"replace the '{SECTION}' section of docs/benchmarks.md")
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)
    p.add_argument("--variant", default="default", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.threads < 1:
        p.error(f"--threads: got {args.threads}; expected an int >= 1")
    common.configure_threads(args.threads)
    if args.one is not None:
        import torch

        torch.set_num_threads(args.threads)
        one = measure_keras(args.one) if args.variant == "keras" else measure_one(
            args.one, args.variant)
        print(json.dumps(one))
        return 0
    names = [w for w in args.workloads.split(",") if w]
    bad = [w for w in names if w not in WORKLOADS]
    if bad:
        p.error(f"--workloads: got {bad}; expected names from {', '.join(WORKLOADS)}")
    variants = ["default"] + ["isa-check"] * args.isa_check + (
        ["python-wrapper"] * args.python_wrapper) + ["pch"] * args.pch
    info = common.system_info(args.threads, keras=not args.no_keras)
    rows = []
    for name in names:
        for variant in variants:
            with tempfile.TemporaryDirectory() as cache:  # empty: a cold start
                cold = run(name, cache, variant, args.threads)  # fills the caches
                warm = run(name, cache, variant, args.threads)
            rows.append([name, f"steadygrad {cold['engine']} ({variant})",
                         f"{cold['compile_s']:.1f}", f"{cold['trace_cpu']:.1f}",
                         f"{cold['python_cpu']:.1f}", f"{cold['compiler_cpu']:.1f}",
                         f"{warm['compile_s']:.2f}", f"{1000 * cold['calls_s'][2]:.1f}",
                         f"{1000 * cold['calls_s'][3]:.2f}"])
            print(rows[-1], flush=True)
        if name != "tiny" and not args.no_keras:
            with tempfile.TemporaryDirectory() as cache:
                keras = run(name, cache, "keras", args.threads)
            rows.append([name, "Keras 3 on JAX (jit)", f"{keras['compile_s']:.1f}", "—",
                         f"{keras['cpu']:.1f} (all)", "—", "—", "—", "—"])
            print(rows[-1], flush=True)
    info["load_after"] = common.load_average()
    body = render(info, rows)
    print("\n" + body)
    if args.write:
        print(f"wrote {common.write_section(SECTION, body)}")
    return 0


def render(info: dict[str, Any], rows: list[list[str]]) -> str:
    """The ``docs/benchmarks.md`` section: table, what the columns mean, environment."""
    table = common.markdown_table(
        ["workload", "step", "cold compile s", "trace CPU s", "Python CPU s",
         "C++ compiler CPU s", "warm compile s", "partial batch ms", "next step ms"], rows)
    note = common.load_note(info)
    return "\n".join([
        "Measured by `benchmarks/compile_time.py` (issue 20). Each figure comes from a fresh "
        "process. steadygrad: the step built and called as `fit(compile=True)` does (batch "
        f"{BATCH}, then a partial batch of {PARTIAL} rows); cold = Inductor's caches in a new "
        "empty folder (`TORCHINDUCTOR_CACHE_DIR` and `TMPDIR`: no graph, kernel or "
        "precompiled-header cache), warm = the same graph in a new process on the caches "
        "the cold run filled; compile seconds are what `history.compile_seconds` counts "
        "(wall). CPU seconds of the cold compile: `make_fx` tracing, the rest of the Python "
        "side (AOT autograd, Inductor lowering, code generation), the C++ compiler processes. "
        "Keras 3 on JAX: the wall time of its first `fit` on one full and one partial batch "
        "(XLA compiles both; JAX's persistent cache is off, its default) and the CPU seconds "
        "of all the process's threads.",
        "",
        table,
        "",
        "- `isa-check` rows: with Inductor's per-ISA probe check, which the flat step skips "
        "with GCC >= 11 / Clang >= 12; `python-wrapper` rows: without Inductor's C++ wrapper; "
        "`pch` rows: with Inductor's precompiled header, which the flat step turns off.",
        "- partial batch ms: the partial batch's step (eager, with the flat update: no graph is "
        "compiled for it); next step ms: the compiled step after it.",
        *([f"- {note}"] if note else []),
        "",
        *common.environment(info),
    ])


if __name__ == "__main__":
    sys.exit(main())
