"""The analysis of each built-in study: conclusions computed from the sweep report's numbers.

Each ``analyze_*`` function takes the :class:`~steadygrad.experiments.report.SweepReport` of
the study's sweep and the study table, and returns sentences whose numbers and comparison
words come from the runs (no pre-written conclusion). Registering them here fills
:data:`steadygrad.studies.registry.STUDIES`.

Example:
    >>> kendall_tau(["a", "b", "c"], ["a", "b", "c"]), kendall_tau(["a", "b"], ["b", "a"])
    (1.0, -1.0)
    >>> first_reaching([0.5, 0.8, 0.95, 0.97], 0.9)
    3
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from steadygrad.experiments.report import ConfigResult, RunRecord, SweepReport
from steadygrad.studies.registry import STUDIES, Study

__all__ = ["first_reaching", "grad_ratio", "kendall_tau", "mc_dropout_accuracy", "value_of"]


def value_of(config: ConfigResult, key: str) -> Any:
    """The setting whose dotted key ends with ``key`` (``"setup"``, ``"depth"``), else None.

    >>> value_of(ConfigResult("x", (("study.setup", "relu"),), (), None, None, 0, None, None,
    ...                       ()), "setup")
    'relu'
    """
    for k, v in config.settings:
        if k.rsplit(".", 1)[-1] == key:
            return v
    return None


def _text(value: Any) -> str:
    if isinstance(value, dict):
        args = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                         for k, v in value.items() if k != "name")
        return f"{value.get('name', '?')}({args})" if args else str(value.get("name"))
    return str(value)


def _no_result(configs: Sequence[ConfigResult], key: str) -> str:
    """``" Without a finished run: x (2/2 diverged)."`` for configs that have no mean."""
    gone = [f"{_text(value_of(c, key))} ({c.count('diverged')}/{len(c.runs)} diverged, "
            f"{c.count('failed')} failed)" for c in configs if c.mean is None]
    return f" Without a finished run: {', '.join(gone)}." if gone else ""


def _fmt(mean: float | None, std: float | None = None) -> str:
    if mean is None:
        return "n/a"
    return f"{mean:.3f}" if std is None else f"{mean:.3f} ± {std:.3f}"


def kendall_tau(expected: Sequence[str], measured: Sequence[str]) -> float:
    """Kendall's rank correlation of two orderings of the same items (1: same order).

    ``tau = (concordant - discordant) / pairs`` over the pairs of items present in both
    orderings (Kendall 1938, tau-a; there are no ties in an ordering).

    Example:
        >>> kendall_tau(["selu", "elu", "relu"], ["selu", "elu", "relu"])
        1.0
        >>> kendall_tau(["selu", "elu", "relu"], ["relu", "elu", "selu"])
        -1.0
        >>> # by hand: (selu, elu) and (selu, relu) concordant, (elu, relu) swapped -> (2-1)/3
        >>> round(kendall_tau(["selu", "elu", "relu"], ["selu", "relu", "elu"]), 4)
        0.3333
        >>> kendall_tau(["selu", "tanh", "elu"], ["elu", "selu"])  # tanh not measured: 1 pair
        -1.0
    """
    pos = {x: i for i, x in enumerate(measured)}
    items = [x for x in expected if x in pos]
    pairs = [(a, b) for i, a in enumerate(items) for b in items[i + 1:]]
    if not pairs:
        return 1.0
    concordant = sum(pos[a] < pos[b] for a, b in pairs)
    return (2 * concordant - len(pairs)) / len(pairs)


def first_reaching(curve: Sequence[float], target: float) -> int | None:
    """1-based index of the first value >= ``target`` (None if never).

    ``None`` and NaN entries (an epoch without the metric, a diverged run) never count.

    Example:
        >>> first_reaching([0.5, float("nan"), 0.91, 0.95], 0.9)  # epoch 3
        3
        >>> first_reaching([0.5, 0.89], 0.9) is None
        True
    """
    for i, v in enumerate(curve):
        if v is not None and not math.isnan(v) and v >= target:
            return i + 1
    return None


def grad_ratio(run: RunRecord) -> float | None:
    """Mean gradient RMS of the first hidden layer / the last hidden layer (from health.json).

    Below 1: gradients shrink towards the input (vanishing); above 1: they grow (exploding).

    >>> layer = lambda name, v: {"name": name, "series": {"grad_rms": [v, v]}}
    >>> run = RunRecord("r", (), 0, "done", health={"layers": [
    ...     layer("dense1", 1e-4), layer("dense2", 1e-3), layer("output", 1.0)]})
    >>> round(grad_ratio(run), 6)
    0.1
    """
    layers = [la for la in (run.health or {}).get("layers", [])
              if la.get("series", {}).get("grad_rms")]
    hidden = [la for la in layers if str(la.get("name", "")).startswith("dense")]
    if len(hidden) < 2:
        return None

    def mean_rms(layer: dict[str, Any]) -> float | None:
        vals = [v for v in layer["series"]["grad_rms"] if v is not None and math.isfinite(v)]
        return statistics.fmean(vals) if vals else None

    first, last = mean_rms(hidden[0]), mean_rms(hidden[-1])
    if first is None or last is None or last == 0:
        return None
    return first / last


def _ranked(configs: Sequence[ConfigResult]) -> list[ConfigResult]:
    """Configs with a mean, fewest diverged/failed runs first, then by mean (higher first)."""
    def key(c: ConfigResult) -> tuple[float, float]:
        bad = (c.count("diverged") + c.count("failed")) / max(1, len(c.runs))
        return (bad, -(c.mean or 0.0))

    return sorted([c for c in configs if c.mean is not None], key=key)


def _ranking_sentence(report: SweepReport, key: str, what: str) -> list[str]:
    ranked = _ranked(report.configs)
    if not ranked:
        return [f"No {what} finished with a {report.metric}."]
    best, worst = ranked[0], ranked[-1]
    gap = (best.mean or 0.0) - (worst.mean or 0.0)
    order = " > ".join(f"{_text(value_of(c, key))} ({_fmt(c.mean)})" for c in ranked)
    out = [f"Measured ranking (fewest diverged runs first, then mean {report.metric} of the "
           f"finished runs): {order}.{_no_result(report.configs, key)}",
           f"Best {what}: {_text(value_of(best, key))} at {_fmt(best.mean, best.std)}; worst: "
           f"{_text(value_of(worst, key))} at {_fmt(worst.mean, worst.std)} "
           f"(gap {gap:.3f})."]
    broken = [c for c in report.configs if c.count("diverged")]
    if broken:
        out.append("Diverged runs: " + ", ".join(
            f"{_text(value_of(c, key))} {c.count('diverged')}/{len(c.runs)}" for c in broken)
            + ".")
    return out


def _finding_text(config: ConfigResult) -> str:
    kinds = [f"{f.kind} {f.share}" for f in config.findings if f.severity != "info"]
    return ", ".join(kinds) if kinds else "no warning"


def analyze_unstable(report: SweepReport, spec: dict[str, Any]) -> list[str]:
    """Per depth: setups ranked, their findings and first/last hidden-layer gradient ratio."""
    out = []
    depths = sorted({value_of(c, "depth") for c in report.configs} - {None})
    for depth in depths:
        at = _ranked([c for c in report.configs if value_of(c, "depth") == depth])
        if not at:
            continue
        parts = []
        for c in at:
            ratios = [r for r in (grad_ratio(x) for x in c.runs) if r is not None]
            ratio = f", grad RMS first/last hidden {statistics.fmean(ratios):.2g}" if ratios \
                else ""
            parts.append(f"{value_of(c, 'setup')} {_fmt(c.mean, c.std)} ({_finding_text(c)}"
                         f"{ratio})")
        out.append(f"Depth {depth}: " + "; ".join(parts) + ".")
    if len(depths) >= 2:
        lo, hi = depths[0], depths[-1]
        drops = []
        for setup in dict.fromkeys(value_of(c, "setup") for c in report.configs):
            a = next((c for c in report.configs
                      if value_of(c, "setup") == setup and value_of(c, "depth") == lo), None)
            b = next((c for c in report.configs
                      if value_of(c, "setup") == setup and value_of(c, "depth") == hi), None)
            if a and b and a.mean is not None and b.mean is not None:
                drops.append((b.mean - a.mean, setup))
        if drops:
            drops.sort()
            (d0, s0), (d1, s1) = drops[0], drops[-1]
            w0 = "the largest drop" if d0 < 0 else "the smallest gain"
            w1 = "the largest gain" if d1 > 0 else "the smallest drop"
            out.append(f"Going from depth {lo} to {hi}: {w0} is {s0}'s ({d0:+.3f}), "
                       f"{w1} {s1}'s ({d1:+.3f}).")
    return out


def analyze_initializers(report: SweepReport, spec: dict[str, Any]) -> list[str]:
    """Per activation: best initializer, and whether it is the one matched to it."""
    matched = {"tanh": "glorot_uniform", "sigmoid": "glorot_uniform", "relu": "he_normal",
               "elu": "he_normal", "selu": "lecun_normal"}
    out = []
    for act in dict.fromkeys(value_of(c, "activation") for c in report.configs):
        ranked = _ranked([c for c in report.configs if value_of(c, "activation") == act])
        if not ranked:
            continue
        order = " > ".join(f"{_text(value_of(c, 'kernel_initializer'))} ({_fmt(c.mean)})"
                           for c in ranked)
        best = _text(value_of(ranked[0], "kernel_initializer"))
        expect = matched.get(str(act))
        verdict = ("the matched initializer " + str(expect) + " ranks first" if best == expect
                   else f"the matched initializer {expect} ranks "
                   f"{[_text(value_of(c, 'kernel_initializer')) for c in ranked].index(expect) + 1}"
                   f" of {len(ranked)}" if expect in [_text(value_of(c, "kernel_initializer"))
                                                     for c in ranked] else "")
        rest = _no_result([c for c in report.configs if value_of(c, "activation") == act],
                          "kernel_initializer")
        out.append(f"{act}: {order}; {verdict}.{rest}")
    return out


def analyze_activations(report: SweepReport, spec: dict[str, Any]) -> list[str]:
    """The measured ranking against the expected one (Kendall's tau, pairwise agreement)."""
    expected = [str(x) for x in spec.get("expected", [])]
    ranked = _ranked(report.configs)
    measured = [str(value_of(c, "activation")) for c in ranked]
    out = _ranking_sentence(report, "activation", "activation")
    tau = kendall_tau(expected, measured)
    pos = {x: i for i, x in enumerate(measured)}
    items = [x for x in expected if x in pos]
    pairs = [(a, b) for i, a in enumerate(items) for b in items[i + 1:]]
    agree = sum(pos[a] < pos[b] for a, b in pairs)
    means = {str(value_of(c, "activation")): c for c in ranked}
    close = [f"{a}/{b}" for a, b in pairs if pos[a] > pos[b] and means[a].std is not None
             and abs((means[a].mean or 0) - (means[b].mean or 0))
             <= (means[a].std or 0) + (means[b].std or 0)]
    held = "held" if measured == items else "did not hold"
    out.append(f"The expected ranking {' > '.join(expected)} {held} here: {agree} of "
               f"{len(pairs)} pairs in the expected order (Kendall tau {tau:.2f}).")
    if close:
        out.append(f"Inverted pairs within one std of each other: {', '.join(close)}.")
    return out


def analyze_batch_norm(report: SweepReport, spec: dict[str, Any]) -> list[str]:
    """Epochs and seconds to the target accuracy, per depth and batch-norm placement."""
    target = float(spec.get("target", 0.9))
    out = []
    for depth in sorted({value_of(c, "depth") for c in report.configs} - {None}):
        parts = []
        for c in [c for c in report.configs if value_of(c, "depth") == depth]:
            epochs, secs = [], []
            for run in c.runs:
                curve = (run.history or {}).get(report.metric, [])
                k = first_reaching(curve, target)
                if k is not None:
                    epochs.append(k)
                    secs.append(sum((run.history or {}).get("seconds", [])[:k]))
            reach = (f"{len(epochs)}/{len(c.runs)} seeds reach {target:g} after "
                     f"{statistics.fmean(epochs):.1f} epochs / {statistics.fmean(secs):.2f} s"
                     if epochs else f"0/{len(c.runs)} seeds reach {target:g}")
            parts.append(f"{value_of(c, 'batch_norm')}: {_fmt(c.mean, c.std)}, {reach}")
        out.append(f"Depth {depth}: " + "; ".join(parts) + ".")
    return out


def analyze_depth(report: SweepReport, spec: dict[str, Any]) -> list[str]:
    """Deepest depth at which each setup's mean metric reaches the target."""
    target = float(spec.get("target", 0.85))
    out = []
    for setup in dict.fromkeys(value_of(c, "setup") for c in report.configs):
        rows = sorted(((value_of(c, "depth"), c) for c in report.configs
                       if value_of(c, "setup") == setup), key=lambda t: t[0])
        ok = [d for d, c in rows if c.mean is not None and c.mean >= target]
        curve = ", ".join(f"{d}: {_fmt(c.mean)}" for d, c in rows)
        tested = max(d for d, _ in rows)
        if not ok:
            deepest = f"no depth reaches {target:g}"
        elif max(ok) == tested:
            deepest = f"reaches {target:g} up to the deepest tested net ({tested} layers)"
        else:
            deepest = f"deepest reaching {target:g}: {max(ok)} layers"
        out.append(f"{setup}: {deepest} ({curve}).")
    return out


def _by_setup(report: SweepReport, spec: dict[str, Any]) -> list[str]:
    return _ranking_sentence(report, "setup", "setup")


def analyze_clipping(report: SweepReport, spec: dict[str, Any]) -> list[str]:
    """Which clipping keeps the exploding setup finite and how accurate it gets."""
    out = _by_setup(report, spec)
    for c in report.configs:
        bad = c.count("diverged")
        out.append(f"{value_of(c, 'setup')}: {bad}/{len(c.runs)} runs diverged, "
                   f"{report.metric} {_fmt(c.mean, c.std)}, findings: {_finding_text(c)}.")
    return out


def analyze_regularization(report: SweepReport, spec: dict[str, Any]) -> list[str]:
    """Ranking plus the train/validation accuracy gap of each regularizer."""
    out = _by_setup(report, spec)
    gaps = []
    for c in report.configs:
        diffs = [(r.final or {}).get("accuracy", math.nan) - (r.final or {}).get(
            report.metric, math.nan) for r in c.runs if r.status == "done"]
        diffs = [d for d in diffs if d is not None and math.isfinite(d)]
        if diffs:
            gaps.append((statistics.fmean(diffs), str(value_of(c, "setup"))))
    if gaps:
        gaps.sort()
        out.append("Train - validation accuracy gap: " + ", ".join(
            f"{s} {g:+.3f}" for g, s in gaps) + f"; smallest gap: {gaps[0][1]}.")
    return out + _mc_sentence(report)


def mc_dropout_accuracy(run_dir: str | Path, samples: int = 30) -> tuple[float, float] | None:
    """(MC-dropout accuracy, deterministic eval accuracy) of a finished run on its val split.

    Rebuilds the run's model from its ``config.json``, loads ``weights.safetensors`` and
    averages ``samples`` stochastic passes with
    :func:`steadygrad.uncertainty.mc_dropout.mc_predict` (Gal & Ghahramani 2016,
    arXiv:1506.02142). None when the run has no dropout or the API is missing.

    >>> import tempfile
    >>> from steadygrad.experiments.config import config_from_dict
    >>> from steadygrad.experiments.execute import run_config
    >>> cfg = config_from_dict({"data": {"name": "digits", "n_train": 100},
    ...     "model": {"hidden": [16], "dropout": 0.2}, "train": {"epochs": 1}})
    >>> mc, det = mc_dropout_accuracy(run_config(cfg, tempfile.mkdtemp()).run_dir, samples=5)
    >>> 0.0 <= mc <= 1.0 and 0.0 <= det <= 1.0
    True
    """
    try:
        from steadygrad.uncertainty.mc_dropout import mc_predict
    except ImportError:
        return None
    import torch

    from steadygrad.experiments.config import config_from_dict
    from steadygrad.experiments.execute import build_model, load_data
    from steadygrad.train.checkpoint import load_weights

    run_dir = Path(run_dir)
    config = config_from_dict(json.loads((run_dir / "config.json").read_text("utf-8")))
    if config.model.dropout <= 0:
        return None
    data = load_data(config)
    model = build_model(config, data)
    load_weights(model, run_dir / "weights.safetensors")
    pred = mc_predict(model, data.x_val, samples=samples, generator_seed=0)
    mc = float((pred.mean_probs.argmax(1) == data.y_val).float().mean())
    model.eval()
    with torch.no_grad():
        det = float((model(data.x_val).argmax(1) == data.y_val).float().mean())
    return mc, det


def _mc_sentence(report: SweepReport) -> list[str]:
    """MC-dropout accuracy against the single pass each run recorded (``report.metric`` of
    its last epoch: the ranking's number). Not a recomputed eval pass: with MC dropout layers
    (``dropout_kind = "mc"``) an eval pass is itself random, and the page showed the same
    quantity as 0.858 here and 0.8654 in the ranking (issue 19)."""
    out = []
    for c in report.configs:
        pairs = []
        for run in c.runs:
            single = (run.final or {}).get(report.metric) if run.status == "done" else None
            if single is None or not math.isfinite(single):
                continue
            got = mc_dropout_accuracy(report.sweep_dir / "runs" / run.name)
            if got is not None:
                pairs.append((got[0], float(single)))
        if pairs:
            mc = statistics.fmean(p[0] for p in pairs)
            single = statistics.fmean(p[1] for p in pairs)
            word = "higher than" if mc > single else "lower than" if mc < single else "equal to"
            out.append(f"MC dropout (30 passes) on {value_of(c, 'setup')}: val accuracy "
                       f"{mc:.3f}, {word} the single pass recorded by the runs {single:.3f} "
                       f"({mc - single:+.3f}, {len(pairs)} runs).")
    return out


def _optimizers(report: SweepReport, spec: dict[str, Any]) -> list[str]:
    return _ranking_sentence(report, "name", "optimizer")


for _name, _file, _fn, _aliases in (
    ("unstable_gradients", "unstable_gradients.toml", analyze_unstable, ()),
    ("initializers", "initializers.toml", analyze_initializers, ()),
    ("activations", "activations.toml", analyze_activations, ()),
    ("batch_norm", "batch_norm.toml", analyze_batch_norm, ("batchnorm",)),
    ("clipping", "clipping.toml", analyze_clipping, ()),
    ("optimizers", "optimizers.toml", _optimizers, ()),
    ("schedules", "schedules.toml", _by_setup, ()),
    ("regularization", "regularization.toml", analyze_regularization, ()),
    ("depth", "depth.toml", analyze_depth, ()),
):
    if _name not in STUDIES:
        STUDIES.add(_name, Study(_name, _file, _fn), *_aliases)
