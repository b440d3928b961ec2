"""Run by tests/integrations/test_lightning.py: GradientHealth under Trainer(strategy="ddp") on
2 CPU processes (Lightning relaunches this script for rank 1). Rank 0 saves the global
gradient norms the callback saw next to the report."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import lightning.pytorch as pl

from steadygrad.integrations.lightning import GradientHealth
from tests.integrations.nets import saturating_net
from tests.integrations.test_lightning import Module, _loader

if __name__ == "__main__":
    out = Path(sys.argv[1])
    torch.set_num_threads(1)
    cb = GradientHealth(every=2, report_dir=out)
    trainer = pl.Trainer(max_epochs=1, accelerator="cpu", devices=2, strategy="ddp",
                         logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=str(out), callbacks=[cb])
    trainer.fit(Module(saturating_net(), lr=0.05), _loader())
    if trainer.is_global_zero:
        (out / "grad_norm.json").write_text(json.dumps(
            {"steps": cb.report.series.steps, "grad_norm": list(cb.report.series.grad_norm),
             "world": trainer.world_size}))
