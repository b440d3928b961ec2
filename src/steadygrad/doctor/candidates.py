"""Candidate remedies for the doctor: config patches from the toolbox, chosen from findings.

A candidate is a *config patch* (dotted config path -> value, the form of
:data:`steadygrad.diagnostics.remedies.REMEDIES`) applied to the baseline's config table. For
each finding kind the doctor takes the monitor's remedy list first, then the extra toolbox
entries of :data:`TOOLBOX` (ELU + He, SELU + LeCun + standardized inputs, batch norm after the
activation, the activation's matched initializer, clipping by norm, a 10x lower learning rate,
an optimizer change), and interleaves the kinds round-robin so that every finding gets its
first remedies before any gets its last. Patches that change nothing, that name a key the
config does not have, or that give an invalid config are skipped with the reason.

The value ``"lr_find"`` is a placeholder resolved by the LR range test (Smith 2017,
arXiv:1506.01186) with the library's one suggestion rule,
:func:`steadygrad.optim.lr_finder.suggest_lr` (what ``steadygrad lr-find`` prints), and
``"div10"`` means one tenth of the current learning rate.

Example:
    >>> raw = {"model": {"activation": "sigmoid"}}
    >>> [c.name for c in propose(["saturation", "learning_rate"])][:4]
    ['relu_he', 'lr_find', 'glorot_init', 'schedule']
    >>> apply_patch(raw, {"model.activation": "relu"})["model"]["activation"]
    'relu'
    >>> merge_patches({"a.b": 1}, {"a.c": 2}), merge_patches({"a.b": 1}, {"a.b": 2})
    ({'a.b': 1, 'a.c': 2}, None)
    >>> apply_patch({"model": {"rewrites": ["pre_ln"]}}, {"model.rewrites+": ["reinit"]})
    {'model': {'rewrites': ['pre_ln', 'reinit']}}
"""

from __future__ import annotations

import copy
import inspect
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from steadygrad.diagnostics.remedies import REMEDIES
from steadygrad.doctor.trials import DataCache
from steadygrad.errors import ConfigError
from steadygrad.experiments.config import config_from_dict, config_to_dict
from steadygrad.experiments.loader import set_key

__all__ = ["TOOLBOX", "Candidate", "apply_patch", "merge_patches", "patch_effect", "propose",
           "unique"]

_HE = "He et al. 2015, Delving Deep into Rectifiers (arXiv:1502.01852)"
_ELU = "Clevert et al. 2015, ELU (arXiv:1511.07289)"
_SELU = "Klambauer et al. 2017, Self-Normalizing Neural Networks (arXiv:1706.02515)"
_BN = "Ioffe & Szegedy 2015, Batch Normalization (arXiv:1502.03167)"
_CLIP = "Pascanu, Mikolov & Bengio 2013, On the difficulty of training RNNs (arXiv:1211.5063)"
_ADAM = "Kingma & Ba 2015, Adam (arXiv:1412.6980)"
_INIT = "Glorot & Bengio 2010; He et al. 2015: init variance matched to the activation"
_LR = "Bengio 2012, Practical recommendations (arXiv:1206.5533): lower the rate if unstable"


