"""Run under torchrun by tests/train/test_distributed.py (and in-process for the 1-process
reference): fit a small MLP and save the weights, the history and the health report
(``OUT/result.RANK.json``).

Usage: ddp_fit_script.py OUT [--checkpoint DIR] [--resume] [--kill-rank R --kill-at STEP]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from steadygrad.train.callbacks import Callback
from steadygrad.train.loop import fit

EPOCHS, BATCH, ROWS = 3, 32, 384


def problem() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(ROWS, 10, generator=g)
    y = (x[:, 0] + x[:, 1] * x[:, 2] > 0).long()
    model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 32), nn.Tanh(),
                          nn.Linear(32, 2))
    return model, x, y


class KillAt(Callback):
    """SIGKILL this process after optimizer step ``step`` (a real kill -9, mid-epoch)."""

    def __init__(self, step: int, marker: Path) -> None:
        self.step, self.marker = step, marker

    def on_batch_end(self, step: int, logs: dict) -> None:
        if step + 1 == self.step:
            self.marker.parent.mkdir(parents=True, exist_ok=True)
            self.marker.write_text(str(step + 1))
            os.kill(os.getpid(), signal.SIGKILL)


def main(argv: list[str]) -> dict:
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--checkpoint")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--kill-rank", type=int)
    p.add_argument("--kill-at", type=int)
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    out = Path(a.out)
    rank = int(os.environ.get("RANK", "0"))
    model, x, y = problem()
    cbs = [KillAt(a.kill_at, out / "killed")] if a.kill_rank == rank else []
    history = fit(model, (x, y), epochs=EPOCHS, batch_size=BATCH,
                  optimizer={"name": "adam", "learning_rate": 0.01}, seed=0, verbose=0,
                  monitor=4, callbacks=cbs, checkpoint_dir=a.checkpoint, resume=a.resume,
                  checkpoint_every=3 if a.checkpoint else None)
    result = {"weights": {k: v.tolist() for k, v in model.state_dict().items()},
              "loss": history["loss"], "accuracy": history["accuracy"],
              "findings": [f.kind for f in history.health.findings],
              "steps": history.health.series.steps,
              "grad_norm": list(history.health.series.grad_norm),
              "step_loss": list(history.health.series.step_loss),
              **{k: history.health.series.values[k].tolist()
                 for k in ("act_mean", "act_std", "zero_frac", "sat_frac", "update_ratio")}}
    out.mkdir(parents=True, exist_ok=True)
    (out / f"result.{rank}.json").write_text(json.dumps(result))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
