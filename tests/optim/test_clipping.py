"""Gradient clipping: torch oracles, Keras per-tensor semantics, properties, no host sync."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from steadygrad.errors import ConfigError
from steadygrad.optim.clipping import (
    GradientClipper,
    clip_by_global_norm_,
    clip_by_norm_,
    clip_by_value_,
    global_norm,
)


def _params(grads: Sequence[torch.Tensor | None]) -> list[torch.nn.Parameter]:
    out = []
    for g in grads:
        p = torch.nn.Parameter(torch.zeros(1) if g is None else torch.zeros_like(g))
        p.grad = None if g is None else g.clone()
        out.append(p)
    return out


def _grads(params: list[torch.nn.Parameter]) -> list[torch.Tensor]:
    return [_g(p).clone() for p in params if p.grad is not None]


def _g(p: torch.nn.Parameter) -> torch.Tensor:
    assert p.grad is not None
    return p.grad


def _flat(grads: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([g.flatten() for g in grads])


# Lists of 1-4 gradient tensors of random shapes, scaled over several orders of magnitude.
gradient_lists = st.builds(
    lambda shapes, scale, seed: [
        torch.randn(shape, generator=torch.Generator().manual_seed(seed + i), dtype=torch.float64)
        * scale
        for i, shape in enumerate(shapes)
    ],
    st.lists(st.lists(st.integers(1, 5), min_size=1, max_size=2).map(tuple), min_size=1,
             max_size=4),
    st.sampled_from([1e-3, 0.1, 1.0, 10.0, 1e3]),
    st.integers(0, 10_000),
)
thresholds = st.floats(1e-2, 1e2)


@settings(max_examples=40, deadline=None)
@given(gradient_lists, thresholds)
def test_global_clip_matches_torch_and_bounds_the_norm(grads, max_norm) -> None:
    ours, oracle = _params(grads), _params(grads)
    before = _flat(grads).norm()
    reported = clip_by_global_norm_(ours, max_norm)
    expected = torch.nn.utils.clip_grad_norm_(oracle, max_norm)
    torch.testing.assert_close(reported, expected)
    torch.testing.assert_close(reported, before)
    for p, q in zip(ours, oracle, strict=True):
        torch.testing.assert_close(_g(p), _g(q), rtol=0, atol=0)
    after = _flat(_grads(ours))
    assert after.norm() <= max_norm * (1 + 1e-9)
    # Direction preserved: one common non-negative factor for every element.
    factor = (after @ _flat(grads)) / before**2
    torch.testing.assert_close(after, factor * _flat(grads))
    if before <= max_norm:
        torch.testing.assert_close(after, _flat(grads), rtol=1e-6, atol=0)


@settings(max_examples=40, deadline=None)
@given(gradient_lists, thresholds)
def test_per_tensor_clip_follows_keras_formula(grads, clipnorm) -> None:
    params = _params(grads)
    norms = clip_by_norm_(params, clipnorm)
    torch.testing.assert_close(norms, torch.stack([g.norm() for g in grads]))
    for p, g in zip(params, grads, strict=True):
        # keras/src/optimizers/base_optimizer.py::_clip_by_norm
        expected = g * clipnorm / torch.clamp(g.norm(), min=clipnorm)
        torch.testing.assert_close(_g(p), expected)
        assert _g(p).norm() <= clipnorm * (1 + 1e-9)
        if g.norm() <= clipnorm:
            torch.testing.assert_close(_g(p), g, rtol=0, atol=0)


def test_per_tensor_clip_differs_from_global_clip() -> None:
    small, big = torch.tensor([0.3, 0.4]), torch.tensor([30.0, 40.0])
    per_tensor = _params([small, big])
    clip_by_norm_(per_tensor, 1.0)
    torch.testing.assert_close(_g(per_tensor[0]), small)  # below its own bound: untouched
    torch.testing.assert_close(_g(per_tensor[1]), torch.tensor([0.6, 0.8]))
    together = _params([small, big])
    clip_by_global_norm_(together, 1.0)
    assert _g(together[0]).norm() < 0.02  # shrunk with the big one


@settings(max_examples=30, deadline=None)
@given(gradient_lists, thresholds)
def test_value_clip_matches_torch(grads, clipvalue) -> None:
    ours, oracle = _params(grads), _params(grads)
    clip_by_value_(ours, clipvalue)
    torch.nn.utils.clip_grad_value_(oracle, clipvalue)
    for p, q in zip(ours, oracle, strict=True):
        torch.testing.assert_close(_g(p), _g(q), rtol=0, atol=0)
        assert _g(p).abs().max() <= clipvalue


@pytest.mark.parametrize(
    "kwargs", [{}, {"clipvalue": 0.5}, {"clipnorm": 0.5}, {"global_clipnorm": 0.5}]
)
def test_clipper_reports_the_pre_clip_global_norm(kwargs: dict) -> None:
    grads = [torch.randn(3, 4) * 5, torch.randn(4)]
    params = _params([*grads, None])
    norm = GradientClipper(**kwargs)(params)
    assert isinstance(norm, torch.Tensor) and norm.dim() == 0
    torch.testing.assert_close(norm, _flat(grads).norm())
    assert params[-1].grad is None  # skipped, not created
    after = _flat(_grads(params)).norm()
    if kwargs:
        assert after < norm
    else:
        torch.testing.assert_close(after, norm)


@pytest.mark.parametrize(
    ("kwargs", "reference"),
    [
        ({"clipvalue": 0.5}, lambda ps: torch.nn.utils.clip_grad_value_(ps, 0.5)),
        ({"clipnorm": 0.5}, lambda ps: clip_by_norm_(ps, 0.5)),
        ({"global_clipnorm": 0.5}, lambda ps: torch.nn.utils.clip_grad_norm_(ps, 0.5)),
    ],
)
def test_clipper_applies_the_chosen_transform(kwargs: dict, reference) -> None:
    grads = [torch.randn(3, 4) * 5, torch.randn(4)]
    ours, oracle = _params(grads), _params(grads)
    GradientClipper(**kwargs)(ours)
    reference(oracle)
    for p, q in zip(ours, oracle, strict=True):
        torch.testing.assert_close(_g(p), _g(q))


@pytest.mark.parametrize(
    "kwargs", [{"clipvalue": 0.5}, {"clipnorm": 0.5}, {"global_clipnorm": 0.5}, {}]
)
def test_clipper_does_not_synchronize_with_the_host(kwargs: dict, monkeypatch) -> None:
    params = _params([torch.randn(3, 4) * 5, torch.randn(4)])
    clipper = GradientClipper(**kwargs)

    def sync(*args: object, **kw: object) -> None:
        raise AssertionError("host synchronization in the clipping path")

    for name in ("item", "tolist", "__bool__", "__float__", "__int__", "cpu", "numpy"):
        monkeypatch.setattr(torch.Tensor, name, sync)
    clipper(params)


def test_parameters_without_gradients_are_skipped() -> None:
    params = _params([None, None])
    assert float(GradientClipper(global_clipnorm=1.0)(params)) == 0.0
    assert float(global_norm(params)) == 0.0
    assert clip_by_norm_(params, 1.0).numel() == 0
    clip_by_value_(params, 1.0)
    assert all(p.grad is None for p in params)


def test_single_tensor_is_accepted() -> None:
    (p,) = _params([torch.tensor([3.0, 4.0])])
    assert float(clip_by_global_norm_(p, 1.0)) == pytest.approx(5.0)
    assert _g(p).norm().item() == pytest.approx(1.0, rel=1e-5)


def test_non_finite_gradients_are_reported_not_raised() -> None:
    # NaN: the norm is NaN and global clipping spreads NaN (scale NaN), as documented.
    params = _params([torch.tensor([1.0, float("nan")]), torch.tensor([2.0])])
    norm = GradientClipper(global_clipnorm=1.0)(params)
    assert math.isnan(norm.item())
    assert torch.isnan(_g(params[1])).all()
    # Inf: the norm is Inf; the scale is 0, so finite entries become 0 and inf * 0 = NaN.
    params = _params([torch.tensor([1.0, float("inf")]), torch.tensor([2.0])])
    norm = GradientClipper(global_clipnorm=1.0)(params)
    assert norm.item() == math.inf
    assert _g(params[1]).item() == 0.0 and math.isnan(_g(params[0])[1].item())
    # Value clipping keeps NaN and bounds Inf.
    params = _params([torch.tensor([float("nan"), float("-inf")])])
    GradientClipper(clipvalue=1.0)(params)
    assert math.isnan(_g(params[0])[0].item()) and _g(params[0])[1].item() == -1.0


def test_clipnorm_and_global_clipnorm_exclude_each_other() -> None:
    with pytest.raises(ConfigError, match=r"at most one of clipnorm .* and global_clipnorm"):
        GradientClipper(clipnorm=1.0, global_clipnorm=1.0)


@settings(max_examples=30, deadline=None)
@given(gradient_lists, thresholds, thresholds, st.sampled_from(["clipnorm", "global_clipnorm"]))
def test_clipvalue_combines_with_a_norm_clip(grads, value, bound, option) -> None:
    """Regression (issue 18): clipvalue + clipnorm (suggested by the chapter) could not be
    expressed. Oracle: torch's clip_grad_value_ then the norm clip; both bounds hold."""
    clipper = GradientClipper(clipvalue=value, **{option: bound})
    params = _params(grads)
    expected = [g.clone() for g in grads]
    reference = _params(expected)
    torch.nn.utils.clip_grad_value_(reference, value)
    if option == "global_clipnorm":
        torch.nn.utils.clip_grad_norm_(reference, bound)
    else:  # Keras clipnorm per tensor: g * c / max(||g||, c) (torch's adds 1e-6 to ||g||)
        for p in reference:
            g = _g(p)
            g.mul_(bound / max(float(torch.linalg.vector_norm(g)), bound))
    norm = clipper(params)
    torch.testing.assert_close(norm, torch.linalg.vector_norm(_flat(list(grads))))  # pre-clip
    for p, r in zip(params, reference, strict=True):
        torch.testing.assert_close(_g(p), _g(r), rtol=1e-5, atol=1e-9)
        assert _g(p).abs().max() <= value * (1 + 1e-9)
    out, pure_norm = clipper.clipped([g.clone() for g in grads])
    torch.testing.assert_close(pure_norm, norm)
    for p, g in zip(params, out, strict=True):
        torch.testing.assert_close(g, _g(p))


