"""``steadygrad lr-find``: the suggestions are the library's, plot written, bad input."""

from __future__ import annotations

import json

import pytest
import torch

from steadygrad.cli.lr_find_cmd import RULES
from steadygrad.cli.main import EXIT_BAD_INPUT, EXIT_OK, main
from steadygrad.experiments.execute import build_model, load_data
from steadygrad.experiments.loader import load_config
from steadygrad.optim.lr_finder import lr_find, suggest_lr


def test_suggestions_match_the_library_range_test(tiny_config, tmp_path, capsys):
    plot = tmp_path / "lr.png"
    code = main(["lr-find", str(tiny_config), "--steps", "20", "--end-lr", "10",
                 "--plot", str(plot), "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == EXIT_OK
    config = load_config(tiny_config)
    data = load_data(config)
    expected = lr_find(build_model(config, data), data, optimizer={"name": "sgd"},
                       start_lr=1e-7, end_lr=10.0, num_steps=20, batch_size=32, seed=0)
    assert doc["suggestions"] == pytest.approx(expected.suggestions, rel=1e-6)
    assert doc["lrs"] == pytest.approx(expected.lrs)
    assert set(doc["rules"]) == set(RULES) == set(doc["suggestions"])
    # the suggestions follow from the recorded curve by the documented rules
    end = len(doc["lrs"]) - 1 if doc["stopped_early"] and len(doc["lrs"]) > 2 else None
    assert suggest_lr(doc["lrs"][:end], doc["losses"][:end]) == doc["suggestion"]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_text_output_names_the_rule(tiny_config, capsys):
    assert main(["lr-find", str(tiny_config), "--steps", "10", "--quiet"]) == EXIT_OK
    out = capsys.readouterr().out
    assert out.startswith("suggested learning_rate = ")
    assert "steepest: where the smoothed loss falls fastest" in out
    assert "--set train.optimizer.learning_rate=" in out


def test_model_weights_in_the_config_are_untouched(tiny_config, capsys):
    # the range test restores the model; running it twice gives identical suggestions
    main(["lr-find", str(tiny_config), "--steps", "10", "--json"])
    first = json.loads(capsys.readouterr().out)
    torch.manual_seed(123)
    main(["lr-find", str(tiny_config), "--steps", "10", "--json"])
    assert json.loads(capsys.readouterr().out)["suggestions"] == first["suggestions"]


@pytest.mark.parametrize(
    ("extra", "field"),
    [(["--start-lr", "1", "--end-lr", "0.1"], "--start-lr"),
     (["--plot", "lr.gif"], "--plot")],
)
def test_bad_arguments_exit_2(tiny_config, capsys, extra, field):
    assert main(["lr-find", str(tiny_config), *extra]) == EXIT_BAD_INPUT
    assert f"error: {field}: got" in capsys.readouterr().err


FLAT = """
[data]
name = "digits"
n_train = 100
[model]
depth = 8
units = 16
activation = "sigmoid"
kernel_initializer = {name = "variance_scaling", scale = 0.1}
[train]
batch_size = 100
"""


def test_flat_curve_exits_1_with_the_reason_and_no_rate(tmp_path, capsys):
    """Regression (issue 18): a vanishing-gradient net's flat curve got 3.05e-07 suggested."""
    config = tmp_path / "flat.toml"
    config.write_text(FLAT)
    code = main(["lr-find", str(config), "--end-lr", "0.01", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 1 and doc["suggestion"] is None and doc["suggestions"] == {}
    smoothed = doc["smoothed"]
    assert min(smoothed) > 0.95 * smoothed[0]  # the curve is flat indeed
    assert "never fell" in doc["refusal"]
    assert main(["lr-find", str(config), "--end-lr", "0.01", "--quiet"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("no learning rate suggested") and "learning_rate=" not in out
