"""``steadygrad study transfer``: the classic transfer-learning experiment (Géron, ch. 11).

Model A learns the 8 Fashion-MNIST classes other than the two of task B (labels remapped to
0..7); task B tells those two classes apart (a 1-unit sigmoid head) from only the first
``b_images`` training images of the two classes, and is tested on all their test images.
Both nets are Flatten → 3 × Dense 100 (ReLU, He normal) → head, trained with SGD 1e-3.
B from scratch (``scratch_epochs``) is compared with B on A: a copy of A without its output
layer plus a new head, trained ``frozen_epochs`` with the reused layers frozen, then
``unfrozen_epochs`` with everything trainable (same rate). Model A is trained once per seed
(so the spread includes A's), and its weights are checked bit-identical after B is trained.

Error-rate reduction = (mean err_scratch − mean err_transfer) / mean err_scratch over the
seeds, with a 95 % paired bootstrap percentile interval (the seeds are resampled as pairs)
from 5 seeds on; with fewer no interval is claimed.

Example:
    >>> rows = [{"pair": "a_vs_b", "seed": s, "method": m, "test_accuracy": acc,
    ...          "test_error": round(1 - acc, 4), "source_unchanged": True}
    ...         for s, (x, y) in enumerate([(0.9, 0.95), (0.92, 0.94)])
    ...         for m, acc in (("scratch", x), ("transfer", y))]
    >>> summary = summarize(rows)["a_vs_b"]
    >>> summary["scratch"], summary["transfer"], summary["wins"]
    ((0.91, 0.0141), (0.945, 0.0071), 2)
    >>> round(summary["reduction"], 4)
    0.3889
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from steadygrad._atomic import atomic_path
from steadygrad.errors import ConfigError, DataError
from steadygrad.studies._custom import (
    MIN_BOOTSTRAP_SEEDS,
    bootstrap_ci,
    mean_std,
    study_params,
    write_study_files,
)
from steadygrad.studies.registry import STUDIES, Study

__all__ = ["TransferData", "conclusions", "run_transfer", "summarize", "train_source",
           "train_targets", "transfer_data"]


class TransferData:
    """Task A and task B tensors cut from one dataset for one class pair.

    Attributes:
        pair: ``(positive class, negative class)`` names of task B.
        a_train: ``(x, y)`` of the other classes, labels remapped to ``0..C-3``.
        b_train: the first ``b_images`` training images of the pair, ``y = 1.0`` for the
            positive class (float ``(N, 1)`` targets of a binary logit).
        b_test: every test image of the pair.

    Example:
        >>> from steadygrad.data import load
        >>> data = transfer_data(load("digits", standardize=False), ("1", "7"), 300, 40)
        >>> len(data.a_train[0]), len(data.b_train[0]), sorted(set(data.a_train[1].tolist()))
        (300, 40, [0, 1, 2, 3, 4, 5, 6, 7])
    """

    def __init__(self, pair: tuple[str, str], input_shape: tuple[int, ...],
                 a_train: tuple[torch.Tensor, torch.Tensor],
                 b_train: tuple[torch.Tensor, torch.Tensor],
                 b_test: tuple[torch.Tensor, torch.Tensor]) -> None:
        self.pair, self.input_shape = pair, input_shape
        self.a_train, self.b_train, self.b_test = a_train, b_train, b_test


def transfer_data(ds: Any, pair: Sequence[str], a_rows: int, b_images: int) -> TransferData:
    """Cut task A (the other classes, first ``a_rows`` rows; 0 = all) and task B from ``ds``.

    Raises:
        ConfigError: an unknown class name, or a pair of the same class.
        DataError: fewer than ``b_images`` training images of the pair.

    Example:
        >>> from steadygrad.data import load
        >>> transfer_data(load("digits"), ("1", "one"), 0, 10)
        Traceback (most recent call last):
        ...
        steadygrad.errors.ConfigError: pairs: got 'one'; expected a class name of digits: \
