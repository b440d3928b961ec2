"""Data-parallel fit under torchrun (gloo on CPU) against the one-process oracle."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from steadygrad.errors import ConfigError
from steadygrad.train.checkpoint import CheckpointManager
from steadygrad.train.distributed import World

SCRIPT = Path(__file__).with_name("ddp_fit_script.py")
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("n", "batch", "size"), [(10, 4, 2), (37, 8, 4), (64, 32, 2), (5, 3, 3)])
def test_shards_partition_each_global_batch(n, batch, size):
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(n))
    shards = [World(r, size, r).shard(perm, n, batch) for r in range(size)]
    local = batch // size
    counts = {count for _, count, _ in shards}
    assert len(counts) == 1 and {b for *_, b in shards} == {local}  # equal work per rank
    used = n - (n % batch) % size
    assert counts.pop() * size == used  # only the last batch's remainder is trimmed
    # the ranks' k-th local batches together are the k-th global batch, in order
    for start in range(0, used, batch):
        k = start // batch * local
        together = torch.cat([rows[k:k + local] for rows, _, _ in shards])
        assert sorted(together.tolist()) == sorted(perm[start:min(start + batch, used)].tolist())


def test_world_from_env_and_refusals():
    assert World.from_env({"WORLD_SIZE": "1"}) is None
    with pytest.raises(ConfigError, match="torchrun"):
        World.from_env({"WORLD_SIZE": "two"})
    with pytest.raises(ConfigError, match="multiple of the world size 4"):
        World(0, 4, 0).check(30, False)
    with pytest.raises(ConfigError, match="compile"):
        World(0, 2, 0).check(32, True)


def _torchrun(out: Path, *args: str, nproc: int = 2) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS="1")
    return subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone",
         f"--nproc-per-node={nproc}", str(SCRIPT), str(out), *args],
        capture_output=True, text=True, timeout=300, env=env, cwd=str(out.parent))


def _one_process(out: Path) -> dict:
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        from ddp_fit_script import main
    finally:
        sys.path.remove(str(SCRIPT.parent))
    threads = torch.get_num_threads()
    try:
        return main([str(out)])
    finally:
        torch.set_num_threads(threads)


def _close(a: dict, b: dict, atol: float = 1e-6) -> None:
    for k in a["weights"]:
        torch.testing.assert_close(torch.tensor(a["weights"][k]), torch.tensor(b["weights"][k]),
                                   atol=atol, rtol=0)


@pytest.mark.slow
def test_two_processes_reach_the_one_process_weights(tmp_path):
    done = _torchrun(tmp_path / "two")
    assert done.returncode == 0, done.stderr[-3000:]
    one = _one_process(tmp_path / "one")
    ranks = [json.loads((tmp_path / "two" / f"result.{r}.json").read_text()) for r in (0, 1)]
    _close(ranks[0], one)
    assert ranks[0]["weights"] == ranks[1]["weights"]  # DDP keeps the replicas identical
    assert ranks[0]["loss"] == pytest.approx(one["loss"], rel=1e-6)  # reduced over ranks
    assert ranks[0]["accuracy"] == one["accuracy"]  # metrics on the gathered outputs
    # one health report: same checks, gradients, and activation statistics of the global batch
    assert ranks[0]["steps"] == one["steps"] and ranks[0]["findings"] == one["findings"]
    assert len(one["step_loss"]) == 36
    for key in ("grad_norm", "step_loss", "act_mean", "act_std", "zero_frac", "update_ratio"):
        torch.testing.assert_close(torch.tensor(ranks[0][key], dtype=torch.float64),
                                   torch.tensor(one[key], dtype=torch.float64),
                                   atol=1e-5, rtol=1e-4, equal_nan=True)


@pytest.mark.slow
def test_kill_9_of_one_rank_then_resume_from_the_last_checkpoint(tmp_path):
    ckpt = tmp_path / "ckpt"
    killed = _torchrun(tmp_path / "a", "--checkpoint", str(ckpt), "--kill-rank", "1",
                       "--kill-at", "17")
    # the kill landed mid-run: rank 1 died by SIGKILL after step 17 of 36, torchrun failed,
    # nobody finished, and the newest checkpoint is the mid-epoch one of step 15
    assert killed.returncode != 0
    assert (tmp_path / "a" / "killed").read_text() == "17"
    assert "Signals.SIGKILL" in killed.stderr or "-9" in killed.stderr, killed.stderr[-2000:]
    assert not list((tmp_path / "a").glob("result.*.json"))
    latest = CheckpointManager(ckpt).latest()
    assert latest is not None and latest.name.startswith("epoch-0001.step-00000015")
    resumed = _torchrun(tmp_path / "b", "--checkpoint", str(ckpt), "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    ranks = [json.loads((tmp_path / "b" / f"result.{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["weights"] == ranks[1]["weights"]  # both ranks resumed the same state
    _close(ranks[0], _one_process(tmp_path / "one"))  # = the uninterrupted run
    assert len(ranks[0]["loss"]) == 3


def _reduce_worker(rank: int, init: str, out: str) -> None:
    import numpy as np
    import torch.distributed as dist

    from steadygrad.diagnostics.series import HealthSeries
    from steadygrad.train.distributed import reduce_series

    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    acts = torch.randn(2, 16, 3, generator=torch.Generator().manual_seed(7))  # both ranks' rows
    mine = acts[rank].double()
    s = HealthSeries.empty(["a", "b", "c"], steps=[0, 4])
    s.values["act_mean"][:] = mine.mean(0).numpy()
    s.values["act_std"][:] = mine.std(0, correction=0).numpy()
    s.values["act_nonfinite"][:] = rank + 1
    s.values["dead_frac"][:] = (0.5, 0.25)[rank]
    s.step_loss = np.array([1.0, 2.0]) * (rank + 1)
    s.first_nonfinite_loss = (None, 3)[rank]
    s.histograms = [(0, np.full((3, 5), rank + 1.0))]
    reduce_series(s, World(rank, 2, rank))
    if rank == 0:
        torch.save({"mean": s.values["act_mean"], "std": s.values["act_std"],
                    "nonfinite": s.values["act_nonfinite"], "dead": s.values["dead_frac"],
                    "step_loss": s.step_loss, "first": s.first_nonfinite_loss,
                    "hist": s.histograms[0][1], "all": acts.double()}, out)
    dist.destroy_process_group()


@pytest.mark.slow
def test_reduce_series_pools_two_ranks(tmp_path):
    """Pooled statistics of two gloo ranks equal those of their rows taken together."""
    import torch.multiprocessing as mp

    out = tmp_path / "reduced.pt"
    mp.spawn(_reduce_worker, args=(f"file://{tmp_path / 'init'}", str(out)), nprocs=2)
    r = torch.load(out, weights_only=False)
    rows = r["all"].reshape(32, 3)
    torch.testing.assert_close(torch.tensor(r["mean"][0]), rows.mean(0))
    torch.testing.assert_close(torch.tensor(r["std"][0]), rows.std(0, correction=0))
    assert (r["nonfinite"] == 3).all() and (r["dead"] == 0.25).all() and (r["hist"] == 3).all()
    assert r["step_loss"].tolist() == [1.5, 3.0] and r["first"] == 3
