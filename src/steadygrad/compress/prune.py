"""Sparse models: zero small weights, measure sparsity, prune to a target with fine-tuning.

Three routes to a sparse model (Géron, *Hands-On ML*, ch. 11, "Sparse Models"):

1. train with ℓ1 (``steadygrad.nn.regularizers.attach(layer, l1=...)`` or ``mlp(l1=...)``),
   which pushes many weights to (almost) zero;
2. zero the weights below a threshold after training (:func:`zero_small_weights_`);
3. iterative global magnitude pruning (:func:`prune_to_sparsity`): remove the weights with
   the smallest ``|w|`` across all layers, fine-tune, repeat, following the gradual schedule of
   Zhu & Gupta ("To prune, or not to prune", 2017):
   ``s_t = s_f · (1 - (1 - t/n)³)`` for steps ``t = 1..n`` (large cuts first, small ones late,
   when fewer redundant weights remain). It uses ``torch.nn.utils.prune`` (global
   ``L1Unstructured``) and ``prune.remove`` at the end, so the result is an ordinary model
   whose pruned weights are exact zeros.

Only the weights of ``Linear`` and ``Conv`` layers are pruned and counted (biases and
batch-norm parameters are few and not pruned, as is customary).

Example:
    >>> import torch
    >>> from steadygrad.nn.build import mlp
    >>> model = mlp(20, (50, 50), num_outputs=3, seed=0)
    >>> report = prune_to_sparsity(model, 0.9, steps=3)
    >>> round(sparsity(model), 6), [round(s, 3) for s in report.schedule]
    (0.9, [0.633, 0.867, 0.9])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn.utils import prune

from steadygrad.errors import ConfigError

__all__ = [
    "PRUNABLE",
    "PruneReport",
    "gradual_schedule",
    "layer_sparsity",
    "prunable_layers",
    "prune_to_sparsity",
    "sparsity",
    "sparsity_table",
    "zero_small_weights_",
]

PRUNABLE: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
"""Layer types whose ``weight`` is pruned and counted."""


def prunable_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``[(qualified name, layer)]`` of the ``Linear``/``Conv`` layers of ``model``.

    >>> from torch import nn
    >>> [n for n, _ in prunable_layers(nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1)))]
    ['0', '2']
    """
    if not isinstance(model, nn.Module):
        raise ConfigError("model", type(model).__name__, "a torch.nn.Module")
    return [(n, m) for n, m in model.named_modules() if isinstance(m, PRUNABLE)]


def _weights(model: nn.Module) -> list[tuple[str, torch.Tensor]]:
    layers = prunable_layers(model)
    if not layers:
        raise ConfigError("model", type(model).__name__, "a model with Linear or Conv layers")
    out: list[tuple[str, torch.Tensor]] = []
    for n, m in layers:
        weight = m.weight
        assert isinstance(weight, torch.Tensor)
        out.append((n, weight))
    return out


def layer_sparsity(model: nn.Module) -> dict[str, float]:
    """Fraction of exactly-zero weights of each ``Linear``/``Conv`` layer.

    >>> import torch
    >>> layer = torch.nn.Linear(2, 2)
    >>> with torch.no_grad():
    ...     _ = layer.weight.copy_(torch.tensor([[0.0, 1.0], [0.0, 0.0]]))
    >>> layer_sparsity(torch.nn.Sequential(layer))
    {'0': 0.75}
    """
    return {n: float((w == 0).sum()) / w.numel() for n, w in _weights(model)}


def sparsity(model: nn.Module) -> float:
    """Fraction of exactly-zero weights over all ``Linear``/``Conv`` weights of ``model``.

    >>> import torch
    >>> sparsity(torch.nn.Linear(3, 3))
    0.0
    """
    weights = _weights(model)
    zeros = sum(int((w == 0).sum()) for _, w in weights)
    return zeros / sum(w.numel() for _, w in weights)


