"""HTML and Markdown renderings of a :class:`~steadygrad.experiments.report.SweepReport`.

The HTML page is self-contained: one file with inline CSS and every figure embedded as a
``data:image/png;base64`` URI; it references no external URL, script or font, so it opens
offline and can be mailed. All text is HTML-escaped.

Example:
    >>> from pathlib import Path
    >>> from steadygrad.experiments.report import RunRecord, SweepReport, summarize
    >>> runs = (RunRecord("r<1>", (), 0, "done", final={"loss": 0.5}),)
    >>> rep = SweepReport("demo", Path("."), "loss", runs, tuple(summarize(runs, "loss")), ())
    >>> page = render_html(rep, {})
    >>> page.startswith("<!DOCTYPE html>"), "r&lt;1&gt;" in page, "http" in page
    (True, True, False)
    >>> render_markdown(rep, {}).splitlines()[0]
    '# Sweep report: demo'
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
from collections.abc import Sequence
from typing import Any

from steadygrad.experiments.report import ConfigResult, SweepReport, fmt
from steadygrad.experiments.report_plots import profile_runs
from steadygrad.experiments.report_text import config_health_sentence

__all__ = ["render_html", "render_markdown"]

_CSS = """
body{font-family:-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
 margin:0;background:#f5f6f8;color:#1f2328;line-height:1.45}
main{max-width:1180px;margin:0 auto;padding:28px 32px 48px;background:#fff;
 box-shadow:0 0 0 1px #e3e6ea}
h1{font-size:28px;margin:0 0 4px}h2{font-size:20px;margin:32px 0 10px;
 border-bottom:2px solid #e3e6ea;padding-bottom:4px}
.meta{color:#59636e;font-size:13px;margin-bottom:18px}
ul.summary{background:#f0f6ff;border-left:4px solid #2f6fde;padding:12px 16px 12px 34px;
 margin:0}ul.summary li{margin:3px 0}
table{border-collapse:collapse;width:100%;font-size:13px;margin:6px 0 4px}
th,td{padding:5px 8px;border-bottom:1px solid #e3e6ea;text-align:left;vertical-align:top}
th{background:#f0f2f4;font-weight:600}tr:nth-child(even) td{background:#fafbfc}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.best td{background:#eaf7ee}
.badge{display:inline-block;padding:1px 7px;border-radius:9px;font-size:11px;font-weight:600;
 color:#fff;white-space:nowrap}.error{background:#cf222e}.warning{background:#bf8700}
.info{background:#57606a}.ok{background:#1a7f37}.diverged{background:#8250df}
.failed{background:#cf222e}.done{background:#1a7f37}.pending,.running{background:#57606a}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:12px}
figure{margin:8px 0 4px}figure img{max-width:100%;border:1px solid #e3e6ea}
figcaption{color:#59636e;font-size:12px}code{font-size:12px;background:#f0f2f4;
 padding:1px 4px;border-radius:3px}footer{color:#8c959f;font-size:12px;margin-top:36px}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _badge(text: str, css: str | None = None) -> str:
    return f'<span class="badge {_e(css or text)}">{_e(text)}</span>'


def _seconds(value: float | None, std: float | None = None) -> str:
    """``"0.0134 ± 0.0012"`` with 3 significant digits; ``"-"`` for None."""
    if value is None:
        return "-"
    return f"{value:.3g}" + ("" if std is None else f" ± {std:.2g}")


def _metric_columns(report: SweepReport) -> list[str]:
    logged: list[str] = []
    for run in report.runs:
        logged += [k for k in (run.final or {}) if k not in logged]
    extra = [k for k in ("val_loss", "loss", "val_accuracy", "accuracy") if k in logged]
    return [report.metric, *[k for k in extra if k != report.metric]]


def _mean(config: ConfigResult, key: str) -> str:
    from steadygrad.experiments.report import mean_std

    values = [(r.final or {}).get(key) for r in config.runs if r.status == "done"]
    mean, std = mean_std([float(v) for v in values if isinstance(v, (int, float))])
    return fmt(mean, std)


def _status(config: ConfigResult) -> list[tuple[str, int]]:
    return [(s, config.count(s)) for s in ("done", "diverged", "failed", "running", "pending")
            if config.count(s)]


def _worst(config: ConfigResult) -> str | None:
    if config.count("diverged"):
        return "diverged"
    for severity in ("error", "warning", "info"):
        if any(f.severity == severity for f in config.findings):
            return severity
    return None


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], numeric: set[int],
           classes: Sequence[str] = ()) -> str:
    out = ["<table><thead><tr>", *(f"<th>{_e(h)}</th>" for h in head), "</tr></thead><tbody>"]
    for i, row in enumerate(rows):
        cls = f' class="{classes[i]}"' if i < len(classes) and classes[i] else ""
        out.append(f"<tr{cls}>" + "".join(
            f'<td class="num">{cell}</td>' if j in numeric else f"<td>{cell}</td>"
            for j, cell in enumerate(row)) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _figure(images: dict[str, bytes], name: str, caption: str) -> str:
    if name not in images:
        return f"<p><em>No data for this figure ({_e(caption)}).</em></p>"
    data = base64.b64encode(images[name]).decode("ascii")
    return (f'<figure><img alt="{_e(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{_e(caption)}</figcaption></figure>")


def _ranking_rows(report: SweepReport) -> tuple[list[str], list[list[str]]]:
    columns = _metric_columns(report)
    head = ["#", "config", *columns, "seeds", "s / epoch", "runs", "health"]
    rows = []
    for rank, c in enumerate(report.configs, 1):
        status = " ".join(f"{n} {s}" for s, n in _status(c))
        worst = _worst(c)
        kinds = sorted({f.kind for f in c.findings})
        if c.count("diverged"):
            kinds.insert(0, f"{c.count('diverged')}/{len(c.runs)} diverged")
        health = ", ".join(kinds)
        rows.append([str(rank), c.label, fmt(c.mean, c.std),
                     *(_mean(c, k) for k in columns[1:]), f"{c.n}/{len(c.runs)}",
                     _seconds(c.seconds_per_epoch, c.seconds_std), status,
                     "ok" if worst is None else health if worst == "diverged"
                     else f"{worst}: {health}"])
    return head, rows


def render_html(report: SweepReport, images: dict[str, bytes]) -> str:
    """The self-contained report page for ``report`` with the PNG ``images`` embedded.

    Example:
        >>> from pathlib import Path
        >>> from steadygrad.experiments.report import RunRecord, SweepReport, summarize
        >>> runs = tuple(RunRecord(f"activation={a}-seed={s}", (("model.activation", a),), s,
        ...                        "done", final={"val_accuracy": v}, seconds_per_epoch=t)
        ...              for a, s, v, t in [("relu", 0, 0.9, 0.1), ("relu", 1, 0.8, 0.1),
        ...                                 ("tanh", 0, 0.7, 0.2), ("tanh", 1, 0.6, 0.2)])
        >>> report = SweepReport("acts", Path("sweeps/acts"), "val_accuracy", runs,
        ...                      tuple(summarize(runs, "val_accuracy")), ("model.activation",))
        >>> page = render_html(report, {"time": b"\\x89PNG fake bytes"})
        >>> page.startswith("<!DOCTYPE html>"), "<title>Sweep report: acts</title>" in page
        (True, True)
        >>> "data:image/png;base64,iVBORyBmYWtlIGJ5dGVz" in page, "http://" in page
        (True, False)
    """
    from steadygrad import __version__

    better = "higher" if report.direction == "max" else "lower"
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Sweep report: {_e(report.name)}</title><style>{_CSS}</style></head>",
        f"<body><main><h1>Sweep report: {_e(report.name)}</h1>",
        f'<div class="meta">{_e(report.sweep_dir)} · ranked by <code>{_e(report.metric)}'
        f"</code> ({better} is better) · {len(report.runs)} runs · {_e(now)}</div>",
        '<h2>Summary</h2><ul class="summary">',
        *(f"<li>{_e(s)}</li>" for s in report.sentences()), "</ul>",
    ]
    head, rows = _ranking_rows(report)
    ranking = []
    for row, c in zip(rows, report.configs, strict=True):
        cells = [_e(x) for x in row]
        worst = _worst(c)
        cells[-1] = _badge(worst) + " " + _e(row[-1].split(": ", 1)[-1]) if worst \
            else _badge("ok")
        ranking.append(cells)
    classes = ["best" if i == 0 and c.mean is not None else ""
               for i, c in enumerate(report.configs)]
    parts += [f"<h2>Ranking by {_e(report.metric)} (mean ± std over seeds)</h2>",
              _table(head, ranking, {0, *range(2, len(head) - 2)}, classes)]
    parts += ["<h2>Learning curves</h2>",
              _figure(images, "curves", f"training loss and {report.metric} per epoch; "
                      "line: mean over seeds, band: ± 1 std")]
    parts += ["<h2>Time per epoch</h2>",
              _figure(images, "time", "seconds per training epoch, mean ± std over seeds")]
    parts += ["<h2>Gradient health</h2>"]
    health_rows = []
    for c in report.configs:
        if not c.findings:
            badge = _badge("diverged") if c.count("diverged") else _badge("ok")
            health_rows.append([_e(c.label), badge, "-", "-", "-",
                                _e(config_health_sentence(c)), "-"])
        for f in c.findings:
            health_rows.append([_e(c.label), _badge(f.severity), _e(f.kind), _e(f.share),
                                _e(", ".join(f.layers) or "-"), _e(f.message),
                                _e(f.remedy or "-")])
    parts.append(_table(["config", "severity", "finding", "runs", "layers", "evidence",
                         "first remedy"], health_rows, {3}))
    parts.append(_figure(images, "gradients", "per-layer gradient RMS at the last monitor "
                         "check (geometric mean over seeds); global gradient norm before "
                         "clipping (trainer) and after clipping (monitor)"))
    profiles = profile_runs(report)
    if profiles:
        parts.append("<h2>Per-layer gradients by config</h2><div class=\"grid\">")
        parts += [_figure(images, name, f"#{report.configs.index(c) + 1} {c.label} "
                          f"(run {run}): gradient RMS by depth during training")
                  for name, c, run in profiles]
        parts.append("</div>")
    parts += ["<h2>All runs</h2>", _runs_table(report)]
    parts += [f"<footer>Generated by steadygrad {_e(__version__)} from the files of "
              f"{_e(report.sweep_dir)}; results.csv holds the same numbers.</footer>",
              "</main></body></html>"]
    return "\n".join(parts) + "\n"


def _run_rows(report: SweepReport) -> tuple[list[str], list[list[str]]]:
    columns = _metric_columns(report)
    head = ["run", "seed", "status", *columns, "s / epoch", "note"]
    rows = []
    for r in report.runs:
        final = r.final or {}
        note = r.error or ((r.diverged or {}).get("reason") or "")
        rows.append([r.name, "" if r.seed is None else str(r.seed), r.status,
                     *(fmt(final.get(k)) for k in columns), _seconds(r.seconds_per_epoch),
                     note])
    return head, rows


def _runs_table(report: SweepReport) -> str:
    head, rows = _run_rows(report)
    cells = [[_e(x) if j != 2 else _badge(x) for j, x in enumerate(row)] for row in rows]
    return _table(head, cells, set(range(3, len(head) - 1)) | {1})


def _md_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    def cell(text: str) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    out = ["| " + " | ".join(cell(h) for h in head) + " |",
           "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(cell(x) for x in row) + " |" for row in rows]
    return out


def render_markdown(report: SweepReport, image_files: dict[str, str]) -> str:
    """``report.md``: the same sections as the page, figures linked as relative files.

    Example:
        >>> from pathlib import Path
        >>> from steadygrad.experiments.report import RunRecord, SweepReport, summarize
        >>> runs = tuple(RunRecord(f"activation={a}-seed={s}", (("model.activation", a),), s,
        ...                        "done", final={"val_accuracy": v}, seconds_per_epoch=t)
        ...              for a, s, v, t in [("relu", 0, 0.9, 0.1), ("relu", 1, 0.8, 0.1),
        ...                                 ("tanh", 0, 0.7, 0.2), ("tanh", 1, 0.6, 0.2)])
        >>> report = SweepReport("acts", Path("sweeps/acts"), "val_accuracy", runs,
        ...                      tuple(summarize(runs, "val_accuracy")), ("model.activation",))
        >>> lines = render_markdown(report, {"time": "time.png"}).splitlines()
        >>> lines[0], "![Time per epoch](time.png)" in lines
        ('# Sweep report: acts', True)
        >>> print("\\n".join(lines[lines.index("## Ranking by val_accuracy (mean ± std over "
        ...                                      "seeds)") + 2:][:4]))
        | # | config | val_accuracy | seeds | s / epoch | runs | health |
        |---|---|---|---|---|---|---|
        | 1 | activation=relu | 0.8500 ± 0.0707 | 2/2 | 0.1 ± 0 | 2 done | ok |
        | 2 | activation=tanh | 0.6500 ± 0.0707 | 2/2 | 0.2 ± 0 | 2 done | ok |
    """
    better = "higher" if report.direction == "max" else "lower"
    lines = [f"# Sweep report: {report.name}", "",
             f"Ranked by `{report.metric}` ({better} is better); {len(report.runs)} runs in "
             f"`{report.sweep_dir}`.", "", "## Summary", ""]
    lines += [f"- {s}" for s in report.sentences()]
    head, rows = _ranking_rows(report)
    lines += ["", f"## Ranking by {report.metric} (mean ± std over seeds)", "",
              *_md_table(head, rows), ""]
    for name, title in (("curves", "Learning curves"), ("time", "Time per epoch")):
        if name in image_files:
            lines += [f"## {title}", "", f"![{title}]({image_files[name]})", ""]
    lines += ["## Gradient health", ""]
    lines += [f"- {config_health_sentence(c)}" for c in report.configs]
    details = [[c.label, f.severity, f.kind, f.share, ", ".join(f.layers), f.message,
                f.remedy or "-"] for c in report.configs for f in c.findings]
    if details:
        lines += ["", *_md_table(["config", "severity", "finding", "runs", "layers",
                                  "evidence", "first remedy"], details)]
    if "gradients" in image_files:
        lines += ["", f"![Per-layer gradients]({image_files['gradients']})"]
    profiles = [(n, c, r) for n, c, r in profile_runs(report) if n in image_files]
    if profiles:
        lines += ["", "## Per-layer gradients by config", ""]
        lines += [f"![{c.label} (run {r})]({image_files[n]})" for n, c, r in profiles]
    head, rows = _run_rows(report)
    lines += ["", "## All runs", "", *_md_table(head, rows), ""]
    # Run names, settings and errors come from files: no raw HTML reaches a Markdown viewer.
    return html.escape("\n".join(lines), quote=False)
