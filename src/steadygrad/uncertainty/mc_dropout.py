"""Monte Carlo dropout: average many stochastic predictions to estimate uncertainty.

Gal & Ghahramani, "Dropout as a Bayesian Approximation: Representing Model Uncertainty in
Deep Learning", ICML 2016: a network trained with dropout, run with dropout still active at
inference, samples from an approximate posterior predictive. With ``T`` stochastic passes
giving class probabilities ``p_t(x)``:

.. math::
    \\bar p(x) = \\frac1T \\sum_t p_t(x), \\qquad
    \\sigma(x) = \\sqrt{\\frac1T \\sum_t (p_t(x) - \\bar p(x))^2}, \\qquad
    H(x) = -\\sum_c \\bar p_c(x) \\log \\bar p_c(x)

(:func:`mc_predict`; ``σ`` with ``ddof=0`` like ``np.std``, ``H`` the predictive entropy in
nats). Only the dropout layers sample; batch norm uses its running statistics (eval mode), so
the passes differ by their dropout masks alone.

Example:
    >>> import torch
    >>> from torch import nn
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, 3))
    >>> pred = mc_predict(model, torch.randn(5, 4), samples=50)
    >>> pred.mean_probs.shape, pred.std.shape, pred.entropy.shape
    (torch.Size([5, 3]), torch.Size([5, 3]), torch.Size([5]))
    >>> bool(pred.std.gt(0).all()), model.training  # the model's mode is restored
    (True, True)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

import torch
from torch import nn
from torch.nn.modules.dropout import _DropoutNd

from steadygrad.errors import ConfigError
from steadygrad.nn.layers import MCAlphaDropout, MCDropout

__all__ = ["MCPrediction", "enable_mc_dropout", "mc_dropout_mode", "mc_predict"]


class MCPrediction(NamedTuple):
    """The result of :func:`mc_predict`.

    Attributes:
        mean_probs: ``(N, C)`` mean class probabilities over the samples (``(N, 1)`` for a
            single sigmoid output: the probability of the positive class).
        std: ``(N, C)`` standard deviation of the probabilities over the samples (ddof=0).
        entropy: ``(N,)`` entropy of ``mean_probs`` in nats (two-class entropy for a single
            sigmoid output).

    Example:
        >>> softmax = MCPrediction(torch.tensor([[0.2, 0.8], [0.6, 0.4]]), torch.zeros(2, 2),
        ...                        torch.zeros(2))
        >>> softmax.predictions.tolist()
        [1, 0]
        >>> sigmoid = MCPrediction(torch.tensor([[0.7], [0.5], [0.3]]), torch.zeros(3, 1),
        ...                        torch.zeros(3))
        >>> sigmoid.predictions.tolist()  # p >= 0.5 is the positive class
        [1, 1, 0]
    """

    mean_probs: torch.Tensor
    std: torch.Tensor
    entropy: torch.Tensor

    @property
    def predictions(self) -> torch.Tensor:
        """``(N,)`` predicted classes (``argmax``; ``p >= 0.5`` for one sigmoid output)."""
        if self.mean_probs.shape[1] == 1:
            return (self.mean_probs[:, 0] >= 0.5).long()
        return self.mean_probs.argmax(dim=1)


def _dropout_layers(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, _DropoutNd)]


@contextmanager
def mc_dropout_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Context: ``model`` in eval mode except its dropout layers; every mode restored after.

    Covers every ``torch.nn`` dropout kind (``Dropout``, ``Dropout1d/2d/3d``,
    ``AlphaDropout``, ``FeatureAlphaDropout``) and subclasses.

    Example:
        >>> from torch import nn
        >>> net = nn.Sequential(nn.BatchNorm1d(2), nn.Dropout(0.5))
        >>> with mc_dropout_mode(net):
        ...     net[0].training, net[1].training
        (False, True)
        >>> net[0].training, net[1].training
        (True, True)
    """
    modes = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        for layer in _dropout_layers(model):
            layer.train()
        yield model
    finally:
        for module, mode in modes:
            module.training = mode


def _probabilities(out: torch.Tensor) -> torch.Tensor:
    if out.ndim != 2:
        raise ConfigError("model output", tuple(out.shape), "logits of shape (N, C)",
                          hint="mc_predict is for classifiers (C >= 2 logits, or 1 logit)")
    return torch.sigmoid(out) if out.shape[1] == 1 else torch.softmax(out, dim=1)


def _entropy(p: torch.Tensor) -> torch.Tensor:
    if p.shape[1] == 1:
        p = torch.cat([1 - p, p], dim=1)
    return -(p * torch.log(p.clamp_min(torch.finfo(p.dtype).tiny))).sum(dim=1)


