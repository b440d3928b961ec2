"""The ``self_normalization`` rule: SELU stacks that drift away from mean 0 / std 1, with the
broken conditions of the self-normalizing fixed point (Klambauer et al. 2017): standardized
inputs, LeCun init, AlphaDropout, a plain sequential stack. A pure function of a
:class:`~steadygrad.diagnostics.series.HealthSeries` used by
:func:`steadygrad.diagnostics.rules.evaluate`; thresholds in ``docs/health-report.md``.

Example:
    >>> from steadygrad.diagnostics.series import LayerMeta
    >>> s = HealthSeries.empty(["a", "b"], steps=[0, 1, 2])
    >>> s.meta = [LayerMeta(i, n, "Linear", "selu", ("Linear", "SELU"), 8, 8, (-4.0, 4.0),
    ...                     ("Linear", "SELU")) for i, n in enumerate(s.layers)]
    >>> s.values["act_mean"][:] = 0.0
    >>> s.values["act_std"][:] = 5.0  # far from the fixed point's std 1
    >>> f = self_normalization(s, Thresholds(), True)
    >>> f.kind, f.layers, f.raised_step
    ('self_normalization', ('b',), 2)
"""

from __future__ import annotations

import math

import numpy as np

from steadygrad.diagnostics.progress import confirmed_onset
from steadygrad.diagnostics.remedies import REMEDIES
from steadygrad.diagnostics.series import HealthSeries
from steadygrad.diagnostics.thresholds import Finding, Thresholds
from steadygrad.diagnostics.thresholds import evidence_round as _r
from steadygrad.diagnostics.thresholds import gated_severity as _gated

__all__ = ["self_normalization"]


def self_normalization(s: HealthSeries, th: Thresholds, impaired: bool | None
                       ) -> Finding | None:
    """The ``self_normalization`` finding: in the deeper half of >= 2 SELU rows, ``|mean| >
    selu_mean`` or ``std`` outside ``[1/selu_std, selu_std]`` over ``persistence`` steps,
    naming the broken conditions of Klambauer et al. (2017).

    >>> s = HealthSeries.empty(["a", "b"], steps=[0, 1, 2])
    >>> self_normalization(s, Thresholds(), True) is None  # no SELU rows
    True
    """
    selu = [i for i, m in enumerate(s.meta) if m.activation == "selu"]
    if len(selu) < 2 or not s.checks:
        return None
    deep = selu[len(selu) // 2:]
    mean = s.values["act_mean"][:, deep]
    std = s.values["act_std"][:, deep]
    with np.errstate(invalid="ignore", divide="ignore"):
        drift = (np.abs(mean) > th.selu_mean) | (np.abs(np.log(std)) > math.log(th.selu_std))
    on = confirmed_onset([bool(np.any(d)) for d in drift], s.steps, th.persistence)
    if on is None:
        return None
    k0 = on[0]
    broken = []
    if (np.nanmean(s.input_mean_abs) > 0.5) or not (0.5 < np.nanmean(s.input_std) < 2.0):
        broken.append("standardized_inputs")
    gain = [s.values["weight_rms"][0, i] ** 2 * (s.meta[i].fan_in or math.nan) for i in selu]
    if any(not (0.5 < x < 2.0) for x in gain if math.isfinite(x)):
        broken.append("lecun_init")
    kinds = {k for i in selu for k in s.meta[i].member_kinds}
    if "Dropout" in kinds:
        broken.append("alpha_dropout")
    if kinds - {"Linear", "SELU", "AlphaDropout", "Dropout", "Flatten", "Identity"}:
        broken.append("sequential")
    remedies = tuple(r for r in REMEDIES["self_normalization"] if r.condition in broken) or \
        REMEDIES["self_normalization"]
    return Finding(
        "self_normalization", _gated(impaired), tuple(s.layers[i] for i in deep),
        int(s.steps[k0]),
        "SELU activations drift away from mean 0 / std 1"
        + (f"; broken: {', '.join(broken)}" if broken else ""),
        {"act_mean_last": [_r(x) for x in mean[-1]], "act_std_last": [_r(x) for x in std[-1]],
         "broken_conditions": broken, "var_w_times_fan_in": [_r(x) for x in gain],
         "input_mean_abs": _r(np.nanmean(s.input_mean_abs)),
         "input_std": _r(np.nanmean(s.input_std)), "learning_impaired": impaired},
        remedies, int(s.steps[on[1]]))
