"""A compiled run's set-up (Dynamo reset, denormal flushing) is undone afterwards."""

from __future__ import annotations

import torch

from steadygrad.train.compiled import begin_compiled_run, end_compiled_run, flushes_denormals


def test_compiled_run_flushes_denormals_on_cpu_and_restores() -> None:
    before = flushes_denormals()
    try:
        for start in (False, True):
            torch.set_flush_denormal(start)
            previous = begin_compiled_run(torch.device("cpu"))
            assert flushes_denormals()  # subnormal results are flushed during the run
            end_compiled_run(previous)
            assert flushes_denormals() is start
    finally:
        torch.set_flush_denormal(before)


def test_compiled_run_resets_dynamo_so_later_runs_still_compile() -> None:
    """Without the reset, run 3+ of the same closure exceeds a recompile limit of 2 and runs
    uncompiled (Dynamo's silent fallback); with it, every run compiles its own graph."""
    import torch._dynamo
    from torch._dynamo.utils import counters

    def make(k: float):  # a new closure over the same code object, as each fit builds
        return torch.compile(lambda t: t * k, backend="eager")

    graphs = {}
    for reset in (False, True):
        torch._dynamo.reset()
        counters.clear()
        with torch._dynamo.config.patch(recompile_limit=2):
            for i in range(4):
                if reset:
                    assert begin_compiled_run(torch.device("meta")) is None  # not CPU: no FTZ
                assert make(i + 0.5)(torch.ones(1)).item() == i + 0.5
        graphs[reset] = counters["stats"]["unique_graphs"]
    assert graphs == {False: 2, True: 4}
