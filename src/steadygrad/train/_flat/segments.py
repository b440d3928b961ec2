"""How the flat step groups parameters for its update, and the update itself.

The flat step (:mod:`steadygrad.train._flat.flat`) keeps all parameters in one 1-D buffer. A
*segment* is a slice of it updated by one elementwise kernel: either one large parameter
(:data:`PER_TENSOR_MIN` elements or more), updated straight from its own gradient, or all the
small parameters of an optimizer group, updated over their concatenated gradients.
:func:`plan_segments` lays the buffer out (within each group the small parameters first, so
that they are contiguous), :func:`segment_grads` builds each segment's gradient and
:func:`apply_update` applies an optimizer's flat rule to every segment.

Example:
    >>> order, spans, segments = plan_segments([[3, 40000, 2]], per_tensor_min=PER_TENSOR_MIN)
    >>> order, [(s.start, s.stop, s.members) for s in segments]
    ([(0, 0), (0, 2), (0, 1)], [(0, 5, (0, 1)), (5, 40005, (2,))])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from steadygrad.train._flat.rules import FlatRule

__all__ = ["PER_TENSOR_MIN", "Segment", "apply_update", "plan_segments", "segment_grads"]

Tensor = torch.Tensor

PER_TENSOR_MIN = 16384
"""A parameter with at least this many elements is updated by its own kernel, straight from its
gradient; smaller ones share one update over their concatenated gradients. Measured in one
session (compiled step, 1 thread, interleaved, median of 12 x 400 steps): on the shallow
benchmark MLP (SGD) updating the 784x300 and 300x100 weights on their own instead of through
the concatenation took the step from 0.92 to 0.84 ms; on the deep net (Nadam) giving the
784x100 weight its own update changed nothing (2.26 vs 2.24 ms), and updating all 62 small
tensors separately was about 4% slower than one update over their concatenation."""


@dataclass(frozen=True)
class Segment:
    """Parameters updated together: optimizer group ``group``, the flat slice
    ``[start, stop)`` they occupy, their indices in the step's parameter list.

    >>> Segment(0, 0, 12, (0, 1)).stop
    12
    """

    group: int
    start: int
    stop: int
    members: tuple[int, ...]


def segment_grads(segments: list[Segment], grads: list[Tensor]) -> list[Tensor]:
    """Each segment's 1-D gradient: a large parameter's own (flattened), the concatenation of
    the small ones'.

    >>> segment_grads([Segment(0, 0, 3, (0, 1)), Segment(0, 3, 7, (2,))],
    ...               [torch.ones(1), torch.zeros(2), torch.ones(2, 2)])
    [tensor([1., 0., 0.]), tensor([1., 1., 1., 1.])]
    """
    return [grads[seg.members[0]].reshape(-1) if len(seg.members) == 1 else
            torch.cat([grads[j].reshape(-1) for j in seg.members]) for seg in segments]


def apply_update(rule: FlatRule, groups: list[dict[str, Any]], segments: list[Segment],
                 params: list[Tensor], grads: list[Tensor], state: list[dict[str, Tensor]],
                 scalars: list[dict[str, Tensor]], coef: Tensor, ok: Tensor | None) -> None:
    """Apply ``rule`` to every segment, in place.

    ``params[i]``, ``grads[i]`` and ``state[i]`` are segment ``i``'s 1-D parameter slice,
    gradient and per-element state slices. ``coef[r]`` holds group ``r``'s coefficients
    followed by the new values of its scalar state; where ``ok`` is False (a 0-dim bool
    tensor) every value keeps its old content. Each segment's slice is a separate tensor (a
    graph input when compiled): an in-place write to a slice taken *inside* the graph was
    functionalized into a scatter of the whole buffer (1.5-8x slower).

    >>> from steadygrad.train._flat.rules import rule_for
    >>> p = torch.ones(3)
    >>> opt = torch.optim.SGD([torch.nn.Parameter(p.clone())], lr=0.5)
    >>> group, seg = dict(opt.param_groups[0]), Segment(0, 0, 3, (0,))
    >>> coef = torch.tensor([rule_for(opt).coefficients(group, {}, 1)[0]])
    >>> apply_update(rule_for(opt), [group], [seg], [p], [torch.ones(3)], [{}], [{}], coef, None)
    >>> p.tolist()
    [0.5, 0.5, 0.5]
    >>> apply_update(rule_for(opt), [group], [seg], [p], [torch.ones(3)], [{}], [{}], coef,
    ...              torch.tensor(False))
    >>> p.tolist()  # not ok: unchanged
    [0.5, 0.5, 0.5]
    """
    nc = coef.shape[1] - len(rule.scalars)
    for seg, p, g, st in zip(segments, params, grads, state, strict=True):
        new = rule.update(groups[seg.group], p, g, st, coef[seg.group, :nc])
        for k, v in new.items():
            dst = p if k == "param" else st[k]
            dst.copy_(v if ok is None else torch.where(ok, v, dst))
    for r in sorted({seg.group for seg in segments}):
        for j, k in enumerate(rule.scalars):
            dst = scalars[r][k]
            v = coef[r, nc + j].to(dst.dtype)
            dst.copy_(v if ok is None else torch.where(ok, v, dst))


def plan_segments(group_sizes: list[list[int]], per_tensor_min: int = PER_TENSOR_MIN,
                  ) -> tuple[list[tuple[int, int]], list[tuple[int, int]], list[Segment]]:
    """Lay out the flat buffer for parameters of the given sizes (one list per group).

    Returns ``(order, spans, segments)``: ``order[i] = (group, index in group)`` of the
    ``i``-th parameter in the buffer, ``spans[i]`` its ``(start, stop)`` there, and the
    segments (``members`` index into ``order``).

    >>> order, spans, segs = plan_segments([[5, 20], [7]], per_tensor_min=10)
    >>> spans, [(s.group, s.members) for s in segs]
    ([(0, 5), (5, 25), (25, 32)], [(0, (0,)), (0, (1,)), (1, (2,))])
    """
    order: list[tuple[int, int]] = []
    for r, sizes in enumerate(group_sizes):
        order += [(r, k) for k, n in enumerate(sizes) if n < per_tensor_min]
        order += [(r, k) for k, n in enumerate(sizes) if n >= per_tensor_min]
    spans: list[tuple[int, int]] = []
    a = 0
    for r, k in order:
        spans.append((a, a + group_sizes[r][k]))
        a = spans[-1][1]
    segments: list[Segment] = []
    for r, sizes in enumerate(group_sizes):
        mine = [i for i, (g, _) in enumerate(order) if g == r]
        small = [i for i in mine if sizes[order[i][1]] < per_tensor_min]
        if small:
            segments.append(Segment(r, spans[small[0]][0], spans[small[-1]][1], tuple(small)))
        segments += [Segment(r, *spans[i], (i,)) for i in mine
                     if sizes[order[i][1]] >= per_tensor_min]
    return order, spans, segments
