"""Re-draw the weights of any model with the initializer matched to each layer's activation.

Keras semantics of :func:`steadygrad.nn.init.auto_initializer`: He (``he_normal``) before the
ReLU family/ELU/GELU/swish, LeCun (``lecun_normal``) before SELU, Glorot (``glorot_uniform``)
before sigmoid/tanh and where no activation module follows (a linear output layer, or an
activation applied as a function). Recurrent layers get Keras's recurrent defaults:
``glorot_uniform`` input kernels, ``orthogonal`` recurrent kernels, zero biases and, for an
LSTM, a forget-gate bias of 1 (``unit_forget_bias=True``; torch's gate order is i, f, g, o and
its two bias vectors add up, so 1 goes into ``bias_ih``'s forget slice).

Example:
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(400, 300), nn.ReLU(), nn.Linear(300, 10))
    >>> r = reinit(net, seed=0)
    >>> round(r.module[0].weight.std().item() / (2 / 400) ** 0.5, 1), r.changes[0].after
    (1.0, 'weight he_normal (followed by relu), bias zeros')
"""

from __future__ import annotations

import torch
from torch import nn

from steadygrad.nn import init as _init
from steadygrad.nn.rewrite._core import Change, Rewritten, copy_model

__all__ = ["reinit"]


def _describe(layer: nn.Module) -> str:
    w = getattr(layer, "weight", None)
    if isinstance(w, torch.Tensor) and not isinstance(w, nn.parameter.UninitializedParameter):
        return f"weight std {w.detach().float().std().item():.3g}"
    return "weights as built"


def _recurrent(layer: nn.RNNBase, generator: torch.Generator) -> str:
    hidden = layer.hidden_size
    with torch.no_grad():
        for name, param in layer.named_parameters():
            if name.startswith("weight_ih"):
                _init.INITIALIZERS.get("glorot_uniform")(param, generator=generator)
            elif name.startswith("weight_hh"):
                _init.INITIALIZERS.get("orthogonal")(param, generator=generator)
            elif name.startswith("weight_hr"):
                _init.INITIALIZERS.get("glorot_uniform")(param, generator=generator)
            elif name.startswith("bias"):
                param.zero_()
                if isinstance(layer, nn.LSTM) and name.startswith("bias_ih"):
                    param[hidden:2 * hidden] = 1.0
    forget = ", forget bias 1" if isinstance(layer, nn.LSTM) else ""
    return f"weight_ih glorot_uniform, weight_hh orthogonal, biases zeros{forget}"


def reinit(model: nn.Module, *, activation: str | None = None, seed: int = 0,
           bias: str = "zeros") -> Rewritten:
    """A copy of ``model`` with every Linear/Conv/RNN layer re-drawn by the matched initializer.

    Args:
        model: any ``nn.Module`` (not modified).
        activation: force one activation's initializer for every Linear/Conv layer (e.g.
            ``"relu"`` when the net applies ``F.relu`` in ``forward``); None matches each
            layer to the activation module that follows it
            (:func:`steadygrad.nn.init.layer_activations`).
        seed: seed of the draws (layers are filled in module order).
        bias: initializer of the Linear/Conv biases (Keras default ``"zeros"``).

    Returns:
        :class:`Rewritten`; functional activations are listed in ``not_rewritable`` when
        ``activation`` is None (the layers before them get Glorot).

    Example:
        >>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.SELU(), nn.Flatten(), nn.LazyLinear(2))
        >>> reinit(net)
        Traceback (most recent call last):
        ...
        steadygrad.errors.ConfigError: 3.weight: got 'uninitialized (lazy) parameter'; ...
    """
    from steadygrad.nn.rewrite.activation import functional_activations

    out = copy_model(model)
    generator = torch.Generator().manual_seed(int(seed))
    acts = _init.layer_activations(out) if activation is None else {}
    before = {name: _describe(layer) for name, layer in out.named_modules()}
    _init.initialize_(out, "auto", bias, activation, generator)
    changes = []
    for name, layer in out.named_modules():
        if isinstance(layer, _init._WEIGHT_LAYERS):
            follows = activation if activation is not None else acts.get(name)
            chosen = _init.auto_initializer(follows)
            text = f"weight {chosen} (followed by {follows or 'no activation module'})"
            if getattr(layer, "bias", None) is not None:
                text += f", bias {bias}"
            changes.append(Change(name, before[name], text))
        elif isinstance(layer, nn.RNNBase):
            changes.append(Change(name, before[name], _recurrent(layer, generator)))
    skipped: tuple[str, ...] = ()
    if activation is None:
        skipped = tuple(f"{f}: the layer before it gets glorot_uniform (pass activation= to "
                        "force one)" for f in functional_activations(out))
    spec = {"name": "reinit", "activation": activation, "seed": int(seed), "bias": bias}
    return Rewritten(out, spec, tuple(changes), skipped)
