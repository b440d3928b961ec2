"""One typed optimizer value from the config to the optimizer: the config holds an
``OptimizerConfig``, ``fit_arguments`` passes that very object, and it builds what
``make_optimizer`` + ``GradientClipper`` build (the oracle)."""

from __future__ import annotations

import pytest
import torch

from steadygrad.errors import ConfigError
from steadygrad.experiments.config import config_from_dict
from steadygrad.experiments.execute import fit_arguments
from steadygrad.optim.clipping import CLIP_KEYS, GradientClipper
from steadygrad.optim.optimizers import make_optimizer
from steadygrad.optim.settings import OptimizerConfig
from steadygrad.train.setup import resolve_optimizer

TABLE = {"name": "nadam", "learning_rate": 0.01, "beta_1": 0.8, "global_clipnorm": 2.0}


def test_the_config_value_reaches_fit_unchanged() -> None:
    cfg = config_from_dict({"train": {"optimizer": TABLE}})
    assert fit_arguments(cfg)["optimizer"] is cfg.train.optimizer
    assert cfg.train.optimizer == OptimizerConfig.from_value(TABLE)


def test_it_builds_what_make_optimizer_and_the_clipper_build() -> None:
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    opt, clipper = OptimizerConfig.from_value(TABLE).build(model.parameters())
    ref = make_optimizer("nadam", model.parameters(), learning_rate=0.01, beta_1=0.8)
    assert type(opt) is type(ref) and opt.defaults == ref.defaults
    assert clipper == GradientClipper(global_clipnorm=2.0)


def test_table_round_trip_and_every_clip_key_listed_once() -> None:
    spec = OptimizerConfig.from_value(TABLE)
    assert OptimizerConfig.from_value(spec.to_value()) == spec
    assert set(CLIP_KEYS) <= set(spec.to_value()) and len(set(CLIP_KEYS)) == 3


def test_fit_s_learning_rate_fills_in_and_a_conflict_names_the_field() -> None:
    model = torch.nn.Linear(3, 2)
    spec = OptimizerConfig("adam")
    opt, _ = resolve_optimizer(spec, model, 0.05)
    assert opt.defaults["lr"] == 0.05
    with pytest.raises(ConfigError, match="learning_rate"):
        resolve_optimizer(OptimizerConfig("adam", 0.01), model, 0.05)


def test_two_clipping_keys_are_refused_as_by_the_clipper() -> None:
    with pytest.raises(ConfigError, match="at most one of clipnorm"):
        OptimizerConfig.from_value({"name": "sgd", "clipnorm": 1.0, "global_clipnorm": 1.0})
    with pytest.raises(ConfigError, match="at most one of clipnorm"):
        config_from_dict({"train": {"optimizer": {"name": "sgd", "clipnorm": 1.0,
                                                  "global_clipnorm": 1.0}}})
    both = OptimizerConfig.from_value({"name": "sgd", "clipnorm": 1.0, "clipvalue": 0.5})
    assert both.clipping == {"clipnorm": 1.0, "clipvalue": 0.5}  # value, then norm
