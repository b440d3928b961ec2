"""Checkpoints: bit-exact resume in a new process, atomic writes, no unpickling."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch
from safetensors.torch import save_file

from steadygrad.errors import CheckpointError
from steadygrad.train.checkpoint import (
    CheckpointManager,
    load_weights,
    pack,
    read_tensors,
    save_weights,
    unpack,
)
from steadygrad.train.loop import fit

JOB = textwrap.dedent(
    """
    import os, sys, torch
    from torch import nn
    from safetensors.torch import save_file
    from steadygrad.train.loop import fit
    torch.set_num_threads(1)
    from steadygrad.train.callbacks import Callback
    directory, crash_at, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    resume = sys.argv[4] == "1"

    class Crash(Callback):  # the process dies at the start of epoch `crash_at`
        def on_epoch_begin(self, epoch, logs):
            if epoch == crash_at:
                os._exit(0)

    g = torch.Generator().manual_seed(3)
    x = torch.randn(90, 5, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long() + (x[:, 2] > 1).long()
    torch.manual_seed(11)
    model = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 16),
                          nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 3))
    h = fit(model, (x, y), validation_data=(x[:20], y[:20]), epochs=4, batch_size=16,
            optimizer={"name": "adam", "learning_rate": 0.01}, schedule="cosine",
            early_stopping={"patience": 50, "restore_best_weights": False},
            callbacks=[Crash()], seed=7, verbose=0,
            checkpoint_dir=directory if directory != "-" else None,
            resume=resume)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, out)
    print(repr(h["loss"]))
    """
)


def _run(*args: str) -> str:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run([sys.executable, "-c", JOB, *args], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.slow  # three fresh interpreters: ~10 s
def test_resume_in_new_process_is_bit_exact(tmp_path):
    """4 epochs at once == a run that dies after epoch 2 + a resume in a new process
    (dropout, batch norm, shuffling, Adam, cosine schedule, early-stopping state)."""
    straight = tmp_path / "straight.safetensors"
    resumed = tmp_path / "resumed.safetensors"
    ckpt = tmp_path / "ckpt"
    out_full = _run("-", "-1", str(straight), "0")
    assert _run(str(ckpt), "2", str(tmp_path / "never.safetensors"), "0") == ""  # died
    assert CheckpointManager(ckpt).latest().name == "epoch-0002"
    out_resumed = _run(str(ckpt), "-1", str(resumed), "1")
    a, b = read_tensors(straight), read_tensors(resumed)
    assert set(a) == set(b)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert out_full == out_resumed  # the whole history, not only the weights
    assert CheckpointManager(ckpt).latest().name == "epoch-0004"


class _CrashError(Exception):
    pass


def test_resume_in_process_is_bit_exact(tmp_path, blobs):
    """The fast variant of the test above: the crash is an exception, the resume starts
    from a freshly initialized model (different init) in the same process."""
    from torch import nn

    from steadygrad.train.callbacks import Callback

    x, y = blobs

    class CrashAt(Callback):
        def on_epoch_begin(self, epoch, logs):
            if epoch == 2:
                raise _CrashError

    def run(init_seed, callbacks=(), **kw):
        torch.manual_seed(init_seed)
        model = nn.Sequential(nn.Linear(4, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.3),
                              nn.Linear(16, 3))
        h = fit(model, (x, y), epochs=4, batch_size=16, optimizer="nadam", schedule="one_cycle",
                seed=5, callbacks=list(callbacks), verbose=0, **kw)
        return model, h

    straight, h_straight = run(0)
    with pytest.raises(_CrashError):
        run(0, [CrashAt()], checkpoint_dir=tmp_path)
    resumed, h_resumed = run(99, checkpoint_dir=tmp_path, resume=True)
    a, b = straight.state_dict(), resumed.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert h_straight["loss"] == h_resumed["loss"] and len(h_resumed) == 4


def test_checkpoint_dir_with_checkpoints_needs_resume(tmp_path, blobs, make_mlp):
    x, y = blobs
    fit(make_mlp(), (x, y), epochs=1, checkpoint_dir=tmp_path, verbose=0)
    with pytest.raises(CheckpointError, match="resume=True"):
        fit(make_mlp(), (x, y), epochs=2, checkpoint_dir=tmp_path, verbose=0)
    with pytest.raises(CheckpointError, match="different run"):
        fit(make_mlp(), (x, y), epochs=2, batch_size=7, checkpoint_dir=tmp_path, resume=True,
            verbose=0)


def test_resume_without_checkpoint_starts_fresh(tmp_path, blobs, make_mlp):
    x, y = blobs
    h = fit(make_mlp(), (x, y), epochs=2, checkpoint_dir=tmp_path, resume=True, verbose=0)
    assert len(h) == 2
    assert [p.name for p in CheckpointManager(tmp_path).checkpoints()] == ["epoch-0001",
                                                                           "epoch-0002"]


def test_crash_during_save_leaves_previous_checkpoint_and_is_cleaned(tmp_path):
    model = torch.nn.Linear(3, 2)
    manager = CheckpointManager(tmp_path)
    manager.save("epoch-0001", model, state={"epoch": 1})
    before = (tmp_path / "epoch-0001" / "model.safetensors").read_bytes()
    # a process killed while moving the new checkpoint into place: os._exit skips all cleanup
    crash = textwrap.dedent(
        f"""
        import os, torch
        from steadygrad.train.checkpoint import CheckpointManager
        os.replace = lambda *a, **k: os._exit(3)
        m = torch.nn.Linear(3, 2)
        CheckpointManager({str(tmp_path)!r}).save("epoch-0002", m, state={{"epoch": 2}})
        """
    )
    done = subprocess.run([sys.executable, "-c", crash], capture_output=True, timeout=60)
    assert done.returncode == 3
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]
    assert leftovers, "the simulated crash should leave a temp directory"
    assert (tmp_path / "epoch-0001" / "model.safetensors").read_bytes() == before
    assert not (tmp_path / "epoch-0002").exists()
    manager = CheckpointManager(tmp_path)  # next start cleans up
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]
    assert manager.latest().name == "epoch-0001"
    assert manager.load().state["epoch"] == 1


def test_invalid_safetensors_is_a_checkpoint_error_not_unpickled(tmp_path):
    import pickle

    class Boom:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    evil = tmp_path / "model.safetensors"
    evil.write_bytes(pickle.dumps(Boom()))
    with pytest.raises(CheckpointError, match="not a valid safetensors"):
        load_weights(torch.nn.Linear(2, 2), evil)
    assert not (tmp_path / "pwned").exists()
    torch.save({"weight": torch.zeros(2, 2), "bias": torch.zeros(2)}, tmp_path / "t.pt")
    with pytest.raises(CheckpointError):
        read_tensors(tmp_path / "t.pt")


def test_weights_mismatch_is_a_checkpoint_error(tmp_path):
    path = tmp_path / "w.safetensors"
    save_weights(torch.nn.Linear(2, 3), path)
    with pytest.raises(CheckpointError, match="shape mismatch"):
        load_weights(torch.nn.Linear(2, 4), path)
    save_file({"weight": torch.zeros(3, 2)}, str(path))
    with pytest.raises(CheckpointError, match="missing"):
        load_weights(torch.nn.Linear(2, 3), path)


def test_pack_roundtrip_of_an_optimizer_state():
    w = torch.nn.Parameter(torch.randn(3))
    opt = torch.optim.Adam([w], lr=0.1, betas=(0.8, 0.9))
    w.grad = torch.randn(3)
    opt.step()
    tensors: dict[str, torch.Tensor] = {}
    state = unpack(pack(opt.state_dict(), tensors), tensors)
    fresh = torch.optim.Adam([torch.nn.Parameter(torch.zeros(3))], lr=1.0)
    fresh.load_state_dict(state)
    a, b = opt.state_dict(), fresh.state_dict()
    assert a["param_groups"] == b["param_groups"]
    assert all(torch.equal(a["state"][0][k], b["state"][0][k]) for k in a["state"][0])


def test_pack_unpack_roundtrip_property():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    leaves = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5),
                       st.floats(allow_nan=False))
    keys = st.one_of(st.text(max_size=4).filter(lambda k: not k.startswith("__")), st.integers())
    trees = st.recursive(
        leaves,
        lambda kids: st.one_of(st.lists(kids, max_size=3), st.tuples(kids, kids),
                               st.dictionaries(keys, kids, max_size=3)),
        max_leaves=12,
    )

    @settings(max_examples=60, deadline=None)
    @given(trees)
    def check(tree):
        import json

        tensors: dict[str, torch.Tensor] = {}
        packed = json.loads(json.dumps(pack(tree, tensors)))  # through real JSON
        assert unpack(packed, tensors) == tree

    check()
