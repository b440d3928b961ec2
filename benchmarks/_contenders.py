"""The contenders of the trainer benchmarks: one function per way of training a workload.

Each ``run_*(workload, x, y, epochs, seed) -> Run`` builds a fresh model from ``seed``, trains
it for ``epochs`` epochs at batch :data:`BATCH` and returns the per-epoch wall and CPU seconds
(compile time excluded and reported apart), used by ``trainer_speed.py`` and
``monitor_overhead.py``. Heavy imports (torch, steadygrad, keras) happen inside the functions,
after ``_common.configure_threads`` has set the thread counts.

Example:
    >>> sorted(workloads())
    ['deep', 'shallow']
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import _common as common
from _busy import BusyMeter

__all__ = [
    "BATCH",
    "Run",
    "Workload",
    "cpu_clock",
    "keras_available",
    "keras_model",
    "run_dataloader",
    "run_fit",
    "run_fit_foreach",
    "run_keras",
    "run_keras_isolated",
    "run_minimal",
    "run_proto_compile",
    "torch_optimizer",
    "workloads",
]

BATCH = 32

@dataclass
class Run:
    """One contender's timed run: per-epoch wall and CPU seconds, other processes' share of
    the machine per epoch (:mod:`_busy`; aligned with ``seconds``), compile seconds, loss."""

    seconds: list[float]
    cpu: list[float] = field(default_factory=list)
    busy: list[float | None] = field(default_factory=list)
    compile_seconds: float | None = None
    loss: float = math.nan
    setup_seconds: float | None = None
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Workload:
    """A model builder and its optimizer, for steadygrad/torch and for Keras."""

    name: str
    description: str
    build: Callable[[int], Any]
    optimizer: str
    learning_rate: float


def workloads() -> dict[str, Workload]:
    """The two issue-3 workloads by name."""
    return {
        "shallow": Workload("shallow", "Flatten → Dense 300 relu → Dense 100 relu → Dense 10, "
                            "SGD lr 0.01", common.shallow_mlp, "sgd", 0.01),
        "deep": Workload("deep", "20 × [Dense 100 (He, no bias) → BN → ELU] → Dense 10, "
                         "Nadam lr 1e-3", common.deep_bn_mlp, "nadam", 1e-3),
    }


# ------------------------------------------------------------------------------ torch loops
def torch_optimizer(wl: Workload, model: Any) -> Any:
    """The plain ``torch.optim`` optimizer equal to what ``fit`` builds for ``wl``.

    Nadam uses Keras's settings (``eps=1e-7``, ``momentum_decay=1.0``), as ``fit`` does.
    """
    import torch

    if wl.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=wl.learning_rate)
    return torch.optim.NAdam(model.parameters(), lr=wl.learning_rate, eps=1e-7,
                             momentum_decay=1.0)


def run_minimal(wl: Workload, x: Any, y: Any, epochs: int, seed: int,
                turn: Any = None) -> Run:
    """The minimal hand-written loop: in-memory tensors, ``randperm`` slicing. ``turn``: a
    :class:`_lockstep.Turn` to take turns with (``begin`` before the first epoch, ``step``
    after every step, ``end`` after the last epoch)."""
    import torch
    import torch.nn.functional as F

    model = wl.build(seed)
    opt = torch_optimizer(wl, model)
    gen = torch.Generator().manual_seed(seed)
    n = x.shape[0]
    times, cpu, total = [], [], math.nan
    meter, busy = BusyMeter(), []
    step = 0
    if turn is not None:
        turn.begin()
    for _ in range(epochs):
        meter.start()
        start, cpu_start = time.perf_counter(), time.process_time()
        model.train()
        perm = torch.randperm(n, generator=gen)
        total = 0.0
        for i in range(0, n, BATCH):
            idx = perm[i:i + BATCH]
            xb, yb = x[idx], y[idx]
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            total += loss.item() * idx.shape[0]
            if turn is not None:
                turn.step(step)
                step += 1
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - cpu_start)
        busy.append(meter.stop())
    if turn is not None:
        turn.end()
    return Run(times, cpu, busy, loss=total / n)


def run_dataloader(wl: Workload, x: Any, y: Any, epochs: int, seed: int) -> Run:
    """The textbook loop: ``TensorDataset`` + ``DataLoader(shuffle=True)``."""
    import torch
    import torch.nn.functional as F
    from torch.utils.data import DataLoader, TensorDataset

    model = wl.build(seed)
    opt = torch_optimizer(wl, model)
    loader = DataLoader(TensorDataset(x, y), batch_size=BATCH, shuffle=True,
                        generator=torch.Generator().manual_seed(seed))
    times, cpu, total = [], [], math.nan
    meter, busy = BusyMeter(), []
    for _ in range(epochs):
        meter.start()
        start, cpu_start = time.perf_counter(), time.process_time()
        model.train()
        total = 0.0
        for xb, yb in loader:
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            total += loss.item() * yb.shape[0]
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - cpu_start)
        busy.append(meter.stop())
    return Run(times, cpu, busy, loss=total / x.shape[0])


def cpu_clock() -> Any:
    """A ``steadygrad`` callback recording each epoch's CPU seconds (``.cpu``) and other
    processes' share of the machine (``.busy``)."""
    from steadygrad.train.callbacks import Callback

    class CpuClock(Callback):
        def __init__(self) -> None:
            self.cpu: list[float] = []
            self.busy: list[float | None] = []
            self.start = 0.0
            self.meter = BusyMeter()

        def on_epoch_begin(self, epoch: int, logs: Any) -> None:
            self.meter.start()
            self.start = time.process_time()

        def on_epoch_end(self, epoch: int, logs: Any) -> None:
            self.cpu.append(time.process_time() - self.start)
            self.busy.append(self.meter.stop())

    return CpuClock()


