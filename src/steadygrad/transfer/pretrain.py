"""Unsupervised pretraining with a stacked autoencoder, and pretraining on an auxiliary task.

With plenty of unlabelled data and few labels, train a stacked autoencoder on all the data,
then reuse its encoder as the lower layers of a classifier trained on the labelled few
(Géron, *Hands-On ML*, ch. 11 and 17; Hinton & Salakhutdinov, "Reducing the Dimensionality
of Data with Neural Networks", Science 2006; greedy layer-wise training: Bengio et al.,
"Greedy Layer-Wise Training of Deep Networks", NeurIPS 2006). The encoder is an MLP from
:func:`encoder_mlp` (or any ``nn.Sequential`` of ``Linear`` blocks); the decoder mirrors it,
with its own weights or with **tied** weights (decoder weight = encoder weightᵀ, half the
parameters).

The same reuse API serves auxiliary-task pretraining: train a network on a labelled
auxiliary task, keep its lower layers (:func:`pretrain_auxiliary`), and hand them to
:func:`classifier_from_encoder` exactly like an autoencoder's encoder.

Example:
    >>> import torch
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> encoder = encoder_mlp(8, (6, 3), seed=0)
    >>> ae = StackedAutoencoder(encoder, tied=True)
    >>> ae
    StackedAutoencoder(
      (encoder): Sequential(
        (dense1): Linear(in_features=8, out_features=6, bias=True)
        (act1): SELU()
        (dense2): Linear(in_features=6, out_features=3, bias=True)
        (act2): SELU()
      )
      (decoder): Sequential(
        (0): TiedLinear(in_features=3, out_features=6)
        (1): SELU()
        (2): TiedLinear(in_features=6, out_features=8)
        (3): Sigmoid()
      )
    )
    >>> x = torch.rand(64, 8)
    >>> histories = pretrain_autoencoder(ae, x, epochs=2, verbose=0, seed=0)
    >>> clf = classifier_from_encoder(ae, num_classes=4)
    >>> [type(m).__name__ for m in clf]
    ['Linear', 'SELU', 'Linear', 'SELU', 'Linear']
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from steadygrad.errors import ConfigError, DataError
from steadygrad.nn import activations as _activations
from steadygrad.nn import init as _init
from steadygrad.transfer.freeze import freeze
from steadygrad.transfer.reuse import reuse

__all__ = [
    "StackedAutoencoder",
    "TiedLinear",
    "classifier_from_encoder",
    "encoder_mlp",
    "pretrain_autoencoder",
    "pretrain_auxiliary",
]


def encoder_mlp(
    input_shape: Sequence[int] | int, hidden: Sequence[int] = (100, 30), **mlp_kwargs: Any
) -> nn.Sequential:
    """An MLP encoder: :func:`steadygrad.nn.build.mlp` without its output layer.

    Every hidden layer (the last one is the codings layer) keeps its activation, batch norm
    and dropout settings; the default activation is SELU, as in the book's stacked
    autoencoder (784 → 100 → 30).

    Args:
        input_shape: shape of one example.
        hidden: units of each encoder layer, the last being the codings size.
        **mlp_kwargs: any other ``mlp`` argument (``activation``, ``seed``, ``batch_norm``...).

    Example:
        >>> [type(m).__name__ for m in encoder_mlp((28, 28), (100, 30), seed=0)]
        ['Flatten', 'Linear', 'SELU', 'Linear', 'SELU']
    """
    from steadygrad.nn.build import mlp

    for key in ("output", "num_outputs"):
        if key in mlp_kwargs:
            raise ConfigError(key, mlp_kwargs[key], "no value: an encoder has no output layer")
    if not hidden:
        raise ConfigError("hidden", hidden, "at least one layer (the codings layer)")
    mlp_kwargs.setdefault("activation", "selu")
    model = mlp(input_shape, hidden, output="regression", **mlp_kwargs)
    del model.output
    return model


class TiedLinear(nn.Module):
    """A decoder layer whose weight is the transpose of an encoder ``Linear`` (tied weights).

    ``y = x Wᵀᵀ + b = x W + b`` with ``W`` the encoder layer's ``(out, in)`` weight: the
    layer maps ``out`` features back to ``in``; only its bias is its own parameter. The
    encoder layer is referenced, not registered, so it is not counted twice.

    Args:
        linear: the encoder layer to mirror.

    Example:
        >>> import torch
        >>> enc = torch.nn.Linear(4, 2)
        >>> dec = TiedLinear(enc)
        >>> [name for name, _ in dec.named_parameters()]
        ['bias']
        >>> torch.allclose(dec(torch.ones(1, 2)), enc.weight.sum(0, keepdim=True))
        True
    """

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        if not isinstance(linear, nn.Linear):
            raise ConfigError("linear", type(linear).__name__, "an nn.Linear to tie to")
        self._tied = (linear,)  # a tuple: not registered as a submodule
        self.bias = nn.Parameter(torch.zeros(linear.in_features, device=linear.weight.device))

    @property
    def weight(self) -> torch.Tensor:
        """The tied encoder weight (``(out, in)`` of the encoder layer)."""
        return self._tied[0].weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x @ W + b``."""
        return F.linear(x, self.weight.t(), self.bias)

    def extra_repr(self) -> str:
        """In/out features of the decoder direction."""
        w = self.weight
        return f"in_features={w.shape[0]}, out_features={w.shape[1]}"


