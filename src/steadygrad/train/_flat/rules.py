"""Optimizer updates as pure elementwise functions of flat tensors, with host-side scalars.

``fit(compile=True)`` trains on flat buffers: all parameters (and each optimizer moment) live
in one 1-D tensor per parameter group, and the update is a few elementwise operations on it,
compiled into the same graph as the gradients (:mod:`steadygrad.train._flat.flat`). Two things make
this much faster than compiling ``optimizer.step()`` on CPU:

* one tensor per group instead of one per parameter: the deep benchmark net (62 parameter
  tensors, Nadam) gave the compiled ``step()`` 372 graph inputs, whose per-call checks cost
  more than the arithmetic;
* the scalars that depend only on the step (bias corrections, Nadam's ``mu``, the learning
  rate) are computed here on the host, once per step, and passed in as one small tensor.
  Compiling torch's own single-tensor update, Inductor recomputed ``0.96 ** step`` and
  ``beta ** step`` (``std::pow``) for every 8-element vector of the loop: the compiled Nadam
  step over 280,000 weights took 1.7 ms, three times torch's eager step (0.56 ms).

Each rule follows the formula of torch's ``_single_tensor_<name>`` (non-capturable path) for
the same hyperparameters, so the flat update matches ``optimizer.step()`` up to float rounding
(``tests/train/test_flat.py`` compares both on several steps, for every rule and every option
it accepts). Each rule carries an **allow-list** of the param-group keys it implements
(:attr:`FlatRule.options`): ``SGD`` (momentum, dampening, nesterov), ``Adam``/``AdamW``
(betas, eps, amsgrad, decoupled weight decay), ``NAdam`` (betas, eps, momentum decay,
decoupled weight decay), ``Adamax`` (betas, eps), ``RMSprop`` (alpha, eps, centered, momentum)
and ``Adagrad`` (lr decay, eps, initial accumulator value), all with ``lr``, ``weight_decay``,
``maximize`` and ``foreach`` (which changes no number); ``differentiable``, ``capturable`` and
``fused`` must be off. :func:`decline_reason` names the first key outside the list (an option a
later torch adds, a user's own group entry) and the trainer then runs the step another way
(:func:`steadygrad.train.step.build_step`), so nothing is ignored silently.

Example:
    >>> import torch
    >>> w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    >>> opt = torch.optim.SGD([w], lr=0.5, momentum=0.9)
    >>> rule = rule_for(opt)
    >>> w.grad = torch.ones(2); opt.step()  # the first step creates the momentum buffer
    >>> group, state = opt.param_groups[0], opt.state[w]
    >>> coef = torch.tensor(rule.coefficients(group, {}, 2)[0])
    >>> new = rule.update(group, w.detach(), torch.ones(2), {"momentum_buffer":
    ...                   state["momentum_buffer"]}, coef)
    >>> w.grad = torch.ones(2); opt.step()  # torch's second step agrees
    >>> torch.allclose(new["param"], w.detach())
    True
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["FlatRule", "decline_reason", "f32", "rule_for", "structural_options", "structure"]

Tensor = torch.Tensor
Coefficients = Callable[[Mapping[str, Any], Mapping[str, float], int],
                        tuple[list[float], dict[str, float]]]
Update = Callable[[Mapping[str, Any], Tensor, Tensor, Mapping[str, Tensor], Tensor],
                  dict[str, Tensor]]


def f32(value: float) -> float:
    """``value`` rounded to float32, as a 0-dim float32 tensor stores it.

    >>> f32(0.1) == 0.1, f32(0.5) == 0.5
    (False, True)
    """
    return float(struct.unpack("f", struct.pack("f", value))[0])


def _num(value: Any) -> float:
    return float(value.item()) if isinstance(value, torch.Tensor) else float(value)


@dataclass(frozen=True)
class FlatRule:
    """One optimizer's update on flat tensors.

    Attributes:
        name: the torch class it reproduces.
        tensors: state keys holding a tensor shaped like the parameter (per-element state),
            given the group (some exist only with an option: ``max_exp_avg_sq``).
        scalars: state keys holding a 0-dim tensor that is the same for every parameter
            (``step``, Nadam's ``mu_product``).
        coefficients: ``(group, scalars, t) -> (coefs, new_scalars)`` for step number ``t``
            (1-based, as torch counts): the floats the graph reads from its coefficient
            tensor and the scalar state after the step; pure, host-side.
        update: ``(group, param, grad, state, coef) -> new values`` (``"param"`` and every
            per-element state key); pure, traced into the compiled graph. Only structural
            options (``nesterov``, ``amsgrad``, ...) are read from ``group`` here; every number
            that may change during training comes from ``coef``.
        options: the param-group keys this rule implements (besides :data:`COMMON`); a group
            with any other key is declined.
    """

    name: str
    tensors: Callable[[Mapping[str, Any]], tuple[str, ...]]
    scalars: tuple[str, ...]
    coefficients: Coefficients
    update: Update
    options: frozenset[str] = frozenset()


def _decay(group: Mapping[str, Any], p: Tensor, g: Tensor, wd: Tensor) -> Tensor:
    return g + p * wd if group["weight_decay"] != 0 else g


def _grad(group: Mapping[str, Any], g: Tensor) -> Tensor:
    return -g if group.get("maximize", False) else g


# --------------------------------------------------------------------------- SGD
def _sgd_coef(group: Mapping[str, Any], scalars: Mapping[str, float], t: int,
              ) -> tuple[list[float], dict[str, float]]:
    return [_num(group["lr"]), float(group["momentum"]), 1.0 - float(group["dampening"]),
            float(group["weight_decay"])], {}


def _sgd_update(group: Mapping[str, Any], p: Tensor, g: Tensor, state: Mapping[str, Tensor],
                c: Tensor) -> dict[str, Tensor]:
    g = _decay(group, p, _grad(group, g), c[3])
    out: dict[str, Tensor] = {}
    if group["momentum"] != 0:
        buf = state["momentum_buffer"] * c[1] + g * c[2]
        out["momentum_buffer"] = buf
        g = g + buf * c[1] if group["nesterov"] else buf
    out["param"] = p - g * c[0]
    return out


def _sgd_tensors(group: Mapping[str, Any]) -> tuple[str, ...]:
    return ("momentum_buffer",) if group["momentum"] != 0 else ()


# --------------------------------------------------------------------------- Adam, AdamW
def _adam_coef(group: Mapping[str, Any], scalars: Mapping[str, float], t: int,
               ) -> tuple[list[float], dict[str, float]]:
    lr, (b1, b2) = _num(group["lr"]), (_num(b) for b in group["betas"])
    wd = float(group["weight_decay"])
    return [1.0 - b1, b2, 1.0 - b2, 1.0 / (1.0 - b2 ** t) ** 0.5, float(group["eps"]),
            -lr / (1.0 - b1 ** t), 1.0 - lr * wd, wd], {"step": float(t)}


def _decoupled(group: Mapping[str, Any]) -> bool:
    return bool(group.get("decoupled_weight_decay", False))


def _adam_moments(group: Mapping[str, Any], p: Tensor, g: Tensor, state: Mapping[str, Tensor],
                  c: Tensor, decay: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Adam and Nadam's common start: weight decay (``c[decay]``: decoupled factor, then the
    coupled rate), then both moments (``c[0..2]``: 1 - beta_1, beta_2, 1 - beta_2).
    Returns ``(param, grad, exp_avg, exp_avg_sq)``."""
    g = _grad(group, g)
    if group["weight_decay"] != 0:
        if _decoupled(group):
            p = p * c[decay]
        else:
            g = g + p * c[decay + 1]
    m = torch.lerp(state["exp_avg"], g, c[0])
    return p, g, m, state["exp_avg_sq"] * c[1] + g * g * c[2]


def _adam_update(group: Mapping[str, Any], p: Tensor, g: Tensor, state: Mapping[str, Tensor],
                 c: Tensor) -> dict[str, Tensor]:
    p, g, m, v = _adam_moments(group, p, g, state, c, 6)
    out = {"exp_avg": m, "exp_avg_sq": v}
    if group["amsgrad"]:
        v = out["max_exp_avg_sq"] = torch.maximum(state["max_exp_avg_sq"], v)
    denom = v.sqrt() * c[3] + c[4]
    out["param"] = p + m * c[5] / denom
    return out


def _adam_tensors(group: Mapping[str, Any]) -> tuple[str, ...]:
    return ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if group["amsgrad"] else ())


