"""``steadygrad summary CONFIG``: the summary of the model a run config builds."""

from __future__ import annotations

import json

from steadygrad.cli.main import EXIT_BAD_INPUT, main
from steadygrad.experiments.execute import build_model, load_data
from steadygrad.experiments.loader import load_config


def test_summary_of_a_config_counts_the_built_models_parameters(tiny_config, capsys):
    assert main(["summary", str(tiny_config), "--json", "--set", "model.hidden=[16, 4]"]) == 0
    doc = json.loads(capsys.readouterr().out)
    config = load_config(tiny_config, ["model.hidden=[16, 4]"])
    model = build_model(config, load_data(config))
    total = sum(p.numel() for p in model.parameters())
    assert total == 64 * 16 + 16 + 16 * 4 + 4 + 4 * 10 + 10  # digits: 64 inputs, 10 classes
    assert doc["total_params"] == doc["trainable_params"] == total
    assert doc["input_shape"] == [64]
    assert doc["rows"][-1]["output_shape"] == [None, 10]


def test_set_with_an_example_model_is_refused(capsys):
    assert main(["summary", "book_bn", "--set", "model.hidden=[8]"]) == EXIT_BAD_INPUT
    assert "--set: got" in capsys.readouterr().err