def test_fit_and_configs_take_clipvalue_with_clipnorm() -> None:
    from steadygrad.experiments.config import config_from_dict
    from steadygrad.experiments.execute import fit_arguments
    from steadygrad.train.loop import fit

    cfg = config_from_dict({"train": {"optimizer": {"name": "sgd", "clipvalue": 0.5,
                                                     "clipnorm": 1.0}}})
    optimizer = fit_arguments(cfg)["optimizer"]
    assert optimizer.clipping == {"clipvalue": 0.5, "clipnorm": 1.0}
    torch.manual_seed(0)
    x = torch.randn(64, 3)
    h = fit(torch.nn.Linear(3, 2), (x, (x[:, 0] > 0).long()), epochs=2, optimizer=optimizer,
            verbose=0, seed=0)
    assert h["loss"][-1] < h["loss"][0]


@pytest.mark.parametrize("value", [0, -1.0, float("nan"), float("inf"), "1", True])
@pytest.mark.parametrize("name", ["clipvalue", "clipnorm", "global_clipnorm"])
def test_invalid_thresholds_are_rejected(name: str, value: object) -> None:
    with pytest.raises(ConfigError, match=name):
        GradientClipper(**{name: value})  # type: ignore[arg-type]
    params = _params([torch.ones(2)])
    function = {"clipvalue": clip_by_value_, "clipnorm": clip_by_norm_,
                "global_clipnorm": clip_by_global_norm_}[name]
    with pytest.raises(ConfigError, match=name):
        function(params, value)  # type: ignore[arg-type]
    torch.testing.assert_close(_g(params[0]), torch.ones(2))  # nothing was touched


def test_clipper_is_active_only_when_configured() -> None:
    assert not GradientClipper().active
    assert GradientClipper(clipvalue=1).active
    assert GradientClipper(clipvalue=1).clipvalue == 1.0


@settings(max_examples=30, deadline=None)
@given(gradient_lists, thresholds,
       st.sampled_from(["none", "clipvalue", "clipnorm", "global_clipnorm"]))
def test_pure_clipped_matches_the_in_place_clipper(grads, threshold, option) -> None:
    """``GradientClipper.clipped`` (traced into the compiled step) gives the same gradients and
    pre-clip norm as the in-place clipper the eager step uses."""
    clipper = GradientClipper(**({} if option == "none" else {option: threshold}))
    grads = [*grads, torch.zeros(2, dtype=torch.float64)]  # a zero gradient: scale capped at 1
    params = _params(grads)
    norm = clipper(params)
    out, pure_norm = clipper.clipped([g.clone() for g in grads])
    torch.testing.assert_close(pure_norm, norm)
    for p, g in zip(params, out, strict=True):
        torch.testing.assert_close(g, _g(p))
