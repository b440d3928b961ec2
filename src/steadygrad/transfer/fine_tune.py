"""The two-phase transfer-learning recipe as one call: train the head frozen, then fine-tune.

Phase 1 trains only the new head for ``head_epochs`` epochs with the reused layers frozen (a
randomly initialized head would otherwise send large gradients into them and wreck the
reused features). Phase 2 unfreezes those layers and trains everything for ``epochs`` more
epochs at ``learning_rate * unfreeze_lr_factor``, a lower rate that avoids damaging the
reused weights (Géron, *Hands-On ML*, ch. 11; the Keras transfer-learning guide).

Frozen batch-norm layers run in inference mode during phase 1 (see
:mod:`steadygrad.transfer.freeze`); in phase 2 they train normally again.

Example:
    >>> import torch
    >>> from steadygrad.nn.build import mlp
    >>> from steadygrad.transfer.reuse import reuse
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> x = torch.randn(128, 6); y = (x[:, 0] > 0).long()
    >>> model = reuse(mlp(6, (16,), num_outputs=4, seed=0), drop_last=1, new_head=2)
    >>> result = fine_tune(model, (x, y), head_epochs=1, epochs=2, learning_rate=0.01,
    ...                    seed=0, verbose=0)
    >>> len(result.head_history["loss"]), len(result.full_history["loss"])
    (1, 2)
    >>> result.frozen
    ['dense1', 'act1']
    >>> round(result.full_history["lr"][-1], 6)  # 0.01 * unfreeze_lr_factor 0.1
    0.001
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from steadygrad.errors import ConfigError
from steadygrad.transfer.freeze import freeze, is_frozen_batch_norm, unfreeze
from steadygrad.transfer.layer_select import LayerSelector, select_layers

__all__ = ["FINE_TUNE_KEYS", "FineTuneResult", "fine_tune", "fine_tune_from_spec"]

FINE_TUNE_KEYS: tuple[str, ...] = (
    "frozen", "head_epochs", "epochs", "learning_rate", "unfreeze_lr_factor", "optimizer",
)
"""Keys of a fine-tuning spec understood by :func:`fine_tune` itself (others go to ``fit``)."""


@dataclass
class FineTuneResult:
    """What :func:`fine_tune` did.

    Attributes:
        head_history: the ``History`` of phase 1 (head only, reused layers frozen).
        full_history: the ``History`` of phase 2 (everything trainable, lower rate).
        frozen: qualified names of the layers frozen in phase 1.
        learning_rates: ``(phase 1 rate, phase 2 rate)``.

    Example:
        >>> from torch import nn
        >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        >>> x = torch.randn(32, 4); y = (x[:, 0] > 0).long()
        >>> result = fine_tune(model, (x, y), head_epochs=1, epochs=1, learning_rate=0.01,
        ...                    unfreeze_lr_factor=0.5, seed=0, verbose=0)
        >>> result.frozen, result.learning_rates
        (['0', '1'], (0.01, 0.005))
        >>> result.head_history["lr"], result.full_history["lr"]
        ([0.01], [0.005])
    """

    head_history: Any
    full_history: Any
    frozen: list[str]
    learning_rates: tuple[float, float]


def _check_epochs(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(name, value, f"an int >= {low}")
    return value


def _base_lr(optimizer: Any, learning_rate: float | None) -> tuple[Any, float]:
    """``(optimizer spec without learning_rate, base learning rate)``."""
    if isinstance(optimizer, torch.optim.Optimizer):
        raise ConfigError(
            "optimizer", type(optimizer).__name__, "an optimizer name or a dict {'name': ...}",
            hint="the two phases each build a fresh optimizer; pass it by name",
        )
    spec_lr = None
    if isinstance(optimizer, Mapping):
        spec = dict(optimizer)
        spec_lr = spec.pop("learning_rate", None)
        optimizer = spec
    elif not isinstance(optimizer, str):
        raise ConfigError("optimizer", optimizer, "an optimizer name or a dict {'name': ...}")
    if spec_lr is not None and learning_rate is not None and spec_lr != learning_rate:
        raise ConfigError("learning_rate", learning_rate, f"the same value as "
                          f"optimizer['learning_rate'] ({spec_lr})", hint="give it in one place")
    lr = learning_rate if learning_rate is not None else spec_lr
    if lr is None:
        raise ConfigError("learning_rate", None, "a positive float",
                          hint="the phase-2 rate is learning_rate * unfreeze_lr_factor")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not (
        math.isfinite(lr) and lr > 0
    ):
        raise ConfigError("learning_rate", lr, "a positive finite float")
    return optimizer, float(lr)


def fine_tune(
    model: nn.Module,
    data: Any,
    *,
    frozen: LayerSelector | None = None,
    head_epochs: int = 4,
    epochs: int = 16,
    learning_rate: float | None = 1e-3,
    unfreeze_lr_factor: float = 0.1,
    optimizer: str | Mapping[str, Any] = "adam",
    **fit_kwargs: Any,
) -> FineTuneResult:
    """Train ``model``'s head with the reused layers frozen, then fine-tune everything.

    Args:
        model: the transferred model (e.g. from :func:`~steadygrad.transfer.reuse.reuse`),
            trained in place.
        data: what :func:`steadygrad.train.loop.fit` takes (a Dataset or ``(x, y)``).
        frozen: the reused layers to freeze in phase 1 (selector: index, name, glob, slice or
            list); None: every top-level layer but the last (the head).
        head_epochs: phase-1 epochs (book: 4).
        epochs: phase-2 epochs, after unfreezing (book: 16).
        learning_rate: phase-1 rate (None: take it from ``optimizer["learning_rate"]``).
        unfreeze_lr_factor: phase-2 rate = ``learning_rate * unfreeze_lr_factor``, in (0, 1].
        optimizer: a name or a Keras-style dict (``{"name": "sgd", "momentum": 0.9}``); a
            fresh optimizer is built for each phase.
        **fit_kwargs: passed to both ``fit`` calls (``batch_size``, ``seed``, ``verbose``,
            ``validation_data``, ``callbacks``, ...).

    Returns:
        A :class:`FineTuneResult` with both histories. Layers that were already frozen
        before the call and are not in ``frozen`` stay frozen.

    Raises:
        ConfigError: invalid arguments (checked before any training).

    Example:
        >>> from torch import nn
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        >>> x = torch.randn(64, 4); y = (x[:, 0] > 0).long()
        >>> reused, head = model[0].weight.detach().clone(), model[2].weight.detach().clone()
        >>> _ = fine_tune(model, (x, y), head_epochs=1, epochs=0, learning_rate=0.01,
        ...               seed=0, verbose=0)
        >>> torch.equal(model[0].weight, reused), torch.equal(model[2].weight, head)
        (True, False)
        >>> result = fine_tune(model, (x, y), head_epochs=0, epochs=1, learning_rate=0.01,
        ...                    seed=0, verbose=0)  # phase 2 trains the reused layer too
        >>> torch.equal(model[0].weight, reused), all(p.requires_grad for p in model.parameters())
        (False, True)
        >>> fine_tune(model, (x, y), unfreeze_lr_factor=2.0)
        Traceback (most recent call last):
        ...
        steadygrad.errors.ConfigError: unfreeze_lr_factor: got 2.0; expected a float in (0, 1]; ...
    """
    from steadygrad.train.loop import fit

    if not isinstance(model, nn.Module):
        raise ConfigError("model", type(model).__name__, "a torch.nn.Module")
    _check_epochs("head_epochs", head_epochs, 0)
    _check_epochs("epochs", epochs, 0)
    if head_epochs + epochs == 0:
        raise ConfigError("epochs", epochs, "head_epochs + epochs >= 1")
    if (
        isinstance(unfreeze_lr_factor, bool)
        or not isinstance(unfreeze_lr_factor, (int, float))
        or not 0 < unfreeze_lr_factor <= 1
    ):
        raise ConfigError("unfreeze_lr_factor", unfreeze_lr_factor, "a float in (0, 1]",
                          hint="0.1 lowers the rate tenfold for fine-tuning")
    opt_spec, lr = _base_lr(optimizer, learning_rate)
    if frozen is None:
        n = len(list(model.children()))
        if n < 2:
            raise ConfigError("frozen", None, "a layer selector when the model has fewer than "
                              "two top-level layers", hint="e.g. frozen='dense*'")
        frozen = slice(0, -1)
    selected = select_layers(model, frozen, path="frozen")
    names = [name for name, _ in selected]
    already = {id(p) for p in model.parameters() if not p.requires_grad}
    already_bn = [m for m in model.modules() if is_frozen_batch_norm(m)]
    fine_lr = lr * float(unfreeze_lr_factor)

    head_history = None
    if head_epochs:
        freeze(model, names)
        if not any(p.requires_grad for p in model.parameters()):
            unfreeze(model, names)
            raise ConfigError("frozen", frozen, "a selection that leaves the head trainable",
                              hint="freeze the reused layers only")
        try:
            head_history = fit(model, data, epochs=head_epochs, optimizer=opt_spec,
                               learning_rate=lr, **fit_kwargs)
        finally:
            unfreeze(model, names)
            for p in model.parameters():  # keep what the user had frozen before the call
                if id(p) in already:
                    p.requires_grad_(False)
            for bn in already_bn:
                freeze(bn)
    full_history = None
    if epochs:
        full_history = fit(model, data, epochs=epochs, optimizer=opt_spec,
                           learning_rate=fine_lr, **fit_kwargs)
    return FineTuneResult(head_history, full_history, names, (lr, fine_lr))


def fine_tune_from_spec(model: nn.Module, data: Any, spec: Mapping[str, Any]) -> FineTuneResult:
    """:func:`fine_tune` driven by a config-friendly dict (from TOML/YAML).

    Keys: ``frozen`` (a name, glob, index or list of them; a ``"start:stop"`` string is a
    slice, e.g. ``":-1"`` = all but the head), ``head_epochs``, ``epochs``,
    ``learning_rate``, ``unfreeze_lr_factor``, ``optimizer``, and any ``fit`` argument
    (``batch_size``, ``seed``, ``verbose``, ...).

    Raises:
        ConfigError: ``spec`` is not a mapping or has a misspelled key (with a close match).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2))
        >>> x = torch.randn(32, 3); y = (x[:, 0] > 0).long()
        >>> spec = {"frozen": ":-1", "head_epochs": 1, "epochs": 1, "learning_rate": 0.01,
        ...         "optimizer": {"name": "sgd", "momentum": 0.9}, "verbose": 0, "seed": 0}
        >>> fine_tune_from_spec(model, (x, y), spec).frozen
        ['0', '1']
        >>> fine_tune_from_spec(model, (x, y), {"head_epoch": 1})
        Traceback (most recent call last):
        ...
        steadygrad.errors.ConfigError: fine_tune.head_epoch: got 1; expected a key among ...
    """
    import inspect

    from steadygrad.train.loop import fit

    if not isinstance(spec, Mapping):
        raise ConfigError("fine_tune", spec, "a mapping of fine-tuning settings")
    fit_keys = [k for k in inspect.signature(fit).parameters if k not in ("model", "data")]
    allowed = [*FINE_TUNE_KEYS, *(k for k in fit_keys if k not in FINE_TUNE_KEYS)]
    kwargs = dict(spec)
    for key in kwargs:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            raise ConfigError(
                f"fine_tune.{key}", kwargs[key], f"a key among {', '.join(allowed)}",
                hint=f"did you mean {close[0]!r}?" if close else None,
            )
    frozen = kwargs.get("frozen")
    if isinstance(frozen, str) and ":" in frozen:
        kwargs["frozen"] = _parse_slice(frozen)
    elif isinstance(frozen, list):
        kwargs["frozen"] = [_parse_slice(f) if isinstance(f, str) and ":" in f else f
                            for f in frozen]
    return fine_tune(model, data, **kwargs)


def _parse_slice(text: str) -> slice:
    parts = text.split(":")
    try:
        if len(parts) != 2:
            raise ValueError(text)
        start, stop = (int(p) if p.strip() else None for p in parts)
    except ValueError:
        raise ConfigError("fine_tune.frozen", text, "'start:stop' with int bounds, e.g. ':-1'") \
            from None
    return slice(start, stop)
