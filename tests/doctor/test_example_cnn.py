"""``steadygrad doctor --example cnn``: the failure is real, the reference is healthy under the
same training, and the doctor's run gives the row docs/doctor-any-model.md publishes."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from steadygrad.doctor.examples import example
from steadygrad.experiments.config import config_from_dict, config_to_dict
from steadygrad.experiments.execute import run_config


def _accuracy(table: dict, tmp: Path) -> float:
    table["diagnostics"]["enabled"] = False
    result = run_config(config_from_dict(table), tempfile.mkdtemp(dir=tmp))
    assert result.status == "done", result.error
    value = result.metrics["val_accuracy"]
    assert value is not None
    return value


def test_the_cnn_example_fails_and_its_reference_learns_under_the_same_sgd(
        tmp_path: Path) -> None:
    ex = example("cnn")
    bad, ref = config_to_dict(ex.config()), config_to_dict(ex.config(reference=True))
    assert bad["train"] == ref["train"]  # one training setup: only the model differs
    assert bad["train"]["optimizer"]["name"] == "sgd"
    # plain torch, seed 0 (measured: 0.101 and 0.892): chance vs learning
    assert _accuracy(bad, tmp_path) < 0.15
    assert _accuracy(ref, tmp_path) > 0.8


@pytest.mark.slow  # the full doctor run: about 50 s of CPU time (3 seeds x 10 trials)
def test_the_cnn_example_gives_the_documented_row(tmp_path: Path) -> None:
    from steadygrad.doctor.core import doctor

    ex = example("cnn")
    result = doctor(ex.config(), reference=ex.config(reference=True), out_dir=tmp_path / "d")
    assert result.baseline.problem_seeds == 3
    assert "vanishing_gradients" in result.baseline.problems
    best, ratio = result.best, result.reference_ratio
    assert best is not None and ratio is not None and best.mean is not None
    # docs/doctor-any-model.md: ELU + matched init + Adam, 0.919, 107.2% of the reference
    assert best.label == "elu_he_adam"
    assert round(best.mean, 3) == 0.919
    assert round(100 * ratio, 1) == 107.2