def _blocks(encoder: nn.Sequential) -> tuple[list[nn.Module], list[list[nn.Module]]]:
    """``(modules before the first Linear, [[Linear, *modules up to the next Linear]])``."""
    prefix: list[nn.Module] = []
    blocks: list[list[nn.Module]] = []
    for module in encoder:
        if isinstance(module, nn.Linear):
            blocks.append([module])
        elif blocks:
            blocks[-1].append(module)
        else:
            prefix.append(module)
    return prefix, blocks


def _activation_of(block: list[nn.Module]) -> nn.Module | None:
    for module in block[1:]:
        if _activations.activation_name(module) is not None:
            return module
    return None


class StackedAutoencoder(nn.Module):
    """An MLP encoder and a mirrored decoder; ``forward`` reconstructs its input.

    The decoder layer mirroring encoder layer ``j`` maps its ``out`` features back to its
    ``in`` features and applies the activation of encoder layer ``j - 1`` (the activation
    that produced what it reconstructs) or ``output_activation`` for the first layer.

    Args:
        encoder: an ``nn.Sequential`` with one or more ``Linear`` layers (e.g. from
            :func:`encoder_mlp`); a leading ``Flatten`` is fine, the output is reshaped to
            the input's shape.
        tied: share weights (decoder layer = :class:`TiedLinear` of the encoder layer).
        output_activation: ``"sigmoid"`` (inputs scaled to [0, 1], the book's choice), any
            registered activation name, a module, or None (linear, for standardized inputs).

    Example:
        >>> import torch
        >>> ae = StackedAutoencoder(encoder_mlp((2, 4), (3,), seed=0), output_activation=None)
        >>> ae(torch.zeros(5, 2, 4)).shape
        torch.Size([5, 2, 4])
        >>> ae.encode(torch.zeros(5, 2, 4)).shape
        torch.Size([5, 3])
    """

    def __init__(
        self,
        encoder: nn.Sequential,
        *,
        tied: bool = False,
        output_activation: str | nn.Module | None = "sigmoid",
    ) -> None:
        super().__init__()
        if not isinstance(encoder, nn.Sequential):
            raise ConfigError("encoder", type(encoder).__name__, "an nn.Sequential of Linear "
                              "blocks", hint="build one with encoder_mlp(input_shape, hidden)")
        _, blocks = _blocks(encoder)
        if not blocks:
            raise ConfigError("encoder", "no Linear layer", "an encoder with Linear layers")
        if not isinstance(tied, bool):
            raise ConfigError("tied", tied, "True or False")
        out_act = None if output_activation is None else _activations.get(output_activation)
        self.encoder = encoder
        self.tied = tied
        layers: list[nn.Module] = []
        for j in reversed(range(len(blocks))):
            dense = blocks[j][0]
            assert isinstance(dense, nn.Linear)
            act = out_act if j == 0 else _activation_of(blocks[j - 1])
            if tied:
                layers.append(TiedLinear(dense))
            else:
                layer = nn.Linear(dense.out_features, dense.in_features,
                                  device=dense.weight.device)
                _init.get(_init.auto_initializer(act))(layer.weight)
                nn.init.zeros_(layer.bias)
                layers.append(layer)
            if act is not None:
                layers.append(copy.deepcopy(act))
        self.decoder = nn.Sequential(*layers)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The codings of ``x``."""
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The reconstruction of ``x``, in the shape of ``x``."""
        return self.decoder(self.encoder(x)).reshape(x.shape)


