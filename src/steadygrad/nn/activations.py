"""Activation functions as torch-native modules, by Keras name.

Every registered name builds a plain ``torch.nn`` module (``nn.ReLU``, ``nn.LeakyReLU``,
``nn.SiLU``, ...), so a model built from these names is an ordinary PyTorch model and
:func:`activation_name` recognises the same modules in models steadygrad did not build.

Defaults follow Keras 3 where Keras has the function, and the places where Keras and PyTorch
disagree are stated per function:

===============  ===============================  =============================================
name (aliases)   module                           default / difference
===============  ===============================  =============================================
linear           ``nn.Identity``                  alias ``identity``; ``get(None)`` too
sigmoid          ``nn.Sigmoid``                   alias ``logistic``
tanh             ``nn.Tanh``
relu             ``nn.ReLU``
leaky_relu       ``nn.LeakyReLU``                 ``alpha=0.2`` (Keras function 0.2, Keras
                                                  layer 0.3, PyTorch 0.01; see below)
rrelu            ``nn.RReLU``                     slope ~ U(1/8, 1/3) in training, mean in eval
prelu            ``nn.PReLU``                     alpha starts at 0 (Keras), not 0.25 (PyTorch)
elu              ``nn.ELU``                       ``alpha=1.0``
selu             ``nn.SELU``                      pair with ``lecun_normal``
gelu             ``nn.GELU``                      exact erf form (Keras ``approximate=False``)
swish (silu)     ``nn.SiLU``                      ``x * sigmoid(x)``
mish             ``nn.Mish``                      ``x * tanh(softplus(x))``
softplus         ``nn.Softplus``                  ``log(1 + exp(x))``
softsign         ``nn.Softsign``                  ``x / (1 + |x|)``
hard_sigmoid     ``nn.Hardsigmoid``               Keras 3: ``relu6(x + 3) / 6`` (Keras 2 used
                                                  ``0.2 x + 0.5``)
softmax          ``nn.Softmax(dim=-1)``           Keras ``axis=-1``
===============  ===============================  =============================================

Example:
    >>> import torch
    >>> act = get("leaky_relu", alpha=0.1)
    >>> act
    LeakyReLU(negative_slope=0.1)
    >>> act(torch.tensor([-2.0, 3.0])).tolist()
    [-0.2, 3.0]
    >>> activation_name(torch.nn.SiLU())
    'swish'
    >>> saturation_bounds("tanh")
    (-1.0, 1.0)
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from steadygrad._registry import Registry
from steadygrad.errors import ConfigError

__all__ = [
    "ACTIVATIONS",
    "DEFAULT_LEAKY_RELU_ALPHA",
    "RELU_FAMILY",
    "SATURATING",
    "activation_name",
    "check",
    "get",
    "saturation_bounds",
]

ActivationFactory = Callable[..., nn.Module]

ACTIVATIONS: Registry[ActivationFactory] = Registry("activation")
"""Registry of activation module factories, keyed by Keras name."""

DEFAULT_LEAKY_RELU_ALPHA = 0.2
"""Default negative slope of ``leaky_relu``.

