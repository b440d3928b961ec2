"""Whether an optimizer's ``step()`` carries anything the flat step would bypass.

The flat step (:mod:`steadygrad.train._flat.flat`) applies the update itself and never calls
``optimizer.step()``; it declines an optimizer whose ``step`` something else depends on. This
reads private torch state (the global step-hook dicts of ``torch.optim.optimizer``, the
profiler flag), which is why it lives in this private package and why the flat step is only
used on the torch version it is tested with (:data:`steadygrad.train._flat.TESTED_TORCH`).

Example:
    >>> import torch
    >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    >>> step_hooks(opt) is None
    True
    >>> handle = opt.register_step_post_hook(lambda *args: None)
    >>> step_hooks(opt)
    'the optimizer has step hooks'
    >>> handle.remove()
"""

from __future__ import annotations

import torch
from torch.optim import optimizer as _torch_optimizer

__all__ = ["step_hooks"]


def step_hooks(optimizer: torch.optim.Optimizer) -> str | None:
    """Why ``optimizer.step()`` must run (step hooks, a patched ``step``, an active
    profiler), or None when nothing depends on it."""
    if optimizer._optimizer_step_pre_hooks or optimizer._optimizer_step_post_hooks:
        return "the optimizer has step hooks"
    if (_torch_optimizer._global_optimizer_pre_hooks
            or _torch_optimizer._global_optimizer_post_hooks):
        return "global optimizer step hooks are registered"
    if "step" in vars(optimizer):
        return "the optimizer's step is replaced on the instance (e.g. by an lr_scheduler)"
    if torch.autograd.profiler._is_profiler_enabled:
        return "the profiler is running"
    return None
