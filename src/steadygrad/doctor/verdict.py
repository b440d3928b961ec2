"""The doctor's verdict: templates filled with the measured numbers and their comparisons.

No sentence is pre-written: each one states numbers from the trials, and every qualitative
word in it ("better", "worse", "gone", "at least") is chosen by comparing those numbers.

Example:
    >>> from steadygrad.doctor.trials import SeedRun, Trial
    >>> runs = tuple(SeedRun(i, "done", v, 0.3, (), (), 1.0, "") for i, v in enumerate([.8, .9]))
    >>> paired(Trial("a", "candidate", {}, {}, runs),
    ...        Trial("b", "baseline", {}, {}, tuple(r.__class__(r.seed, "done", 0.5, 2.0, (),
    ...              (), 1.0, "") for r in runs)), "val_accuracy")
    (0.35, 0.07071067811865474, 2, 2)
"""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING, Any

from steadygrad.doctor.impaired import IMPAIRED, REFERENCE_FRACTION
from steadygrad.doctor.result import better, fmt, succeeded
from steadygrad.doctor.trials import IMPAIRED_LOSS_FRACTION, Trial

if TYPE_CHECKING:
    from steadygrad.doctor.result import DoctorResult

__all__ = ["describe_patch", "paired", "sentences"]


def paired(trial: Trial, baseline: Trial, metric: str) -> tuple[float | None, float | None,
                                                                  int, int]:
    """Per-seed paired difference trial - baseline: (mean, std, seeds better, seeds compared).

    Only seeds present in both trials with a metric are compared; for a loss metric (no
    ``"acc"`` in its name) lower is better.

    Example:
        >>> from steadygrad.doctor.trials import SeedRun
        >>> def trial(values):
        ...     return Trial("t", "candidate", {}, {}, tuple(
        ...         SeedRun(i, "done", v, 0.3, (), (), 1.0, "") for i, v in enumerate(values)))
        >>> mean, std, wins, n = paired(trial([0.9, 0.6, 0.8]), trial([0.5, 0.7, None]),
        ...                             "val_accuracy")
        >>> round(mean, 3), round(std, 3), wins, n  # seeds 0 and 1: +0.4 and -0.1
        (0.15, 0.354, 1, 2)
        >>> paired(trial([0.2]), trial([0.5]), "val_loss")[2]  # a lower loss is a win
        1
        >>> paired(trial([]), trial([0.5]), "val_loss")
        (None, None, 0, 0)
    """
    base = {r.seed: r.metric for r in baseline.runs}
    diffs = [r.metric - b for r in trial.runs
             if r.metric is not None and (b := base.get(r.seed)) is not None]
    if not diffs:
        return None, None, 0, 0
    sign = 1.0 if "acc" in metric else -1.0
    wins = sum(sign * d > 0 for d in diffs)
    std = statistics.stdev(diffs) if len(diffs) > 1 else None
    return statistics.fmean(diffs), std, wins, len(diffs)


def describe_patch(patch: dict[str, Any]) -> str:
    """``activation=selu, kernel_initializer=lecun_normal`` from a patch.

    >>> describe_patch({"model.activation": "selu", "train.optimizer.learning_rate": 0.01})
    'activation=selu, learning_rate=0.01'
    >>> describe_patch({"model.rewrites+": ["pre_ln", {"name": "reinit"}]})
    'rewrites: pre_ln + reinit'
    """
    if not patch:
        return "no change"
    if any(k.endswith("+") for k in patch):
        from steadygrad.doctor.any_model import rewrite_text

        parts = [("rewrites: " + " + ".join(rewrite_text(s) for s in v)) if k.endswith("+")
                 else describe_patch({k: v}) for k, v in patch.items()]
        return ", ".join(parts)
    return ", ".join(f"{k.rsplit('.', 1)[-1]}={v:g}" if isinstance(v, float)
                     else f"{k.rsplit('.', 1)[-1]}={v}" for k, v in patch.items())


def _problems(trial: Trial) -> str:
    parts = []
    for kind in trial.problems:
        n = sum(kind in r.problems for r in trial.runs)
        layers: list[str] = []
        for r in trial.runs:
            for f in r.findings:
                if f["kind"] == kind:
                    layers += [x for x in f["layers"] if x not in layers]
        where = f" in {', '.join(layers[:4])}{'...' if len(layers) > 4 else ''}" if layers else ""
        parts.append(f"{kind}{where} ({n}/{len(trial.runs)} seeds)")
    return "; ".join(parts)


def _budget(r: DoctorResult) -> str:
    return (f"{len(r.seeds)} seed{'s' if len(r.seeds) != 1 else ''}, {r.epochs} epoch"
            f"{'s' if r.epochs != 1 else ''} = {r.steps} steps")


