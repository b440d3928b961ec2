"""Compare models at several label budgets: a seeded, nested, class-balanced label draw.

Pretraining pays off when labels are few; the comparison is a loop over label budgets, each
model trained from its factory on the same labelled subset and evaluated on the same data.

Example:
    >>> import torch
    >>> x = torch.randn(30, 2); y = torch.arange(30) % 3
    >>> small, _ = take_labels(x, y, 6, seed=1)
    >>> large, _ = take_labels(x, y, 12, seed=1)
    >>> torch.equal(large[:6], small)  # budgets are nested
    True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from steadygrad.errors import ConfigError

__all__ = ["label_budget_table", "take_labels"]


def take_labels(
    x: torch.Tensor, y: torch.Tensor, n: int, *, seed: int = 0, stratified: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` labelled examples drawn from ``(x, y)``: a seeded, class-balanced subset.

    With ``stratified`` (integer class labels), classes take turns: every class gets
    ``n // C`` or one more example while it has any left. A smaller budget's subset is a
    prefix of a larger one's (same seed), so label-budget comparisons are nested.

    Example:
        >>> x = torch.arange(12.0).unsqueeze(1); y = torch.tensor([0] * 9 + [1] * 3)
        >>> xs, ys = take_labels(x, y, 4, seed=0)
        >>> sorted(ys.tolist())
        [0, 0, 1, 1]
    """
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor) or len(x) != len(y):
        raise ConfigError("x, y", type(x).__name__, "tensors with the same number of rows")
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= len(y):
        raise ConfigError("n", n, f"an int in [1, {len(y)}] (the number of examples)")
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    if stratified and not y.is_floating_point() and y.ndim == 1:
        labels = y[perm]
        rank = torch.zeros(len(y), dtype=torch.long)
        for c in labels.unique():
            where = (labels == c).nonzero().flatten()
            rank[where] = torch.arange(len(where))
        order = torch.argsort(rank * len(y) + torch.arange(len(y)), stable=True)
        perm = perm[order]
    idx = perm[:n]
    return x[idx], y[idx]


def label_budget_table(
    models: Mapping[str, Callable[[], nn.Module]],
    train: tuple[torch.Tensor, torch.Tensor],
    eval_data: tuple[torch.Tensor, torch.Tensor],
    budgets: Sequence[int],
    *,
    seed: int = 0,
    metric: str = "accuracy",
    **fit_kwargs: Any,
) -> list[dict[str, Any]]:
    """Train each model on each label budget and evaluate it: rows for a comparison table.

    Args:
        models: ``{name: factory}``, each factory returning a fresh model (e.g. ``lambda:
            classifier_from_encoder(ae, 10)`` and ``lambda: mlp(...)`` from scratch).
        train: the full labelled pool ``(x, y)``; each budget takes :func:`take_labels`.
        eval_data: ``(x, y)`` to evaluate on.
        budgets: numbers of labelled examples.
        seed: seeds the label draw and each ``fit``.
        metric: the metric reported (besides ``loss``).
        **fit_kwargs: passed to ``fit``.

    Returns:
        ``[{"model": name, "labels": n, metric: value, "loss": value}]``, budgets outer.

    Example:
        >>> import torch
        >>> from steadygrad.nn.build import mlp
        >>> x = torch.randn(200, 4); y = (x[:, 0] > 0).long()
        >>> rows = label_budget_table({"scratch": lambda: mlp(4, (8,), num_outputs=2, seed=0)},
        ...                           (x, y), (x, y), [10, 50], epochs=1, verbose=0)
        >>> [(r["model"], r["labels"]) for r in rows]
        [('scratch', 10), ('scratch', 50)]
    """
    from steadygrad.train.evaluate import evaluate
    from steadygrad.train.loop import fit

    if not isinstance(models, Mapping) or not models or not all(
        callable(f) for f in models.values()
    ):
        raise ConfigError("models", models, "a non-empty mapping {name: model factory}")
    if isinstance(budgets, (int, str)) or not budgets:
        raise ConfigError("budgets", budgets, "a non-empty list of label counts")
    for b in budgets:
        if isinstance(b, bool) or not isinstance(b, int) or not 1 <= b <= len(train[1]):
            raise ConfigError("budgets", b, f"label counts in [1, {len(train[1])}]")
    rows = []
    for n in budgets:
        xs, ys = take_labels(train[0], train[1], n, seed=seed)
        for name, factory in models.items():
            model = factory()
            fit(model, (xs, ys), seed=seed, **fit_kwargs)
            scores = evaluate(model, eval_data, metrics=[metric])
            rows.append({"model": name, "labels": n, metric: scores[metric],
                         "loss": scores["loss"]})
    return rows
