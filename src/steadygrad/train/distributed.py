"""Multi-process data-parallel ``fit``: run under ``torchrun`` and every process takes a shard.

``fit`` looks at the environment ``torchrun`` (``torch.distributed.run``) sets
(``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``). With more than one
process it joins the process group (``gloo`` on CPU, ``nccl`` on CUDA, where rank ``r`` uses
device ``LOCAL_RANK``) and trains with ``DistributedDataParallel``:

- **one global batch, sharded**: ``batch_size`` is the *global* batch. All ranks draw the same
  epoch permutation (the shuffling generator is seeded alike on every rank); rank ``r`` takes
  rows ``r, r + W, r + 2W, ...`` of each global batch of ``batch_size`` rows, so each rank holds
  ``batch_size / W`` rows (``batch_size`` must be a multiple of the world size ``W``). The last
  global batch of an epoch is trimmed to a multiple of ``W`` rows (at most ``W - 1`` rows, a
  different few each epoch). DDP averages the per-rank mean gradients, which is the mean over
  the global batch: a W-process run reaches the weights of a one-process run with the same
  global batch, to float rounding (tested), for models without batch norm (each rank
  normalizes with its own shard's statistics) or dropout (each rank draws its own masks).
- **seeds per rank**: torch's global generator (dropout, augmentation) is seeded with
  ``seed + rank``; the model's initial weights are rank 0's (DDP broadcasts them).
- **metrics reduced**: the epoch's loss (and penalty) sums and row counts are summed over the
  ranks, the buffered outputs of the training metrics are gathered from all ranks before each
  metric update; every rank gets the same history and makes the same early-stopping and
  plateau decisions. Validation runs on every rank over the whole validation set.
- **finiteness agreed**: the pre-clip gradient norm (of DDP's all-reduced gradients, the same
  on every rank) is measured on every step, so a non-finite value on any rank stops or skips
  the step on all of them.
- **checkpoints once**: only rank 0 writes checkpoints; every rank reads the latest one when
  resuming (``resume=True``), then all ranks wait for each other before training.
- **one health report**: each rank's monitor sees the same (all-reduced) weight gradients and
  its own activations; at the end the per-layer series are reduced over the ranks
  (:func:`reduce_series`) and the rules run once on the result.

Example:
    >>> w = World(rank=1, size=2, local_rank=1)
    >>> perm = torch.arange(10)
    >>> shard, n, b = w.shard(perm, 10, 4)
    >>> shard.tolist(), n, b
    ([1, 3, 5, 7, 9], 5, 2)
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from steadygrad.errors import ConfigError

if TYPE_CHECKING:
    from steadygrad.diagnostics.report import HealthReport
    from steadygrad.diagnostics.series import HealthSeries
    from steadygrad.train.step import TrainStep

__all__ = ["World", "reduce_series", "torchrun_command"]

_MEAN_SERIES = ("act_mean", "zero_frac", "sat_frac", "grad_rms", "weight_rms",
                "weight_grad_rms", "weight_grad_norm", "update_ratio")
"""Series averaged over the ranks (equal row counts per rank make the fractions exact; the
weight and gradient series are identical on every rank after DDP's all-reduce)."""


@dataclass(frozen=True)
class World:
    """This process's place in a data-parallel run.

    Attributes:
        rank: global rank (0 writes files).
        size: number of processes ``W``.
        local_rank: rank on this machine (the CUDA device index).
    """

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @staticmethod
    def from_env(env: Any = None) -> World | None:
        """The world ``torchrun`` describes in ``env`` (default ``os.environ``); None for a
        single process.

        >>> World.from_env({"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1"})
        World(rank=1, size=2, local_rank=1)
        >>> World.from_env({}) is None
        True
        """
        env = os.environ if env is None else env
        try:
            size = int(env.get("WORLD_SIZE", "1"))
            rank, local = int(env.get("RANK", "0")), int(env.get("LOCAL_RANK", "0"))
        except ValueError as e:
            raise ConfigError("WORLD_SIZE/RANK/LOCAL_RANK", str(e), "integers (set by torchrun)",
                              hint="launch with torchrun or steadygrad train --nproc N") from e
        return World(rank, size, local) if size > 1 else None

    # ------------------------------------------------------------------ setup
    def device(self, requested: torch.device) -> torch.device:
        """The device of this rank: ``cuda:LOCAL_RANK`` when training on CUDA."""
        if requested.type == "cuda":
            return torch.device("cuda", self.local_rank)
        return requested

    def join(self, device: torch.device) -> bool:
        """Join the process group (``nccl`` on CUDA, ``gloo`` otherwise) unless the caller
        already did; True when this call joined it (then :meth:`leave` at the end)."""
        if dist.is_initialized():
            return False
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend, rank=self.rank, world_size=self.size)
        return True

    def check(self, batch_size: int, compile: bool) -> None:
        """Refuse what a data-parallel ``fit`` cannot do.

        >>> World(0, 4, 0).check(30, False)
        Traceback (most recent call last):
        ...
        steadygrad.errors.ConfigError: batch_size: got 30; expected a multiple of the world...
        """
        if batch_size % self.size:
            raise ConfigError("batch_size", batch_size,
                              f"a multiple of the world size {self.size}",
                              hint="batch_size is the global batch, split evenly over the "
                                   "processes")
        if compile:
            raise ConfigError("compile", compile, "False in a multi-process run",
                              hint="compile=True is single-process for now")

    def seed(self, seed: int | None) -> int:
        """The common run seed: ``seed``, or rank 0's random draw when None (so every rank
        shuffles alike)."""
        value = torch.tensor([int(torch.randint(0, 2**62, (1,)).item())
                              if seed is None else seed], dtype=torch.int64)
        dist.broadcast(value, 0)
        return int(value.item())

    def wrap(self, model: nn.Module, device: torch.device) -> nn.Module:
        """``DistributedDataParallel`` around ``model`` (rank 0's weights are broadcast)."""
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def measuring(self, step: TrainStep) -> TrainStep:
        """``step`` measuring the pre-clip gradient norm on every call (finiteness agreed)."""
        from steadygrad.train.step import TrainStep

        class Measuring(TrainStep):
            def release(self) -> None:
                step.release()

        def measured(x: torch.Tensor, y: torch.Tensor, t: int, measure: bool = False) -> Any:
            return step(x, y, t, True)

        return Measuring(measured, step.engine, step.fallback)

    def barrier(self) -> None:
        """Wait for every rank."""
        dist.barrier()

    def leave(self) -> None:
        """Leave the process group if this run joined it."""
        if dist.is_initialized():
            dist.destroy_process_group()

    # ------------------------------------------------------------------ per epoch
    def shard(self, perm: torch.Tensor, n_used: int, batch_size: int
              ) -> tuple[torch.Tensor, int, int]:
        """This rank's rows of an epoch permutation: ``(rows, count, local batch size)``.

        Rank ``r`` takes rows ``r::W`` of each global batch of ``batch_size`` rows, in order;
        the last global batch is trimmed to a multiple of ``W``.

        >>> World(0, 2, 0).shard(torch.arange(7), 7, 4)[0].tolist()  # 2nd batch: 3 -> 2 rows
        [0, 2, 4]
        """
        used = n_used - (n_used % batch_size) % self.size
        full = used // batch_size * batch_size
        head = perm[:full].view(-1, batch_size)[:, self.rank::self.size].reshape(-1)
        tail = perm[full:used][self.rank::self.size]
        rows = torch.cat([head, tail])
        return rows, rows.numel(), batch_size // self.size

    def total(self, *values: Any) -> list[Any]:
        """Sum numbers or 0-dim tensors over the ranks (one all-reduce); returns floats for
        numbers and tensors for tensors."""
        flat = torch.stack([v.detach().double().reshape(()).cpu() if isinstance(v, torch.Tensor)
                            else torch.tensor(float(v), dtype=torch.float64) for v in values])
        flat = self._reduce(flat)
        return [flat[i].to(v.device, v.dtype) if isinstance(v, torch.Tensor)
                else float(flat[i]) for i, v in enumerate(values)]

    def gather(self, t: torch.Tensor) -> torch.Tensor:
        """Concatenate equal-shaped tensors from every rank along dim 0, rank order."""
        parts = [torch.empty_like(t) for _ in range(self.size)]
        dist.all_gather(parts, t.contiguous())
        return torch.cat(parts)

    def _reduce(self, t: torch.Tensor, op: Any = None) -> torch.Tensor:
        dev = torch.device("cuda", self.local_rank) \
            if dist.get_backend() == "nccl" else torch.device("cpu")
        x = t.to(dev)
        dist.all_reduce(x, op=op or dist.ReduceOp.SUM)
        return x.cpu()

    # ------------------------------------------------------------------ report
    def report(self, monitor: Any) -> HealthReport:
        """One health report for the whole run: :func:`reduce_series` of every rank's series,
        then the rules once."""
        from steadygrad.diagnostics.report import HealthReport
        from steadygrad.diagnostics.rules import evaluate

        local = monitor.report(world_size=self.size)
        series = reduce_series(local.series, self)
        return HealthReport(series=series, findings=evaluate(series, local.thresholds),
                            thresholds=local.thresholds, meta=local.meta)