def mc_predict(
    model: nn.Module,
    x: torch.Tensor,
    samples: int = 100,
    batch_size: int | None = None,
    *,
    generator_seed: int | None = None,
) -> MCPrediction:
    """MC-dropout prediction of a classifier: mean, spread and entropy over ``samples`` passes.

    Dropout layers sample at inference, everything else (batch norm) runs in eval mode, under
    ``torch.no_grad``; the model's modes are restored afterwards. Works on any
    ``nn.Module`` that outputs logits ``(N, C)`` (softmax) or ``(N, 1)`` (sigmoid).

    Args:
        model: the trained classifier.
        x: inputs ``(N, *features)``, moved to the model's device.
        samples: number of stochastic passes ``T`` (the book uses 100).
        batch_size: rows per forward pass (None: all of ``x`` at once).
        generator_seed: seed torch's global RNG first, for reproducible masks (None: leave it).

    Returns:
        An :class:`MCPrediction`. With dropout rate 0 (or no dropout layers), ``mean_probs``
        equals the deterministic eval-mode prediction and ``std`` is 0.

    Raises:
        ConfigError: bad ``samples``/``batch_size``/``x`` or non-logit outputs.

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Linear(2, 1))  # binary: one logit
        >>> p = mc_predict(net, torch.zeros(3, 2), samples=2)
        >>> p.mean_probs.shape, p.predictions.tolist(), p.std.abs().max().item()
        (torch.Size([3, 1]), [1, 1, 1], 0.0)
    """
    if not isinstance(model, nn.Module):
        raise ConfigError("model", type(model).__name__, "a torch.nn.Module")
    if not isinstance(x, torch.Tensor) or x.ndim < 2 or len(x) == 0:
        raise ConfigError("x", type(x).__name__ if not isinstance(x, torch.Tensor) else
                          tuple(x.shape), "a non-empty tensor (N, *features)")
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ConfigError("samples", samples, "an int >= 1", hint="the book uses 100")
    if batch_size is not None and (
        isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
    ):
        raise ConfigError("batch_size", batch_size, "None or an int >= 1")
    if generator_seed is not None:
        torch.manual_seed(generator_seed)
    param = next(model.parameters(), None)
    device = param.device if param is not None else x.device
    step = batch_size or len(x)
    means, stds = [], []
    with mc_dropout_mode(model), torch.no_grad():
        for begin in range(0, len(x), step):
            xb = x[begin : begin + step].to(device)
            total: torch.Tensor | None = None
            total_sq: torch.Tensor | None = None
            for _ in range(samples):
                p = _probabilities(model(xb)).double()
                total = p if total is None else total + p
                total_sq = p * p if total_sq is None else total_sq + p * p
            assert total is not None and total_sq is not None
            mean = total / samples
            var = (total_sq / samples - mean * mean).clamp_min(0.0)
            means.append(mean)
            stds.append(var.sqrt())
    mean_probs = torch.cat(means)
    dtype = torch.get_default_dtype()
    return MCPrediction(mean_probs.to(dtype), torch.cat(stds).to(dtype),
                        _entropy(mean_probs).to(dtype))


_REPLACEMENTS: dict[type[nn.Module], type[nn.Module]] = {
    nn.Dropout: MCDropout,
    nn.AlphaDropout: MCAlphaDropout,
}


def enable_mc_dropout(model: nn.Module) -> int:
    """Replace ``nn.Dropout``/``nn.AlphaDropout`` layers by their always-sampling MC versions.

    In place, recursively, on any model: each layer becomes
    :class:`~steadygrad.nn.layers.MCDropout` or :class:`~steadygrad.nn.layers.MCAlphaDropout`
    with the same ``p`` (same ``state_dict``), so ``model.eval()`` keeps batch norm frozen
    while dropout keeps sampling: for models that should *always* predict stochastically.
    Other dropout kinds (``Dropout2d``, ``FeatureAlphaDropout``...) are left as they are; use
    :func:`mc_predict` (which samples from every kind) for those.

    Args:
        model: the model to convert in place.

    Returns:
        The number of layers replaced.

    Example:
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.2),
        ...                     nn.Sequential(nn.AlphaDropout(0.1)))
        >>> enable_mc_dropout(net)
        2
        >>> net
        Sequential(
          (0): Linear(in_features=2, out_features=2, bias=True)
          (1): MCDropout(p=0.2, inplace=False)
          (2): Sequential(
            (0): MCAlphaDropout(p=0.1, inplace=False)
          )
        )
    """
    if not isinstance(model, nn.Module):
        raise ConfigError("model", type(model).__name__, "a torch.nn.Module")
    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            new = _REPLACEMENTS.get(type(child))
            if new is not None:
                layer = new(child.p, inplace=child.inplace)
                layer.train(child.training)
                setattr(parent, name, layer)
                replaced += 1
    return replaced
