"""HealthReport JSON round trip, atomic save, severity queries, rendering, diagnose()."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from steadygrad.diagnostics.diagnose import diagnose
from steadygrad.diagnostics.report import SCHEMA, HealthReport
from steadygrad.diagnostics.rules import Thresholds
from steadygrad.errors import ConfigError, DataError

from .reference_runs import mlp, normal, train


@pytest.fixture(scope="module")
def broken() -> HealthReport:
    torch.manual_seed(0)
    return train(mlp(10, 64, nn.Tanh, init=normal(0.01)), steps=12, lr=0.01)


def test_json_round_trip_keeps_series_and_findings(broken: HealthReport) -> None:
    doc = json.loads(broken.to_json())
    assert doc["schema"] == SCHEMA and len(doc["layers"]) == 11
    back = HealthReport.from_json(broken.to_json())
    assert back.to_dict() == broken.to_dict()
    assert [f.kind for f in back.findings] == [f.kind for f in broken.findings]


def test_save_is_atomic_and_refuses_to_overwrite(broken: HealthReport, tmp_path: Path) -> None:
    p = broken.save(tmp_path / "health.json")
    assert HealthReport.load(p).series.steps == broken.series.steps
    assert [x.name for x in tmp_path.iterdir()] == ["health.json"]  # no temp file left
    with pytest.raises(ConfigError, match="overwrite"):
        broken.save(p)
    broken.save(p, overwrite=True)


def test_has_orders_severities(broken: HealthReport) -> None:
    assert broken.has("info") and broken.has("warning") and not broken.has("error")
    with pytest.raises(ConfigError, match="severity"):
        broken.has("fatal")


def test_render_lists_every_layer_and_finding(broken: HealthReport) -> None:
    text = str(broken)
    for name in broken.series.layers:
        assert f" {name} " in text
    for f in broken.findings:
        assert f.kind in text


def test_finding_layers_use_the_table_row_numbers(broken: HealthReport) -> None:
    """Regression (issue 18): a finding's ``layers`` were module names while the table's
    ``#`` column counted rows; the finding now quotes the row number of each layer."""
    lines = str(broken).splitlines()
    table = {line.split()[1]: int(line.split()[0]) for line in lines
             if line[:3].strip().isdigit() and len(line.split()) > 2}
    assert table and broken.findings
    for f in broken.findings:
        header = next(line for line in lines if f" {f.kind} (from step" in line)
        for name in f.layers:
            assert f"#{table[name]} {name}" in header


def test_from_json_rejects_other_schemas() -> None:
    with pytest.raises(DataError, match="schema"):
        HealthReport.from_json('{"schema": "other/1"}')


def test_thresholds_validate() -> None:
    with pytest.raises(ConfigError, match="dead_fraction"):
        Thresholds(dead_fraction=1.5)
    with pytest.raises(ConfigError, match="lr_low"):
        Thresholds(lr_low=1.0, lr_high=0.5)


def test_diagnose_trains_under_the_monitor_and_validates_input() -> None:
    torch.manual_seed(0)
    x = torch.randn(100, 64)
    y = torch.randint(0, 10, (100,))
    rep = diagnose(mlp(10, 64, nn.ReLU, init=normal(0.3)), x, y, steps=10, learning_rate=0.01)
    assert rep.series.steps == list(range(10))
    assert rep.has("warning")  # oversized init: gradients grow towards the input
    assert "exploding_gradients" in {f.kind for f in rep.findings}
    with pytest.raises(DataError):
        diagnose(mlp(2, 8, nn.ReLU), x, y[:5], steps=1)
    with pytest.raises(ConfigError, match="steps"):
        diagnose(mlp(2, 8, nn.ReLU), x, y, steps=0)