@dataclass(frozen=True)
class Candidate:
    """One remedy to try: a name, its config patch, why, where it comes from, what it targets.

    Example:
        >>> c = Candidate("adam", {"train.optimizer.name": "adam"}, "why", "src", ("x",))
        >>> c.label
        'adam'
    """

    name: str
    patch: dict[str, Any] = field(hash=False)
    why: str = ""
    source: str = ""
    targets: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """The candidate's name (used as its run label)."""
        return self.name

    def as_toml(self) -> str:
        """The remedy as a config patch (TOML).

        >>> print(Candidate("clip", {"train.optimizer.global_clipnorm": 1.0}).as_toml())
        [train]
        <BLANKLINE>
        [train.optimizer]
        global_clipnorm = 1.0
        """
        from steadygrad.doctor.remedy_code import as_toml

        return as_toml(self.patch)

    def as_pytorch(self) -> str:
        """The remedy as the PyTorch code a plain-PyTorch user would write.

        >>> print(Candidate("pre_ln", {"model.rewrites+": ["pre_ln"]}).as_pytorch())
        # pre-LN: ...
        for m in model.modules():
            if isinstance(m, nn.TransformerEncoderLayer):
                m.norm_first = True
        """
        from steadygrad.doctor.remedy_code import as_pytorch

        return as_pytorch(self.patch)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict.

        >>> Candidate("a", {"x.y": 1}).to_dict()["patch"]
        {'x.y': 1}
        """
        return {"name": self.name, "patch": dict(self.patch), "why": self.why,
                "source": self.source, "targets": list(self.targets)}


def _c(name: str, patch: dict[str, Any], why: str, source: str) -> Candidate:
    return Candidate(name, patch, why, source)


_ELU_HE = _c("elu_he", {"model.activation": "elu", "model.kernel_initializer": "he_normal"},
             "ELU does not saturate for positive inputs and keeps mean outputs near 0", _ELU)
_SELU_STD = _c("selu_lecun_standardized",
               {"model.activation": "selu", "model.kernel_initializer": "lecun_normal",
                "data.standardize": True},
               "SELU + LeCun init on standardized inputs self-normalizes through depth", _SELU)
_BN_AFTER = _c("batch_norm_after", {"model.batch_norm": "after"},
               "batch norm after the activation re-centres every layer's output", _BN)
_MATCHED = _c("matched_init", {"model.kernel_initializer": "auto"},
              "the initializer whose variance matches the activation", _INIT)
_ADAM_C = _c("adam", {"train.optimizer.name": "adam", "train.optimizer.learning_rate": 1e-3},
             "per-parameter step sizes rescale small and large gradients alike", _ADAM)
_CLIPNORM = _c("clip_norm", {"train.optimizer.clipnorm": 1.0},
               "caps each parameter tensor's gradient norm at 1", _CLIP)
_DIV10 = _c("learning_rate_div10", {"train.optimizer.learning_rate": "div10"},
            "a 10x smaller step stays below the stability edge", _LR)

_LR_FIND = _c("lr_find", {"train.optimizer.learning_rate": "lr_find"},
              "the rate from a range test instead of a guess",
              "Smith 2017, Cyclical Learning Rates (arXiv:1506.01186), LR range test")
_ONE_CYCLE = _c("one_cycle", {"train.schedule": "one_cycle"},
                "warm-up to the rate, then anneal: no large step on a fresh model",
                "Smith & Topin 2017, Super-Convergence (arXiv:1708.07120)")
_BN_BEFORE = _c("batch_norm", {"model.batch_norm": "before"},
                "batch norm re-standardizes every pre-activation", _BN)

TOOLBOX: dict[str, tuple[Candidate, ...]] = {
    "vanishing_gradients": (_ELU_HE, _SELU_STD, _BN_AFTER, _MATCHED, _ADAM_C),
    "saturation": (_ELU_HE, _SELU_STD, _BN_AFTER, _MATCHED, _ADAM_C),
    "exploding_gradients": (_CLIPNORM, _DIV10, _ADAM_C),
    "non_finite": (_CLIPNORM, _DIV10, _ADAM_C),
    "dead_units": (_ELU_HE, _BN_AFTER, _DIV10),
    "learning_rate": (_ADAM_C,),
    "self_normalization": (),
    "impaired_learning": (_LR_FIND, _ADAM_C, _ONE_CYCLE, _BN_BEFORE, _MATCHED, _DIV10,
                          _CLIPNORM),
}
"""Extra toolbox entries per finding kind, tried after the monitor's own remedies."""


def _key(patch: Mapping[str, Any]) -> str:
    return json.dumps(patch, sort_keys=True, default=str)


