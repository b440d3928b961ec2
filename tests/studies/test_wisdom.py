"""Each common-wisdom check says *holds* when the rows agree with the claim and
*contradicted* when they disagree, with the numbers taken from the rows."""

from __future__ import annotations

import re
import statistics
from typing import Any

import pytest

from steadygrad.studies.wisdom import CHECKS, check, mean_of


def _rows(key: str, values: dict[str, list[float]], **fixed: Any) -> list[dict[str, str]]:
    return [{key: k, "status": "done", "val_accuracy": str(v),
             **{f: str(x) for f, x in fixed.items()}} for k, vs in values.items() for v in vs]


def test_every_study_has_a_check() -> None:
    from steadygrad.studies.registry import STUDIES

    assert sorted(CHECKS) == sorted(STUDIES.names())


def test_mean_of_skips_unfinished_runs_and_matches_dotted_suffix() -> None:
    rows = [*_rows("study.setup", {"a": [0.5, 0.7]}),
            {"study.setup": "a", "status": "diverged", "val_accuracy": ""}]
    mean, std, n = mean_of(rows, setup="a")
    assert (round(mean or 0, 6), n) == (0.6, 2) and std == pytest.approx(0.1414, abs=1e-4)


@pytest.mark.parametrize(("order", "verdict"), [
    (["selu", "elu", "leaky_relu", "relu", "tanh", "sigmoid"], "holds"),
    (["elu", "selu", "leaky_relu", "relu", "tanh", "sigmoid"], "contradicted"),
])
def test_activations(order: list[str], verdict: str) -> None:
    rows = _rows("model.activation", {a: [0.9 - 0.1 * i] for i, a in enumerate(order)})
    text = check("activations", rows)
    assert text.endswith(f"Verdict: {verdict} here.")
    assert f"{order[0]} (0.900)" in text


def test_unstable_gradients_reads_the_deepest_depth() -> None:
    rows = []
    for depth, bad in ((10, 0.8), (100, 0.1)):
        rows += _rows("study.setup", {"sigmoid_normal": [bad], "relu_he": [0.7],
                                      "elu_he_bn": [0.75], "selu_lecun": [0.72]},
                      **{"model.depth": depth})
    text = check("unstable_gradients", rows)
    assert "depth 100: sigmoid_normal 0.100" in text and text.endswith("holds here.")
    rows = [r for r in rows if r["model.depth"] == "10"]  # sigmoid wins at depth 10
    assert check("unstable_gradients", rows).endswith("contradicted here.")


def test_initializers_names_the_winner_and_the_gap() -> None:
    rows = []
    for act, scores in (("relu", {"he_normal": 0.9, "glorot_uniform": 0.8}),
                        ("tanh", {"he_normal": 0.85, "glorot_uniform": 0.8})):
        rows += _rows("model.kernel_initializer", {k: [v] for k, v in scores.items()},
                      **{"model.activation": act})
    text = check("initializers", rows)
    assert "tanh: best he_normal 0.850, glorot_uniform 0.800 (0.050 behind)" in text
    assert text.endswith("contradicted here.")


def test_batch_norm_counts_epochs_to_target_from_curves() -> None:
    rows = [{"run": f"{m}-{d}", "model.batch_norm": m, "model.depth": str(d),
             "status": "done", "val_accuracy": "0.9"} for m in ("none", "before", "after")
            for d in (2, 20)]
    curves = {f"{m}-{d}": ([0.5, 0.7, 0.86] if m == "none" else [0.7, 0.86])
              for m in ("none", "before", "after") for d in (2, 20)}
    text = check("batch_norm", rows, curves=curves, target=0.85)
    assert "depth 20: none 3.0, before 2.0, after 2.0" in text and text.endswith("holds here.")
    slow = {k: [0.5, 0.5, 0.5, 0.9] if not k.startswith("none") else v
            for k, v in curves.items()}
    assert check("batch_norm", rows, curves=slow, target=0.85).endswith("contradicted here.")


def test_clipping_needs_a_diverging_baseline_to_decide() -> None:
    rows = _rows("study.setup", {"none": [0.8], "clipnorm": [0.85]})
    assert check("clipping", rows).endswith("not established here.")


def test_optimizers_two_verdicts() -> None:
    rows = _rows("train.optimizer.name", {"sgd": [0.80], "adam": [0.86], "nadam": [0.85],
                                          "rmsprop": [0.84]})
    text = check("optimizers", rows)
    assert "Adaptive (the worst of them) vs SGD: holds here." in text
    assert "Nadam vs Adam: contradicted here." in text


def test_schedules_and_regularization_compare_with_the_baseline() -> None:
    rows = _rows("study.setup", {"constant": [0.85], "power": [0.86], "one_cycle": [0.84]})
    assert check("schedules", rows).endswith("contradicted here.")
    rows = _rows("study.setup", {"none": [0.85], "l2": [0.86], "dropout": [0.87]})
    text = check("regularization", rows)
    assert "(2 of 2 clearly better)" in text and text.endswith("holds here.")