def turns(turn: Any) -> Any:
    """A ``steadygrad`` callback that hands the core over every ``turn.every`` steps."""
    from steadygrad.train.callbacks import Callback

    class Turns(Callback):
        def on_batch_end(self, step: int, logs: Any) -> None:
            turn.step(step)

    return Turns()


def run_fit(wl: Workload, x: Any, y: Any, epochs: int, seed: int, *, compile: bool = False,
            monitor: Any = False, prebuilt: tuple[Any, Any] | None = None,
            threads: int | None = None, turn: Any = None) -> Run:
    """``steadygrad.fit``; epoch seconds from ``history["seconds"]`` (compile excluded).

    ``setup_seconds`` is the rest of the ``fit`` call's wall time (validation, building the
    optimizer and step, the final report), not counted in the epoch times. CPU seconds come
    from a callback; with ``compile=True`` only epochs after the first (no compiling) count.
    ``turn``: a :class:`_lockstep.Turn` to take turns with (a callback's ``on_batch_end``).
    """
    from steadygrad.train.loop import fit

    if compile:
        import torch._dynamo

        torch._dynamo.reset()  # fresh caches: a new model must not hit the recompile limit
    model, opt = prebuilt if prebuilt is not None else (wl.build(seed), None)
    optim: dict[str, Any] = ({"optimizer": opt} if opt is not None else
                             {"optimizer": wl.optimizer, "learning_rate": wl.learning_rate})
    clock = cpu_clock()
    callbacks = [clock] if turn is None else [clock, turns(turn)]
    start = time.perf_counter()
    if turn is not None:
        turn.begin()
    history = fit(model, (x, y), epochs=epochs, batch_size=BATCH, monitor=monitor,
                  compile=compile, seed=seed, verbose=0, callbacks=callbacks, threads=threads,
                  **optim)
    if turn is not None:
        turn.end()
    wall = time.perf_counter() - start
    seconds = [float(s) for s in history["seconds"]]
    comp = float(getattr(history, "compile_seconds", 0.0) or 0.0) if compile else None
    cpu = list(clock.cpu[1:] if compile else clock.cpu)  # compiling happens in epoch 1
    run = Run(seconds, cpu, list(clock.busy), compile_seconds=comp,
              loss=float(history["loss"][-1]),
              setup_seconds=wall - sum(seconds) - (comp or 0.0))
    run.notes["threads"] = history.params.get("threads")
    health = getattr(history, "health", None)
    if health is not None:
        s = health.series
        run.notes["health"] = {
            "checks": len(s.steps), "layers": len(s.layers), "findings": len(health.findings),
            "worst": health.worst(), "every": health.meta.get("every"),
            "steps": health.meta.get("steps"),
            "codes": sorted({str(getattr(f, "code", f)) for f in health.findings}),
        }
    return run


def run_fit_foreach(wl: Workload, x: Any, y: Any, epochs: int, seed: int,
                    threads: int | None = None) -> Run:
    """``fit`` (eager) given a ``foreach=True`` torch optimizer instance (proposed default).

    Same hyperparameters as :func:`torch_optimizer`; shows what building the optimizer with
    the multi-tensor kernels (off by default on CPU in torch) would buy ``fit``.
    """
    import torch

    model = wl.build(seed)
    if wl.optimizer == "sgd":
        opt: Any = torch.optim.SGD(model.parameters(), lr=wl.learning_rate, foreach=True)
    else:
        opt = torch.optim.NAdam(model.parameters(), lr=wl.learning_rate, eps=1e-7,
                                momentum_decay=1.0, foreach=True)
    return run_fit(wl, x, y, epochs, seed, prebuilt=(model, opt), threads=threads)