# --------------------------------------------------------------------------- NAdam
def _nadam_coef(group: Mapping[str, Any], scalars: Mapping[str, float], t: int,
                ) -> tuple[list[float], dict[str, float]]:
    lr, (b1, b2) = _num(group["lr"]), (_num(b) for b in group["betas"])
    wd, psi = float(group["weight_decay"]), float(group["momentum_decay"])
    mu = b1 * (1.0 - 0.5 * 0.96 ** (t * psi))
    mu_next = b1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * psi))
    mu_product = f32(scalars["mu_product"] * mu)  # torch: a float32 tensor *= mu
    coefs = [1.0 - b1, b2, 1.0 - b2, 1.0 - b2 ** t, float(group["eps"]),
             -lr * (1.0 - mu) / (1.0 - mu_product),
             -lr * mu_next / (1.0 - mu_product * mu_next), 1.0 - lr * wd, wd]
    return coefs, {"step": float(t), "mu_product": mu_product}


def _nadam_update(group: Mapping[str, Any], p: Tensor, g: Tensor, state: Mapping[str, Tensor],
                  c: Tensor) -> dict[str, Tensor]:
    p, g, m, v = _adam_moments(group, p, g, state, c, 7)
    denom = (v / c[3]).sqrt() + c[4]
    return {"exp_avg": m, "exp_avg_sq": v, "param": p + (g * c[5] + m * c[6]) / denom}


