"""The compiled step's single loss+gradient graph matches the eager step (torch autograd is the
oracle), and a compiled run's set-up (Dynamo reset, denormal flushing) is undone afterwards."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from steadygrad.nn import regularizers
from steadygrad.train.compiled import (
    begin_compiled_run,
    compiled_grads,
    end_compiled_run,
    flushes_denormals,
)
from steadygrad.train.step import build_step


def _bn_net(l2: float = 0.0) -> nn.Sequential:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8, bias=False), nn.BatchNorm1d(8), nn.ELU(),
                          nn.Linear(8, 3))
    if l2:
        regularizers.attach(model[0], l1=0.01, l2=l2)
    return model


def _batches(n: int = 6) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(10, 4, generator=g), torch.randint(0, 3, (10,), generator=g))
            for _ in range(n)]


@pytest.mark.parametrize("l2", [0.0, 0.05])
def test_functional_grads_equal_autograd_and_update_bn_buffers(l2: float) -> None:
    """Uncompiled, the same function: gradients, loss and BN running stats equal autograd's."""
    x, y = _batches(1)[0]
    pen = regularizers.penalty if l2 else None
    ours, ref = _bn_net(l2), _bn_net(l2)
    aux = compiled_grads(ours, nn.functional.cross_entropy, pen, compile=False)(x, y)
    out = ref(x)
    loss = nn.functional.cross_entropy(out, y)
    total = loss + regularizers.penalty(ref) if l2 else loss
    total.backward()
    torch.testing.assert_close(aux[1], loss.detach())
    torch.testing.assert_close(aux[-1], total.detach())
    assert len(aux) == (4 if l2 else 3)  # the step's forward contract
    for a, b in zip(ours.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-6, atol=1e-7)
    for a, b in zip(ours.buffers(), ref.buffers(), strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.slow
@pytest.mark.parametrize("l2", [0.0, 0.05])
def test_compiled_step_losses_match_eager_on_bn_net(l2: float) -> None:
    """build_step(compile=True) (one graph for loss + grads) follows the eager trajectory."""
    pen = regularizers.penalty if l2 else None
    runs = []
    for compile in (False, True):
        begin_compiled_run(torch.device("meta"))  # Dynamo reset only; no FTZ change
        model = _bn_net(l2)
        opt = torch.optim.NAdam(model.parameters(), lr=0.01, foreach=True)
        step = build_step(model, nn.functional.cross_entropy, opt, penalty=pen, compile=compile)
        losses = [step(x, y, t).loss for t, (x, y) in enumerate(_batches(3) * 3)]
        runs.append((losses, model))
    (eager, m_eager), (comp, m_comp) = runs
    assert comp == pytest.approx(eager, rel=1e-5)
    assert eager[6] < eager[0]  # it trained (same batch, two epochs later)
    for a, b in zip(m_eager.state_dict().values(), m_comp.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


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
