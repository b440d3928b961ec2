"""Pure, fused reductions that turn one sampled step's tensors into a few numbers per layer.

The monitor stacks the same-shape tensors its hooks caught (``(layers, samples, units)``) and
gets back a small on-device tensor per step: a handful of whole-stack tensor ops (moments,
counts, norms), so the cost does not grow with the number of Python-level ops per layer;
nothing calls ``.item()``.

Example:
    >>> import torch
    >>> x = torch.tensor([[[0.0, 2.0], [0.0, 2.0]], [[1.0, -1.0], [1.0, -1.0]]])
    >>> stack_stats(x, n_act=2).view(-1, 2).tolist()  # sums, norms, non-finite, |sign|
    [[4.0, 0.0], [2.828..., 2.0], [0.0, 0.0], [1.414..., 2.0]]
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

__all__ = [
    "EXACT_F32_WIDTH",
    "UPDATE_SAMPLE",
    "accumulation",
    "depth_slope",
    "histogram_range",
    "moments",
    "nonfinite_units",
    "norms_of",
    "persistent_onset",
    "row_norms",
    "saturation_params",
    "stack_stats",
    "unit_view",
    "weight_sample",
]

def histogram_range(bounds: tuple[float, float] | None) -> tuple[float, float]:
    """The fixed histogram range for an activation: its asymptotes, else ``[-4, 4]``.

    >>> histogram_range((0.0, 1.0)), histogram_range(None)
    ((0.0, 1.0), (-4.0, 4.0))
    """
    return (float(bounds[0]), float(bounds[1])) if bounds is not None else (-4.0, 4.0)


def unit_view(t: torch.Tensor, unit_dim: int) -> torch.Tensor:
    """``t`` as a 2-D ``(samples, units)`` tensor: units on ``unit_dim`` (1 = channels, -1 = last).

    >>> unit_view(torch.zeros(2, 3, 4, 4), 1).shape, unit_view(torch.zeros(5), -1).shape
    (torch.Size([32, 3]), torch.Size([5, 1]))
    """
    if t.dim() == 2:
        return t
    if t.dim() <= 1:
        return t.reshape(-1, 1)
    if unit_dim == 1 and t.dim() > 2:
        t = t.movedim(1, -1)
    return t.reshape(-1, t.shape[-1])


def saturation_params(bounds: tuple[float, float], margin: float) -> tuple[float, float]:
    """``(centre, half_width)``: an output ``a`` is saturated when ``|a - centre| >= half_width``.

    The half width leaves ``margin * (high - low)`` to each asymptote.

    >>> saturation_params((0.0, 1.0), 0.01)
    (0.5, 0.49)
    """
    lo, hi = float(bounds[0]), float(bounds[1])
    return (lo + hi) / 2, (hi - lo) / 2 - margin * (hi - lo)


def nonfinite_units(x: torch.Tensor) -> torch.Tensor:
    """Per layer of a ``(layers, samples, units)`` stack, the number of units with a NaN/Inf.

    >>> x = torch.zeros(2, 3, 2); x[1, 0, 1] = float("nan"); x[1, 2, 1] = float("inf")
    >>> nonfinite_units(x).tolist()
    [0.0, 1.0]
    """
    return torch.isfinite(x).logical_not_().any(1).sum(1, dtype=x.dtype)


def stack_stats(
    x: torch.Tensor,
    n_act: int,
    saturation: tuple[torch.Tensor, torch.Tensor] | None = None,
    scratch: torch.Tensor | None = None,
    *,
    out: torch.Tensor | None = None,
    shapes: Sequence[tuple[int, int]] | None = None,
) -> torch.Tensor:
    """Per-layer reductions of one stack of activations *and* gradients, in few memory passes.

    Sums, norms, non-finite units, non-zero and saturated counts in few passes over the stack
    (on CPU the cost is memory traffic once the per-op overhead is amortized over the
    layers): the first ``n_act`` layers of ``x`` are activations, the rest gradients of
    the same shape. A 4-D ``x`` is a batch of such stacks, ``(checks, layers, samples,
    units)``, reduced by the same ops (the monitor reduces several sampled steps at once).
    Every reduction runs along contiguous ``(layers, samples * units)`` rows,
    accumulated as :func:`accumulation` says: in float32 on CPU (3x faster than converting to
    float64; torch sums in cascades, so the relative error stays ~1e-7), a row's norm redone in
    float64 when its float32 norm is not finite (a float32 sum of squares of finite entries
    overflows from ``|x| ~ 1e19``: then a finite layer would read as non-finite), so that a
    row's numbers do not depend on the other rows or checks reduced with it; in float64 on an
    accelerator, where nothing may synchronize. Sums of squares come out as L2 norms (``‖x‖``,
    one read, no temporary: the host squares them), the non-zero count as ``‖sign(x)‖`` (its
    square is the count, exact after rounding). A NaN/Inf entry makes its layer's ``‖x‖``
    non-finite, so the per-unit non-finite count (:func:`nonfinite_units`) is only computed
    when a norm is non-finite: on CPU reading that one scalar costs a microsecond (no
    asynchronous queue to stall); on an accelerator the count is always computed.

    Args:
        x: contiguous ``(layers, samples, units)`` stack, activations first, or a contiguous
            ``(checks, layers, samples, units)`` batch of stacks.
        n_act: how many leading layers are activations (the others are gradients).
        saturation: ``(centre, half_width)`` of shape ``(n_sat, 1, 1)`` for the first
            ``n_sat`` activation layers (:func:`saturation_params`), or None.
        scratch: a contiguous tensor of at least ``checks * n_act * samples * units``
            entries of ``x``'s dtype to hold temporaries (allocated when None).
        out: where to write the result (e.g. a slice of a preallocated record, or the
            ``(checks, columns)`` block of a table), or None.
        shapes: for a zero-padded ``(layers, 1, width)`` stack of differently shaped layers,
            each layer's ``(samples, units)`` (it starts its row); None for a plain stack.

    Returns:
        The concatenated per-layer ``sum`` and ``‖x‖`` (``layers`` each), the number of units
        with a non-finite entry (``layers``), then for the activation layers ``‖sign(x)‖``
        (``n_act``) and the saturated count of the ``n_sat`` saturating ones; for a batch,
        one such row per check.

    >>> x = torch.tensor([[[0.0, 1.0], [0.0, 3.0]], [[3.0, float("nan")], [4.0, 0.0]]])
    >>> flat = stack_stats(x, 1, (torch.tensor([[[0.0]]]), torch.tensor([[[0.98]]])))
    >>> [round(v, 4) for v in flat.tolist()]  # sqrt(10) = 3.1623, sqrt(2) = 1.4142
    [4.0, nan, 3.1623, nan, 0.0, 1.0, 1.4142, 2.0]
    >>> both = stack_stats(torch.stack([x, x.nan_to_num(0.0)]), 1)  # two checks at once
    >>> both.shape, both[0].nan_to_num(-1).tolist() == stack_stats(x, 1).nan_to_num(-1).tolist()
    (torch.Size([2, 7]), True)
    """
    batched = x.dim() == 4
    xb = x if batched else x.unsqueeze(0)
    checks, layers = xb.shape[0], xb.shape[1]
    rows = xb.view(checks * layers, -1)
    f64 = torch.float64  # finite float32/16 entries can neither overflow a float64 sum nor norm
    acc = accumulation(rows)
    norms, finite = _row_norms(rows)
    sums = rows.sum(1, dtype=acc)
    dt = norms.dtype  # float64 after a redo: the other parts follow (exactly)
    if finite:
        bad = norms.new_zeros(checks * layers)
    else:
        if dt != acc:  # a sum is redone like a norm: per row, where float32 is not finite
            sums = _redo_nonfinite(sums, rows.sum(1, dtype=f64))
        if shapes is None:  # exact count
            bad = nonfinite_units(xb.view(checks * layers, *xb.shape[2:])).to(f64)
        else:
            bad = torch.cat([nonfinite_units(rows[j, : s * u].view(1, s, u))
                             for j in range(checks * layers)
                             for s, u in (shapes[j % layers],)]).to(f64)
    parts = [sums.to(dt).view(checks, layers), norms.view(checks, layers),
             bad.to(dt).view(checks, layers)]
    if n_act:
        cells = xb.shape[2:]
        size = checks * n_act * math.prod(cells)
        tmp = (torch.empty(size, dtype=x.dtype, device=x.device) if scratch is None
               else scratch.view(-1)[:size]).view(checks, n_act, *cells)
        torch.sign(xb[:, :n_act], out=tmp)
        parts.append(torch.linalg.vector_norm(tmp.view(checks, n_act, -1), dim=2, dtype=acc)
                     .to(dt))
        if saturation is not None:
            n_sat = saturation[0].shape[0]
            t = tmp[:, :n_sat]
            torch.sub(xb[:, :n_sat], saturation[0], out=t)
            parts.append(t.abs_().sub_(saturation[1]).clamp_(min=0).sign_()
                         .sum((2, 3), dtype=acc).to(dt))
    if out is not None:  # torch.cat would restride a strided ``out`` (a table's columns)
        if out.is_contiguous():
            torch.cat(parts, 1, out=out.view(checks, -1))
        else:
            out.copy_(torch.cat(parts, 1))
        return out
    flat = torch.cat(parts, 1).to(f64)
    return flat if batched else flat[0]


EXACT_F32_WIDTH = 2**20
"""Widest row whose counts a float32 reduction keeps exact (``‖sign(x)‖²`` rounds back to the
count below ~4M entries; a safety factor of 4)."""


def accumulation(t: torch.Tensor) -> torch.dtype:
    """The dtype in which :func:`stack_stats` and the weight norms reduce the rows of ``t``:
    float32 for CPU float32/float16/bfloat16 rows up to :data:`EXACT_F32_WIDTH` entries (the
    caller redoes a non-finite result in float64), float64 otherwise (and on accelerators,
    where a float32 overflow could not be checked without a synchronization).

    >>> accumulation(torch.zeros(3, 8)), accumulation(torch.zeros(3, 8, dtype=torch.float64))
    (torch.float32, torch.float64)
    """
    small = t.dim() < 2 or t[0].numel() <= EXACT_F32_WIDTH
    if t.device.type == "cpu" and t.dtype != torch.float64 and small:
        return torch.float32
    return torch.float64


def row_norms(rows: torch.Tensor) -> torch.Tensor:
    """The L2 norm of each row of the 2-D ``rows``, in the :func:`accumulation` dtype; a row
    whose float32 norm is not finite is redone in float64 (a float32 overflow, or a real
    NaN/Inf entry that float64 then confirms), so each row's norm does not depend on the
    other rows.

    >>> n = row_norms(torch.tensor([[3.0, 4.0], [2.0**100, 2.0**100]]))  # 2^200 > float32 max
    >>> n.dtype, n.tolist() == [5.0, 2.0**100 * 2**0.5]
    (torch.float64, True)
    """
    return _row_norms(rows)[0]


def _row_norms(rows: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """:func:`row_norms` and whether they are known finite: on CPU every norm is checked (one
    scalar read); on an accelerator nothing is read and the flag is False."""
    acc = accumulation(rows)
    norms = torch.linalg.vector_norm(rows, dim=1, dtype=acc)
    if rows.device.type != "cpu":
        return norms, False
    if math.isfinite(float(norms.sum())):
        return norms, True
    if acc == torch.float64:
        return norms, False
    norms = _redo_nonfinite(norms, torch.linalg.vector_norm(rows, dim=1, dtype=torch.float64))
    return norms, bool(norms.isfinite().all())


def _redo_nonfinite(low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """``low`` in float64 where it is finite, else ``high`` (its float64 redo).

    >>> _redo_nonfinite(torch.tensor([1.5, float("inf")]), torch.tensor([1.0, 3.0])).tolist()
    [1.5, 3.0]
    """
    return torch.where(low.isfinite(), low.to(torch.float64), high.to(torch.float64))


def norms_of(rows: Sequence[torch.Tensor], tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """The row norms of each 2-D tensor in ``rows`` and the norm of each tensor in
    ``tensors``, concatenated, in the :func:`accumulation` dtype (float32 on CPU) with one
    finiteness check (one scalar read); a norm that is not finite in float32 is redone in
    float64, as :func:`row_norms` does for one tensor.

    >>> norms_of([torch.tensor([[3.0, 4.0]])], [torch.tensor([2.0**100, 2.0**100])]).tolist()
    [5.0, 1.7927286...e+30]
    >>> norms_of([torch.tensor([[3.0, 4.0]])], []).dtype
    torch.float32
    """
    f64 = torch.float64
    every = [*rows, *tensors]
    cpu = all(t.device.type == "cpu" for t in every)
    acc = torch.float32 if cpu and all(
        t.dtype != f64 for t in every) and all(accumulation(r) != f64 for r in rows) else f64

    def compute(dtype: torch.dtype) -> torch.Tensor:
        parts = [torch.linalg.vector_norm(r, dim=1, dtype=dtype) for r in rows]
        if tensors:
            parts.append(torch.stack(torch._foreach_norm(list(tensors), 2, dtype=dtype)))
        if len(parts) == 1:
            return parts[0]
        return torch.cat(parts) if parts else torch.zeros(0, dtype=dtype)

    out = compute(acc)
    if acc != f64 and not math.isfinite(float(out.sum())):
        out = _redo_nonfinite(out, compute(f64))
    return out


def moments(total: float, total_sq: float, n: float) -> tuple[float, float]:
    """Mean and population standard deviation from a sum and a sum of squares.

    >>> moments(6.0, 14.0, 3)  # values 1, 2, 3
    (2.0, 0.816...)
    """
    if n <= 0:
        return math.nan, math.nan
    mean = total / n
    return mean, math.sqrt(max(total_sq / n - mean * mean, 0.0))


UPDATE_SAMPLE = 4096
"""Weight entries per layer (a fixed leading slice) used for the update/weight ratio."""


def weight_sample(w: torch.Tensor, size: int = UPDATE_SAMPLE) -> torch.Tensor:
    """The fixed leading slice of ``w`` (flattened) on which the update ratio is measured.

    A contiguous view, so snapshotting it copies at most ``size`` numbers per layer.

    >>> weight_sample(torch.arange(6.0).reshape(2, 3), size=4).tolist()
    [0.0, 1.0, 2.0, 3.0]
    """
    return w.detach().reshape(-1)[:size]


def depth_slope(log_values: Sequence[float]) -> float:
    """Least-squares slope of ``log_values`` against depth index ``0, 1, ...`` (NaNs skipped).

    Applied to ``log10`` of the per-layer back-propagated gradient RMS, the slope is the
    number of orders of magnitude gained (positive) or lost (negative) per layer going **up**
    the network; a geometric decay towards the input (vanishing) gives a positive slope.

    >>> round(depth_slope([-3.0, -2.0, -1.0]), 3)
    1.0
    >>> import math; math.isnan(depth_slope([1.0]))
    True
    """
    y = np.asarray(log_values, dtype=float)
    x = np.arange(len(y), dtype=float)
    ok = np.isfinite(y)
    if ok.sum() < 2:
        return math.nan
    return float(np.polyfit(x[ok], y[ok], 1)[0])


def persistent_onset(flags: Sequence[bool], m: int) -> int | None:
    """Index of the first check that starts a run of ``m`` consecutive True flags, else None.

    >>> persistent_onset([True, False, True, True, True], 3)
    2
    >>> persistent_onset([True, True], 3) is None
    True
    """
    run = 0
    for i, f in enumerate(flags):
        run = run + 1 if f else 0
        if run >= m:
            return i - m + 1
    return None
