"""Diagnosis vs chance: trials the doctor needs until a remedy reaches 90% of a healthy reference,
against a baseline that draws remedies at random from the same toolbox.

A labelled set of failing setups (:data:`SETUPS`, 20 of them over five architecture families:
MLP, plain CNN, ResNet, RNN/GRU/LSTM, transformer; plain-PyTorch factories of
:mod:`steadygrad.doctor.examples` on the embedded digits data), each with a healthy reference.
Per setup:

1. the baseline and the reference run under the monitor (``--seeds`` seeds); the baseline's
   problem kinds are the diagnosis, and without any, ``impaired_learning`` when it learns
   badly against the reference (the doctor's rule, :mod:`steadygrad.doctor.impaired`);
2. the *toolbox* is every remedy of :data:`steadygrad.doctor.any_model.MODEL_TOOLBOX` (all finding
   kinds, deduplicated) that applies to the model (the doctor's own filter: no-op rewrites and
   inapplicable patches are dropped); each runs once as a controlled trial (same split, seeds and
   budget) and *succeeds* when its mean validation accuracy is >= 90% of the reference's;
3. the doctor's order is its proposal for the diagnosed kinds
   (:func:`steadygrad.doctor.core.runnable_candidates`), then the rest of the toolbox; the number
   of trials it needs is the position of the first success in that order;
4. the random baseline draws the toolbox in random order: the mean position of the first success
   over ``--draws`` seeded permutations (and the exact expectation (n + 1) / (k + 1) for n
   remedies of which k succeed).

The doctor's second-round combination is not part of the count (single remedies only).

Run::

    python benchmarks/doctor_vs_random.py --quick          # 5 setups, 1 seed (minutes)
    python benchmarks/doctor_vs_random.py --seeds 2        # all 20 setups (hours on 2 cores)

``--write`` replaces this benchmark's section of ``docs/benchmarks.md``; ``--json FILE`` writes
every number.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common

_M = "steadygrad.doctor.examples"
_SGD = {"name": "sgd", "learning_rate": 0.01}


@dataclass(frozen=True)
class Setup:
    """One labelled failing setup: factory + kwargs + train, and its healthy reference."""

    name: str
    arch: str
    label: str
    factory: str
    kwargs: dict[str, Any] = field(hash=False)
    train: dict[str, Any] = field(hash=False)
    ref_kwargs: dict[str, Any] = field(hash=False)
    ref_train: dict[str, Any] = field(hash=False)


def _s(name: str, arch: str, label: str, fn: str, kwargs: dict[str, Any],
       train: dict[str, Any], ref_kwargs: dict[str, Any], ref_train: dict[str, Any]) -> Setup:
    return Setup(name, arch, label, f"{_M}:{fn}", kwargs, train, ref_kwargs, ref_train)


def _t(epochs: int, name: str, lr: float) -> dict[str, Any]:
    return {"epochs": epochs, "optimizer": {"name": name, "learning_rate": lr}}


_MLP_REF = {"activation": "elu", "init_std": 0.177}
_CNN_REF = {"activation": "elu"}
_RES_REF = {"norm": True, "init_std": 0.0}
_RNN_REF = {"kind": "lstm", "recurrent_scale": 1.0}
SETUPS: list[Setup] = [
    _s("mlp_sigmoid_n01", "mlp", "vanishing", "mlp_net", {}, _t(5, "sgd", 0.01),
       _MLP_REF, _t(5, "sgd", 0.01)),
    _s("mlp_tanh_n01", "mlp", "saturation", "mlp_net", {"activation": "tanh"},
       _t(5, "sgd", 0.01), _MLP_REF, _t(5, "sgd", 0.01)),
    _s("mlp_relu_n01", "mlp", "exploding", "mlp_net", {"activation": "relu"},
       _t(5, "sgd", 0.01), _MLP_REF, _t(5, "sgd", 0.01)),
    _s("mlp_sigmoid_default_init", "mlp", "vanishing", "mlp_net", {"init_std": 0.0},
       _t(5, "sgd", 0.01), _MLP_REF, _t(5, "sgd", 0.01)),
    _s("cnn_sigmoid", "cnn", "vanishing", "cnn_net", {}, _t(5, "sgd", 0.01),
       _CNN_REF, _t(5, "adam", 0.003)),
    _s("cnn_tanh_n01", "cnn", "saturation", "cnn_net", {"activation": "tanh", "init_std": 1.0},
       _t(5, "sgd", 0.01), _CNN_REF, _t(5, "adam", 0.003)),
    _s("cnn_relu_large_init", "cnn", "exploding", "cnn_net",
       {"activation": "relu", "init_std": 0.5}, _t(5, "sgd", 0.01), _CNN_REF,
       _t(5, "adam", 0.003)),
    _s("cnn_relu_lr_too_high", "cnn", "learning_rate", "cnn_net", {"activation": "relu"},
       _t(5, "sgd", 1.0), _CNN_REF, _t(5, "adam", 0.003)),
    _s("resnet_no_norm_large_init", "resnet", "non_finite", "resnet_net", {},
       _t(3, "sgd", 0.05), _RES_REF, _t(3, "sgd", 0.05)),
    _s("resnet_no_norm_init_0.2", "resnet", "exploding", "resnet_net", {"init_std": 0.2},
       _t(3, "sgd", 0.05), _RES_REF, _t(3, "sgd", 0.05)),
    _s("resnet_lr_too_high", "resnet", "learning_rate", "resnet_net", {"norm": True,
       "init_std": 0.0}, _t(3, "sgd", 2.0), _RES_REF, _t(3, "sgd", 0.05)),
    _s("resnet_deep_no_norm", "resnet", "exploding", "resnet_net", {"blocks": 8,
       "init_std": 0.15}, _t(3, "sgd", 0.05), _RES_REF, _t(3, "sgd", 0.05)),
    _s("rnn_large_recurrent_lr2", "rnn", "exploding", "rnn_net", {}, _t(5, "sgd", 2.0),
       _RNN_REF, _t(5, "adam", 0.003)),
    _s("gru_lr_too_high", "rnn", "learning_rate", "rnn_net", {"kind": "gru",
       "recurrent_scale": 1.0}, _t(5, "sgd", 5.0), _RNN_REF, _t(5, "adam", 0.003)),
    _s("lstm_lr_too_high", "rnn", "learning_rate", "rnn_net", {"kind": "lstm",
       "recurrent_scale": 1.0}, _t(5, "sgd", 10.0), _RNN_REF, _t(5, "adam", 0.003)),
    _s("rnn_sigmoid_head_lr2", "rnn", "saturation", "rnn_net", {"head_activation": "sigmoid"},
       _t(5, "sgd", 2.0), _RNN_REF, _t(5, "adam", 0.003)),
    _s("transformer_postln6_adam3e-2", "transformer", "vanishing", "transformer_net",
       {"layers": 6, "d_model": 16}, _t(4, "adam", 0.03),
       {"layers": 6, "d_model": 16, "norm_first": True}, _t(4, "adam", 0.003)),
    _s("transformer_postln4_d32_adam3e-2", "transformer", "vanishing", "transformer_net",
       {"layers": 4}, _t(4, "adam", 0.03), {"layers": 4, "norm_first": True},
       _t(4, "adam", 0.003)),
    _s("transformer_postln6_sgd1", "transformer", "learning_rate", "transformer_net",
       {"layers": 6, "d_model": 16}, _t(4, "sgd", 1.0),
       {"layers": 6, "d_model": 16, "norm_first": True}, _t(4, "adam", 0.003)),
    _s("transformer_postln8_adam1e-2", "transformer", "vanishing", "transformer_net",
       {"layers": 8, "d_model": 16}, _t(4, "adam", 0.01),
       {"layers": 8, "d_model": 16, "norm_first": True}, _t(4, "adam", 0.003)),
]
"""The labelled failing setups (name, family, the failure they were built to show)."""

TITLE = "Doctor vs random remedies"

QUICK = ["mlp_sigmoid_n01", "cnn_sigmoid", "resnet_no_norm_large_init",
         "rnn_large_recurrent_lr2", "transformer_postln6_adam3e-2"]


def _config(setup: Setup, reference: bool) -> Any:
    from steadygrad.experiments.config import config_from_dict

    return config_from_dict({
        "name": setup.name + ("-reference" if reference else ""), "data": {"name": "digits"},
        "model": {"factory": setup.factory,
                  "factory_kwargs": setup.ref_kwargs if reference else setup.kwargs},
        "train": setup.ref_train if reference else setup.train,
        "diagnostics": {"every": 5}})


def first_success(order: list[str], ok: set[str]) -> int | None:
    """1-based position of the first name of ``order`` in ``ok`` (None: none).

    >>> first_success(["a", "b", "c"], {"c"}), first_success(["a"], set())
    (3, None)
    """
    return next((i + 1 for i, name in enumerate(order) if name in ok), None)


def random_mean(names: list[str], ok: set[str], draws: int) -> float | None:
    """Mean first-success position over ``draws`` seeded random orders of ``names``.

    >>> random_mean(["a", "b"], {"a", "b"}, 10), random_mean(["a"], set(), 5)
    (1.0, None)
    """
    if not ok:
        return None
    values = []
    for seed in range(draws):
        order = list(names)
        random.Random(seed).shuffle(order)
        pos = first_success(order, ok)
        assert pos is not None
        values.append(pos)
    return statistics.fmean(values)


def run_setup(setup: Setup, seeds: list[int], root: Path, draws: int) -> dict[str, Any]:
    """Diagnose one setup, run its whole toolbox, and count trials for both strategies."""
    from steadygrad.doctor.any_model import MODEL_TOOLBOX
    from steadygrad.doctor.candidates import unique
    from steadygrad.doctor.core import runnable_candidates
    from steadygrad.doctor.impaired import IMPAIRED, impairment
    from steadygrad.doctor.trials import DataCache, run_trial
    from steadygrad.experiments.config import config_to_dict

    cache = DataCache()
    started = time.time()
    metric = "val_accuracy"

    def trial(label: str, table: dict[str, Any]) -> Any:
        return run_trial(label, "candidate", table, {}, seeds, root / setup.name,
                         metric=metric, cache=cache)

    table = config_to_dict(_config(setup, False))
    baseline = trial("baseline", table)
    reference = trial("reference", config_to_dict(_config(setup, True)))
    kinds = list(baseline.problems)
    if not kinds and impairment(baseline, reference, metric, 10) is not None:
        kinds = [IMPAIRED]  # the doctor's rule: learns badly without a finding
    out: dict[str, Any] = {"setup": setup.name, "arch": setup.arch, "label": setup.label,
                           "problems": kinds, "baseline": baseline.mean,
                           "reference": reference.mean}
    if not kinds or reference.mean is None:
        out["excluded"] = "the baseline showed no problem" if not kinds else \
            "the reference did not finish"
        return out
    toolbox = unique(c for cands in MODEL_TOOLBOX.values() for c in cands)
    ready, skipped = runnable_candidates(table, kinds, cache, seeds[0], candidates=toolbox)
    doctor_ready, _ = runnable_candidates(table, kinds, cache, seeds[0])
    target = 0.9 * reference.mean
    means: dict[str, float | None] = {}
    for cand, new, _patch, _note in ready:
        means[cand.name] = trial(cand.name, new).mean
    ok = {n for n, m in means.items() if m is not None and m >= target}
    names = [c.name for c, *_ in ready]
    doctor_order = [c.name for c, *_ in doctor_ready]
    doctor_order += [n for n in names if n not in doctor_order]
    exact = (len(names) + 1) / (len(ok) + 1) if ok else None
    within = set(doctor_order[:9])  # the doctor's default budget: 9 singles + 1 combination
    best = max((means.get(n) or 0.0 for n in doctor_order[:9]), default=0.0)
    out.update(toolbox=names, skipped=[n for n, _ in skipped], means=means,
               succeeded=sorted(ok), target=target, doctor_order=doctor_order,
               doctor_trials=first_success(doctor_order, ok),
               random_trials=random_mean(names, ok, draws), random_exact=exact,
               doctor_best=best, doctor_best_ratio=best / reference.mean,
               doctor_reaches_90=bool(ok & within), seconds=time.time() - started)
    return out


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Aggregate: setups diagnosed, share repaired to 90%, mean trials vs random.

    >>> row = {"doctor_reaches_90": True, "doctor_trials": 2, "random_trials": 4.0,
    ...        "random_exact": 4.0}
    >>> s = summarize([row, {"excluded": "healthy"}])
    >>> s["diagnosed"], s["mean_doctor_trials"], s["mean_random_trials"]
    (1, 2.0, 4.0)
    """
    used = [r for r in rows if "excluded" not in r]
    both = [r for r in used if r["doctor_trials"] is not None]
    return {
        "setups": len(rows), "diagnosed": len(used),
        "impaired_only": sum(r.get("problems") == ["impaired_learning"] for r in used),
        "doctor_reaches_90": sum(r["doctor_reaches_90"] for r in used),
        "mean_doctor_trials": statistics.fmean(r["doctor_trials"] for r in both)
        if both else None,
        "mean_random_trials": statistics.fmean(r["random_trials"] for r in both)
        if both else None,
        "mean_random_exact": statistics.fmean(r["random_exact"] for r in both)
        if both else None,
        "solvable": len(both),
    }


