"""The numbers behind the chapter's figures, computed with steadygrad's own building blocks.

Every function is deterministic (seeded) and returns plain numpy arrays / floats, so the
figures and their captions (:mod:`steadygrad.figures.draw`) show measured values, and the tests
check them against closed forms.

Example:
    >>> curves = activation_curves(("sigmoid",), np.linspace(-1, 1, 3))
    >>> [round(float(v), 4) for v in curves["sigmoid"][1]]  # sigma'(z) = sigma(z) (1 - sigma(z))
    [0.1966, 0.25, 0.1966]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = [
    "ACTIVATIONS",
    "DEPTH_SETUPS",
    "OPTIMIZER_SETUPS",
    "activation_curves",
    "batch_norm_modes",
    "depth_scales",
    "dropout_scaling",
    "mc_dropout_calibration",
    "optimizer_paths",
    "schedule_curves",
]

ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu", "gelu", "swish")
"""The activations of the saturation figure."""


def activation_curves(names: Sequence[str] = ACTIVATIONS, z: Any = None
                      ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{name: (f(z), f'(z))}`` with the library's activation modules and autograd."""
    from steadygrad.nn.activations import get

    grid = torch.as_tensor(np.linspace(-5, 5, 401) if z is None else z, dtype=torch.float64)
    out = {}
    for name in names:
        x = grid.clone().requires_grad_(True)
        y = get(name).double()(x)
        (dy,) = torch.autograd.grad(y.sum(), x)
        out[name] = (y.detach().numpy(), dy.numpy())
    return out


DEPTH_SETUPS: tuple[tuple[str, str, Any], ...] = (
    ("sigmoid + N(0, 1)", "sigmoid", {"name": "variance_scaling", "scale": 100.0,
                                      "mode": "fan_in", "distribution": "untruncated_normal"}),
    ("sigmoid + Glorot", "sigmoid", "glorot_uniform"),
    ("tanh + Glorot", "tanh", "glorot_uniform"),
    ("ReLU + Glorot", "relu", "glorot_uniform"),
    ("ReLU + He", "relu", "he_normal"),
    ("SELU + LeCun", "selu", "lecun_normal"),
)
"""(label, activation, kernel initializer) of the depth figure (width 100: N(0, 1) is
variance scaling with scale = fan_in)."""