# --------------------------------------------------------------------------- Adamax
def _adamax_coef(group: Mapping[str, Any], scalars: Mapping[str, float], t: int,
                 ) -> tuple[list[float], dict[str, float]]:
    lr, (b1, b2) = _num(group["lr"]), (_num(b) for b in group["betas"])
    return [1.0 - b1, b2, float(group["eps"]), -lr / (1.0 - b1 ** t),
            float(group["weight_decay"])], {"step": float(t)}


def _adamax_update(group: Mapping[str, Any], p: Tensor, g: Tensor, state: Mapping[str, Tensor],
                   c: Tensor) -> dict[str, Tensor]:
    g = _decay(group, p, _grad(group, g), c[4])
    m = torch.lerp(state["exp_avg"], g, c[0])
    u = torch.maximum(state["exp_inf"] * c[1], g.abs() + c[2])
    return {"exp_avg": m, "exp_inf": u, "param": p + m * c[3] / u}


# --------------------------------------------------------------------------- RMSprop
def _rmsprop_coef(group: Mapping[str, Any], scalars: Mapping[str, float], t: int,
                  ) -> tuple[list[float], dict[str, float]]:
    alpha = float(group["alpha"])
    return [alpha, 1.0 - alpha, float(group["eps"]), float(group["momentum"]),
            _num(group["lr"]), float(group["weight_decay"])], {"step": float(t)}


def _rmsprop_update(group: Mapping[str, Any], p: Tensor, g: Tensor,
                    state: Mapping[str, Tensor], c: Tensor) -> dict[str, Tensor]:
    g = _decay(group, p, _grad(group, g), c[5])
    sq = state["square_avg"] * c[0] + g * g * c[1]
    out = {"square_avg": sq}
    if group["centered"]:
        ga = out["grad_avg"] = torch.lerp(state["grad_avg"], g, c[1])
        avg = (sq - ga * ga).sqrt() + c[2]
    else:
        avg = sq.sqrt() + c[2]
    if group["momentum"] > 0:
        buf = out["momentum_buffer"] = state["momentum_buffer"] * c[3] + g / avg
        out["param"] = p - buf * c[4]
    else:
        out["param"] = p - g * c[4] / avg
    return out


def _rmsprop_tensors(group: Mapping[str, Any]) -> tuple[str, ...]:
    return (("square_avg",) + (("momentum_buffer",) if group["momentum"] > 0 else ())
            + (("grad_avg",) if group["centered"] else ()))


# --------------------------------------------------------------------------- Adagrad
def _adagrad_coef(group: Mapping[str, Any], scalars: Mapping[str, float], t: int,
                  ) -> tuple[list[float], dict[str, float]]:
    lr = _num(group["lr"])
    return [-lr / (1.0 + (t - 1) * float(group["lr_decay"])), float(group["eps"]),
            float(group["weight_decay"])], {"step": float(t)}


def _adagrad_update(group: Mapping[str, Any], p: Tensor, g: Tensor,
                    state: Mapping[str, Tensor], c: Tensor) -> dict[str, Tensor]:
    g = _decay(group, p, _grad(group, g), c[2])
    s = state["sum"] + g * g
    return {"sum": s, "param": p + g * c[0] / (s.sqrt() + c[1])}


COMMON = frozenset({"params", "lr", "weight_decay", "maximize", "foreach", "initial_lr"})
"""Keys every rule accepts (``foreach`` picks torch's kernels, not the math; ``initial_lr`` is
what ``torch.optim.lr_scheduler`` stores)."""
OFF = ("differentiable", "capturable", "fused")
"""Keys every rule accepts only when falsy."""
_ADAM = frozenset({"betas", "eps", "amsgrad", "decoupled_weight_decay"})

