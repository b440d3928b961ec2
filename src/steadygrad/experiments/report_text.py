"""The sentences of a sweep report, each computed from the numbers (no pre-written verdicts).

Example:
    >>> from pathlib import Path
    >>> from steadygrad.experiments.report import RunRecord, SweepReport, summarize
    >>> runs = tuple(RunRecord(f"a={a}-seed={s}", (("model.a", a),), s, "done",
    ...              final={"val_accuracy": v}, seconds_per_epoch=t)
    ...              for a, s, v, t in [(1, 0, 0.90, 0.1), (1, 1, 0.92, 0.1),
    ...                                 (2, 0, 0.80, 0.3), (2, 1, 0.84, 0.3)])
    >>> rep = SweepReport("demo", Path("."), "val_accuracy", runs,
    ...                   tuple(summarize(runs, "val_accuracy")), ("model.a",))
    >>> for line in sentences(rep): print(line)
    4 runs: 2 configs × 2 seeds; 4 done, 0 diverged, 0 failed.
    Best mean val_accuracy (higher is better): a=1 with 0.9100 ± 0.0141 over 2 seeds.
    Runner-up: a=2 with 0.8200 ± 0.0283; the gap of 0.0900 is larger than the sum of the
    two standard deviations (0.0424).
    Time per epoch ranges from 0.1 s (a=1) to 0.3 s (a=2), 3.0× apart.
    No gradient-health findings in 0 monitored runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from steadygrad.experiments.report import fmt

if TYPE_CHECKING:
    from steadygrad.experiments.report import ConfigResult, SweepReport

__all__ = ["config_health_sentence", "sentences"]


def _seeds(n: int) -> str:
    return f"{n} seed" + ("" if n == 1 else "s")


def config_health_sentence(config: ConfigResult) -> str:
    """One sentence on a config's findings (or their absence) and divergences.

    >>> from steadygrad.experiments.report import ConfigResult, FindingSummary
    >>> c = ConfigResult("a=1", (), (), 0.5, None, 1, None, None,
    ...     (FindingSummary("dead_units", "warning", 2, 3, ("fc1",), "m", None),))
    >>> config_health_sentence(c)
    'a=1: warning dead_units in 2/3 monitored runs (layers fc1).'
    """
    parts = [f"{f.severity} {f.kind} in {f.share} monitored runs"
             + (f" (layers {', '.join(f.layers[:4])}{'...' if len(f.layers) > 4 else ''})"
                if f.layers else "")
             for f in config.findings]
    diverged = [r for r in config.runs if r.status == "diverged"]
    if diverged:
        first = diverged[0].diverged or {}
        where = f" at step {first['step']}" if first.get("step") is not None else ""
        parts.append(f"{len(diverged)}/{len(config.runs)} runs diverged (first: "
                     f"{first.get('kind', 'non-finite values')}{where})")
    monitored = sum(r.health is not None for r in config.runs)
    if not parts:
        return f"{config.label}: no findings in {monitored} monitored runs."
    return f"{config.label}: " + "; ".join(parts) + "."


def sentences(report: SweepReport) -> list[str]:
    """The summary statements of ``report``, in reading order.

    Example:
        >>> from pathlib import Path
        >>> from steadygrad.experiments.report import RunRecord, SweepReport, summarize
        >>> runs = tuple(RunRecord(f"activation={a}-seed={s}", (("model.activation", a),), s,
        ...                        "done", final={"val_accuracy": v}, seconds_per_epoch=t)
        ...              for a, s, v, t in [("relu", 0, 0.9, 0.1), ("relu", 1, 0.8, 0.1),
        ...                                 ("tanh", 0, 0.7, 0.2), ("tanh", 1, 0.6, 0.2)])
        >>> report = SweepReport("acts", Path("sweeps/acts"), "val_accuracy", runs,
        ...                      tuple(summarize(runs, "val_accuracy")), ("model.activation",))
        >>> for line in sentences(report):
        ...     print(line)
        4 runs: 2 configs × 2 seeds; 4 done, 0 diverged, 0 failed.
        Best mean val_accuracy (higher is better): activation=relu with 0.8500 ± 0.0707
        over 2 seeds.
        Runner-up: activation=tanh with 0.6500 ± 0.0707; the gap of 0.2000 is larger than the
        sum of the two standard deviations (0.1414).
        Time per epoch ranges from 0.1 s (activation=relu) to 0.2 s (activation=tanh),
        2.0× apart.
        No gradient-health findings in 0 monitored runs.
    """
    out = []
    n_configs = len(report.configs)
    seeds = sorted({r.seed for r in report.runs if r.seed is not None})
    status = (f"{report.count('done')} done, {report.count('diverged')} diverged, "
              f"{report.count('failed')} failed")
    unfinished = report.count("pending") + report.count("running")
    if unfinished:
        status += f", {unfinished} not finished"
    out.append(f"{len(report.runs)} runs: {n_configs} config{'s' if n_configs != 1 else ''} "
               f"× {_seeds(len(seeds))}; {status}.")
    ranked = [c for c in report.configs if c.mean is not None]
    better = "higher" if report.direction == "max" else "lower"
    if not ranked:
        out.append(f"No run logged a finite {report.metric}; nothing can be ranked.")
    else:
        best = ranked[0]
        out.append(f"Best mean {report.metric} ({better} is better): {best.label} with "
                   f"{fmt(best.mean, best.std)} over {_seeds(best.n)}.")
        if len(ranked) > 1:
            second = ranked[1]
            gap = abs((best.mean or 0.0) - (second.mean or 0.0))
            if best.std is not None and second.std is not None:
                spread = best.std + second.std
                word = "larger" if gap > spread else "not larger"
                tail = (f"; the gap of {fmt(gap)} is {word} than the sum of the two standard "
                        f"deviations ({fmt(spread)})")
            else:
                tail = f"; the gap is {fmt(gap)} (one seed: no spread to compare with)"
            out.append(f"Runner-up: {second.label} with {fmt(second.mean, second.std)}{tail}.")
        if len(ranked) > 2:
            last = ranked[-1]
            out.append(f"Last: {last.label} with {fmt(last.mean, last.std)}.")
    missing = [c.label for c in report.configs if c.mean is None]
    if missing and ranked:
        out.append(f"Not ranked (no finite {report.metric}): {', '.join(missing)}.")
    timed = [c for c in report.configs if c.seconds_per_epoch]
    if len(timed) > 1:
        fast = min(timed, key=lambda c: c.seconds_per_epoch or 0.0)
        slow = max(timed, key=lambda c: c.seconds_per_epoch or 0.0)
        ratio = (slow.seconds_per_epoch or 0.0) / (fast.seconds_per_epoch or 1.0)
        out.append(f"Time per epoch ranges from {fast.seconds_per_epoch:.3g} s ({fast.label}) "
                   f"to {slow.seconds_per_epoch:.3g} s ({slow.label}), {ratio:.1f}× apart.")
    elif timed:
        out.append(f"Time per epoch: {timed[0].seconds_per_epoch:.3g} s.")
    flagged = [c for c in report.configs
               if any(f.severity in ("warning", "error") for f in c.findings)
               or c.count("diverged")]
    monitored = sum(r.health is not None for r in report.runs)
    if flagged:
        out.append(f"{len(flagged)} of {n_configs} configs have gradient-health warnings, "
                   f"errors or divergences: {', '.join(c.label for c in flagged)}.")
    elif any(c.findings for c in report.configs):
        out.append(f"No warnings or errors in {monitored} monitored runs; only info findings.")
    else:
        out.append(f"No gradient-health findings in {monitored} monitored runs.")
    return out