def depth_scales(depth: int = 50, width: int = 100, batch: int = 256, seed: int = 0
                 ) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``{label: (activation std, gradient RMS, saturated fraction)}`` per layer of a fresh
    deep MLP (the saturated fraction is NaN for unbounded activations; sigmoid outputs
    below 0.01 or above 0.99, tanh outputs beyond +-0.98, as the monitor counts them).

    The net is ``steadygrad.nn.build.mlp(width, [width] * depth)`` with the setup's
    activation and initializer; the input is standard normal, the loss cross-entropy with
    random labels. The gradient is taken w.r.t. each dense layer's output (pre-activation):
    Glorot & Bengio's (2010) back-propagated gradient.
    """
    from steadygrad.nn.build import mlp

    out = {}
    for label, activation, init in DEPTH_SETUPS:
        g = torch.Generator().manual_seed(seed)
        net = mlp(width, [width] * depth, activation=activation, kernel_initializer=init,
                  num_outputs=10, seed=seed)
        dense = [m for name, m in net.named_children() if name.startswith("dense")]
        acts = [m for name, m in net.named_children() if name.startswith("act")]
        outs: list[torch.Tensor] = []
        post: list[torch.Tensor] = []

        handles = [m.register_forward_hook(_keeper(outs)) for m in dense]
        handles += [m.register_forward_hook(_keeper(post)) for m in acts]
        x = torch.randn(batch, width, generator=g)
        y = torch.randint(0, 10, (batch,), generator=g)
        nn.functional.cross_entropy(net(x), y).backward()
        for h in handles:
            h.remove()
        std = np.array([float(a.detach().std()) for a in post])
        grad = np.array([float(o.grad.pow(2).mean().sqrt()) if o.grad is not None else np.nan
                         for o in outs])
        if activation in ("sigmoid", "tanh"):
            low, high = (0.01, 0.99) if activation == "sigmoid" else (-0.98, 0.98)
            sat = np.array([float(((a < low) | (a > high)).float().mean()) for a in post])
        else:
            sat = np.full(len(post), np.nan)
        out[label] = (std, grad, sat)
    return out


def _keeper(store: list[torch.Tensor]) -> Any:
    """A forward hook appending the output to ``store`` (retaining its gradient)."""

    def hook(_m: nn.Module, _i: Any, o: torch.Tensor) -> None:
        if o.requires_grad:
            o.retain_grad()
        store.append(o)

    return hook


def _quadratic(p: torch.Tensor) -> torch.Tensor:
    return 0.5 * (p[0] ** 2 + 20.0 * p[1] ** 2)


OPTIMIZER_SETUPS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("SGD", "sgd", {"learning_rate": 0.04}),
    ("momentum 0.9", "momentum", {"learning_rate": 0.04, "momentum": 0.9}),
    ("Nesterov 0.9", "nesterov", {"learning_rate": 0.04, "momentum": 0.9}),
    ("AdaGrad", "adagrad", {"learning_rate": 0.1}),
    ("RMSProp", "rmsprop", {"learning_rate": 0.1}),
    ("Adam", "adam", {"learning_rate": 0.3}),
)
"""(label, ``make_optimizer`` name, hyperparameters) of the optimizer-path figure."""


def optimizer_paths(steps: int = 100, start: tuple[float, float] = (-4.0, 1.5)
                    ) -> dict[str, np.ndarray]:
    """``{label: (steps + 1, 2) path}`` of each optimizer on ``f(x, y) = (x² + 20 y²) / 2``.

    The optimizers are steadygrad's (:func:`steadygrad.optim.optimizers.make_optimizer`)
    stepping a 2-D parameter; the minimum is the origin. The valley is 20 times steeper
    along ``y`` than along ``x``: the ill-conditioned case momentum and adaptive rates address.
    """
    from steadygrad.optim.optimizers import make_optimizer

    out = {}
    for label, name, hyper in OPTIMIZER_SETUPS:
        p = torch.tensor(start, dtype=torch.float64, requires_grad=True)
        opt = make_optimizer(name, [p], **hyper)
        path = [p.detach().clone()]
        for _ in range(steps):
            opt.zero_grad()
            _quadratic(p).backward()
            opt.step()
            path.append(p.detach().clone())
        out[label] = torch.stack(path).numpy()
    return out


def schedule_curves(total_steps: int = 1000, learning_rate: float = 0.1
                    ) -> dict[str, np.ndarray]:
    """``{name: lr per step}`` of the built-in schedules (:func:`make_schedule`)."""
    from steadygrad.optim.schedules import make_schedule

    specs: dict[str, dict[str, Any]] = {
        "power (s = 100)": {"name": "power", "s": 100},
        "exponential (0.1 per run)": {"name": "exponential"},
        "piecewise constant": {"name": "piecewise_constant", "boundaries": [400, 800],
                               "values": [0.1, 0.03, 0.01]},
        "cosine + warm-up": {"name": "cosine", "warmup_steps": 100, "warmup_target": 0.1},
        "1cycle": {"name": "one_cycle"},
    }
    out = {}
    for label, spec in specs.items():
        kw = {k: v for k, v in spec.items() if k != "name"}
        lr0 = 0.01 if spec["name"] == "cosine" else learning_rate
        sched = make_schedule(spec["name"], learning_rate=lr0, total_steps=total_steps, **kw)
        out[label] = np.array([sched(t) for t in range(total_steps)])
    return out


def batch_norm_modes(batches: int = 50, batch: int = 32, mean: float = 3.0, std: float = 2.0,
                     momentum: float = 0.1, seed: int = 0) -> dict[str, np.ndarray]:
    """Batch norm in training vs inference mode while the running statistics warm up.

    A ``BatchNorm1d`` (momentum ``momentum``, PyTorch convention) sees ``batches`` training
    batches of ``N(mean, std²)``; after each, the same held-out batch goes through it in
    training mode (batch statistics) and in eval mode (running statistics).

    Returns ``train_mean``, ``eval_mean``, ``eval_std``, ``running_mean`` per batch seen and
    ``closed_form``: the running mean's expectation ``mean (1 - (1 - momentum)^k)``.
    """
    g = torch.Generator().manual_seed(seed)
    bn = nn.BatchNorm1d(1, momentum=momentum, affine=False)
    held = mean + std * torch.randn(batch, 1, generator=g)
    rows: dict[str, list[float]] = {"train_mean": [], "eval_mean": [], "eval_std": [],
                                    "running_mean": []}
    with torch.no_grad():
        for _ in range(batches):
            bn.train()
            bn(mean + std * torch.randn(batch, 1, generator=g))
            rows["running_mean"].append(float(bn.running_mean[0]))  # type: ignore[index]
            rows["train_mean"].append(float(_train_only(bn, held).mean()))
            bn.eval()
            out = bn(held)
            rows["eval_mean"].append(float(out.mean()))
            rows["eval_std"].append(float(out.std()))
    k = np.arange(1, batches + 1)
    result = {key: np.array(v) for key, v in rows.items()}
    result["closed_form"] = mean * (1 - (1 - momentum) ** k)
    return result


def _train_only(bn: nn.BatchNorm1d, x: torch.Tensor) -> torch.Tensor:
    """Training-mode output without touching the running statistics."""
    return nn.functional.batch_norm(x, None, None, training=True, eps=bn.eps)


def dropout_scaling(rates: Sequence[float] = (0.1, 0.2, 0.3, 0.5, 0.7, 0.8), n: int = 100_000,
                    seed: int = 0) -> dict[str, np.ndarray]:
    """Inverted dropout keeps the expected activation: mean output in train and eval mode.

    The dropout layer is the one ``steadygrad.nn.build.mlp`` inserts (``torch.nn.Dropout``):
    kept units are scaled by ``1 / (1 - rate)`` during training, so no rescaling is needed
    at inference. ``unscaled`` is what plain (non-inverted) dropout would give, ``1 - rate``.
    """
    from steadygrad.nn.build import mlp

    torch.manual_seed(seed)
    train, unscaled = [], []
    for rate in rates:
        layer = next(m for m in mlp(4, [4], dropout=rate, num_outputs=2).modules()
                     if isinstance(m, nn.Dropout))
        layer.train()
        out = layer(torch.ones(n))
        train.append(float(out.mean()))
        unscaled.append(float((out != 0).float().mean()))
    layer.eval()
    eval_mean = float(layer(torch.ones(n)).mean())
    return {"rates": np.array(rates), "train_mean": np.array(train),
            "unscaled_mean": np.array(unscaled), "eval_mean": np.full(len(rates), eval_mean)}


def mc_dropout_calibration(samples: int = 20, epochs: int = 5, seed: int = 0
                           ) -> dict[str, Any]:
    """MC dropout (Gal & Ghahramani, 2016) on digits: uncertainty and reliability.

    An MLP with MC dropout (rate 0.3) trained by ``steadygrad.fit`` on digits; on the test
    split, :func:`steadygrad.uncertainty.mc_dropout.mc_predict` (``samples`` passes) vs one
    deterministic pass (dropout off). Returns the predictive entropy of correct and wrong
    predictions, the reliability bins and the ECE of both.
    """
    from steadygrad.data.datasets import load
    from steadygrad.nn.build import mlp
    from steadygrad.train.loop import fit
    from steadygrad.uncertainty.calibration import expected_calibration_error, reliability_bins
    from steadygrad.uncertainty.mc_dropout import mc_predict

    data = load("digits")
    net = mlp(data.input_shape, [64, 64], dropout=0.3, dropout_kind="mc", num_outputs=10,
              seed=seed)
    fit(net, data, epochs=epochs, optimizer="adam", seed=seed, verbose=0, monitor=None)
    x, y = data.x_test, data.y_test
    assert x is not None and y is not None  # digits has a test split
    mc = mc_predict(net, x, samples=samples, generator_seed=seed)
    net.eval()
    single = _deterministic_probs(net, x)
    correct = mc.predictions == y
    return {
        "entropy_correct": mc.entropy[correct].numpy(),
        "entropy_wrong": mc.entropy[~correct].numpy(),
        "accuracy_mc": float(torch.as_tensor(correct).float().mean()),
        "accuracy_single": float(torch.as_tensor(single.argmax(1) == y).float().mean()),
        "bins_mc": reliability_bins(mc.mean_probs, y, n_bins=10),
        "bins_single": reliability_bins(single, y, n_bins=10),
        "ece_mc": expected_calibration_error(mc.mean_probs, y, n_bins=10),
        "ece_single": expected_calibration_error(single, y, n_bins=10),
    }


def _deterministic_probs(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Softmax of one pass with every dropout layer's rate set to 0 (then restored)."""
    saved = []
    for m in net.modules():
        if isinstance(m, nn.modules.dropout._DropoutNd):
            saved.append((m, m.p))
            m.p = 0.0
    try:
        with torch.no_grad():
            return torch.softmax(net(x), dim=1)
    finally:
        for m, p in saved:
            m.p = p