def run_proto_compile(wl: Workload, x: Any, y: Any, epochs: int, seed: int) -> Run:
    """Prototype of a faster compiled step (a proposal for ``fit(compile=True)``, not fit).

    Two compiled regions per step instead of forward → autograd engine → update: (1) loss and
    gradients in one graph with ``torch.func.grad_and_value`` over ``functional_call`` (no
    autograd engine, no ``AccumulateGrad``, BN buffers passed explicitly so their in-place
    update is allowed), (2) the optimizer step (``foreach=True``). Between them the loss is
    checked on the host, as ``fit`` does, before the weights are touched. Compile time (the
    first call for each batch shape) is excluded from the epoch times.
    """
    import torch
    import torch._dynamo
    import torch.nn.functional as F
    from torch.func import functional_call, grad_and_value

    torch._dynamo.reset()
    model = wl.build(seed)
    real = {k: p for k, p in model.named_parameters() if p.requires_grad}
    if wl.optimizer == "sgd":
        opt: Any = torch.optim.SGD(real.values(), lr=wl.learning_rate, foreach=True)
    else:
        opt = torch.optim.NAdam(real.values(), lr=wl.learning_rate, eps=1e-7,
                                momentum_decay=1.0, foreach=True)
    detached = {k: p.detach() for k, p in real.items()}
    buffers = dict(model.named_buffers())

    def loss_of(p: Any, b: Any, xb: Any, yb: Any) -> Any:
        out = functional_call(model, (p, b), (xb,))
        return F.cross_entropy(out, yb), out

    def grads_fn(xb: Any, yb: Any) -> Any:
        grads, (loss, out) = grad_and_value(loss_of, has_aux=True)(detached, buffers, xb, yb)
        return grads, loss.detach(), out.detach()

    c_grads, c_update = torch.compile(grads_fn), torch.compile(opt.step)
    gen = torch.Generator().manual_seed(seed)
    n, seen, comp = x.shape[0], set(), 0.0
    times, cpu, total = [], [], math.nan
    for epoch in range(epochs):
        start, cpu_start, comp_before = time.perf_counter(), time.process_time(), comp
        model.train()
        perm = torch.randperm(n, generator=gen)
        total = 0.0
        for i in range(0, n, BATCH):
            idx = perm[i:i + BATCH]
            first = idx.shape[0] not in seen
            t0 = time.perf_counter()
            grads, loss, _ = c_grads(x[idx], y[idx])
            lv = loss.item()
            if math.isfinite(lv):
                for k, p in real.items():
                    p.grad = grads[k]
                c_update()
                for p in real.values():
                    p.grad = None
            total += lv * idx.shape[0]
            if first:
                seen.add(idx.shape[0])
                comp += time.perf_counter() - t0
        times.append(time.perf_counter() - start - (comp - comp_before))
        if epoch > 0:
            cpu.append(time.process_time() - cpu_start)
    return Run(times, cpu, compile_seconds=comp, loss=total / n)


