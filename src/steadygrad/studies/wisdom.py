"""Common wisdom about each study's techniques, checked against the study's own numbers.

Each check takes the study's per-run rows (``results.csv`` read as dicts) and returns one
sentence: the claim as practitioners state it, what was measured, and whether the claim
*held* or was *contradicted* here. The claim is fixed text; the verdict and every number are
computed from the rows, so a study that measures the opposite says so plainly.

One noise rule decides every verdict (:func:`beats`): "A is better than B" *holds* when
mean(A) - mean(B) exceeds sd(A) + sd(B) (sample standard deviations over seeds; 0 for a single
seed), is *contradicted* when mean(B) - mean(A) exceeds it, and is *not established* otherwise
(a gap within seed noise, or a missing arm). A claim about several comparisons holds when every
one holds, is contradicted when any one is contradicted, and is otherwise not established
(:func:`combine`). Orders (activations) are checked as their adjacent pairs; "lower is better"
quantities (epochs to a target, test error) are compared negated; a std over two seeds is a
spread, not a confidence interval, and no interval is claimed.

Example:
    >>> rows = [{"study.setup": "none", "status": "diverged", "val_accuracy": ""},
    ...         {"study.setup": "clipnorm", "status": "done", "val_accuracy": "0.8"}]
    >>> print(check("clipping", rows))
    Common wisdom: gradient clipping stops a network whose gradients explode from diverging. \
Measured: without clipping 1/1 runs diverged; clipnorm 0/1 diverged (val_accuracy 0.800). \
Verdict: holds here.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from steadygrad.experiments.report import mean_std
from steadygrad.studies.analysis import first_reaching

__all__ = ["CHECKS", "beats", "check", "combine", "fmt_stat", "mean_of", "verdict"]

Row = Mapping[str, Any]


def _num(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def mean_of(rows: Sequence[Row], metric: str = "val_accuracy",
            **where: Any) -> tuple[float | None, float | None, int]:
    """Mean, std (None for one value) and count of ``metric`` over the rows matching ``where``.

    Keys of ``where`` match a column exactly or its last dotted part (``setup`` matches
    ``study.setup``); values are compared as strings. Rows without a finite value are skipped.

    Example:
        >>> rows = [{"model.depth": "10", "val_accuracy": "0.5"},
        ...         {"model.depth": "10", "val_accuracy": "0.7"},
        ...         {"model.depth": "50", "val_accuracy": ""}]
        >>> mean_of(rows, depth=10)
        (0.6, 0.1414213562373095, 2)
        >>> mean_of(rows, depth=50)
        (None, None, 0)
    """
    values = []
    for row in rows:
        if all(_get(row, k) == str(v) for k, v in where.items()):
            value = _num(row.get(metric))
            if value is not None:
                values.append(value)
    mean, std = mean_std(values)
    return mean, std, len(values)


def _get(row: Row, key: str) -> str | None:
    if key in row:
        return str(row[key])
    for k, v in row.items():
        if k.rsplit(".", 1)[-1] == key:
            return str(v)
    return None


def _values(rows: Sequence[Row], key: str) -> list[str]:
    out: list[str] = []
    for row in rows:
        v = _get(row, key)
        if v is not None and v not in out:
            out.append(v)
    return out


def fmt_stat(mean: float, std: float | None = None) -> str:
    """The one rounding rule of the results page for a mean ± std of accuracies or losses:
    3 decimals each (the rule of the studies' conclusions); no std for a single value.

    >>> fmt_stat(0.85147, 0.00251), fmt_stat(0.9, None)
    ('0.851 ± 0.003', '0.900')
    """
    return f"{mean:.3f}" + (f" ± {std:.3f}" if std is not None else "")


def _fmt(mean: float | None, std: float | None = None) -> str:
    return "n/a (no finished run)" if mean is None else fmt_stat(mean, std)


def verdict(held: bool | None) -> str:
    """The closing words of a check.

    >>> verdict(True), verdict(False), verdict(None)
    ('Verdict: holds here.', 'Verdict: contradicted here.', 'Verdict: not established here.')
    """
    if held is None:
        return "Verdict: not established here."
    return "Verdict: holds here." if held else "Verdict: contradicted here."


Stat = tuple[float | None, float | None, int]


def beats(a: Stat, b: Stat) -> bool | None:
    """Whether mean ``a`` is above mean ``b`` by more than their summed stds (True), below by
    more (False), or neither / unknown (None). Each is ``(mean, std, count)``.

    >>> beats((0.9, 0.01, 3), (0.8, 0.01, 3)), beats((0.8, 0.01, 3), (0.9, 0.01, 3))
    (True, False)
    >>> beats((0.85, 0.03, 3), (0.84, 0.02, 3)), beats((0.9, None, 1), (None, None, 0))
    (None, None)
    """
    if a[0] is None or b[0] is None:
        return None
    noise = (a[1] or 0.0) + (b[1] or 0.0)
    if a[0] - b[0] > noise:
        return True
    if b[0] - a[0] > noise:
        return False
    return None


def combine(outcomes: Sequence[bool | None]) -> bool | None:
    """All True → True; any False → False; otherwise (some within noise) None.

    >>> combine([True, True]), combine([True, None, False]), combine([True, None]), combine([])
    (True, False, None, None)
    """
    if any(o is False for o in outcomes):
        return False
    if outcomes and all(o is True for o in outcomes):
        return True
    return None


def _unstable(rows: Sequence[Row]) -> str:
    depth = max((int(d) for d in _values(rows, "depth")), default=0)
    healthy = [s for s in ("relu_he", "elu_he_bn", "selu_lecun") if s in _values(rows, "setup")]
    bad, bad_std, _ = mean_of(rows, setup="sigmoid_normal", depth=depth)
    good = {s: mean_of(rows, setup=s, depth=depth) for s in healthy}
    parts = ", ".join(f"{s} {_fmt(m, sd)}" for s, (m, sd, _) in good.items())
    finished = [stat for stat in good.values() if stat[0] is not None]
    bad_stat = mean_of(rows, setup="sigmoid_normal", depth=depth)
    held = None if bad is None or not finished else combine(
        [beats(stat, bad_stat) for stat in finished])
    return (f"Common wisdom: with sigmoid and a large N(0,1)-style initialization a deep MLP "
            f"stops learning, while ReLU + He, ELU + He + batch norm and SELU + LeCun keep "
            f"training. Measured at depth {depth}: sigmoid_normal {_fmt(bad, bad_std)}; "
            f"{parts}. {verdict(held)}")


def _initializers(rows: Sequence[Row]) -> str:
    expected = {"relu": "he_normal", "tanh": "glorot_uniform"}
    parts: list[str] = []
    outcomes: list[bool | None] = []
    for act, want in expected.items():
        inits = _values(rows, "kernel_initializer")
        stats = {i: mean_of(rows, activation=act, kernel_initializer=i) for i in inits}
        ranked = sorted(((m, i) for i, (m, _, _) in stats.items() if m is not None),
                        reverse=True)
        if not ranked or stats.get(want, (None,))[0] is None:
            outcomes.append(None)
            continue
        best = ranked[0][1]
        if best == want:
            outcomes.append(True)
            parts.append(f"{act}: best {want} {_fmt(*stats[want][:2])}")
            continue
        outcome = beats(stats[want], stats[best])
        outcomes.append(False if outcome is False else None)
        gap = (stats[best][0] or 0.0) - (stats[want][0] or 0.0)
        parts.append(f"{act}: best {best} {_fmt(*stats[best][:2])}, {want} "
                     f"{_fmt(*stats[want][:2])} ({gap:.3f} behind"
                     + (", within seed noise)" if outcome is None else ")"))
    return ("Common wisdom: He initialization suits ReLU and Glorot suits tanh. Measured "
            f"(mean val_accuracy): {'; '.join(parts)}. {verdict(combine(outcomes))}")


def _activations(rows: Sequence[Row]) -> str:
    order = ["selu", "elu", "leaky_relu", "relu", "tanh", "sigmoid"]
    stats = {a: mean_of(rows, activation=a) for a in order}
    means = {a: stats[a][0] for a in order}
    measured = sorted((a for a in order if means[a] is not None),
                      key=lambda a: -(means[a] or 0.0))
    claimed = [a for a in order if means[a] is not None]  # the wisdom's order, measured arms
    held = combine([beats(stats[a], stats[b]) for a, b in itertools.pairwise(claimed)]) \
        if len(claimed) > 1 else None
    text = " > ".join(f"{a} ({means[a]:.3f})" for a in measured)
    return ("Common wisdom: SELU > ELU > leaky ReLU > ReLU > tanh > logistic for deep nets. "
            f"Measured ranking by mean val_accuracy: {text}. {verdict(held)}")


def _mean_epochs(epochs: Sequence[int | None]) -> float | None:
    """Mean epochs to target when every seed got there, else None."""
    got = [e for e in epochs if e is not None]
    return statistics.fmean(got) if got and len(got) == len(epochs) else None


def _batch_norm(rows: Sequence[Row], curves: Mapping[str, Sequence[float]],
                target: float) -> str:
    parts: list[str] = []
    outcomes: list[bool | None] = []
    for depth in sorted({int(d) for d in _values(rows, "depth")}):
        per: dict[str, list[int | None]] = {}
        for row in rows:
            if _get(row, "depth") != str(depth):
                continue
            curve = curves.get(str(row.get("run")), [])
            per.setdefault(str(_get(row, "batch_norm")), []).append(first_reaching(curve, target))
        means = {mode: _mean_epochs(per.get(mode, [])) for mode in ("none", "before", "after")}
        text = ", ".join(f"{mode} {m:.1f}" if m is not None else f"{mode} not every seed"
                         for mode, m in means.items())
        parts.append(f"depth {depth}: {text}")
        bn = [mode for mode in ("before", "after") if means[mode] is not None]
        if not bn:
            continue
        best = min(bn, key=lambda mode: means[mode] or 0.0)
        if means["none"] is None:  # batch norm got there on every seed, no-BN did not
            outcomes.append(True if per.get("none") else None)
            continue
        # fewer epochs is better: compare negated means under the one noise rule
        outcomes.append(beats(_neg_stat(per[best]), _neg_stat(per["none"])))
    return (f"Common wisdom: batch normalization reaches a target accuracy in fewer epochs. "
            f"Measured (epochs to val_accuracy {target:g}, mean over seeds; 'not every seed' "
            f"= some seed never got there): {'; '.join(parts)}. "
            f"{verdict(combine(outcomes))}")


def _neg_stat(epochs: Sequence[int | None]) -> Stat:
    """(-mean, std, n) of epochs to target (every seed reached it), for :func:`beats`."""
    got = [float(e) for e in epochs if e is not None]
    mean, std = mean_std(got)
    return (None if mean is None else -mean, std, len(got))


def check_clipping(rows: Sequence[Row]) -> str:
    """The clipping check (see the module example)."""
    def diverged(setup: str) -> tuple[int, int]:
        sel = [r for r in rows if _get(r, "setup") == setup]
        return sum(r.get("status") != "done" for r in sel), len(sel)
    bad, total = diverged("none")
    others = [s for s in _values(rows, "setup") if s != "none"]
    parts = []
    ok = True
    for s in others:
        d, n = diverged(s)
        m, _, _ = mean_of(rows, setup=s)
        parts.append(f"{s} {d}/{n} diverged (val_accuracy {_fmt(m)})")
        ok = ok and d < bad
    held = None if bad == 0 else ok
    tail = "" if bad else " (the unclipped setup did not diverge, so the claim is not tested)"
    return ("Common wisdom: gradient clipping stops a network whose gradients explode from "
            f"diverging. Measured: without clipping {bad}/{total} runs diverged; "
            f"{'; '.join(parts)}{tail}. {verdict(held)}")


def _optimizers(rows: Sequence[Row]) -> str:
    names = _values(rows, "name")
    stats = {n: mean_of(rows, name=n) for n in names}
    none: Stat = (None, None, 0)
    adaptive = [stats[n] for n in ("rmsprop", "adam", "nadam", "adamax", "adamw")
                if n in stats and stats[n][0] is not None]
    worst = min(adaptive, key=lambda t: t[0] or 0.0) if adaptive else none
    held1 = beats(worst, stats.get("sgd", none))
    held2 = beats(stats.get("nadam", none), stats.get("adam", none))
    listing = ", ".join(f"{n} {_fmt(*t[:2])}" for n, t in sorted(
        stats.items(), key=lambda kv: -(kv[1][0] if kv[1][0] is not None else -1.0)))
    return ("Common wisdom: adaptive optimizers (RMSProp, Adam, Nadam, Adamax, AdamW) beat plain "
            f"SGD in the same budget, and Nadam usually beats Adam. Measured mean val_accuracy: "
            f"{listing}. Adaptive (the worst of them) vs SGD: {verdict(held1)[9:]} "
            f"Nadam vs Adam: {verdict(held2)[9:]}")


def _versus_baseline(rows: Sequence[Row], baseline: str) -> tuple[list[str], list[bool | None],
                                                                  Stat]:
    base = mean_of(rows, setup=baseline)
    parts: list[str] = []
    outcomes: list[bool | None] = []
    for s in _values(rows, "setup"):
        if s == baseline:
            continue
        stat = mean_of(rows, setup=s)
        outcome = beats(stat, base)
        outcomes.append(outcome)
        mark = {True: "better", False: "worse", None: "within seed noise"}[outcome]
        parts.append(f"{s} {_fmt(*stat[:2])} ({mark})")
    return parts, outcomes, base


def _schedules(rows: Sequence[Row]) -> str:
    parts, outcomes, const = _versus_baseline(rows, "constant")
    return ("Common wisdom: a decaying schedule (power, exponential, piecewise, performance, "
            f"1cycle) beats a constant learning rate. Measured: constant {_fmt(*const[:2])}; "
            f"{'; '.join(parts)}. {verdict(combine(outcomes))}")


def _regularization(rows: Sequence[Row]) -> str:
    parts, outcomes, none = _versus_baseline(rows, "none")
    better = sum(o is True for o in outcomes)
    return ("Common wisdom: l2, dropout, max-norm and alpha dropout each improve validation "
            f"accuracy over an unregularized network. Measured: none {_fmt(*none[:2])}; "
            f"{'; '.join(parts)} ({better} of {len(outcomes)} clearly better). "
            f"{verdict(combine(outcomes))}")


def _depth(rows: Sequence[Row], target: float) -> str:
    parts, deepest = [], {}
    for s in _values(rows, "setup"):
        ok = [int(d) for d in _values(rows, "depth")
              if (mean_of(rows, setup=s, depth=d)[0] or 0.0) >= target]
        deepest[s] = max(ok) if ok else 0
        parts.append(f"{s} {deepest[s] or 'none'}")
    base = deepest.get("sigmoid_glorot")
    others = [v for k, v in deepest.items() if k != "sigmoid_glorot"]
    held = None if base is None or not others else min(others) > base
    return ("Common wisdom: with a matched initialization and a non-saturating activation "
            "(or batch norm) much deeper plain MLPs train than with sigmoid + Glorot. "
            f"Measured deepest net reaching mean val_accuracy {target:g}: {', '.join(parts)}. "
            f"{verdict(held)}")


def _transfer(rows: Sequence[Row]) -> str:
    parts: list[str] = []
    gains: list[Stat] = []  # error reduction per pair: scratch - transfer, noise summed
    for pair in _values(rows, "pair"):
        scratch, s_std, n_s = mean_of(rows, "test_error", pair=pair, method="scratch")
        moved, m_std, n_m = mean_of(rows, "test_error", pair=pair, method="transfer")
        if scratch is None or moved is None or scratch == 0:
            continue
        noise = None if s_std is None and m_std is None else (s_std or 0.0) + (m_std or 0.0)
        gains.append((scratch - moved, noise, min(n_s, n_m)))
        # the same numbers, rounded the same way, as the study's own conclusions
        # (transfer_study.conclusions): errors to 0.01 %, the reduction to 0.1 %
        parts.append(f"{pair}: error {100 * scratch:.2f}% → {100 * moved:.2f}% "
                     f"(error-rate reduction {100 * (1 - moved / scratch):.1f}%)")
    # "depends strongly on the pair": two pairs' gains differ beyond noise, or some pair
    # gains nothing beyond noise; contradicted when every pair gains beyond noise and no two
    # gains differ beyond noise.
    zero: Stat = (0.0, None, 1)
    differ = any(beats(a, b) for a in gains for b in gains if a is not b)
    helps = [beats(g, zero) for g in gains]
    held = None if len(gains) < 2 else (
        True if differ or any(h is False for h in helps)
        else False if all(h is True for h in helps) else None)
    return ("Common wisdom: transfer learning between small dense networks is unreliable; "
            "the gain depends strongly on the task pair. Measured: "
            f"{'; '.join(parts)}. {verdict(held)}")


def _pretraining(rows: Sequence[Row]) -> str:
    budgets = sorted({int(b) for b in _values(rows, "labels")})
    if len(budgets) < 2:
        return f"Common wisdom check needs two label budgets. {verdict(None)}"
    def gain(labels: int) -> float | None:
        s, _, _ = mean_of(rows, "test_accuracy", method="scratch", labels=labels)
        best = [m for m in (mean_of(rows, "test_accuracy", method=k, labels=labels)[0]
                            for k in ("ae_whole", "ae_greedy")) if m is not None]
        return None if s is None or not best else max(best) - s
    lo, hi = gain(budgets[0]), gain(budgets[-1])
    held = None if lo is None or hi is None else lo > 0 and lo > hi
    return ("Common wisdom: unsupervised pretraining helps most when labels are scarce. "
            f"Measured gain of the best pretrained classifier over scratch: {budgets[0]} labels "
            f"{_pts(lo)}, {budgets[-1]} labels {_pts(hi)}. {verdict(held)}")


def _pts(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:+.1f} points"


CHECKS: dict[str, Callable[..., str]] = {
    "unstable_gradients": _unstable,
    "initializers": _initializers,
    "activations": _activations,
    "batch_norm": _batch_norm,
    "clipping": check_clipping,
    "optimizers": _optimizers,
    "schedules": _schedules,
    "regularization": _regularization,
    "depth": _depth,
    "transfer": _transfer,
    "pretraining": _pretraining,
}
"""Study name -> check; ``batch_norm`` also takes ``curves`` and ``target``, ``depth``
takes ``target``."""


def check(name: str, rows: Sequence[Row], **extra: Any) -> str:
    """The common-wisdom sentence of study ``name`` computed from ``rows``.

    Example:
        >>> rows = [{"model.activation": a, "val_accuracy": v} for a, v in
        ...         [("selu", 0.9), ("elu", 0.85), ("relu", 0.88)]]
        >>> check("activations", rows).endswith("Verdict: contradicted here.")
        True
    """
    return CHECKS[name](rows, **extra)
