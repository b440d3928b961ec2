"""Item 3: resuming from a checkpoint reproduces the uninterrupted run bit for bit.

Training is interrupted after optimizer step 1, in the middle of epoch 2 (step 10 of 28) and
at the boundary of epochs 2 and 3 (step 14), with ``checkpoint_every`` set so that the
checkpoint of exactly that step is the latest one; then it is resumed. The interruption is
an exception raised from ``on_batch_begin`` of the next step (in-process) or ``os._exit``
there (new processes: nothing of the interrupted process survives, as with SIGKILL), after
the checkpoint was written. Oracle: the uninterrupted run with the same seed, which writes
epoch-end checkpoints only; parameters, optimizer state (every tensor with ``torch.equal``)
and history (every key but ``seconds``, and the epoch numbers) must be identical. Control:
with the RNG restore disabled the same comparison must fail.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from steadygrad.errors import ConfigError
from steadygrad.nn.build import mlp
from steadygrad.nn.constraints import has_constraints
from steadygrad.train import loop as loop_module
from steadygrad.train import runner as runner_module
from steadygrad.train.callbacks import Callback
from steadygrad.train.checkpoint import CheckpointManager, read_tensors, save_weights
from steadygrad.train.loop import fit

N, BATCH, EPOCHS = 50, 8, 4  # 7 steps per epoch, 28 in all
STEPS_PER_EPOCH = -(-N // BATCH)
CONFIGS: dict[str, dict[str, Any]] = {
    "dropout": {"dropout": 0.3},
    "shuffling+momentum": {"optimizer": {"name": "sgd", "learning_rate": 0.05,
                                         "momentum": 0.9}},
    "1cycle+adam": {"optimizer": "adam", "schedule": "1cycle"},
    # stops after epoch 3 (of 4) and restores the weights of epoch 2
    "early_stopping": {"dropout": 0.2, "optimizer": {"name": "sgd", "learning_rate": 0.9},
                       "early_stopping": {"monitor": "loss", "patience": 0,
                                          "min_delta": 0.005, "restore_best_weights": True}},
    "dropout+adam+clip": {"dropout": 0.2, "optimizer": {"name": "adam", "clipnorm": 0.5}},
    "max_norm+dropout": {"max_norm": 0.5, "dropout": 0.1, "optimizer": "adam"},
}
STOPS = {"step1": 1, "mid_epoch": STEPS_PER_EPOCH + 3, "epoch_boundary": 2 * STEPS_PER_EPOCH}
EXIT_CODE = 17


class KillError(Exception):
    """Raised by :class:`_Kill` to interrupt training in-process."""


class _Kill(Callback):
    """Interrupts training once ``at`` optimizer steps are done (and checkpointed).

    Always present (``at=None``: inert) so callback positions match between runs.
    """

    def __init__(self, at: int | None, hard: bool = False) -> None:
        self.at, self.hard = at, hard

    def on_batch_begin(self, step: int, logs: Any) -> None:
        if step == self.at:
            if self.hard:
                os._exit(EXIT_CODE)  # no cleanup at all, as after SIGKILL
            raise KillError(step)


def _model(dropout: float, max_norm: float | None = None) -> nn.Module:
    torch.manual_seed(123)
    if max_norm is not None:  # steadygrad's builder attaches the max-norm constraint
        return mlp(6, (16, 16), max_norm=max_norm, dropout=dropout, num_outputs=3, seed=123)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, 3))


def _train(kw: dict[str, Any], ckpt: Path, kill_at: int | None = None, hard: bool = False,
           resume: bool = False) -> tuple[nn.Module, Any]:
    """One fit; the interrupted and resumed runs checkpoint every ``STOP`` steps."""
    kw = dict(kw)
    model = _model(kw.pop("dropout", 0.0), kw.pop("max_norm", None))
    torch.manual_seed(0)
    x = torch.randn(N, 6, generator=torch.Generator().manual_seed(1))
    y = torch.arange(N) % 3
    every = kw.pop("checkpoint_every", None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        h = fit(model, (x, y), epochs=EPOCHS, batch_size=BATCH, seed=7, verbose=0,
                monitor=False, checkpoint_dir=ckpt, resume=resume, checkpoint_every=every,
                callbacks=[_Kill(kill_at, hard)], **kw)
    return model, h


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor):
        return (isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape
                and bool(torch.equal(a, b)))
    if isinstance(a, dict):
        return (isinstance(b, dict) and a.keys() == b.keys()
                and all(_equal(a[k], b[k]) for k in a))
    if isinstance(a, (list, tuple)):
        return (isinstance(b, (list, tuple)) and len(a) == len(b)
                and all(_equal(u, v) for u, v in zip(a, b, strict=True)))
    return bool(a == b)


def _record(h: Any) -> dict[str, Any]:
    return {"epoch": list(h.epoch),
            **{k: list(v) for k, v in h.history.items() if k != "seconds"}}


def _mismatches(full_dir: Path, full_w: dict[str, torch.Tensor], full_h: dict[str, Any],
                res_dir: Path, res_w: dict[str, torch.Tensor], res_h: dict[str, Any]) -> list[str]:
    """What differs between the uninterrupted and the resumed run (empty: bit-identical)."""
    bad = []
    if not _equal(full_w, res_w):
        bad.append("parameters")
    opt_full = CheckpointManager(full_dir).load().state["optimizer"]
    opt_res = CheckpointManager(res_dir).load().state["optimizer"]
    if not _equal(opt_full, opt_res):
        bad.append("optimizer state")
    if full_h != res_h:
        bad.append("history")
    return bad


def _interrupt_and_resume(tmp_path: Path, name: str, at: int) -> list[str]:
    kw = CONFIGS[name]
    full, h_full = _train(kw, tmp_path / "full")
    part = dict(kw, checkpoint_every=at)
    with pytest.raises(KillError):
        _train(part, tmp_path / "part", kill_at=at)
    _check_latest(tmp_path / "part", at)
    resumed, h_res = _train(part, tmp_path / "part", resume=True)
    return _mismatches(tmp_path / "full", full.state_dict(), _record(h_full),
                       tmp_path / "part", resumed.state_dict(), _record(h_res))


def _check_latest(directory: Path, at: int) -> None:
    """The interrupted run's latest checkpoint is the one of step ``at``."""
    ckpt = CheckpointManager(directory).load()
    assert ckpt.state["global_step"] == at
    assert (ckpt.state["partial"] is None) == (at % STEPS_PER_EPOCH == 0)


