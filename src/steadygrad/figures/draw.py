"""The chapter's figures: one function per figure, each returning ``(title, png, caption)``.

The numbers come from :mod:`steadygrad.figures.compute`; every caption is formatted from
them (nothing in a caption is typed by hand except the words around the numbers).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from steadygrad.experiments.run_report_plots import _figure, _png
from steadygrad.figures import compute as c

__all__ = ["FIGURES", "Figure"]

Figure = tuple[str, bytes, str]
"""(title, PNG bytes, caption)."""


def activations() -> Figure:
    """Activation functions and their derivatives (saturation)."""
    z = np.linspace(-5, 5, 401)
    curves = c.activation_curves(c.ACTIVATIONS, z)
    fig = _figure(12, 4)
    left, right = fig.subplots(1, 2)
    for name, (y, dy) in curves.items():
        left.plot(z, y, label=name, lw=1.4)
        right.plot(z, dy, label=name, lw=1.4)
    left.set_ylim(-2, 3)
    left.set_title("activation f(z)")
    right.set_title("derivative f'(z)")
    for ax in (left, right):
        ax.set_xlabel("z")
        ax.grid(alpha=0.3)
        ax.axhline(0, color="k", lw=0.5)
    right.legend(fontsize=8, ncol=2)
    sig = curves["sigmoid"][1]
    saturated = float(np.mean(sig < 0.01))
    at = int(np.argmin(np.abs(z + 3)))
    neg = ", ".join(f"{n} {curves[n][1][at]:.3g}" for n in
                    ("relu", "leaky_relu", "elu", "selu", "gelu", "swish"))
    caption = (f"Sigmoid's derivative peaks at {sig.max():.3g} (z = 0) and is below 0.01 on "
               f"{saturated:.0%} of z in [-5, 5] (|z| > {abs(z[np.argmax(sig >= 0.01)]):.2g}): "
               f"saturation. tanh's peaks at {curves['tanh'][1].max():.3g}. Derivatives at "
               f"z = -3: {neg}; ReLU's zero slope there is what lets units die.")
    return "Activation functions and their derivatives", _png(fig), caption


def depth() -> Figure:
    """Forward-signal and gradient scale vs depth for each initialization."""
    scales = c.depth_scales()
    fig = _figure(12, 4)
    left, right = fig.subplots(1, 2)
    parts: list[str] = []
    stable: list[str] = []
    unstable: list[str] = []
    for label, (std, grad, sat) in scales.items():
        layers = np.arange(1, len(std) + 1)
        left.plot(layers, np.maximum(std, 1e-12), label=label, lw=1.4)
        right.plot(layers, np.maximum(grad, 1e-30), label=label, lw=1.4)
        n = len(std)
        if grad[0] > 0 and grad[-1] > 0:
            ratio = grad[0] / grad[-1]
            said = f"gradient at layer 1 = 10^{math.log10(ratio):+.1f} x layer {n}'s"
        else:
            ratio, said = 0.0, "gradient at layer 1 underflows to 0"
        satur = (f", {sat[-1]:.0%} of layer {n}'s outputs saturated"
                 if np.isfinite(sat[-1]) else "")
        parts.append(f"{label}: activation std {std[-1]:.2g} at layer {n}{satur}, {said}")
        kept = (0.1 <= std[-1] / std[0] <= 10 and 0.1 <= ratio <= 10
                and not (np.isfinite(sat[-1]) and sat[-1] > 0.25))
        (stable if kept else unstable).append(label)
    left.set_yscale("log")
    right.set_yscale("log")
    left.set_title("forward: std of each layer's activation")
    right.set_title("backward: gradient RMS w.r.t. each layer's output")
    for ax in (left, right):
        ax.set_xlabel("layer (input -> output)")
        ax.grid(alpha=0.3)
    left.legend(fontsize=8)
    caption = ("A fresh 50-layer, 100-unit MLP per setup, one standard-normal batch. "
               + "; ".join(parts) + ". Activation std and gradient RMS stay within 10x of "
               "layer 1's over the 50 layers with at most a quarter of the outputs saturated "
               f"for {', '.join(stable) or 'none'}; not for {', '.join(unstable) or 'none'}.")
    return "Signal and gradient scale vs depth, per initialization", _png(fig), caption


def optimizers() -> Figure:
    """Optimizer paths on an ill-conditioned 2-D quadratic."""
    paths = c.optimizer_paths()
    fig = _figure(12, 4.6)
    ax = fig.add_subplot(1, 1, 1)
    xs, ys = np.meshgrid(np.linspace(-4.5, 2.5, 200), np.linspace(-2, 2, 120))
    ax.contour(xs, ys, 0.5 * (xs**2 + 20 * ys**2), levels=np.geomspace(0.01, 60, 14),
               colors="#c0c4c8", linewidths=0.6)
    for label, path in paths.items():
        ax.plot(path[:, 0], path[:, 1], marker=".", markersize=3, lw=1, label=label)
    ax.plot([0], [0], "k*", markersize=10, label="minimum")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title("100 steps on f(x, y) = (x² + 20 y²) / 2 from (-4, 1.5)")
    ax.legend(fontsize=8, ncol=2)
    dist = {k: float(np.linalg.norm(p[-1])) for k, p in paths.items()}
    over = {k: float(p[:, 0].max()) for k, p in paths.items()}
    ada = paths["AdaGrad"]
    shrink = np.linalg.norm(ada[-1] - ada[-2]) / np.linalg.norm(ada[1] - ada[0])
    caption = (
        "Distance to the minimum after 100 steps: "
        + ", ".join(f"{k} {v:.2g}" for k, v in dist.items())
        + f". Momentum overshoots the minimum along x by {over['momentum 0.9']:.2g} "
        f"(Nesterov {over['Nesterov 0.9']:.2g}, plain SGD {max(over['SGD'], 0.0):.2g}); "
        f"AdaGrad's last step is {shrink:.1%} of its first (its accumulated squared "
        "gradients only grow), so it stalls before the minimum while RMSProp and Adam, "
        "which forget old gradients, arrive.")
    return "Optimizer paths on a 2-D loss", _png(fig), caption


def schedules() -> Figure:
    """The learning-rate schedules over a 1000-step run."""
    curves = c.schedule_curves()
    fig = _figure(12, 3.8)
    ax = fig.add_subplot(1, 1, 1)
    for label, lr in curves.items():
        ax.plot(np.arange(len(lr)), lr, label=label, lw=1.4)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("learning rate")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    caption = ("Learning rate at steps 0 / 500 / 999 (base 0.1, cosine warms up from 0.01): "
               + "; ".join(f"{k} {v[0]:.3g} / {v[500]:.3g} / {v[-1]:.3g}"
                           for k, v in curves.items()) + ".")
    return "Learning-rate schedules", _png(fig), caption


def batch_norm() -> Figure:
    """Batch norm: training-mode vs inference-mode output while running statistics warm up."""
    r = c.batch_norm_modes()
    k = np.arange(1, len(r["eval_mean"]) + 1)
    fig = _figure(12, 3.8)
    left, right = fig.subplots(1, 2)
    left.plot(k, r["train_mean"], label="training mode (batch statistics)")
    left.plot(k, r["eval_mean"], label="inference mode (running statistics)")
    left.set_title("mean of the normalized output on a held-out batch")
    right.plot(k, r["running_mean"], label="running mean (measured)")
    right.plot(k, r["closed_form"], "--", label="3 (1 - 0.9^k) (closed form)")
    right.set_title("running mean, momentum 0.1 (PyTorch convention)")
    for ax in (left, right):
        ax.set_xlabel("training batches seen")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    caption = (f"Inputs ~ N(3, 2²). In training mode the output mean is "
               f"{abs(r['train_mean'][0]):.1g} from the first batch; in inference mode it is "
               f"{r['eval_mean'][0]:.2f} after 1 batch, {r['eval_mean'][4]:.2f} after 5 and "
               f"{r['eval_mean'][-1]:.2f} after {len(k)}: inference uses the running "
               "statistics, which need many batches to converge (Keras momentum 0.99 = "
               "PyTorch 0.01 is slower still).")
    return "Batch norm in training vs inference", _png(fig), caption


def dropout() -> Figure:
    """Inverted dropout keeps the expected activation."""
    r = c.dropout_scaling()
    fig = _figure(8, 3.6)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(r["rates"], r["train_mean"], "o-", label="training, inverted (kept x 1/(1-p))")
    ax.plot(r["rates"], r["unscaled_mean"], "s--", label="training, not rescaled")
    ax.plot(r["rates"], r["eval_mean"], ":", label="inference (dropout off)")
    ax.set_xlabel("dropout rate p")
    ax.set_ylabel("mean output for an input of ones")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    worst = float(np.max(np.abs(r["train_mean"] - 1)))
    caption = (f"Mean of 100,000 dropped-out ones: inverted dropout stays within {worst:.1%} of "
               f"1 at every rate (e.g. {r['train_mean'][3]:.3f} at p = {r['rates'][3]:g}), the "
               f"inference-mode value; without the 1/(1-p) scaling it would be "
               f"{r['unscaled_mean'][3]:.3f} (= 1 - p) and the net would see larger inputs at "
               "inference than in training.")
    return "Inverted dropout scaling", _png(fig), caption


def mc_dropout() -> Figure:
    """MC-dropout uncertainty and the reliability diagram."""
    r = c.mc_dropout_calibration()
    fig = _figure(12, 4)
    left, right = fig.subplots(1, 2)
    bins = np.linspace(0, max(1e-3, float(np.max(np.concatenate(
        [r["entropy_correct"], r["entropy_wrong"], [0.01]])))), 25)
    left.hist(r["entropy_correct"], bins=bins, alpha=0.6, density=True, label="correct")
    left.hist(r["entropy_wrong"], bins=bins, alpha=0.6, density=True, label="wrong")
    left.set_xlabel("predictive entropy of the MC-dropout mean (nats)")
    left.set_title("uncertainty of correct vs wrong predictions")
    left.legend(fontsize=8)
    right.plot([0, 1], [0, 1], "k:", label="perfect calibration")
    for key, label in (("bins_single", "one pass, dropout off"), ("bins_mc", "MC dropout mean")):
        b = r[key]
        mask = b.counts > 0
        right.plot(b.confidence[mask], b.accuracy[mask], "o-", label=label)
    right.set_xlabel("confidence (top class)")
    right.set_ylabel("accuracy")
    right.set_title("reliability diagram (10 bins, digits test split)")
    right.legend(fontsize=8)
    for ax in (left, right):
        ax.grid(alpha=0.3)
    ec, ew = float(np.mean(r["entropy_correct"])), float(np.mean(r["entropy_wrong"]))
    caption = (f"MLP with MC dropout (rate 0.3) on digits, 20 stochastic passes: accuracy "
               f"{r['accuracy_mc']:.3f} (one deterministic pass {r['accuracy_single']:.3f}). "
               f"Mean predictive entropy {ec:.2f} nats on the {len(r['entropy_correct'])} "
               f"correct predictions vs {ew:.2f} on the {len(r['entropy_wrong'])} wrong ones: "
               f"the spread flags the mistakes. Expected calibration error {r['ece_mc']:.3f} "
               f"(MC mean) vs {r['ece_single']:.3f} (one pass); points below the diagonal are "
               "over-confident, above under-confident.")
    return "MC-dropout uncertainty and reliability", _png(fig), caption


FIGURES: dict[str, Callable[[], Figure]] = {
    "activations": activations,
    "depth": depth,
    "optimizers": optimizers,
    "schedules": schedules,
    "batch_norm": batch_norm,
    "dropout": dropout,
    "mc_dropout": mc_dropout,
}
"""Every figure by name, in page order."""
