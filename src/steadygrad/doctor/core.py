"""``doctor``: diagnose a training setup, then prove the fix with controlled trials.

The procedure (``shared/notes/prior_art_diagnosis.md`` §5.3 item 6, "repairs as controlled
experiments", instead of AUTOTRAINER's first-quiet-detector-wins search):

1. run the baseline config under the gradient-health monitor, once per seed;
2. if no finding counts as a problem (:func:`steadygrad.doctor.trials.problem_kinds`), check
   that the run learns (:mod:`steadygrad.doctor.impaired`: against the healthy reference,
   which then runs first, or else against the chance loss); a run that learns badly is
   diagnosed ``impaired_learning``; otherwise stop: nothing needs fixing and no trial runs;
3. otherwise propose candidate remedies for the findings
   (:func:`steadygrad.doctor.candidates.propose`) and run each as a short controlled trial with
   the same data split, seeds and step budget, each model re-initialized from the seed;
4. combine the two best compatible single remedies in a second round;
5. rank: candidates whose problems disappeared in every seed first, then by the validation
   metric's mean; success = problems gone and mean metric no worse than the baseline's;
6. write ``repaired.toml`` (the best successful candidate's config), ``repaired.py`` (the same
   remedy as PyTorch code), ``doctor.json``, ``doctor.md``, ``doctor.html`` and the sweep
   report of every run under ``report/``.

The same loop runs for any model: a config whose ``[model] factory`` names the user's function
(or ``doctor(model_fn, data)`` from Python) gets :data:`steadygrad.doctor.any_model
.MODEL_TOOLBOX`'s remedies, model rewrites and training changes, instead of the MLP's config
keys. Any builder that plugs into :func:`steadygrad.experiments.execute.build_model` (another
``[model] arch``) is treated the same way (:func:`steadygrad.doctor.any_model.is_any_model`).

Example:
    >>> import tempfile
    >>> from steadygrad.experiments.config import config_from_dict
    >>> cfg = config_from_dict({"data": {"name": "digits", "n_train": 300},
    ...     "model": {"hidden": [32], "activation": "relu"},
    ...     "train": {"epochs": 5, "optimizer": {"name": "adam", "learning_rate": 0.01}}})
    >>> result = doctor(cfg, seeds=1, out_dir=tempfile.mkdtemp())
    >>> result.healthy, len(result.trials), result.baseline.runs[0].val_loss < 0.5 * math.log(10)
    (True, 0, True)
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from steadygrad.doctor.any_model import APPEND, is_any_model, rewrites_change_nothing
from steadygrad.doctor.backends import (
    TrialSpec,
    check_backend,
    check_portable,
    ray_session,
    run_round,
)
from steadygrad.doctor.candidates import (
    Candidate,
    _resolve_lr,
    merge_patches,
    patch_effect,
    propose,
)
from steadygrad.doctor.impaired import IMPAIRED, impairment, mark_impaired
from steadygrad.doctor.result import DoctorResult, rank
from steadygrad.doctor.trials import DataCache, Trial
from steadygrad.errors import ConfigError
from steadygrad.experiments.config import RunConfig, config_from_dict, config_to_dict
from steadygrad.experiments.loader import set_key

__all__ = ["doctor", "example_config", "reference_config", "runnable_candidates"]

_N01 = {"name": "variance_scaling", "scale": 64.0, "mode": "fan_in",
        "distribution": "untruncated_normal"}
_DATA: dict[str, dict[str, Any]] = {"digits": {"name": "digits"},
         "fashion_mnist": {"name": "fashion_mnist", "n_train": 5000, "val_size": 1000,
                           "seed": 0}}


def example_config(data: str = "digits") -> RunConfig:
    """The built-in failing network: 10 x 64 sigmoid units, N(0, 1) weights, SGD 0.01, 5 epochs.

    The setup of Glorot & Bengio (2010) that made deep nets "fail to learn": logistic units
    with a unit-variance normal init (``variance_scaling`` with ``scale = 64`` on 64 inputs is
    N(0, 1)), plain SGD at Keras' default rate.

    Args:
        data: ``"digits"`` (embedded, offline) or ``"fashion_mnist"`` (a 5,000-image subset;
            needs the dataset files).

    >>> cfg = example_config()
    >>> cfg.model.hidden, cfg.model.activation.name, cfg.train.optimizer.learning_rate
    ((64, 64, 64, 64, 64, 64, 64, 64, 64, 64), 'sigmoid', 0.01)
    """
    if data not in _DATA:
        raise ConfigError("data", data, f"one of {', '.join(_DATA)}")
    return config_from_dict({
        "name": "deep_sigmoid", "data": dict(_DATA[data]),
        "model": {"hidden": [64] * 10, "activation": "sigmoid", "kernel_initializer": _N01},
        "train": {"epochs": 5, "batch_size": 32,
                  "optimizer": {"name": "sgd", "learning_rate": 0.01}},
        "diagnostics": {"every": 5},
    })


def reference_config(config: RunConfig) -> RunConfig:
    """A healthy reference for ``config``: the same run with ELU + He init.

    ELU with He initialization is the "default DNN" of Géron's *Hands-On ML* (2nd ed., table
    11-3; Clevert et al. 2015; He et al. 2015); everything else (data, depth, optimizer,
    budget, seeds) is unchanged.

    >>> reference_config(example_config()).model.activation.name
    'elu'
    """
    raw = config_to_dict(config)
    raw["name"] = "reference"
    raw["model"]["activation"] = "elu"
    raw["model"]["kernel_initializer"] = "he_normal"
    return config_from_dict(raw)


def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(name, value, f"an integer >= {low}")
    return value


def _printer(progress: Callable[[str], None] | bool | None) -> Callable[[str], None]:
    if callable(progress):
        return progress
    if progress:
        return lambda line: print(line, file=sys.stderr, flush=True)
    return lambda line: None


def runnable_candidates(table: dict[str, Any], kinds: Sequence[str], cache: DataCache,
                        seed: int, limit: int | None = None,
                        candidates: Sequence[Candidate] | None = None,
                        ) -> tuple[list[tuple[Candidate, dict[str, Any], dict[str, Any], str]],
                                   list[tuple[str, str]]]:
    """The candidates the doctor would run for ``kinds``, in its order, ready to run.

    Each is ``(candidate, config table, resolved patch, note)``; the patch's ``"lr_find"`` and
    ``"div10"`` placeholders are resolved (LR range test on the ``seed`` model, one tenth of
    the rate). Candidates that change nothing or do not apply are returned as
    ``(name, why)``; at most ``limit`` are made ready (the rest are neither). ``candidates``
    replaces the doctor's proposal (the benchmark's random baseline draws from the toolbox).
    """
    ready: list[tuple[Candidate, dict[str, Any], dict[str, Any], str]] = []
    skipped: list[tuple[str, str]] = []
    pool = propose(kinds, any_model=is_any_model(table)) if candidates is None else candidates
    for cand in pool:
        if limit is not None and len(ready) >= limit:
            break
        new, why = patch_effect(table, cand.patch)
        if new is not None and APPEND in cand.patch:
            why = rewrites_change_nothing(new, len(cand.patch[APPEND]), cache)
            new = None if why else new
        if new is None:
            skipped.append((cand.name, why or "skipped"))
            continue
        patch, note = dict(cand.patch), ""
        for key, value in cand.patch.items():
            if value == "lr_find":
                lr, note = _resolve_lr(new, key, seed, cache)
                if lr is None:
                    break
                set_key(new, key, lr)
                patch[key] = lr
            elif value == "div10":
                patch[key] = new["train"]["optimizer"]["learning_rate"]
        else:
            ready.append((cand, new, patch, note))
            continue
        skipped.append((cand.name, note))
    return ready, skipped


def _budget(table: dict[str, Any], steps: int | None, n_train: int) -> tuple[int, int]:
    """(epochs, steps) for a step budget (rounded up to whole epochs)."""
    per_epoch = math.ceil(n_train / int(table["train"]["batch_size"]))
    if steps is None:
        epochs = int(table["train"]["epochs"])
    else:
        epochs = max(1, math.ceil(steps / per_epoch))
    return epochs, epochs * per_epoch


def doctor(config: RunConfig | Callable[..., Any] | str | None = None, data: Any = None, *,
           steps: int | None = None, seeds: int = 3, max_trials: int = 10,
           out_dir: str | Path | None = None,
           progress: Callable[[str], None] | bool | None = None,
           reference: RunConfig | Callable[..., Any] | str | None = None,
           threads: int | None = 1, train: dict[str, Any] | None = None,
           model_kwargs: dict[str, Any] | None = None, backend: str = "local",
           address: str | None = None, workers: int | None = None) -> DoctorResult:
    """Diagnose ``config`` and run the controlled trials that show which remedy works.

    Args:
        config: the training setup; None runs the built-in failing network
            (:func:`example_config`) with its healthy reference (:func:`reference_config`).
            A callable (or a ``"package.module:function"`` string) is a model factory:
            ``config(**model_kwargs)`` must build a fresh ``nn.Module``; it is trained on
            ``data`` with ``train`` and its remedies are model rewrites
            (:mod:`steadygrad.nn.rewrite`) and training changes
            (:data:`steadygrad.doctor.any_model.MODEL_TOOLBOX`).
        data: with a factory: a :class:`~steadygrad.data.Dataset` (saved as ``data.npz`` in
            ``out_dir`` so every trial uses its exact split), a dataset name or a ``[data]``
            table. Not used with a config.
        steps: optimizer-step budget of every trial (rounded up to whole epochs); None keeps
            the config's ``train.epochs``.
        seeds: seeds per trial (``train.seed`` = 0, 1, ...); mean ± std over them.
        max_trials: most candidate trials (the last slot goes to the combination of the two
            best single remedies when there are at least 3 slots); 0 only diagnoses.
        out_dir: where to write runs and reports; must be empty or missing (None: a new
            temporary folder).
        progress: None/False (silent), True (one line per run on stderr) or a callable that
            receives each progress line.
        reference: a healthy configuration run with the same budget to compare with; when
            the baseline has no finding it decides whether the baseline learns badly
            (:mod:`steadygrad.doctor.impaired`); with a factory, also another factory
            (trained with the same data and ``train``).
        threads: torch intra-op threads while the doctor runs (restored afterwards); the
            default 1 is fastest for the small nets of short trials on a shared CPU (several
            threads on tiny matrices mostly wait on each other). None leaves torch's setting.
        train: with a factory: the ``[train]`` table (``fit``'s settings: ``epochs``,
            ``batch_size``, ``optimizer = {name, learning_rate, ...}``, ``schedule``...).
        model_kwargs: with a factory: its keyword arguments (``[model] factory_kwargs``).
        backend: ``"local"`` runs the trials in this process; ``"ray"`` runs each round of
            trials as a sweep on Ray, the execution path of ``steadygrad sweep --backend ray``
            (:mod:`steadygrad.doctor.backends`); the result is the same for the same seeds.
        address: Ray cluster address (``ray.init(address=...)``, e.g. ``"auto"``); None
            starts or reuses a local Ray instance. Only with ``backend="ray"``.
        workers: Ray tasks at once (None: one per run of a round, queued by Ray on free
            CPUs); each uses ``threads`` torch threads. Only with ``backend="ray"``.

    Returns:
        The :class:`DoctorResult` (also written as ``doctor.json``).

    Raises:
        ConfigError: a bad argument, ``out_dir`` is a non-empty folder, ``backend="ray"``
            without Ray installed, or a factory Ray workers cannot import.
        DataError: the dataset cannot be loaded (before any run).

    Example (arguments are checked before any data is loaded or any run starts; a real
    diagnosis takes seconds, see ``tests/doctor`` and ``steadygrad doctor``):
        >>> import tempfile
        >>> cfg = example_config()
        >>> cfg.name, len(cfg.model.hidden), cfg.train.epochs
        ('deep_sigmoid', 10, 5)
        >>> doctor(cfg, seeds=0)
        Traceback (most recent call last):
        ...
        steadygrad.errors.ConfigError: seeds: got 0; expected an integer >= 1
        >>> busy = Path(tempfile.mkdtemp())
        >>> _ = (busy / "old.txt").write_text("results")
        >>> doctor(cfg, max_trials=0, out_dir=busy)
        Traceback (most recent call last):
        ...
        steadygrad.errors.ConfigError: out_dir: got '...'; expected a missing or empty folder; ...
        >>> sorted(p.name for p in busy.iterdir())  # nothing was written
        ['old.txt']
    """
    check_backend(backend, address, workers)
    if threads is not None:
        _check_int("threads", threads, 1)
        from steadygrad.train.threads import pinned_threads

        with pinned_threads(threads):  # fit keeps it (no thread probe)
            return doctor(config, data, steps=steps, seeds=seeds, max_trials=max_trials,
                          out_dir=out_dir, progress=progress, reference=reference,
                          threads=None, train=train, model_kwargs=model_kwargs,
                          backend=backend, address=address, workers=workers)
    started = time.time()
    builtin = config is None
    if config is None:
        config = example_config()
        reference = reference_config(config) if reference is None else reference
    from steadygrad.doctor.user_model import factory_config, is_factory

    factory = is_factory(config)
    if not factory and not isinstance(config, RunConfig):
        raise ConfigError("config", type(config).__name__,
                          "a RunConfig, a model factory (callable or 'module:function') or None",
                          hint="use steadygrad.experiments.loader.load_config(path)")
    if not factory and (data is not None or train is not None or model_kwargs is not None):
        raise ConfigError("data", type(data).__name__ if data is not None else "train=...",
                          "data/train/model_kwargs only with a model factory",
                          hint="a config sets them in its [data], [train] and [model] tables")
    if factory and data is None:
        raise ConfigError("data", None, "the data to train the factory's model on",
                          hint="e.g. doctor(make_model, sg.data.load('digits'))")
    if reference is not None and not isinstance(reference, RunConfig) and not (
            factory and is_factory(reference)):
        raise ConfigError("reference", type(reference).__name__,
                          "a RunConfig or None" + (" or a model factory" if factory else ""))
    _check_int("seeds", seeds, 1)
    _check_int("max_trials", max_trials, 0)
    if steps is not None:
        _check_int("steps", steps, 1)
    if out_dir is None:
        import tempfile

        out = Path(tempfile.mkdtemp(prefix="steadygrad-doctor-"))
    else:
        out = Path(out_dir).resolve() if backend == "ray" else Path(out_dir)
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise ConfigError("out_dir", str(out), "a missing or empty folder",
                              hint="choose a new folder; the doctor never overwrites results")
    if factory:
        assert config is not None and not isinstance(config, RunConfig)
        config = factory_config(config, data, out, train, model_kwargs)
        if reference is not None and not isinstance(reference, RunConfig):
            reference = factory_config(reference, data, out, train, name="reference")
    assert isinstance(config, RunConfig)
    assert reference is None or isinstance(reference, RunConfig)
    if backend == "ray":
        check_portable(config)
        if reference is not None:
            check_portable(reference, "reference")
    say = _printer(progress)
    cache = DataCache()
    data = cache.get(config)  # fails before any work on bad data
    if _custom_model(config):
        from steadygrad.experiments.execute import build_model

        build_model(config, data)  # a bad factory or rewrite fails here, not in every run
        if reference is not None and _custom_model(reference):
            build_model(reference, cache.get(reference))
    task = getattr(data, "task", "multiclass")
    metric = "val_loss" if task == "regression" else "val_accuracy"
    table = config_to_dict(config)
    table["diagnostics"]["enabled"] = True
    epochs, n_steps = _budget(table, steps, len(data.x_train))
    table["train"]["epochs"] = epochs
    seed_list = list(range(seeds))
    out.mkdir(parents=True, exist_ok=True)

    def on_run(label: str, seed: int) -> None:
        say(f"[{time.time() - started:5.1f}s] {label} seed {seed}")

    import torch

    worker_threads = torch.get_num_threads()  # pinned above to ``threads``

    def trials_round(name: str, specs: list[TrialSpec]) -> list[Trial]:
        return run_round(specs, seed_list, out, metric=metric, cache=cache, backend=backend,
                         address=address, workers=workers, threads=worker_threads,
                         round_name=name, on_run=on_run)

    with ray_session(backend, address):  # one Ray connection for every round
        baseline = trials_round("baseline", [("baseline", "baseline", table, {}, "")])[0]
        kinds = list(baseline.problems)
        trials: list[Trial] = []
        skipped: list[tuple[str, str]] = []
        ref_trial = None
        if reference is not None:
            ref_table = config_to_dict(reference)
            ref_table["diagnostics"]["enabled"] = True
            ref_table["train"]["epochs"] = epochs
        num_classes = getattr(data, "num_classes", None) if task != "regression" else None
        if not kinds:  # no finding: does it learn? (against the reference, else chance)
            if reference is not None:
                ref_trial = trials_round("reference", [("reference", "reference", ref_table,
                                                        {}, "")])[0]
            why = impairment(baseline, ref_trial, metric, num_classes)
            baseline = mark_impaired(baseline, why)
            kinds = list(baseline.problems)

        def judged(done: list[Trial]) -> list[Trial]:
            """Candidates of an impaired baseline are judged by the same rule."""
            if IMPAIRED not in kinds:
                return done
            return [mark_impaired(t, impairment(t, ref_trial, metric, num_classes))
                    for t in done]

        if kinds:
            singles_budget = max_trials - 1 if max_trials >= 3 else max_trials
            ready, not_run = runnable_candidates(table, kinds, cache, seed_list[0],
                                                 limit=singles_budget)
            skipped += not_run
            specs: list[TrialSpec] = [(cand.name, "candidate", new, patch, note)
                                      for cand, new, patch, note in ready]
            if reference is not None and ref_trial is None:
                specs.insert(0, ("reference", "reference", ref_table, {}, ""))
            done = trials_round("trials", specs)
            if reference is not None and ref_trial is None:
                ref_trial, done = done[0], done[1:]
            trials += judged(done)
            skipped += [(c.name, f"over the --max-trials budget ({max_trials})")
                        for c in propose(kinds, any_model=is_any_model(table))
                        if c.name not in {t.label for t in trials} | {n for n, _ in skipped}]
            ranked = rank(trials, baseline, metric)
            if max_trials >= 3 and len(ranked) >= 2:
                first = ranked[0]
                for other in ranked[1:]:
                    merged = merge_patches(first.patch, other.patch)
                    if merged is None:
                        skipped.append((f"{first.label}+{other.label}",
                                        "the two patches set the same key to different values"))
                        continue
                    combined, why = patch_effect(table, merged)
                    if combined is None:
                        skipped.append((f"{first.label}+{other.label}", why or "skipped"))
                        continue
                    trials += judged(trials_round("combination", [(
                        f"{first.label}+{other.label}", "combination", combined, merged, "")]))
                    break
    result = DoctorResult(
        config_name=config.name, builtin=builtin, metric=metric, task=task, seeds=seed_list,
        epochs=epochs, steps=n_steps, baseline=baseline, reference=ref_trial,
        trials=tuple(trials), skipped=tuple(skipped), out_dir=out,
        seconds=time.time() - started,
    )
    from steadygrad.doctor.write import write_outputs

    return write_outputs(result)


def _custom_model(config: RunConfig) -> bool:
    """Whether the model comes from a user factory or has rewrites (checked before trials)."""
    return (getattr(config.model, "factory", None) is not None
            or bool(getattr(config.model, "rewrites", ())))