@pytest.mark.parametrize("stop", sorted(STOPS))
def test_resume_is_bit_exact_in_process(tmp_path: Path, stop: str) -> None:
    assert _interrupt_and_resume(tmp_path, "dropout+adam+clip", STOPS[stop]) == []


def test_resume_mid_epoch_with_device_accumulators(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The accelerator path (loss sums kept as device tensors), run on CPU."""
    monkeypatch.setattr(loop_module, "SYNC_ON_CPU", False)
    assert _interrupt_and_resume(tmp_path, "1cycle+adam", STOPS["mid_epoch"]) == []


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("stop", sorted(STOPS))
def test_resume_is_bit_exact_in_process_all_configs(tmp_path: Path, name: str,
                                                    stop: str) -> None:
    assert _interrupt_and_resume(tmp_path, name, STOPS[stop]) == []


def test_configs_really_exercise_their_feature(tmp_path: Path) -> None:
    assert has_constraints(_model(0.1, 0.5))
    _, h = _train(CONFIGS["early_stopping"], tmp_path / "es")
    assert len(h) < EPOCHS, "early stopping must stop before the last epoch"


def test_checkpoint_every_needs_a_directory() -> None:
    with pytest.raises(ConfigError, match="checkpoint_every"):
        fit(nn.Linear(2, 1), (torch.randn(4, 2), torch.randn(4, 1)), checkpoint_every=1,
            verbose=0)
    with pytest.raises(ConfigError, match="checkpoint_every"):
        fit(nn.Linear(2, 1), (torch.randn(4, 2), torch.randn(4, 1)), checkpoint_every=0,
            checkpoint_dir="unused", verbose=0)


@pytest.mark.parametrize("stop", ["mid_epoch", "epoch_boundary"])
def test_control_without_rng_restore_differs(tmp_path: Path, stop: str,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Same comparison with the RNG restore disabled: it must detect the difference."""
    monkeypatch.setattr(runner_module, "set_rng_state", lambda *a, **k: None)
    bad = _interrupt_and_resume(tmp_path, "dropout", STOPS[stop])
    assert "parameters" in bad and "history" in bad


_CHILD = """
import json, sys, torch
torch.set_num_threads(1)
from pathlib import Path
from tests.reliability.test_resume import CONFIGS, _record, _train
from steadygrad.train.checkpoint import save_weights
name, ckpt, at, out = sys.argv[1:5]
kw = dict(CONFIGS[name], checkpoint_every=int(at))
if not out:
    _train(kw, Path(ckpt), kill_at=int(at), hard=True)
    sys.exit(0)  # not reached: the run is killed at step `at`
model, h = _train(kw, Path(ckpt), resume=True)
save_weights(model, out)
Path(out + ".json").write_text(json.dumps(_record(h)))
"""


def _new_processes(tmp_path: Path, name: str, at: int) -> list[str]:
    """Interrupt in one new process (hard exit), resume in another; compare with this one."""
    root = Path(__file__).resolve().parents[2]
    ck, out = tmp_path / "ck", tmp_path / "w.safetensors"
    env = dict(os.environ, PYTHONPATH=str(root))
    killed = subprocess.run([sys.executable, "-c", _CHILD, name, str(ck), str(at), ""],
                            cwd=root, env=env, timeout=300, capture_output=True, text=True)
    assert killed.returncode == EXIT_CODE, killed.stderr
    _check_latest(ck, at)
    subprocess.run([sys.executable, "-c", _CHILD, name, str(ck), str(at), str(out)],
                   cwd=root, env=env, check=True, timeout=300)
    full, h_full = _train(CONFIGS[name], tmp_path / "full")
    return _mismatches(tmp_path / "full", full.state_dict(), _record(h_full),
                       ck, read_tensors(out), json.loads(Path(str(out) + ".json").read_text()))


def test_resume_in_new_processes_mid_epoch(tmp_path: Path) -> None:
    assert _new_processes(tmp_path, "dropout", STOPS["mid_epoch"]) == []


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("stop", sorted(STOPS))
def test_resume_in_new_processes(tmp_path: Path, name: str, stop: str) -> None:
    assert _new_processes(tmp_path, name, STOPS[stop]) == []


def test_save_weights_roundtrip_is_exact(tmp_path: Path) -> None:
    """The new-process comparison reads weights back from safetensors: that must be exact."""
    model = _model(0.0)
    save_weights(model, tmp_path / "w.safetensors")
    assert _equal(model.state_dict(), read_tensors(tmp_path / "w.safetensors"))
