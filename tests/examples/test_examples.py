"""Every ``examples/*.toml`` runs offline: it trains one epoch on its default (bundled) data,
its schedule fits the run it describes, and ``summary`` prints its model without any data."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from steadygrad.cli.main import main
from steadygrad.experiments.config import config_from_dict
from steadygrad.experiments.execute import fit_arguments, load_data, run_config
from steadygrad.experiments.loader import load_config, read_table
from steadygrad.optim.schedules import make_schedule

EXAMPLES = Path(__file__).parents[2] / "examples"
RUNS = sorted(p for p in EXAMPLES.glob("*.toml") if not p.name.startswith("sweep_"))
SWEEPS = sorted(EXAMPLES.glob("sweep_*.toml"))


def test_there_are_examples() -> None:
    assert len(RUNS) >= 28 and SWEEPS


@pytest.mark.parametrize("path", RUNS, ids=lambda p: p.stem)
def test_example_trains_one_epoch_offline(path: Path, tmp_path: Path) -> None:
    """Regression (issue 18): every example needed Fashion-MNIST (n_train=10000)."""
    config = load_config(path, ["train.epochs=1"])
    assert config.data.name in ("digits", "first_token")  # bundled or generated: offline
    result = run_config(config, tmp_path / path.stem)
    assert result.status == "done", result.error
    assert result.summary["epochs_run"] == 1
    accuracy = result.summary["final"]["val_accuracy"]
    if config.data.name == "digits":
        assert accuracy is not None and accuracy > 0.15  # chance 0.1 +- 0.018 on 288 rows
    else:  # one epoch of a long-range memory task: not learned yet, but not diverging either
        vocab = config.data.kwargs["vocab"]
        assert result.summary["final"]["val_loss"] <= 1.05 * math.log(vocab)  # chance: ln(V)


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.stem)
def test_sweep_example_runs_offline(path: Path, tmp_path: Path) -> None:
    raw = read_table(path)
    base = dict(raw["base"])
    base["train"] = {**base.get("train", {}), "epochs": 1}
    base["model"] = {**base["model"], "activation": raw["axes"]["model.activation"][0]}
    result = run_config(config_from_dict(base), tmp_path / "run")
    assert result.status == "done", result.error


@pytest.mark.parametrize(
    "path", [p for p in RUNS if "[train.schedule]" in p.read_text()
             and "reduce_on_plateau" not in p.read_text()],  # that one reacts to val_loss
    ids=lambda p: p.stem)
def test_step_schedules_change_the_rate_within_the_example_run(path: Path) -> None:
    """Regression: the step boundaries of the examples never fired on small data."""
    config = load_config(path)
    spec = fit_arguments(config)["schedule"]
    assert isinstance(spec, dict)
    n = len(load_data(config).x_train)
    total = -(-n // config.train.batch_size) * config.train.epochs
    kw = {k: v for k, v in spec.items() if k != "name"}
    sched = make_schedule(spec["name"], learning_rate=0.05, total_steps=total, **kw)
    rates = [sched(t) for t in range(total)]
    assert max(rates) / min(rates) > 2  # the schedule acts within the run


@pytest.mark.parametrize("path", RUNS[:3], ids=lambda p: p.stem)
def test_summary_needs_no_data(path: Path, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    """Regression: ``steadygrad summary examples/batch_norm.toml`` loaded the dataset."""
    import steadygrad.data.datasets as datasets

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("summary loaded the data")

    monkeypatch.setattr(datasets, "load", refuse)
    for name, params in (("digits", 64), ("fashion_mnist", 784)):
        code = main(["summary", str(path), "--set", f"data.name={name}", "--json"])
        assert code == 0
        out = json.loads(capsys.readouterr().out)
        dense = next(r for r in out["rows"] if r["type"] == "Linear")
        assert dense["params"] % (params + 1) == 0  # (inputs + bias) x units
