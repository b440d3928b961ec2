"""``steadygrad diagnose``: N monitored steps, the health report, ``--fail-on`` exit codes."""

from __future__ import annotations

import json

import pytest

from steadygrad.cli.main import EXIT_BAD_INPUT, EXIT_DIVERGED, EXIT_FAILED, EXIT_OK, main
from steadygrad.diagnostics.monitor import DENSE_START
from steadygrad.diagnostics.report import SCHEMA, HealthReport

SEVERITY = {"info": 0, "warning": 1, "error": 2}


def test_json_report_covers_exactly_the_requested_steps(tiny_config, capsys):
    code = main(["diagnose", str(tiny_config), "--steps", "7", "--every", "2", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == EXIT_OK and doc["schema"] == SCHEMA
    # steps 0..6 (all sampled: the first DENSE_START are), nothing after step 6
    assert DENSE_START > 7 and doc["steps"] == [0, 1, 2, 3, 4, 5, 6]
    assert [layer["name"] for layer in doc["layers"]] == ["dense1", "output"]
    assert HealthReport.from_dict(doc).series.checks == 7  # a valid health/2 document


def test_steps_beyond_the_configured_epochs_extend_training(tiny_config, capsys):
    # 120 rows / batch 32 = 4 steps per epoch, 2 epochs configured = 8 steps; ask for 21
    main(["diagnose", str(tiny_config), "--steps", "21", "--every", "5", "--json"])
    assert json.loads(capsys.readouterr().out)["steps"] == [*range(DENSE_START), 20]


def test_fail_on_turns_findings_into_exit_1(vanishing_config, tmp_path, capsys):
    save = tmp_path / "health.json"
    code = main(["diagnose", str(vanishing_config), "--steps", "8", "--every", "2",
                 "--fail-on", "warning", "--json", "--save", str(save)])
    doc = json.loads(capsys.readouterr().out)
    worst = max((SEVERITY[f["severity"]] for f in doc["findings"]), default=-1)
    assert worst >= SEVERITY["warning"]  # this net does have a warning (vanishing gradients)
    assert {f["kind"] for f in doc["findings"]} >= {"vanishing_gradients"}
    assert code == EXIT_FAILED
    assert json.loads(save.read_text()) == doc
    # same run, stricter threshold: exit 1 exactly when an error-level finding exists
    code = main(["diagnose", str(vanishing_config), "--steps", "8", "--every", "2",
                 "--fail-on", "error", "--json"])
    doc = json.loads(capsys.readouterr().out)
    has_error = any(f["severity"] == "error" for f in doc["findings"])
    assert code == (EXIT_FAILED if has_error else EXIT_OK)
    # without --fail-on findings never change the exit code
    assert main(["diagnose", str(vanishing_config), "--steps", "8", "--every", "2"]) == 0
    text = capsys.readouterr().out
    assert "WARNING vanishing_gradients" in text and text.startswith("gradient health")


def test_divergence_exits_3(diverging_config, capsys):
    assert main(["diagnose", str(diverging_config), "--steps", "8"]) == EXIT_DIVERGED
    out = capsys.readouterr().out
    assert "training diverged: non_finite at step" in out
    # the report itself says so (schema 1 printed "gradients look healthy" above this line)
    assert "training diverged: the loss became NaN/Inf at step" in out
    assert "look healthy" not in out


@pytest.mark.parametrize("steps", ["0", "x"])
def test_bad_steps_is_a_usage_error(tiny_config, steps, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["diagnose", str(tiny_config), "--steps", steps])
    assert exc.value.code == EXIT_BAD_INPUT
    assert "--steps: got" in capsys.readouterr().err


def test_bad_config_is_reported_before_training(tiny_config, capsys):
    code = main(["diagnose", str(tiny_config), "--steps", "5", "--set", "model.hidden=[0]"])
    assert code == EXIT_BAD_INPUT
    assert capsys.readouterr().err.startswith("steadygrad diagnose: error: model.hidden")


def test_non_finite_error_raised_by_training_maps_to_exit_3(diverging_config, capsys):
    code = main(["diagnose", str(diverging_config), "--steps", "8",
                 "--set", "train.on_non_finite=raise"])
    assert code == EXIT_DIVERGED
    assert capsys.readouterr().err.startswith("steadygrad diagnose: diverged: non_finite")
