"""Structural rewrites: insert normalization, post-LN -> pre-LN transformers, alpha dropout.

Example:
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> r = insert_norm(net)
    >>> r.module[0], [n for n, _ in r.module.named_parameters()]
    (Sequential(
      (0): Linear(in_features=4, out_features=8, bias=False)
      (1): BatchNorm1d(8, eps=1e-05, momentum=0.1, affine=True, ...)
    ), ['0.0.weight', '0.1.weight', '0.1.bias', '2.weight', '2.bias'])
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from steadygrad.errors import ConfigError
from steadygrad.nn import activations as _acts
from steadygrad.nn.rewrite._core import Change, Rewritten, copy_model, replace_modules

__all__ = ["alpha_dropout", "insert_norm", "pre_ln"]

_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
_OWN_NORMS = (nn.MultiheadAttention, nn.TransformerEncoderLayer, nn.TransformerDecoderLayer)


def _targets(model: nn.Module) -> tuple[list[tuple[str, nn.Module]], list[str]]:
    """Linear/Conv layers in module order (first path each), minus those inside attention or
    transformer layers (they have their own norms) and minus the last (the output layer)."""
    inside: list[str] = [name for name, m in model.named_modules() if isinstance(m, _OWN_NORMS)]
    layers: list[tuple[str, nn.Module]] = []
    seen: set[int] = set()
    for name, sub in model.named_modules(remove_duplicate=False):
        if not isinstance(sub, _LAYERS) or id(sub) in seen:
            continue
        seen.add(id(sub))
        if any(name.startswith(p + ".") for p in inside):
            continue
        layers.append((name, sub))
    return layers[:-1], [name for name, _ in layers[-1:]]


def _following(model: nn.Module) -> dict[int, list[tuple[str, nn.Module]]]:
    """For each Linear/Conv layer (by id): the activation modules that follow it in module order
    (one per place the layer is used, as in :func:`steadygrad.nn.init.layer_activations`)."""
    out: dict[int, list[tuple[str, nn.Module]]] = {}
    pending: nn.Module | None = None
    for name, sub in model.named_modules(remove_duplicate=False):
        if isinstance(sub, _LAYERS):
            pending = sub
        elif pending is not None and _acts.activation_name(sub) is not None:
            out.setdefault(id(pending), []).append((name, sub))
            pending = None
    return out


def _norm(kind: str, layer: nn.Module) -> nn.Module:
    if isinstance(layer, nn.Linear):
        width = layer.out_features
        norm: nn.Module = nn.BatchNorm1d(width) if kind == "batch" else nn.LayerNorm(width)
    else:
        assert isinstance(layer, (nn.Conv1d, nn.Conv2d, nn.Conv3d))
        width, dims = layer.out_channels, len(layer.kernel_size)
        norms = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
        norm = norms[dims](width) if kind == "batch" else nn.GroupNorm(1, width)
    weight = getattr(layer, "weight", None)
    if isinstance(weight, torch.Tensor):
        norm = norm.to(device=weight.device, dtype=weight.dtype)
    return norm


def _probe(model: nn.Module, example_input: Any) -> tuple[dict[int, int], dict[int, int]]:
    """On ``example_input`` (one eval-mode forward): the rank of each Linear/Conv layer's
    output, and how many times each activation module is called."""
    ranks: dict[int, int] = {}
    calls: dict[int, int] = {}

    def hook(mod: nn.Module, _inp: Any, out: Any) -> None:
        if isinstance(mod, _LAYERS):
            ranks.setdefault(id(mod), out.dim())
        else:
            calls[id(mod)] = calls.get(id(mod), 0) + 1

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, _LAYERS) or _acts.activation_name(m) is not None]
    was = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(example_input)
    finally:
        model.train(was)
        for h in handles:
            h.remove()
    return ranks, calls


def insert_norm(model: nn.Module, kind: str = "batch", position: str = "before",
                example_input: Any = None) -> Rewritten:
    """Insert batch or layer normalization after every hidden Linear/Conv layer.

    ``position="before"`` puts the norm between the layer and its activation (Ioffe & Szegedy
    2015): the layer is replaced by ``nn.Sequential(layer, norm)``, and for batch norm the
    layer's bias is dropped, because batch norm subtracts the per-channel batch mean and a
    constant per-channel bias cancels (BN's own shift takes its role). ``position="after"``
    replaces the activation module that follows the layer by ``nn.Sequential(act, norm)`` and
    keeps the bias. Batch norm is ``BatchNorm1d/2d/3d``; layer norm is ``LayerNorm`` after a
    Linear and ``GroupNorm(1, C)`` (normalization over channels and positions) after a Conv.

    The last Linear/Conv (the output layer) and layers inside attention/transformer layers
    (which have their own norms) are left alone. Parameter names of a wrapped layer gain a
    ``.0`` (``fc1.weight`` -> ``fc1.0.weight``); the norm's are ``fc1.1.*``.

    Args:
        model: any ``nn.Module`` (not modified).
        kind: ``"batch"`` or ``"layer"``.
        position: ``"before"`` or ``"after"`` the activation.
        example_input: a batch the model accepts; when given, a Linear layer whose output is
            not 2-D (tokens, time steps) gets no batch norm (``BatchNorm1d`` would normalize the
            wrong axis) and is reported as not rewritable, and an activation module called more
            than once in ``forward`` counts as shared (without it, sharing is only seen when
            the module is registered at several places).

    Returns:
        :class:`Rewritten`; ``not_rewritable`` lists the layers that got no norm and why.

    Example:
        >>> insert_norm(nn.Linear(2, 2), kind="group")
        Traceback (most recent call last):
        ...
        steadygrad.errors.ConfigError: kind: got 'group'; expected 'batch' or 'layer'
    """
    if kind not in ("batch", "layer"):
        raise ConfigError("kind", kind, "'batch' or 'layer'")
    if position not in ("before", "after"):
        raise ConfigError("position", position, "'before' or 'after'")
    out = copy_model(model)
    ranks, calls = _probe(out, example_input) if example_input is not None else ({}, {})
    targets, _last = _targets(out)
    following = _following(out)
    users: dict[int, int] = dict(calls)
    for acts in following.values():
        for _, act in acts:
            users[id(act)] = users.get(id(act), 0) + 1
    mapping: dict[int, nn.Module] = {}
    changes: list[Change] = []
    skipped: list[str] = []
    for name, layer in targets:
        rank = ranks.get(id(layer))
        if kind == "batch" and isinstance(layer, nn.Linear) and rank not in (None, 2):
            skipped.append(f"{name}: output of rank {rank} (BatchNorm1d would normalize axis 1, "
                           "not the features); use kind='layer'")
            continue
        norm = _norm(kind, layer)
        if position == "before":
            new = copy_model(layer)
            dropped = kind == "batch" and getattr(new, "bias", None) is not None
            if dropped:
                new.register_parameter("bias", None)
            mapping[id(layer)] = nn.Sequential(new, norm)
            changes.append(Change(name, repr(layer), f"Sequential({new!r}, {norm!r})"
                                  + (" (bias dropped: batch norm cancels it)" if dropped else "")))
            continue
        acts = following.get(id(layer), [])
        if not acts:
            skipped.append(f"{name}: no activation module follows it (functional or none); use "
                           "position='before'")
            continue
        act_path, act = acts[0]
        if users.get(id(act), 0) > 1 or len(acts) > 1:
            skipped.append(f"{name}: its activation module '{act_path}' is shared with other "
                           "layers, so a norm after it would be shared too; use "
                           "position='before'")
            continue
        mapping[id(act)] = nn.Sequential(act, norm)
        changes.append(Change(act_path, repr(act), f"Sequential({act!r}, {norm!r}) "
                              f"(after the activation of {name})"))
    replace_modules(out, mapping)
    spec = {"name": "insert_norm", "kind": kind, "position": position}
    return Rewritten(out, spec, tuple(changes), tuple(skipped))


def pre_ln(model: nn.Module) -> Rewritten:
    """Switch post-LN transformer layers to pre-LN (Xiong et al. 2020, arXiv:2002.04745).

    Every ``nn.TransformerEncoderLayer``/``nn.TransformerDecoderLayer`` with
    ``norm_first=False`` gets ``norm_first=True`` (same parameters: the norms move in front of
    the sub-layers, ``x + f(LN(x))``). An ``nn.TransformerEncoder``/``Decoder`` stack of such
    layers without a final ``norm`` gets a ``LayerNorm(d_model)``, since a pre-LN stack's output
    is no longer normalized. A user-written block (a module holding an ``nn.MultiheadAttention``
    and ``nn.LayerNorm`` that is not a torch transformer layer) cannot be rewritten, its order
    lives in its ``forward``, and is reported. steadygrad's own
    :class:`~steadygrad.nn.transformer.EncoderBlock` (``[model] arch = "transformer"``) is
    switched the same way; an ``nn.Sequential`` of such blocks without a ``norm`` child gets
    ``norm = LayerNorm(d_model)`` right after its last block, which is what
    :func:`steadygrad.nn.transformer` builds for ``norm_first=True``.

    Example:
        >>> enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16), 2,
        ...                             enable_nested_tensor=False)
        >>> r = pre_ln(enc)
        >>> [layer.norm_first for layer in r.module.layers], r.module.norm, enc.norm
        ([True, True], LayerNorm((8,), eps=1e-05, ...), None)
    """
    from steadygrad.nn.transformer import EncoderBlock

    out = copy_model(model)
    layer_types = (nn.TransformerEncoderLayer, nn.TransformerDecoderLayer, EncoderBlock)
    changes: list[Change] = []
    skipped: list[str] = []
    switched: set[int] = set()
    for name, sub in out.named_modules():
        if isinstance(sub, layer_types) and not sub.norm_first:
            sub.norm_first = True
            switched.add(id(sub))
            changes.append(Change(name, "norm_first=False (post-LN)", "norm_first=True (pre-LN)"))
    for name, sub in list(out.named_modules()):
        if isinstance(sub, nn.Sequential) and "norm" not in sub._modules:
            norm = _final_norm(sub, switched)
            if norm is not None:
                changes.append(Change(f"{name}.norm" if name else "norm", "None", repr(norm)))
    for name, sub in out.named_modules():
        if isinstance(sub, (nn.TransformerEncoder, nn.TransformerDecoder)) and sub.norm is None \
                and any(id(layer) in switched for layer in sub.layers):
            first = sub.layers[0]
            d_model, eps = first.norm1.normalized_shape, first.norm1.eps
            norm = nn.LayerNorm(d_model, eps=eps).to(first.norm1.weight.device)
            sub.norm = norm
            changes.append(Change(f"{name}.norm" if name else "norm", "None", repr(norm)))
        elif not isinstance(sub, (*layer_types, nn.MultiheadAttention)) and any(
                isinstance(c, nn.MultiheadAttention) for c in sub.children()) and any(
                isinstance(c, nn.LayerNorm) for c in sub.children()):
            skipped.append(f"{name or type(sub).__name__} ({type(sub).__name__}): a user-written "
                           "attention block; move its norms in front of the sub-layers in "
                           "forward (x = x + attn(ln(x)))")
    return Rewritten(out, {"name": "pre_ln"}, tuple(changes), tuple(skipped))


def _final_norm(seq: nn.Sequential, switched: set[int]) -> nn.Module | None:
    """Insert ``norm = LayerNorm(d_model)`` after the last switched
    :class:`~steadygrad.nn.transformer.EncoderBlock` child of ``seq`` (in place); the norm,
    or None when ``seq`` has no such child."""
    from steadygrad.nn.transformer import EncoderBlock

    items = list(seq._modules.items())
    last = max((i for i, (_, child) in enumerate(items)
                if isinstance(child, EncoderBlock) and id(child) in switched), default=None)
    if last is None:
        return None
    block = items[last][1]
    assert isinstance(block, EncoderBlock)
    first = block.norm1
    norm = nn.LayerNorm(first.normalized_shape, eps=first.eps).to(first.weight.device)
    items.insert(last + 1, ("norm", norm))
    seq._modules.clear()
    seq._modules.update(items)
    return norm


def alpha_dropout(model: nn.Module) -> Rewritten:
    """Replace every ``nn.Dropout`` by ``nn.AlphaDropout`` with the same rate (for SELU nets).

    Plain dropout zeroes units, which moves a SELU layer off its mean-0/variance-1 fixed
    point; alpha dropout sets them to SELU's negative saturation and rescales, keeping both
    (Klambauer et al. 2017, arXiv:1706.02515). steadygrad's ``MCDropout`` becomes
    ``MCAlphaDropout``. Dropout called as ``F.dropout`` in ``forward`` is reported.

    Example:
        >>> net = nn.Sequential(nn.Linear(4, 4), nn.SELU(), nn.Dropout(0.1), nn.Linear(4, 2))
        >>> alpha_dropout(net).module[2]
        AlphaDropout(p=0.1, inplace=False)
    """
    import inspect
    import re

    from steadygrad.nn.layers import MCAlphaDropout, MCDropout

    out = copy_model(model)
    mapping: dict[int, nn.Module] = {}
    before: dict[int, str] = {}
    for sub in out.modules():
        if isinstance(sub, nn.Dropout) and id(sub) not in mapping:
            new = MCAlphaDropout(sub.p) if isinstance(sub, MCDropout) else nn.AlphaDropout(sub.p)
            mapping[id(sub)] = new
            before[id(new)] = repr(sub)
    paths = replace_modules(out, mapping)
    by_path = dict(out.named_modules(remove_duplicate=False))
    changes = [Change(p, before[id(by_path[p])], repr(by_path[p])) for p in paths]
    skipped = []
    for cls in {type(m) for m in out.modules() if not type(m).__module__.startswith("torch")}:
        try:
            src = inspect.getsource(cls.forward)
        except (OSError, TypeError):
            continue
        if re.search(r"\b(F|functional)\.dropout\(", src):
            skipped.append(f"{cls.__name__}.forward: F.dropout")
    return Rewritten(out, {"name": "alpha_dropout"}, tuple(changes), tuple(sorted(skipped)))
