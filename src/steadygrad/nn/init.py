"""Weight initializers with Keras 3 names and semantics, on PyTorch's weight layout.

An initializer is ``fn(tensor, *, generator=None) -> tensor``: it fills ``tensor`` in place
(under ``no_grad``) from torch's RNG, or from ``generator`` for seeded reproducibility, and
returns it. All the fan-based ones are :func:`variance_scaling` (Keras ``VarianceScaling``):

=================  ======  ========  ================  ===================================
name (alias)       scale   mode      distribution      reference
=================  ======  ========  ================  ===================================
glorot_normal      1       fan_avg   truncated_normal  Glorot & Bengio, 2010
glorot_uniform     1       fan_avg   uniform           (alias xavier_*); Keras's default
he_normal          2       fan_in    truncated_normal  He et al., 2015 (alias kaiming_*)
he_uniform         2       fan_in    uniform
lecun_normal       1       fan_in    truncated_normal  LeCun et al., 1998; for SELU
lecun_uniform      1       fan_in    uniform
=================  ======  ========  ================  ===================================

plus ``orthogonal(gain)`` (Saxe et al., 2014), ``zeros``, ``ones``, ``constant(value)`` and
``auto(activation)`` (:func:`auto_initializer`).

Where PyTorch differs (and bites):

- ``torch.nn.init.xavier_normal_``/``kaiming_normal_`` draw from an *untruncated* normal;
  Keras's (and steadygrad's) ``*_normal`` draw from a normal truncated at 2 standard
  deviations whose pre-truncation std is ``sqrt(scale / n) / 0.8796...`` so that the values'
  std is exactly ``sqrt(scale / n)``. Use ``distribution="untruncated_normal"`` for torch's.
- ``nn.Linear``/``nn.Conv*d`` default to ``kaiming_uniform_(a=sqrt(5))``, i.e.
  ``variance_scaling(scale=1/3, mode="fan_in", distribution="uniform")``: a third of LeCun's
  variance, and a non-zero uniform bias. Keras defaults to ``glorot_uniform`` and zero bias.
- Fans are computed for PyTorch's ``(out, in, *kernel)`` layout: ``fan_in = in * receptive``,
  ``fan_out = out * receptive`` (Keras's ``(*kernel, in, out)`` gives the same numbers). For
  ``ConvTranspose``, whose weight is ``(in, out, *kernel)``, this matches both torch and Keras
  (which also treat the *filters* axis as fan-in there).
- ``distribution="normal"`` means *truncated* normal, as in Keras's source.

Example:
    >>> import torch
    >>> w = torch.empty(256, 512)
    >>> _ = he_normal(w, generator=torch.Generator().manual_seed(0))
    >>> round(w.std().item() * 512**0.5 / 2**0.5, 1)  # std = sqrt(2 / fan_in)
    1.0
    >>> get("variance_scaling", scale=2.0, mode="fan_avg", distribution="uniform")
    Initializer('variance_scaling', scale=2.0, mode='fan_avg', distribution='uniform')
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import torch
from torch import Tensor, nn

from steadygrad._registry import Registry
from steadygrad.errors import ConfigError
from steadygrad.nn import activations as _activations
from steadygrad.nn._init_functions import (
    DISTRIBUTIONS,
    MODES,
    check_number,
    check_variance_scaling,
    compute_fans,
    constant,
    glorot_normal,
    glorot_uniform,
    he_normal,
    he_uniform,
    lecun_normal,
    lecun_uniform,
    ones,
    orthogonal,
    variance_scaling,
    zeros,
)

__all__ = [
    "DISTRIBUTIONS",
    "INITIALIZERS",
    "MODES",
    "Initializer",
    "auto",
    "auto_initializer",
    "compute_fans",
    "constant",
    "get",
    "glorot_normal",
    "glorot_uniform",
    "he_normal",
    "he_uniform",
    "initialize_",
    "layer_activations",
    "lecun_normal",
    "lecun_uniform",
    "ones",
    "orthogonal",
    "variance_scaling",
    "zeros",
]

InitFn = Callable[..., Tensor]
ModuleT = TypeVar("ModuleT", bound=nn.Module)

INITIALIZERS: Registry[InitFn] = Registry("initializer")
"""Registry of initializer functions ``fn(tensor, **params, generator=None)``."""

INITIALIZERS.add("variance_scaling", variance_scaling)
INITIALIZERS.add("glorot_normal", glorot_normal, "xavier_normal")
INITIALIZERS.add("glorot_uniform", glorot_uniform, "xavier_uniform")
INITIALIZERS.add("he_normal", he_normal, "kaiming_normal")
INITIALIZERS.add("he_uniform", he_uniform, "kaiming_uniform")
INITIALIZERS.add("lecun_normal", lecun_normal)
INITIALIZERS.add("lecun_uniform", lecun_uniform)
INITIALIZERS.add("orthogonal", orthogonal)
INITIALIZERS.add("zeros", zeros, "zero")
INITIALIZERS.add("ones", ones, "one")
INITIALIZERS.add("constant", constant)

# "auto": which initializer suits each activation. Every registered activation is listed
# (a test checks it), so a new activation cannot silently fall back to Glorot.
_AUTO: dict[str, str] = {
    **dict.fromkeys(
        ("linear", "sigmoid", "tanh", "softmax", "softsign", "hard_sigmoid"), "glorot_uniform"
    ),
    **dict.fromkeys(
        ("relu", "leaky_relu", "rrelu", "prelu", "elu", "gelu", "swish", "mish", "softplus"),
        "he_normal",
    ),
    "selu": "lecun_normal",
}


def auto_initializer(activation: str | nn.Module | None) -> str:
    """The initializer name that ``"auto"`` resolves to for ``activation``.

    Glorot (``glorot_uniform``, Keras's default) for none/linear and the saturating or
    output activations (sigmoid, tanh, softmax, softsign, hard_sigmoid); He (``he_normal``)
    for the ReLU family, ELU, GELU, swish/SiLU, mish and softplus; LeCun (``lecun_normal``)
    for SELU, whose self-normalization assumes it (Géron, *Hands-On ML*, ch. 11, table 11-1).

    Args:
        activation: an activation name or alias, a torch activation module, or None.

    Raises:
        UnknownNameError: unknown activation name.
        ConfigError: a module that is not a known activation.

    Example:
        >>> auto_initializer("ReLU"), auto_initializer("selu"), auto_initializer(None)
        ('he_normal', 'lecun_normal', 'glorot_uniform')
        >>> auto_initializer(torch.nn.SiLU())
        'he_normal'
    """
    if activation is None:
        return "glorot_uniform"
    if isinstance(activation, nn.Module):
        name = _activations.activation_name(activation)
        if name is None:
            raise ConfigError(
                "activation", type(activation).__name__, "a torch activation module or a name",
                hint="pass the activation's name, e.g. activation='relu'",
            )
    elif isinstance(activation, str):
        name = _activations.ACTIVATIONS.canonical(activation)
    else:
        raise ConfigError("activation", activation, "an activation name, module or None")
    return _AUTO.get(name, "glorot_uniform")


@INITIALIZERS.register("auto")
def auto(
    tensor: Tensor,
    activation: str | nn.Module | None = None,
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Initialize with :func:`auto_initializer` ``(activation)``.

    Example:
        >>> w = auto(torch.empty(100, 400), activation="relu")
        >>> round(w.std().item() / (2 / 400) ** 0.5, 1)
        1.0
    """
    return INITIALIZERS.get(auto_initializer(activation))(tensor, generator=generator)


_VALIDATORS: dict[str, Callable[..., object]] = {
    "variance_scaling": lambda scale=1.0, mode="fan_in", distribution="truncated_normal": (
        check_variance_scaling(scale, mode, distribution)
    ),
    "orthogonal": lambda gain=1.0: check_number("gain", gain),
    "constant": lambda value=0.0: check_number("value", value),
    "auto": lambda activation=None: auto_initializer(activation),
}


class Initializer:
    """A registered initializer with its arguments bound: ``init(tensor, *, generator=None)``.

    Built by :func:`get`; ``config`` is the dict that :func:`get` accepts back.

    Example:
        >>> init = get("constant", value=0.5)
        >>> init(torch.empty(2)).tolist(), init.config
        ([0.5, 0.5], {'name': 'constant', 'value': 0.5})
    """

    def __init__(self, name: str, params: Mapping[str, Any] | None = None) -> None:
        self.name = INITIALIZERS.canonical(name)
        self.params = dict(params or {})
        self._fn = INITIALIZERS.get(self.name)

    @property
    def config(self) -> dict[str, Any]:
        """``{"name": ..., **params}``, accepted by :func:`get`."""
        return {"name": self.name, **self.params}

    def __call__(self, tensor: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        return self._fn(tensor, **self.params, generator=generator)

    def __repr__(self) -> str:
        args = "".join(f", {k}={v!r}" for k, v in self.params.items())
        return f"Initializer({self.name!r}{args})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Initializer) and self.config == other.config

    __hash__ = None  # type: ignore[assignment]


def get(identifier: str | Mapping[str, Any] | Callable[..., Tensor], **kwargs: Any) -> InitFn:
    """A ready initializer ``fn(tensor, *, generator=None)`` from a name, dict or callable.

    Arguments are checked here, before any tensor is touched.

    Args:
        identifier: a registered name or alias (case and ``-``/``_`` ignored), a dict
            ``{"name": "variance_scaling", "scale": 2.0, ...}``, or a callable (returned as is).
        **kwargs: the named initializer's arguments (``scale``, ``mode``, ``distribution``,
            ``gain``, ``value``, ``activation``).

    Raises:
        UnknownNameError: unknown name (the message suggests a close match).
        ConfigError: unknown or invalid argument, named in the message.

    Example:
        >>> get("Kaiming-Normal")
        Initializer('he_normal')
        >>> get({"name": "variance_scaling", "scale": 2.0, "mode": "fan_out"})
        Initializer('variance_scaling', scale=2.0, mode='fan_out')
        >>> get("variance_scaling", mode="fan_mean")
        Traceback (most recent call last):
        ...
        steadygrad.errors.ConfigError: mode: got 'fan_mean'; expected one of fan_in, ...
    """
    if isinstance(identifier, Mapping):
        params = dict(identifier)
        if "name" not in params:
            raise ConfigError("initializer", identifier, "a dict with a 'name' key")
        return get(params.pop("name"), **params, **kwargs)
    if isinstance(identifier, str):
        name = INITIALIZERS.canonical(identifier)
        fn = INITIALIZERS.get(name)
        signature = inspect.signature(fn).parameters.values()
        allowed = [p.name for p in signature if p.kind is p.POSITIONAL_OR_KEYWORD][1:]
        for key, value in kwargs.items():
            if key not in allowed:
                expected = f"one of {', '.join(allowed)}" if allowed else f"no arguments for {name}"
                raise ConfigError(f"{name}.{key}", value, expected, hint="remove or rename it")
        if name in _VALIDATORS:
            _VALIDATORS[name](**kwargs)
        return Initializer(name, kwargs)
    if callable(identifier):
        if kwargs:
            raise ConfigError("initializer", kwargs, "no arguments with a callable initializer")
        return identifier
    raise ConfigError(
        "initializer", identifier, f"a name (one of {', '.join(INITIALIZERS.names())}), a dict "
        "or a callable fn(tensor, *, generator=None)",
    )


_WEIGHT_LAYERS: tuple[type[nn.Module], ...] = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
)


def layer_activations(module: nn.Module) -> dict[str, str | None]:
    """The activation that follows each Linear/Conv layer of ``module``, in module order.

    Rule: walk the submodules in registration order (``named_modules``, assumed to be the
    forward order, as in ``nn.Sequential``); a weight layer is followed by the first activation
    module (see :func:`~steadygrad.nn.activations.activation_name`) met before the next weight
    layer, skipping anything else (batch norm, dropout, containers). A layer with none is
    mapped to None (a linear output layer, or an activation applied functionally in
    ``forward`` which no walk can see).

    Example:
        >>> net = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.SELU(), nn.Linear(8, 2))
        >>> layer_activations(net)
        {'0': 'selu', '3': None}
    """
    result: dict[str, str | None] = {}
    pending: str | None = None
    seen: set[int] = set()
    for name, sub in module.named_modules(remove_duplicate=False):
        if isinstance(sub, _WEIGHT_LAYERS):
            if id(sub) in seen:
                continue
            seen.add(id(sub))
            if pending is not None:
                result[pending] = None
            pending = name
        elif pending is not None and (act := _activations.activation_name(sub)) is not None:
            result[pending] = act
            pending = None
    if pending is not None:
        result[pending] = None
    return result


def initialize_(
    module: ModuleT,
    kernel_initializer: str | Mapping[str, Any] | Callable[..., Tensor] | None = "auto",
    bias_initializer: str | Mapping[str, Any] | Callable[..., Tensor] | None = "zeros",
    activation: str | nn.Module | None = None,
    generator: torch.Generator | None = None,
) -> ModuleT:
    """Initialize the weight and bias of every Linear/Conv layer of any module, in place.

    Args:
        module: any ``nn.Module`` (steadygrad-built or not).
        kernel_initializer: initializer identifier for the weights (see :func:`get`); None
            leaves them. ``"auto"`` picks by activation (:func:`auto_initializer`): the one
            given as ``activation`` for every layer, or else per layer the activation module
            that follows it (:func:`layer_activations`), Glorot when there is none.
        bias_initializer: identifier for the biases (Keras default ``"zeros"``); None leaves
            them as they are (PyTorch's default is a small uniform bias).
        activation: force one activation for all layers' ``"auto"`` choice. Leaving it None
            keeps Glorot on a linear output layer.
        generator: torch RNG for reproducible draws; layers are filled in module order.

    Returns:
        ``module``.

    Raises:
        ConfigError: bad identifiers, or a lazy layer whose shape is not known yet; nothing
            is modified in that case.

    Example:
        >>> net = nn.Sequential(nn.Linear(400, 300), nn.ReLU(), nn.Linear(300, 10))
        >>> _ = initialize_(net, generator=torch.Generator().manual_seed(0))
        >>> round(net[0].weight.std().item() / (2 / 400) ** 0.5, 1)  # he_normal before ReLU
        1.0
        >>> net[2].weight.abs().max().item() <= (6 / 310) ** 0.5  # glorot_uniform at the end
        True
    """
    if not isinstance(module, nn.Module):
        raise ConfigError("module", type(module).__name__, "a torch.nn.Module")
    is_auto = isinstance(kernel_initializer, str) and kernel_initializer.strip().lower() == "auto"
    kernel_init = None if kernel_initializer is None or is_auto else get(kernel_initializer)
    bias_init = None if bias_initializer is None else get(bias_initializer)
    forced = auto_initializer(activation) if is_auto and activation is not None else None
    acts = layer_activations(module) if is_auto and forced is None else {}

    plan: list[tuple[Tensor, InitFn]] = []
    for name, layer in module.named_modules():
        if not isinstance(layer, _WEIGHT_LAYERS):
            continue
        weight, bias = layer.weight, layer.bias
        assert isinstance(weight, Tensor) and (bias is None or isinstance(bias, Tensor))
        for pname, param in (("weight", weight), ("bias", bias)):
            if isinstance(param, nn.parameter.UninitializedParameter):
                raise ConfigError(
                    f"{name or 'module'}.{pname}", "uninitialized (lazy) parameter",
                    "a materialized parameter", hint="run one forward pass before initialize_",
                )
        if is_auto:
            init_name = forced or auto_initializer(acts.get(name))
            plan.append((weight, INITIALIZERS.get(init_name)))
        elif kernel_init is not None:
            plan.append((weight, kernel_init))
        if bias_init is not None and bias is not None:
            plan.append((bias, bias_init))
    for tensor, fn in plan:
        fn(tensor, generator=generator)
    return module
