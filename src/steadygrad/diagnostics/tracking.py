"""The parts of :class:`~steadygrad.diagnostics.monitor.GradientMonitor` that watch every
step's loss and run the sampled-step probes (:mod:`steadygrad.diagnostics.probes`).

The mixin holds no state of its own: the monitor's ``__init__`` creates the attributes it
uses (``_losses``, ``_first_bad``, ``_first_bad_cpu``, ``_step``, ``_probe_modules``,
``_probes``, ``_probe_vals_now``, ``_probe_vals``, ``_handles``).

Example:
    >>> import torch
    >>> from steadygrad.diagnostics.monitor import GradientMonitor
    >>> mon = GradientMonitor(torch.nn.Linear(2, 2))
    >>> for v in (1.0, float("nan")):
    ...     mon._track(v); mon._step += 1
    >>> mon._losses[0], mon._first_bad_cpu
    (1.0, 1)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from steadygrad.diagnostics.probes import attention_logits, attention_stats, time_orders

__all__ = ["LossAndProbes"]


class LossAndProbes:
    """Every-step loss tracking and sampled-step probes (a mixin of the monitor)."""

    _losses: list[float]
    _first_bad: torch.Tensor | None
    _first_bad_cpu: int | None
    _step: int
    _probe_modules: list[tuple[str, nn.Module]]
    _probes: dict[str, tuple[torch.Tensor, int]]
    _probe_vals_now: dict[str, torch.Tensor]
    _probe_vals: list[tuple[int, str, torch.Tensor]]
    _handles: list[Any]

    def _track(self, loss: torch.Tensor | float) -> None:
        """Every step: the loss as a float on CPU; on an accelerator only the first
        non-finite step, kept on the device (no synchronization)."""
        if type(loss) is float:  # fit's step hands over the float it has read
            value = loss
        elif isinstance(loss, torch.Tensor):
            if loss.device.type != "cpu":
                if self._first_bad is None:
                    self._first_bad = torch.full((), -1, dtype=torch.long, device=loss.device)
                bad = torch.isfinite(loss.detach().reshape(-1)[:1]).logical_not_()[0]
                self._first_bad = torch.where(bad & (self._first_bad < 0),
                                              torch.full_like(self._first_bad, self._step),
                                              self._first_bad)
                return
            # .item(): no autograd or view op on the hot path
            value = loss.item() if loss.numel() == 1 else float(loss.detach().reshape(-1)[0])
        else:
            value = float(loss)
        losses = self._losses
        if len(losses) < self._step:
            losses.extend([math.nan] * (self._step - len(losses)))
        losses.append(value)
        if self._first_bad_cpu is None and not math.isfinite(value):
            self._first_bad_cpu = self._step

    def _install_probes(self) -> None:
        """Probes on sampled steps (:mod:`steadygrad.diagnostics.probes`): a zero tensor
        added to each recurrent layer's input (its gradient is the input gradient per time
        step), and a forward hook on each ``nn.MultiheadAttention`` (logits and entropy)."""
        for name, m in self._probe_modules:
            if isinstance(m, nn.RNNBase):
                self._handles.append(m.register_forward_pre_hook(self._rnn_probe(name, m)))
            else:
                self._handles.append(m.register_forward_hook(self._attn_probe(name),
                                                             with_kwargs=True))

    def _rnn_probe(self, name: str, module: nn.RNNBase) -> Callable[..., Any]:
        def pre(mod: nn.Module, args: tuple[Any, ...]) -> Any:
            if (name in self._probes or not torch.is_grad_enabled() or not args
                    or not isinstance(args[0], torch.Tensor) or not args[0].is_floating_point()):
                return None
            x = args[0]
            probe = torch.zeros_like(x, requires_grad=True)
            tdim = 0 if x.dim() == 2 or not module.batch_first else 1
            self._probes[name] = (probe, tdim)
            return (x + probe, *args[1:])
        return pre

    def _attn_probe(self, name: str) -> Callable[..., None]:
        def hook(mod: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any],
                 output: Any) -> None:
            if name in self._probe_vals_now or not torch.is_grad_enabled():
                return
            q = kwargs.get("query", args[0] if args else None)
            k = kwargs.get("key", args[1] if len(args) > 1 else None)
            if not isinstance(q, torch.Tensor) or not isinstance(k, torch.Tensor):
                return
            assert isinstance(mod, nn.MultiheadAttention)
            with torch.no_grad():
                st = attention_stats(attention_logits(mod, q.detach(), k.detach()))
            self._probe_vals_now[name] = st
        return hook

    def _collect_probes(self) -> None:
        for name, (probe, tdim) in self._probes.items():
            if probe.grad is not None and probe.shape[tdim] > 1:
                self._probe_vals_now[name] = time_orders(probe.grad, tdim).reshape(1)
        for name, v in self._probe_vals_now.items():
            self._probe_vals.append((self._step, name, v))
        self._probes.clear()
        self._probe_vals_now = {}

    def _probe_series(self, steps: list[int]) -> dict[str, np.ndarray]:
        """``"<module>:time_orders"``, ``"<module>:attn_logit_max"``,
        ``"<module>:attn_entropy"`` -> one value per check (NaN where not taken)."""
        out: dict[str, np.ndarray] = {}
        pos = {st: i for i, st in enumerate(steps)}
        for step, name, v in self._probe_vals:
            vals = v.detach().cpu().double().numpy()
            keys = ["time_orders"] if vals.size == 1 else ["attn_logit_max", "attn_entropy"]
            for key, x in zip(keys, vals, strict=True):
                arr = out.setdefault(f"{name}:{key}", np.full(len(steps), math.nan))
                if step in pos:
                    arr[pos[step]] = float(x)
        return out
