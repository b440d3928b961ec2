"""``steadygrad study pretraining``: unsupervised pretraining with a stacked autoencoder.

A stacked autoencoder (encoder 784 → 100 → 30, SELU; Hinton & Salakhutdinov, 2006) is trained
on the training images without their labels, whole (``ae_whole``) or greedily layer by
layer (``ae_greedy``; Bengio et al., 2006); its encoder then initializes a classifier
(:func:`~steadygrad.transfer.classifier_from_encoder`, every layer fine-tuned) trained on a
few labels. ``scratch`` is the same classifier randomly initialized. Each label budget takes
a seeded class-balanced subset (:func:`~steadygrad.transfer.take_labels`, nested budgets)
and :func:`~steadygrad.transfer.label_budget_table` trains and tests every method on it.

Example:
    >>> rows = [{"seed": s, "method": m, "labels": 50, "test_accuracy": a}
    ...         for s, (x, y) in enumerate([(0.6, 0.7), (0.62, 0.66)])
    ...         for m, a in (("scratch", x), ("ae_whole", y))]
    >>> summarize(rows)[("ae_whole", 50)]
    (0.68, 0.0283)
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from steadygrad._atomic import atomic_path
from steadygrad.errors import ConfigError, DataError
from steadygrad.studies._custom import mean_std, study_params, write_study_files
from steadygrad.studies.registry import STUDIES, Study

__all__ = ["conclusions", "run_pretraining", "seed_rows", "summarize"]

METHODS = ("scratch", "ae_whole", "ae_greedy")


def seed_rows(x_unlabelled: torch.Tensor, train: tuple[torch.Tensor, torch.Tensor],
              test: tuple[torch.Tensor, torch.Tensor], params: Mapping[str, Any],
              seed: int) -> list[dict[str, Any]]:
    """Pretrain both autoencoders with ``seed``, then every method at every label budget.

    Example:
        >>> from steadygrad.data import load
        >>> ds = load("digits", standardize=False)
        >>> p = {"hidden": [16, 8], "ae_epochs": 1, "clf_epochs": 1, "learning_rate": 1e-3,
        ...      "batch_size": 32, "budgets": [20]}
        >>> rows = seed_rows(ds.x_train, (ds.x_train, ds.y_train), (ds.x_test, ds.y_test),
        ...                  p, seed=0)
        >>> [(r["method"], r["labels"]) for r in rows]
        [('scratch', 20), ('ae_whole', 20), ('ae_greedy', 20)]
    """
    from steadygrad.transfer import (
        StackedAutoencoder,
        classifier_from_encoder,
        encoder_mlp,
        label_budget_table,
        pretrain_autoencoder,
    )

    shape = tuple(x_unlabelled.shape[1:])
    classes = int(train[1].max()) + 1
    fit_kw = {"optimizer": "adam", "learning_rate": params["learning_rate"],
              "batch_size": params["batch_size"], "verbose": 0, "monitor": None}
    autoencoders = {}
    for greedy in (False, True):
        ae = StackedAutoencoder(encoder_mlp(shape, tuple(params["hidden"]), seed=seed))
        pretrain_autoencoder(ae, x_unlabelled, greedy=greedy, epochs=params["ae_epochs"],
                             seed=seed, **fit_kw)
        autoencoders["ae_greedy" if greedy else "ae_whole"] = ae
    models = {
        "scratch": lambda: classifier_from_encoder(
            encoder_mlp(shape, tuple(params["hidden"]), seed=seed + 1), classes),
        "ae_whole": lambda: classifier_from_encoder(autoencoders["ae_whole"], classes),
        "ae_greedy": lambda: classifier_from_encoder(autoencoders["ae_greedy"], classes),
    }
    table = label_budget_table(models, train, test, list(params["budgets"]), seed=seed,
                               epochs=params["clf_epochs"], **fit_kw)
    return [{"seed": seed, "method": r["model"], "labels": r["labels"],
             "test_accuracy": round(float(r["accuracy"]), 4)} for r in table]


def summarize(rows: Sequence[Mapping[str, Any]]) -> dict[tuple[str, int], tuple[float, float]]:
    """``{(method, labels): (mean, std)}`` of the test accuracy over the seeds.

    Example:
        >>> summarize([{"method": "scratch", "labels": 10, "test_accuracy": 0.5}])
        {('scratch', 10): (0.5, 0.0)}
    """
    keys = dict.fromkeys((r["method"], r["labels"]) for r in rows)
    return {k: mean_std([r["test_accuracy"] for r in rows
                         if (r["method"], r["labels"]) == k]) for k in keys}


def conclusions(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The sentences of the report, each computed from the per-seed ``rows``.

    Example:
        >>> rows = [{"seed": 0, "method": m, "labels": n, "test_accuracy": a}
        ...         for m, n, a in [("scratch", 10, 0.5), ("ae_whole", 10, 0.6),
        ...                         ("scratch", 90, 0.8), ("ae_whole", 90, 0.79)]]
        >>> conclusions(rows)[0]
        '10 labels: best ae_whole 0.6000 ± 0.0000; ae_whole vs scratch: +10.0 points \
(better in 1 of 1 seeds).'
    """
    summary = summarize(rows)
    methods = list(dict.fromkeys(r["method"] for r in rows))
    budgets = sorted({r["labels"] for r in rows})
    acc = {(r["method"], r["labels"], r["seed"]): r["test_accuracy"] for r in rows}
    seeds = sorted({r["seed"] for r in rows})
    out = []
    gains: dict[str, list[float]] = {m: [] for m in methods if m != "scratch"}
    for n in budgets:
        best = max(methods, key=lambda m: summary[m, n][0])
        parts = []
        for m in gains:
            gain = summary[m, n][0] - summary["scratch", n][0]
            gains[m].append(gain)
            wins = sum(acc[m, n, s] > acc["scratch", n, s] for s in seeds)
            parts.append(f"{m} vs scratch: {100 * gain:+.1f} points (better in {wins} of "
                         f"{len(seeds)} seeds)")
        out.append(f"{n} labels: best {best} {summary[best, n][0]:.4f} ± "
                   f"{summary[best, n][1]:.4f}; " + "; ".join(parts) + ".")
    for m, g in gains.items():
        if len(budgets) >= 2:
            trend = "shrinks" if g[-1] < g[0] else "grows" if g[-1] > g[0] else "stays"
            out.append(f"The {m} gain over scratch {trend} from {100 * g[0]:+.1f} points at "
                       f"{budgets[0]} labels to {100 * g[-1]:+.1f} at {budgets[-1]} labels.")
    return out


