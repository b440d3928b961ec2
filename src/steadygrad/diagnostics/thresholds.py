"""The data types of the rules: :class:`Thresholds` (every number a rule compares with) and
:class:`Finding` (a named problem with its evidence).

Example:
    >>> Thresholds().persistence, Finding("saturation", "info", ("a",), 0, "m", {}).raised_step
    (3, None)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from steadygrad.diagnostics.remedies import Remedy
from steadygrad.errors import ConfigError

__all__ = ["Finding", "Thresholds", "evidence_round", "gated_severity"]


@dataclass(frozen=True)
class Thresholds:
    """Rule thresholds (defaults calibrated on the reference runs in ``tests/diagnostics``).

    Attributes:
        persistence: steps a symptom must hold (over at least two consecutive checks; see
            :func:`~steadygrad.diagnostics.progress.confirmed_onset`); also the length, in
            checks, of the dead-unit window. Before schema 2 it counted checks.
        min_improvement: relative drop of the final loss below the reference (the constant
            predictor's loss, else the first loss) below which learning counts as impaired.
        vanishing_orders: orders of magnitude the back-propagated gradient RMS may lose from
            the top hidden layers to the bottom ones (fitted across depth, or bottom-quarter
            vs top-quarter mean) before it is vanishing.
        exploding_orders: the same, gained towards the input, before it is exploding.
        norm_growth: growth factor of the global gradient norm over its largest value in the
            first checks that counts as exploding (only while the loss is above its first
            value by ``min_improvement``, i.e. diverging).
        time_orders: orders of magnitude a recurrent layer's input gradient may gain from the
            last time step back to the first before it is exploding through time.
        growth_trend: growth of the global gradient norm over its smallest earlier value that,
            with a loss spike at the same check, is early evidence of exploding gradients.
        loss_spike: a loss above ``(1 + loss_spike)`` times its recent median and above the
            reference loss is a spike (evidence of a too-high learning rate).
        logit_growth: growth of the output layer's activation std over its first value that,
            with a loss spike, is evidence of exploding gradients (output-logit divergence).
        dying_rise: rise of a rectifier layer's dead fraction over its first value that counts
            as units dying (with ``dead_fraction`` as the level).
        strong_factor: evidence this many times past its threshold confirms on one check.
        dead_fraction: share of a ReLU-family layer's units silent (no positive output) over
            the dead-unit window of ``persistence`` checks.
        saturation_fraction: share of a bounded activation's outputs within
            ``saturation_margin`` of an asymptote.
        attention_entropy: mean attention entropy of an ``nn.MultiheadAttention`` over
            ``ln S`` (1 = uniform over the S keys, 0 = one key takes all) at or below which
            its softmax is saturated (:mod:`steadygrad.diagnostics.attention_rule`); set on
            the labelled suite's calibration seeds (healthy transformers >= 0.52, collapsed
            ones <= 0.018: 0.1 is about the geometric middle).
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
    min_improvement: float = 0.3
    vanishing_orders: float = 2.0
    exploding_orders: float = 2.0
    norm_growth: float = 1e3
    time_orders: float = 1.0
    growth_trend: float = 10.0
    loss_spike: float = 1.0
    logit_growth: float = 10.0
    dead_fraction: float = 0.5
    dying_rise: float = 0.3
    saturation_fraction: float = 0.5
    saturation_margin: float = 0.01
    attention_entropy: float = 0.1
    selu_mean: float = 0.5
    selu_std: float = 2.0
    lr_low: float = 5e-5
    lr_high: float = 0.1
    strong_factor: float = 10.0

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ConfigError(f"thresholds.{f.name}", v, "a finite number")
            if v <= 0:
                raise ConfigError(f"thresholds.{f.name}", v, "a positive number")
        if not isinstance(self.persistence, int):
            raise ConfigError("thresholds.persistence", self.persistence, "an int >= 1")
        for name in ("dead_fraction", "dying_rise", "saturation_fraction", "saturation_margin",
                     "attention_entropy"):
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
        first_step: the step where the evidence first crossed its threshold (start of the
            persistent run).
        message: one human sentence.
        evidence: the numbers behind it (JSON-ready).
        remedies: fixes from the toolbox, in order.
        raised_step: the step where persistence was met (when a live monitor raises it);
            None in reports written before schema 2.

    >>> f = Finding("dead_units", "warning", ("fc1",), 30, "msg", {"x": 1}, raised_step=60)
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
    raised_step: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"kind": self.kind, "severity": self.severity, "layers": list(self.layers),
                "first_step": self.first_step, "raised_step": self.raised_step,
                "message": self.message,
                "evidence": self.evidence, "remedies": [r.to_dict() for r in self.remedies]}

    @staticmethod
    def from_dict(d: dict[str, Any]) -> Finding:
        """Inverse of :meth:`to_dict`."""
        return Finding(d["kind"], d["severity"], tuple(d["layers"]), int(d["first_step"]),
                       d["message"], dict(d["evidence"]),
                       tuple(Remedy.from_dict(r) for r in d.get("remedies", ())),
                       None if d.get("raised_step") is None else int(d["raised_step"]))


def evidence_round(x: float, digits: int = 4) -> float | None:
    """Round a number for a finding's evidence; NaN/inf become None (JSON-safe).

    >>> evidence_round(0.123456), evidence_round(float("nan"))
    (0.1235, None)
    """
    x = float(x)
    return float(f"{x:.{digits}g}") if math.isfinite(x) else None


def gated_severity(impaired: bool | None) -> str:
    """A pathology finding's severity: ``info`` while the net still learns, else ``warning``.

    >>> gated_severity(False), gated_severity(None)
    ('info', 'warning')
    """
    return "info" if impaired is False else "warning"
