"""Plain-text rendering of a health report: a per-layer table, then the findings.

Example:
    >>> print(format_value(0.000123), format_value(float("nan")), format_value(12345.0))
    1.23e-04 - 1.23e+04
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from steadygrad.diagnostics.report import HealthReport

__all__ = ["format_value", "render_report"]

_COLUMNS = (
    ("act_mean", "act mean"), ("act_std", "act std"), ("zero_frac", "zeros"),
    ("dead_frac", "dead"), ("sat_frac", "sat"), ("grad_rms", "grad rms"),
    ("weight_rms", "w rms"), ("update_ratio", "upd/w"),
)
_MARK = {"info": "i", "warning": "!", "error": "x"}


def format_value(x: float) -> str:
    """Compact fixed-width number: ``-`` for NaN, scientific outside ``[0.01, 1000)``.

    >>> format_value(0.5), format_value(float("inf"))
    ('0.500', 'inf')
    """
    if x is None or not math.isfinite(x):
        return "-" if x is None or math.isnan(x) else ("inf" if x > 0 else "-inf")
    if x == 0:
        return "0"
    if 0.01 <= abs(x) < 1000:
        return f"{x:.3f}"
    return f"{x:.2e}"


def _lead(hm: dict[str, object]) -> str:
    if hm.get("lead_time") is None:
        return " (no warning before it)"
    lead = int(hm["lead_time"])  # type: ignore[call-overload]
    when = f"{lead} step(s) after" if lead > 0 else (
        "at the same step as" if lead == 0 else f"{-lead} step(s) before")
    return f"; {when} the first warning ({hm['warning_kind']}, step {hm['first_warning_step']})"


def _dense_note(dense_start: object) -> str:
    """`` after the first N`` when the first ``N`` steps were all sampled."""
    return f" after the first {dense_start}" if isinstance(dense_start, int) and dense_start else ""


def render_report(report: HealthReport, width: int = 100) -> str:
    """The report as text: a header, a per-layer table at the last check, the findings.

    A finding names its layers with the table's row number (``#3 dense4``), so the two agree.

    Args:
        report: the health report.
        width: wrap width for finding messages.

    >>> from steadygrad.diagnostics.report import HealthReport
    >>> from steadygrad.diagnostics.series import HealthSeries
    >>> print(render_report(HealthReport(HealthSeries.empty([], [0]), [])).splitlines()[-1])
    no findings: gradients look healthy
    """
    s = report.series
    lines = [f"gradient health  ({s.checks} checks, steps {s.steps[0] if s.steps else '-'}"
             f"..{s.steps[-1] if s.steps else '-'}, every {report.meta.get('every', '?')}"
             f"{_dense_note(report.meta.get('dense_start'))})"]
    head = f"{'#':>3} {'layer':<18} {'act':<12}" + "".join(f"{h:>10}" for _, h in _COLUMNS)
    lines += [head, "-" * len(head)]
    for i, name in enumerate(s.layers):
        act = (s.meta[i].activation if i < len(s.meta) else None) or "-"
        vals = "".join(f"{format_value(s.values[k][-1, i]) if s.checks else '-':>10}"
                       for k, _ in _COLUMNS)
        lines.append(f"{i:>3} {name[:18]:<18} {act[:12]:<12}{vals}")
    if s.checks and math.isfinite(s.grad_norm[-1]):
        lines.append(f"global gradient norm: {format_value(s.grad_norm[-1])}")
    lines.append("")
    hm = report.harm()
    if hm is not None and hm["kind"] == "non_finite_loss":
        lines.append(f"training diverged: the loss became NaN/Inf at step {hm['step']}"
                     + _lead(hm))
    elif hm is not None:
        lines.append(f"learning impaired: the loss stopped improving at step {hm['step']}"
                     + _lead(hm))
    if not report.findings:
        lines.append("no gradient-health findings at the monitored steps" if hm is not None
                     else "no findings: gradients look healthy")
    for f in report.findings:
        raised = "" if f.raised_step is None or f.raised_step == f.first_step else \
            f", raised at step {f.raised_step}"
        rows = {name: i for i, name in enumerate(s.layers)}
        named = ", ".join(f"#{rows[n]} {n}" if n in rows else n for n in f.layers)
        lines.append(f"[{_MARK.get(f.severity, '?')}] {f.severity.upper()} {f.kind} "
                     f"(from step {f.first_step}{raised}; layers: {named[:width]})")
        lines.append(f"    {f.message}")
        for r in f.remedies[:3]:
            patch = ", ".join(f"{k}={v}" for k, v in r.patch.items())
            lines.append(f"    -> {patch}: {r.why}")
    return "\n".join(lines)
