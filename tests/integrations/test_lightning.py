"""GradientHealth (Lightning) against the plain-loop GradientMonitor oracle."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

pl = pytest.importorskip("lightning.pytorch")

from steadygrad.diagnostics.monitor import DENSE_START, GradientMonitor  # noqa: E402
from steadygrad.integrations.lightning import GradientHealth, HealthError  # noqa: E402
from tests.integrations.nets import (  # noqa: E402
    DIVERGING_LR,
    data,
    diverging_net,
    key,
    saturating_net,
)

BATCH = 32


class Module(pl.LightningModule):
    def __init__(self, net: nn.Module, lr: float) -> None:
        super().__init__()
        self.net, self.lr = net, lr

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr)


def _loader(n: int = 512):
    x, y = data(n)
    ds = torch.utils.data.TensorDataset(x, y)
    return torch.utils.data.DataLoader(ds, batch_size=BATCH, shuffle=False)


def _trainer(tmp_path, cb, **kw):
    return pl.Trainer(max_epochs=kw.pop("max_epochs", 2), accelerator="cpu", devices=1,
                      logger=False, enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, default_root_dir=str(tmp_path),
                      callbacks=[cb], **kw)


def _oracle(module: Module, epochs: int, every: int, accumulate: int = 1, clip: float | None = None,
            autocast: bool = False, baseline: float | None = None):
    """The same module, data order and optimizer in a plain loop with GradientMonitor; also the
    weight-gradient norm before clipping at each step."""
    opt = torch.optim.SGD(module.parameters(), lr=module.lr)
    pre: list[float] = []
    weights = [m.weight for m in module.modules() if isinstance(m, nn.Linear)]
    with GradientMonitor(module, every=every, baseline_loss=baseline) as mon:
        for _ in range(epochs):
            batches = list(_loader())
            for i in range(0, len(batches), accumulate):
                opt.zero_grad()
                for x, y in batches[i:i + accumulate]:
                    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                        loss = module.training_step((x, y), 0)
                    (loss / accumulate).backward()
                pre.append(math.sqrt(sum(float(w.grad.norm()) ** 2 for w in weights)))
                if clip is not None:
                    torch.nn.utils.clip_grad_norm_(module.parameters(), clip)
                opt.step()
                mon.step(loss)
    return mon.report(), pre


@pytest.mark.parametrize("accumulate", [1, 2])
def test_same_findings_as_the_monitor(tmp_path, accumulate):
    every, chance = 2, math.log(3)  # the chance-level loss of 3 classes
    cb = GradientHealth(every=every, report_dir=tmp_path / "health", baseline_loss=chance)
    module = Module(saturating_net(), lr=0.05)
    oracle_module = Module(saturating_net(), lr=0.05)
    trainer = _trainer(tmp_path, cb, accumulate_grad_batches=accumulate)
    trainer.fit(module, _loader())
    expected, _ = _oracle(oracle_module, 2, every, accumulate=accumulate, baseline=chance)
    assert cb.report.meta["baseline_loss"] == chance
    assert expected.findings, "the oracle must have something to agree on"
    assert key(cb.report.findings) == key(expected.findings)
    got = cb.report.series
    assert got.steps == expected.series.steps
    # one monitor step per optimizer step: the first DENSE_START steps, then one in `every`
    assert got.steps == [i for i in range(2 * 16 // accumulate)
                         if i < DENSE_START or i % every == 0]
    torch.testing.assert_close(torch.tensor(got.grad_norm), torch.tensor(expected.series.grad_norm))
    torch.testing.assert_close(torch.tensor(got.values["update_ratio"]),
                               torch.tensor(expected.series.values["update_ratio"]),
                               equal_nan=True)
    # pl_module.log got the scalars of the last rule evaluation (8th sampled step = the last)
    logged = trainer.callback_metrics
    assert float(logged["health/grad_norm"]) == pytest.approx(got.grad_norm[-1], rel=1e-6)
    assert float(logged["health/findings_warning"]) == sum(
        f.severity == "warning" for f in expected.findings)
    # the report files were written at the end of fit
    on_disk = json.loads((tmp_path / "health" / "health.json").read_text())
    assert [f["kind"] for f in on_disk["findings"]] == [f.kind for f in expected.findings]
    assert "saturation" in (tmp_path / "health" / "health.txt").read_text()


def test_reads_gradients_before_clipping(tmp_path):
    clip = 0.05
    cb = GradientHealth(every=1, report_dir=False)
    module = Module(saturating_net(), lr=0.05)
    _trainer(tmp_path, cb, max_epochs=1, gradient_clip_val=clip).fit(module, _loader())
    expected, pre = _oracle(Module(saturating_net(), lr=0.05), 1, 1, clip=clip)
    assert min(pre) > 2 * clip  # clipping really changed every step's gradients
    torch.testing.assert_close(torch.tensor(cb.report.series.grad_norm),
                               torch.tensor(pre, dtype=torch.float64), rtol=1e-4, atol=1e-6)
    assert key(cb.report.findings) == key(expected.findings)


def test_bf16_autocast_matches_the_autocast_oracle(tmp_path):
    cb = GradientHealth(every=2, report_dir=False)
    module = Module(saturating_net(), lr=0.05)
    _trainer(tmp_path, cb, max_epochs=1, precision="bf16-mixed").fit(module, _loader())
    expected, _ = _oracle(Module(saturating_net(), lr=0.05), 1, 2, autocast=True)
    plain, _ = _oracle(Module(saturating_net(), lr=0.05), 1, 2)
    got = torch.tensor(cb.report.series.grad_norm)
    torch.testing.assert_close(got, torch.tensor(expected.series.grad_norm), rtol=1e-3, atol=1e-6)
    # bf16 really was in effect: the fp32 loop's gradients differ
    assert not torch.allclose(got, torch.tensor(plain.series.grad_norm), rtol=1e-4, atol=0)
    assert key(cb.report.findings) == key(expected.findings)


def _sick(tmp_path, on_error):
    cb = GradientHealth(every=1, evaluate_every=1, on_error=on_error, report_dir=False)
    trainer = _trainer(tmp_path, cb, max_epochs=4)
    return cb, trainer, Module(diverging_net(), lr=DIVERGING_LR)


def test_stop_on_error_ends_a_diverging_run(tmp_path):
    # without the callback the run goes on to the end with a NaN loss
    plain = Module(diverging_net(), lr=DIVERGING_LR)
    trainer = _trainer(tmp_path, pl.Callback(), max_epochs=4)
    trainer.fit(plain, _loader())
    assert trainer.global_step == 4 * 16
    assert not torch.isfinite(plain.net[0].weight).all()
    cb, trainer, module = _sick(tmp_path, "stop")
    trainer.fit(module, _loader())
    errors = [f for f in cb.report.findings if f.severity == "error"]
    assert errors and errors[0].kind == "non_finite"
    assert trainer.global_step < 16  # stopped within the first epoch
    assert trainer.global_step <= errors[0].first_step + 2


def test_bad_arguments_are_named():
    from steadygrad.errors import ConfigError

    for kw, field in (({"on_error": "halt"}, "on_error"), ({"every": 0}, "every"),
                      ({"evaluate_every": 1.5}, "evaluate_every"),
                      ({"baseline_loss": math.nan}, "baseline_loss")):
        with pytest.raises(ConfigError, match=field):
            GradientHealth(**kw)


def test_raise_on_error(tmp_path):
    _, trainer, module = _sick(tmp_path, "raise")
    with pytest.raises(HealthError, match="non_finite"):
        trainer.fit(module, _loader())


@pytest.mark.slow
def test_ddp_two_processes_see_the_global_batch_gradient(tmp_path):
    """strategy="ddp", 2 CPU ranks x 32 rows: the gradients the callback reads are DDP's
    all-reduced mean, i.e. those of one process on the global batch of 64 rows."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).with_name("lightning_ddp_script.py")
    done = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True,
                          text=True, timeout=300, cwd=str(Path(__file__).parents[2]))
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads((tmp_path / "grad_norm.json").read_text())
    assert got["world"] == 2
    assert (tmp_path / "health.json").exists()  # written once, by rank 0
    # oracle: one process, global batches of 64 rows in the order of the DistributedSampler
    # Lightning put in (it shuffles: randperm from seed 0 + epoch 0; rank r takes every 2nd row
    # from r, so one step of both ranks covers 64 consecutive rows of the permutation)
    module = Module(saturating_net(), lr=0.05)
    x, y = data()
    perm = torch.randperm(512, generator=torch.Generator().manual_seed(0))
    x, y = x[perm], y[perm]
    opt = torch.optim.SGD(module.parameters(), lr=module.lr)
    with GradientMonitor(module, every=2) as mon:
        for i in range(0, 512, 64):
            loss = module.training_step((x[i:i + 64], y[i:i + 64]), 0)
            opt.zero_grad()
            loss.backward()
            opt.step()
            mon.step(loss)
    expected = mon.report().series
    assert got["steps"] == expected.steps
    torch.testing.assert_close(torch.tensor(got["grad_norm"], dtype=torch.float64),
                               torch.tensor(expected.grad_norm), rtol=1e-4, atol=1e-6)