def _plot(rows: Sequence[Mapping[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = summarize(rows)
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for i, m in enumerate(dict.fromkeys(r["method"] for r in rows)):
        budgets = sorted(n for k, n in summary if k == m)
        ax.errorbar(budgets, [summary[m, n][0] for n in budgets],
                    yerr=[summary[m, n][1] for n in budgets], marker="o", capsize=3,
                    color=f"C{i}", label=m)
    ax.set_xscale("log")
    ax.set_xlabel("labelled training examples")
    ax.set_ylabel("test accuracy (mean ± std over seeds)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def run_pretraining(spec: Mapping[str, Any], out_dir: Path, seeds: int | None = None,
                    overrides: Sequence[str] = ()) -> Any:
    """Run the study into ``out_dir/pretraining-<mode>[-custom]/`` and write its report.

    Files: ``results.csv`` (seed × method × budget), ``study.md``, ``study.html``,
    ``study.json`` and ``pretraining.png`` (accuracy vs label budget per method).

    Raises:
        DataError: the dataset is not found.
        ConfigError: a bad parameter (before any training).

    Example:
        >>> import tempfile
        >>> from steadygrad.studies.registry import load_spec
        >>> r = run_pretraining(load_spec("pretraining"), Path(tempfile.mkdtemp()), 1, [
        ...     "dataset=digits", "unlabelled_rows=0", "hidden=[8]", "ae_epochs=1",
        ...     "clf_epochs=1", "budgets=[20]"])
        >>> r.sweep_dir.name, len(r.conclusions)
        ('pretraining-quick-custom', 2)
    """
    from steadygrad.data import load
    from steadygrad.studies.runner import StudyResult

    params = study_params(spec, seeds, overrides)
    for key in ("ae_epochs", "clf_epochs", "seeds", "batch_size"):
        if isinstance(params[key], bool) or not isinstance(params[key], int) or params[key] < 1:
            raise ConfigError(key, params[key], "an integer >= 1")
    if not params["budgets"]:
        raise ConfigError("budgets", params["budgets"], "a non-empty list of label counts")
    started = time.time()
    try:
        ds = load(params["dataset"], standardize=False)
    except DataError as err:
        raise DataError(f"study pretraining needs {params['dataset']}: {err}; offline: "
                        "--set dataset=digits") from None
    x, y = ds.x_train, ds.y_train
    assert ds.x_test is not None and ds.y_test is not None  # both loaders have a test split
    if params["unlabelled_rows"]:
        x, y = x[:params["unlabelled_rows"]], y[:params["unlabelled_rows"]]
    rows: list[dict[str, Any]] = []
    for seed in range(params["seeds"]):
        rows += seed_rows(x, (x, y), (ds.x_test, ds.y_test), params, seed)
    sentences = conclusions(rows)
    seconds = time.time() - started
    sentences.append(f"{len(rows)} classifiers in {seconds:.0f} s, {spec['mode']} mode "
                     f"({len(x)} unlabelled {params['dataset']} training images).")
    folder = Path(out_dir) / (f"pretraining-{spec['mode']}" + ("-custom" if overrides else ""))
    folder.mkdir(parents=True, exist_ok=True)
    _plot(rows, folder / "pretraining.png")
    summary = summarize(rows)
    budgets = sorted({r["labels"] for r in rows})
    methods = list(dict.fromkeys(r["method"] for r in rows))
    head = "| method | " + " | ".join(f"{n} labels" for n in budgets) + " |"
    lines = [head, "|" + "---|" * (len(budgets) + 1)]
    lines += ["| " + m + " | " + " | ".join(f"{summary[m, n][0]:.4f} ± {summary[m, n][1]:.4f}"
                                             for n in budgets) + " |" for m in methods]
    md = [f"# {spec['title']}", "", f"*{spec['question']}* ({spec['mode']} mode)", "",
          "Parameters: " + ", ".join(f"{k}={v}" for k, v in params.items()), "",
          "## Conclusions (computed from the results)", ""]
    md += [f"- {s}" for s in sentences]
    md += ["", "## Test accuracy (mean ± std over seeds)", "", "\n".join(lines), "",
           "![accuracy vs labels](pretraining.png)", ""]
    files = write_study_files(folder, "pretraining", spec["mode"], spec["title"],
                              spec["question"], "\n".join(md), sentences, seconds, rows,
                              "pretraining.png")
    files["plot"] = str(folder / "pretraining.png")
    return StudyResult("pretraining", spec["mode"], folder, sentences, files, seconds)


if "pretraining" not in STUDIES:
    STUDIES.add("pretraining", Study("pretraining", "pretraining.toml",
                                     lambda report, spec: [], run=run_pretraining))