0, 1, 2, 3, 4, 5, 6, 7, 8, 9
    """
    names = list(ds.class_names)
    for name in pair:
        if name not in names:
            raise ConfigError("pairs", name, f"a class name of {ds.name}: {', '.join(names)}")
    if len(pair) != 2 or pair[0] == pair[1]:
        raise ConfigError("pairs", list(pair), "two different class names [positive, negative]")
    pos, neg = names.index(pair[0]), names.index(pair[1])
    x, y = ds.x_train, ds.y_train
    in_b = (y == pos) | (y == neg)
    others = [c for c in range(len(names)) if c not in (pos, neg)]
    remap = torch.full((len(names),), -1, dtype=torch.long)
    remap[others] = torch.arange(len(others))
    xa, ya = x[~in_b], remap[y[~in_b]]
    if a_rows:
        xa, ya = xa[:a_rows], ya[:a_rows]
    xb, yb = x[in_b][:b_images], (y[in_b][:b_images] == pos).float().unsqueeze(1)
    if len(xb) < b_images:
        raise DataError(f"b_images: only {len(xb)} training images of {pair[0]}/{pair[1]}; "
                        f"expected {b_images}; fix: --set b_images={len(xb)}")
    t_in = (ds.y_test == pos) | (ds.y_test == neg)
    b_test = (ds.x_test[t_in], (ds.y_test[t_in] == pos).float().unsqueeze(1))
    return TransferData((pair[0], pair[1]), tuple(ds.input_shape), (xa, ya), (xb, yb), b_test)


def _net(data: TransferData, params: Mapping[str, Any], outputs: int, seed: int) -> nn.Module:
    from steadygrad.nn.build import mlp

    return mlp(data.input_shape, tuple(params["hidden"]), activation="relu",
               kernel_initializer="he_normal", output="multiclass" if outputs > 1 else "binary",
               num_outputs=outputs if outputs > 1 else None, seed=seed)


def _fit_kwargs(params: Mapping[str, Any], seed: int) -> dict[str, Any]:
    return {"optimizer": "sgd", "learning_rate": params["learning_rate"],
            "batch_size": params["batch_size"], "seed": seed, "verbose": 0, "monitor": None}


def train_source(data: TransferData, params: Mapping[str, Any], seed: int) -> nn.Module:
    """Model A: the MLP trained ``a_epochs`` on task A.

    Example:
        >>> from steadygrad.data import load
        >>> data = transfer_data(load("digits", standardize=False), ("1", "7"), 200, 20)
        >>> a = train_source(data, {"hidden": [8], "learning_rate": 1e-3, "batch_size": 32,
        ...                         "a_epochs": 1}, seed=0)
        >>> a.output.out_features
        8
    """
    from steadygrad.train.loop import fit

    n_a = int(data.a_train[1].max()) + 1
    model = _net(data, params, n_a, seed)
    fit(model, data.a_train, epochs=params["a_epochs"], **_fit_kwargs(params, seed))
    return model


def train_targets(source: nn.Module, data: TransferData, params: Mapping[str, Any],
                  seed: int) -> tuple[float, float]:
    """B from scratch and B on A (a copy: ``source`` is not changed); their test accuracies.

    B on A is :func:`~steadygrad.transfer.reuse` of A without its output layer plus a new
    1-unit head, trained with :func:`~steadygrad.transfer.fine_tune` (reused layers frozen
    for ``frozen_epochs``, then all trainable for ``unfrozen_epochs``, same SGD rate).

    Example:
        >>> from steadygrad.data import load
        >>> data = transfer_data(load("digits", standardize=False), ("1", "7"), 200, 20)
        >>> p = {"hidden": [8], "learning_rate": 1e-3, "batch_size": 32, "a_epochs": 1,
        ...      "scratch_epochs": 1, "frozen_epochs": 1, "unfrozen_epochs": 1}
        >>> scratch, transfer = train_targets(train_source(data, p, 0), data, p, seed=0)
        >>> 0.0 <= scratch <= 1.0 and 0.0 <= transfer <= 1.0
        True
    """
    from steadygrad.train.evaluate import evaluate
    from steadygrad.train.loop import fit
    from steadygrad.transfer import fine_tune, reuse

    scratch = _net(data, params, 1, seed + 10_000)
    fit(scratch, data.b_train, epochs=params["scratch_epochs"], loss="bce",
        **_fit_kwargs(params, seed))
    torch.manual_seed(seed + 20_000)  # the new head's initialization
    on_a = reuse(source, drop_last=1, new_head=1)  # a deep copy of A's layers
    fine_tune(on_a, data.b_train, head_epochs=params["frozen_epochs"],
              epochs=params["unfrozen_epochs"], learning_rate=params["learning_rate"],
              unfreeze_lr_factor=1.0, optimizer="sgd", batch_size=params["batch_size"],
              seed=seed, verbose=0, monitor=None, loss="bce")
    acc = [evaluate(m, data.b_test, loss="bce", metrics=["accuracy"])["accuracy"]
           for m in (scratch, on_a)]
    return float(acc[0]), float(acc[1])


def _reduction(pairs: Sequence[tuple[float, float]]) -> float | None:
    """(mean err_scratch − mean err_transfer) / mean err_scratch over ``(es, et)`` pairs.

    Means are :func:`statistics.fmean` (exactly rounded), the mean every other number of the
    results page uses: ``sum(...) / n`` can differ in the last bit, and a page printed the
    same error as 18.11% here and 18.12% in the common-wisdom check (issue 19)."""
    es = statistics.fmean(p[0] for p in pairs)
    et = statistics.fmean(p[1] for p in pairs)
    return None if es == 0 else (es - et) / es


def summarize(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per pair: accuracy mean ± std of each method, error-rate reduction, its CI, wins.

    Example:
        >>> rows = [{"pair": "p", "seed": 0, "method": "scratch", "test_error": 0.1,
        ...          "test_accuracy": 0.9}, {"pair": "p", "seed": 0, "method": "transfer",
        ...          "test_error": 0.05, "test_accuracy": 0.95}]
        >>> s = summarize(rows)["p"]
        >>> s["reduction"], s["ci"], s["n"]
        (0.5, None, 1)
    """
    out: dict[str, dict[str, Any]] = {}
    for pair in dict.fromkeys(r["pair"] for r in rows):
        by = {(r["seed"], r["method"]): r for r in rows if r["pair"] == pair}
        seeds = sorted({s for s, _ in by})
        errs = [(by[s, "scratch"]["test_error"], by[s, "transfer"]["test_error"]) for s in seeds]
        per_seed = [_reduction([e]) for e in errs]
        out[pair] = {
            "n": len(seeds),
            "scratch": mean_std([by[s, "scratch"]["test_accuracy"] for s in seeds]),
            "transfer": mean_std([by[s, "transfer"]["test_accuracy"] for s in seeds]),
            "err": (statistics.fmean(e[0] for e in errs), statistics.fmean(e[1] for e in errs)),
            "reduction": _reduction(errs), "ci": bootstrap_ci(errs, _reduction),
            "per_seed": per_seed, "wins": sum(e[1] < e[0] for e in errs),
            "unchanged": all(bool(by[s, "transfer"].get("source_unchanged", True))
                             for s in seeds),
        }
    return out


