"""docs/results.md is regenerated from its committed raw results (issue 19, item 7).

The page is made by :func:`render_page` from ``docs/results-data/<mode>.json`` alone: every
table cell and common-wisdom verdict is recomputed here from the per-run rows, and the page
must equal the regeneration byte for byte. The page must also not disagree with itself (one
number per measured quantity) and claim no confidence interval from fewer than 5 seeds.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from steadygrad.errors import ConfigError
from steadygrad.studies._custom import MIN_BOOTSTRAP_SEEDS
from steadygrad.studies.results_data import read_data, rows_of
from steadygrad.studies.results_doc import main, render_page
from steadygrad.studies.wisdom import fmt_stat, mean_of

DOCS = Path(__file__).resolve().parents[2] / "docs"
PAGE = DOCS / "results.md"


def _data() -> dict:
    mode = re.match(r"# Study results \((\w+) mode\)", PAGE.read_text(encoding="utf-8"))
    assert mode, "the page names its mode on its first line"
    return read_data(DOCS / "results-data" / f"{mode.group(1)}.json")


def test_page_equals_its_regeneration_from_the_committed_data() -> None:
    data = _data()
    assert render_page(data, "results.md") == PAGE.read_text(encoding="utf-8")
    for link in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", PAGE.read_text(encoding="utf-8")):
        assert (DOCS / link).is_file(), link
    ran = [name for name, study in data["studies"].items() if study is not None]
    assert len(ran) == 11, ran  # every study of the page has its raw results


def test_regeneration_command_rewrites_the_same_page(tmp_path: Path) -> None:
    data_file = DOCS / "results-data" / f"{_data()['mode']}.json"
    (tmp_path / "results-data").mkdir()
    (tmp_path / "results-data" / data_file.name).write_bytes(data_file.read_bytes())
    assert main([str(tmp_path / "results-data" / data_file.name),
                 str(tmp_path / "results.md")]) == 0
    assert (tmp_path / "results.md").read_text(encoding="utf-8") == \
        PAGE.read_text(encoding="utf-8")


def test_ranking_cells_are_the_rows_means_under_one_rounding_rule() -> None:
    """A property of the committed data, not only of the renderer: each config's
    val_accuracy cell is mean ± std of its runs (wisdom.mean_of) rounded by fmt_stat."""
    data = _data()
    text = PAGE.read_text(encoding="utf-8")
    checked = 0
    for study in data["studies"].values():
        if study is None or study["kind"] != "sweep":
            continue
        cols = study["columns"]
        axes = cols[cols.index("run") + 1:cols.index("seed")]
        rows = rows_of(study)
        for key in {tuple(r[a] for a in axes) for r in rows}:
            mean, std, _ = mean_of(rows, "val_accuracy", **dict(zip(axes, key, strict=True)))
            if mean is None:
                continue
            label = ", ".join(f"{a.rsplit('.', 1)[-1]}={v}" for a, v in zip(axes, key,
                                                                           strict=True))
            assert f"| {label} | {fmt_stat(mean, std)} |" in text, label
            checked += 1
    assert checked > 50


def test_the_page_does_not_disagree_with_itself() -> None:
    text = PAGE.read_text(encoding="utf-8")
    # transfer: the conclusions' and the wisdom check's error rates of each pair agree
    said = dict(re.findall(r"- (\S+): transfer \w+ the error rate by [\d.]+% \(([\d.]+% → "
                           r"[\d.]+%)\)", text))
    checked = dict(re.findall(r"(\S+): error ([\d.]+% → [\d.]+%) \(error-rate", text))
    assert said and said == checked
    # MC dropout: the single pass of each setup is its val_accuracy in the ranking
    singles = re.findall(r"MC dropout \(30 passes\) on (\w+): val accuracy [\d.]+, \w+ "
                         r"than the single pass recorded by the runs ([\d.]+) ", text)
    assert {setup for setup, _ in singles} >= {"dropout", "mc_dropout"}
    for setup, single in singles:
        cell = re.search(rf"\| setup={setup} \| ([\d.]+)(?: ± [\d.]+)? \|", text)
        assert cell and cell.group(1) == single, setup


def test_no_confidence_interval_from_fewer_than_5_seeds() -> None:
    text = PAGE.read_text(encoding="utf-8")
    for n in re.findall(r"CI of the reduction over the (\d+) seeds", text):
        assert int(n) >= MIN_BOOTSTRAP_SEEDS
    assert "confidence interval" not in text.replace(
        "a spread, not a confidence interval", "").replace("no confidence interval", "")


def test_a_file_of_another_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"format": "other/1"}')
    with pytest.raises(ConfigError, match=r"format.*other/1.*steadygrad\.results/1"):
        read_data(path)
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match="results data file"):
        read_data(path)
