"""The attention_saturation rule: entropy collapse of nn.MultiheadAttention (issue 16)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from steadygrad.diagnostics.attention_rule import attention_saturation
from steadygrad.diagnostics.monitor import GradientMonitor
from steadygrad.diagnostics.rules import KINDS, evaluate
from steadygrad.diagnostics.series import HealthSeries
from steadygrad.diagnostics.thresholds import Thresholds


def _series(entropy: list[float], steps: list[int] | None = None) -> HealthSeries:
    s = HealthSeries.empty(["embed"], steps=steps or list(range(len(entropy))))
    s.probes = {"attn:attn_entropy": np.array(entropy),
                "attn:attn_logit_max": np.full(len(entropy), 50.0)}
    return s


def test_collapse_held_over_persistence_steps_is_raised_with_first_and_raised_step() -> None:
    th = Thresholds()
    low = th.attention_entropy / 2
    f = attention_saturation(_series([0.9, 0.8, low, low, low, 0.9]), th, impaired=True)
    assert f is not None and f.kind == "attention_saturation" and f.layers == ("attn",)
    assert (f.first_step, f.raised_step, f.severity) == (2, 4, "warning")
    assert f.evidence["attn_entropy"]["attn"] == {"first": 0.9, "last": 0.9}
    assert [r.name for r in f.remedies] == ["pre_ln", "lower_learning_rate", "clip_global_norm"]
    assert f.remedies[0].patch == {"model.norm_first": True}


@pytest.mark.parametrize("entropy", [
    [0.9, 0.5, 0.3, 0.25],  # above the threshold
    [0.9, 0.01, 0.9, 0.01, 0.9],  # never held over persistence steps
    [math.nan, math.nan, math.nan],  # not measured
])
def test_no_finding_without_a_persistent_collapse(entropy: list[float]) -> None:
    assert attention_saturation(_series(entropy), Thresholds(), impaired=True) is None


def test_threshold_is_inclusive_and_the_gate_demotes_to_info() -> None:
    th = Thresholds(attention_entropy=0.3)
    f = attention_saturation(_series([0.3, 0.3, 0.3]), th, impaired=False)
    assert f is not None and f.severity == "info"
    assert attention_saturation(_series([0.31] * 3), th, impaired=False) is None


def test_two_checks_32_steps_apart_confirm_at_the_second() -> None:
    f = attention_saturation(_series([0.01, 0.01], steps=[0, 32]), Thresholds(), True)
    assert f is not None and (f.first_step, f.raised_step) == (0, 32)


def test_kind_order_and_bad_threshold() -> None:
    assert KINDS.index("attention_saturation") == KINDS.index("saturation") + 1
    with pytest.raises(Exception, match="attention_entropy"):
        Thresholds(attention_entropy=1.5)


class _Net(nn.Module):
    """Tokens -> attention (no residual) -> mean pool -> Linear."""

    def __init__(self, qk_gain: float) -> None:
        super().__init__()
        self.embed = nn.Linear(4, 16)
        self.attn = nn.MultiheadAttention(16, 2, batch_first=True)
        self.head = nn.Linear(16, 3)
        with torch.no_grad():
            self.attn.in_proj_weight[:32].mul_(qk_gain)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x)
        a, _ = self.attn(h, h, h, need_weights=False)
        return self.head(a.mean(1))


def _oracle_entropy(net: _Net, x: torch.Tensor) -> float:
    """Mean attention entropy / ln S from the module's own ``need_weights=True`` weights."""
    with torch.no_grad():
        h = net.embed(x)
        _, w = net.attn(h, h, h, need_weights=True, average_attn_weights=False)
    return float(-(w * w.clamp_min(1e-30).log()).sum(-1).mean() / math.log(w.shape[-1]))


@pytest.mark.parametrize(("qk_gain", "saturated"), [(1.0, False), (30.0, True)])
def test_monitor_raises_it_exactly_when_the_attention_weights_collapse(
        qk_gain: float, saturated: bool) -> None:
    torch.manual_seed(0)
    net = _Net(qk_gain)
    x = torch.randn(32, 8, 4)
    y = torch.randint(0, 3, (32,))
    opt = torch.optim.SGD(net.parameters(), lr=1e-3)
    with GradientMonitor(net, every=1, baseline_loss=math.log(3)) as mon:
        for _ in range(4):
            oracle = _oracle_entropy(net, x)  # the weights of this step's forward
            loss = nn.functional.cross_entropy(net(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            mon.step(loss)
    series = mon.series()
    ent = series.probes["attn:attn_entropy"]
    # the probe agrees with the module's own attention weights (last step)
    assert ent[-1] == pytest.approx(oracle, abs=1e-6)
    assert (oracle <= Thresholds().attention_entropy) == saturated
    kinds = {f.kind: f for f in evaluate(series)}
    assert ("attention_saturation" in kinds) == saturated
    if saturated:
        f = kinds["attention_saturation"]
        assert f.layers == ("attn",) and (f.first_step, f.raised_step) == (0, 2)


def test_pre_ln_remedy_is_a_valid_transformer_config_patch() -> None:
    from steadygrad.diagnostics.remedies import REMEDIES
    from steadygrad.experiments.config import config_from_dict

    patch = REMEDIES["attention_saturation"][0].patch
    raw = {"model": {"arch": "transformer", "d_model": 8, "heads": 2, "layers": 1, "ff": 16,
                     "norm_first": False}}
    assert config_from_dict(raw).model.norm_first is False
    for path, value in patch.items():
        section, key = path.split(".")
        raw[section][key] = value
    assert config_from_dict(raw).model.norm_first is True