def test_depth_deepest_reaching_target() -> None:
    rows = []
    for depth in (5, 50):
        rows += _rows("study.setup", {"sigmoid_glorot": [0.9 if depth == 5 else 0.1],
                                      "relu_he": [0.85]}, **{"model.depth": depth})
    text = check("depth", rows, target=0.8)
    assert "sigmoid_glorot 5, relu_he 50" in text and text.endswith("holds here.")


def test_transfer_and_pretraining() -> None:
    rows = [{"pair": p, "method": m, "test_error": str(e)} for p, m, e in (
        ("a", "scratch", 0.10), ("a", "transfer", 0.09), ("b", "scratch", 0.20),
        ("b", "transfer", 0.02))]
    text = check("transfer", rows)
    assert "b: error 20.00% → 2.00% (error-rate reduction 90.0%)" in text
    assert text.endswith("holds here.")
    rows = [{"method": m, "labels": str(n), "test_accuracy": str(a)} for m, n, a in (
        ("scratch", 50, 0.60), ("ae_whole", 50, 0.65), ("ae_greedy", 50, 0.62),
        ("scratch", 5000, 0.85), ("ae_whole", 5000, 0.851), ("ae_greedy", 5000, 0.84))]
    text = check("pretraining", rows)
    assert "50 labels +5.0 points" in text and text.endswith("holds here.")


def test_a_gap_within_seed_noise_is_not_called_a_contradiction() -> None:
    rows = []
    for act, scores in (("relu", {"he_normal": [0.90, 0.92], "glorot_uniform": [0.80, 0.8]}),
                        ("tanh", {"orthogonal": [0.86, 0.87], "glorot_uniform": [0.85, 0.87]})):
        rows += _rows("model.kernel_initializer", scores, **{"model.activation": act})
    text = check("initializers", rows)
    assert "(0.005 behind, within seed noise)" in text
    assert text.endswith("Verdict: not established here.")
    rows = _rows("study.setup", {"constant": [0.85, 0.87], "power": [0.86, 0.88]})
    text = check("schedules", rows)
    assert "power 0.870 ± 0.014 (within seed noise)" in text
    assert text.endswith("not established here.")


def test_one_noise_rule_for_every_verdict() -> None:
    """Issue 19: ties and gaps within seed noise are 'not established' in the four checks
    that used their own rules (any margin, exact order, strict < on ties, a 0.25 spread)."""
    # unstable gradients: sigmoid 0.69/0.71 vs healthy 0.70/0.72: within noise
    rows = _rows("study.setup", {"sigmoid_normal": [0.69, 0.73], "relu_he": [0.70, 0.72]},
                 **{"model.depth": 50})
    assert check("unstable_gradients", rows).endswith("not established here.")
    # activations: the measured order differs from the claim only within noise
    rows = _rows("model.activation", {"selu": [0.80, 0.84], "elu": [0.81, 0.85]})
    assert check("activations", rows).endswith("not established here.")
    rows = _rows("model.activation", {"selu": [0.90, 0.91], "elu": [0.80, 0.81]})
    assert check("activations", rows).endswith("holds here.")
    # batch norm: a tie in epochs to target is not a contradiction
    rows = [{"run": f"{m}-{s}", "model.batch_norm": m, "model.depth": "5", "status": "done",
             "val_accuracy": "0.9"} for m in ("none", "before") for s in (0, 1)]
    curves = {f"{m}-{s}": [0.7, 0.86] for m in ("none", "before") for s in (0, 1)}
    assert check("batch_norm", rows, curves=curves, target=0.85).endswith(
        "not established here.")
    # transfer: two pairs that both gain, with gains apart by less than their noise
    rows = [{"pair": p, "method": m, "test_error": str(e)} for p, m, es in (
        ("a", "scratch", (0.20, 0.30)), ("a", "transfer", (0.15, 0.25)),
        ("b", "scratch", (0.20, 0.30)), ("b", "transfer", (0.10, 0.20))) for e in es]
    assert check("transfer", rows).endswith("not established here.")


def test_transfer_check_prints_the_conclusions_numbers() -> None:
    """Issue 19: the page printed one pair's scratch error as 18.11% in the study's conclusions
    and 18.12% in this check (``sum / n`` vs ``fmean`` on a mean ending in 5). These 10 errors
    (4 decimals, like results.csv) have ``sum / n`` = 0.21614999... and ``fmean`` = 0.21615:
    both sentences must print 21.62% and the same reduction."""
    from steadygrad.studies.transfer_study import conclusions, summarize

    scratch = [0.2471, 0.1809, 0.154, 0.1985, 0.1785, 0.1622, 0.2801, 0.2101, 0.2955, 0.2546]
    assert f"{100 * sum(scratch) / 10:.2f}" != f"{100 * statistics.fmean(scratch):.2f}"
    rows = [{"pair": "p", "seed": i, "method": m, "test_error": e, "test_accuracy": 1 - e}
            for i, es in enumerate(scratch) for m, e in (("scratch", es), ("transfer", 0.0075))]
    said = conclusions(summarize(rows))[1]
    checked = check("transfer", [{k: str(v) for k, v in r.items()} for r in rows])
    assert "(21.62% → 0.75%)" in said and "error 21.62% → 0.75%" in checked
    reduction = re.search(r"reduced the error rate by ([\d.]+%)", said)
    assert reduction and f"error-rate reduction {reduction.group(1)}" in checked