def torchrun_command(nproc: int, module: str, args: list[str],
                     python: str = "python") -> list[str]:
    """The command that runs ``python -m module *args`` in ``nproc`` local processes through
    ``torch.distributed.run`` (``torchrun``; one machine, rendezvous on localhost).

    >>> torchrun_command(2, "steadygrad.cli.main", ["train", "run.toml"])
    ['python', '-m', 'torch.distributed.run', '--standalone', '--nproc-per-node=2',
     '-m', 'steadygrad.cli.main', 'train', 'run.toml']
    """
    if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1:
        raise ConfigError("--nproc", nproc, "an int >= 1")
    return [python, "-m", "torch.distributed.run", "--standalone",
            f"--nproc-per-node={nproc}", "-m", module, *args]


def reduce_series(series: HealthSeries, world: World) -> HealthSeries:
    """Combine the ranks' health series into one (in place; returns it).

    Per-layer series in ``_MEAN_SERIES``, the loss and the input statistics are averaged
    (every rank holds the same number of rows), and so is the loss of every step
    (``step_loss``); the first non-finite loss is the earliest over the ranks; ``act_std`` is
    the pooled standard deviation
    ``sqrt(mean(std^2 + mean^2) - mean(mean)^2)``; the non-finite counts are summed; the global
    gradient norm is rank 0's (the gradients are identical after the all-reduce);
    ``dead_frac`` is the minimum over the ranks (a unit dead on all ranks is dead on each, so
    this bounds the global fraction from above); histograms are summed.
    """
    if world.size == 1:
        return series
    v = series.values
    with np.errstate(all="ignore"):
        stacked = np.stack([v[k] for k in _MEAN_SERIES]
                           + [v["act_std"] ** 2 + v["act_mean"] ** 2,
                              v["act_nonfinite"], v["grad_nonfinite"]])
        stacked = np.concatenate([stacked.reshape(-1), series.loss, series.input_mean_abs,
                                  series.input_std])
    total = world._reduce(torch.from_numpy(stacked)).numpy()
    n = len(_MEAN_SERIES) + 3
    shape = v["act_mean"].shape
    cells = int(np.prod(shape))
    table = total[:n * cells].reshape(n, *shape)
    rest = total[n * cells:].reshape(3, -1) / world.size
    for i, key in enumerate(_MEAN_SERIES):
        v[key] = table[i] / world.size
    with np.errstate(invalid="ignore"):
        v["act_std"] = np.sqrt(np.maximum(table[len(_MEAN_SERIES)] / world.size
                                          - v["act_mean"] ** 2, 0.0))
    v["act_nonfinite"], v["grad_nonfinite"] = table[-2], table[-1]
    series.loss, series.input_mean_abs, series.input_std = rest[0], rest[1], rest[2]
    dead = np.nan_to_num(v["dead_frac"], nan=math.inf)
    low = world._reduce(torch.from_numpy(dead), dist.ReduceOp.MIN).numpy()
    v["dead_frac"] = np.where(np.isinf(low), math.nan, low)
    if series.step_loss.size:  # the loss of every step: the mean of the ranks' means
        series.step_loss = world._reduce(torch.from_numpy(
            np.asarray(series.step_loss, dtype=np.float64))).numpy() / world.size
    first = torch.tensor([np.inf if series.first_nonfinite_loss is None
                          else float(series.first_nonfinite_loss)], dtype=torch.float64)
    first = world._reduce(first, dist.ReduceOp.MIN)
    series.first_nonfinite_loss = None if math.isinf(float(first)) else int(first)
    if series.histograms:
        hist = np.stack([h for _, h in series.histograms])
        summed = world._reduce(torch.from_numpy(hist)).numpy()
        series.histograms = [(s, summed[i]) for i, (s, _) in enumerate(series.histograms)]
    return series