def zero_small_weights_(model: nn.Module, threshold: float) -> int:
    """Set the ``Linear``/``Conv`` weights with ``|w| < threshold`` to zero, in place.

    Typically after training with ℓ1, which leaves many weights tiny but not zero.

    Returns:
        How many weights were zeroed (already-zero weights not counted).

    Example:
        >>> import torch
        >>> layer = torch.nn.Linear(2, 2)
        >>> with torch.no_grad():
        ...     _ = layer.weight.copy_(torch.tensor([[0.001, 1.0], [-0.002, 0.5]]))
        >>> zero_small_weights_(layer, 0.01), layer.weight.tolist()
        (2, [[0.0, 1.0], [0.0, 0.5]])
    """
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or threshold < 0:
        raise ConfigError("threshold", threshold, "a non-negative float", hint="e.g. 1e-3")
    count = 0
    with torch.no_grad():
        for _, w in _weights(model):
            small = (w.abs() < threshold) & (w != 0)
            count += int(small.sum())
            w.masked_fill_(small, 0.0)
    return count


def gradual_schedule(target: float, steps: int) -> list[float]:
    """Sparsity after each of ``steps`` pruning steps: ``s_f (1 - (1 - t/n)³)`` (Zhu & Gupta).

    >>> [round(s, 4) for s in gradual_schedule(0.8, 2)]
    [0.7, 0.8]
    """
    return [target * (1 - (1 - t / steps) ** 3) for t in range(1, steps + 1)]


@dataclass
class PruneReport:
    """What :func:`prune_to_sparsity` did.

    Attributes:
        target: the requested global sparsity.
        schedule: the sparsity reached after each step.
        fine_tune_results: what the fine-tuning call returned after each step.
        layer_sparsity: per-layer sparsity of the final model.

    Example:
        >>> import torch
        >>> model = torch.nn.Sequential(torch.nn.Linear(10, 10))
        >>> report = prune_to_sparsity(model, 0.5, steps=2)  # Zhu-Gupta: 0.4375 -> 44 of 100
        >>> report.target, report.schedule, report.layer_sparsity
        (0.5, [0.44, 0.5], {'0': 0.5})
    """

    target: float
    schedule: list[float] = field(default_factory=list)
    fine_tune_results: list[Any] = field(default_factory=list)
    layer_sparsity: dict[str, float] = field(default_factory=dict)


def _fine_tuner(fine_tune: Any) -> Callable[[nn.Module], Any] | None:
    if fine_tune is None or callable(fine_tune):
        return fine_tune
    if isinstance(fine_tune, Mapping):
        if "data" not in fine_tune:
            raise ConfigError("fine_tune", dict(fine_tune), "fit keyword arguments including "
                              "'data'", hint="e.g. {'data': dataset, 'epochs': 1}")
        kwargs = dict(fine_tune)
        data = kwargs.pop("data")

        def run(model: nn.Module) -> Any:
            from steadygrad.train.loop import fit

            return fit(model, data, **kwargs)

        return run
    raise ConfigError("fine_tune", fine_tune, "None, a callable model -> result, or a dict of "
                      "fit arguments with 'data'")