_RULES: dict[type, FlatRule] = {
    torch.optim.SGD: FlatRule("SGD", _sgd_tensors, (), _sgd_coef, _sgd_update,
                              frozenset({"momentum", "dampening", "nesterov"})),
    torch.optim.Adam: FlatRule("Adam", _adam_tensors, ("step",), _adam_coef, _adam_update,
                               _ADAM),
    torch.optim.AdamW: FlatRule("AdamW", _adam_tensors, ("step",), _adam_coef, _adam_update,
                                _ADAM),
    torch.optim.NAdam: FlatRule("NAdam", lambda g: ("exp_avg", "exp_avg_sq"),
                                ("step", "mu_product"), _nadam_coef, _nadam_update,
                                frozenset({"betas", "eps", "momentum_decay",
                                           "decoupled_weight_decay"})),
    torch.optim.Adamax: FlatRule("Adamax", lambda g: ("exp_avg", "exp_inf"), ("step",),
                                 _adamax_coef, _adamax_update, frozenset({"betas", "eps"})),
    torch.optim.RMSprop: FlatRule("RMSprop", _rmsprop_tensors, ("step",), _rmsprop_coef,
                                  _rmsprop_update,
                                  frozenset({"alpha", "eps", "centered", "momentum"})),
    torch.optim.Adagrad: FlatRule("Adagrad", lambda g: ("sum",), ("step",), _adagrad_coef,
                                  _adagrad_update,
                                  frozenset({"lr_decay", "eps", "initial_accumulator_value"})),
}

_STRUCTURAL = ("maximize", "nesterov", "amsgrad", "centered", "decoupled_weight_decay")


def structural_options(group: Mapping[str, Any]) -> dict[str, Any]:
    """The options of ``group`` that change the traced graph, as the update reads them.

    ``momentum`` and ``weight_decay`` become 1.0/0.0 (on or off): their values come from the
    coefficients, so a schedule changing them does not change these.

    >>> structural_options({"lr": 0.1, "momentum": 0.9, "weight_decay": 0.0, "nesterov": True})
    {'nesterov': True, 'momentum': 1.0, 'weight_decay': 0.0}
    """
    out = {k: group[k] for k in _STRUCTURAL if k in group}
    for k in ("momentum", "weight_decay"):
        if k in group:
            out[k] = 1.0 if group[k] != 0 else 0.0
    return out


def structure(group: Mapping[str, Any]) -> tuple[Any, ...]:
    """:func:`structural_options` as a hashable key (a change means a new compilation).

    >>> structure({"momentum": 0.9, "weight_decay": 0.0, "nesterov": True, "maximize": False})
    (('maximize', False), ('momentum', 1.0), ('nesterov', True), ('weight_decay', 0.0))
    """
    return tuple(sorted(structural_options(group).items()))


def decline_reason(optimizer: Any) -> str | None:
    """Why ``optimizer`` has no exact flat rule, or None when it has one.

    Declined: a class without a rule (subclasses too: they may change the math), a group key
    outside the rule's allow-list (:data:`COMMON` plus :attr:`FlatRule.options`), one of
    :data:`OFF` switched on, and tensor or non-finite hyperparameters.

    >>> w = [torch.nn.Parameter(torch.zeros(2))]
    >>> decline_reason(torch.optim.NAdam(w)) is None
    True
    >>> decline_reason(torch.optim.LBFGS(w))
    'no flat rule for LBFGS'
    >>> decline_reason(torch.optim.Adam(w, differentiable=True))
    'Adam option differentiable=True is not supported by the flat rule'
    >>> decline_reason(torch.optim.SGD([{"params": w, "name": "head"}], lr=0.1))
    "SGD option 'name' is not on the flat rule's allow-list (accepted: dampening, foreach, \
initial_lr, lr, maximize, momentum, nesterov, params, weight_decay)"
    """
    rule = _RULES.get(type(optimizer))
    if rule is None:
        return f"no flat rule for {type(optimizer).__name__}"
    allowed = COMMON | rule.options
    for group in optimizer.param_groups:
        for key, value in group.items():
            if key in OFF:
                if value:
                    return (f"{rule.name} option {key}={value!r} is not supported by the "
                            "flat rule")
            elif key not in allowed:
                return (f"{rule.name} option {key!r} is not on the flat rule's allow-list "
                        f"(accepted: {', '.join(sorted(allowed))})")
        numbers = [group.get("weight_decay", 0), *group.get("betas", ())]
        if any(isinstance(v, torch.Tensor) for v in numbers):
            return f"{rule.name} with a tensor weight_decay or betas"
        if "lr" in group and not math.isfinite(_num(group["lr"])):
            return f"{rule.name} with a non-finite lr ({group['lr']})"
    return None


def rule_for(optimizer: Any) -> FlatRule | None:
    """The flat rule reproducing ``optimizer``, or None (:func:`decline_reason` says why).

    >>> w = [torch.nn.Parameter(torch.zeros(2))]
    >>> rule_for(torch.optim.NAdam(w)).name, rule_for(torch.optim.LBFGS(w))
    ('NAdam', None)
    """
    return None if decline_reason(optimizer) is not None else _RULES[type(optimizer)]
