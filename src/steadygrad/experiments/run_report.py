"""The report of one run directory: one self-contained HTML page (``report.html``).

:func:`write_run_report` reads what ``steadygrad train`` wrote (``summary.json``,
``config.toml``, ``history.csv``, ``health.json``) and writes one page with the final
metrics, the learning curves, the learning rate, the gradient norm before and after clipping,
the per-layer health over time (legends, thresholds drawn, empty panels say why) and the
findings with their remedies. Inline CSS, figures as ``data:`` URIs: it opens offline, and the
layout fits a 1280 px wide window (checked in headless Chromium by the tests).

Example:
    >>> import tempfile
    >>> from steadygrad.experiments.config import config_from_dict
    >>> from steadygrad.experiments.execute import run_config
    >>> cfg = config_from_dict({"data": {"name": "digits", "n_train": 64},
    ...                         "model": {"hidden": [8]}, "train": {"epochs": 1}})
    >>> run = run_config(cfg, tempfile.mkdtemp()).run_dir
    >>> path = write_run_report(run)
    >>> path.name, "<img" in path.read_text()
    ('report.html', True)
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from steadygrad.errors import ConfigError
from steadygrad.experiments.report_io import load_json, read_history_csv

__all__ = ["PAGE_CSS", "is_run_dir", "page", "render_run_report", "step_text",
           "write_run_report"]

PAGE_CSS = """
*{box-sizing:border-box}
body{font-family:-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
 margin:0;background:#f5f6f8;color:#1f2328;line-height:1.45;overflow-wrap:anywhere}
main{max-width:1200px;margin:0 auto;padding:24px 28px 40px;background:#fff;
 box-shadow:0 0 0 1px #e3e6ea}
h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:28px 0 8px;
 border-bottom:2px solid #e3e6ea;padding-bottom:4px}
.meta{color:#59636e;font-size:13px;margin-bottom:14px}
table{border-collapse:collapse;width:100%;font-size:13px;margin:6px 0;table-layout:auto}
th,td{padding:4px 8px;border-bottom:1px solid #e3e6ea;text-align:left;vertical-align:top}
th{background:#f0f2f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:8px 0}figure img{max-width:100%;height:auto;border:1px solid #e3e6ea}
figcaption{color:#39424c;font-size:13px}
.badge{display:inline-block;padding:1px 7px;border-radius:9px;font-size:11px;font-weight:600;
 color:#fff}.error{background:#cf222e}.warning{background:#bf8700}.info{background:#57606a}
.ok{background:#1a7f37}.verdict{background:#f0f6ff;border-left:4px solid #2f6fde;
 padding:10px 14px 10px 30px}
code{font-size:12px;background:#f0f2f4;padding:1px 4px;border-radius:3px}
ul.remedies{margin:2px 0 8px;font-size:13px}
"""
"""The stylesheet of the run, study and figures pages (fits 1280 px: nothing wider than the
window, long words wrap, images scale down)."""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def page(title: str, body: str, subtitle: str = "") -> str:
    """A complete self-contained HTML page with :data:`PAGE_CSS`.

    >>> page("t<1>", "<p>x</p>").count("t&lt;1&gt;")
    2
    """
    meta = f'<p class="meta">{_e(subtitle)}</p>' if subtitle else ""
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{_e(title)}</title><style>{PAGE_CSS}</style></head><body><main>"
            f"<h1>{_e(title)}</h1>{meta}{body}</main></body></html>\n")


def figure_html(png: bytes, caption: str) -> str:
    """An embedded PNG with its caption.

    >>> figure_html(b"x", "a < b").endswith("<figcaption>a &lt; b</figcaption></figure>")
    True
    """
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure><img alt="{_e(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{_e(caption)}</figcaption></figure>")


def is_run_dir(path: str | Path) -> bool:
    """Whether ``path`` is a run directory (``summary.json`` and ``config.toml``).

    >>> import tempfile
    >>> is_run_dir(tempfile.mkdtemp())
    False
    """
    p = Path(path)
    return (p / "summary.json").is_file() and (p / "config.toml").is_file()


def _clipping(config: dict[str, Any]) -> dict[str, float]:
    opt = config.get("train", {}).get("optimizer", {})
    opt = opt if isinstance(opt, dict) else {}
    return {k: float(opt[k]) for k in ("clipvalue", "clipnorm", "global_clipnorm")
            if opt.get(k) is not None}


def _findings_html(health: dict[str, Any] | None) -> str:
    if health is None:
        return "<p><em>Diagnostics were off for this run: no gradient-health findings.</em></p>"
    findings = health.get("findings", [])
    if not findings:
        return '<p><span class="badge ok">ok</span> No findings: gradients look healthy.</p>'
    out = []
    for f in findings:
        layers = ", ".join(f.get("layers", [])) or "-"
        out.append(f'<p><span class="badge {_e(f.get("severity", "info"))}">'
                   f'{_e(f.get("severity", ""))}</span> <b>{_e(f.get("kind", ""))}</b> '
                   f"(layers {_e(layers)}; from step {_e(f.get('first_step', '?'))}): "
                   f"{_e(f.get('message', ''))}</p>")
        remedies = f.get("remedies", [])
        if remedies:
            items = "".join(
                "<li><code>" + _e(", ".join(f"{k}={v}" for k, v in r.get("patch", {}).items()))
                + f"</code>: {_e(r.get('why', ''))}</li>" for r in remedies)
            out.append(f'<ul class="remedies">{items}</ul>')
    return "".join(out)


_LABELS = {"grad_norm": "grad_norm (before clipping, mean over the epoch)",
           "lr": "lr (last step)"}


_ENGINES = {"eager": "eager", "flat": "flat compiled step",
            "compiled": "torch.compile of the eager step"}


def step_text(step: dict[str, Any] | None) -> str | None:
    """One line on the training step of a run (``summary.json["step"]``), None if unrecorded.

    Args:
        step: ``{"engine": ..., "fallback": ..., "threads": ...}`` as ``fit`` records them in
            ``History.params``.

    Example:
        >>> step_text({"engine": "compiled", "fallback": "no flat rule for LBFGS"})
        'engine: torch.compile of the eager step; flat engine declined: no flat rule for LBFGS'
        >>> step_text({"engine": "eager", "fallback": None, "threads": 2})
        'engine: eager; 2 threads'
        >>> step_text(None) is None
        True
    """
    if not step or not step.get("engine"):
        return None
    engine = str(step["engine"])
    text = f"engine: {_ENGINES.get(engine, engine)}"
    if step.get("fallback"):
        text += f"; flat engine declined: {step['fallback']}"
    if step.get("threads"):
        n = step["threads"]
        text += f"; {n} thread{'' if n == 1 else 's'}"
    return text


def _metrics_table(summary: dict[str, Any]) -> str:
    final = summary.get("final") or {}
    rows = "".join(
        f"<tr><td>{_e(_LABELS.get(k, k))}</td><td class='num'>"
        f"{_e(f'{v:.4g}' if isinstance(v, float) else v)}</td></tr>"
        for k, v in final.items() if k != "seconds")
    return f"<table><thead><tr><th>metric (last epoch)</th><th>value</th></tr></thead>" \
           f"<tbody>{rows}</tbody></table>" if rows else "<p><em>No epoch finished.</em></p>"


def render_run_report(run_dir: str | Path) -> str:
    """The HTML page of one run directory (see the module doc).

    Raises:
        ConfigError: ``run_dir`` is not a run directory.
    """
    from steadygrad.experiments.loader import read_table
    from steadygrad.experiments.run_report_plots import (
        curves_png,
        grad_norm_png,
        layer_health_png,
        lr_png,
    )

    run_dir = Path(run_dir)
    if not is_run_dir(run_dir):
        raise ConfigError("RUN_DIR", str(run_dir), "a run directory (summary.json, config.toml)",
                          hint="pass runs/NAME as written by steadygrad train")
    summary = load_json(run_dir / "summary.json") or {}
    config = read_table(run_dir / "config.toml")
    history = (read_history_csv(run_dir / "history.csv")
               if (run_dir / "history.csv").is_file() else {})
    health = load_json(run_dir / "health.json") if (run_dir / "health.json").is_file() else None
    epochs = summary.get("epochs_run") or len(history.get("loss", []))
    total = (health or {}).get("meta", {}).get("steps")
    spe = int(total) // int(epochs) if total and epochs else None
    status = summary.get("status", "?")
    parts = [f"<h2>Outcome</h2><p>Status <b>{_e(status)}</b> after {_e(epochs)} epochs"
             + (f"; stopped: {_e(summary['stopped_reason'])}"
                if summary.get("stopped_reason") else "") + ".</p>", _metrics_table(summary)]
    step = step_text(summary.get("step"))
    if step is not None:
        parts.insert(1, f"<p>Training step: {_e(step)}.</p>")
    clipping = _clipping(config)
    sections = (
        ("Learning curves", curves_png(history), "no epoch finished: no history.csv"),
        ("Learning rate", lr_png(history), "the learning rate was not logged"),
        ("Gradient norm before and after clipping",
         grad_norm_png(history, health, clipping, spe), "no gradient norm was logged"),
        ("Per-layer health over time", layer_health_png(health),
         "diagnostics were off ([diagnostics] enabled = false): no per-layer series"),
    )
    for title, fig, why in sections:
        parts.append(f"<h2>{_e(title)}</h2>")
        parts.append(figure_html(*fig) if fig is not None else f"<p><em>Empty: {_e(why)}.</em></p>")
    parts.append("<h2>Findings and remedies</h2>")
    parts.append(_findings_html(health))
    parts.append("<h2>Config</h2><pre style='white-space:pre-wrap;font-size:12px'>"
                 + _e(json.dumps(config, indent=1, default=str)) + "</pre>")
    subtitle = f"run directory {run_dir}; seeds {summary.get('seeds', {})}"
    return page(f"Run report: {summary.get('name', run_dir.name)}", "".join(parts), subtitle)


def write_run_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write :func:`render_run_report` to ``out`` (default ``RUN_DIR/report.html``), atomically.

    Returns:
        The written path.
    """
    from steadygrad.experiments.store import atomic_write_text

    target = Path(out) if out is not None else Path(run_dir) / "report.html"
    if target.suffix.lower() != ".html":
        target = target / "report.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, render_run_report(run_dir))
    return target