def propose(kinds: Sequence[str], any_model: bool = False) -> list[Candidate]:
    """Candidates for the finding ``kinds``: remedy table then toolbox, round-robin, deduplicated.

    Args:
        kinds: finding kinds in order of importance.
        any_model: the model is not the built-in MLP (a factory or another architecture):
            the remedies are :data:`steadygrad.doctor.any_model.MODEL_TOOLBOX`'s rewrites and
            training changes instead of MLP config keys.

    Returns:
        Candidates in the order to try them; ``targets`` lists the kinds each one addresses.

    >>> [c.name for c in propose(["exploding_gradients"])]
    ['clip_global_norm', 'lower_learning_rate', 'matched_init', 'batch_norm', 'clip_norm',
     'learning_rate_div10', 'adam']
    """
    lists: list[list[Candidate]] = []
    if any_model:
        from steadygrad.doctor.any_model import MODEL_TOOLBOX

        lists = [list(MODEL_TOOLBOX.get(kind, ())) for kind in kinds]
    for kind in kinds if not any_model else ():
        from_table = [Candidate(r.name, dict(r.patch), r.why, r.source)
                      for r in REMEDIES.get(kind, ())]
        lists.append(from_table + list(TOOLBOX.get(kind, ())))
    order: dict[str, Candidate] = {}
    targets: dict[str, list[str]] = {}
    for depth in range(max((len(x) for x in lists), default=0)):
        for kind, items in zip(kinds, lists, strict=True):
            if depth >= len(items):
                continue
            cand = items[depth]
            key = _key(cand.patch)
            if key not in order:
                order[key] = cand
                targets[key] = []
            if kind not in targets[key]:
                targets[key].append(kind)
    return [Candidate(c.name, c.patch, c.why, c.source, tuple(targets[k]))
            for k, c in order.items()]