def _pct(value: float | None) -> str:
    return "undefined" if value is None else f"{100 * value:.1f}%"


def conclusions(summary: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The sentences of the report, each computed from ``summary`` (:func:`summarize`).

    Example:
        >>> s = {"p": {"n": 2, "scratch": (0.9, 0.01), "transfer": (0.8, 0.02),
        ...            "err": (0.1, 0.2), "reduction": -1.0, "ci": (-1.5, -0.5),
        ...            "per_seed": [-1.2, -0.8], "wins": 0, "unchanged": True}}
        >>> conclusions(s)[1]
        'p: transfer increased the error rate by 100.0% (10.00% → 20.00%); 95% paired \
bootstrap CI of the reduction over the 2 seeds: [-150.0%, -50.0%], which excludes 0.'
        >>> conclusions({"p": {**s["p"], "ci": None}})[1]
        'p: transfer increased the error rate by 100.0% (10.00% → 20.00%); no confidence \
interval from 2 seeds (a bootstrap interval needs 5 or more).'
    """
    out = []
    for pair, s in summary.items():
        (ms, ss), (mt, st) = s["scratch"], s["transfer"]
        out.append(f"{pair}: B from scratch reached test accuracy {ms:.4f} ± {ss:.4f}, "
                   f"B on A {mt:.4f} ± {st:.4f} (mean ± std over {s['n']} seeds).")
        red = s["reduction"]
        if red is None:
            out.append(f"{pair}: B from scratch made no test error, so the error-rate "
                       "reduction is undefined.")
        else:
            verb = "reduced" if red > 0 else "increased" if red < 0 else "did not change"
            text = (f"{pair}: transfer {verb} the error rate by {_pct(abs(red))} "
                    f"({100 * s['err'][0]:.2f}% → {100 * s['err'][1]:.2f}%)")
            if s["ci"] is None:
                text += (f"; no confidence interval from {s['n']} seed"
                         f"{'s' if s['n'] != 1 else ''} (a bootstrap interval needs "
                         f"{MIN_BOOTSTRAP_SEEDS} or more).")
            else:
                lo, hi = s["ci"]
                where = "includes 0: the sign of the effect is not established at this " \
                        "number of seeds" if lo <= 0 <= hi else "excludes 0"
                text += (f"; 95% paired bootstrap CI of the reduction over the {s['n']} "
                         f"seeds: [{_pct(lo)}, {_pct(hi)}], which {where}.")
            out.append(text)
        defined = [r for r in s["per_seed"] if r is not None]
        text = f"{pair}: B on A beat B from scratch in {s['wins']} of {s['n']} seeds"
        if 0 < s["wins"] < s["n"] and defined:
            text += (f", so the gain depends on the seed (per-seed reduction from "
                     f"{_pct(min(defined))} to {_pct(max(defined))})")
        out.append(text + ".")
        out.append(f"{pair}: model A's weights were "
                   + ("bit-identical after training B on A in every seed." if s["unchanged"]
                      else "CHANGED by training B on A in some seed (a reuse bug)."))
    defined_pairs = {p: s["reduction"] for p, s in summary.items() if s["reduction"] is not None}
    if len(defined_pairs) >= 2:
        ranked = sorted(defined_pairs, key=lambda p: -defined_pairs[p])
        out.append("Error-rate reduction by pair, largest first: " + ", ".join(
            f"{p} {_pct(defined_pairs[p])}" for p in ranked) + ".")
    return out


def _plot(rows: Sequence[Mapping[str, Any]], summary: Mapping[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4))
    for i, (pair, s) in enumerate(summary.items()):
        for j, method in enumerate(("scratch", "transfer")):
            x = i * 3 + j
            ax.bar(x, s[method][0], yerr=s[method][1], color=f"C{j}", capsize=4,
                   label=("B from scratch", "B on A")[j] if i == 0 else None)
            pts = [r["test_accuracy"] for r in rows if r["pair"] == pair and r["method"] == method]
            ax.plot([x] * len(pts), pts, "k.", ms=4)
    ax.set_xticks([i * 3 + 0.5 for i in range(len(summary))], list(summary))
    lows = [r["test_accuracy"] for r in rows]
    ax.set_ylim(max(0.0, min(lows) - 0.05), 1.0)
    ax.set_ylabel("test accuracy (mean ± std, dots: seeds)")
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def _table(rows: Sequence[Mapping[str, Any]], head: Sequence[str]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(v) for v in row.values()) + " |" for row in rows]
    return "\n".join(lines)


def run_transfer(spec: Mapping[str, Any], out_dir: Path, seeds: int | None = None,
                 overrides: Sequence[str] = ()) -> Any:
    """Run the study into ``out_dir/transfer-<mode>[-custom]/`` and write its report.

    Files: ``results.csv`` (one row per pair × seed × method), ``study.md``, ``study.html``,
    ``study.json`` and ``transfer.png``. Returns a
    :class:`~steadygrad.studies.runner.StudyResult`.

    Raises:
        DataError: Fashion-MNIST is not found (how to get it is in the message).
        ConfigError: a bad parameter (before any training).

    Example:
        >>> import tempfile
        >>> from steadygrad.studies.registry import load_spec
        >>> spec = load_spec("transfer")
        >>> r = run_transfer(spec, Path(tempfile.mkdtemp()), 1, [
        ...     "dataset=digits", 'pairs=[["1", "7"]]', "a_rows=200", "a_epochs=1",
        ...     "b_images=20", "hidden=[8]", "scratch_epochs=1", "frozen_epochs=1",
        ...     "unfrozen_epochs=1"])
        >>> r.sweep_dir.name, sorted(r.files)
        ('transfer-quick-custom', ['csv', 'plot', 'study_html', 'study_json', 'study_md'])
    """
    from steadygrad.data import load
    from steadygrad.studies.runner import StudyResult

    params = study_params(spec, seeds, overrides)
    for key in ("a_epochs", "b_images", "scratch_epochs", "unfrozen_epochs", "seeds",
                "batch_size"):
        if isinstance(params[key], bool) or not isinstance(params[key], int) or params[key] < 1:
            raise ConfigError(key, params[key], "an integer >= 1")
    if not params["pairs"]:
        raise ConfigError("pairs", params["pairs"], "a list of [positive, negative] classes")
    started = time.time()
    try:
        if params["dataset"] == "digits":
            ds = load("digits", standardize=False)
        else:
            ds = load(params["dataset"], val_size=1, standardize=False)
    except DataError as err:
        raise DataError(f"study transfer needs {params['dataset']} (its class pairs): {err}; "
                        "a small offline check: --set dataset=digits --set "
                        "'pairs=[[\"1\", \"7\"]]'") from None
    cut = [transfer_data(ds, pair, params["a_rows"], params["b_images"])
           for pair in params["pairs"]]
    rows: list[dict[str, Any]] = []
    for data in cut:
        label = f"{data.pair[0]}_vs_{data.pair[1]}".replace("/", "-").replace(" ", "_")
        for seed in range(params["seeds"]):
            source = train_source(data, params, seed)
            before = copy.deepcopy(source.state_dict())
            accs = train_targets(source, data, params, seed)
            after = source.state_dict()
            same = all(torch.equal(before[k], after[k]) for k in before)
            for method, acc in zip(("scratch", "transfer"), accs, strict=True):
                rows.append({"pair": label, "seed": seed, "method": method,
                             "test_accuracy": round(acc, 4), "test_error": round(1 - acc, 4),
                             "source_unchanged": same})
    summary = summarize(rows)
    sentences = conclusions(summary)
    seconds = time.time() - started
    sentences.append(f"{len(rows)} trained B models in {seconds:.0f} s, {spec['mode']} mode.")
    name = f"transfer-{spec['mode']}" + ("-custom" if overrides else "")
    folder = Path(out_dir) / name
    folder.mkdir(parents=True, exist_ok=True)
    _plot(rows, summary, folder / "transfer.png")
    table = [{"pair": p, "method": m, "acc": f"{s[m][0]:.4f} ± {s[m][1]:.4f}"}
             for p, s in summary.items() for m in ("scratch", "transfer")]
    md = [f"# {spec['title']}", "", f"*{spec['question']}* ({spec['mode']} mode)", "",
          "Parameters: " + ", ".join(f"{k}={v}" for k, v in params.items()), "",
          "## Conclusions (computed from the results)", ""]
    md += [f"- {s}" for s in sentences]
    md += ["", "## Test accuracy (mean ± std over seeds)", "",
           _table(table, ["pair", "method", "test accuracy"]), "", "## Every run", "",
           _table(rows, list(rows[0])), "", "![accuracy](transfer.png)", ""]
    files = write_study_files(folder, "transfer", spec["mode"], spec["title"],
                              spec["question"], "\n".join(md), sentences, seconds, rows,
                              "transfer.png")
    files["plot"] = str(folder / "transfer.png")
    return StudyResult("transfer", spec["mode"], folder, sentences, files, seconds)


if "transfer" not in STUDIES:
    STUDIES.add("transfer", Study("transfer", "transfer.toml", lambda report, spec: [],
                                  run=run_transfer))