def _check_x(x: Any) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.ndim < 2:
        raise ConfigError("x", type(x).__name__ if not isinstance(x, torch.Tensor) else
                          f"tensor {tuple(x.shape)} {x.dtype}",
                          "a floating-point tensor (N, *features)")
    if not bool(torch.isfinite(x).all()):
        raise DataError("x: contains NaN or Inf; clean the inputs before pretraining")
    return x


_RANGES = {nn.Sigmoid: (0.0, 1.0, "scale the inputs to [0, 1] (e.g. load(..., "
                                  "standardize=False), x / 255)"),
           nn.Tanh: (-1.0, 1.0, "scale the inputs to [-1, 1]")}


def _warn_if_out_of_range(autoencoder: StackedAutoencoder, x: torch.Tensor) -> None:
    """Warn when the output activation cannot produce the values it must reconstruct
    (the default sigmoid output on standardized inputs trains badly, silently)."""
    last = autoencoder.decoder[-1] if len(autoencoder.decoder) else None
    for kind, (low, high, fix) in _RANGES.items():
        if isinstance(last, kind):
            outside = float(((x < low) | (x > high)).float().mean())
            if outside > 0.01:
                warnings.warn(
                    f"the autoencoder's output activation {kind.__name__} produces values in "
                    f"({low:g}, {high:g}) but {outside:.0%} of the inputs it must reconstruct "
                    f"lie outside (x spans [{float(x.min()):.3g}, {float(x.max()):.3g}]): it "
                    "cannot reconstruct them. For standardized inputs build it with "
                    f"output_activation=None, or {fix}", UserWarning, stacklevel=3)


def pretrain_autoencoder(
    autoencoder: StackedAutoencoder,
    x: torch.Tensor,
    *,
    greedy: bool = False,
    epochs: int = 10,
    **fit_kwargs: Any,
) -> list[Any]:
    """Train ``autoencoder`` to reconstruct ``x`` (MSE), whole or greedily layer by layer.

    Whole: one ``fit`` on ``(x, x)``. Greedy layer-wise (Bengio et al., 2006): for each
    encoder layer ``j`` in turn, train the shallow autoencoder *encoder layer j → its mirrored
    decoder layer* to reconstruct the codings of the layers below it (computed in eval mode,
    without gradients); the layers are the autoencoder's own, trained in place.

    Args:
        autoencoder: the :class:`StackedAutoencoder` to train in place.
        x: unlabelled inputs ``(N, *input_shape)`` (floating point).
        greedy: layer-wise instead of whole.
        epochs: epochs of the whole run, or of each greedy stage.
        **fit_kwargs: passed to :func:`steadygrad.train.loop.fit` (``optimizer``,
            ``learning_rate``, ``batch_size``, ``seed``, ``verbose``...).

    Returns:
        The ``History`` of each ``fit`` call (one, or one per encoder layer).

    Example:
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> x = torch.rand(64, 8)
        >>> ae = StackedAutoencoder(encoder_mlp(8, (6, 3), seed=0), tied=False)
        >>> (history,) = pretrain_autoencoder(ae, x, epochs=5, learning_rate=0.01,
        ...                                   verbose=0, seed=0)
        >>> losses = history["loss"]
        >>> len(losses), all(b < a for a, b in zip(losses, losses[1:]))  # MSE keeps falling
        (5, True)
        >>> greedy = pretrain_autoencoder(ae, x, greedy=True, epochs=2, verbose=0, seed=0)
        >>> len(greedy)  # one stage per encoder layer
        2
        >>> pretrain_autoencoder(ae, x, loss="mae")
        Traceback (most recent call last):
        ...
        steadygrad.errors.ConfigError: loss: got 'mae'; expected not set: the loss is the ...
    """
    from steadygrad.train.loop import fit

    if not isinstance(autoencoder, StackedAutoencoder):
        raise ConfigError("autoencoder", type(autoencoder).__name__, "a StackedAutoencoder")
    x = _check_x(x)
    if not isinstance(greedy, bool):
        raise ConfigError("greedy", greedy, "True or False")
    for key in ("loss", "validation_data"):
        if key in fit_kwargs:
            raise ConfigError(key, fit_kwargs[key], "not set: the loss is the reconstruction MSE")
    _warn_if_out_of_range(autoencoder, x)
    if not greedy:
        return [fit(autoencoder, (x, x), epochs=epochs, **fit_kwargs)]
    prefix, blocks = _blocks(autoencoder.encoder)
    decoder = list(autoencoder.decoder)
    dec_blocks: list[list[nn.Module]] = []
    for module in decoder:  # decoder blocks, deepest first
        if isinstance(module, (nn.Linear, TiedLinear)):
            dec_blocks.append([module])
        else:
            dec_blocks[-1].append(module)
    dec_blocks.reverse()
    histories = []
    codes = x
    for j, block in enumerate(blocks):
        front = prefix if j == 0 else []
        stage = nn.Sequential(*front, *block, *dec_blocks[j])
        target = x.flatten(1) if j == 0 else codes
        histories.append(fit(stage, (codes, target), epochs=epochs, **fit_kwargs))
        was = autoencoder.training
        autoencoder.eval()
        with torch.no_grad():
            codes = nn.Sequential(*front, *block)(codes)
        autoencoder.train(was)
    return histories