def sentences(r: DoctorResult) -> list[str]:
    """The verdict of ``r`` (see the module doc).

    >>> from steadygrad.doctor.result import demo_result
    >>> print(sentences(demo_result())[3])
    Best remedy: relu_he (activation=relu, kernel_initializer=he_normal): val_accuracy
    0.910 ± 0.014 vs baseline 0.120 ± 0.028, paired difference 0.790 ± 0.014 (higher;
    better in 2/2 seeds).
    """
    m, b = r.metric, r.baseline
    out = []
    losses = [x.val_loss for x in b.runs if x.val_loss is not None]
    loss_text = f", final validation loss {fmt(statistics.fmean(losses))}" if losses else ""
    out.append(f"Baseline '{r.config_name}' ({_budget(r)}): {m} {fmt(b.mean, b.std)}"
               f"{loss_text}.")
    if r.healthy:
        learned = (f"{m} {fmt(b.mean, b.std)} is not below {REFERENCE_FRACTION:.0%} of the "
                   f"healthy reference's {fmt(r.reference.mean, r.reference.std)} beyond seed "
                   "noise" if r.reference is not None else
                   f"the final validation loss is not above {IMPAIRED_LOSS_FRACTION:g} x the "
                   "chance loss beyond seed noise")
        out.append(f"No finding counted as a problem in any of the {len(b.runs)} seeds "
                   f"(warning/error findings: none; info findings only count when the final "
                   f"validation loss stays above {IMPAIRED_LOSS_FRACTION:g} x the chance "
                   f"loss) and the run learned ({learned}): nothing needs fixing, so no "
                   "trial was run.")
        return out
    out.append(f"Problems found: {_problems(b)}.")
    if IMPAIRED in b.problems:
        out.append(f"The run learns badly although the monitor raised no finding: {b.note}; "
                   "the remedies that act on learning itself (learning rate, optimizer, "
                   "schedule, normalization, initialization) were tried, and a remedy "
                   "succeeds only when its run no longer learns badly by the same rule.")
    ran = len(r.trials)
    ok = [t for t in r.ranking if succeeded(t, b, m)]
    gone = [t for t in r.trials if t.problem_seeds == 0]
    out.append(f"Ran {ran} candidate trial{'s' if ran != 1 else ''} with the same data split, "
               f"seeds and budget ({len(r.skipped)} skipped); the problems disappeared in every "
               f"seed for {len(gone)} of them, and {len(ok)} of those also kept {m} no worse "
               f"than the baseline.")
    best = r.best
    if best is not None:
        d, dstd, wins, n = paired(best, b, m)
        change = "higher" if (d or 0) > 0 else "lower" if (d or 0) < 0 else "equal"
        out.append(f"Best remedy: {best.label} ({describe_patch(best.patch)}): {m} "
                   f"{fmt(best.mean, best.std)} vs baseline {fmt(b.mean, b.std)}, paired "
                   f"difference {fmt(d, dstd)} ({change}; better in {wins}/{n} seeds).")
    elif r.ranking:
        top = r.ranking[0]
        why = (f"problems remain in {top.problem_seeds}/{len(top.runs)} seeds"
               if top.problem_seeds else f"its {m} {fmt(top.mean)} is worse than the "
               f"baseline's {fmt(b.mean)}")
        out.append(f"No candidate succeeded; the top-ranked one, {top.label}, failed because "
                   f"{why}.")
    else:
        out.append("No candidate could be run (see the skipped list).")
    combos = [t for t in r.trials if t.role == "combination"]
    for c in combos:
        parts = c.label.split("+")
        singles = {t.label: t for t in r.trials if t.role == "candidate"}
        first = singles.get(parts[0])
        if first is not None and first.mean is not None and c.mean is not None:
            word = "better than" if better(c.mean, first.mean, m) and c.mean != first.mean \
                else "equal to" if c.mean == first.mean else "worse than"
            out.append(f"Second round: {c.label} reached {m} {fmt(c.mean, c.std)}, {word} "
                       f"{first.label} alone ({fmt(first.mean, first.std)}).")
    ref = r.reference
    if ref is not None:
        ratio = r.reference_ratio
        if ratio is not None and best is not None:
            word = "meets" if ratio >= 0.9 else "misses"
            out.append(f"Healthy reference ({describe_patch(_ref_patch(r))}): {m} "
                       f"{fmt(ref.mean, ref.std)}; the best remedy reaches {ratio:.1%} of it "
                       f"({word} the 90% target).")
        else:
            out.append(f"Healthy reference: {m} {fmt(ref.mean, ref.std)}.")
    if best is not None:
        out.append(f"repaired.toml holds the config of {best.label}"
                   + (" (the factory with its list of rewrites and training changes)"
                      if r.baseline.table.get("model", {}).get("factory") else "")
                   + "; repaired.py the same remedy as PyTorch code.")
    else:
        out.append("No repaired.toml was written because no candidate succeeded.")
    out.append(f"Total time {r.seconds:.1f} s.")
    return out


def _ref_patch(r: DoctorResult) -> dict[str, Any]:
    """What the reference changes relative to the baseline (model keys only)."""
    if r.reference is None:
        return {}
    base, ref = r.baseline.table.get("model", {}), r.reference.table.get("model", {})
    out: dict[str, Any] = {}
    for k, v in ref.items():
        if base.get(k) == v:
            continue
        if k == "factory_kwargs" and isinstance(v, dict):
            old = base.get(k) or {}
            out.update({f"model.{a}": b for a, b in v.items() if old.get(a) != b})
        else:
            out[f"model.{k}"] = v.get("name") if isinstance(v, dict) else v
    return out
