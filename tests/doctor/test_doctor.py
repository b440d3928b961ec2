"""Tests of ``steadygrad doctor``: the problem gate, candidates, controlled trials, outputs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from steadygrad.cli.main import main
from steadygrad.doctor.candidates import merge_patches, patch_effect, propose
from steadygrad.doctor.core import doctor, example_config, reference_config
from steadygrad.doctor.result import succeeded
from steadygrad.doctor.trials import IMPAIRED_LOSS_FRACTION, Trial, problem_kinds
from steadygrad.errors import ConfigError
from steadygrad.experiments.config import config_from_dict, config_to_dict
from steadygrad.experiments.loader import load_config


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def test_info_findings_count_only_when_the_loss_stays_near_chance() -> None:
    info = [{"kind": "saturation", "severity": "info"}]
    bound = IMPAIRED_LOSS_FRACTION * math.log(10)
    assert problem_kinds(info, status="done", val_loss=bound + 1e-6, num_classes=10) == (
        "saturation",)
    assert problem_kinds(info, status="done", val_loss=bound - 1e-6, num_classes=10) == ()
    warn = [{"kind": "dead_units", "severity": "warning"}]
    assert problem_kinds(warn, status="done", val_loss=0.01, num_classes=10) == ("dead_units",)
    assert problem_kinds([], status="diverged", val_loss=None, num_classes=10) == ("non_finite",)


def test_candidates_cover_every_finding_first_and_never_repeat_a_patch() -> None:
    kinds = ["saturation", "exploding_gradients", "learning_rate"]
    cands = propose(kinds)
    patches = [json.dumps(c.patch, sort_keys=True) for c in cands]
    assert len(patches) == len(set(patches))
    # round-robin: the first three candidates target the three kinds in order
    assert [c.targets[0] for c in cands[:3]] == kinds
    assert all(set(c.targets) <= set(kinds) for c in cands)


def test_patch_effect_resolves_div10_skips_noops_and_invalid_keys() -> None:
    raw = config_to_dict(example_config())
    table, why = patch_effect(raw, {"train.optimizer.learning_rate": "div10"})
    assert why is None and table is not None
    assert table["train"]["optimizer"]["learning_rate"] == pytest.approx(0.001)
    # digits standardizes by default: setting it again changes nothing
    assert patch_effect(raw, {"data.standardize": True})[0] is None
    assert str(patch_effect(raw, {"model.residual": False})[1]).startswith("not applicable")
    assert merge_patches({"model.activation": "selu"}, {"model.activation": "elu"}) is None


def test_bad_arguments_fail_before_any_run(tmp_path: Path) -> None:
    (tmp_path / "x").write_text("keep me")
    with pytest.raises(ConfigError, match="out_dir"):
        doctor(example_config(), out_dir=tmp_path)
    with pytest.raises(ConfigError, match="seeds"):
        doctor(example_config(), seeds=0, out_dir=tmp_path / "new")
    assert not (tmp_path / "new").exists()
    assert main(["doctor", "--data", "nope", "--out", str(tmp_path / "n2")]) == 2


def test_healthy_config_runs_no_trial_and_writes_no_repair(tmp_path: Path) -> None:
    cfg = tmp_path / "healthy.toml"
    # healthy = no finding and it learns (3 epochs of Adam 1e-3 on 300 rows end at a validation
    # loss of 2.0, near ln 10: that run learns badly, see tests/doctor/test_impaired.py)
    cfg.write_text('[data]\nname = "digits"\nn_train = 300\n[model]\nhidden = [32]\n'
                   '[train]\nepochs = 5\n[train.optimizer]\nname = "adam"\n'
                   'learning_rate = 0.01\n')
    out = tmp_path / "out"
    assert main(["doctor", str(cfg), "--seeds", "1", "--out", str(out), "--json",
                 "--quiet"]) == 0
    doc = json.loads((out / "doctor.json").read_text())
    assert doc["healthy"] is True and doc["trials"] == [] and doc["best"] is None
    assert doc["baseline"]["runs"][0]["val_loss"] < 0.5 * math.log(10)  # it learned
    assert sorted(p.name for p in (out / "runs").iterdir()) == ["baseline-seed=0"]
    assert not (out / "repaired.toml").exists()
    assert "nothing needs fixing" in " ".join(doc["verdict"])


def test_failing_net_is_repaired_by_controlled_trials(tmp_path: Path) -> None:
    raw = config_to_dict(example_config())
    raw["model"]["hidden"] = [32] * 6
    raw["data"]["n_train"] = 500
    config = config_from_dict(raw)
    result = doctor(config, steps=64, seeds=2, max_trials=4, out_dir=tmp_path / "d",
                    reference=reference_config(config))
    base = result.baseline
    assert base.problems, "the N(0,1) sigmoid net must show a problem"
    # controlled: same seeds and the same budget everywhere; fresh models (not resumed)
    for trial in (result.reference, *result.trials):
        assert trial is not None
        assert [r.seed for r in trial.runs] == [r.seed for r in base.runs]
        assert trial.table["train"]["epochs"] == base.table["train"]["epochs"]
        assert trial.table["data"] == base.table["data"] or "data.standardize" in trial.patch
    assert 1 <= len(result.trials) <= 4
    assert any(t.role == "combination" for t in result.trials)
    best = result.best
    assert best is not None and succeeded(best, base, "val_accuracy")
    assert best.problem_seeds == 0 and best.mean is not None and base.mean is not None
    assert best.mean >= base.mean
    # ranking: clean trials first, then by mean metric
    ranked = result.ranking
    keys = [(t.problem_seeds, -(t.mean or -1.0)) for t in ranked]
    assert keys == sorted(keys)
    repaired = load_config(tmp_path / "d" / "repaired.toml")
    for key, value in best.patch.items():
        node: object = config_to_dict(repaired)
        for part in key.split("."):
            node = node[part] if isinstance(node, dict) and part in node else None
        if node is not None:
            assert node == value or (isinstance(value, bool) and node is value)
    doc = json.loads((tmp_path / "d" / "doctor.json").read_text())
    assert result.reference is not None and result.reference.mean is not None
    assert doc["best"] == best.label and doc["reference_ratio"] == pytest.approx(
        best.mean / result.reference.mean)
    assert (tmp_path / "d" / "doctor.html").read_text().count("<tr>") == 2 + 1 + len(
        result.trials)
    # every verdict number is the measured one
    assert f"{best.mean:.3f}" in " ".join(result.verdict())


@pytest.mark.slow
def test_no_argument_doctor_finds_and_fixes_the_builtin_failing_net(tmp_path: Path) -> None:
    result = doctor(out_dir=tmp_path / "d")
    assert result.builtin and result.baseline.problems
    assert result.best is not None and result.reference is not None
    ratio = result.reference_ratio
    assert ratio is not None and ratio >= 0.9
    assert (tmp_path / "d" / "repaired.toml").is_file()
    assert any(f"{ratio:.1%}" in s for s in result.verdict())


def _with_values(trial: Trial, values: list[float]) -> Trial:
    import dataclasses

    runs = tuple(dataclasses.replace(r, metric=v) for r, v in zip(trial.runs, values,
                                                                  strict=True))
    return dataclasses.replace(trial, runs=runs)


def test_verdict_words_follow_the_numbers() -> None:
    import dataclasses

    from steadygrad.doctor.result import demo_result

    r = demo_result()
    text = " ".join(r.verdict())
    assert "reaches 96.8% of it (meets the 90% target)" in text
    assert "0.910 ± 0.014 vs baseline 0.120 ± 0.028" in text
    # a weaker remedy misses the reference target, and the sentence says so
    weak = dataclasses.replace(r, trials=(r.trials[0], _with_values(r.trials[1], [0.5, 0.6])))
    assert "reaches 58.5% of it (misses the 90% target)" in " ".join(weak.verdict())
    # a remedy that silences the finding but is worse than the baseline does not succeed
    worse = dataclasses.replace(r, baseline=_with_values(r.baseline, [0.95, 0.95]))
    assert worse.best is None
    joined = " ".join(worse.verdict())
    assert "No candidate succeeded" in joined and "worse than the baseline's 0.950" in joined
    assert "No repaired.toml was written" in joined


def test_doctor_page_fits_1280_px_with_long_patches(tmp_path) -> None:
    """Regression (issue 18): the doctor's HTML table was cut off at 1280 px (a real run's
    patches and problem lists made the table 1,301 px wide)."""
    import dataclasses

    from steadygrad.doctor.result import demo_result
    from steadygrad.doctor.write import write_outputs
    from tests.browser import layout

    r = demo_result(tmp_path)
    patch = {"model.activation": "selu", "model.kernel_initializer": "lecun_normal",
             "data.standardize": True, "train.optimizer.name": "adam",
             "train.optimizer.learning_rate": 0.001}
    long_problems = ("vanishing_gradients", "learning_rate", "saturation", "dead_units")
    runs = tuple(dataclasses.replace(run, problems=long_problems) for run in r.baseline.runs)
    trials = tuple(dataclasses.replace(t, label="selu_lecun_standardized+adam_and_more",
                                       patch=patch) for t in r.trials)
    r = dataclasses.replace(r, trials=trials, baseline=dataclasses.replace(r.baseline, runs=runs))
    page = Path(write_outputs(r).files["html"])
    assert "selu_lecun_standardized+adam_and_more" in page.read_text(encoding="utf-8")
    box = layout(page, 1280)
    assert box["scroll_width"] <= 1280 and box["right"] <= 1280, box
