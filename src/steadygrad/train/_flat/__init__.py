"""The flat compiled engine of the training step (private: its internals may change).

:func:`flat_engine` returns the engine, or the reason it declines, for
:func:`steadygrad.train.step.build_step`. The package holds the flat rules (torch's optimizer
updates restated on flat buffers, each with an allow-list of the options it implements), the
buffer layout (segments), the tracer and :class:`~steadygrad.train._flat.flat.FlatStep`. It
relies on private torch APIs (``make_fx``, ``torch._inductor.compile``, the optimizer's global
hook dicts, the module hook dicts), so it is used only on the torch release it is tested with
(:data:`TESTED_TORCH`); on any other the step falls back to ``torch.compile`` of the eager step.

Example:
    >>> import torch
    >>> m = torch.nn.Linear(2, 1)
    >>> opt = torch.optim.LBFGS(m.parameters())
    >>> flat_engine(m, torch.nn.functional.mse_loss, opt, lambda *a: None, timer=[0.0])
    'no flat rule for LBFGS'
"""

from __future__ import annotations

from steadygrad.train._flat.engine import TESTED_TORCH, flat_engine

__all__ = ["TESTED_TORCH", "flat_engine"]
