"""TensorBoard output of fit(tensorboard=...), read back with TensorBoard's own reader."""

from __future__ import annotations

import math

import pytest
import torch

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import (
    EventAccumulator,
)

from steadygrad.diagnostics.series import LAYER_SERIES
from steadygrad.integrations.tensorboard import write_health
from steadygrad.train.loop import fit
from tests.integrations.nets import data, saturating_net


def _read(folder) -> EventAccumulator:
    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "histograms": 0})
    acc.Reload()
    return acc


def test_fit_writes_the_documented_tags(tmp_path):
    x, y = data()
    history = fit(saturating_net(), (x, y), epochs=2, batch_size=32, learning_rate=0.05,
                  monitor=4, seed=0, verbose=0, tensorboard=tmp_path / "tb")
    rep = history.health
    acc = _read(tmp_path / "tb")
    scalars = set(acc.Tags()["scalars"])
    layers = rep.series.layers
    expected = {"epoch/loss", "epoch/accuracy", "health/grad_norm", "health/loss",
                "health/findings/info", "health/findings/warning", "health/findings/error"}
    expected |= {f"health/{k}/{layer}" for k in ("weight_grad_norm", "update_ratio",
                                                 "dead_frac", "sat_frac", "grad_rms")
                 for layer in layers if k != "dead_frac"}  # dead_frac: rectifiers only
    assert expected <= scalars, sorted(expected - scalars)
    assert {t.split("/")[1] for t in scalars if t.startswith("health/")} <= (
        set(LAYER_SERIES) | {"grad_norm", "loss", "findings"})
    # values and steps are the report's
    events = acc.Scalars("health/grad_norm")
    assert [e.step for e in events] == rep.series.steps
    torch.testing.assert_close(torch.tensor([e.value for e in events]),
                               torch.tensor(rep.series.grad_norm, dtype=torch.float32))
    sat = acc.Scalars(f"health/sat_frac/{layers[0]}")
    assert [e.value for e in sat] == pytest.approx(rep.series.values["sat_frac"][:, 0], abs=1e-6)
    warnings = acc.Scalars("health/findings/warning")
    assert warnings[-1].value == sum(f.severity == "warning" for f in rep.findings) > 0
    assert [e.value for e in acc.Scalars("epoch/loss")] == pytest.approx(history["loss"])
    # histograms: the monitor's kept activation histograms, one per layer
    hists = set(acc.Tags()["histograms"])
    assert {f"health/activations/{layer}" for layer in layers} == hists
    h = acc.Histograms(f"health/activations/{layers[0]}")
    assert [e.step for e in h] == [s for s, _ in rep.series.histograms]
    assert h[0].histogram_value.num == pytest.approx(rep.series.histograms[0][1][0].sum())


def test_any_callable_logger_gets_the_same_scalars(tmp_path):
    x, y = data(128)
    rep = fit(saturating_net(), (x, y), epochs=1, monitor=1, seed=0, verbose=0).health
    got: dict[tuple[str, int], float] = {}
    n = write_health(rep, lambda tag, value, step: got.__setitem__((tag, step), value))
    assert n == len(got)
    for i, step in enumerate(rep.series.steps):
        assert got[("health/grad_norm", step)] == rep.series.grad_norm[i]
        for j, layer in enumerate(rep.series.layers):
            v = rep.series.values["update_ratio"][i, j]
            assert got.get((f"health/update_ratio/{layer}", step), math.nan) == v or \
                not math.isfinite(v)


def test_tensorboard_is_a_config_key(tmp_path):
    from steadygrad.errors import ConfigError
    from steadygrad.experiments.config import config_from_dict
    from steadygrad.experiments.execute import fit_arguments

    cfg = config_from_dict({"diagnostics": {"tensorboard": str(tmp_path / "tb")}})
    assert fit_arguments(cfg)["tensorboard"] == str(tmp_path / "tb")
    with pytest.raises(ConfigError, match=r"diagnostics\.tensorboard"):
        config_from_dict({"diagnostics": {"tensorboard": 3}})
