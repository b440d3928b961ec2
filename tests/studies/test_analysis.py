"""Tests of the study analyses in :mod:`steadygrad.studies.analysis`."""

from __future__ import annotations

import json
import re
from pathlib import Path

from steadygrad.experiments.config import config_from_dict
from steadygrad.experiments.execute import run_config
from steadygrad.experiments.report import RunRecord, SweepReport, summarize
from steadygrad.studies.analysis import analyze_regularization, mc_dropout_accuracy


def test_mc_dropout_sentence_uses_the_ranked_single_pass(tmp_path: Path) -> None:
    """Issue 19: the regularization study printed the mc_dropout setup's single pass as 0.858
    (a fresh eval pass, itself random with MC dropout layers) and 0.8654 (the runs' recorded
    val_accuracy, the ranking's number). The sentence now uses the recorded number, so it is
    the ranking's mean; control: a fresh eval pass of these runs differs from it."""
    runs, fresh = [], []
    for seed in (0, 1):
        name = f"setup=mc_dropout-seed={seed}"
        cfg = config_from_dict({"data": {"name": "digits", "n_train": 200},
                                "model": {"hidden": [32], "dropout": 0.5, "dropout_kind": "mc"},
                                "train": {"epochs": 1, "seed": seed},
                                "diagnostics": {"enabled": False}})
        run_dir = tmp_path / "runs" / name
        assert run_config(cfg, run_dir).status == "done"
        final = json.loads((run_dir / "summary.json").read_text())["final"]
        runs.append(RunRecord(name, (("study.setup", "mc_dropout"),), seed, "done",
                              final=final))
        got = mc_dropout_accuracy(run_dir)
        assert got is not None
        fresh.append(got[1])
    report = SweepReport("reg", tmp_path, "val_accuracy", tuple(runs),
                         tuple(summarize(tuple(runs), "val_accuracy")), ("study.setup",))
    ranked = report.configs[0].mean
    assert ranked is not None
    sentence = next(s for s in analyze_regularization(report, {}) if s.startswith("MC dropout"))
    match = re.search(r"single pass recorded by the runs (\d\.\d{3}) ", sentence)
    assert match and match.group(1) == f"{ranked:.3f}", sentence
    # the control: a fresh eval-mode pass is another random draw of the MC dropout layers
    assert sum(fresh) / 2 != ranked