def classifier_from_encoder(
    encoder: nn.Module, num_classes: int, *, freeze_encoder: bool = False
) -> nn.Sequential:
    """A copy of ``encoder`` topped by a fresh ``Linear`` head of ``num_classes`` outputs.

    Args:
        encoder: a :class:`StackedAutoencoder` (its encoder is used), an encoder
            ``nn.Sequential`` or the lower layers from :func:`pretrain_auxiliary`. Copied:
            training the classifier never changes it.
        num_classes: outputs of the head (classes, or 1 for a binary logit).
        freeze_encoder: freeze the copied encoder layers (train the head only).

    Example:
        >>> clf = classifier_from_encoder(encoder_mlp(4, (3,), seed=0), 2, freeze_encoder=True)
        >>> [n for n, p in clf.named_parameters() if p.requires_grad]
        ['output.weight', 'output.bias']
    """
    body = encoder.encoder if isinstance(encoder, StackedAutoencoder) else encoder
    if not isinstance(body, nn.Module):
        raise ConfigError("encoder", type(encoder).__name__, "an encoder nn.Sequential or a "
                          "StackedAutoencoder")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ConfigError("num_classes", num_classes, "a positive int")
    model = reuse(body, drop_last=0, new_head=num_classes)
    if freeze_encoder:
        freeze(model, slice(0, -1))
    return model


def pretrain_auxiliary(
    model: nn.Module, aux_data: Any, *, drop_last: int = 1, **fit_kwargs: Any
) -> tuple[nn.Sequential, Any]:
    """Train ``model`` on an auxiliary labelled task and return its lower layers.

    Example: train a net to tell whether two images show the same class (labels are cheap to
    make), keep all but its head, and pass them to :func:`classifier_from_encoder`.

    Args:
        model: an ``nn.Sequential``-like network for the auxiliary task (trained in place).
        aux_data: what ``fit`` takes for that task.
        drop_last: top-level layers to drop (its head).
        **fit_kwargs: passed to ``fit``.

    Returns:
        ``(a copy of the lower layers, the auxiliary training History)``.

    Example:
        >>> import torch
        >>> from steadygrad.nn.build import mlp
        >>> x = torch.randn(64, 5); y = (x.sum(1) > 0).long()
        >>> lower, _ = pretrain_auxiliary(mlp(5, (8,), num_outputs=2, seed=0), (x, y),
        ...                               epochs=1, verbose=0)
        >>> list(lower._modules)
        ['dense1', 'act1']
    """
    from steadygrad.train.loop import fit

    if not isinstance(model, nn.Module):
        raise ConfigError("model", type(model).__name__, "a torch.nn.Module")
    n = len(list(model.children()))
    if isinstance(drop_last, bool) or not isinstance(drop_last, int) or not 1 <= drop_last < n:
        raise ConfigError("drop_last", drop_last, f"an int in [1, {n - 1}]")
    history = fit(model, aux_data, **fit_kwargs)
    return reuse(model, drop_last=drop_last), history
