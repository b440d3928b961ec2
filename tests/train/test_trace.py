"""Tracing a step without Dynamo: what the trace depends on, and the compiled function.

Oracles: the same function run eagerly (``compile=False``), torch's own module state changes,
and the tracer's documented refusal of data-dependent Python control flow.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from steadygrad.train._flat import trace as trace_module
from steadygrad.train._flat.trace import cpu_options, module_state, trace_and_compile


def test_module_state_sees_mode_scalar_attributes_hooks_and_replaced_tensors() -> None:
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Dropout(0.5))
    base = module_state(model)
    changes = [
        (lambda: model[1].eval(), lambda: model[1].train()),
        (lambda: setattr(model[2], "p", 0.1), lambda: setattr(model[2], "p", 0.5)),
        (lambda: setattr(model[1], "momentum", None), lambda: setattr(model[1], "momentum", 0.1)),
    ]
    for change, undo in changes:
        change()
        assert module_state(model) != base
        undo()
        assert module_state(model) == base
    handle = model[0].register_forward_hook(lambda *a: None)
    assert module_state(model) != base
    handle.remove()
    glob = nn.modules.module.register_module_forward_pre_hook(lambda *a: None)
    assert module_state(model) != base
    glob.remove()
    assert module_state(model) == base
    weight = model[0].weight
    model[0].weight = nn.Parameter(weight.detach().clone())  # same values, another tensor
    assert module_state(model) != base
    model[0].weight = weight
    model[1].running_mean = model[1].running_mean.clone()
    assert module_state(model) != base


def _step(x: torch.Tensor, tree: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    w, m = tree
    loss = ((x @ w) ** 2).mean()
    m.mul_(0.9).add_(w, alpha=0.1)  # state updated in place, as an optimizer's moment
    w.sub_(0.5 * x.mean(0))
    return (loss,)


@pytest.mark.slow
def test_traced_function_equals_the_eager_one_and_updates_the_bound_tensors() -> None:
    torch.manual_seed(0)
    xs = [torch.randn(4, 3) for _ in range(3)]
    eager_tree = [torch.randn(3), torch.zeros(3)]
    traced_tree = [t.clone() for t in eager_tree]
    eager = trace_and_compile(_step, (xs[0],), (eager_tree,), None, compile=False)
    traced = trace_and_compile(_step, (xs[0],), (traced_tree,), {"cpp_wrapper": True})
    assert traced_tree[1].abs().sum() == 0  # tracing ran on fake tensors: nothing mutated
    for x in xs:
        torch.testing.assert_close(traced(x)[0], eager(x)[0])
    for a, b in zip(traced_tree, eager_tree, strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.slow
def test_tracing_refuses_python_branching_on_tensor_values() -> None:
    def branchy(x: torch.Tensor, tree: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        return (x * 2,) if float(x.sum()) > 0 else (x,)

    with pytest.raises(Exception, match=r"(?i)data"):
        trace_and_compile(branchy, (torch.ones(2),), ([],), None)


@pytest.mark.parametrize(("compiler", "skip_check"), [
    (("gcc", 12), True), (("gcc", 11), True), (("gcc", 10), False), (("clang", 12), True),
    (("clang", 11), False), (None, False)])
def test_cpu_options_skip_the_isa_check_only_with_a_recent_compiler(
        monkeypatch: pytest.MonkeyPatch, compiler: tuple[str, int] | None,
        skip_check: bool) -> None:
    monkeypatch.setattr(trace_module, "_compiler_major", lambda: compiler)
    options = cpu_options()
    assert options["cpp_wrapper"] is True
    assert options.get("cpp.vec_isa_ok", False) is skip_check


def test_the_compiler_version_is_read_from_inductors_report() -> None:
    from torch._inductor.cpp_builder import get_compiler_version_info, get_cpp_compiler

    info = get_compiler_version_info(get_cpp_compiler())
    found = trace_module._compiler_major()
    assert found is not None and f"{found[0]} version {found[1]}." in info


_ISA_LIST = (
    "import torch._inductor.config as c\n"
    "from torch._inductor import cpu_vec_isa as v\n"
    "c.cpp.vec_isa_ok = {ok}\n"
    "print(sorted(str(i) for i in v.valid_vec_isa_list()))\n")


@pytest.mark.slow
def test_skipping_the_isa_check_finds_the_isas_the_check_finds() -> None:
    """The oracle: Inductor's own check (it builds and loads a probe per ISA), in a fresh
    process (the list is cached per process), against the list with the check skipped."""
    if "cpp.vec_isa_ok" not in cpu_options():
        pytest.skip("the compiler is not recent enough: the check is not skipped here")
    found = [subprocess.run([sys.executable, "-c", _ISA_LIST.format(ok=ok)], check=True,
                            capture_output=True, text=True).stdout for ok in ("None", "True")]
    assert found[0] == found[1] and found[0].strip() != "[]"


_COMPILE_ONE = (
    "import sys, torch\n"
    "from steadygrad.train._flat.trace import cpu_options, trace_and_compile\n"
    "opts = cpu_options()\n"
    "if sys.argv[1] == 'inductor-default':\n"
    "    opts.pop('cpp_cache_precompile_headers')\n"
    "def step(x, tree):\n"
    "    return ((x @ tree[0]).sum(),)\n"
    "f = trace_and_compile(step, (torch.ones(2, 3),), ([torch.ones(3)],), opts)\n"
    "print(float(f(torch.ones(2, 3))[0]))\n")


@pytest.mark.parametrize("variant", ["flat-step", "inductor-default"])
def test_the_flat_step_builds_no_precompiled_header(tmp_path: Path, variant: str) -> None:
    """Oracle: Inductor's precompiled-header folder in an empty cache folder. With Inductor's
    default the first C++-wrapper compile builds a header there (the premise); with the flat
    step's options it builds none, and the result is the same."""
    tmp = tmp_path  # Inductor keeps the headers under TMPDIR, not under its cache dir
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(tmp / "inductor"), "TMPDIR": str(tmp)}
    out = subprocess.run([sys.executable, "-c", _COMPILE_ONE, variant], env=env, check=True,
                         capture_output=True, text=True).stdout
    assert float(out.strip().splitlines()[-1]) == 6.0
    headers = list(tmp.glob("torchinductor_*/precompiled_headers/*"))
    assert bool(headers) == (variant == "inductor-default"), headers
