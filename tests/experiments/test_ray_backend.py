"""The Ray backend against a local Ray instance (skipped when ray is not installed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from steadygrad.experiments.execute import run_config
from steadygrad.experiments.index import RunIndex
from steadygrad.experiments.runner import run_sweep
from steadygrad.experiments.space import sweep_from_dict

ray = pytest.importorskip("ray")

SPEC = {"name": "onray", "seeds": [0, 1],
        "base": {"data": {"name": "digits", "n_train": 120}, "model": {"hidden": [8]},
                 "train": {"epochs": 1}, "diagnostics": {"enabled": False}},
        "axes": {"model.activation": ["relu", "tanh"]}}


def test_ray_sweep_matches_local_execution_and_claims_each_run_once(tmp_path: Path) -> None:
    sweep = sweep_from_dict(SPEC)
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        result = run_sweep(sweep, tmp_path / "ray", workers=2, threads=1, backend="ray")
    finally:
        ray.shutdown()
    assert result.counts == {"pending": 0, "running": 0, "done": 4, "failed": 0}
    index = RunIndex(result.sweep_dir / "index.sqlite")
    assert sorted(e[0] for e in index.events() if e[1] == "claimed") == \
        sorted(r.run_id for r in sweep.runs)
    for run in sweep.runs:
        summary = json.loads((result.sweep_dir / "runs" / run.name / "summary.json").read_text())
        local = run_config(run.config, tmp_path / "local" / run.name)
        assert summary["weights_sha256"] == local.summary["weights_sha256"]
        assert summary["threads"]["intra_op"] == 1
