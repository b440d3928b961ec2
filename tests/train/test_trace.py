"""Tracing a step without Dynamo: what the trace depends on, and the compiled function.

Oracles: the same function run eagerly (``compile=False``), torch's own module state changes,
and the tracer's documented refusal of data-dependent Python control flow.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from steadygrad.train._flat.trace import module_state, trace_and_compile


def test_module_state_sees_mode_scalar_attributes_hooks_and_replaced_tensors() -> None:
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Dropout(0.5))
    base = module_state(model)
    changes = [
        (lambda: model[1].eval(), lambda: model[1].train()),
        (lambda: setattr(model[2], "p", 0.1), lambda: setattr(model[2], "p", 0.5)),
        (lambda: setattr(model[1], "momentum", None), lambda: setattr(model[1], "momentum", 0.1)),
    ]
    for change, undo in changes:
        change()
        assert module_state(model) != base
        undo()
        assert module_state(model) == base
    handle = model[0].register_forward_hook(lambda *a: None)
    assert module_state(model) != base
    handle.remove()
    glob = nn.modules.module.register_module_forward_pre_hook(lambda *a: None)
    assert module_state(model) != base
    glob.remove()
    assert module_state(model) == base
    weight = model[0].weight
    model[0].weight = nn.Parameter(weight.detach().clone())  # same values, another tensor
    assert module_state(model) != base
    model[0].weight = weight
    model[1].running_mean = model[1].running_mean.clone()
    assert module_state(model) != base


def _step(x: torch.Tensor, tree: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    w, m = tree
    loss = ((x @ w) ** 2).mean()
    m.mul_(0.9).add_(w, alpha=0.1)  # state updated in place, as an optimizer's moment
    w.sub_(0.5 * x.mean(0))
    return (loss,)


@pytest.mark.slow
def test_traced_function_equals_the_eager_one_and_updates_the_bound_tensors() -> None:
    torch.manual_seed(0)
    xs = [torch.randn(4, 3) for _ in range(3)]
    eager_tree = [torch.randn(3), torch.zeros(3)]
    traced_tree = [t.clone() for t in eager_tree]
    eager = trace_and_compile(_step, (xs[0],), (eager_tree,), None, compile=False)
    traced = trace_and_compile(_step, (xs[0],), (traced_tree,), {"cpp_wrapper": True})
    assert traced_tree[1].abs().sum() == 0  # tracing ran on fake tensors: nothing mutated
    for x in xs:
        torch.testing.assert_close(traced(x)[0], eager(x)[0])
    for a, b in zip(traced_tree, eager_tree, strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.slow
def test_tracing_refuses_python_branching_on_tensor_values() -> None:
    def branchy(x: torch.Tensor, tree: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        return (x * 2,) if float(x.sum()) > 0 else (x,)

    with pytest.raises(Exception, match=r"(?i)data"):
        trace_and_compile(branchy, (torch.ones(2),), ([],), None)
