"""The ``adam_lr_find`` remedy: Adam at the rate of an LR range test run with Adam.

It is what a practitioner does after "switch to Adam" (1e-3, Keras's default) and "range-test
the rate" (with the old optimizer) both fall short: range-test Adam itself. Checked against the
torch optimizer it configures and the library's range test, and where the toolbox offers it.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from steadygrad.doctor.any_model import ADAM, ADAM_LR_FIND, LR_FIND, MODEL_TOOLBOX
from steadygrad.doctor.candidates import propose
from steadygrad.doctor.core import runnable_candidates
from steadygrad.doctor.impaired import IMPAIRED
from steadygrad.doctor.trials import DataCache
from steadygrad.experiments.config import config_from_dict, config_to_dict
from steadygrad.experiments.execute import build_model
from steadygrad.optim.lr_finder import lr_find
from steadygrad.optim.optimizers import make_optimizer

_FACTORY = "steadygrad.doctor.examples:mlp_net"  # any nn.Module factory will do


def _table(optimizer: dict[str, Any]) -> dict[str, Any]:
    return config_to_dict(config_from_dict({
        "data": {"name": "digits", "n_train": 300},
        "model": {"factory": _FACTORY},
        "train": {"epochs": 1, "optimizer": optimizer}}))


def test_adam_lr_find_sets_adam_at_the_rate_of_a_range_test_with_adam() -> None:
    cache = DataCache()
    sgd = _table({"name": "sgd", "learning_rate": 1.0})
    ready, skipped = runnable_candidates(sgd, ["vanishing_gradients"], cache, 0,
                                         candidates=[ADAM_LR_FIND])
    assert skipped == [] and len(ready) == 1
    _, new, patch, note = ready[0]
    lr = patch["train.optimizer.learning_rate"]
    assert isinstance(lr, float) and f"{lr:.3g}" in note
    assert new["train"]["optimizer"] == {**sgd["train"]["optimizer"], "name": "adam",
                                         "learning_rate": lr}
    # the oracle: the library's range test, on the same seeded model, run with Adam
    config = config_from_dict(new)
    data = cache.get(config)
    model = build_model(config, data)
    found = lr_find(model, data, optimizer={"name": "adam"}, batch_size=config.train.batch_size,
                    num_steps=100, seed=0)
    assert lr == found.suggestion
    # ... and not the rate of the range test with the old optimizer (what lr_find gives)
    with_sgd, _ = runnable_candidates(sgd, ["learning_rate"], cache, 0, candidates=[LR_FIND])
    assert with_sgd[0][2]["train.optimizer.learning_rate"] != lr
    # the trial's optimizer is torch's Adam at that rate
    spec = config.train.optimizer
    opt = make_optimizer(spec.name, model.parameters(), **spec.kwargs)
    assert type(opt) is torch.optim.Adam
    assert opt.param_groups[0]["lr"] == pytest.approx(lr)


def test_adam_lr_find_on_an_adam_run_is_skipped_as_the_lr_find_trial() -> None:
    adam = _table({"name": "adam", "learning_rate": 0.03})
    ready, skipped = runnable_candidates(adam, ["learning_rate"], DataCache(), 0,
                                         candidates=[LR_FIND, ADAM_LR_FIND])
    assert [c.name for c, *_ in ready] == ["lr_find"]
    assert skipped == [("adam_lr_find", "changes nothing but the range-tested rate "
                        "(train.optimizer.name is already adam): the same trial as lr_find")]


def test_adam_lr_find_follows_adam_where_the_toolbox_acts_on_learning() -> None:
    for kind in ("vanishing_gradients", "learning_rate", IMPAIRED):
        names = [c.name for c in MODEL_TOOLBOX[kind]]
        assert names.index("adam_lr_find") == names.index("adam") + 1, kind
    # not for problems of the units or the signal's scale, where no optimizer change is offered
    for kind in ("saturation", "dead_units", "self_normalization", "non_finite"):
        assert ADAM_LR_FIND not in MODEL_TOOLBOX[kind], kind
    # the doctor proposes it for a transformer that only shows vanishing gradients
    names = [c.name for c in propose(["vanishing_gradients"], any_model=True)]
    assert names[-2:] == [ADAM.name, "adam_lr_find"]
