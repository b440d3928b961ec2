"""Remedies for models the doctor did not build: rewrites and training changes, as config patches.

For a ``[model] factory`` (or any architecture other than the MLP) the MLP keys
(``model.activation``, ``model.batch_norm``...) do not exist, so each remedy is either a list
of :mod:`steadygrad.nn.rewrite` steps appended to ``model.rewrites`` (the patch key
``model.rewrites+`` means "append") or a training change (``train.*``, ``data.*``), which needs
no rewrite. :data:`MODEL_TOOLBOX` maps each finding kind to them, in the order to try them.

Example:
    >>> [c.name for c in MODEL_TOOLBOX["dead_units"]][:3]
    ['leaky_relu', 'elu', 'batch_norm']
    >>> is_any_model({"model": {"factory": "pkg:make"}}), is_any_model({"model": {}})
    (True, False)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from steadygrad.doctor.candidates import Candidate

__all__ = ["APPEND", "MODEL_TOOLBOX", "is_any_model", "rewrite_text", "rewrites_change_nothing"]

APPEND = "model.rewrites+"
"""Patch key that appends rewrite steps to ``model.rewrites``."""

_HE = "He et al. 2015, Delving Deep into Rectifiers (arXiv:1502.01852)"
_ELU = "Clevert et al. 2015, ELU (arXiv:1511.07289)"
_LEAKY = "Maas et al. 2013 (leaky ReLU); Xu et al. 2015 (arXiv:1505.00853)"
_BN = "Ioffe & Szegedy 2015, Batch Normalization (arXiv:1502.03167)"
_LN = "Ba, Kiros & Hinton 2016, Layer Normalization (arXiv:1607.06450)"
_PRE = "Xiong et al. 2020, On Layer Normalization in the Transformer (arXiv:2002.04745)"
_INIT = "Glorot & Bengio 2010; He et al. 2015: init variance matched to the activation"
_SELU = "Klambauer et al. 2017, Self-Normalizing Neural Networks (arXiv:1706.02515)"
_CLIP = "Pascanu, Mikolov & Bengio 2013, On the difficulty of training RNNs (arXiv:1211.5063)"
_LRF = "Smith 2017, Cyclical Learning Rates (arXiv:1506.01186), LR range test"
_LR = "Bengio 2012, Practical recommendations (arXiv:1206.5533): lower the rate if unstable"
_ADAM = "Kingma & Ba 2015, Adam (arXiv:1412.6980)"
_1CYCLE = "Smith & Topin 2017, Super-Convergence (arXiv:1708.07120): warm-up then anneal"
_LECUN = "LeCun et al. 1998, Efficient BackProp (input standardization)"

_SATURATING = ["sigmoid", "tanh", "hard_sigmoid", "softsign"]


def _rw(name: str, steps: list[Any], why: str, source: str) -> Candidate:
    return Candidate(name, {APPEND: steps}, why, source)


def _tr(name: str, patch: dict[str, Any], why: str, source: str) -> Candidate:
    return Candidate(name, patch, why, source)


_REINIT = {"name": "reinit"}
ELU_HE = _rw("elu_he", [{"name": "swap_activation", "old": _SATURATING, "new": "elu"},
                        _REINIT], "ELU does not saturate for positive inputs; He init keeps "
             "the signal's variance through depth", _ELU)
RELU_HE = _rw("relu_he", [{"name": "swap_activation", "old": _SATURATING, "new": "relu"},
                          _REINIT], "rectifiers do not saturate for positive inputs", _HE)
BATCH_NORM = _rw("batch_norm", [{"name": "insert_norm", "kind": "batch", "position": "before"}],
                 "re-standardizes every pre-activation, so no layer sits in a flat region",
                 _BN)
LAYER_NORM = _rw("layer_norm", [{"name": "insert_norm", "kind": "layer", "position": "before"}],
                 "per-sample normalization of every pre-activation (any batch size, any "
                 "sequence layout)", _LN)
PRE_LN = _rw("pre_ln", ["pre_ln"], "pre-LN transformers keep a clean residual path and "
             "train without warm-up", _PRE)
MATCHED = _rw("matched_init", [_REINIT], "the initializer whose variance matches the "
              "activation that follows each layer", _INIT)
LEAKY = _rw("leaky_relu", [{"name": "swap_activation", "old": ["relu"], "new": "leaky_relu"},
                           _REINIT], "a negative slope keeps a gradient for units below zero",
            _LEAKY)
ELU_DEAD = _rw("elu", [{"name": "swap_activation", "old": ["relu"], "new": "elu"}, _REINIT],
               "ELU has a non-zero gradient for negative inputs", _ELU)
ALPHA = _rw("alpha_dropout", ["alpha_dropout"], "plain dropout breaks SELU's mean/variance; "
            "AlphaDropout preserves them", _SELU)
CLIP = _tr("clip_global_norm", {"train.optimizer.global_clipnorm": 1.0},
           "caps the step when the gradient norm spikes", _CLIP)
LR_FIND = _tr("lr_find", {"train.optimizer.learning_rate": "lr_find"},
              "the rate from a range test instead of a guess", _LRF)
DIV10 = _tr("learning_rate_div10", {"train.optimizer.learning_rate": "div10"},
            "a 10x smaller step stays below the stability edge", _LR)
ADAM = _tr("adam", {"train.optimizer.name": "adam", "train.optimizer.learning_rate": 1e-3},
           "per-parameter step sizes rescale small and large gradients alike", _ADAM)
ADAM_LR_FIND = _tr("adam_lr_find", {"train.optimizer.name": "adam",
                                    "train.optimizer.learning_rate": "lr_find"},
                   "Adam's per-parameter steps at the rate the range test measures on this model "
                   "(with Adam), instead of Adam's 1e-3 default or the old optimizer's rate",
                   f"{_ADAM}; {_LRF}")
ONE_CYCLE = _tr("one_cycle", {"train.schedule": "one_cycle"},
                "warm-up to the rate, then anneal: no large step on a fresh model", _1CYCLE)
STANDARDIZE = _tr("standardize_inputs", {"data.standardize": True},
                  "unscaled inputs push the first layer into saturation or overflow", _LECUN)

_ADAM_STEP = {"train.optimizer.name": "adam", "train.optimizer.learning_rate": 1e-3}
_DEFAULT_DNN = ("Géron, Hands-On ML (2nd ed.) table 11-3, the default DNN: ELU, He init, "
                "Adam")
ELU_HE_ADAM = _tr("elu_he_adam", {**ELU_HE.patch, **_ADAM_STEP},
                  "ELU + He init with Adam's per-parameter steps: the default deep-net recipe; "
                  "a fixed SGD rate tuned for saturated units is wrong for the new ones",
                  _DEFAULT_DNN)
BATCH_NORM_ADAM = _tr("batch_norm_adam", {**BATCH_NORM.patch, **_ADAM_STEP},
                      "batch norm bounds every pre-activation and Adam rescales the steps, "
                      "so neither the init's scale nor the rate's blows up the run",
                      f"{_BN}; {_ADAM}")
BATCH_NORM_REINIT = _rw("batch_norm_reinit", [*BATCH_NORM.patch[APPEND], _REINIT],
                        "the residual-net recipe: batch norm after every conv/linear layer and "
                        "weights re-drawn with the variance matched to the activation, so "
                        "neither the init's scale nor depth blows up the signal",
                        f"{_BN}; He et al. 2016, Deep Residual Learning (arXiv:1512.03385)")
MATCHED_ADAM = _tr("matched_init_adam", {**MATCHED.patch, **_ADAM_STEP},
                   "a variance-preserving init removes the blow-up at its source and Adam's "
                   "normalized steps stay bounded", f"{_INIT}; {_ADAM}")

MODEL_TOOLBOX: dict[str, tuple[Candidate, ...]] = {
    "vanishing_gradients": (ELU_HE, ELU_HE_ADAM, BATCH_NORM, PRE_LN, LR_FIND, BATCH_NORM_ADAM,
                            RELU_HE, MATCHED, LAYER_NORM, ADAM, ADAM_LR_FIND),
    "saturation": (ELU_HE, ELU_HE_ADAM, BATCH_NORM, RELU_HE, MATCHED, BATCH_NORM_ADAM,
                   LAYER_NORM, ADAM, STANDARDIZE),
    "exploding_gradients": (CLIP, LR_FIND, PRE_LN, DIV10, MATCHED, BATCH_NORM_REINIT,
                            MATCHED_ADAM, BATCH_NORM, BATCH_NORM_ADAM, ONE_CYCLE, ADAM),
    "non_finite": (DIV10, CLIP, MATCHED, BATCH_NORM_REINIT, MATCHED_ADAM, LR_FIND,
                   BATCH_NORM_ADAM, PRE_LN, BATCH_NORM, ONE_CYCLE, STANDARDIZE),
    "attention_saturation": (PRE_LN, LR_FIND, DIV10, CLIP, ONE_CYCLE),
    "dead_units": (LEAKY, ELU_DEAD, BATCH_NORM, DIV10, MATCHED),
    "learning_rate": (LR_FIND, ADAM, ADAM_LR_FIND, ONE_CYCLE),
    "self_normalization": (ALPHA, MATCHED, STANDARDIZE),
    "impaired_learning": (LR_FIND, ADAM, ADAM_LR_FIND, ONE_CYCLE, BATCH_NORM, BATCH_NORM_REINIT,
                          BATCH_NORM_ADAM, PRE_LN, MATCHED, DIV10, LAYER_NORM, CLIP),
}
"""Remedies per finding kind for any model (rewrites and training changes), in order.

