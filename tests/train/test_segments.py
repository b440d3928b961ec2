"""The flat buffer's layout and segment update: properties of the plan and the update against
torch's own optimizer."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from steadygrad.train._flat.rules import rule_for
from steadygrad.train._flat.segments import apply_update, plan_segments, segment_grads


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(1, 50), max_size=6), min_size=1, max_size=4),
       st.integers(1, 60))
def test_plan_partitions_the_buffer_into_contiguous_segments(groups, threshold) -> None:
    order, spans, segments = plan_segments(groups, threshold)
    # every parameter exactly once, each group's parameters together
    assert sorted(order) == [(r, k) for r, sizes in enumerate(groups) for k in range(len(sizes))]
    assert [r for r, _ in order] == sorted(r for r, _ in order)
    # spans tile [0, total) in order, each as long as its parameter
    assert [b - a for a, b in spans] == [groups[r][k] for r, k in order]
    assert all(spans[i][1] == spans[i + 1][0] for i in range(len(spans) - 1))
    # segments cover every parameter once; a large one alone, the small ones of a group in one
    members = sorted(i for s in segments for i in s.members)
    assert members == list(range(len(order)))
    for s in segments:
        sizes = [groups[s.group][order[i][1]] for i in s.members]
        assert all(order[i][0] == s.group for i in s.members)
        assert (s.start, s.stop) == (spans[s.members[0]][0], spans[s.members[-1]][1])
        if len(s.members) > 1 or sizes[0] < threshold:
            assert all(n < threshold for n in sizes)
        small = [k for k, n in enumerate(groups[s.group]) if n < threshold]
        if sizes[0] < threshold:
            assert len(s.members) == len(small)


def test_segment_update_equals_torch_sgd_with_momentum() -> None:
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(n)) for n in (3, 30, 4)]
    grads = [torch.randn_like(p) for p in params]
    opt = torch.optim.SGD(params, lr=0.1, momentum=0.9)
    for p, g in zip(params, grads, strict=True):
        p.grad = g.clone()
    flat_before = [p.detach().clone() for p in params]
    opt.step()  # torch creates the momentum buffers from this step
    order, spans, segments = plan_segments([[3, 30, 4]], per_tensor_min=10)
    buf = torch.cat([flat_before[k] for _, k in order])
    mom = torch.zeros_like(buf)
    rule, group = rule_for(opt), dict(opt.param_groups[0])
    coefs, _ = rule.coefficients(group, {}, 1)
    seg_p = [buf[s.start:s.stop] for s in segments]
    seg_s = [{"momentum_buffer": mom[s.start:s.stop]} for s in segments]
    ordered = [grads[k] for _, k in order]
    apply_update(rule, [group], segments, seg_p, segment_grads(segments, ordered), seg_s, [{}],
                 torch.tensor([coefs]), None)
    for (_, k), (a, b) in zip(order, spans, strict=True):
        torch.testing.assert_close(buf[a:b], params[k].detach())
        torch.testing.assert_close(mom[a:b], opt.state[params[k]]["momentum_buffer"])
