"""Monitor overhead on the 20 x [Dense 100 -> BN -> ELU] net, batch 32 (not a test).

Run: ``python tests/diagnostics/overhead_script.py [blocks]``. Synthetic Fashion-MNIST-shaped
data, 1 thread. Three copies of the net train side by side (monitor off, default ``every``,
every=1); they take turns in blocks of 10 steps so that machine load hits all three alike, and
the 25th percentile and the minimum of the block times are reported (robust to a shared,
noisy machine).
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch
from torch import nn

from steadygrad.diagnostics.monitor import DEFAULT_EVERY, GradientMonitor


def build() -> nn.Sequential:
    """The benchmark net: Flatten, 20 x [Linear(., 100), BatchNorm1d, ELU], Linear(100, 10)."""
    layers: list[nn.Module] = [nn.Flatten()]
    d = 784
    for _ in range(20):
        layers += [nn.Linear(d, 100), nn.BatchNorm1d(100), nn.ELU()]
        d = 100
    layers.append(nn.Linear(100, 10))
    return nn.Sequential(*layers)


def main() -> None:
    torch.set_num_threads(1)
    blocks = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    variants = {"off": None, f"every={DEFAULT_EVERY}": DEFAULT_EVERY, "every=1": 1}
    runs = {}
    for name, every in variants.items():
        torch.manual_seed(0)
        model = build()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        mon = GradientMonitor(model, every=every).attach() if every else None
        runs[name] = (model, opt, mon)
    loss_fn = nn.CrossEntropyLoss()
    x = torch.randn(10, 32, 1, 28, 28)
    y = torch.randint(0, 10, (10, 32))
    times: dict[str, list[float]] = {k: [] for k in variants}
    for b in range(blocks + 3):
        for name, (model, opt, mon) in runs.items():
            t0 = time.perf_counter()
            for i in range(10):
                loss = loss_fn(model(x[i]), y[i])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if mon is not None:
                    mon.step(loss)
            if b >= 3:  # warm-up blocks (first sampled step discovers the layers)
                times[name].append((time.perf_counter() - t0) / 10 * 1e3)
    base_q, base_min = float(np.percentile(times["off"], 25)), min(times["off"])
    for name, ts in times.items():
        q, lo = float(np.percentile(ts, 25)), min(ts)
        print(f"{name:>10}: p25 {q:.3f} ms/step ({q / base_q:.3f}x)   "
              f"min {lo:.3f} ms/step ({lo / base_min:.3f}x)")
    for _, _, mon in runs.values():
        if mon is not None:
            mon.detach()
            mon.report()


if __name__ == "__main__":
    main()
