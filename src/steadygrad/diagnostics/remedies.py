"""The remedy table: for each finding kind, the toolbox fixes to try, in order, as config patches.

Each entry is data: a config patch the ``doctor`` command can apply (keys use the config paths
``model.*``, ``train.*``, ``data.*``), one line of why, and the source it comes from. The order
per kind follows the prior-art lists (AUTOTRAINER's per-problem repair lists, Zhang et al.,
ICSE 2021) with the Keras-era operators replaced by PyTorch-correct ones
(``shared/notes/prior_art_diagnosis.md`` §5.1).

Example:
    >>> [r.name for r in REMEDIES["exploding_gradients"]][:2]
    ['clip_global_norm', 'lower_learning_rate']
    >>> REMEDIES["dead_units"][0].patch
    {'model.activation': 'leaky_relu'}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["REMEDIES", "Remedy"]


@dataclass(frozen=True)
class Remedy:
    """One fix from the toolbox.

    Attributes:
        name: short identifier.
        patch: config patch (dotted path -> value) that applies the fix.
        why: one line of why it helps.
        source: where the advice comes from.
        condition: for ``self_normalization``, the broken condition it repairs; for
            ``learning_rate``, the direction it fixes (``"too high"``); else "".

    >>> r = REMEDIES["self_normalization"][1]
    >>> r.condition, r.patch
    ('lecun_init', {'model.kernel_initializer': 'lecun_normal'})
    """

    name: str
    patch: dict[str, Any] = field(hash=False)
    why: str
    source: str
    condition: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict.

        >>> Remedy("x", {"a.b": 1}, "why", "src").to_dict()["patch"]
        {'a.b': 1}
        """
        d = {"name": self.name, "patch": dict(self.patch), "why": self.why, "source": self.source}
        if self.condition:
            d["condition"] = self.condition
        return d

    @staticmethod
    def from_dict(d: dict[str, Any]) -> Remedy:
        """Inverse of :meth:`to_dict`."""
        return Remedy(d["name"], dict(d["patch"]), d["why"], d["source"], d.get("condition", ""))


_HE = "He et al. 2015, Delving Deep into Rectifiers (arXiv:1502.01852)"
_GLOROT = "Glorot & Bengio 2010, Understanding the difficulty of training deep FNNs (AISTATS)"
_BN = "Ioffe & Szegedy 2015, Batch Normalization (arXiv:1502.03167)"
_SELU = "Klambauer et al. 2017, Self-Normalizing Neural Networks (arXiv:1706.02515)"
_CLIP = "Pascanu, Mikolov & Bengio 2013, On the difficulty of training RNNs (arXiv:1211.5063)"
_LRF = "Smith 2017, Cyclical Learning Rates (arXiv:1506.01186), LR range test"
_LEAKY = "Maas et al. 2013 (leaky ReLU); Xu et al. 2015 (arXiv:1505.00853)"
_ELU = "Clevert et al. 2015, ELU (arXiv:1511.07289)"
_LECUN = "LeCun et al. 1998, Efficient BackProp (input standardization)"
_PRE_LN = "Xiong et al. 2020, On Layer Normalization in the Transformer Architecture " \
    "(arXiv:2002.04745)"
_ENTROPY = "Zhai et al. 2023, Stabilizing Transformer Training by Preventing Attention " \
    "Entropy Collapse (arXiv:2303.06296); Wortsman et al. 2024 (arXiv:2309.14322)"

