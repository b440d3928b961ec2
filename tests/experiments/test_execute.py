"""run_config: one config end to end, its run directory, divergence and failure records."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from steadygrad.errors import ConfigError
from steadygrad.experiments.config import config_from_dict
from steadygrad.experiments.execute import build_model, load_data, run_config
from steadygrad.experiments.loader import load_config

TINY = {"name": "tiny", "data": {"name": "digits", "n_train": 150},
        "model": {"hidden": [12], "activation": "tanh", "batch_norm": "before"},
        "train": {"epochs": 2, "batch_size": 32, "seed": 3,
                  "optimizer": {"name": "sgd", "learning_rate": 0.05, "momentum": 0.9,
                                "clipnorm": 1.0}},
        "diagnostics": {"enabled": True, "every": 2}}


def test_run_directory_is_complete_and_every_file_parses(tmp_path: Path) -> None:
    cfg = config_from_dict(TINY)
    result = run_config(cfg, tmp_path / "run")
    assert result.status == "done", result.error
    run = result.run_dir
    assert load_config(run / "config.toml") == cfg == load_config(run / "config.json")
    rows = list(csv.DictReader((run / "history.csv").open()))
    assert len(rows) == 2 and {"loss", "val_loss", "val_accuracy", "lr"} <= set(rows[0])
    health = json.loads((run / "health.json").read_text())
    assert isinstance(health, dict) and health
    summary = json.loads((run / "summary.json").read_text())
    assert summary == result.summary
    assert summary["status"] == "done" and summary["epochs_run"] == 2
    assert summary["seeds"] == {"train": 3, "model": 3, "data": 0}  # digits' default split seed
    assert summary["threads"]["intra_op"] == torch.get_num_threads()
    assert (summary["step"]["engine"], summary["step"]["fallback"]) == ("eager", None)
    assert summary["step"]["threads"] in range(1, torch.get_num_threads() + 1)
    assert set(summary["versions"]) == {"python", "torch", "numpy", "steadygrad"}
    assert set(summary["determinism"]) == {"deterministic_algorithms", "cudnn_deterministic",
                                           "cudnn_benchmark"}
    assert summary["final"]["val_loss"] == pytest.approx(float(rows[-1]["val_loss"]))
    digest = hashlib.sha256((run / "weights.safetensors").read_bytes()).hexdigest()
    assert summary["weights_sha256"] == digest
    # the weights load back into the model the config builds, and reproduce val accuracy
    data = load_data(cfg)
    model = build_model(cfg, data)
    model.load_state_dict(load_file(run / "weights.safetensors"))
    model.eval()
    with torch.no_grad():
        acc = (model(data.x_val).argmax(1) == data.y_val).float().mean().item()
    assert acc == pytest.approx(summary["final"]["val_accuracy"], abs=1e-6)


def test_runs_are_deterministic(tmp_path: Path) -> None:
    cfg = config_from_dict(TINY)
    a, b = run_config(cfg, tmp_path / "a"), run_config(cfg, tmp_path / "b")
    assert a.summary["weights_sha256"] == b.summary["weights_sha256"]
    assert a.metrics == {**b.metrics, "seconds": a.metrics["seconds"]}
    other = run_config(config_from_dict({**TINY, "train": {**TINY["train"], "seed": 4}}),
                       tmp_path / "c")
    assert other.summary["weights_sha256"] != a.summary["weights_sha256"]


def test_diagnostics_disabled_writes_no_health(tmp_path: Path) -> None:
    cfg = config_from_dict({**TINY, "diagnostics": {"enabled": False}})
    result = run_config(cfg, tmp_path)
    assert result.status == "done" and not (tmp_path / "health.json").exists()


@pytest.mark.filterwarnings("ignore:training stopped:RuntimeWarning")
def test_divergence_is_recorded_with_kind_step_and_layer(tmp_path: Path) -> None:
    cfg = config_from_dict({**TINY, "model": {"hidden": [8]}, "train": {
        "epochs": 2, "optimizer": {"name": "sgd", "learning_rate": 1e30}},
        "diagnostics": {"enabled": False}})
    result = run_config(cfg, tmp_path)
    assert result.status == "diverged"
    diverged = result.summary["diverged"]
    assert diverged["step"] >= 0 and diverged["layer"].startswith("layer ")
    assert "non-finite" in diverged["kind"]
    assert json.loads((tmp_path / "summary.json").read_text())["status"] == "diverged"


def test_a_failing_run_records_its_traceback_and_does_not_raise(tmp_path: Path) -> None:
    cfg = config_from_dict({**TINY, "data": {"name": "digits", "n_train": 10**6}})
    result = run_config(cfg, tmp_path)
    assert result.status == "failed"
    assert result.error is not None and "Traceback" in result.error
    assert "n_train: got 1000000" in result.error
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["error"] == result.error
    assert load_config(tmp_path / "config.toml") == cfg


def test_missing_data_file_fails_at_validation(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^data\.path: got .*; expected an existing data file"):
        config_from_dict({"data": {"name": "npz", "path": str(tmp_path / "none.npz")}})


def test_an_example_runs_with_overrides(tmp_path: Path) -> None:
    examples = Path(__file__).resolve().parents[2] / "examples"
    cfg = load_config(examples / "activation_selu.toml", [
        'data={name = "digits", n_train = 100}', "model.hidden=[8, 8]", "train.epochs=1"])
    result = run_config(cfg, tmp_path)
    assert result.status == "done", result.error
    assert result.summary["epochs_run"] == 1


@pytest.mark.slow
@pytest.mark.parametrize("path", sorted(p.name for p in (
    Path(__file__).resolve().parents[2] / "examples").glob("*.toml")
    if not p.name.startswith("sweep")))
def test_every_example_trains_on_a_small_budget(tmp_path: Path, path: str) -> None:
    examples = Path(__file__).resolve().parents[2] / "examples"
    small = ['data={name = "digits", n_train = 200}', "train.epochs=2", "diagnostics.every=5"]
    if load_config(examples / path).model.arch != "mlp":  # images or sequences: own data
        small[0] = "data.n=200" if "rnn" in path or "transformer" in path else "data.n_train=200"
    if path == "schedule_cosine.toml":  # its 100 warm-up steps exceed this budget's 14 steps
        small.append("train.schedule.warmup_steps=4")
    cfg = load_config(examples / path, small)
    result = run_config(cfg, tmp_path)
    assert result.status in ("done", "diverged"), result.error
    assert result.summary["epochs_run"] >= 1
