"""Rules that turn per-layer statistics into findings, with documented thresholds.

Every rule is a pure function of a :class:`~steadygrad.diagnostics.series.HealthSeries`. A
symptom must hold over ``persistence`` **steps** (consecutive checks spanning that many steps,
at least two checks; evidence ``strong_factor`` times past its threshold confirms on one check:
:func:`~steadygrad.diagnostics.progress.confirmed_onset`). It is then a ``warning`` when
learning is impaired and only ``info`` when training learns anyway (AUTOTRAINER's gating
principle, Zhang et al. 2021). "Learns" is judged against the loss a constant predictor
reaches (chance level) and against the best loss so far
(:func:`~steadygrad.diagnostics.progress.learning_progress`): falling back to chance after an
initial drop, or diverging, is impaired. Non-finite values are always an ``error``. Every
finding carries ``first_step`` (where the evidence first crossed its threshold) and
``raised_step`` (where persistence was met: when a live monitor would have raised it). The
thresholds and their calibration runs are in ``docs/health-report.md``.

Example:
    >>> from steadygrad.diagnostics.series import HealthSeries
    >>> s = HealthSeries.empty(["a", "b"], steps=[0, 1, 2])
    >>> s.values["act_nonfinite"][1:, 1] = 3  # NaN appears in layer b at step 1
    >>> f = evaluate(s)
    >>> [(x.kind, x.severity, x.layers, x.first_step, x.raised_step) for x in f]
    [('non_finite', 'error', ('b',), 1, 1)]
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from steadygrad.diagnostics.attention_rule import attention_saturation
from steadygrad.diagnostics.early import growth_over_min, relative_rise, step_loss_spikes
from steadygrad.diagnostics.lr_rule import StepSpikes, learning_rate, step_spikes
from steadygrad.diagnostics.progress import confirmed_onset
from steadygrad.diagnostics.progress import learning_progress as _progress
from steadygrad.diagnostics.remedies import REMEDIES, Remedy
from steadygrad.diagnostics.selu_rule import self_normalization
from steadygrad.diagnostics.series import HealthSeries
from steadygrad.diagnostics.stats import depth_slope
from steadygrad.diagnostics.thresholds import Finding, Thresholds
from steadygrad.diagnostics.thresholds import evidence_round as _r
from steadygrad.diagnostics.thresholds import gated_severity as _gated
from steadygrad.nn.activations import RELU_FAMILY, SATURATING

__all__ = ["KINDS", "REMEDIES", "SEVERITIES", "Finding", "Remedy", "Thresholds", "evaluate",
           "learning_progress"]

SEVERITIES = ("info", "warning", "error")
"""Severities, mildest first."""

KINDS = ("non_finite", "exploding_gradients", "vanishing_gradients", "dead_units", "saturation",
         "attention_saturation", "self_normalization", "learning_rate")
"""Finding kinds, in report order."""


def _loss_trace(series: HealthSeries) -> tuple[np.ndarray, list[int]]:
    """The per-step losses when the monitor tracked them, else the losses at the checks."""
    sl = np.asarray(series.step_loss, dtype=float)
    if sl.size and np.any(~np.isnan(sl)):
        return sl, list(range(sl.size))
    return np.asarray(series.loss, dtype=float), list(series.steps)


def learning_progress(series: HealthSeries, th: Thresholds | None = None) -> dict[str, Any]:
    """Whether training learned, against the chance-level loss (see
    :func:`steadygrad.diagnostics.progress.learning_progress`), on every step's loss when it
    was tracked.

    >>> s = HealthSeries.empty(["a"], steps=[0, 1, 2, 3])
    >>> s.loss[:] = [2.0, 1.5, 1.0, 0.5]
    >>> p = learning_progress(s); p["impaired"], p["reference"], p["final"]
    (False, 2.0, 0.5)
    >>> s.baseline_loss = 0.4  # a constant predictor already reaches 0.4
    >>> learning_progress(s)["impaired"]
    True
    """
    th = th or Thresholds()
    loss, steps = _loss_trace(series)
    out = _progress(loss, series.baseline_loss, th.min_improvement, steps)
    if series.first_nonfinite_loss is not None:
        out["diverged"] = out["impaired"] = True
    out["first_nonfinite_loss"] = series.first_nonfinite_loss
    return out


def _nonfinite_checks(s: HealthSeries) -> np.ndarray:
    """Per check: whether :func:`_non_finite` has something to name there (vectorized)."""
    v = s.values
    w, wg = v["weight_rms"], v["weight_grad_norm"]
    with np.errstate(invalid="ignore"):
        bad = (np.nan_to_num(v["act_nonfinite"]) > 0).any(1) \
            | (np.nan_to_num(v["grad_nonfinite"]) > 0).any(1) \
            | (np.isinf(w) | (np.isnan(w) & ~np.isnan(wg))).any(1)
    return bad | np.isinf(np.asarray(s.loss, dtype=float))


def _non_finite(s: HealthSeries) -> Finding | None:
    v = s.values
    first = np.flatnonzero(_nonfinite_checks(s)) if s.checks else np.zeros(0, dtype=int)
    for k in first[:1]:
        step = s.steps[k]
        fwd = np.flatnonzero(np.nan_to_num(v["act_nonfinite"][k]) > 0)
        bwd = np.flatnonzero(np.nan_to_num(v["grad_nonfinite"][k]) > 0)
        # weight norms are float64 sums of float32 squares: non-finite only for a NaN/Inf entry
        wts = np.flatnonzero(~np.isfinite(v["weight_rms"][k]) & ~np.isnan(v["weight_rms"][k]))
        wnan = np.flatnonzero(np.isnan(v["weight_rms"][k]) & ~np.isnan(v["weight_grad_norm"][k]))
        wts = np.union1d(wts, wnan)
        loss_bad = bool(np.isinf(s.loss[k]))  # a NaN loss is indistinguishable from "not given"
        if fwd.size:
            where, row, count = "forward", int(fwd[0]), v["act_nonfinite"][k, fwd[0]]
        elif wts.size:
            where, row, count = "weights", int(wts[0]), math.nan
        elif bwd.size:
            where, row, count = "backward", int(bwd[-1]), v["grad_nonfinite"][k, bwd[-1]]
        elif loss_bad:
            where, row, count = "loss", -1, 1.0
        else:
            continue
        layer = s.layers[row] if row >= 0 else "loss"
        return Finding(
            "non_finite", "error", (layer,), int(step),
            f"NaN/Inf first appeared in the {where} pass at layer {layer} (step {step})",
            {"where": where, "count": _r(count), "layers_forward": [s.layers[i] for i in fwd],
             "layers_backward": [s.layers[i] for i in bwd]},
            REMEDIES["non_finite"], int(step))
    if s.first_nonfinite_loss is not None:
        step = s.first_nonfinite_loss
        return Finding(
            "non_finite", "error", ("loss",), step,
            f"the loss became NaN/Inf at step {step} (between sampled steps: no layer is named)",
            {"where": "loss", "count": None, "layers_forward": [], "layers_backward": []},
            REMEDIES["non_finite"], step)
    return None


def _hidden(s: HealthSeries) -> list[int]:
    """Rows of the hidden stack: the output head (a last row with no activation) is left out."""
    rows = list(range(len(s.layers)))
    if len(rows) >= 3 and s.meta and s.meta[-1].activation is None:
        rows = rows[:-1]
    return rows


def _profile(g: np.ndarray) -> tuple[float, float]:
    """(fitted orders of magnitude gained bottom->top, bottom-quarter vs top-quarter orders)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        lg = np.log10(g)
    lg[~np.isfinite(lg)] = np.nan
    span = depth_slope(lg) * (len(lg) - 1)
    q = max(1, len(lg) // 4)
    bottom, top = np.nanmean(g[:q]) if np.any(np.isfinite(g[:q])) else math.nan, \
        np.nanmean(g[-q:]) if np.any(np.isfinite(g[-q:])) else math.nan
    ratio = math.log10(top / bottom) if bottom > 0 and top > 0 else math.nan
    return span, ratio


def _check_spikes(s: HealthSeries, th: Thresholds, ref: float | None,
                  levels: StepSpikes | None) -> np.ndarray:
    """Per check: a loss spike at that check (or, with every step's loss, at any step since
    the previous check; ``levels``: :func:`~steadygrad.diagnostics.lr_rule.step_spikes`)."""
    if levels is not None:
        per_step, sl_size = levels[0], levels[0].size
        out, prev = np.zeros(s.checks, dtype=bool), -1
        for k, st in enumerate(s.steps):
            out[k] = bool(per_step[prev + 1: st + 1].any()) if st < sl_size else False
            prev = st
        return out
    return step_loss_spikes(np.asarray(s.loss, dtype=float), th.loss_spike, ref)


def _vanishing(s: HealthSeries, th: Thresholds, impaired: bool | None, rows: list[int],
               g: np.ndarray, span: np.ndarray, ratio: np.ndarray) -> Finding | None:
    through_time = _time_orders(s)
    van = [bool((a >= th.vanishing_orders) or (b >= th.vanishing_orders)
                or t <= -th.vanishing_orders)
           for a, b, t in zip(span, ratio, through_time, strict=True)]
    on = confirmed_onset(van, s.steps, th.persistence)
    if on is None:
        return None
    k0 = on[0]
    tt = through_time[k0:]
    if not np.any(np.isfinite(span[k0:])) and np.any(np.isfinite(tt)):  # through time only
        rnn = tuple(k.split(":")[0] for k in s.probes if k.endswith(":time_orders"))
        return Finding(
            "vanishing_gradients", _gated(impaired), rnn, int(s.steps[k0]),
            f"the gradient loses {_r(-np.nanmin(tt), 2)} orders of magnitude through time "
            "(first vs last time step of a recurrent layer's input)",
            {"time_orders_last": _r(through_time[-1]), "threshold_orders": th.vanishing_orders,
             "learning_impaired": impaired},
            REMEDIES["vanishing_gradients"], int(s.steps[on[1]]))
    last = g[-1]
    top = np.nanmean(last[-max(1, len(rows) // 4):])
    low = [s.layers[rows[i]] for i in range(len(rows))
           if np.isfinite(last[i]) and last[i] < top * 10 ** -th.vanishing_orders]
    layers = tuple(low) or tuple(s.layers[rows[i]] for i in range(max(1, len(rows) // 4)))
    return Finding(
        "vanishing_gradients", _gated(impaired), layers, int(s.steps[k0]),
        f"the back-propagated gradient loses {_r(np.nanmax(span[k0:]), 2)} orders of "
        f"magnitude from the top to the bottom of the stack",
        {"orders_fit_at_init": _r(span[0]), "orders_fit_last": _r(span[-1]),
         "orders_quartiles_last": _r(ratio[-1]), "per_layer_decay_last":
         _r(10 ** (-span[-1] / (len(rows) - 1))), "threshold_orders": th.vanishing_orders,
         "grad_rms_last": [_r(x) for x in last], "learning_impaired": impaired},
        REMEDIES["vanishing_gradients"], int(s.steps[on[1]]))


def _time_orders(s: HealthSeries) -> np.ndarray:
    """Per check, the largest |orders| gained (> 0) or lost (< 0) through time by any
    recurrent layer's input gradient (:func:`~steadygrad.diagnostics.probes.time_orders`),
    signed by the larger side; NaN when there is no recurrent layer."""
    cols = [np.asarray(v, dtype=float) for k, v in s.probes.items()
            if k.endswith(":time_orders") and len(v) == s.checks]
    if not cols:
        return np.full(s.checks, math.nan)
    m = np.vstack(cols)
    m[~np.isfinite(m)] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN checks stay NaN
        hi, lo = np.nanmax(m, axis=0), np.nanmin(m, axis=0)
    return np.where(np.abs(lo) > np.abs(hi), lo, hi)


def _exploding(s: HealthSeries, th: Thresholds, impaired: bool | None, rows: list[int],
               span: np.ndarray, ratio: np.ndarray, spikes: np.ndarray) -> Finding | None:
    """Depth profile (level), growth of the global gradient norm and of the output logits
    at a loss spike (trend: early warning), or non-finite gradients."""
    gn = np.asarray(s.grad_norm, dtype=float)
    head = gn[:3]
    ref = np.nanmax(head) if np.any(np.isfinite(head)) else math.nan
    with np.errstate(all="ignore"):
        growth = gn / ref if ref > 0 else np.full(gn.shape, math.nan)
        diverging = np.asarray(s.loss) > (1 + th.min_improvement) * s.loss[0]
    growth = np.where(diverging, growth, math.nan)
    trend = growth_over_min(gn)
    logits = relative_rise(s.values["act_std"][:, -1]) if s.layers else np.full(s.checks, np.nan)
    nonfin = np.nansum(s.values["grad_nonfinite"], axis=1) > 0
    through_time = _time_orders(s)
    flags, strong = [], []
    for k in range(s.checks):
        prof = bool(span[k] <= -th.exploding_orders or ratio[k] <= -th.exploding_orders
                    or through_time[k] >= th.time_orders)
        tr = bool(spikes[k] and (trend[k] >= th.growth_trend or logits[k] >= th.logit_growth))
        lvl = bool(np.isfinite(growth[k]) and growth[k] >= th.norm_growth)
        flags.append(prof or tr or lvl or bool(nonfin[k]))
        strong.append(bool(nonfin[k]) or bool(spikes[k] and (
            trend[k] >= th.growth_trend * th.strong_factor
            or logits[k] >= th.logit_growth * th.strong_factor)))
    on = confirmed_onset(flags, s.steps, th.persistence, strong)
    if on is None:
        return None
    k1, kr = on
    fin = [x for x in trend[k1:] if np.isfinite(x)]
    sev = "error" if nonfin.any() else _gated(impaired)
    n = max(1, len(rows) // 4)
    return Finding(
        "exploding_gradients", sev, tuple(s.layers[rows[i]] for i in range(n)) if rows
        else tuple(s.layers[:1]), int(s.steps[k1]),
        "gradients grow towards the input or over time"
        + (" until they become non-finite" if nonfin.any() else ""),
        {"orders_fit_at_init": _r(span[0]) if span.size else None,
         "orders_fit_last": _r(span[-1]) if span.size else None,
         "norm_growth_max": _r(np.nanmax(growth)) if np.any(np.isfinite(growth)) else None,
         "norm_growth_trend_max": _r(max(fin)) if fin else None,
         "logit_growth_max": _r(np.nanmax(logits)) if np.any(np.isfinite(logits)) else None,
         "time_orders_max": _r(np.nanmax(through_time))
         if np.any(np.isfinite(through_time)) else None,
         "loss_spike_steps": [int(s.steps[k]) for k in np.flatnonzero(spikes)][:20],
         "non_finite": bool(nonfin.any()), "threshold_orders": th.exploding_orders,
         "threshold_norm_growth": th.norm_growth, "threshold_growth_trend": th.growth_trend,
         "learning_impaired": impaired},
        REMEDIES["exploding_gradients"], int(s.steps[kr]))


def _gradient_profile(s: HealthSeries, th: Thresholds, impaired: bool | None,
                      spikes: np.ndarray) -> list[Finding | None]:
    if not s.checks:
        return []
    rows = _hidden(s)
    g = s.values["grad_rms"][:, rows]
    if len(rows) >= 3:
        prof = [_profile(g[k]) for k in range(s.checks)]
        span = np.array([p[0] for p in prof])
        ratio = np.array([p[1] for p in prof])
    else:
        span = ratio = np.full(s.checks, math.nan)
    van = None
    if len(rows) >= 3 or any(k.endswith(":time_orders") for k in s.probes):
        van = _vanishing(s, th, impaired, rows, g, span, ratio)
    return [_exploding(s, th, impaired, rows, span, ratio, spikes), van]


def _per_layer(s: HealthSeries, th: Thresholds, impaired: bool | None, kind: str,
               names: frozenset[str], key: str, limit: float, what: str,
               rise: float | None = None) -> Finding | None:
    """A level (``>= limit``), or for ``rise`` a climb of that much over the first check
    (units dying while it happens), held over ``persistence`` steps, per layer."""
    hits: dict[int, tuple[int, int]] = {}
    for i, meta in enumerate(s.meta):
        if meta.activation in names:
            col = np.nan_to_num(s.values[key][:, i])
            base = col[0] if col.size else 0.0
            flags = [bool(x >= limit or (rise is not None and x - base >= rise)) for x in col]
            on = confirmed_onset(flags, s.steps, th.persistence)
            if on is not None:
                hits[i] = on
    if not hits:
        return None
    first = min(h[0] for h in hits.values())
    raised = min(h[1] for h in hits.values())
    layers = tuple(s.layers[i] for i in sorted(hits))
    last = {s.layers[i]: _r(s.values[key][-1, i]) for i in sorted(hits)}
    worst = max(x for x in last.values() if x is not None) if any(last.values()) else limit
    ev: dict[str, Any] = {f"{key}_last": last, "threshold": limit,
                          "learning_impaired": impaired}
    if rise is not None:
        ev["rise_threshold"] = rise
        ev[f"{key}_first"] = {s.layers[i]: _r(s.values[key][0, i]) for i in sorted(hits)}
        ev["onset_steps"] = {s.layers[i]: int(s.steps[h[0]]) for i, h in sorted(hits.items())}
    return Finding(kind, _gated(impaired), layers, int(s.steps[first]),
                   f"{len(layers)} layer(s) with {what} (up to {worst:.0%}), "
                   f"from step {int(s.steps[first])}",
                   ev, REMEDIES[kind], int(s.steps[raised]))


def _probe_evidence(s: HealthSeries) -> dict[str, Any]:
    """First and last value of each probe (recurrent ``time_orders``, attention logits and
    entropy), attached to the gradient and saturation findings (the attention entropy is
    itself the trigger of ``attention_saturation``, the through-time orders of the
    exploding/vanishing rules)."""
    out: dict[str, Any] = {}
    for key, v in s.probes.items():
        fin = np.asarray(v, dtype=float)
        fin = fin[np.isfinite(fin)]
        if fin.size:
            out[key] = {"first": _r(fin[0]), "last": _r(fin[-1])}
    return out


def _with_probes(f: Finding | None, probes: dict[str, Any]) -> Finding | None:
    if f is None or not probes or f.kind not in ("exploding_gradients", "vanishing_gradients",
                                                 "saturation"):
        return f
    return Finding(f.kind, f.severity, f.layers, f.first_step, f.message,
                   {**f.evidence, "probes": probes}, f.remedies, f.raised_step)


def evaluate(series: HealthSeries, thresholds: Thresholds | None = None) -> list[Finding]:
    """Apply every rule to ``series``; findings sorted by kind order (:data:`KINDS`).

    Args:
        series: what the monitor recorded.
        thresholds: rule thresholds (defaults: :class:`Thresholds`).

    >>> evaluate(HealthSeries.empty(["a", "b", "c"], steps=[0, 1, 2]))
    []
    """
    th = thresholds or Thresholds()
    prog = learning_progress(series, th)
    impaired = prog["impaired"]
    nonfinite = _non_finite(series)
    worse = prog["final"] is not None and prog["reference"] is not None and \
        prog["final"] > (1 + th.min_improvement) * prog["reference"]
    diverged = bool(prog["diverged"]) or nonfinite is not None
    if diverged:
        impaired = True  # NaN/Inf anywhere means training failed, whatever the loss said before
    levels = step_spikes(series, th, prog["reference"])  # one running median for both rules
    spikes = _check_spikes(series, th, prog["reference"], levels)
    found: list[Finding | None] = [nonfinite]
    found += _gradient_profile(series, th, impaired, spikes)
    found.append(_per_layer(series, th, impaired, "dead_units", RELU_FAMILY, "dead_frac",
                            th.dead_fraction, "dead units", rise=th.dying_rise))
    found.append(_per_layer(series, th, impaired, "saturation", SATURATING, "sat_frac",
                            th.saturation_fraction, "saturated outputs"))
    found.append(attention_saturation(series, th, impaired))
    found.append(self_normalization(series, th, impaired))
    # "too low" is never said of a run that diverged, spiked or ended clearly above its
    # reference loss
    found.append(learning_rate(series, th, impaired, diverged or worse or bool(spikes.any()),
                               spikes, prog["reference"], levels=levels))
    probes = _probe_evidence(series)
    found = [_with_probes(f, probes) for f in found]
    return sorted((f for f in found if f is not None), key=lambda f: KINDS.index(f.kind))
