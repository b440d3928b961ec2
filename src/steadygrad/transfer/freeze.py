"""Freeze and unfreeze layers of any model; frozen batch norm stays in inference mode.

Freezing sets ``requires_grad=False`` on every parameter of the selected layers (the trainer
then leaves them out of the optimizer). A frozen batch-norm layer must also stop updating its
running mean and variance and normalize with them instead of with the batch statistics,
otherwise training the new head still changes the reused layers and the features they
compute. Keras 3 does exactly this: a ``BatchNormalization`` layer with ``trainable=False``
runs in inference mode (see the Keras transfer-learning guide).

How: each frozen ``_BatchNorm`` gets a **forward pre-hook** that puts it in eval mode right
before every forward pass, so ``model.train()`` (which every training loop calls) cannot turn
it back on. The choice over overriding ``train`` on the instance: a hook is a plain
module-level function stored in the module's hook dict, so it survives ``copy.deepcopy``,
``torch.save`` of the whole module and ``state_dict`` round trips untouched (a ``state_dict``
has no hooks, so re-freeze after loading weights into a fresh model). ``unfreeze`` removes the
hook. Between a ``model.train()`` call and the next forward, ``bn.training`` reads ``True``;
the hook resets it before the layer computes anything.

Example:
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
    >>> freeze(model, layers=[0, 1])
    >>> [p.requires_grad for p in model.parameters()]
    [False, False, False, False, True, True]
    >>> before = model[1].running_mean.clone()
    >>> _ = model.train()(torch.randn(16, 4))
    >>> torch.equal(model[1].running_mean, before), model[1].training
    (True, False)
    >>> unfreeze(model)
    >>> all(p.requires_grad for p in model.parameters())
    True
"""

from __future__ import annotations

from typing import Any

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from steadygrad.transfer.layer_select import LayerSelector, select_layers

__all__ = ["freeze", "frozen_parameter_names", "is_frozen_batch_norm", "unfreeze"]


def _keep_eval(module: nn.Module, args: Any) -> None:
    """Forward pre-hook of a frozen batch-norm layer: run it in inference mode."""
    if module.training:
        module.eval()


def is_frozen_batch_norm(module: nn.Module) -> bool:
    """True when ``module`` is a batch-norm layer frozen by :func:`freeze`.

    >>> from torch import nn
    >>> bn = nn.BatchNorm1d(3)
    >>> freeze(bn); is_frozen_batch_norm(bn)
    True
    """
    return isinstance(module, _BatchNorm) and any(
        hook is _keep_eval for hook in module._forward_pre_hooks.values()
    )


def _targets(model: nn.Module, layers: LayerSelector | None) -> list[nn.Module]:
    if layers is None:
        if not isinstance(model, nn.Module):
            select_layers(model, 0)  # raises the ConfigError for a non-module
        return [model]
    return [module for _, module in select_layers(model, layers)]


def freeze(model: nn.Module, layers: LayerSelector | None = None) -> None:
    """Freeze ``layers`` of ``model`` (all of it when None), in place.

    Every parameter under a selected layer gets ``requires_grad=False``; every batch-norm
    layer under it is kept in inference mode (running statistics used, not updated) even when
    ``model.train()`` is called. Freezing twice is harmless.

    Args:
        model: any ``nn.Module`` (``nn.Sequential`` or a model with named submodules).
        layers: an index, a qualified name, a glob pattern (``"dense*"``), a slice or a list
            of them (see :func:`~steadygrad.transfer.layer_select.select_layers`); None: everything.

    Raises:
        ConfigError: a selector that picks nothing or does not exist.

    Example:
        >>> from torch import nn
        >>> from collections import OrderedDict
        >>> net = nn.Sequential(OrderedDict(dense1=nn.Linear(2, 3), dense2=nn.Linear(3, 3),
        ...                                 output=nn.Linear(3, 1)))
        >>> freeze(net, "dense*")
        >>> frozen_parameter_names(net)
        ['dense1.weight', 'dense1.bias', 'dense2.weight', 'dense2.bias']
    """
    for target in _targets(model, layers):
        for param in target.parameters():
            param.requires_grad_(False)
        for module in target.modules():
            if isinstance(module, _BatchNorm) and not is_frozen_batch_norm(module):
                module.register_forward_pre_hook(_keep_eval)
                module.eval()


def unfreeze(model: nn.Module, layers: LayerSelector | None = None) -> None:
    """Undo :func:`freeze` on ``layers`` (all of ``model`` when None), in place.

    Parameters become trainable again; batch-norm layers lose their inference-mode hook and
    take the mode of ``model`` (``model.training``).

    Example:
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.Linear(3, 1))
        >>> freeze(net); unfreeze(net, [0, 1])
        >>> frozen_parameter_names(net), is_frozen_batch_norm(net[1])
        (['2.weight', '2.bias'], False)
    """
    for target in _targets(model, layers):
        for param in target.parameters():
            param.requires_grad_(True)
        for module in target.modules():
            if isinstance(module, _BatchNorm):
                hooks = module._forward_pre_hooks
                for key in [k for k, hook in hooks.items() if hook is _keep_eval]:
                    del hooks[key]
                module.train(model.training)


def frozen_parameter_names(model: nn.Module) -> list[str]:
    """Qualified names of the parameters of ``model`` that do not require gradients.

    >>> from torch import nn
    >>> frozen_parameter_names(nn.Linear(2, 2))
    []
    """
    return [name for name, p in model.named_parameters() if not p.requires_grad]
