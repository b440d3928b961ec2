"""Item 4: same config + seed => same run (history and weight hashes); another seed differs;
each run records torch version, threads and determinism flags.

Oracle: two independent executions of :func:`run_config` in separate folders (and, for the
slow test, in separate processes).
"""

from __future__ import annotations

import csv
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from steadygrad.experiments.config import config_from_dict
from steadygrad.experiments.execute import run_config

RAW = {
    "name": "det",
    "data": {"name": "digits", "n_train": 200},
    "model": {"hidden": [16], "dropout": 0.2},
    "train": {"epochs": 2, "batch_size": 32, "seed": 1,
              "optimizer": {"name": "adam", "learning_rate": 0.01}},
    "diagnostics": {"enabled": False},
}


def _fingerprint(run_dir: Path) -> tuple[str, str]:
    """(hash of history without wall-clock columns, sha256 of the weights file)."""
    with (run_dir / "history.csv").open() as f:
        rows = [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(f)]
    hist = hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()
    weights = hashlib.sha256((run_dir / "weights.safetensors").read_bytes()).hexdigest()
    return hist, weights


def _run(tmp: Path, name: str, seed: int) -> tuple[tuple[str, str], dict[str, Any]]:
    raw = json.loads(json.dumps(RAW))
    raw["train"]["seed"] = seed
    result = run_config(config_from_dict(raw), tmp / name)
    assert result.status == "done", result.error
    return _fingerprint(tmp / name), json.loads((tmp / name / "summary.json").read_text())


def test_same_seed_same_run_other_seed_differs(tmp_path: Path) -> None:
    a, summary = _run(tmp_path, "a", 1)
    b, _ = _run(tmp_path, "b", 1)
    c, _ = _run(tmp_path, "c", 2)
    assert a == b
    assert a[0] != c[0] and a[1] != c[1]
    assert summary["weights_sha256"] == a[1]
    assert summary["versions"]["torch"] == torch.__version__
    assert summary["threads"]["intra_op"] == torch.get_num_threads()
    assert set(summary["determinism"]) >= {"deterministic_algorithms",
                                           "cudnn_deterministic", "cudnn_benchmark"}
    assert summary["seeds"]["train"] == 1


_CHILD = """
import json, sys, torch
torch.set_num_threads(1)
from steadygrad.experiments.config import config_from_dict
from steadygrad.experiments.execute import run_config
r = run_config(config_from_dict(json.loads(sys.argv[1])), sys.argv[2])
print(r.status)
"""


@pytest.mark.slow
def test_same_seed_same_run_across_processes(tmp_path: Path) -> None:
    prints = []
    for name in ("p1", "p2"):
        out = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(RAW), str(tmp_path / name)],
                             capture_output=True, text=True, check=True, timeout=300)
        assert out.stdout.strip() == "done", out.stderr
        prints.append(_fingerprint(tmp_path / name))
    local, _ = _run(tmp_path, "local", 1)
    assert prints[0] == prints[1] == local
