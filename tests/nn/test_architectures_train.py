"""Every architecture trains with ``fit`` (eager and compiled), under the monitor, and
passes ``summary``."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from torch import nn

import steadygrad as sg

N, CLASSES, EPOCHS = 64, 3, 8


def _images() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, 1, 8, 8, generator=g)
    top, bottom = x[:, 0, :4].mean((1, 2)), x[:, 0, 4:].mean((1, 2))
    return x, (top > 0).long() + (bottom > 0).long()  # learnable from the pixels


def _tokens() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 5, (N, 6), generator=g)
    return x.float(), x[:, 0] % CLASSES  # learnable: depends on the first token


def _features() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, 6, 2, generator=g)
    m = x.mean(1)
    return x, (m[:, 0] > 0).long() + (m[:, 1] > 0).long()


# (builder, data, input shape, the first weighted module the monitor must report)
CASES: dict[str, tuple[Callable[[], nn.Module], Callable[[], tuple], tuple[int, ...], str]] = {
    "cnn": (lambda: sg.cnn((1, 8, 8), (4, 8), normalization="before", num_outputs=CLASSES,
                           seed=0), _images, (1, 8, 8), "conv1"),
    "resnet": (lambda: sg.resnet((1, 8, 8), (4, 8), 1, num_outputs=CLASSES, seed=0),
               _images, (1, 8, 8), "stem.conv"),
    "rnn_lstm_tokens": (lambda: sg.rnn((6,), 8, cell="lstm", vocab=5, num_outputs=CLASSES,
                                       seed=0), _tokens, (6,), "embedding"),
    "rnn_gru": (lambda: sg.rnn((6, 2), 8, cell="gru", dense=(8,), num_outputs=CLASSES, seed=0),
                _features, (6, 2), "rnn"),
    "transformer_pre_ln": (lambda: sg.transformer((6,), vocab=5, d_model=8, heads=2, layers=1,
                                                  ff=16, num_outputs=CLASSES, seed=0),
                           _tokens, (6,), "embedding"),
    "transformer_post_ln": (lambda: sg.transformer((6, 2), d_model=8, heads=2, layers=1, ff=16,
                                                   norm_first=False, positions="sinusoidal",
                                                   num_outputs=CLASSES, seed=0),
                            _features, (6, 2), "input_proj"),
}


def _fit(name: str, compile: bool, monitor: int = 1) -> tuple[nn.Module, sg.History]:
    build, data, _, _ = CASES[name]
    model = build()
    history = sg.fit(model, data(), epochs=EPOCHS, batch_size=16, optimizer="adam",
                     learning_rate=0.01, monitor=monitor, seed=0, compile=compile, verbose=0)
    return model, history


@pytest.mark.parametrize("name", sorted(CASES))
def test_trains_eagerly_under_the_monitor_and_summarizes(name: str) -> None:
    build, _, shape, first = CASES[name]
    model, history = _fit(name, compile=False)
    losses = history.history["loss"]
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.85 * losses[0], losses  # it learns
    assert history.stopped_reason is None
    series = history.health.series
    assert series.layers[0] == first  # rows named after the stable module names
    assert series.checks == EPOCHS * 4  # monitor=1: every step sampled
    assert all(math.isfinite(v) for v in series.grad_norm)
    s = sg.summary(build(), shape)
    assert s.total_params == sum(p.numel() for p in model.parameters()) + sum(
        b.numel() for n, b in model.named_buffers()
        if b.is_floating_point() and not n.endswith("table"))  # BN statistics, not sinusoids
    assert s.rows[-1].output_shape == (None, CLASSES)


@pytest.mark.slow  # Inductor compiles each model: 40-100 s per case on 2 busy cores
@pytest.mark.parametrize("name", sorted(CASES))
def test_trains_compiled_like_eager(name: str) -> None:
    # monitor=4: one step in 4 is monitored (eagerly, with hooks), the others run compiled
    _, eager = _fit(name, compile=False, monitor=4)
    _, compiled = _fit(name, compile=True, monitor=4)
    assert compiled.compile_seconds > 0  # the compiled engine ran
    assert compiled.params["engine"] == "flat" and not compiled.params.get("fallback")
    assert compiled.stopped_reason is None
    assert compiled.health.series.checks == eager.health.series.checks > 0
    torch.testing.assert_close(
        torch.tensor(compiled.history["loss"]), torch.tensor(eager.history["loss"]),
        rtol=2e-3, atol=2e-3,
    )
