"""Issue 19, item 3: a checkpoint is untrusted input. Every malformed (pickle-free) checkpoint
ends in CheckpointError on resume; the ``latest`` pointer cannot leave its directory; a
negative or oversized epoch is refused instead of silently training more epochs.

Oracle: each case starts from a real checkpoint written by ``fit`` (which resumes cleanly: the
positive control) and changes one field of ``state.json``/the tensors, so the failure is caused
by that field alone.
"""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save as st_save
from torch import nn

from steadygrad.errors import CheckpointError
from steadygrad.train.checkpoint import CheckpointManager
from steadygrad.train.loop import fit

N, EPOCHS = 24, 3


def _fit(ckpt: Path, epochs: int = EPOCHS, resume: bool = False) -> Any:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    x = torch.randn(N, 4, generator=torch.Generator().manual_seed(1))
    y = torch.arange(N) % 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit(model, (x, y), epochs=epochs, batch_size=8, seed=3, verbose=0,
                   monitor=False, checkpoint_dir=ckpt, resume=resume,
                   optimizer="adam")


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("good") / "ck"
    _fit(d, epochs=1)
    return d


def _copy(good: Path, tmp_path: Path) -> tuple[Path, Path, dict[str, Any]]:
    d = tmp_path / "ck"
    shutil.copytree(good, d)
    latest = CheckpointManager(d).latest()
    assert latest is not None
    return d, latest, json.loads((latest / "state.json").read_text())


def _set(path: list[Any], value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(structure: dict[str, Any]) -> None:
        node = structure["state"]
        for key in path[:-1]:
            node = node[key]
        if value is _DELETE:
            del node[path[-1]]
        else:
            node[path[-1]] = value
    return edit


_DELETE = object()
EDITS: dict[str, Callable[[dict[str, Any]], None]] = {
    "epoch_negative": _set(["epoch"], -5),
    "epoch_beyond": _set(["epoch"], 10**6),
    "epoch_string": _set(["epoch"], "1"),
    "epoch_float": _set(["epoch"], 1.5),
    "epoch_missing": _set(["epoch"], _DELETE),
    "global_step_negative": _set(["global_step"], -1),
    "global_step_list": _set(["global_step"], [1]),
    "optimizer_missing": _set(["optimizer"], _DELETE),
    "optimizer_list": _set(["optimizer"], [1, 2]),
    "optimizer_no_groups": _set(["optimizer", "param_groups"], _DELETE),
    "history_missing": _set(["history"], _DELETE),
    "history_string": _set(["history"], "x"),
    "rng_missing": _set(["rng"], _DELETE),
    "rng_number": _set(["rng"], 3),
    "config_string": _set(["config"], "x"),
    "state_list": lambda s: s.__setitem__("state", [1, 2]),
    "partial_garbage": _set(["partial"], {"shuffle": 1}),
}


def test_untampered_checkpoint_resumes(good: Path, tmp_path: Path) -> None:
    d, _, _ = _copy(good, tmp_path)
    history = _fit(d, resume=True)
    assert len(history.history["loss"]) == EPOCHS


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_tampered_state_is_a_checkpoint_error(good: Path, tmp_path: Path, edit: str) -> None:
    d, latest, structure = _copy(good, tmp_path)
    EDITS[edit](structure)
    (latest / "state.json").write_text(json.dumps(structure))
    with pytest.raises(CheckpointError) as info:
        _fit(d, resume=True)
    assert str(latest) in str(info.value) or latest.name in str(info.value)


@pytest.mark.parametrize("what", ["model_extra_key", "model_wrong_dtype", "state_tensor_gone",
                                  "model_wrong_shape"])
def test_tampered_tensors_are_a_checkpoint_error(good: Path, tmp_path: Path, what: str) -> None:
    d, latest, _ = _copy(good, tmp_path)
    from safetensors.torch import load_file
    model = load_file(latest / "model.safetensors")
    if what == "model_extra_key":
        model["evil"] = torch.zeros(1)
    elif what == "model_wrong_dtype":
        model = {k: v.to(torch.int64) for k, v in model.items()}
    elif what == "model_wrong_shape":
        model = {k: v.reshape(-1) for k, v in model.items()}
    if what == "state_tensor_gone":
        (latest / "state.safetensors").write_bytes(st_save({}))
    else:
        (latest / "model.safetensors").write_bytes(st_save(model))
    with pytest.raises(CheckpointError):
        _fit(d, resume=True)


@pytest.mark.parametrize("pointer", ["../outside/epoch-0001", "/abs/epoch-0001",
                                     "epoch-0001/../../outside/epoch-0001", 7, None, ["x"]])
def test_latest_pointer_confined_to_its_directory(tmp_path: Path, pointer: Any) -> None:
    outside = tmp_path / "outside"
    _fit(outside, epochs=1)  # a valid checkpoint the pointer tries to reach
    inside = tmp_path / "runs" / "ck"
    inside.mkdir(parents=True)
    target = pointer if not (isinstance(pointer, str) and pointer.startswith("/abs")) \
        else str(outside / "epoch-0001")
    (inside / "latest").write_text(json.dumps({"checkpoint": target}))
    manager = CheckpointManager(inside)
    assert manager.latest() is None  # nothing inside; the pointer is not followed out
    with pytest.raises(CheckpointError):
        manager.load()


def test_symlinked_checkpoint_leaving_the_directory_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    _fit(outside, epochs=1)
    inside = tmp_path / "ck"
    inside.mkdir()
    (inside / "epoch-0009").symlink_to(outside / "epoch-0001", target_is_directory=True)
    manager = CheckpointManager(inside)
    assert manager.latest() is None
    with pytest.raises(CheckpointError):
        manager.load(inside / "epoch-0009")
