"""``fit`` speed with the default monitor vs monitor off, on two workloads (not a test).

Run: ``python tests/train/fit_overhead_script.py [repeats]``. 1 thread, synthetic
Fashion-MNIST-shaped data (60000 rows, batch 32: one 1875-step epoch per ``fit`` call).
Workloads: the 784-300-100-10 ReLU MLP trained with SGD, and 20 x [Dense 100 -> BN -> ELU]
-> Dense 10 with SGD + momentum. Configurations alternate call by call (the machine is
shared); the median CPU time per step (``time.process_time``, robust to other processes) is
reported.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch
from torch import nn

from steadygrad.train.loop import fit


def mlp() -> nn.Sequential:
    """784-300-100-10 ReLU MLP."""
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100),
                         nn.ReLU(), nn.Linear(100, 10))


def deep_bn() -> nn.Sequential:
    """20 x [Linear(., 100), BatchNorm1d, ELU], Linear(100, 10)."""
    layers: list[nn.Module] = [nn.Flatten()]
    d = 784
    for _ in range(20):
        layers += [nn.Linear(d, 100), nn.BatchNorm1d(100), nn.ELU()]
        d = 100
    layers.append(nn.Linear(100, 10))
    return nn.Sequential(*layers)


N = 60000
"""Rows of the synthetic training set: one Fashion-MNIST epoch (1875 steps of 32) per call."""


def main() -> None:
    torch.set_num_threads(1)
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, 784, generator=g)
    y = torch.randint(0, 10, (N,), generator=g)
    steps = N // 32
    workloads = {"mlp 784-300-100-10": (mlp, {"name": "sgd", "learning_rate": 0.01}),
                 "20x[Dense-BN-ELU]": (deep_bn, {"name": "sgd", "learning_rate": 0.01,
                                                  "momentum": 0.9})}
    for name, (build, opt) in workloads.items():
        torch.manual_seed(0)
        models = {"off": build(), "default": build()}
        times: dict[str, list[float]] = {k: [] for k in models}
        for r in range(repeats + 1):
            for cfg, model in models.items():
                kw = {"monitor": False} if cfg == "off" else {}
                t0 = time.process_time()
                h = fit(model, (x, y), epochs=1, batch_size=32, optimizer=opt, verbose=0, **kw)
                if r:  # the first call warms up
                    times[cfg].append((time.process_time() - t0) / steps * 1e3)
                assert (h.health is None) == (cfg == "off")
        off = float(np.median(times["off"]))
        on = float(np.median(times["default"]))
        print(f"{name:>20}: off {off:.3f} ms/step, default monitor {on:.3f} ms/step "
              f"({on / off:.3f}x)")


if __name__ == "__main__":
    main()
