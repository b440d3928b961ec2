"""Item 3: resuming from a checkpoint reproduces the uninterrupted run bit for bit.

``fit`` checkpoints once per epoch, so the supported stopping points are epoch boundaries
(mid-epoch and step-1 resumption are not supported; see docs/reliability.md). Oracle: the
uninterrupted run with the same seed. Control: with RNG restoration disabled the same
comparison must fail, which shows the test can detect a missing RNG state.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from steadygrad.nn.build import mlp
from steadygrad.nn.constraints import has_constraints
from steadygrad.train import runner as runner_module
from steadygrad.train.callbacks import Callback
from steadygrad.train.checkpoint import CheckpointManager
from steadygrad.train.loop import fit

CONFIGS: dict[str, dict[str, Any]] = {
    "dropout": {"dropout": 0.3},
    "shuffling+momentum": {"optimizer": {"name": "sgd", "learning_rate": 0.05,
                                         "momentum": 0.9}},
    "1cycle+adam": {"optimizer": "adam", "schedule": "1cycle"},
    "early_stopping": {"early_stopping": {"monitor": "loss", "patience": 10}},
    "dropout+adam+clip": {"dropout": 0.2, "optimizer": {"name": "adam", "clipnorm": 0.5}},
    "max_norm+dropout": {"max_norm": 0.5, "dropout": 0.1, "optimizer": "adam"},
}


class _StopAfter(Callback):
    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_epoch_end(self, epoch: int, logs: Any) -> bool:
        return epoch + 1 >= self.epoch


def _model(dropout: float, max_norm: float | None = None) -> nn.Module:
    torch.manual_seed(123)
    if max_norm is not None:  # steadygrad's builder attaches the max-norm constraint
        return mlp(6, (16, 16), max_norm=max_norm, dropout=dropout, num_outputs=3, seed=123)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, 3))


def _train(kw: dict[str, Any], ckpt: Path | None, epochs: int, stop: int | None = None,
           resume: bool = False) -> tuple[nn.Module, Any]:
    kw = dict(kw)
    model = _model(kw.pop("dropout", 0.0), kw.pop("max_norm", None))
    torch.manual_seed(0)
    x = torch.randn(50, 6, generator=torch.Generator().manual_seed(1))
    y = torch.arange(50) % 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        h = fit(model, (x, y), epochs=epochs, batch_size=8, seed=7, verbose=0, monitor=False,
                checkpoint_dir=ckpt, resume=resume,
                callbacks=[_StopAfter(stop)] if stop else [], **kw)
    return model, h


def _same(a: nn.Module, ha: Any, b: nn.Module, hb: Any) -> bool:
    params = all(torch.equal(p, q) for p, q in zip(a.state_dict().values(),
                                                   b.state_dict().values(), strict=True))
    keys = [k for k in ha.history if k != "seconds"]
    hist = all(ha.history[k] == hb.history[k] for k in keys) and len(ha) == len(hb)
    return params and hist


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("stop", [1, 2])
def test_resume_at_epoch_boundary_is_bit_exact(tmp_path: Path, name: str, stop: int) -> None:
    kw = CONFIGS[name]
    full, h_full = _train(kw, tmp_path / "full", 4)
    _train(kw, tmp_path / "part", 4, stop=stop)
    resumed, h_res = _train(kw, tmp_path / "part", 4, resume=True)
    assert _same(full, h_full, resumed, h_res)
    opt_full = CheckpointManager(tmp_path / "full").load().state["optimizer"]
    opt_res = CheckpointManager(tmp_path / "part").load().state["optimizer"]
    assert repr(opt_full) == repr(opt_res)


def test_max_norm_config_really_constrains() -> None:
    assert has_constraints(_model(0.1, 0.5))


def test_control_without_rng_restore_differs(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    kw = CONFIGS["dropout"]
    full, h_full = _train(kw, tmp_path / "full", 3)
    _train(kw, tmp_path / "part", 3, stop=1)
    monkeypatch.setattr(runner_module, "set_rng_state", lambda *a, **k: None)
    resumed, h_res = _train(kw, tmp_path / "part", 3, resume=True)
    assert not _same(full, h_full, resumed, h_res)


_CHILD = """
import json, sys, torch
torch.set_num_threads(1)
from pathlib import Path
from tests.reliability.test_resume import CONFIGS, _train
from steadygrad.train.checkpoint import save_weights
name, ckpt, stop, resume, out = sys.argv[1:6]
model, h = _train(CONFIGS[name], Path(ckpt), 4, stop=int(stop) or None, resume=resume == "1")
if out:
    save_weights(model, out)
    Path(out + ".json").write_text(json.dumps({k: v for k, v in h.history.items()
                                               if k != "seconds"}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_resume_in_a_new_process(tmp_path: Path, name: str) -> None:
    """Stop after epoch 1 in one process, resume in a second one; compare with this one's."""
    import json
    import subprocess
    import sys

    from steadygrad.train.checkpoint import read_tensors

    root = Path(__file__).resolve().parents[2]
    ck, out = tmp_path / "ck", tmp_path / "w.safetensors"
    for stop, resume, dest in (("1", "0", ""), ("0", "1", str(out))):
        subprocess.run([sys.executable, "-c", _CHILD, name, str(ck), stop, resume, dest],
                       cwd=root, check=True, timeout=300)
    full, h_full = _train(CONFIGS[name], tmp_path / "full", 4)
    got = read_tensors(out)
    assert all(torch.equal(v, got[k]) for k, v in full.state_dict().items())
    hist = json.loads(Path(str(out) + ".json").read_text())
    assert hist == {k: v for k, v in h_full.history.items() if k != "seconds"}
