"""Rules that turn per-layer statistics into findings, with documented thresholds.

Every rule is a pure function of a :class:`~steadygrad.diagnostics.series.HealthSeries`. A
symptom must hold for ``persistence`` consecutive checks; it is then a ``warning`` when learning
is impaired (the loss did not improve by ``min_improvement``, or no loss was given) and only
``info`` when training progresses anyway (AUTOTRAINER's gating principle, Zhang et al. 2021,
with "failing" defined from the loss as in ``shared/notes/prior_art_diagnosis.md`` §5.1).
Non-finite values are always an ``error``. The thresholds and their calibration runs are in
``docs/health-report.md``.

Example:
    >>> from steadygrad.diagnostics.series import HealthSeries
    >>> s = HealthSeries.empty(["a", "b"], steps=[0, 1, 2])
    >>> s.values["act_nonfinite"][1:, 1] = 3  # NaN appears in layer b at step 1
    >>> f = evaluate(s)
    >>> [(x.kind, x.severity, x.layers, x.first_step) for x in f]
    [('non_finite', 'error', ('b',), 1)]
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from steadygrad.diagnostics.remedies import REMEDIES, Remedy
from steadygrad.diagnostics.series import HealthSeries
from steadygrad.diagnostics.stats import depth_slope, persistent_onset
from steadygrad.errors import ConfigError
from steadygrad.nn.activations import RELU_FAMILY, SATURATING

__all__ = ["KINDS", "REMEDIES", "SEVERITIES", "Finding", "Remedy", "Thresholds", "evaluate",
           "learning_progress"]

SEVERITIES = ("info", "warning", "error")
"""Severities, mildest first."""

KINDS = ("non_finite", "exploding_gradients", "vanishing_gradients", "dead_units", "saturation",
         "self_normalization", "learning_rate")
"""Finding kinds, in report order."""


@dataclass(frozen=True)
class Thresholds:
    """Rule thresholds (defaults calibrated on the reference runs in ``tests/diagnostics``).

    Attributes:
        persistence: consecutive checks a symptom must hold (m).
        min_improvement: relative loss improvement (first quarter of checks vs last quarter)
            below which learning counts as impaired.
        vanishing_orders: orders of magnitude the back-propagated gradient RMS may lose from
            the top hidden layers to the bottom ones (fitted across depth, or bottom-quarter
            vs top-quarter mean) before it is vanishing.
        exploding_orders: the same, gained towards the input, before it is exploding.
        norm_growth: growth factor of the global gradient norm over its largest value in the
            first ``persistence`` checks that counts as exploding (only while the loss is
            above its first value by ``min_improvement``, i.e. diverging).
        dead_fraction: share of a ReLU-family layer's units silent (no positive output) over
            the dead-unit window of ``persistence`` checks.
        saturation_fraction: share of a bounded activation's outputs within
            ``saturation_margin`` of an asymptote.
        saturation_margin: the margin, as a fraction of the output range (0.01: sigmoid
            outputs < 0.01 or > 0.99, i.e. |z| > 4.6; tanh |a| > 0.98, i.e. |z| > 2.3; both
            where the derivative is below ~4 % of its maximum).
        selu_mean: largest tolerated ``|mean|`` of a SELU layer's activation.
        selu_std: tolerated ``std`` band ``[1/selu_std, selu_std]`` of a SELU activation.
        lr_low: median update/weight ratio below which the learning rate is too low.
        lr_high: median update/weight ratio above which the learning rate is too high.

    >>> Thresholds(persistence=5).persistence
    5
    >>> Thresholds(dead_fraction=2.0)
    Traceback (most recent call last):
    ...
    steadygrad.errors.ConfigError: thresholds.dead_fraction: got 2.0; expected a number in (0, 1)
    """

    persistence: int = 3
    min_improvement: float = 0.05
    vanishing_orders: float = 2.0
    exploding_orders: float = 2.0
    norm_growth: float = 1e3
    dead_fraction: float = 0.5
    saturation_fraction: float = 0.5
    saturation_margin: float = 0.01
    selu_mean: float = 0.5
    selu_std: float = 2.0
    lr_low: float = 5e-5
    lr_high: float = 0.1

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ConfigError(f"thresholds.{f.name}", v, "a finite number")
            if v <= 0:
                raise ConfigError(f"thresholds.{f.name}", v, "a positive number")
        if not isinstance(self.persistence, int):
            raise ConfigError("thresholds.persistence", self.persistence, "an int >= 1")
        for name in ("dead_fraction", "saturation_fraction", "saturation_margin"):
            if getattr(self, name) >= 1:
                raise ConfigError(f"thresholds.{name}", getattr(self, name), "a number in (0, 1)")
        if self.lr_low >= self.lr_high:
            raise ConfigError("thresholds.lr_low", self.lr_low, f"< lr_high ({self.lr_high})")

    def to_dict(self) -> dict[str, float]:
        """JSON-ready dict.

        >>> Thresholds().to_dict()["persistence"]
        3
        """
        return asdict(self)


@dataclass(frozen=True)
class Finding:
    """A named problem with its evidence and remedies.

    Attributes:
        kind: one of :data:`KINDS`.
        severity: one of :data:`SEVERITIES`.
        layers: affected layer names, in forward order.
        first_step: the step where the symptom was first seen (start of the persistent run).
        message: one human sentence.
        evidence: the numbers behind it (JSON-ready).
        remedies: fixes from the toolbox, in order.

    >>> f = Finding("dead_units", "warning", ("fc1",), 30, "msg", {"x": 1})
    >>> Finding.from_dict(f.to_dict()) == f
    True
    """

    kind: str
    severity: str
    layers: tuple[str, ...]
    first_step: int
    message: str
    evidence: dict[str, Any] = field(hash=False)
    remedies: tuple[Remedy, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"kind": self.kind, "severity": self.severity, "layers": list(self.layers),
                "first_step": self.first_step, "message": self.message,
                "evidence": self.evidence, "remedies": [r.to_dict() for r in self.remedies]}

    @staticmethod
    def from_dict(d: dict[str, Any]) -> Finding:
        """Inverse of :meth:`to_dict`."""
        return Finding(d["kind"], d["severity"], tuple(d["layers"]), int(d["first_step"]),
                       d["message"], dict(d["evidence"]),
                       tuple(Remedy.from_dict(r) for r in d.get("remedies", ())))


def _r(x: float, digits: int = 4) -> float | None:
    """Round for evidence; NaN/inf become None (JSON-safe)."""
    x = float(x)
    return float(f"{x:.{digits}g}") if math.isfinite(x) else None


def learning_progress(series: HealthSeries, th: Thresholds | None = None) -> dict[str, Any]:
    """Whether the loss improved: relative drop from the first to the last quarter of checks.

    Returns ``{"improvement": float | None, "impaired": bool | None}``; ``impaired`` is None
    when fewer than 2 finite losses were recorded.

    >>> s = HealthSeries.empty(["a"], steps=[0, 1, 2, 3])
    >>> s.loss[:] = [2.0, 1.5, 1.0, 0.5]
    >>> learning_progress(s)
    {'improvement': 0.75, 'impaired': False}
    """
    th = th or Thresholds()
    loss = np.asarray(series.loss, dtype=float)
    if loss.size and not np.all(np.isfinite(loss[~np.isnan(loss)])):
        return {"improvement": None, "impaired": True}
    ok = loss[np.isfinite(loss)]
    if ok.size < 2:
        return {"improvement": None, "impaired": None}
    q = max(1, ok.size // 4)
    first, last = float(ok[:q].mean()), float(ok[-q:].mean())
    imp = (first - last) / abs(first) if first != 0 else 0.0
    return {"improvement": _r(imp), "impaired": bool(imp < th.min_improvement)}


def _gated(impaired: bool | None) -> str:
    return "info" if impaired is False else "warning"


def _non_finite(s: HealthSeries) -> Finding | None:
    v = s.values
    for k, step in enumerate(s.steps):
        fwd = np.flatnonzero(np.nan_to_num(v["act_nonfinite"][k]) > 0)
        bwd = np.flatnonzero(np.nan_to_num(v["grad_nonfinite"][k]) > 0)
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
            REMEDIES["non_finite"])
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


def _gradient_profile(s: HealthSeries, th: Thresholds, impaired: bool | None) -> list[Finding]:
    rows = _hidden(s)
    if len(rows) < 3 or not s.checks:
        return []
    g = s.values["grad_rms"][:, rows]
    prof = [_profile(g[k]) for k in range(s.checks)]
    span = np.array([p[0] for p in prof])
    ratio = np.array([p[1] for p in prof])
    out: list[Finding] = []
    m = th.persistence
    van = [(a >= th.vanishing_orders) or (b >= th.vanishing_orders) for a, b in prof]
    k0 = persistent_onset(van, m)
    if k0 is not None:
        last = g[-1]
        top = np.nanmean(last[-max(1, len(rows) // 4):])
        low = [s.layers[rows[i]] for i in range(len(rows))
               if np.isfinite(last[i]) and last[i] < top * 10 ** -th.vanishing_orders]
        layers = tuple(low) or tuple(s.layers[rows[i]] for i in range(max(1, len(rows) // 4)))
        out.append(Finding(
            "vanishing_gradients", _gated(impaired), layers, int(s.steps[k0]),
            f"the back-propagated gradient loses {_r(np.nanmax(span[k0:]), 2)} orders of "
            f"magnitude from the top to the bottom of the stack",
            {"orders_fit_at_init": _r(span[0]), "orders_fit_last": _r(span[-1]),
             "orders_quartiles_last": _r(ratio[-1]), "per_layer_decay_last":
             _r(10 ** (-span[-1] / (len(rows) - 1))), "threshold_orders": th.vanishing_orders,
             "grad_rms_last": [_r(x) for x in last], "learning_impaired": impaired},
            REMEDIES["vanishing_gradients"]))
    gn = np.asarray(s.grad_norm, dtype=float)
    ref = np.nanmax(gn[:m]) if np.any(np.isfinite(gn[:m])) else math.nan
    with np.errstate(all="ignore"):
        growth = gn / ref if ref > 0 else np.full(gn.shape, math.nan)
        # growth only counts while the loss diverges (a tiny initial norm that grows as
        # learning starts is not an explosion)
        diverging = np.asarray(s.loss) > (1 + th.min_improvement) * s.loss[0]
    growth = np.where(diverging, growth, math.nan)
    nonfin = np.nansum(s.values["grad_nonfinite"], axis=1) > 0
    exp = [(a <= -th.exploding_orders) or (b <= -th.exploding_orders)
           or (np.isfinite(r) and r >= th.norm_growth) or bool(nf)
           for a, b, r, nf in zip(span, ratio, growth, nonfin, strict=True)]
    k1 = persistent_onset(exp, m) if not nonfin.any() else int(np.flatnonzero(nonfin)[0])
    if k1 is not None:
        sev = "error" if nonfin.any() else _gated(impaired)
        out.append(Finding(
            "exploding_gradients", sev, tuple(s.layers[rows[i]] for i in
                                              range(max(1, len(rows) // 4))),
            int(s.steps[k1]),
            "gradients grow towards the input or over time"
            + (" until they become non-finite" if nonfin.any() else ""),
            {"orders_fit_at_init": _r(span[0]), "orders_fit_last": _r(span[-1]),
             "norm_growth_max": _r(np.nanmax(growth)) if np.any(np.isfinite(growth)) else None,
             "non_finite": bool(nonfin.any()), "threshold_orders": th.exploding_orders,
             "threshold_norm_growth": th.norm_growth, "learning_impaired": impaired},
            REMEDIES["exploding_gradients"]))
    return out


def _per_layer(s: HealthSeries, th: Thresholds, impaired: bool | None, kind: str,
               names: frozenset[str], key: str, limit: float, what: str) -> Finding | None:
    hits: dict[int, int] = {}
    for i, meta in enumerate(s.meta):
        if meta.activation in names:
            col = s.values[key][:, i]
            k0 = persistent_onset([bool(x >= limit) for x in np.nan_to_num(col)],
                                  th.persistence)
            if k0 is not None:
                hits[i] = k0
    if not hits:
        return None
    first = min(hits.values())
    layers = tuple(s.layers[i] for i in sorted(hits))
    last = {s.layers[i]: _r(s.values[key][-1, i]) for i in sorted(hits)}
    worst = max(x for x in last.values() if x is not None) if any(last.values()) else limit
    return Finding(kind, _gated(impaired), layers, int(s.steps[first]),
                   f"{len(layers)} layer(s) with {what} (up to {worst:.0%})",
                   {f"{key}_last": last, "threshold": limit, "learning_impaired": impaired},
                   REMEDIES[kind])


def _self_normalization(s: HealthSeries, th: Thresholds, impaired: bool | None
                        ) -> Finding | None:
    selu = [i for i, m in enumerate(s.meta) if m.activation == "selu"]
    if len(selu) < 2 or not s.checks:
        return None
    deep = selu[len(selu) // 2:]
    mean = s.values["act_mean"][:, deep]
    std = s.values["act_std"][:, deep]
    with np.errstate(invalid="ignore", divide="ignore"):
        drift = (np.abs(mean) > th.selu_mean) | (np.abs(np.log(std)) > math.log(th.selu_std))
    k0 = persistent_onset([bool(np.any(d)) for d in drift], th.persistence)
    if k0 is None:
        return None
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
        remedies)


def _learning_rate(s: HealthSeries, th: Thresholds, impaired: bool | None) -> Finding | None:
    u = s.values["update_ratio"]
    if not s.checks or not np.any(np.isfinite(u)):
        return None
    with np.errstate(all="ignore"):
        med = np.array([np.nanmedian(r) if np.any(np.isfinite(r)) else math.nan for r in u])
    for label, flags in (("too high", med > th.lr_high), ("too low", med < th.lr_low)):
        k0 = persistent_onset([bool(x) for x in flags], th.persistence)
        if k0 is not None:
            return Finding(
                "learning_rate", _gated(impaired), tuple(s.layers), int(s.steps[k0]),
                f"the learning rate looks {label}: median update/weight ratio "
                f"{_r(np.nanmedian(med[k0:]), 2)} (healthy band {th.lr_low:g}..{th.lr_high:g})",
                {"median_update_ratio": [_r(x) for x in med], "band": [th.lr_low, th.lr_high],
                 "direction": label, "learning_impaired": impaired},
                tuple(r for r in REMEDIES["learning_rate"] if r.condition in ("", label)))
    return None


def evaluate(series: HealthSeries, thresholds: Thresholds | None = None) -> list[Finding]:
    """Apply every rule to ``series``; findings sorted by kind order (:data:`KINDS`).

    Args:
        series: what the monitor recorded.
        thresholds: rule thresholds (defaults: :class:`Thresholds`).

    >>> evaluate(HealthSeries.empty(["a", "b", "c"], steps=[0, 1, 2]))
    []
    """
    th = thresholds or Thresholds()
    impaired = learning_progress(series, th)["impaired"]
    nonfinite = _non_finite(series)
    if nonfinite is not None:
        impaired = True  # NaN/Inf anywhere means training failed, whatever the loss said before
    found: list[Finding | None] = [nonfinite]
    found += _gradient_profile(series, th, impaired)
    found.append(_per_layer(series, th, impaired, "dead_units", RELU_FAMILY, "dead_frac",
                            th.dead_fraction, "dead units"))
    found.append(_per_layer(series, th, impaired, "saturation", SATURATING, "sat_frac",
                            th.saturation_fraction, "saturated outputs"))
    found.append(_self_normalization(series, th, impaired))
    found.append(_learning_rate(series, th, impaired))
    return sorted((f for f in found if f is not None), key=lambda f: KINDS.index(f.kind))