def _fmt(x: Any) -> str:
    return "n/a" if x is None else (f"{x:.2f}" if isinstance(x, float) else str(x))


def markdown(rows: list[dict[str, Any]], summary: dict[str, Any], command: str) -> str:
    """The benchmark's section of ``docs/benchmarks.md``."""
    head = ["setup", "family", "label", "problems found", "baseline", "reference",
            "toolbox", "succeed", "doctor trials", "random trials (mean)", "doctor best / ref"]
    body = []
    for r in rows:
        if "excluded" in r:
            body.append([r["setup"], r["arch"], r["label"], "-", _fmt(r["baseline"]),
                         _fmt(r["reference"]), "-", "-", f"excluded: {r['excluded']}", "-",
                         "-"])
            continue
        body.append([r["setup"], r["arch"], r["label"], ", ".join(r["problems"]),
                     _fmt(r["baseline"]), _fmt(r["reference"]), str(len(r["toolbox"])),
                     str(len(r["succeeded"])), _fmt(r["doctor_trials"]),
                     _fmt(r["random_trials"]), f"{r['doctor_best_ratio']:.0%}"])
    s = summary
    lines = [
        f"Command: `{command}`. Single remedies only (the doctor's second-round combination is "
        "not counted); success = mean validation accuracy >= 90% of the healthy reference's. "
        "Trial counts do not depend on the machine's speed.", "",
        _common.markdown_table(head, body), "",
        f"- diagnosed (the baseline showed a problem): {s['diagnosed']} of {s['setups']} "
        f"labelled failing setups ({s['impaired_only']} of them only as impaired_learning: no "
        f"finding, but below 90% of the reference beyond seed noise); the doctor's best remedy "
        f"(within its default 9 single trials) reached 90% of the reference on "
        f"{s['doctor_reaches_90']} of {s['diagnosed']}, i.e. on {s['doctor_reaches_90']} of "
        f"all {s['setups']} setups ({s['doctor_reaches_90'] / max(1, s['setups']):.0%}).",
        f"- setups where some remedy reached 90%: {s['solvable']}; mean trials until the first "
        f"such remedy: doctor {_fmt(s['mean_doctor_trials'])}, random "
        f"{_fmt(s['mean_random_trials'])} (exact expectation {_fmt(s['mean_random_exact'])}).",
    ]
    return "\n".join(lines) + "\n"