def apply_patch(raw: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of the config table ``raw`` with every dotted key of ``patch`` set.

    >>> apply_patch({"train": {"epochs": 1}}, {"train.optimizer.clipnorm": 1.0})["train"]
    {'epochs': 1, 'optimizer': {'clipnorm': 1.0}}
    """
    out = copy.deepcopy(dict(raw))
    for key, value in patch.items():
        if key.endswith("+"):  # append to a list (model.rewrites+)
            current = _get(out, key[:-1])
            current = [] if current is inspect.Parameter.empty or current is None else current
            set_key(out, key[:-1], list(current) + copy.deepcopy(list(value)))
        else:
            set_key(out, key, copy.deepcopy(value))
    return out


def merge_patches(first: Mapping[str, Any], second: Mapping[str, Any]) -> dict[str, Any] | None:
    """The union of two patches, or None when they set one key to different values.

    >>> merge_patches({"m.a": "selu"}, {"m.a": "selu", "m.b": 1})
    {'m.a': 'selu', 'm.b': 1}
    """
    out = dict(first)
    for key, value in second.items():
        if key.endswith("+") and key in out:  # two appends: one after the other
            out[key] = list(out[key]) + list(value)
            continue
        if key in out and _key({"v": out[key]}) != _key({"v": value}):
            return None
        out[key] = value
    return out


def _loader_default(data_name: str, key: str) -> Any:
    """The default of ``key`` in the dataset loader's signature (inspect.Parameter.empty)."""
    from steadygrad.data.datasets import DATASETS

    try:
        fn = DATASETS.get(data_name)
        param = inspect.signature(fn).parameters.get(key)
    except (ConfigError, TypeError, ValueError):
        return inspect.Parameter.empty
    return inspect.Parameter.empty if param is None else param.default


def _effective(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The validated, fully resolved config table (every default filled in)."""
    return config_to_dict(config_from_dict(raw))


def _get(table: Mapping[str, Any], dotted: str) -> Any:
    node: Any = table
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return inspect.Parameter.empty
        node = node[part]
    return node


def patch_effect(raw: Mapping[str, Any], patch: Mapping[str, Any]) -> tuple[dict[str, Any] | None,
                                                                            str | None]:
    """Apply ``patch`` to ``raw`` and validate: ``(new table, None)`` or ``(None, why skipped)``.

    ``"div10"`` learning rates are resolved here (one tenth of the current rate, or of the
    optimizer's Keras default when unset: 0.01 for SGD-family, else 0.001). ``"lr_find"`` is
    kept for the caller to resolve. A patch that changes nothing in the resolved config (data
    loader defaults included) is skipped, and so is one that changes nothing but an
    ``"lr_find"`` rate (it would repeat the ``lr_find`` trial).

    >>> raw = {"model": {"activation": "relu"}, "train": {"optimizer": {"learning_rate": 0.1}}}
    >>> table, why = patch_effect(raw, {"train.optimizer.learning_rate": "div10"})
    >>> table["train"]["optimizer"]["learning_rate"], why
    (0.01, None)
    >>> patch_effect(raw, {"model.activation": "relu"})[1]
    'changes nothing (model.activation is already relu)'
    >>> adam = {"train": {"optimizer": {"name": "adam"}}}
    >>> patch_effect(adam, {"train.optimizer.name": "adam",
    ...                     "train.optimizer.learning_rate": "lr_find"})[1]
    'changes nothing but the range-tested rate (train.optimizer.name is already adam): the same
     trial as lr_find'
    >>> patch_effect(raw, {"model.residual": False})[1]
    "not applicable: model.residual: got unknown key 'residual'..."
    """
    base = _effective(raw)
    patch = dict(patch)
    lr_key = "train.optimizer.learning_rate"
    if patch.get(lr_key) == "div10":
        current = base["train"]["optimizer"]["learning_rate"]
        if current is None:
            name = str(base["train"]["optimizer"]["name"])
            current = 0.01 if name in ("sgd", "momentum", "nesterov") else 0.001
        patch[lr_key] = float(f"{current / 10:.6g}")
    same = []
    for key, value in patch.items():
        if value == "lr_find" or key.endswith("+"):  # appended rewrites: see the doctor
            continue
        old = _get(base, key)
        if old is inspect.Parameter.empty and key.startswith("data."):
            old = _loader_default(str(base["data"]["name"]), key.split(".", 1)[1])
        if old is not inspect.Parameter.empty and _key({"v": old}) == _key({"v": value}):
            same.append(f"{key} is already {value}")
    if len(same) == len(patch):
        return None, f"changes nothing ({', '.join(same)})"
    found = [k for k, v in patch.items() if v == "lr_find"]
    if same and len(same) + len(found) == len(patch):  # e.g. adam_lr_find on an Adam run
        return None, (f"changes nothing but the range-tested rate ({', '.join(same)}): the same "
                      "trial as lr_find")
    probe = {k: (0.001 if v == "lr_find" else v) for k, v in patch.items()}
    try:
        config_from_dict(apply_patch(raw, probe))
    except ConfigError as err:
        return None, f"not applicable: {err}"
    return apply_patch(raw, patch), None


def unique(candidates: Iterable[Candidate]) -> list[Candidate]:
    """Drop candidates whose patch repeats an earlier one (first kept).

    >>> [c.name for c in unique([Candidate("a", {"x": 1}), Candidate("b", {"x": 1})])]
    ['a']
    """
    seen: set[str] = set()
    out = []
    for c in candidates:
        k = _key(c.patch)
        if k not in seen:
            seen.add(k)
            out.append(c)
    return out


def _range_test(table: dict[str, Any], seed: int, cache: DataCache) -> Any:
    """The LR range test (:func:`steadygrad.optim.lr_finder.lr_find`, 100 steps) on the
    ``seed`` model of ``table``, with its optimizer and batch size."""
    from steadygrad.experiments.execute import build_model, fit_arguments
    from steadygrad.optim.lr_finder import lr_find

    probe = dict(table)
    probe["train"] = {**table["train"], "optimizer": {**table["train"]["optimizer"],
                                                      "learning_rate": 1e-3}}
    config = config_from_dict(probe)
    data = cache.get(config)
    model = build_model(config, data)
    optimizer = fit_arguments(config)["optimizer"]
    return lr_find(model, data, optimizer=optimizer, batch_size=config.train.batch_size,
                   num_steps=100, seed=seed)


def _resolve_lr(table: dict[str, Any], key: str, seed: int, cache: DataCache
                ) -> tuple[float | None, str]:
    """The rate for the ``"lr_find"`` placeholder: the range test's suggestion.

    The one rule of the library (:func:`steadygrad.optim.lr_finder.suggest_lr`, the
    steepest descent of the centered-average curve, as ``steadygrad lr-find`` prints it); a
    flat curve gives no rate, and the candidate is skipped with the range test's reason.
    """
    from steadygrad.optim.lr_finder import NoSuggestionError

    found = _range_test(table, seed, cache)
    try:
        lr = found.suggestion
    except NoSuggestionError as err:
        return None, f"LR range test on the seed-{seed} model gave no rate: {err}"
    return lr, (f"LR range test (Smith 2017) on the seed-{seed} model: the steepest descent "
                f"of the smoothed loss (steadygrad lr-find's rule) at {lr:.3g}")
