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


def test_an_eager_fit_on_cpu_flushes_denormals_during_training_and_restores() -> None:
    """Eager ``fit`` trains with denormals flushed (as compiled runs and XLA do), and the
    caller's setting is back afterwards; the premise: without flushing, 1e-38 / 10 is a
    non-zero subnormal on this CPU."""
    from steadygrad.train.callbacks import Callback
    from steadygrad.train.loop import fit

    seen: list[bool] = []

    class Probe(Callback):
        def on_batch_end(self, step: int, logs: dict) -> None:
            seen.append(flushes_denormals())

    before = flushes_denormals()
    try:
        torch.set_flush_denormal(False)
        assert (torch.tensor([1e-38]) / 10).item() > 0  # premise: subnormals survive
        x, y = torch.randn(64, 4), torch.randint(0, 2, (64,))
        history = fit(torch.nn.Linear(4, 2), (x, y), epochs=1, batch_size=16, verbose=0,
                      monitor=False, callbacks=[Probe()])
        assert history.params["engine"] == "eager"
        assert seen == [True] * 4  # every step of the run flushed
        assert not flushes_denormals()  # restored
    finally:
        torch.set_flush_denormal(before)
