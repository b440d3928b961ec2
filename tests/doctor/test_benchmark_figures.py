"""The doctor-vs-random figures the docs publish are the committed benchmark run's numbers.

``docs/benchmarks-data/doctor_vs_random.json`` is the ``--json`` output of the run quoted in
``docs/benchmarks.md`` and ``docs/doctor-any-model.md``; every aggregate is recomputed here from
its per-setup rows (trial means, target, the doctor's order), so a doc figure that was typed
by hand, or a summary that does not follow from the rows, fails.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "docs" / "benchmarks-data" / "doctor_vs_random.json"


def _bench() -> Any:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import doctor_vs_random
    finally:
        sys.path.pop(0)
    return doctor_vs_random


@pytest.fixture(scope="module")
def run() -> dict[str, Any]:
    return json.loads(DATA.read_text())


def test_rows_cover_every_labelled_setup_once(run: dict[str, Any]) -> None:
    bench = _bench()
    assert [r["setup"] for r in run["rows"]] == [s.name for s in bench.SETUPS]
    assert len(run["rows"]) >= 20


def test_each_row_follows_from_its_trial_means(run: dict[str, Any]) -> None:
    bench = _bench()
    for r in run["rows"]:
        if "excluded" in r:
            assert r["problems"] == []
            continue
        target = 0.9 * r["reference"]
        assert r["target"] == pytest.approx(target)
        ok = {n for n, m in r["means"].items() if m is not None and m >= target}
        assert set(r["succeeded"]) == ok, r["setup"]
        assert r["doctor_trials"] == bench.first_success(r["doctor_order"], ok)
        assert r["doctor_reaches_90"] == bool(ok & set(r["doctor_order"][:9]))
        if ok:
            n, k = len(r["toolbox"]), len(ok)
            assert r["random_exact"] == pytest.approx((n + 1) / (k + 1))


def test_summary_and_published_section_are_recomputed_from_the_rows(
        run: dict[str, Any]) -> None:
    bench = _bench()
    summary = bench.summarize(run["rows"])
    assert summary.keys() == run["summary"].keys()
    for key, value in run["summary"].items():
        assert summary[key] == (value if value is None else pytest.approx(value)), key
    section = bench.markdown(run["rows"], summary, run["command"])
    doc = (ROOT / "docs" / "benchmarks.md").read_text()
    assert section.strip() in doc


def test_doctor_any_model_quotes_the_same_figures(run: dict[str, Any]) -> None:
    s = run["summary"]
    text = " ".join((ROOT / "docs" / "doctor-any-model.md").read_text().split())
    assert f"diagnosed {s['diagnosed']} of the {s['setups']}" in text
    assert f"reached 90% of the reference on {s['doctor_reaches_90']} of the {s['setups']}" in text
    assert (f"the doctor needed {s['mean_doctor_trials']:.2f} trials on average and random "
            f"draws {s['mean_random_trials']:.2f}") in text
