"""Tests of the custom-run studies ``transfer`` and ``pretraining``."""

from __future__ import annotations

import csv
import json
import re
import statistics
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from steadygrad.cli.main import main
from steadygrad.data import load
from steadygrad.errors import ConfigError, DataError
from steadygrad.studies import pretraining_study as ps
from steadygrad.studies import transfer_study as ts
from steadygrad.studies._custom import bootstrap_ci
from steadygrad.studies.registry import STUDIES, load_spec
from steadygrad.studies.runner import run_study
from steadygrad.transfer import fine_tune

TINY_TRANSFER = ["dataset=digits", 'pairs=[["1", "7"], ["3", "8"]]', "a_rows=300",
                 "a_epochs=1", "b_images=40", "hidden=[16, 16]", "scratch_epochs=2",
                 "frozen_epochs=1", "unfrozen_epochs=2", "learning_rate=0.01"]
TINY_PRETRAIN = ["dataset=digits", "unlabelled_rows=0", "hidden=[16, 8]", "ae_epochs=1",
                 "clf_epochs=2", "budgets=[20, 60]"]


def _csv(path: str | Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _tiny_params(**extra: Any) -> dict[str, Any]:
    params = {"hidden": [16, 16], "learning_rate": 0.01, "batch_size": 32, "a_epochs": 1,
              "scratch_epochs": 1, "frozen_epochs": 1, "unfrozen_epochs": 1}
    return {**params, **extra}


def test_both_studies_are_registered_and_listed(capsys: pytest.CaptureFixture[str]) -> None:
    assert {"transfer", "pretraining"} <= set(STUDIES.names())
    assert STUDIES.get("transfer").run is ts.run_transfer
    assert main(["study", "--list"]) == 0
    out = capsys.readouterr().out
    assert "transfer" in out and "pretraining" in out
    quick, full = load_spec("transfer")["params"], load_spec("transfer", full=True)["params"]
    # the classic setup (Géron): 200 images of task B, 3 x Dense 100, SGD 1e-3, 4 + 16 epochs
    assert quick["b_images"] == full["b_images"] == 200
    assert full["hidden"] == [100, 100, 100] and full["learning_rate"] == 1e-3
    assert (full["frozen_epochs"], full["unfrozen_epochs"], full["scratch_epochs"]) == (4, 16, 20)
    assert full["seeds"] >= 10 and full["a_rows"] == 0 and full["a_epochs"] == 20
    assert ["Pullover", "T-shirt/top"] in full["pairs"] and ["Sandal", "Shirt"] in full["pairs"]


def test_transfer_data_remaps_task_a_and_takes_the_first_b_images() -> None:
    ds = load("digits", standardize=False)
    data = ts.transfer_data(ds, ("1", "7"), 0, 30)
    y = ds.y_train.numpy()
    in_b = np.flatnonzero((y == 1) | (y == 7))[:30]
    np.testing.assert_array_equal(data.b_train[0].numpy(), ds.x_train.numpy()[in_b])
    np.testing.assert_array_equal(data.b_train[1].numpy().ravel(), (y[in_b] == 1).astype(float))
    others = [c for c in range(10) if c not in (1, 7)]
    keep = np.isin(y, others)
    np.testing.assert_array_equal(data.a_train[1].numpy(),
                                  [others.index(c) for c in y[keep]])
    assert ds.y_test is not None
    yt = ds.y_test.numpy()
    assert len(data.b_test[1]) == int(((yt == 1) | (yt == 7)).sum())
    with pytest.raises(DataError, match="b_images"):
        ts.transfer_data(ds, ("1", "7"), 0, 10_000)
    with pytest.raises(ConfigError, match="two different"):
        ts.transfer_data(ds, ("1", "1"), 0, 10)


def test_training_b_on_a_leaves_model_a_bit_identical() -> None:
    data = ts.transfer_data(load("digits", standardize=False), ("3", "8"), 300, 40)
    params = _tiny_params()
    source = ts.train_source(data, params, seed=0)
    before = {k: v.clone() for k, v in source.state_dict().items()}
    scratch, transfer = ts.train_targets(source, data, params, seed=0)
    assert all(torch.equal(before[k], v) for k, v in source.state_dict().items())
    assert 0.0 <= scratch <= 1.0 and 0.0 <= transfer <= 1.0
    # control: the Keras pitfall Sequential(model_A.layers[:-1]) shares A's layers, and
    # fine-tuning it does change A; the check above would catch that
    shared = torch.nn.Sequential(*list(source.children())[:-1], torch.nn.Linear(16, 1))
    fine_tune(shared, data.b_train, head_epochs=0, epochs=1, learning_rate=0.01,
              unfreeze_lr_factor=1.0, optimizer="sgd", verbose=0, loss="bce")
    assert not torch.equal(before["dense1.weight"], source.state_dict()["dense1.weight"])


def test_transfer_tiny_run_report_matches_its_csv(tmp_path: Path) -> None:
    result = run_study("transfer", out_dir=tmp_path, seeds=2, overrides=TINY_TRANSFER)
    folder = tmp_path / "transfer-quick-custom"
    assert result.sweep_dir == folder
    for name in ("results.csv", "study.md", "study.html", "study.json", "transfer.png"):
        assert (folder / name).is_file(), name
    assert (folder / "transfer.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = _csv(folder / "results.csv")
    assert len(rows) == 2 * 2 * 2  # pairs x seeds x methods
    assert all(r["source_unchanged"] == "True" for r in rows)
    md = (folder / "study.md").read_text()
    for r in rows:  # every run appears verbatim in the Markdown
        assert "| " + " | ".join(r.values()) + " |" in md
    for pair in ("1_vs_7", "3_vs_8"):
        for method in ("scratch", "transfer"):
            accs = [float(r["test_accuracy"]) for r in rows
                    if r["pair"] == pair and r["method"] == method]
            cell = f"{statistics.mean(accs):.4f} ± {statistics.stdev(accs):.4f}"
            assert f"| {pair} | {method} | {cell} |" in md
        errs = {m: statistics.mean(float(r["test_error"]) for r in rows
                                   if r["pair"] == pair and r["method"] == m)
                for m in ("scratch", "transfer")}
        red = (errs["scratch"] - errs["transfer"]) / errs["scratch"]
        assert f"by {100 * abs(red):.1f}%" in md
    assert json.loads((folder / "study.json").read_text())["conclusions"] == result.conclusions
    assert all(s in md for s in result.conclusions)


def _rows(pairs: list[tuple[float, float]]) -> list[dict[str, Any]]:
    """Per-seed rows of one pair from ``(err_scratch, err_transfer)`` pairs."""
    return [{"pair": "p", "seed": s, "method": m, "test_accuracy": round(1 - e, 4),
             "test_error": e, "source_unchanged": True}
            for s, es_et in enumerate(pairs) for m, e in zip(("scratch", "transfer"), es_et,
                                                                   strict=True)]


def test_transfer_sentences_are_computed_from_the_numbers() -> None:
    errs = [(0.10, 0.05), (0.12, 0.06), (0.08, 0.09)]
    summary = ts.summarize(_rows(errs))["p"]
    es, et = statistics.mean(e[0] for e in errs), statistics.mean(e[1] for e in errs)
    assert summary["reduction"] == pytest.approx((es - et) / es)
    assert summary["wins"] == 2
    text = " ".join(ts.conclusions({"p": summary}))
    assert f"reduced the error rate by {100 * (es - et) / es:.1f}%" in text
    assert "2 of 3 seeds, so the gain depends on the seed" in text
    swapped = " ".join(ts.conclusions(ts.summarize(_rows([(b, a) for a, b in errs]))))
    assert swapped != text and "increased the error rate" in swapped
    assert "1 of 3 seeds" in swapped
    always = " ".join(ts.conclusions(ts.summarize(_rows([(0.1, 0.05), (0.12, 0.06)]))))
    assert "depends on the seed" not in always and "2 of 2 seeds." in always


def test_paired_bootstrap_interval_brackets_the_estimate() -> None:
    pairs = [(0.10, 0.05), (0.12, 0.06), (0.08, 0.09), (0.11, 0.07), (0.09, 0.06)]
    ci = bootstrap_ci(pairs, ts._reduction)
    assert ci is not None
    point = ts._reduction(pairs)
    assert point is not None and ci[0] <= point <= ci[1]
    # the extreme resamples (one seed repeated) bound the interval
    singles = [ts._reduction([p]) for p in pairs]
    assert min(s for s in singles if s is not None) <= ci[0] and ci[1] <= max(
        s for s in singles if s is not None)
    assert bootstrap_ci([(0.1, 0.05)] * 5, ts._reduction) == pytest.approx((0.5, 0.5))


def test_two_seeds_claim_no_confidence_interval() -> None:
    """Regression (issue 18): a 2-seed run claimed a "95% bootstrap CI" (the bootstrap of
    2 seeds has 3 distinct outcomes)."""
    assert bootstrap_ci([(0.10, 0.05), (0.12, 0.09)], ts._reduction) is None
    text = " ".join(ts.conclusions(ts.summarize(_rows([(0.10, 0.05), (0.12, 0.09)]))))
    assert "95%" not in text and "no confidence interval from 2 seeds" in text


def test_bad_input_fails_before_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="seeds"):
        run_study("transfer", out_dir=tmp_path, overrides=["seed=1"])
    with pytest.raises(ConfigError, match="a_epochs"):
        run_study("transfer", out_dir=tmp_path, overrides=["a_epochs=0"])
    monkeypatch.setenv("STEADYGRAD_DATA", str(tmp_path / "none"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(DataError, match=r"study transfer needs fashion_mnist.*STEADYGRAD_DATA"):
        run_study("transfer", out_dir=tmp_path)
    assert main(["study", "pretraining", "--out", str(tmp_path), "--set", "budget=[5]"]) == 2
    assert not list(tmp_path.glob("*-quick*"))


def test_pretraining_tiny_run_report_matches_its_csv(tmp_path: Path) -> None:
    result = run_study("pretraining", out_dir=tmp_path, seeds=2, overrides=TINY_PRETRAIN)
    folder = result.sweep_dir
    for name in ("results.csv", "study.md", "study.html", "study.json", "pretraining.png"):
        assert (folder / name).is_file(), name
    rows = _csv(folder / "results.csv")
    assert len(rows) == 2 * 3 * 2  # seeds x methods x budgets
    md = (folder / "study.md").read_text()
    for method in ps.METHODS:
        cells = []
        for n in ("20", "60"):
            accs = [float(r["test_accuracy"]) for r in rows
                    if r["method"] == method and r["labels"] == n]
            cells.append(f"{statistics.mean(accs):.4f} ± {statistics.stdev(accs):.4f}")
        assert f"| {method} | {cells[0]} | {cells[1]} |" in md
    assert all(s in md for s in result.conclusions)


def test_pretraining_sentences_follow_the_numbers() -> None:
    rows: list[dict[str, Any]] = [
        {"seed": s, "method": m, "labels": n, "test_accuracy": a}
        for s in (0, 1) for m, n, a in [("scratch", 10, 0.50 + s / 100),
                                        ("ae_whole", 10, 0.60),
                                        ("scratch", 100, 0.80), ("ae_whole", 100, 0.81)]]
    text = ps.conclusions(rows)
    assert text[0].startswith("10 labels: best ae_whole 0.6000")
    assert "+9.5 points (better in 2 of 2 seeds)" in text[0]
    assert "shrinks from +9.5 points at 10 labels to +1.0 at 100" in text[2]
    swap = {"scratch": "ae_whole", "ae_whole": "scratch"}
    swapped = [{**r, "method": swap[str(r["method"])]} for r in rows]
    other = ps.conclusions(swapped)
    assert other != text and "-9.5 points (better in 0 of 2 seeds)" in other[0]


@pytest.mark.slow
def test_transfer_tiny_fashion_mnist(tmp_path: Path, fashion_mnist_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEADYGRAD_DATA", str(fashion_mnist_path.parent))
    result = run_study("transfer", out_dir=tmp_path, seeds=2, overrides=[
        "a_rows=1000", "a_epochs=1", 'pairs=[["Pullover", "T-shirt/top"]]'])
    rows = _csv(result.files["csv"])
    assert len(rows) == 4 and all(r["source_unchanged"] == "True" for r in rows)


@pytest.mark.slow
def test_quick_modes_run(tmp_path: Path, fashion_mnist_path: Path,
                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEADYGRAD_DATA", str(fashion_mnist_path.parent))
    transfer = run_study("transfer", out_dir=tmp_path)
    assert re.search(r"Pullover_vs_T-shirt-top: B from scratch reached", transfer.conclusions[0])
    assert len(_csv(transfer.files["csv"])) == 2 * 10 * 2
    pretraining = run_study("pretraining", out_dir=tmp_path)
    assert len(_csv(pretraining.files["csv"])) == 3 * 3 * 4