def test_scalars_reach_the_loggers_at_every_evaluation(tmp_path):
    """A real Lightning logger (CSVLogger) gets the health scalars of every rule evaluation
    (every ``evaluate_every``-th sampled step, logged at ``global_step`` = that step + 1, not
    only at ``log_every_n_steps``), with the report's numbers at that step."""
    import csv

    from lightning.pytorch.loggers import CSVLogger

    every, evaluate_every = 2, 2
    cb = GradientHealth(every=every, evaluate_every=evaluate_every, report_dir=False)
    logger = CSVLogger(str(tmp_path), name="csv", version=0)
    trainer = pl.Trainer(max_epochs=2, accelerator="cpu", devices=1, logger=logger,
                         log_every_n_steps=50, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False,
                         default_root_dir=str(tmp_path), callbacks=[cb])
    trainer.fit(Module(saturating_net(), lr=0.05), _loader())
    series = cb.report.series
    evaluated = series.steps[evaluate_every - 1::evaluate_every]
    assert len(evaluated) >= 4
    with open(tmp_path / "csv" / "version_0" / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("health/grad_norm")]
    assert [int(r["step"]) for r in rows] == [s + 1 for s in evaluated]
    for r, s in zip(rows, evaluated, strict=True):
        i = series.steps.index(s)
        assert float(r["health/grad_norm"]) == pytest.approx(series.grad_norm[i], rel=1e-6)
        assert float(r["health/update_ratio_max"]) == pytest.approx(
            np.nanmax(series.values["update_ratio"][i]), rel=1e-6)
    # and trainer.callback_metrics holds the last evaluation's values, as tensors
    last = series.steps.index(evaluated[-1])
    assert isinstance(trainer.callback_metrics["health/grad_norm"], torch.Tensor)
    assert float(trainer.callback_metrics["health/grad_norm"]) == pytest.approx(
        series.grad_norm[last], rel=1e-6)