# ------------------------------------------------------------------------------ keras
def keras_available() -> str | None:
    """None when Keras 3 with the JAX backend imports, else the reason it does not.

    Checked in a child process, as :func:`run_keras_isolated` runs it: JAX is never imported
    into the process that times the torch contenders.
    """
    import subprocess
    import sys

    code = ("import jax, keras\n"
            "b = keras.backend.backend()\n"
            "print('ok' if b == 'jax' else f'KERAS_BACKEND is {b!r}, not \\'jax\\'')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return f"keras/jax not importable ({last})"
    out = proc.stdout.strip().splitlines()
    return None if out and out[-1] == "ok" else (out[-1] if out else "keras: no answer")


def keras_model(wl: Workload, seed: int) -> Any:
    """The Keras twin of ``wl``: same layers, Keras initializers/BN defaults, same optimizer."""
    import keras

    keras.utils.set_random_seed(seed)
    layers: list[Any] = [keras.Input((28, 28)), keras.layers.Flatten()]
    if wl.name == "shallow":
        layers += [keras.layers.Dense(300, activation="relu"),
                   keras.layers.Dense(100, activation="relu")]
        opt: Any = keras.optimizers.SGD(learning_rate=wl.learning_rate)
    else:
        for _ in range(20):
            layers += [keras.layers.Dense(100, kernel_initializer="he_normal", use_bias=False),
                       keras.layers.BatchNormalization(), keras.layers.Activation("elu")]
        opt = keras.optimizers.Nadam(learning_rate=wl.learning_rate)
    layers.append(keras.layers.Dense(10))
    model = keras.Sequential(layers)
    model.compile(optimizer=opt, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"], jit_compile=True)
    return model


_KERAS_DATA: dict[tuple[Any, ...], Any] = {}
"""The ``.npy`` copies of the data sets handed to the Keras child (a temporary folder each,
removed when the process exits)."""


def run_keras_isolated(wl: Workload, x: Any, y: Any, epochs: int, seed: int) -> Run:
    """:func:`run_keras` in a child process, so that JAX's thread pool never shares a process
    with the torch contenders.

    In one process, the torch contenders that ran after Keras at 2 threads were distorted by
    XLA's idle worker threads: the same epoch of the hand-written loop took 1.46 s in a run
    without Keras and 2.16 s in one with it (shallow MLP, 2026-12-06). The child gets the
    same environment (``OMP_NUM_THREADS``, ``XLA_FLAGS``, ``KERAS_BACKEND``) and the same rows
    (through a temporary ``.npy`` pair), and its :class:`Run` comes back as JSON.

    Raises:
        RuntimeError: the child failed (the tail of its stderr is in the message).
    """
    import dataclasses
    import json
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    import numpy as np
    import torch

    here = str(Path(__file__).resolve().parent)
    key = (x.data_ptr(), tuple(x.shape), float(x.sum(dtype=torch.float64)), y.data_ptr(),
           tuple(y.shape), int(y.sum()))  # the sums: a new tensor at a freed address
    if key not in _KERAS_DATA:  # written once per data set, not once per repeat
        folder = tempfile.TemporaryDirectory()
        np.save(Path(folder.name) / "x.npy", x.numpy())
        np.save(Path(folder.name) / "y.npy", y.numpy())
        _KERAS_DATA[key] = folder
    tmp = _KERAS_DATA[key].name
    code = (
        "import dataclasses, json, sys\n"
        f"sys.path.insert(0, {here!r})\n"
        "import numpy as np\n"
        "import _contenders as c\n"
        f"wl = c.workloads()[{wl.name!r}]\n"
        f"x, y = np.load({tmp + '/x.npy'!r}), np.load({tmp + '/y.npy'!r})\n"
        f"run = c.run_keras(wl, x, y, {int(epochs)}, {int(seed)})\n"
        "print(json.dumps(dataclasses.asdict(run)))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"the Keras child process failed ({proc.returncode}): "
                           f"{proc.stderr[-2000:]}")
    fields = json.loads(proc.stdout.strip().splitlines()[-1])
    names = {f.name for f in dataclasses.fields(Run)}
    return Run(**{k: v for k, v in fields.items() if k in names})


def run_keras(wl: Workload, x: Any, y: Any, epochs: int, seed: int) -> Run:
    """Keras 3 ``model.fit`` (JAX backend); the warm-up call's wall time is the compile time.

    ``x``/``y``: torch tensors or numpy arrays (what :func:`run_keras_isolated` passes).
    """
    import keras

    xn = x.numpy() if hasattr(x, "numpy") else x
    yn = y.numpy() if hasattr(y, "numpy") else y
    model = keras_model(wl, seed)
    times: list[float] = []
    cpu: list[float] = []
    busy: list[float | None] = []
    meter = BusyMeter()

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            meter.start()
            self.start, self.cpu = time.perf_counter(), time.process_time()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            times.append(time.perf_counter() - self.start)
            cpu.append(time.process_time() - self.cpu)
            busy.append(meter.stop())

    n = xn.shape[0]
    warm = BATCH + (n % BATCH) if n > BATCH else n  # traces the full and the last batch shape
    start = time.perf_counter()
    model.fit(xn[:warm], yn[:warm], batch_size=BATCH, epochs=1, verbose=0, shuffle=False)
    compile_seconds = time.perf_counter() - start
    start = time.perf_counter()
    hist = model.fit(xn, yn, batch_size=BATCH, epochs=epochs, verbose=0, shuffle=True,
                     callbacks=[EpochTimer()])
    wall = time.perf_counter() - start
    keras.backend.clear_session()
    return Run(times, cpu, busy, compile_seconds=compile_seconds,
               loss=float(hist.history["loss"][-1]),
               setup_seconds=wall - sum(times))
