"""The packed per-check record the monitor keeps on the device, and its host-side decoding.

Each sampled step becomes one :class:`Check`: Python-side row indices and element counts, and a
single packed float32 tensor (per activation row ``[sum, sum_sq, nonfinite_units, nonzero,
saturated, dead]``, per gradient row ``[sum_sq, nonfinite_units]``, per weight ``[rms,
grad_norm, update_ratio]``, then ``[input_mean_abs, input_std, loss]``).

Example:
    >>> import numpy as np, torch
    >>> c = Check(0, (0,), (4,), (2,), (0,), (4,), (0,), (4,),
    ...           torch.tensor([4., 10., 0., 2., 2., 0., 25., 0., 1., 2., 0.1, 0., 1., 2.3]))
    >>> s = HealthSeries.empty(["fc"], [0]); g = np.zeros(1); u = {}
    >>> decode([c], c.packed.numpy().astype(float), s, g, u, {0})
    >>> [round(float(x), 3) for x in (s.values["act_mean"][0, 0], s.values["grad_rms"][0, 0],
    ...                                s.loss[0])]
    [1.0, 2.5, 2.3]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from steadygrad.diagnostics.series import HealthSeries
from steadygrad.diagnostics.stats import moments

__all__ = ["Check", "decode"]


@dataclass(frozen=True)
class Check:
    """One sampled step: row indices, element counts, and the packed on-device numbers.

    >>> Check(3, (), (), (), (), (), (), (), torch.zeros(3)).step
    3
    """

    step: int
    act_rows: tuple[int, ...]
    act_numel: tuple[int, ...]
    act_units: tuple[int, ...]
    grad_rows: tuple[int, ...]
    grad_numel: tuple[int, ...]
    weight_rows: tuple[int, ...]
    weight_numel: tuple[int, ...]
    packed: torch.Tensor


def decode(checks: Sequence[Check], flat: np.ndarray, s: HealthSeries, gsq: np.ndarray,
           units: dict[int, int], relu_rows: set[int]) -> None:
    """Decode the concatenated packed tensors of ``checks`` into ``s`` (in place).

    Args:
        checks: the checks, in order.
        flat: their ``packed`` tensors concatenated, on the host.
        s: the series to fill (from :meth:`HealthSeries.empty`).
        gsq: per-check squared global gradient norm (filled).
        units: filled with the number of units of each row.
        relu_rows: rows whose activation is a rectifier (only those get ``dead_frac``).

    >>> c = Check(5, (), (), (), (), (), (), (), torch.tensor([0.1, 1.0, 0.7]))
    >>> s = HealthSeries.empty([], [5]); decode([c], c.packed.numpy(), s, np.zeros(1), {}, set())
    >>> round(float(s.loss[0]), 3), round(float(s.input_std[0]), 3)
    (0.7, 1.0)
    """
    v = s.values
    pos = 0
    for k, c in enumerate(checks):
        na, ng, nw = len(c.act_rows), len(c.grad_rows), len(c.weight_rows)
        for j, (r, n, u) in enumerate(zip(c.act_rows, c.act_numel, c.act_units,
                                          strict=True)):
            tot, sq, bad, nonzero, sat, dead = flat[pos + 6 * j: pos + 6 * j + 6]
            v["act_mean"][k, r], v["act_std"][k, r] = moments(tot, sq, n)
            v["zero_frac"][k, r] = (n - nonzero) / n
            v["sat_frac"][k, r] = sat / n
            v["act_nonfinite"][k, r] = bad
            if r in relu_rows:
                v["dead_frac"][k, r] = dead / u  # "silent" only means dead for rectifiers
            units[r] = u
        pos += 6 * na
        for j, (r, n) in enumerate(zip(c.grad_rows, c.grad_numel, strict=True)):
            sq, bad = flat[pos + 2 * j: pos + 2 * j + 2]
            v["grad_rms"][k, r] = math.sqrt(sq / n)
            v["grad_nonfinite"][k, r] = bad
        pos += 2 * ng
        w = flat[pos:pos + 3 * nw].reshape(nw, 3)
        pos += 3 * nw
        for j, (r, n) in enumerate(zip(c.weight_rows, c.weight_numel, strict=True)):
            if r < 0:
                continue  # a weighted leaf that did not run in the forward pass
            v["weight_rms"][k, r] = w[j, 0]
            v["weight_grad_norm"][k, r] = w[j, 1]
            v["weight_grad_rms"][k, r] = w[j, 1] / math.sqrt(n)
            v["update_ratio"][k, r] = w[j, 2]
        gsq[k] = float(np.nansum(w[:, 1] ** 2)) if nw else math.nan
        s.input_mean_abs[k], s.input_std[k] = flat[pos], flat[pos + 1]
        s.loss[k] = flat[pos + 2]
        pos += 3
