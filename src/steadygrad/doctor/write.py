"""Write the doctor's outputs: repaired config, JSON, Markdown, HTML and the runs' sweep report.

Files in the output folder:

- ``repaired.toml``: the best successful candidate's config (only when one succeeded);
- ``doctor.json``: :meth:`DoctorResult.to_dict`;
- ``doctor.md`` and ``doctor.html``: the verdict and the ranking table (HTML self-contained);
- ``sweep.json`` + ``runs/``: every run, laid out as a sweep, and ``report/`` written by
  :func:`steadygrad.experiments.report.write_report` (HTML, CSV, Markdown, figures).

Example:
    >>> print(table_rows_header())
    ['trial', 'role', 'patch', 'metric (mean ± std)', 'problem seeds', 'problems', 'success']
"""

from __future__ import annotations

import dataclasses
import html
import json
from pathlib import Path
from typing import Any

from steadygrad.doctor.result import DoctorResult, fmt, succeeded
from steadygrad.doctor.trials import Trial
from steadygrad.doctor.verdict import describe_patch
from steadygrad.experiments.config import config_from_dict, config_to_dict
from steadygrad.experiments.loader import dump_toml
from steadygrad.experiments.store import atomic_write_json, atomic_write_text

__all__ = ["render_html", "render_markdown", "render_text", "table_rows", "table_rows_header",
           "write_outputs"]


def table_rows_header() -> list[str]:
    """Column names of the ranking table (one per cell of :func:`table_rows`).

    Example:
        >>> table_rows_header()[:3], len(table_rows_header())
        (['trial', 'role', 'patch'], 7)
        >>> from steadygrad.doctor.result import demo_result
        >>> all(len(row) == len(table_rows_header()) for row in table_rows(demo_result()))
        True
    """
    return ["trial", "role", "patch", "metric (mean ± std)", "problem seeds", "problems",
            "success"]


def _ordered(r: DoctorResult) -> list[Trial]:
    head = [r.baseline] + ([r.reference] if r.reference is not None else [])
    return head + r.ranking


def table_rows(r: DoctorResult) -> list[list[str]]:
    """One row per trial: baseline, reference, then candidates in rank order.

    >>> from steadygrad.doctor.result import demo_result
    >>> [row[0] for row in table_rows(demo_result())]
    ['baseline', 'reference', 'relu_he', 'glorot_init']
    """
    rows = []
    for t in _ordered(r):
        ok = succeeded(t, r.baseline, r.metric) if t.role in ("candidate", "combination") \
            else None
        rows.append([t.label, t.role, describe_patch(t.patch) if t.role != "reference"
                     else "healthy reference", fmt(t.mean, t.std),
                     f"{t.problem_seeds}/{len(t.runs)}", ", ".join(t.problems) or "-",
                     "-" if ok is None else ("yes" if ok else "no")])
    return rows


def render_text(r: DoctorResult, width: int = 100) -> str:
    """The terminal summary: ranking table, skipped candidates and the verdict.

    >>> from steadygrad.doctor.result import demo_result
    >>> print(render_text(demo_result()).splitlines()[0])
    steadygrad doctor: demo
    """
    head = table_rows_header()
    head[3] = r.metric
    rows = table_rows(r)
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=True)]
    widths[2] = min(widths[2], 44)
    widths[5] = min(widths[5], 30)

    def line(cells: list[str]) -> str:
        return "  ".join(str(c)[:w].ljust(w) for c, w in zip(cells, widths, strict=True))

    out = [f"steadygrad doctor: {r.config_name}", "", line(head),
           line(["-" * w for w in widths])]
    out += [line(row) for row in rows]
    if r.skipped:
        out += ["", "skipped:"] + [f"  {c}: {w}" for c, w in r.skipped]
    out += ["", "verdict:"] + [f"  - {s}" for s in r.verdict()]
    if r.best is not None:
        from steadygrad.doctor.remedy_code import as_pytorch, as_toml

        out += ["", f"remedy {r.best.label} as a config patch:"]
        out += ["  " + line for line in as_toml(r.best.patch).splitlines()]
        out += ["", "as PyTorch code:"] + ["  " + line for line in
                                           as_pytorch(r.best.patch).splitlines()]
    if r.files:
        out += ["", f"report: {r.files.get('html', '')}"]
    return "\n".join(out)


def render_markdown(r: DoctorResult) -> str:
    """``doctor.md``: the verdict, the trials table and the skipped candidates.

    >>> from steadygrad.doctor.result import demo_result
    >>> "| relu_he | candidate |" in render_markdown(demo_result())
    True
    """
    head = table_rows_header()
    head[3] = r.metric
    lines = [f"# steadygrad doctor: {r.config_name}", "", "## Verdict", ""]
    lines += [f"- {s}" for s in r.verdict()]
    lines += ["", "## Trials", "", "| " + " | ".join(head) + " |",
              "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |"
              for row in table_rows(r)]
    lines += _remedy_section(r)
    if r.skipped:
        lines += ["", "## Skipped candidates", ""] + [f"- {c}: {w}" for c, w in r.skipped]
    lines += ["", "Every run's history and health report: [report/report.html]"
              "(report/report.html).", ""]
    return "\n".join(lines)


_CSS = ("body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:4px 8px;"
        "text-align:left}td:nth-child(3),td:nth-child(6){overflow-wrap:anywhere}"
        "th{background:#f3f3f3}"
        ".yes{color:#070;font-weight:bold}.no{color:#a00}li{margin:.3em 0}")