REMEDIES: dict[str, tuple[Remedy, ...]] = {
    "vanishing_gradients": (
        Remedy("relu_he", {"model.activation": "relu", "model.kernel_initializer": "he_normal"},
               "a non-saturating activation with variance-preserving init keeps the "
               "back-propagated signal constant across depth", _HE),
        Remedy("batch_norm", {"model.batch_norm": "before"},
               "re-standardizes every pre-activation, so no layer sits in a flat region", _BN),
        Remedy("selu_lecun", {"model.activation": "selu", "model.kernel_initializer":
                              "lecun_normal"},
               "self-normalizing activations keep mean 0 / std 1 through depth", _SELU),
        Remedy("glorot_init", {"model.kernel_initializer": "glorot_uniform"},
               "fan-averaged init equalizes forward and backward variance for tanh/sigmoid",
               _GLOROT),
    ),
    "exploding_gradients": (
        Remedy("clip_global_norm", {"train.optimizer.global_clipnorm": 1.0},
               "caps the step size when the gradient norm spikes", _CLIP),
        Remedy("lower_learning_rate", {"train.optimizer.learning_rate": "lr_find"},
               "a learning rate past the stability edge amplifies the gradient every step",
               _LRF),
        Remedy("matched_init", {"model.kernel_initializer": "auto"},
               "an init whose variance matches the activation keeps gradients O(1) per layer",
               _HE),
        Remedy("batch_norm", {"model.batch_norm": "before"},
               "normalized pre-activations bound each layer's gain", _BN),
    ),
    "dead_units": (
        Remedy("leaky_relu", {"model.activation": "leaky_relu"},
               "a negative slope keeps a gradient for units pushed below zero", _LEAKY),
        Remedy("elu", {"model.activation": "elu"},
               "ELU has a non-zero gradient for negative inputs and mean outputs near 0", _ELU),
        Remedy("lower_learning_rate", {"train.optimizer.learning_rate": "lr_find"},
               "large updates knock ReLU units into the always-negative region", _LRF),
        Remedy("he_init", {"model.kernel_initializer": "he_normal"},
               "He init keeps pre-activations centred with unit variance at the start", _HE),
    ),
    "saturation": (
        Remedy("relu_he", {"model.activation": "relu", "model.kernel_initializer": "he_normal"},
               "rectifiers do not saturate for positive inputs", _HE),
        Remedy("glorot_init", {"model.kernel_initializer": "glorot_uniform"},
               "smaller, fan-scaled weights keep tanh/sigmoid in their linear region", _GLOROT),
        Remedy("batch_norm", {"model.batch_norm": "before"},
               "keeps pre-activations near zero where the derivative is largest", _BN),
        Remedy("standardize_inputs", {"data.standardize": True},
               "unscaled inputs push the first layer into saturation", _LECUN),
    ),
    "attention_saturation": (
        Remedy("pre_ln", {"model.norm_first": True},
               "pre-LN normalizes each block's input before the query/key projections and "
               "keeps a clean residual path around attention", _PRE_LN),
        Remedy("lower_learning_rate", {"train.optimizer.learning_rate": "lr_find"},
               "attention logits grow with large steps until the softmax saturates "
               "(QK-LayerNorm or a smaller query/key init scale bound them in your own "
               "module)", _ENTROPY),
        Remedy("clip_global_norm", {"train.optimizer.global_clipnorm": 1.0},
               "bounds the steps that inflate the query/key weights", _CLIP),
    ),
    "non_finite": (
        Remedy("lower_learning_rate", {"train.optimizer.learning_rate": "lr_find"},
               "most NaNs come from a diverging step", _LRF),
        Remedy("clip_global_norm", {"train.optimizer.global_clipnorm": 1.0},
               "bounds the step that overflows", _CLIP),
        Remedy("standardize_inputs", {"data.standardize": True},
               "huge or non-finite inputs overflow the first layer", _LECUN),
    ),
    "self_normalization": (
        Remedy("standardize_inputs", {"data.standardize": True},
               "SELU's fixed point needs inputs with mean 0 and std 1", _SELU,
               condition="standardized_inputs"),
        Remedy("lecun_init", {"model.kernel_initializer": "lecun_normal"},
               "self-normalization needs Var(w) = 1/fan_in", _SELU, condition="lecun_init"),
        Remedy("sequential", {"model.batch_norm": "none"},
               "the fixed-point argument holds for plain sequential dense stacks: no batch "
               "norm between the SELU layers (the MLP builder has no residual connections)",
               _SELU, condition="sequential"),
        Remedy("alpha_dropout", {"model.dropout_kind": "alpha"},
               "plain dropout breaks mean/variance; AlphaDropout preserves them", _SELU,
               condition="alpha_dropout"),
    ),
    "learning_rate": (
        Remedy("lr_find", {"train.optimizer.learning_rate": "lr_find"},
               "pick the rate from a range test instead of guessing", _LRF),
        Remedy("schedule", {"train.schedule": "reduce_on_plateau"},
               "lower the rate when progress stalls", "Keras ReduceLROnPlateau",
               condition="too high"),  # lowering a rate that is too low makes it worse
    ),
}
"""Remedies per finding kind, in the order to try them."""