def _report(rows: list[dict[str, Any]], command: str, json_path: str | None,
            write: bool) -> None:
    summary = summarize(rows)
    print(json.dumps(summary))
    text = markdown(rows, summary, command.strip())
    print(f"## {TITLE}\n\n{text}")
    if json_path:
        Path(json_path).write_text(json.dumps({"command": command.strip(), "rows": rows,
                                               "summary": summary}, indent=2, default=str))
    if write:
        _common.write_section(TITLE, text)


def _merge(paths: list[str], command: str | None, json_path: str | None, write: bool) -> int:
    """Rows of several ``--json`` files, in :data:`SETUPS` order; a setup twice is an error."""
    found: dict[str, dict[str, Any]] = {}
    for path in paths:
        for row in json.loads(Path(path).read_text())["rows"]:
            if row["setup"] in found:
                raise SystemExit(f"--merge: setup {row['setup']} is in two files")
            found[row["setup"]] = row
    rows = [found[s.name] for s in SETUPS if s.name in found]
    _report(rows, command or "python benchmarks/doctor_vs_random.py --merge "
            + " ".join(paths), json_path, write)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"only {len(QUICK)} setups (one per family) and 1 seed")
    parser.add_argument("--seeds", type=int, default=2, help="seeds per trial (default 2)")
    parser.add_argument("--draws", type=int, default=1000,
                        help="random orders for the baseline's mean (default 1000)")
    parser.add_argument("--only", nargs="*", default=None, help="setup names to run")
    parser.add_argument("--json", default=None, help="write every number to this file")
    parser.add_argument("--write", action="store_true",
                        help="replace this benchmark's section of docs/benchmarks.md")
    parser.add_argument("--merge", nargs="+", default=None, metavar="JSON",
                        help="run nothing: combine the rows of --json files written by runs "
                             "of disjoint --only sets (e.g. two processes on two cores)")
    parser.add_argument("--command", default=None,
                        help="with --merge: the command line to state in the docs")
    args = parser.parse_args(argv)
    if args.merge:
        return _merge(args.merge, args.command, args.json, args.write)
    import torch

    torch.set_num_threads(1)
    chosen = [s for s in SETUPS if (args.only is None or s.name in args.only)
              and (not args.quick or s.name in QUICK)]
    seeds = list(range(1 if args.quick else args.seeds))
    rows = []
    with tempfile.TemporaryDirectory(prefix="doctor-vs-random-") as tmp:
        for setup in chosen:
            row = run_setup(setup, seeds, Path(tmp), args.draws)
            rows.append(row)
            print(json.dumps({k: row.get(k) for k in (
                "setup", "problems", "baseline", "reference", "succeeded", "doctor_trials",
                "random_trials", "doctor_best_ratio", "excluded")}, default=str), flush=True)
    command = "python benchmarks/doctor_vs_random.py " + " ".join(argv or sys.argv[1:])
    _report(rows, command, args.json, args.write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