def prune_to_sparsity(
    model: nn.Module,
    target: float,
    *,
    steps: int = 3,
    fine_tune: Callable[[nn.Module], Any] | Mapping[str, Any] | None = None,
) -> PruneReport:
    """Iterative global magnitude pruning of ``model`` to exactly ``target`` sparsity, in place.

    Each step prunes, across all ``Linear``/``Conv`` weights together, the smallest-``|w|``
    weights still present until the schedule's sparsity is reached (an exact count:
    ``round(s_t · total)`` zeros), then fine-tunes (masked weights stay zero while training).
    Finally ``prune.remove`` makes the masks permanent: the weights are plain parameters with
    exact zeros and the model has no pruning hooks left.

    Args:
        model: the trained model (any ``nn.Module``), pruned in place.
        target: global sparsity to reach, in ``[0, 1)``.
        steps: pruning steps (Zhu & Gupta's cubic schedule; 1 = one-shot).
        fine_tune: after each step, a callable ``model -> result`` or a dict of
            :func:`steadygrad.train.loop.fit` arguments with ``data`` (None: no fine-tuning).

    Returns:
        A :class:`PruneReport`.

    Raises:
        ConfigError: bad arguments, or a model that already carries pruning masks.

    Example:
        >>> import torch
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU(),
        ...                             torch.nn.Linear(8, 2))
        >>> kept = torch.cat([model[0].weight.flatten(), model[2].weight.flatten()]).abs()
        >>> calls = []
        >>> report = prune_to_sparsity(model, 0.75, steps=2, fine_tune=calls.append)
        >>> report.schedule, len(calls), sparsity(model)  # 60 of the 80 weights are zero
        ([0.65, 0.75], 2, 0.75)
        >>> left = torch.cat([model[0].weight.flatten(), model[2].weight.flatten()]).abs()
        >>> bool(left[left > 0].min() >= kept.sort().values[59])  # the 20 largest |w| survive
        True
        >>> prune_to_sparsity(model, 1.0)
        Traceback (most recent call last):
        ...
        steadygrad.errors.ConfigError: target: got 1.0; expected a sparsity in [0, 1); e.g. 0.9
    """
    weights = _weights(model)
    if isinstance(target, bool) or not isinstance(target, (int, float)) or not 0 <= target < 1:
        raise ConfigError("target", target, "a sparsity in [0, 1)", hint="e.g. 0.9")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ConfigError("steps", steps, "an int >= 1")
    if prune.is_pruned(model):
        raise ConfigError("model", "pruned", "a model without pruning masks",
                          hint="call torch.nn.utils.prune.remove(layer, 'weight') first")
    tune = _fine_tuner(fine_tune)
    total = sum(w.numel() for _, w in weights)
    layers = [m for _, m in prunable_layers(model)]
    report = PruneReport(target=float(target))
    try:
        for s in gradual_schedule(float(target), steps):
            want = round(s * total)
            have = sum(int((getattr(m, "weight_mask", torch.ones(1)) == 0).sum()) for m in layers)
            if want > have:
                prune.global_unstructured(
                    [(m, "weight") for m in layers],
                    pruning_method=prune.L1Unstructured,
                    amount=want - have,
                )
            report.schedule.append(sparsity(model))
            if tune is not None:
                report.fine_tune_results.append(tune(model))
    finally:
        for m in layers:
            if prune.is_pruned(m):
                prune.remove(m, "weight")
    report.layer_sparsity = layer_sparsity(model)
    return report


def sparsity_table(
    model: nn.Module,
    targets: Sequence[float],
    evaluate: Callable[[nn.Module], float | Mapping[str, float]],
    *,
    steps: int = 3,
    fine_tune: Callable[[nn.Module], Any] | Mapping[str, Any] | None = None,
) -> list[dict[str, float]]:
    """Rows of sparsity vs quality: prune a copy of ``model`` to each target and evaluate it.

    Args:
        model: the trained model (never modified: each target prunes a deep copy).
        targets: sparsities to reach (``0`` gives the unpruned baseline row).
        evaluate: ``model -> float`` or ``model -> {"accuracy": ..., ...}`` (e.g.
            ``lambda m: steadygrad.train.evaluate.evaluate(m, (x, y))``).
        steps, fine_tune: as :func:`prune_to_sparsity`.

    Returns:
        ``[{"target": t, "sparsity": reached, **metrics}]`` (a float result is ``"score"``).

    Example:
        >>> import torch
        >>> from steadygrad.nn.build import mlp
        >>> net = mlp(4, (16,), num_outputs=2, seed=0)
        >>> rows = sparsity_table(net, [0, 0.5], lambda m: m(torch.ones(1, 4)).sum().item())
        >>> [(r["target"], round(r["sparsity"], 3)) for r in rows]
        [(0.0, 0.0), (0.5, 0.5)]
    """
    import copy

    if isinstance(targets, (int, float)) or not targets:
        raise ConfigError("targets", targets, "a non-empty list of sparsities in [0, 1)")
    for t in targets:
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 <= t < 1:
            raise ConfigError("targets", t, "sparsities in [0, 1)")
    if not callable(evaluate):
        raise ConfigError("evaluate", evaluate, "a callable model -> float or dict of metrics")
    rows = []
    for t in targets:
        pruned = copy.deepcopy(model)
        if t > 0:
            prune_to_sparsity(pruned, t, steps=steps, fine_tune=fine_tune)
        result = evaluate(pruned)
        metrics = dict(result) if isinstance(result, Mapping) else {"score": float(result)}
        rows.append({"target": float(t), "sparsity": sparsity(pruned), **metrics})
    return rows
