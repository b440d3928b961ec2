"""Sweep expansion: grid x random x seeds, determinism, stable ids, validation up front."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pytest

from steadygrad.errors import ConfigError
from steadygrad.experiments.config import config_to_dict
from steadygrad.experiments.space import load_sweep, run_id, sweep_from_dict

BASE = {"data": {"name": "digits", "n_train": 100}, "model": {"hidden": [8]},
        "train": {"epochs": 1}}


def test_grid_is_the_cartesian_product_in_file_order_with_seeds_innermost() -> None:
    acts, lrs, seeds = ["relu", "elu", "selu"], [0.1, 0.01], [0, 1]
    sweep = sweep_from_dict({"name": "g", "base": BASE, "seeds": seeds, "axes": {
        "model.activation": acts, "train.optimizer.learning_rate": lrs}})
    got = [(r.config.model.activation.name, r.config.train.optimizer.learning_rate,
            r.config.train.seed) for r in sweep.runs]
    assert got == list(itertools.product(acts, lrs, seeds))
    assert [r.index for r in sweep.runs] == list(range(12))
    assert len({r.name for r in sweep.runs}) == len({r.run_id for r in sweep.runs}) == 12
    # everything not on an axis comes from the base
    assert all(r.config.model.hidden == (8,) and r.config.train.epochs == 1 for r in sweep.runs)


def test_nested_axis_tables_equal_quoted_dotted_keys() -> None:
    a = sweep_from_dict({"name": "a", "axes": {"model.activation": ["relu", "tanh"]}})
    b = sweep_from_dict({"name": "a", "axes": {"model": {"activation": ["relu", "tanh"]}}})
    assert [r.run_id for r in a.runs] == [r.run_id for r in b.runs]


def test_ids_are_stable_hashes_of_the_config_without_the_name() -> None:
    one = sweep_from_dict({"name": "x", "base": BASE, "axes": {"model.dropout": [0.1, 0.2]}})
    two = sweep_from_dict({"name": "y", "base": BASE, "axes": {"model.dropout": [0.2, 0.1]}})
    assert {r.run_id for r in one.runs} == {r.run_id for r in two.runs}
    for run in one.runs:
        assert run.run_id == run_id(run.config)
        assert run.config.name == run.name


def test_random_search_is_deterministic_and_within_bounds() -> None:
    spec = {"name": "r", "base": BASE, "seeds": [0], "random": {"budget": 20, "seed": 3, "params": {
        "train.optimizer.learning_rate": {"dist": "loguniform", "low": 1e-4, "high": 1e-1},
        "model.dropout": {"dist": "uniform", "low": 0.0, "high": 0.5},
        "model.batch_norm": {"dist": "choice", "values": ["none", "before", "after"]}}}}
    first, again = sweep_from_dict(spec), sweep_from_dict(spec)
    assert [r.run_id for r in first.runs] == [r.run_id for r in again.runs]
    other = sweep_from_dict({**spec, "random": {**spec["random"], "seed": 4}})
    assert [r.run_id for r in other.runs] != [r.run_id for r in first.runs]
    lrs = [r.config.train.optimizer.learning_rate for r in first.runs]
    assert all(1e-4 <= lr <= 1e-1 for lr in lrs)
    # log-uniform: the draws spread over the decades instead of piling up near the top
    assert min(lrs) < 1e-3 and max(lrs) > 1e-2
    assert all(0 <= r.config.model.dropout <= 0.5 for r in first.runs)
    assert {r.config.model.batch_norm for r in first.runs} == {"none", "before", "after"}


def test_random_and_grid_are_crossed() -> None:
    sweep = sweep_from_dict({"name": "c", "seeds": [0, 1], "axes": {"model.l2": [0.0, 1e-4]},
                             "random": {"budget": 3, "params": {
                                 "model.dropout": {"dist": "uniform", "low": 0, "high": 0.5}}}})
    assert len(sweep.runs) == 2 * 3 * 2


@pytest.mark.parametrize(("spec", "message"), [
    ({"axes": {"model.activation": []}},
     "axes.model.activation: got []; expected a non-empty list of values"),
    ({"axes": {"model.activation": "relu"}},
     "model.activation: got 'relu'; expected a non-empty list of values"),
    ({"axes": {"model.activation": ["relu", "rleu"]}},
     "model.activation: got 'rleu'; expected one of elu, gelu, hard_sigmoid, leaky_relu, "
     "linear, mish, prelu, relu, rrelu, selu, sigmoid, softmax, softplus, softsign, swish, "
     "tanh; did you mean 'relu'?; in sweep point activation=rleu"),
    ({"axes": {"model.l2": [0.0, 0]}},
     "axes: got 'l2=0-seed=0'; expected sweep points with distinct configs; "
     "l2=0-seed=0 repeats l2=0-seed=0"),
    ({"seeds": [0, 0]}, "seeds: got [0, 0]; expected distinct seeds"),
    ({"seeds": []}, "seeds: got []; expected a non-empty list of integers >= 0"),
    ({"grid": {}}, "grid: got unknown key 'grid'; expected one of axes, base, name, random, "
                   "seeds"),
    ({"random": {"budget": 2, "params": {"model.dropout": {"dist": "normal"}}}},
     "random.params.model.dropout.dist: got 'normal'; expected one of 'choice', 'uniform', "
     "'loguniform'; did you mean 'uniform'?"),
    ({"random": {"budget": 2, "params": {"model.dropout": {"dist": "loguniform", "low": 0,
                                                           "high": 0.5}}}},
     "random.params.model.dropout.low: got 0.0; expected a number > 0 for a loguniform "
     "distribution"),
    ({"random": {"budget": 0, "params": {}}},
     "random.budget: got 0; expected an integer >= 1"),
    ({"name": "../up"}, "run name: got '../up'; expected 1 to 255 characters from A-Z a-z 0-9 "
                        ". _ - + = , @, not starting with '.'; did you mean 'up'?"),
])
def test_bad_sweeps(spec: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        sweep_from_dict({"name": "s", **spec})
    assert str(info.value) == message


def test_base_file_is_resolved_next_to_the_sweep_file(tmp_path: Path) -> None:
    (tmp_path / "base.toml").write_text('[model]\nhidden = [4]\n[train]\nepochs = 2\n')
    (tmp_path / "s.toml").write_text(
        'name = "s"\nbase = "base.toml"\nseeds = [5]\n[axes]\n"model.activation" = ["tanh"]\n')
    sweep = load_sweep(tmp_path / "s.toml")
    (run,) = sweep.runs
    assert run.config.model.hidden == (4,) and run.config.train.seed == 5
    assert run.name == "activation=tanh-seed=5"
    assert sweep.spec["base"] == config_to_dict(sweep_from_dict(
        {"base": {"model": {"hidden": [4]}, "train": {"epochs": 2}}}).runs[0].config) | {
        "name": "run"}


def test_float_labels_are_short_and_names_unique() -> None:
    sweep = sweep_from_dict({"name": "f", "axes": {
        "train.optimizer.learning_rate": [math.pi / 100, math.pi / 100 + 1e-9]}})
    names = [r.name for r in sweep.runs]
    assert names[0].startswith("learning_rate=0.03142-seed=0")
    assert len(set(names)) == 2


def test_overrides_apply_to_every_run_and_axes_win() -> None:
    sweep = sweep_from_dict({"name": "o", "base": BASE, "axes": {"train.epochs": [2, 3]}},
                            overrides=["train.epochs=9", "model.hidden=[4]"])
    assert [r.config.train.epochs for r in sweep.runs] == [2, 3]
    assert all(r.config.model.hidden == (4,) for r in sweep.runs)
