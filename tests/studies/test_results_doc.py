"""The results page holds exactly what the finished studies measured."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from steadygrad.studies.results_doc import write_results
from steadygrad.studies.runner import run_study


@pytest.mark.slow
def test_page_collects_a_finished_study_and_lists_the_missing(tmp_path: Path) -> None:
    result = run_study("clipping", out_dir=tmp_path / "studies", seeds=1)
    page = write_results(tmp_path / "studies", tmp_path / "docs" / "results.md", mode="quick",
                         studies=["clipping", "depth"])
    text = page.read_text()
    assert "Studies not run yet: depth" in text
    for sentence in json.loads((result.sweep_dir / "study.json").read_text())["conclusions"]:
        assert sentence in text
    assert "`STEADYGRAD_DATA=<folder with fashion-mnist.npz> steadygrad study clipping`" in text
    assert "**Checked against common wisdom.** Common wisdom: gradient clipping" in text
    assert (tmp_path / "docs" / "images" / "results" / "clipping-quick.png").is_file()
    assert "![Gradient clipping](images/results/clipping-quick.png)" in text
    assert "| # | config | val_accuracy |" in text  # the ranking table


def test_unknown_study_name_is_refused(tmp_path: Path) -> None:
    from steadygrad.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match="did you mean 'clipping'"):
        write_results(tmp_path, tmp_path / "r.md", studies=["cliping"])
    assert not (tmp_path / "r.md").exists()


def test_cli_collect_writes_the_page_without_running_anything(tmp_path: Path) -> None:
    from steadygrad.cli.main import main

    page = tmp_path / "docs" / "results.md"
    assert main(["study", "--full", "--out", str(tmp_path / "none"), "--collect",
                 str(page)]) == 0
    text = page.read_text()
    assert text.startswith("# Study results (full mode)")
    assert "Studies not run yet: unstable_gradients, initializers, activations" in text
    assert not (tmp_path / "none").exists()  # collecting creates no study folder
