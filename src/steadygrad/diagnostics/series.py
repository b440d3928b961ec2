"""Host-side per-layer time series: what the monitor hands to the rules and the report.

:class:`HealthSeries` is plain data (numpy arrays of shape ``(checks, layers)``), built once
when the monitor reports; the rules in :mod:`steadygrad.diagnostics.rules` are pure functions
of it.

Example:
    >>> s = HealthSeries.empty(["fc1", "fc2"], steps=[0, 10])
    >>> s.values["grad_rms"].shape
    (2, 2)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["LAYER_SERIES", "HealthSeries", "LayerMeta"]

LAYER_SERIES: dict[str, str] = {
    "act_mean": "mean of the layer's activation (post-activation output)",
    "act_std": "standard deviation of the activation",
    "zero_frac": "fraction of activation entries exactly 0",
    "sat_frac": "fraction of activation entries closer to an asymptote than the margin",
    "dead_frac": "fraction of units with no positive output over the dead-unit window",
    "act_nonfinite": "number of units whose output holds a NaN/Inf in the batch",
    "grad_rms": "RMS of the gradient w.r.t. the weighted layer's output (pre-activation)",
    "grad_nonfinite": "number of units whose back-propagated gradient holds a NaN/Inf",
    "weight_rms": "RMS of the weight after the step",
    "weight_grad_rms": "RMS of the weight gradient",
    "weight_grad_norm": "L2 norm of the weight gradient",
    "update_ratio": "RMS of the step's weight update / RMS of the weight",
}
"""Per-layer series names and their meaning (all are ``(checks, layers)`` arrays)."""


@dataclass(frozen=True)
class LayerMeta:
    """Static description of one report row (see :class:`~steadygrad.diagnostics.hooks.LayerRow`).

    >>> LayerMeta(0, "fc", "Linear", "relu", ("fc", "act"), 64, 64, (-4.0, 4.0)).name
    'fc'
    """

    index: int
    name: str
    kind: str
    activation: str | None
    members: tuple[str, ...]
    units: int | None
    fan_in: int | None
    hist_range: tuple[float, float]
    member_kinds: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"index": self.index, "name": self.name, "kind": self.kind,
                "activation": self.activation, "members": list(self.members),
                "member_kinds": list(self.member_kinds), "units": self.units,
                "fan_in": self.fan_in, "hist_range": list(self.hist_range)}

    @staticmethod
    def from_dict(d: dict[str, Any]) -> LayerMeta:
        """Inverse of :meth:`to_dict`."""
        return LayerMeta(int(d["index"]), str(d["name"]), str(d["kind"]), d.get("activation"),
                         tuple(d.get("members", ())), d.get("units"), d.get("fan_in"),
                         (float(d["hist_range"][0]), float(d["hist_range"][1])),
                         tuple(d.get("member_kinds", ())))


@dataclass
class HealthSeries:
    """Everything the monitor measured, on the host.

    Attributes:
        layers: row names in forward order.
        steps: the sampled step numbers (one per check).
        values: per-layer series, each ``(checks, layers)``; keys :data:`LAYER_SERIES`.
        loss: loss at each check (NaN where not given).
        grad_norm: global L2 norm of all monitored weight gradients at each check.
        input_mean_abs: mean over input features of ``|feature mean|`` in the batch.
        input_std: mean over input features of the feature's standard deviation.
        histograms: ``(step, (layers, bins) counts)`` at a few checks.
        meta: static per-layer description.
        step_loss: the loss at **every** step (index = step; NaN where not given), when the
            monitor could read it without synchronizing (CPU); empty otherwise.
        baseline_loss: the loss of the best constant predictor (chance level), None if
            unknown.
        first_nonfinite_loss: the first step whose loss was NaN/Inf (from every step when
            tracked, else from the checks), None if none.

    >>> s = HealthSeries.empty(["a"], steps=[0, 10, 20])
    >>> s.checks, s.values["update_ratio"].shape
    (3, (3, 1))
    """

    layers: list[str]
    steps: list[int]
    values: dict[str, np.ndarray]
    loss: np.ndarray
    grad_norm: np.ndarray
    input_mean_abs: np.ndarray
    input_std: np.ndarray
    histograms: list[tuple[int, np.ndarray]] = field(default_factory=list)
    meta: list[LayerMeta] = field(default_factory=list)
    step_loss: np.ndarray = field(default_factory=lambda: np.zeros(0))
    baseline_loss: float | None = None
    first_nonfinite_loss: int | None = None

    @staticmethod
    def empty(layers: Sequence[str], steps: Sequence[int]) -> HealthSeries:
        """All-NaN series for ``layers`` and ``steps``."""
        n, r = len(steps), len(layers)
        nan = np.full((n, r), math.nan)
        return HealthSeries(
            layers=list(layers), steps=list(steps),
            values={k: nan.copy() for k in LAYER_SERIES},
            loss=np.full(n, math.nan), grad_norm=np.full(n, math.nan),
            input_mean_abs=np.full(n, math.nan), input_std=np.full(n, math.nan),
        )

    @property
    def checks(self) -> int:
        """Number of checks (sampled steps)."""
        return len(self.steps)
