"""Accuracy of the gradient-health findings on the labelled suite (issue 16, Deliver 6).

The setups, their labels and premises are in :mod:`tests.reliability.diag_suite`: plain
``nn.Module`` MLPs, CNNs, residual CNNs, RNN/GRU/LSTMs and transformer encoders on digits,
each run on plain torch first to check that the sick ones really fail (and the healthy ones
learn). Thresholds were tuned on :data:`CALIBRATION_SEEDS`; the figures are measured on
:data:`EVALUATION_SEEDS`.

The default run checks a small subset on one evaluation seed; ``-m slow`` runs the whole suite,
asserts the published goals and that ``docs/health-report.md`` holds the table these runs
produce (regenerate it with ``python tests/reliability/diag_suite.py --write-docs``).
"""

from __future__ import annotations

import dataclasses

import pytest

from steadygrad.diagnostics.monitor import DEFAULT_EVERY

from . import diag_suite as suite

FAST = ["mlp2-relu-adam", "mlp3-relu-sgd30", "mlp4-relu-sgd3", "mlp8-sigmoid",
        "rnn-relu-sgd30",
        # ~10 s (4 attention blocks, 3 runs): slow; the default set checks its premise below
        pytest.param("tf4-nores-qk30", marks=pytest.mark.slow)]
SEED = suite.EVALUATION_SEEDS[0]


def test_suite_covers_every_architecture_and_kind() -> None:
    assert len(suite.SETUPS) >= 60
    assert len({s.name for s in suite.SETUPS}) == len(suite.SETUPS)
    archs = {s.arch for s in suite.SETUPS}
    assert archs == {"mlp", "cnn", "resnet", "rnn", "transformer"}
    healthy = [s for s in suite.SETUPS if s.label == "healthy"]
    assert len(healthy) >= 25 and {s.arch for s in healthy} == archs
    assert {s.arch for s in suite.SETUPS if s.label == "diverge"} == archs
    assert not set(suite.CALIBRATION_SEEDS) & set(suite.EVALUATION_SEEDS)


@pytest.mark.parametrize("name", FAST)
def test_fast_subset(name: str) -> None:
    s = next(x for x in suite.SETUPS if x.name == name)
    row = suite.evaluate((SEED,), [s])[0]
    assert suite.premise_holds(s, row["premise"], row["every_1"]["baseline"]), row["premise"]
    for every in (1, DEFAULT_EVERY):
        found = row[f"every_{every}"]["found"]
        if s.label == "healthy":
            assert not [k for k, v in found.items() if v[0] != "info"], found
        else:
            assert suite._detected(row, every), (every, found)
    if row["premise"]["first_nonfinite"] is not None:  # diverging: warned strictly before
        assert row["every_1"]["first_nonfinite"] == row["premise"]["first_nonfinite"]
        assert suite._warned_before(row, 1) is not None, row["every_1"]


def test_attention_setup_fails_because_of_the_saturated_attention() -> None:
    """The premise of the ``attention`` label on plain torch: the net with 30x query/key
    projections ends with collapsed attention weights (the module's own need_weights=True
    output) and does not learn; the same net with the default init (its healthy control,
    ``tf4-nores-adam``) keeps spread-out attention and learns."""
    by_name = {s.name: s for s in suite.SETUPS}
    sick, control = by_name["tf4-nores-qk30"], by_name["tf4-nores-adam"]
    assert dataclasses.replace(sick, name=control.name, label="healthy", qk_gain=1.0) == control
    assert str(sick.build()) == str(control.build())  # the same architecture
    chance = suite.chance_level()
    p_sick, p_ok = suite.plain_run(sick, SEED), suite.plain_run(control, SEED)
    assert suite.premise_holds(sick, p_sick, chance) and suite.premise_holds(control, p_ok,
                                                                            chance)
    assert p_sick["attn_entropy"] <= suite.ATTENTION_COLLAPSED < 0.5 < p_ok["attn_entropy"]
    assert p_sick["final"] > (1 - 0.3) * chance > p_ok["final"]


@pytest.mark.slow
def test_full_suite() -> None:
    rows = suite.evaluate(suite.EVALUATION_SEEDS)
    kept, dropped = suite.split_premise(rows)
    tab = suite.table(rows)
    print(tab)
    assert len(dropped) <= 0.1 * len(rows), [(r["name"], r["seed"]) for r in dropped]
    s1, sd = suite.score(kept, 1)["all"], suite.score(kept, DEFAULT_EVERY)["all"]
    assert s1["false_alarms"] == 0 and sd["false_alarms"] == 0
    assert s1["healthy"] >= 25
    assert s1["detected"] >= suite.PUBLISHED["recall_every_1"] * s1["sick"]
    assert sd["detected"] >= suite.PUBLISHED["recall_default"] * sd["sick"]
    assert s1["warned_before"] >= suite.PUBLISHED["warned_before"] * s1["nonfinite"]
    assert s1["dying_detected"] >= suite.PUBLISHED["dying"] * s1["dying"]
    assert sd["warned_before"] >= suite.PUBLISHED["warned_before_default"] * sd["nonfinite"]
    assert s1["attention"] >= 3
    for sc in (s1, sd):
        assert sc["attention_detected"] >= suite.PUBLISHED["attention"] * sc["attention"]
    assert suite.docs_table() == tab  # the docs publish exactly what was measured
