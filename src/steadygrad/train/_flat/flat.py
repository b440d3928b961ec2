"""The compiled training step on flat buffers: gradients, clipping and update in one graph.

For ``fit(compile=True)`` with an optimizer that has a flat rule
(:func:`steadygrad.train._flat.rules.rule_for`), :class:`FlatStep` moves every trainable
parameter into one 1-D tensor (each parameter becomes a view of it, so the model, the monitor,
checkpoints and callbacks see the same weights) and every per-element optimizer moment into one
1-D tensor per state key (the optimizer's ``state`` entries become views too, so
``optimizer.state_dict()`` stays exact). One compiled function then computes, per step:

    loss (+ penalty) and gradients   torch.func.grad_and_value over functional_call
    pre-clip global norm, clipping   on the gradient tensors
    finiteness                       ok = isfinite(total loss) and isfinite(norm)
    the optimizer update             elementwise per segment; written only if ok

A segment (:mod:`steadygrad.train._flat.segments`) is either one large parameter
(:data:`~steadygrad.train._flat.segments.PER_TENSOR_MIN` elements or more), updated
straight from its gradient, or all the small parameters of an optimizer group, updated in one
kernel over their concatenated gradients.

The scalars that depend on the step count (bias corrections, Nadam's ``mu``) and every
hyperparameter a schedule may change (``lr``, momentum/``beta_1`` under 1cycle) are computed on
the host and passed in as one small tensor, so a new rate never recompiles. Measured in one
session on the issue-3 deep net (62 parameter tensors, 280k weights, Nadam, batch 32, 1 CPU
thread): the previous two-region step spent 2.2 ms per step in its gradient graph and 1.8 ms
in the compiled ``optimizer.step()``; the flat Nadam update took 0.39 ms. Whole-epoch numbers
against the hand-written loop and Keras are in ``docs/benchmarks.md`` ("Trainer speed").

How it is compiled: once per compile key (batch shapes and dtypes, structural optimizer
options, :func:`~steadygrad.train._flat.trace.module_state`) the step function is traced and
compiled without Dynamo (:func:`steadygrad.train._flat.trace.trace_and_compile`);
:meth:`FlatStep.invalidate` makes the next step read the model's state again. A model the
tracer cannot handle (Python control flow on tensor values, for instance) is compiled with
``torch.compile`` instead (:attr:`FlatStep.fallback` says why).

Semantics kept from the eager step: a non-finite loss or gradient norm leaves weights and
optimizer state untouched (the graph selects the old values) and the step reports
``ok=False``; on an accelerator without ``sync`` the update is unconditional and checked
later, as in the eager step. A step the monitor samples runs eagerly (autograd, hooks,
``p.grad``, the clipper) and then applies the same flat rule, uncompiled. The first step runs
eagerly when the optimizer has no state yet (torch creates it lazily); flat mode starts with
the next one. :meth:`FlatStep.release` gives every parameter and optimizer state entry its own
storage again (``fit`` calls it when training ends), so nothing outside ``fit`` sees shared
storage (safetensors refuses it).

Example:
    >>> import torch
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = torch.nn.Linear(3, 2)
    >>> opt = torch.optim.Adam(model.parameters(), lr=0.1)
    >>> x, y = torch.randn(8, 3), torch.randint(0, 2, (8,))
    >>> model(x).sum().backward(); opt.step(); opt.zero_grad()  # state exists now
    >>> flat = FlatStep.create(model, torch.nn.functional.cross_entropy, opt, compile=False)
    >>> flat.engage()
    True
    >>> model.weight.data_ptr() == flat.params.data_ptr()  # the weight is a view
    True
    >>> losses = [flat(x, y, measure=True).loss for _ in range(20)]
    >>> losses[-1] < losses[0], int(opt.state[model.weight]["step"])
    (True, 21)
    >>> flat.release(); model.weight.data_ptr() == flat.params.data_ptr()
    False
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from steadygrad.optim.clipping import GradientClipper
from steadygrad.train._flat.hooks import step_hooks
from steadygrad.train._flat.rules import (
    FlatRule,
    decline_reason,
    rule_for,
    structural_options,
    structure,
)
from steadygrad.train._flat.segments import (
    PER_TENSOR_MIN,
    apply_update,
    plan_segments,
    segment_grads,
)
from steadygrad.train._flat.trace import (
    _Forward,
    cpu_options,
    module_state,
    non_trainable,
    trace_and_compile,
)

__all__ = ["FlatResult", "FlatStep"]

Tensor = torch.Tensor


@dataclass
class FlatResult:
    """One flat step: detached outputs, loss, penalty, total, pre-clip norm, ok (floats when
    the step synchronizes, else 0-dim tensors; ``ok`` is True without ``sync``)."""

    outputs: Tensor
    loss: Any
    penalty: Any
    total: Any
    grad_norm: Any
    ok: bool


class FlatStep:
    """Training step on flat parameter/state buffers (module docstring). Build with
    :meth:`create`, which returns None when the run does not qualify."""

    def __init__(self, model: nn.Module, loss_fn: Callable[[Tensor, Tensor], Tensor],
                 optimizer: torch.optim.Optimizer, rule: FlatRule, *,
                 clipper: GradientClipper | None, penalty: Callable[[nn.Module], Tensor] | None,
                 sync: bool, compile: bool, per_tensor_min: int = PER_TENSOR_MIN) -> None:
        self.model, self.loss_fn, self.optimizer, self.rule = model, loss_fn, optimizer, rule
        self.clipper, self.penalty, self.sync, self.compile = clipper, penalty, sync, compile
        self.groups = optimizer.param_groups
        order, self.spans, self.segments = plan_segments(
            [[p.numel() for p in g["params"]] for g in self.groups], per_tensor_min)
        self.plist: list[nn.Parameter] = [self.groups[r]["params"][k] for r, k in order]
        self.wrapper = _Forward(model, penalty)
        names = {id(p): n for n, p in self.wrapper.named_parameters()}
        self.names = [names[id(p)] for p in self.plist]
        self._seg_params: list[Tensor] = []
        self._seg_state: list[dict[str, Tensor]] = []
        self.engaged = False
        self.params = torch.empty(0)
        self.state: dict[str, Tensor] = {}
        self.scalars: list[dict[str, Tensor]] = []
        self.host: list[dict[str, float]] = []
        self._compiled: dict[tuple[Any, ...], Callable[..., Any]] = {}
        self._others_cache: dict[str, Tensor] | None = None
        self._coef_rows: list[list[float]] | None = None
        self._coef = torch.empty(0)
        self._dirty = True
        self._module_state: tuple[Any, ...] = ()
        self.fallback: str | None = None
        """Why the last compilation used ``torch.compile`` instead of the trace, or None."""
        # Inductor options (:func:`~steadygrad.train._flat.trace.cpu_options` on CPU)
        cpu = self.plist[0].device.type == "cpu"
        self.options: dict[str, Any] | None = cpu_options() if cpu else None

    # ------------------------------------------------------------------ set-up
    @classmethod
    def create(cls, model: nn.Module, loss_fn: Callable[[Tensor, Tensor], Tensor],
               optimizer: torch.optim.Optimizer, *, clipper: object = None,
               penalty: Callable[[nn.Module], Tensor] | None = None, sync: bool = True,
               compile: bool = True, per_tensor_min: int = PER_TENSOR_MIN) -> FlatStep | str:
        """A flat step for this run, or the reason it does not qualify: no flat rule for the
        optimizer or an option outside its allow-list (:func:`decline_reason`), step hooks on
        it, a clipper other than :class:`GradientClipper`, trainable parameters missing from
        the optimizer (or frozen ones in it), sparse, complex or mixed device/dtype parameters.

        >>> m = torch.nn.Linear(2, 1)
        >>> FlatStep.create(m, torch.nn.functional.mse_loss, torch.optim.LBFGS(m.parameters()))
        'no flat rule for LBFGS'
        """
        reason = decline_reason(optimizer) or step_hooks(optimizer)
        if reason is not None:
            return reason
        if clipper is not None and not isinstance(clipper, GradientClipper):
            return f"a custom clipper ({type(clipper).__name__})"
        opt_params = [p for g in optimizer.param_groups for p in g["params"]]
        trainable = [p for p in model.parameters() if p.requires_grad]
        if not opt_params or len({id(p) for p in opt_params}) != len(opt_params):
            return "the optimizer holds no parameters or one parameter twice"
        if {id(p) for p in opt_params} != {id(p) for p in trainable}:
            return "the optimizer's parameters are not exactly the model's trainable ones"
        kinds = {(p.device, p.dtype) for p in opt_params}
        if len(kinds) != 1 or any(p.is_sparse or p.is_complex() for p in opt_params):
            return "parameters on several devices or dtypes, sparse or complex"
        if not next(iter(kinds))[1].is_floating_point:
            return "non-floating-point parameters"
        rule = rule_for(optimizer)
        assert rule is not None
        return cls(model, loss_fn, optimizer, rule, clipper=clipper, penalty=penalty,
                   sync=sync, compile=compile, per_tensor_min=per_tensor_min)

    def _ready(self) -> bool:
        """Whether the optimizer holds complete, flattenable state for every parameter."""
        for group in self.groups:
            keys = self.rule.tensors(group)
            first: dict[str, float] | None = None
            for p in group["params"]:
                st = self.optimizer.state.get(p, {})
                for k in keys:
                    t = st.get(k)
                    if not isinstance(t, Tensor) or t.shape != p.shape:
                        return False
                vals = {}
                for k in self.rule.scalars:
                    t = st.get(k)
                    if not isinstance(t, Tensor) or t.numel() != 1:
                        return False
                    vals[k] = float(t.item())
                if first is None:
                    first = vals
                elif vals != first:  # e.g. parameters added to a group mid-training
                    return False
        return True

    def engage(self) -> bool:
        """Move parameters and optimizer state into flat buffers; False if the state is not
        ready yet (run an eager step first)."""
        if self.engaged:
            return True
        if not self._ready():
            return False
        with torch.no_grad():
            self.params = torch.cat([p.detach().reshape(-1) for p in self.plist])
            for p, (a, b) in zip(self.plist, self.spans, strict=True):
                p.data = self.params[a:b].view_as(p)
            keys = sorted({k for g in self.groups for k in self.rule.tensors(g)})
            self.state = {}
            for k in keys:
                parts = [self.optimizer.state[p][k].detach().reshape(-1) if k in
                         self.optimizer.state.get(p, {}) else torch.zeros_like(p).reshape(-1)
                         for p in self.plist]
                flat = self.state[k] = torch.cat(parts)
                for p, (a, b) in zip(self.plist, self.spans, strict=True):
                    if k in self.optimizer.state.get(p, {}):
                        self.optimizer.state[p][k] = flat[a:b].view_as(p)
            self.scalars, self.host = [], []
            for group in self.groups:
                shared = {k: self.optimizer.state[group["params"][0]][k].detach().clone()
                          for k in self.rule.scalars}
                for p in group["params"]:
                    for k, t in shared.items():
                        self.optimizer.state[p][k] = t
                self.scalars.append(shared)
                self.host.append({k: float(t.item()) for k, t in shared.items()})
            self._seg_params = [self.params[seg.start:seg.stop] for seg in self.segments]
            self._seg_state = [{k: self.state[k][seg.start:seg.stop]
                                for k in self.rule.tensors(self.groups[seg.group])}
                               for seg in self.segments]
        self.engaged = True
        return True

    def valid(self) -> bool:
        """Whether every flat parameter still trains (a callback may freeze one mid-``fit``;
        the flat update would keep moving it, so the trainer leaves flat mode instead).

        >>> m = torch.nn.Linear(2, 1)
        >>> opt = torch.optim.SGD(m.parameters(), lr=0.1)
        >>> flat = FlatStep.create(m, torch.nn.functional.mse_loss, opt, compile=False)
        >>> flat.valid(), m.bias.requires_grad_(False) is m.bias, flat.valid()
        (True, True, False)
        """
        return all(p.requires_grad for p in self.plist)

    def release(self) -> None:
        """Give parameters and optimizer state entries their own storage again."""
        if not self.engaged:
            return
        with torch.no_grad():
            for p in self.plist:
                p.data = p.data.clone()
                st = self.optimizer.state.get(p, {})
                for k, t in list(st.items()):
                    if isinstance(t, Tensor):
                        st[k] = t.clone()
        self.engaged = False

    # ------------------------------------------------------------------ the math
    def _coefficients(self) -> tuple[list[list[float]], list[dict[str, float]]]:
        rows, news = [], []
        for group, host in zip(self.groups, self.host, strict=True):
            t = int(host.get("step", 0.0)) + 1
            coefs, new = self.rule.coefficients(group, host, t)
            rows.append(coefs + [new[k] for k in self.rule.scalars])
            news.append(new)
        return rows, news

    def _frozen(self) -> list[dict[str, Any]]:
        """The structural options of each group as constants (the graph never reads a value
        that a schedule changes, so changing it does not recompile)."""
        return [structural_options(g) for g in self.groups]

    def _make_graph(self, frozen: list[dict[str, Any]]) -> Callable[..., tuple[Tensor, ...]]:
        """Forward, loss, gradients, norm, clipping, update: the function that is compiled.
        Tensors come in as arguments (the parameters and per-element state as one 1-D slice
        per segment); everything else is a constant of the closure."""
        from torch.func import functional_call, grad_and_value

        wrapper, loss_fn, rule, sync = self.wrapper, self.loss_fn, self.rule, self.sync
        clip = (self.clipper if self.clipper is not None else GradientClipper()).clipped
        segments, names = list(self.segments), list(self.names)
        layout = [(seg_i, names[j], a - seg.start, b - seg.start, tuple(self.plist[j].shape))
                  for seg_i, seg in enumerate(segments) for j in seg.members
                  for a, b in [self.spans[j]]]

        def graph(x: Tensor, y: Tensor, coef: Tensor, others: dict[str, Tensor],
                  params: list[Tensor], state: list[dict[str, Tensor]],
                  scalars: list[dict[str, Tensor]]) -> tuple[Tensor, ...]:
            views = {n: params[i][a:b].view(shape) for i, n, a, b, shape in layout}

            def loss_of(ps: dict[str, Tensor], rest: dict[str, Tensor],
                        ) -> tuple[Tensor, tuple[Tensor, ...]]:
                out, pen = functional_call(wrapper, (ps, rest), (x,))
                loss = loss_fn(out, y)
                if pen is None:
                    return loss, (out, loss, loss)
                return loss + pen, (out, loss, pen)

            grads, (total, aux) = grad_and_value(loss_of, has_aux=True)(views, others)
            glist, norm = clip([grads[n] for n in names])
            seg_grads = segment_grads(segments, glist)
            ok = torch.isfinite(total) & torch.isfinite(norm) if sync else None
            apply_update(rule, frozen, segments, params, seg_grads, state, scalars, coef, ok)
            return (aux[0].detach(), aux[1].detach(), aux[2].detach(), total.detach(),
                    norm.detach())

        return graph

    def _others(self) -> dict[str, Tensor]:
        """Frozen parameters and buffers by name (cached: read once per compile key)."""
        if self._others_cache is None:
            self._others_cache = non_trainable(self.wrapper)
        return self._others_cache

    # ------------------------------------------------------------------ the step
    def invalidate(self) -> None:
        """Note that code outside the step may have changed the model (a callback, an eager
        step, validation): the next :meth:`compile_key` reads :func:`module_state` again."""
        self._dirty = True

    def compile_key(self, x: Tensor, y: Tensor) -> tuple[Any, ...]:
        """What a new trace is needed for: batch shapes and dtypes, the structural optimizer
        options and the model's :func:`module_state` (re-read after :meth:`invalidate`)."""
        if self._dirty:
            self._module_state = module_state(self.model)
            self._dirty = False
        return (tuple(x.shape), x.dtype, tuple(y.shape), y.dtype,
                tuple(structure(g) for g in self.groups), self._module_state)

    def __call__(self, x: Tensor, y: Tensor, measure: bool = False,
                 key: tuple[Any, ...] | None = None) -> FlatResult:
        """One compiled (or, with ``compile=False``, eager-traced) flat step; ``key``: this
        batch's :meth:`compile_key` if the caller has it already."""
        rows, news = self._coefficients()
        if rows != self._coef_rows:  # constant hyperparameters: reuse the tensor
            self._coef_rows = rows
            self._coef = torch.tensor(rows, dtype=self.params.dtype).to(self.params.device)
        coef = self._coef
        key = self.compile_key(x, y) if key is None else key
        fn = self._compiled.get(key)
        if fn is None:
            fn = self._compiled[key] = self._build(x, y, coef)
        out, loss, pen, total, norm = fn(x, y, coef)
        if not self.sync:
            self._advance(news)
            return FlatResult(out, loss, None if self.penalty is None else pen, total,
                              norm if measure or self.clipper is not None else None, True)
        lv, tv, nv = loss.item(), total.item(), norm.item()
        ok = math.isfinite(tv) and math.isfinite(nv)
        if ok:
            self._advance(news)
        return FlatResult(out, lv, None if self.penalty is None else pen.item(), tv,
                          nv if measure or self.clipper is not None or not ok else None, ok)

    def _build(self, x: Tensor, y: Tensor, coef: Tensor,
               ) -> Callable[[Tensor, Tensor, Tensor], tuple[Tensor, ...]]:
        """The step for one compile key: ``fn(x, y, coef) -> (outputs, loss, penalty, total,
        norm)``, traced and compiled (or the plain graph with ``compile=False``)."""
        self._others_cache = None  # buffers may have been replaced since
        graph = self._make_graph(self._frozen())
        tree = (self._others(), self._seg_params, self._seg_state, self.scalars)
        try:
            fn = trace_and_compile(graph, (x, y, coef), tree, self.options, compile=self.compile)
            self.fallback = None
            return fn
        except Exception as exc:  # a construct the tracer does not support
            first = str(exc).splitlines()[0] if str(exc) else ""
            self.fallback = f"{type(exc).__name__}: {first}"
        compiled = torch.compile(graph, options=self.options)
        return lambda x, y, c: compiled(x, y, c, *tree)

    def _advance(self, news: list[dict[str, float]]) -> None:
        for host, new in zip(self.host, news, strict=True):
            host.update(new)

    def update_from_grads(self) -> None:
        """The flat update from ``p.grad`` (already clipped), eagerly: for a step run through
        autograd (a monitored step). A missing gradient counts as zero."""
        rows, news = self._coefficients()
        with torch.no_grad():
            grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.plist]
            seg_grads = segment_grads(self.segments, grads)
            coef = torch.tensor(rows, dtype=self.params.dtype).to(self.params.device)
            apply_update(self.rule, self._frozen(), self.segments, self._seg_params, seg_grads,
                         self._seg_state, self.scalars, coef, None)
        self._advance(news)
