"""The non-finite rule's vectorized search finds the check its per-check reading names."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from steadygrad.diagnostics.rules import _non_finite
from steadygrad.diagnostics.series import HealthSeries

cell = st.sampled_from([math.nan, 0.0, 1.0, 2.0, math.inf, -math.inf])


def _loop_first(s: HealthSeries) -> int | None:
    """The first check with a non-finite entry, read check by check (the oracle)."""
    v = s.values
    for k in range(s.checks):
        w, wg = v["weight_rms"][k], v["weight_grad_norm"][k]
        if (np.nan_to_num(v["act_nonfinite"][k]) > 0).any() \
                or (np.nan_to_num(v["grad_nonfinite"][k]) > 0).any() \
                or (~np.isfinite(w) & ~np.isnan(w)).any() or (np.isnan(w) & ~np.isnan(wg)).any() \
                or math.isinf(s.loss[k]):
            return int(s.steps[k])
    return None


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 6), st.integers(1, 4), st.data())
def test_first_bad_check_equals_the_loop(checks: int, layers: int, data: st.DataObject) -> None:
    s = HealthSeries.empty([f"l{i}" for i in range(layers)], list(range(0, 5 * checks, 5)))
    for key in ("act_nonfinite", "grad_nonfinite", "weight_rms", "weight_grad_norm"):
        s.values[key] = np.array(data.draw(st.lists(st.lists(cell, min_size=layers,
                                                              max_size=layers),
                                                     min_size=checks, max_size=checks)))
    s.loss = np.array(data.draw(st.lists(cell, min_size=checks, max_size=checks)))
    f = _non_finite(s)
    expected = _loop_first(s)
    assert (f.first_step if f is not None else None) == expected
