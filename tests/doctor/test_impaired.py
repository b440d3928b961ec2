"""Learning impaired without findings: the doctor does not call a run that learns badly healthy.

The sick setup is a ReLU MLP trained with plain SGD at 1e-3 (a tenth of Keras' default) for 3
epochs: no monitor rule fires, but the loss barely moves. Plain torch shows the failure first.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from steadygrad.doctor import doctor
from steadygrad.doctor.impaired import IMPAIRED, REFERENCE_FRACTION, impairment
from steadygrad.doctor.trials import IMPAIRED_LOSS_FRACTION
from steadygrad.experiments.config import config_from_dict
from tests.doctor._plain import DIGITS, plain_train

THRESHOLD = IMPAIRED_LOSS_FRACTION * math.log(10)  # 0.5 x chance loss on 10 classes
SLOW_SGD = {"epochs": 3, "optimizer": {"name": "sgd", "learning_rate": 1e-3}}
ADAM = {"epochs": 3, "optimizer": {"name": "adam", "learning_rate": 3e-3}}


def relu_mlp() -> nn.Module:
    """A user's plain ReLU MLP for the 64 digit features."""
    return nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                         nn.Linear(64, 10))


def _plain_torch_val_loss(opt_name: str, lr: float, epochs: int = 3) -> float:
    torch.manual_seed(0)
    model = relu_mlp()
    opt: torch.optim.Optimizer = (torch.optim.SGD(model.parameters(), lr=lr) if opt_name == "sgd"
                                  else torch.optim.Adam(model.parameters(), lr=lr))
    plain_train(model, opt, epochs)
    with torch.no_grad():
        return nn.functional.cross_entropy(model(DIGITS.x_val), DIGITS.y_val).item()


def _config(train: dict[str, Any], name: str) -> Any:
    return config_from_dict({"name": name, "data": {"name": "digits"},
                             "model": {"hidden": [64, 64], "activation": "relu"},
                             "train": train})


def test_the_sick_setup_learns_badly_on_plain_torch_and_the_healthy_one_does_not() -> None:
    assert _plain_torch_val_loss("sgd", 1e-3) > THRESHOLD
    assert _plain_torch_val_loss("adam", 3e-3) < THRESHOLD


def test_doctor_diagnoses_impaired_learning_without_findings_and_repairs_it(
        tmp_path: Path) -> None:
    result = doctor(relu_mlp, DIGITS, train=SLOW_SGD, seeds=1, max_trials=3,
                    out_dir=tmp_path / "d")
    base = result.baseline
    assert all(r.findings == () for r in base.runs)  # the monitor raised nothing ...
    assert base.problems == (IMPAIRED,) and not result.healthy  # ... yet it is not healthy
    assert base.runs[0].val_loss is not None and base.runs[0].val_loss > THRESHOLD
    assert "learns badly" in " ".join(result.verdict())
    assert result.trials  # the controlled trials ran
    for t in result.trials:  # every candidate is judged by the same rule
        loss = t.runs[0].val_loss
        assert (IMPAIRED in t.problems) == (loss is None or loss > THRESHOLD), t.label
    best = result.best
    assert best is not None and IMPAIRED not in best.problems
    assert best.runs[0].val_loss is not None and best.runs[0].val_loss < THRESHOLD
    assert best.mean is not None and base.mean is not None and best.mean > base.mean + 0.3
    assert (tmp_path / "d" / "repaired.toml").is_file()


@pytest.mark.slow
def test_reference_rule_names_a_run_below_90_percent_of_the_reference(tmp_path: Path) -> None:
    result = doctor(_config(SLOW_SGD, "slow_sgd"), seeds=2, max_trials=2,
                    reference=_config(ADAM, "reference"), out_dir=tmp_path / "d")
    base, ref = result.baseline, result.reference
    assert ref is not None and ref.mean is not None and base.mean is not None
    assert all(r.findings == () for r in base.runs)
    # the rule's oracle: 90% of the reference minus the summed seed noise is above the run
    noise = REFERENCE_FRACTION * (ref.std or 0.0) + (base.std or 0.0)
    assert REFERENCE_FRACTION * ref.mean - base.mean > noise
    assert base.problems == (IMPAIRED,)
    assert "90% of the healthy reference" in base.note
    best = result.best
    assert best is not None and best.mean is not None
    assert impairment(best, ref, result.metric, 10) is None
    assert best.mean >= REFERENCE_FRACTION * ref.mean - REFERENCE_FRACTION * (ref.std or 0.0) \
        - (best.std or 0.0)


def test_healthy_setup_runs_no_trial(tmp_path: Path) -> None:
    alone = doctor(relu_mlp, DIGITS, train=ADAM, seeds=1, out_dir=tmp_path / "a")
    assert alone.healthy and alone.trials == () and alone.reference is None
    loss = alone.baseline.runs[0].val_loss
    assert loss is not None and loss < THRESHOLD
    assert "nothing needs fixing, so no trial was run" in alone.verdict()[1]


@pytest.mark.slow
def test_healthy_setup_with_a_reference_runs_only_the_reference(tmp_path: Path) -> None:
    compared = doctor(_config(ADAM, "adam"), seeds=2, reference=_config(ADAM, "reference"),
                      out_dir=tmp_path / "b")
    assert compared.healthy and compared.trials == ()
    assert compared.reference is not None  # it ran, to check that the baseline learned
    assert impairment(compared.baseline, compared.reference, "val_accuracy", 10) is None
    assert "not below 90% of the healthy reference" in compared.verdict()[1]
    assert not (tmp_path / "b" / "repaired.toml").exists()