``impaired_learning`` (a run that learns badly without a finding,
:mod:`steadygrad.doctor.impaired`) names no cause, so its remedies are the ones that act on
learning itself, in the order learning rate, optimizer, schedule, normalization, init."""


def is_any_model(table: Mapping[str, Any]) -> bool:
    """Whether the config's model is not the built-in MLP (a factory, or another ``arch``)."""
    model = table.get("model") or {}
    return bool(model.get("factory")) or model.get("arch", "mlp") not in (None, "mlp")


def rewrite_text(step: Any) -> str:
    """One rewrite step in words.

    >>> rewrite_text({"name": "swap_activation", "old": ["sigmoid", "tanh"], "new": "elu"})
    'swap_activation(sigmoid,tanh->elu)'
    >>> rewrite_text("pre_ln"), rewrite_text({"name": "insert_norm", "kind": "batch"})
    ('pre_ln', 'insert_norm(kind=batch)')
    """
    if isinstance(step, str):
        return step
    name = step.get("name", "?")
    args = {k: v for k, v in step.items() if k != "name"}
    if name == "swap_activation" and set(args) == {"old", "new"}:
        old = args["old"] if isinstance(args["old"], str) else ",".join(args["old"])
        return f"swap_activation({old}->{args['new']})"
    if not args:
        return str(name)
    return f"{name}(" + ", ".join(f"{k}={v}" for k, v in args.items()) + ")"


def rewrites_change_nothing(table: Mapping[str, Any], added: int, cache: Any) -> str | None:
    """Why the first of the last ``added`` rewrites of ``table`` leaves the model as it is,
    or None when it changes it.

    Builds the model of ``table`` once (``train.seed``) with its rewrites and reads their
    records. A candidate's first step is the one that names it (the activation swap of
    ``elu_he``; the ``reinit`` after it only completes it), so a candidate whose first step
    changes nothing (no Sigmoid in the model, no post-LN layer...) is skipped without a trial,
    with the reason (functional calls included).
    """
    from steadygrad.experiments.config import config_from_dict
    from steadygrad.experiments.execute import build_model

    config = config_from_dict(table)
    records: list[Any] = []
    build_model(config, cache.get(config), records)
    mine = records[-added:] if added else []
    if mine and mine[0].changed:
        return None
    return "changes nothing in this model (" + (mine[0].summary() if mine else "no rewrite") + ")"
