"""``fit``: train any ``nn.Module`` on in-memory tensors; returns a :class:`History`.

``fit`` validates every argument and the data before any work, resolves names into objects
(:mod:`steadygrad.train.setup`), builds the step once with only the enabled pieces
(:func:`~steadygrad.train.step.build_step`) and runs the epochs
(:class:`~steadygrad.train.runner.EpochRunner`: one ``torch.randperm`` per epoch from a seeded
generator, ``index_select`` slicing, no DataLoader).

Under ``torchrun`` (``WORLD_SIZE`` > 1 in the environment) the same call trains data-parallel:
``batch_size`` is the global batch, sharded over the processes, and rank 0 writes checkpoints
and logs (:mod:`steadygrad.train.distributed`).

Example:
    >>> import torch
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> x = torch.randn(256, 4); y = (x[:, 0] > 0).long()
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    >>> history = fit(model, (x, y), epochs=3, optimizer="adam", seed=0, verbose=0)
    >>> history["loss"][-1] < history["loss"][0], sorted(history.keys())
    (True, ['accuracy', 'grad_norm', 'loss', 'lr', 'seconds'])
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from steadygrad.errors import CheckpointError, ConfigError, DataError, NonFiniteError
from steadygrad.train.callbacks import Callback, CallbackList, Trainer
from steadygrad.train.checkpoint import CheckpointManager
from steadygrad.train.compiled import begin_compiled_run, end_compiled_run
from steadygrad.train.distributed import World
from steadygrad.train.evaluate import default_metrics, model_device
from steadygrad.train.history import History
from steadygrad.train.inputs import resolve_data
from steadygrad.train.learning_rate import set_learning_rate
from steadygrad.train.losses import check_targets, get_loss
from steadygrad.train.metrics import Metric, get_metric
from steadygrad.train.runner import EpochRunner
from steadygrad.train.setup import (
    DEFAULT_MONITOR,
    chance_loss,
    resolve_callbacks,
    resolve_monitor,
    resolve_optimizer,
    resolve_schedule,
)
from steadygrad.train.state import seed_everything, shuffle_generator
from steadygrad.train.step import build_step
from steadygrad.train.threads import thread_choice

__all__ = ["NON_FINITE_MODES", "SYNC_ON_CPU", "fit"]

SYNC_ON_CPU = True
"""Read each step's loss on the host when training on CPU (no queue to stall there; ~1 µs).
On accelerators the loss stays on the device and is checked every ``DEVICE_CHECK_EVERY``
steps; setting this to False runs that path on CPU too (used by the tests)."""

NON_FINITE_MODES = ("stop", "skip", "raise")


def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(name, value, f"an int >= {low}")
    return value


def fit(
    model: nn.Module,
    data: Any,
    *,
    epochs: int = 10,
    batch_size: int = 32,
    optimizer: Any = "sgd",
    learning_rate: float | None = None,
    loss: Any = None,
    metrics: Sequence[str | Metric] | None = None,
    schedule: Any = None,
    schedule_unit: str | None = None,
    early_stopping: Any = None,
    callbacks: Sequence[Callback] = (),
    monitor: Any = DEFAULT_MONITOR,
    validation_data: Any = None,
    seed: int | None = None,
    on_non_finite: str = "stop",
    compile: bool = False,
    device: str | torch.device | None = None,
    verbose: Any = "auto",
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    checkpoint_every: int | None = None,
    tensorboard: str | Path | None = None,
    threads: int | None = None,
) -> History:
    """Train ``model`` on ``data`` and return the per-epoch :class:`History`.

    Args:
        model: any ``torch.nn.Module`` producing logits (classification) or values.
        data: a :class:`steadygrad.data.Dataset` (its train split; val split for validation)
            or a tuple ``(x, y)`` of tensors.
        epochs: total number of epochs (a resumed run continues up to this number).
        batch_size: rows per step; the last batch of an epoch may be smaller (a last batch
            of one row is dropped when the model has batch norm, which cannot train on it).
        optimizer: a name (``"sgd"``, ``"adam"``, ...), a Keras-style dict
            ``{"name": "sgd", "learning_rate": 0.01, "momentum": 0.9, "clipnorm": 1.0}``
            (``clipvalue``/``clipnorm``/``global_clipnorm`` clip before each step), an
            :class:`~steadygrad.optim.settings.OptimizerConfig` (what a run config holds) or a
            ``torch.optim.Optimizer``.
        learning_rate: the learning rate (None: the optimizer's Keras default).
        loss: a loss name or callable; None infers it from the task (cross-entropy for
            multiclass logits, BCE-with-logits for binary, MSE for regression).
        metrics: metric names/objects; None means ``("accuracy",)`` for classification and
            ``("mae",)`` for regression.
        schedule: None (constant), a schedule name, ``{"name": ..., **kw}``, a ``step -> lr``
            callable (set into every param group after each step) or a
            ``PerformanceScheduler`` (updated once per epoch with ``val_loss``, or ``loss``).
        schedule_unit: what a callable ``schedule`` takes: ``"step"`` (default: the global
            step, 0-based) or ``"epoch"`` (the 0-based epoch, as the chapter's Keras
            ``LearningRateScheduler`` functions; every step of epoch ``e`` runs at ``fn(e)``).
            A callable whose parameter is named ``epoch`` needs it spelled out.
        early_stopping: None, a dict of :class:`EarlyStopping` arguments or an instance.
        callbacks: further :class:`Callback` instances.
        monitor: on by default (True: one step in ``DEFAULT_EVERY`` sampled, within 5% of
            no monitoring); None/False (off), an int period or a ``GradientMonitor``. Its
            report lands in ``history.health``. A monitor made here (True or an int) judges
            progress against the chance-level loss of the training targets
            (:func:`~steadygrad.train.setup.chance_loss`: ``ln C`` for balanced classes),
            as ``diagnose`` does; a ``GradientMonitor`` passed in keeps its own
            ``baseline_loss``.
        validation_data: ``(x, y)``; defaults to the Dataset's val split.
        seed: seeds torch's global RNG (dropout, and init of models built afterwards) and
            the shuffling generator; same seed and config give the same history and weights.
        on_non_finite: ``"stop"`` (end training, ``history.stopped_reason`` names the step and
            the first faulty layer), ``"skip"`` (skip that optimizer step, count it in
            ``skipped_steps``) or ``"raise"`` (raise :class:`NonFiniteError`).
        compile: compile the step; every compilation's time goes to
            ``history.compile_seconds``, the engine used to ``history.params["engine"]`` and
            the reason for a fallback to ``history.params["fallback"]``. With a built-in
            optimizer whose options the flat rule implements, the whole step (loss,
            gradients, clipping, update) is one graph on flat parameter/state buffers
            (``"flat"``; parameters are views of one buffer during ``fit`` and get their own
            storage back at the end), traced once per batch shape and model state and
            compiled with Inductor (as with ``jax.jit``, Python side effects in ``forward``
            happen when it is traced); otherwise the eager step runs with a
            ``torch.compile``-d forward (``"compiled"``). Each
            compiled run starts with ``torch._dynamo.reset()`` (else after ~8 runs in one
            process Dynamo's recompile limit silently leaves the step uncompiled), and on CPU
            flushes denormal floats to zero for its duration (``torch.set_flush_denormal``,
            as XLA does; the previous setting is restored at the end): subnormal gradients
            and moments otherwise made a deep net's compiled epochs twice as slow.
        device: move the model and data there (default: the model's device).
        verbose: ``"auto"`` (live bar on a terminal, silent otherwise), 0, 1 or 2 (epoch lines).
        checkpoint_dir: write a full checkpoint (weights, optimizer, RNG, callbacks, history)
            after every epoch, atomically.
        resume: continue from the latest checkpoint in ``checkpoint_dir`` if there is one
            (a mid-epoch one included: the rest of that epoch runs bit for bit as it would
            have without the interruption).
        checkpoint_every: also checkpoint after every N-th optimizer step within an epoch
            (None: at epoch ends only). The checkpoint holds the epoch's shuffling state,
            position, global RNG state and partial sums, so a resume is bit-exact on CPU.
        tensorboard: write TensorBoard event files to this folder: ``epoch/<name>`` per epoch
            and the monitor's report at the end (tags in
            :mod:`steadygrad.integrations.tensorboard`); needs ``steadygrad[tensorboard]``.
        threads: torch's intra-op thread count during training. None: keep a count the user
            set (``torch.set_num_threads``, ``OMP_NUM_THREADS``), else use the count that
            trains this model and batch fastest, found by a short probe on a copy of the
            model (:mod:`steadygrad.train.threads`; cached per shape, no effect on the
            results). The previous setting is restored at the end; the count used is
            ``history.params["threads"]``.

    Returns:
        The :class:`History`; ``history.stopped_reason`` says why training ended early.

    Raises:
        ConfigError, DataError: invalid arguments or data (before any training).
        NonFiniteError: with ``on_non_finite="raise"``.
        CheckpointError: unreadable checkpoint, or a ``checkpoint_dir`` with checkpoints and
            ``resume=False``.

    Example:
        >>> x, y = torch.randn(64, 3), torch.randn(64, 1)
        >>> h = fit(torch.nn.Linear(3, 1), (x, y), epochs=2, seed=0, verbose=0)
        >>> list(h.keys())
        ['loss', 'mae', 'lr', 'grad_norm', 'seconds']
    """
    # ---------------------------------------------------------------- validate everything
    if not isinstance(model, nn.Module):
        raise ConfigError("model", type(model).__name__, "a torch.nn.Module")
    _check_int("epochs", epochs, 1)
    _check_int("batch_size", batch_size, 1)
    if on_non_finite not in NON_FINITE_MODES:
        raise ConfigError("on_non_finite", on_non_finite, f"one of {', '.join(NON_FINITE_MODES)}")
    if seed is not None:
        _check_int("seed", seed, 0)
    if threads is not None:
        _check_int("threads", threads, 1)
    if checkpoint_every is not None:
        _check_int("checkpoint_every", checkpoint_every, 1)
        if checkpoint_dir is None:
            raise ConfigError("checkpoint_every", checkpoint_every, "None without checkpoint_dir",
                              hint="pass checkpoint_dir=... to write mid-epoch checkpoints")
    if resume and checkpoint_dir is None:
        raise ConfigError("resume", resume, "False without checkpoint_dir",
                          hint="pass checkpoint_dir=... to resume from")
    world = World.from_env()  # under torchrun: data-parallel (steadygrad.train.distributed)
    if world is not None:
        world.check(batch_size, compile)
        if world.rank != 0:
            verbose, tensorboard = 0, None  # rank 0 reports
    cb_list = resolve_callbacks(callbacks, early_stopping, verbose)
    if tensorboard is not None:
        from steadygrad.train.loggers import TensorBoard

        cb_list.append(TensorBoard(tensorboard))
    mon = resolve_monitor(monitor, model)
    train = resolve_data(data, validation_data, loss)
    task = train.task
    if mon is not None and mon is not monitor:  # made here: judged against chance level
        mon.baseline_loss = chance_loss(loss, task, train.y)
    loss_fn = get_loss(loss, task)
    metric_names = default_metrics(task) if metrics is None else metrics
    train_metrics = [get_metric(m, task) for m in metric_names]
    val_metrics = [get_metric(m, task) if isinstance(m, str) else m for m in metric_names]
    dev = torch.device(device) if device is not None else model_device(model)
    joined = False
    if world is not None:
        dev = world.device(dev)
        joined = world.join(dev)
        seed = world.seed(seed)
    model.to(dev)
    x, y = train.x.to(dev), train.y.to(dev)
    val = None if train.val is None else (train.val[0].to(dev), train.val[1].to(dev))
    was_training = model.training
    model.eval()
    with torch.no_grad():
        try:
            probe = model(x[:2])
        except RuntimeError as e:
            raise DataError(
                f"data: got x of shape {tuple(x.shape)} (samples of shape {tuple(x.shape[1:])}), "
                f"which the model cannot take ({e}); fix: build the model for "
                f"input_shape={tuple(x.shape[1:])} or reshape the data"
            ) from e
        check_targets(probe, y, task)
        if val is not None:
            check_targets(probe, val[1], task)
    model.train(was_training)
    opt, clipper = resolve_optimizer(optimizer, model, learning_rate)
    n = x.shape[0]
    # batch norm cannot train on a batch of one: such a trailing batch is dropped (a different
    # sample each epoch, since the order is reshuffled)
    has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    n_used = n - 1 if has_bn and n > 1 and n % batch_size == 1 else n
    steps_per_epoch = math.ceil(n_used / batch_size)
    sched, plateau = resolve_schedule(schedule, opt, steps_per_epoch * epochs,
                                      schedule_unit, steps_per_epoch)
    manager = CheckpointManager(checkpoint_dir) if checkpoint_dir is not None else None
    ckpt = None
    if manager is not None and manager.latest() is not None:
        if not resume:
            raise CheckpointError(
                f"checkpoint_dir {manager.directory} already holds checkpoints; pass "
                "resume=True to continue from them or choose an empty directory"
            )
        ckpt = manager.load()
    from steadygrad.nn.constraints import apply_, has_constraints
    from steadygrad.nn.regularizers import has_penalties, penalty

    n_threads, threads_source = thread_choice(threads, model, loss_fn, x[:batch_size],
                                              y[:batch_size])

    # ---------------------------------------------------------------- state
    if seed is not None:
        seed_everything(seed + (world.rank if world is not None else 0))
    history = History()
    history.params = {
        "epochs": epochs, "batch_size": batch_size, "steps_per_epoch": steps_per_epoch,
        "num_samples": n, "task": task, "optimizer": type(opt).__name__, "seed": seed,
        "compile": compile, "on_non_finite": on_non_finite, "threads": n_threads,
        "threads_source": threads_source,
    }
    trainer = Trainer(model, optimizer=opt, history=history, params=history.params, monitor=mon)
    run = EpochRunner(
        model=model, x=x, y=y, val=val, n_used=n_used, batch_size=batch_size,
        gen=shuffle_generator(seed), optimizer=opt, schedule=sched, plateau=plateau,
        loss_fn=loss_fn, train_metrics=train_metrics, val_metrics=val_metrics,
        callbacks=CallbackList(cb_list, trainer), trainer=trainer,
        manager=manager if world is None or world.rank == 0 else None,  # rank 0 writes
        sync=(dev.type == "cpu" and SYNC_ON_CPU) or on_non_finite == "skip" or world is not None,
        on_non_finite=on_non_finite,
        regularized=has_penalties(model), checkpoint_every=checkpoint_every, world=world,
    )
    start_epoch = run.restore(ckpt) if ckpt is not None else 0
    if sched is not None:
        set_learning_rate(opt, sched, trainer.global_step)
    flush_before = begin_compiled_run(dev) if compile else None  # Dynamo reset, CPU FTZ
    run.step = build_step(
        model if world is None else world.wrap(model, dev), loss_fn, opt,
        clipper=clipper,
        penalty=penalty if run.regularized else None,
        constrain=apply_ if has_constraints(model) else None,
        schedule=sched, monitor=mon, sync=run.sync, compile=compile,
        compile_timer=run.compile_timer, changed=lambda: run.callbacks.dispatched,
    )
    history.params.update(engine=run.step.engine, fallback=run.step.fallback)
    if world is not None:  # every rank checks the same all-reduced gradient norm
        run.step = world.measuring(run.step)

    # ---------------------------------------------------------------- train
    if mon is not None:
        mon.attach()
    failed = False
    threads_before = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        run.callbacks.dispatch("on_train_begin", {})
        if ckpt is not None:
            run.callbacks.load_state_dict(ckpt.state.get("callbacks", {}))
        for epoch in range(start_epoch, epochs):
            trainer.epoch = epoch
            begun = run.partial is not None  # resumed mid-epoch: this epoch has begun already
            if not begun and run.callbacks.wants("on_epoch_begin") and run.callbacks.dispatch(
                "on_epoch_begin", epoch, {}
            ):
                break
            logs, reason = run.train_epoch()
            if reason is not None:
                trainer.request_stop(reason)
                if on_non_finite == "raise":
                    raise NonFiniteError(reason)
                warnings.warn(f"training stopped: {reason}", RuntimeWarning, stacklevel=2)
                break
            run.end_epoch(epoch, logs)
            if trainer.stop_training:
                break
    except BaseException:
        failed = True
        raise
    finally:
        torch.set_num_threads(threads_before)
        run.step.release()  # compiled flat mode: parameters get their own storage back
        end_compiled_run(flush_before)
        history.stopped_reason = trainer.stopped_reason
        history.params.update(engine=run.step.engine, fallback=run.step.fallback)
        if compile:
            history.compile_seconds = run.compile_timer[0]
        if mon is not None:
            mon.detach()
        try:
            run.callbacks.dispatch("on_train_end", {})
        except Exception:
            if not failed:
                raise
        if joined and failed and world is not None:
            world.leave()
    if mon is not None:
        history.health = mon.report() if world is None else world.report(mon)
    if joined and world is not None:
        world.leave()
    return history
