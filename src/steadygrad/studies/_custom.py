"""Helpers shared by the custom-run studies (``transfer``, ``pretraining``).

Parameters with ``--set`` overrides, seed statistics (mean ± sample std, a paired bootstrap
interval) and the report files (CSV, Markdown, HTML, JSON).

Example:
    >>> mean_std([0.5, 0.7])
    (0.6, 0.1414)
    >>> study_params({"params": {"seeds": 3, "lr": 0.1}}, None, ["lr=0.5"])
    {'seeds': 3, 'lr': 0.5}
"""

from __future__ import annotations

import csv
import html
import io
import math
import random
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from steadygrad.errors import ConfigError
from steadygrad.experiments.loader import apply_overrides
from steadygrad.experiments.store import atomic_write_json, atomic_write_text

__all__ = ["MIN_BOOTSTRAP_SEEDS", "bootstrap_ci", "csv_text", "mean_std", "study_params",
           "write_study_files"]


def study_params(spec: Mapping[str, Any], seeds: int | None,
                 overrides: Sequence[str]) -> dict[str, Any]:
    """The study's ``[params]`` with ``--set KEY=VALUE`` overrides and ``--seeds`` applied.

    Raises:
        ConfigError: an override names an unknown parameter, or changes a value's type.

    Example:
        >>> study_params({"params": {"seeds": 3}}, 2, [])
        {'seeds': 2}
        >>> study_params({"params": {"seeds": 3}}, None, ["seed=2"])
        Traceback (most recent call last):
        ...
        steadygrad.errors.ConfigError: --set seed: got 2; expected one of the study \
parameters seeds
    """
    base = dict(spec.get("params", {}))
    params = apply_overrides(base, overrides)
    for key, value in params.items():
        if key not in base:
            raise ConfigError(f"--set {key}", value,
                              f"one of the study parameters {', '.join(sorted(base))}")
        old = base[key]
        if old is not None and value is not None and not (
            isinstance(value, type(old)) or (isinstance(old, float) and isinstance(value, int))
        ):
            raise ConfigError(f"--set {key}", value, f"a {type(old).__name__} like {old!r}")
    if seeds is not None:
        params["seeds"] = seeds
    return params


def mean_std(values: Sequence[float], digits: int = 4) -> tuple[float, float]:
    """Mean and sample standard deviation (n − 1; 0 for one value), rounded.

    Example:
        >>> mean_std([1.0])
        (1.0, 0.0)
    """
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return round(mean, digits), round(std, digits)


MIN_BOOTSTRAP_SEEDS = 5
"""Fewest seeds for which :func:`bootstrap_ci` reports an interval."""


def bootstrap_ci(pairs: Sequence[tuple[float, float]],
                 statistic: Callable[[Sequence[tuple[float, float]]], float | None],
                 *, level: float = 0.95, resamples: int = 10000,
                 seed: int = 0) -> tuple[float, float] | None:
    """Paired bootstrap percentile interval of ``statistic`` over the seeds (Efron, 1979).

    The seeds (pairs) are resampled with replacement; resamples where the statistic is
    undefined (None) are skipped. None with fewer than :data:`MIN_BOOTSTRAP_SEEDS` pairs
    (with 2 seeds the bootstrap has 3 distinct outcomes: no interval worth a "95%") or no
    defined resample.

    Example:
        >>> diff = lambda ps: sum(a - b for a, b in ps) / len(ps)
        >>> bootstrap_ci([(1.0, 0.0)] * 5, diff)
        (1.0, 1.0)
        >>> bootstrap_ci([(1.0, 0.0), (2.0, 0.0)], diff) is None
        True
    """
    if len(pairs) < MIN_BOOTSTRAP_SEEDS:
        return None
    rng = random.Random(seed)
    stats = []
    for _ in range(resamples):
        value = statistic([pairs[rng.randrange(len(pairs))] for _ in pairs])
        if value is not None:
            stats.append(value)
    if not stats:
        return None
    stats.sort()
    lo = stats[math.floor((1 - level) / 2 * (len(stats) - 1))]
    hi = stats[math.ceil((1 + level) / 2 * (len(stats) - 1))]
    return lo, hi


def csv_text(rows: Sequence[Mapping[str, Any]]) -> str:
    """Rows (dicts with the same keys) as CSV text.

    Example:
        >>> print(csv_text([{"a": 1, "b": 0.5}]), end="")
        a,b
        1,0.5
    """
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def write_study_files(folder: Path, name: str, mode: str, title: str, question: str,
                      markdown: str, conclusions: list[str], seconds: float,
                      rows: Sequence[Mapping[str, Any]], plot: str | None) -> dict[str, str]:
    """Write ``results.csv``, ``study.md``, ``study.html`` and ``study.json`` into ``folder``.

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp())
        >>> files = write_study_files(d, "x", "quick", "T", "Q?", "# T\\n", ["s."], 1.0,
        ...                           [{"a": 1}], None)
        >>> sorted(files)
        ['csv', 'study_html', 'study_json', 'study_md']
    """
    files = {"csv": str(atomic_write_text(folder / "results.csv", csv_text(rows))),
             "study_md": str(atomic_write_text(folder / "study.md", markdown))}
    from steadygrad.experiments.run_report import figure_html, page
    from steadygrad.studies.runner import study_section_html
    from steadygrad.studies.wisdom import CHECKS, check

    e = html.escape
    verdict = check(name, rows) if name in CHECKS and rows else None
    image = folder / plot if plot else None
    img = (figure_html(image.read_bytes(), title) if image is not None and image.is_file()
           else "")
    body = "".join(f"<pre style='white-space:pre-wrap'>{e(block)}</pre>"
                   for block in markdown.split("\n\n") if block.startswith("|"))
    text = page(title, study_section_html(question, conclusions, verdict, mode) + img
                + f"<h2>Tables</h2>{body}<p>Every run: results.csv next to this page.</p>")
    files["study_html"] = str(atomic_write_text(folder / "study.html", text))
    files["study_json"] = str(atomic_write_json(folder / "study.json", {
        "study": name, "mode": mode, "conclusions": conclusions, "verdict": verdict,
        "seconds": seconds}))
    return files