def test_no_reader_no_periodic_evaluation_same_report(tmp_path):
    """Without a logger, on_error or a health/ monitor, the rules do not run during fit (the
    periodic evaluations would be read by nobody); the report, and the final scalars in
    trainer.callback_metrics, are those of a run that evaluated live (on_error="warn")."""
    runs = {}
    for on_error in (None, "warn"):
        cb = GradientHealth(every=2, evaluate_every=2, on_error=on_error, report_dir=False)
        calls: list[int] = []

        def counted(evaluate=cb.session.evaluate, calls=calls):
            calls.append(1)
            return evaluate()

        cb.session.evaluate = counted  # type: ignore[method-assign]
        trainer = _trainer(tmp_path, cb)
        trainer.fit(Module(saturating_net(), lr=0.05), _loader())
        runs[on_error] = (cb.report, len(calls), dict(trainer.callback_metrics))
    (quiet, n_quiet, m_quiet), (live, n_live, m_live) = runs[None], runs["warn"]
    assert n_quiet == 0 and n_live == len(live.series.steps) // 2
    assert quiet.findings and key(quiet.findings) == key(live.findings)
    assert quiet.series.steps == live.series.steps
    np.testing.assert_array_equal(quiet.series.grad_norm, live.series.grad_norm)
    assert set(m_quiet) == set(m_live) and all(
        float(m_quiet[k]) == float(m_live[k]) for k in m_quiet)
    assert float(m_quiet["health/findings_warning"]) == sum(
        f.severity == "warning" for f in quiet.findings)


def test_a_health_monitor_callback_keeps_the_evaluations_live(tmp_path):
    """EarlyStopping(monitor="health/grad_norm") reads the key at each epoch end (strict: a
    missing key raises), so the callback evaluates live for it even without a logger."""
    from lightning.pytorch.callbacks import EarlyStopping

    cb = GradientHealth(every=2, report_dir=False)
    stop = EarlyStopping(monitor="health/grad_norm", mode="min", patience=100,
                         check_on_train_epoch_end=True)
    trainer = pl.Trainer(max_epochs=2, accelerator="cpu", devices=1, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=str(tmp_path),
                         callbacks=[cb, stop])
    trainer.fit(Module(saturating_net(), lr=0.05), _loader())
    assert cb.session.live and cb.session.last is not None
    assert trainer.current_epoch == 2  # both epochs ran; EarlyStopping found its key
    # its best score is the smaller of the two epoch ends' last evaluated grad_norm
    s = cb.report.series
    evaluated = s.steps[7::8]  # every 8th sampled step (the default evaluate_every)
    at_ends = [max(e for e in evaluated if e < 16 * epoch) for epoch in (1, 2)]
    assert float(stop.best_score) == pytest.approx(
        min(s.grad_norm[s.steps.index(e)] for e in at_ends), rel=1e-6)
