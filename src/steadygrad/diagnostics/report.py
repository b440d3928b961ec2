"""HealthReport: the versioned JSON document and its terminal rendering.

The JSON schema is ``"steadygrad.health/2"`` (every field is documented in
``docs/health-report.md``; version 1 files are still read: their findings have no
``raised_step`` and they carry no ``harm``). Non-finite numbers are written as ``null``.
``save`` writes atomically (temporary file in the same folder, then ``os.replace``) and never
overwrites unless asked.

Example:
    >>> from steadygrad.diagnostics.series import HealthSeries, LayerMeta
    >>> s = HealthSeries.empty(["fc1"], steps=[0])
    >>> s.meta = [LayerMeta(0, "fc1", "Linear", "relu", ("fc1", "act"), 8, 4, (-4.0, 4.0))]
    >>> rep = HealthReport(series=s, findings=[])
    >>> HealthReport.from_json(rep.to_json()).series.layers
    ['fc1']
    >>> rep.has("warning")
    False
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from steadygrad._atomic import atomic_write_text
from steadygrad.diagnostics.rules import SEVERITIES, Finding, Thresholds, learning_progress
from steadygrad.diagnostics.series import LAYER_SERIES, HealthSeries, LayerMeta
from steadygrad.errors import ConfigError, DataError

__all__ = ["READABLE", "SCHEMA", "HealthReport", "harm"]

SCHEMA = "steadygrad.health/2"
"""Schema identifier written into every report."""

READABLE = ("steadygrad.health/1", SCHEMA)
"""Schemas :meth:`HealthReport.from_dict` reads."""


def harm(findings: list[Finding], learning: dict[str, Any]) -> dict[str, Any] | None:
    """What went wrong and the lead time of the first warning before it.

    The harm is the first non-finite loss, else (when learning is impaired) the step where the
    loss stopped improving. The lead time is the number of steps from the first raised
    warning or error of another kind than ``non_finite`` to the harm (negative: raised after).

    >>> f = Finding("learning_rate", "warning", ("a",), 1, "m", {}, raised_step=3)
    >>> h = harm([f], {"first_nonfinite_loss": 7, "impaired": True})
    >>> h["kind"], h["step"], h["first_warning_step"], h["warning_kind"], h["lead_time"]
    ('non_finite_loss', 7, 3, 'learning_rate', 4)
    >>> harm([f], {"first_nonfinite_loss": None, "impaired": False}) is None
    True
    """
    step = learning.get("first_nonfinite_loss")
    kind = "non_finite_loss"
    if step is None:
        step, kind = learning.get("stopped_improving_step"), "stopped_improving"
        if step is None or not learning.get("impaired"):
            return None
    warned = [(f.raised_step if f.raised_step is not None else f.first_step, f.kind)
              for f in findings if f.severity != "info" and f.kind != "non_finite"]
    first = min(warned) if warned else None
    return {"kind": kind, "step": int(step),
            "first_warning_step": None if first is None else int(first[0]),
            "warning_kind": None if first is None else first[1],
            "lead_time": None if first is None else int(step) - int(first[0])}


def _num(x: Any) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _arr(a: Any) -> np.ndarray:
    return np.array([[math.nan if v is None else v for v in row] for row in a], dtype=float) \
        if len(a) and isinstance(a[0], list) else \
        np.array([math.nan if v is None else v for v in a], dtype=float)


@dataclass
class HealthReport:
    """Per-layer series and findings of one monitored run.

    Attributes:
        series: the recorded statistics.
        findings: what the rules concluded.
        thresholds: the thresholds used.
        meta: free-form JSON-ready facts (sampling period, steps, optimizer, ...).

    >>> rep = HealthReport(HealthSeries.empty(["fc"], [0]), findings=[], meta={"every": 1})
    >>> rep.worst() is None, rep.to_dict()["schema"]
    (True, 'steadygrad.health/2')
    """

    series: HealthSeries
    findings: list[Finding]
    thresholds: Thresholds = field(default_factory=Thresholds)
    meta: dict[str, Any] = field(default_factory=dict)

    def has(self, severity: str) -> bool:
        """True if some finding is at least as severe as ``severity`` (for ``--fail-on``).

        Raises:
            ConfigError: unknown severity.
        """
        if severity not in SEVERITIES:
            raise ConfigError("severity", severity, f"one of {', '.join(SEVERITIES)}")
        lim = SEVERITIES.index(severity)
        return any(SEVERITIES.index(f.severity) >= lim for f in self.findings)

    def harm(self) -> dict[str, Any] | None:
        """The harm that followed and the lead time of the first warning (:func:`harm`)."""
        return harm(self.findings, learning_progress(self.series, self.thresholds))

    def worst(self) -> str | None:
        """The most severe finding's severity, None when there are no findings."""
        if not self.findings:
            return None
        return max((f.severity for f in self.findings), key=SEVERITIES.index)

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        """The JSON document as a dict (schema ``steadygrad.health/2``)."""
        s = self.series
        learning = learning_progress(s, self.thresholds)
        layers = []
        for i, name in enumerate(s.layers):
            meta = s.meta[i].to_dict() if i < len(s.meta) else {"index": i, "name": name}
            meta["series"] = {k: [_num(x) for x in s.values[k][:, i]] for k in LAYER_SERIES}
            layers.append(meta)
        return {
            "schema": SCHEMA,
            "meta": self.meta,
            "steps": list(s.steps),
            "loss": [_num(x) for x in s.loss],
            "grad_norm": [_num(x) for x in s.grad_norm],
            "input": {"mean_abs": [_num(x) for x in s.input_mean_abs],
                      "std": [_num(x) for x in s.input_std]},
            "learning": learning,
            "baseline_loss": s.baseline_loss,
            "first_nonfinite_loss": s.first_nonfinite_loss,
            "harm": harm(self.findings, learning),
            "layers": layers,
            "histograms": [{"step": st, "counts": h.tolist()} for st, h in s.histograms],
            "thresholds": self.thresholds.to_dict(),
            "findings": [f.to_dict() for f in self.findings],
        }

    def to_json(self, indent: int | None = None) -> str:
        """Serialize to a JSON string (``null`` for NaN/Inf)."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @staticmethod
    def from_dict(d: dict[str, Any]) -> HealthReport:
        """Rebuild a report from :meth:`to_dict` output.

        Raises:
            DataError: the document is not a ``steadygrad.health/1`` or ``/2`` report.
        """
        if not isinstance(d, dict) or d.get("schema") not in READABLE:
            got = d.get("schema") if isinstance(d, dict) else type(d).__name__
            raise DataError(f"health report: got schema {got!r}; expected one of "
                            f"{', '.join(READABLE)}")
        layers = d["layers"]
        s = HealthSeries.empty([x["name"] for x in layers], d["steps"])
        for i, lay in enumerate(layers):
            for k in LAYER_SERIES:
                if k in lay.get("series", {}):
                    s.values[k][:, i] = _arr(lay["series"][k])
        s.loss, s.grad_norm = _arr(d["loss"]), _arr(d["grad_norm"])
        s.input_mean_abs, s.input_std = _arr(d["input"]["mean_abs"]), _arr(d["input"]["std"])
        s.histograms = [(int(h["step"]), np.array(h["counts"], dtype=float))
                        for h in d.get("histograms", [])]
        s.meta = [LayerMeta.from_dict(x) for x in layers if "kind" in x]
        s.baseline_loss = d.get("baseline_loss")
        bad = d.get("first_nonfinite_loss")
        s.first_nonfinite_loss = None if bad is None else int(bad)
        return HealthReport(
            series=s, findings=[Finding.from_dict(f) for f in d["findings"]],
            thresholds=Thresholds(**d.get("thresholds", {})), meta=dict(d.get("meta", {})))

    @staticmethod
    def from_json(text: str) -> HealthReport:
        """Inverse of :meth:`to_json`."""
        return HealthReport.from_dict(json.loads(text))

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Write the JSON atomically to ``path``; returns the path.

        Raises:
            ConfigError: ``path`` exists and ``overwrite`` is False.
        """
        p = Path(path)
        if p.exists() and not overwrite:
            raise ConfigError("path", str(p), "a path that does not exist yet",
                              hint="pass overwrite=True to replace it")
        return atomic_write_text(p, self.to_json(indent=1))

    @staticmethod
    def load(path: str | os.PathLike[str]) -> HealthReport:
        """Read a report written by :meth:`save`."""
        return HealthReport.from_json(Path(path).read_text(encoding="utf-8"))

    # ------------------------------------------------------------------ text
    def render(self, width: int = 100) -> str:
        """Terminal rendering: one row per layer (last check), then the findings."""
        from steadygrad.diagnostics.render import render_report

        return render_report(self, width=width)

    def __str__(self) -> str:
        return self.render()