0.2 is Keras 3's ``keras.activations.leaky_relu`` default and the value the Géron book's Keras
examples use (``LeakyReLU(alpha=0.2)``); Xu et al. (2015, "Empirical Evaluation of Rectified
Activations in Convolutional Network", arXiv:1505.00853) found a large leak (1/5.5 ≈ 0.18)
better than 0.01. PyTorch's ``nn.LeakyReLU`` defaults to 0.01, which behaves almost like ReLU
and barely protects against dying units; Keras's *layer* ``LeakyReLU`` defaults to 0.3.
"""

RELU_FAMILY: frozenset[str] = frozenset({"relu", "leaky_relu", "rrelu", "prelu"})
"""Rectifiers: linear for positive inputs, (near) zero slope for negative ones."""

SATURATING: frozenset[str] = frozenset({"sigmoid", "tanh", "softsign", "hard_sigmoid"})
"""Bounded activations whose gradient vanishes at both ends (see :func:`saturation_bounds`)."""

_SATURATION_BOUNDS: dict[str, tuple[float, float]] = {
    "sigmoid": (0.0, 1.0),
    "tanh": (-1.0, 1.0),
    "softsign": (-1.0, 1.0),
    "hard_sigmoid": (0.0, 1.0),
}


def _number(path: str, value: Any, *, minimum: float | None = None) -> float:
    """``value`` as a finite float, at least ``minimum``; a ConfigError naming ``path`` if not."""
    expected = "a finite number" + (f" >= {minimum}" if minimum is not None else "")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(path, value, expected)
    if not math.isfinite(value) or (minimum is not None and value < minimum):
        raise ConfigError(path, value, expected)
    return float(value)


@ACTIVATIONS.register("linear", "identity")
def _linear() -> nn.Module:
    """Identity, ``f(x) = x`` (Keras ``linear``)."""
    return nn.Identity()


@ACTIVATIONS.register("sigmoid", "logistic")
def _sigmoid() -> nn.Module:
    """Logistic sigmoid ``1 / (1 + exp(-x))``; saturates to 0 and 1."""
    return nn.Sigmoid()


@ACTIVATIONS.register("tanh")
def _tanh() -> nn.Module:
    """Hyperbolic tangent; saturates to -1 and 1."""
    return nn.Tanh()


@ACTIVATIONS.register("relu")
def _relu() -> nn.Module:
    """Rectified linear unit ``max(x, 0)`` (Nair & Hinton, 2010)."""
    return nn.ReLU()


@ACTIVATIONS.register("leaky_relu", "leakyrelu")
def _leaky_relu(alpha: float = DEFAULT_LEAKY_RELU_ALPHA) -> nn.Module:
    """Leaky ReLU ``max(alpha * x, x)`` (Maas et al., 2013); see DEFAULT_LEAKY_RELU_ALPHA."""
    return nn.LeakyReLU(**_leaky_relu_args(alpha))


def _leaky_relu_args(alpha: Any) -> dict[str, Any]:
    return {"negative_slope": _number("leaky_relu.alpha", alpha, minimum=0.0)}


@ACTIVATIONS.register("rrelu")
def _rrelu(lower: float = 1.0 / 8.0, upper: float = 1.0 / 3.0) -> nn.Module:
    """Randomized leaky ReLU (Xu et al., 2015, arXiv:1505.00853).

    In training each element's negative slope is drawn from ``U(lower, upper)``; in eval the
    slope is the mean ``(lower + upper) / 2``. Defaults 1/8 and 1/3 are the paper's (and
    PyTorch's); Keras has no RReLU.
    """
    return nn.RReLU(**_rrelu_args(lower, upper))


def _rrelu_args(lower: Any, upper: Any) -> dict[str, Any]:
    lo = _number("rrelu.lower", lower, minimum=0.0)
    hi = _number("rrelu.upper", upper, minimum=0.0)
    if hi < lo:
        raise ConfigError("rrelu.upper", upper, f"a number >= lower ({lower})")
    return {"lower": lo, "upper": hi}


@ACTIVATIONS.register("prelu")
def _prelu(num_units: int | None = None, alpha_init: float = 0.0) -> nn.Module:
    """Parametric ReLU ``max(0, x) + alpha * min(0, x)`` with learned ``alpha`` (He et al., 2015).

    Args:
        num_units: one alpha per unit (the size of input dim 1: features of a dense layer or
            channels of a conv layer, shared over spatial positions); None shares one alpha.
            Keras defaults to one alpha per element, spatial positions included.
        alpha_init: starting value of alpha. 0.0 as Keras (``alpha_initializer="zeros"``: the
            unit starts as a ReLU); PyTorch and He et al. start at 0.25.
    """
    return nn.PReLU(**_prelu_args(num_units, alpha_init))


def _prelu_args(num_units: Any, alpha_init: Any) -> dict[str, Any]:
    if num_units is not None and (
        isinstance(num_units, bool) or not isinstance(num_units, int) or num_units < 1
    ):
        raise ConfigError("prelu.num_units", num_units, "a positive int or None (one shared alpha)")
    return {"num_parameters": num_units or 1, "init": _number("prelu.alpha_init", alpha_init)}


@ACTIVATIONS.register("elu")
def _elu(alpha: float = 1.0) -> nn.Module:
    """Exponential linear unit: ``x`` if ``x > 0`` else ``alpha * (exp(x) - 1)``.

    Clevert et al., 2016 (arXiv:1511.07289); ``alpha=1.0`` as Keras and PyTorch.
    """
    return nn.ELU(**_elu_args(alpha))


def _elu_args(alpha: Any) -> dict[str, Any]:
    return {"alpha": _number("elu.alpha", alpha)}


@ACTIVATIONS.register("selu")
def _selu() -> nn.Module:
    """Scaled ELU (Klambauer et al., 2017): self-normalizing with ``lecun_normal`` init."""
    return nn.SELU()


@ACTIVATIONS.register("gelu")
def _gelu(approximate: bool = False) -> nn.Module:
    """Gaussian error linear unit ``x * Phi(x)`` (Hendrycks & Gimpel, 2016).

    ``approximate=False`` (Keras's default) is the exact erf form; True uses the tanh form.
    """
    return nn.GELU(**_gelu_args(approximate))


def _gelu_args(approximate: Any) -> dict[str, Any]:
    if not isinstance(approximate, bool):
        raise ConfigError("gelu.approximate", approximate, "True or False")
    return {"approximate": "tanh" if approximate else "none"}


@ACTIVATIONS.register("swish", "silu")
def _swish() -> nn.Module:
    """Swish / SiLU ``x * sigmoid(x)`` (Ramachandran et al., 2017)."""
    return nn.SiLU()


@ACTIVATIONS.register("mish")
def _mish() -> nn.Module:
    """Mish ``x * tanh(softplus(x))`` (Misra, 2019)."""
    return nn.Mish()


@ACTIVATIONS.register("softplus")
def _softplus() -> nn.Module:
    """Softplus ``log(1 + exp(x))`` (PyTorch switches to ``x`` above 20; error < 1e-8)."""
    return nn.Softplus()


@ACTIVATIONS.register("softsign")
def _softsign() -> nn.Module:
    """Softsign ``x / (1 + |x|)``; saturates (polynomially) to -1 and 1."""
    return nn.Softsign()


@ACTIVATIONS.register("hard_sigmoid", "hardsigmoid")
def _hard_sigmoid() -> nn.Module:
    """Keras 3 hard sigmoid ``clip(x / 6 + 0.5, 0, 1)`` = ``relu6(x + 3) / 6``."""
    return nn.Hardsigmoid()


@ACTIVATIONS.register("softmax")
def _softmax(axis: int = -1) -> nn.Module:
    """Softmax over ``axis`` (Keras default -1, the feature axis of dense outputs)."""
    return nn.Softmax(**_softmax_args(axis))


def _softmax_args(axis: Any) -> dict[str, Any]:
    if isinstance(axis, bool) or not isinstance(axis, int):
        raise ConfigError("softmax.axis", axis, "an int axis, e.g. -1")
    return {"dim": axis}


_ARGS: dict[str, Callable[..., dict[str, Any]]] = {
    "leaky_relu": _leaky_relu_args, "rrelu": _rrelu_args, "prelu": _prelu_args,
    "elu": _elu_args, "gelu": _gelu_args, "softmax": _softmax_args,
}
"""Argument checks of the activations that take arguments: the factory's keyword arguments
(defaults applied) -> the torch module's constructor arguments, or a ConfigError."""


def _check_kwargs(name: str, factory: ActivationFactory, kwargs: Mapping[str, Any]) -> None:
    allowed = list(inspect.signature(factory).parameters)
    for key in kwargs:
        if key not in allowed:
            expected = (
                f"one of {', '.join(allowed)}" if allowed else f"no arguments ({name} takes none)"
            )
            raise ConfigError(f"{name}.{key}", kwargs[key], expected, hint="remove or rename it")


def get(
    identifier: str | Mapping[str, Any] | nn.Module | type[nn.Module] | None, **kwargs: Any
) -> nn.Module:
    """A ready activation module from a name, a config dict, a module or a module class.

    Args:
        identifier: a registered name (``"leaky_relu"``; case and ``-``/``_`` are ignored), a
            dict ``{"name": "leaky_relu", "alpha": 0.1}``, an ``nn.Module`` instance (returned
            unchanged), an ``nn.Module`` subclass (instantiated with ``kwargs``) or None
            (identity, as Keras's ``linear``).
        **kwargs: arguments of the named activation (``alpha``, ``num_units``, ...).

    Returns:
        A torch module.

    Raises:
        UnknownNameError: the name is not registered (the message suggests a close match).
        ConfigError: an argument is unknown or out of range.

    Example:
        >>> get("prelu", num_units=4).weight.shape
        torch.Size([4])
        >>> get({"name": "ELU", "alpha": 0.5})
        ELU(alpha=0.5)
        >>> get(None)
        Identity()
        >>> get("rleu")
        Traceback (most recent call last):
        ...
        steadygrad.errors.UnknownNameError: activation: got 'rleu'; ... did you mean 'relu'?
    """
    if isinstance(identifier, Mapping):
        params = dict(identifier)
        if "name" not in params:
            raise ConfigError("activation", identifier, "a dict with a 'name' key")
        name = params.pop("name")
        return get(name, **params, **kwargs)
    if identifier is None or isinstance(identifier, nn.Module):
        if kwargs:
            raise ConfigError(
                "activation", kwargs, "no arguments with a module instance or None",
                hint="pass the arguments when you build the module",
            )
        return nn.Identity() if identifier is None else identifier
    if isinstance(identifier, type) and issubclass(identifier, nn.Module):
        try:
            return identifier(**kwargs)
        except TypeError as err:
            raise ConfigError(
                "activation", kwargs, f"arguments accepted by {identifier.__name__}: {err}"
            ) from err
    if not isinstance(identifier, str):
        raise ConfigError(
            "activation", identifier,
            f"a name (one of {', '.join(ACTIVATIONS.names())}), a dict, an nn.Module or None",
            hint="wrap a plain function in an nn.Module",
        )
    canonical = ACTIVATIONS.canonical(identifier)
    factory = ACTIVATIONS.get(canonical)
    _check_kwargs(canonical, factory, kwargs)
    return factory(**kwargs)


def check(name: str, **kwargs: Any) -> str:
    """Validate a registered name and its arguments without building a module.

    Raises exactly what :func:`get` would raise for the same name and arguments, so a config
    can be checked up front and the module built later, once per layer.

    Returns:
        The canonical name.

    Example:
        >>> check("LeakyReLU", alpha=0.1)
        'leaky_relu'
        >>> check("elu", alpha=float("nan"))
        Traceback (most recent call last):
        ...
        steadygrad.errors.ConfigError: elu.alpha: got nan; expected a finite number
    """
    canonical = ACTIVATIONS.canonical(name)
    factory = ACTIVATIONS.get(canonical)
    _check_kwargs(canonical, factory, kwargs)
    if canonical in _ARGS:
        bound = inspect.signature(factory).bind(**kwargs)
        bound.apply_defaults()
        _ARGS[canonical](**bound.arguments)
    return canonical


_MODULE_NAMES: tuple[tuple[type[nn.Module], str], ...] = (
    (nn.ReLU, "relu"),
    (nn.LeakyReLU, "leaky_relu"),
    (nn.RReLU, "rrelu"),
    (nn.PReLU, "prelu"),
    (nn.ELU, "elu"),
    (nn.SELU, "selu"),
    (nn.GELU, "gelu"),
    (nn.SiLU, "swish"),
    (nn.Mish, "mish"),
    (nn.Softplus, "softplus"),
    (nn.Softsign, "softsign"),
    (nn.Sigmoid, "sigmoid"),
    (nn.Tanh, "tanh"),
    (nn.Hardsigmoid, "hard_sigmoid"),
    (nn.Softmax, "softmax"),
    (nn.Identity, "linear"),
)


def activation_name(module: object) -> str | None:
    """The registry name of a torch activation module, or None for anything else.

    Subclasses count as their base (a user's ``class MyReLU(nn.ReLU)`` is ``"relu"``).

    Example:
        >>> from torch import nn
        >>> activation_name(nn.Hardsigmoid()), activation_name(nn.GELU(approximate="tanh"))
        ('hard_sigmoid', 'gelu')
        >>> activation_name(nn.Linear(2, 2)) is None
        True
    """
    for cls, name in _MODULE_NAMES:
        if isinstance(module, cls):
            return name
    return None


def saturation_bounds(name: str) -> tuple[float, float] | None:
    """The two asymptotes of a saturating activation, None for a non-saturating one.

    Args:
        name: a registered activation name or alias.

    Raises:
        UnknownNameError: the name is not a registered activation.

    Example:
        >>> saturation_bounds("logistic"), saturation_bounds("relu")
        ((0.0, 1.0), None)
    """
    return _SATURATION_BOUNDS.get(ACTIVATIONS.canonical(name))
