"""GradientHealth (Lightning) against the plain-loop GradientMonitor oracle."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

pl = pytest.importorskip("lightning.pytorch")

from steadygrad.diagnostics.monitor import GradientMonitor  # noqa: E402
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
            autocast: bool = False):
    """The same module, data order and optimizer in a plain loop with GradientMonitor; also the
    weight-gradient norm before clipping at each step."""
    opt = torch.optim.SGD(module.parameters(), lr=module.lr)
    pre: list[float] = []
    weights = [m.weight for m in module.modules() if isinstance(m, nn.Linear)]
    with GradientMonitor(module, every=every) as mon:
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
    every = 2
    cb = GradientHealth(every=every, report_dir=tmp_path / "health")
    module = Module(saturating_net(), lr=0.05)
    oracle_module = Module(saturating_net(), lr=0.05)
    _trainer(tmp_path, cb, accumulate_grad_batches=accumulate).fit(module, _loader())
    expected, _ = _oracle(oracle_module, 2, every, accumulate=accumulate)
    assert expected.findings, "the oracle must have something to agree on"
    assert key(cb.report.findings) == key(expected.findings)
    got = cb.report.series
    assert got.steps == expected.series.steps
    assert got.steps[-1] == 2 * 16 // accumulate - every  # one monitor step per optimizer step
    torch.testing.assert_close(torch.tensor(got.grad_norm), torch.tensor(expected.series.grad_norm))
    torch.testing.assert_close(torch.tensor(got.values["update_ratio"]),
                               torch.tensor(expected.series.values["update_ratio"]),
                               equal_nan=True)
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


def test_raise_on_error(tmp_path):
    _, trainer, module = _sick(tmp_path, "raise")
    with pytest.raises(HealthError, match="non_finite"):
        trainer.fit(module, _loader())
