"""``steadygrad train --nproc N``: a local torchrun launch that writes one run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from steadygrad.cli.main import EXIT_BAD_INPUT, main

ROOT = Path(__file__).resolve().parents[2]

CONFIG = """
name = "ddp"
[data]
name = "digits"
n_train = 256
[model]
hidden = [16]
[train]
epochs = 2
batch_size = 32
[train.optimizer]
name = "adam"
learning_rate = 0.01
[diagnostics]
every = 2
"""


def test_nproc_refuses_bad_values_and_bad_configs_before_launching(tmp_path, capsys):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(CONFIG.replace("epochs = 2", "epochs = 0"))
    assert main(["train", str(cfg), "--nproc", "2", "--out", str(tmp_path / "runs")]) \
        == EXIT_BAD_INPUT
    assert "train.epochs" in capsys.readouterr().err
    good = tmp_path / "good.toml"
    good.write_text(CONFIG)
    assert main(["train", str(good), "--nproc", "0"]) == EXIT_BAD_INPUT
    assert "--nproc: got 0" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(run_dir / "weights.safetensors"))


@pytest.mark.slow
def test_nproc_2_writes_one_run_with_the_one_process_weights(tmp_path):
    cfg = tmp_path / "ddp.toml"
    cfg.write_text(CONFIG)
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    done = subprocess.run(
        [sys.executable, "-m", "steadygrad.cli.main", "train", str(cfg), "--out",
         str(tmp_path / "two"), "--nproc", "2", "--quiet"],
        capture_output=True, text=True, timeout=300, env=env, cwd=str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("run ddp: done") == 1  # rank 0 reports, once
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == [".staging", "ddp"]
    assert main(["train", str(cfg), "--out", str(tmp_path / "one"), "--quiet"]) == 0
    two, one = _weights(tmp_path / "two" / "ddp"), _weights(tmp_path / "one" / "ddp")
    assert two.keys() == one.keys()
    for k in one:
        torch.testing.assert_close(two[k], one[k], atol=1e-6, rtol=0)
