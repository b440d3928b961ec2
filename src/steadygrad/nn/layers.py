"""Layers that torch lacks: dropout that keeps sampling at inference (Monte Carlo dropout).

MC dropout (Gal & Ghahramani, "Dropout as a Bayesian Approximation", ICML 2016): keep dropout
active at prediction time and average the predictions of many stochastic forward passes; the
spread of those predictions estimates the model's uncertainty. :class:`MCDropout` and
:class:`MCAlphaDropout` are drop-in replacements for ``nn.Dropout`` / ``nn.AlphaDropout``
(same arguments, same ``state_dict``) whose forward samples a mask in *every* mode, so
``model.eval()`` still freezes batch norm while dropout keeps sampling.

Example:
    >>> import torch
    >>> layer = MCDropout(0.5).eval()
    >>> x = torch.ones(1, 1000)
    >>> bool((layer(x) == 0).any())  # still drops units in eval mode
    True
    >>> torch.nn.Dropout(0.5).eval()(x).eq(0).any().item()
    False
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Flatten", "MCAlphaDropout", "MCDropout"]

Flatten = nn.Flatten
"""``torch.nn.Flatten`` (keeps dim 0, the batch; flattens the rest), re-exported."""


class MCDropout(nn.Dropout):
    """``nn.Dropout`` that drops units in eval mode too (Monte Carlo dropout).

    Args:
        p: probability of zeroing an element; kept ones are scaled by ``1 / (1 - p)``.
        inplace: operate in place.

    Example:
        >>> import torch
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> y = MCDropout(0.25).eval()(torch.ones(10_000))
        >>> round(y.mean().item(), 1)  # unbiased: E[y] = x
        1.0
        >>> sorted(set(y.unique().round(decimals=3).tolist()))
        [0.0, 1.333]
    """

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """Dropout with a fresh mask whatever ``self.training`` is."""
        return F.dropout(input, self.p, training=True, inplace=self.inplace)


class MCAlphaDropout(nn.AlphaDropout):
    """``nn.AlphaDropout`` that samples in eval mode too (MC dropout for SELU networks).

    Alpha dropout (Klambauer et al., "Self-Normalizing Neural Networks", NeurIPS 2017) sets
    dropped units to SELU's negative saturation value and applies an affine correction, so the
    activations keep zero mean and unit variance.

    Example:
        >>> import torch
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> y = MCAlphaDropout(0.1).eval()(torch.randn(100_000))
        >>> round(y.mean().item(), 1), round(y.std().item(), 1)
        (0.0, 1.0)
    """

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """Alpha dropout with a fresh mask whatever ``self.training`` is."""
        return F.alpha_dropout(input, self.p, training=True, inplace=self.inplace)