def render_html(r: DoctorResult) -> str:
    """``doctor.html``: self-contained (inline CSS, no external URL).

    >>> from steadygrad.doctor.result import demo_result
    >>> page = render_html(demo_result())
    >>> page.count("<tr>"), "http" in page
    (5, False)
    """
    e = html.escape
    head = table_rows_header()
    head[3] = r.metric
    rows = "".join(
        "<tr>" + "".join(f'<td class="{e(c)}">{e(c)}</td>' if i == 6 else f"<td>{e(c)}</td>"
                         for i, c in enumerate(row)) + "</tr>" for row in table_rows(r))
    skipped = "".join(f"<li><b>{e(c)}</b>: {e(w)}</li>" for c, w in r.skipped)
    verdict = "".join(f"<li>{e(s)}</li>" for s in r.verdict())
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>steadygrad doctor: "
            f"{e(r.config_name)}</title><style>{_CSS}</style></head><body>"
            f"<h1>steadygrad doctor: {e(r.config_name)}</h1><h2>Verdict</h2><ul>{verdict}</ul>"
            f"<h2>Trials</h2><table><tr>{''.join(f'<th>{e(h)}</th>' for h in head)}</tr>"
            f"{rows}</table>"
            + (f"<h2>Skipped candidates</h2><ul>{skipped}</ul>" if skipped else "")
            + "<p>Every run's curves, gradient profiles and findings: "
              "<a href='report/report.html'>report/report.html</a>.</p></body></html>\n")


def _sweep_json(r: DoctorResult) -> dict[str, Any]:
    runs = []
    for t in _ordered(r) if r.healthy is False else [r.baseline]:
        for run in t.runs:
            runs.append({"name": Path(run.run_dir).name,
                         "settings": [["doctor.trial", t.label], ["train.seed", run.seed]]})
    return {"spec": {"name": f"doctor-{r.config_name}"}, "runs": runs}


def _code(r: DoctorResult, best: Trial) -> str:
    """``repaired.py``: the best remedy as PyTorch code, with its config patch as a comment."""
    from steadygrad.doctor.remedy_code import as_pytorch, as_toml

    patch = "\n".join("# " + line for line in as_toml(best.patch).splitlines())
    return (f'"""steadygrad doctor: the remedy {best.label} for {r.config_name}, as PyTorch '
            'code.\n\nApply it to your model / training loop (model, optimizer, LR and STEPS '
            'are yours).\n"""\n# The same remedy as a config patch:\n' + patch + "\n\n"
            "import steadygrad  # noqa: F401\nimport torch  # noqa: F401\nfrom torch import nn"
            "  # noqa: F401\n\n\ndef apply(model, optimizer=None):\n"
            + "\n".join("    " + line if line else "" for line in
                        as_pytorch(best.patch).splitlines()) + "\n    return model\n")


def _remedy_section(r: DoctorResult) -> list[str]:
    best = r.best
    if best is None:
        return []
    from steadygrad.doctor.remedy_code import as_pytorch, as_toml

    return ["", f"## The remedy: {best.label}", "", "As a config patch:", "", "```toml",
            as_toml(best.patch), "```", "", "As PyTorch code:", "", "```python",
            as_pytorch(best.patch), "```"]


def write_outputs(r: DoctorResult) -> DoctorResult:
    """Write every output file of ``r`` into ``r.out_dir``; returns ``r`` with ``files`` set.

    >>> import tempfile, pathlib
    >>> from steadygrad.doctor.result import demo_result
    >>> r = write_outputs(demo_result(tempfile.mkdtemp()))
    >>> sorted(p.name for p in pathlib.Path(r.out_dir).iterdir() if p.suffix != "")
    ['doctor.html', 'doctor.json', 'doctor.md', 'repaired.py', 'repaired.toml', 'sweep.json']
    """
    out = Path(r.out_dir)
    files: dict[str, str] = {}
    best = r.best
    if best is not None:
        table = json.loads(json.dumps(best.table))
        table["name"] = f"{r.config_name}-repaired"
        table.setdefault("train", {})["seed"] = r.seeds[0]
        config = config_from_dict(table)
        text = (f"# repaired by steadygrad doctor: {best.label} "
                f"({describe_patch(best.patch)})\n" + dump_toml(config_to_dict(config)))
        files["repaired"] = str(atomic_write_text(out / "repaired.toml", text))
        files["repaired_code"] = str(atomic_write_text(out / "repaired.py", _code(r, best)))
    atomic_write_json(out / "sweep.json", _sweep_json(r))
    try:
        from steadygrad.experiments.report import build_report
        from steadygrad.studies.runner import write_sweep_report

        paths = write_sweep_report(build_report(out, r.metric), out / "report")
        files["report"] = paths["html"]
        if "figures_error" in paths:
            files["figures_error"] = paths["figures_error"]
    except Exception as err:  # the doctor's own report below still stands
        files["report_error"] = f"{type(err).__name__}: {err}"
    files["json"] = str(out / "doctor.json")
    files["markdown"] = str(out / "doctor.md")
    files["html"] = str(out / "doctor.html")
    r = dataclasses.replace(r, files=files)
    atomic_write_json(out / "doctor.json", r.to_dict())
    atomic_write_text(out / "doctor.md", render_markdown(r))
    atomic_write_text(out / "doctor.html", render_html(r))
    return r
