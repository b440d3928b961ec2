"""fit's thread choice: properties, not timings (a fake clock decides which count is fastest).

Oracles: torch's own thread setting (read inside training by a callback and after ``fit``),
the probe's call count, and a seeded run without any probe (``threads=`` given).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch
from torch import nn

from steadygrad.train import threads as threads_module
from steadygrad.train.callbacks import Callback
from steadygrad.train.loop import fit
from steadygrad.train.threads import candidates, choose_threads, thread_choice


class _Seen(Callback):
    """Records torch's thread count at each epoch."""

    def __init__(self) -> None:
        self.counts: list[int] = []

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any]) -> None:
        self.counts.append(torch.get_num_threads())


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """An empty probe cache, torch's default of 4 threads and no thread variables set."""
    before = torch.get_num_threads()
    monkeypatch.setattr(threads_module, "_CACHE", {})
    monkeypatch.setattr(threads_module, "TORCH_DEFAULT", 4)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(var, raising=False)
    torch.set_num_threads(4)
    yield
    torch.set_num_threads(before)


def _clock_favouring(best: int) -> Any:
    """A fake clock: a step takes 1 time unit at ``best`` threads and 5 at any other count."""
    now = [0.0]

    def clock() -> float:
        now[0] += 0.5 if torch.get_num_threads() == best else 2.5
        return now[0]

    return clock


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(64, 6, generator=g), torch.randint(0, 3, (64,), generator=g)


def _net() -> nn.Module:
    return nn.Sequential(nn.Linear(6, 16), nn.Dropout(0.3), nn.ReLU(), nn.Linear(16, 3))


def test_candidates_are_one_powers_of_two_and_the_default() -> None:
    assert candidates(1) == (1,) and candidates(2) == (1, 2) and candidates(6) == (1, 2, 4, 6)


@pytest.mark.parametrize("best", [1, 2, 4])
def test_the_fastest_count_wins_and_the_setting_is_restored(fresh: None, best: int) -> None:
    x, y = _data()
    model = _net()
    chosen = choose_threads(model, nn.functional.cross_entropy, x[:16], y[:16],
                            clock=_clock_favouring(best))
    assert chosen == best and torch.get_num_threads() == 4


def test_the_probe_leaves_the_model_and_the_random_stream_alone(fresh: None) -> None:
    x, y = _data()
    model = _net()
    hits: list[int] = []
    model.register_forward_hook(lambda *a: hits.append(1))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    choose_threads(model, nn.functional.cross_entropy, x[:16], y[:16])
    assert torch.equal(torch.rand(3), expected)  # dropout in the probe drew from a fork
    assert not hits  # the user's hook never saw a probe step
    assert all(p.grad is None for p in model.parameters())
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])


def test_a_cached_shape_is_not_probed_again(fresh: None, monkeypatch: pytest.MonkeyPatch) -> None:
    x, y = _data()
    calls: list[int] = []
    real = threads_module._probe_copy
    monkeypatch.setattr(threads_module, "_probe_copy", lambda m: calls.append(1) or real(m))
    first = choose_threads(_net(), nn.functional.cross_entropy, x[:16], y[:16])
    again = choose_threads(_net(), nn.functional.cross_entropy, x[:16], y[:16])
    assert calls == [1] and first == again
    choose_threads(_net(), nn.functional.cross_entropy, x[:8], y[:8])  # another batch shape
    assert calls == [1, 1]


def test_fit_trains_at_the_chosen_count_records_it_and_restores(
        fresh: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads_module, "choose_threads", lambda *a, **k: 2)
    seen = _Seen()
    h = fit(_net(), _data(), epochs=2, batch_size=16, seed=0, verbose=0, callbacks=[seen])
    assert seen.counts == [2, 2] and torch.get_num_threads() == 4
    assert (h.params["threads"], h.params["threads_source"]) == (2, "probe")


def test_the_argument_overrides_and_nothing_is_probed(
        fresh: None, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*a: Any, **k: Any) -> int:
        raise AssertionError("probed although threads= was given")

    monkeypatch.setattr(threads_module, "choose_threads", refuse)
    seen = _Seen()
    h = fit(_net(), _data(), epochs=1, batch_size=16, seed=0, verbose=0, callbacks=[seen],
            threads=3)
    assert seen.counts == [3] and torch.get_num_threads() == 4
    assert (h.params["threads"], h.params["threads_source"]) == (3, "argument")


def test_a_count_the_user_set_is_kept(fresh: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads_module, "choose_threads", lambda *a, **k: 1 / 0)
    torch.set_num_threads(3)  # not torch's default (4 here): the user chose it
    assert thread_choice(None, _net(), None, *_data()) == (3, "user")
    torch.set_num_threads(4)
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    assert thread_choice(None, _net(), None, *_data()) == (4, "user")


def test_a_probed_run_equals_a_run_at_that_count_without_probe(fresh: None) -> None:
    """The probe changes nothing but the thread count: same seed, same weights, bit for bit."""
    x, y = _data()
    runs = []
    for threads in (None, "same"):
        torch.manual_seed(0)
        model = _net()
        arg = None if threads is None else runs[0][1].params["threads"]
        h = fit(model, (x, y), epochs=2, batch_size=16, seed=1, verbose=0, threads=arg)
        runs.append((model, h))
    assert runs[0][1].params["threads_source"] == "probe"
    assert runs[0][1]["loss"] == runs[1][1]["loss"]
    for a, b in zip(runs[0][0].parameters(), runs[1][0].parameters(), strict=True):
        assert torch.equal(a, b)


def test_bad_threads_argument_names_the_field() -> None:
    from steadygrad.errors import ConfigError

    with pytest.raises(ConfigError, match="threads"):
        fit(_net(), _data(), epochs=1, threads=0, verbose=0)


def test_a_model_the_probe_cannot_copy_still_trains(fresh: None) -> None:
    class Uncopyable(nn.Linear):
        def __deepcopy__(self, memo: Any) -> Any:
            raise TypeError("cannot copy me")

    h = fit(Uncopyable(6, 3), _data(), epochs=1, batch_size=16, verbose=0)
    assert h.params["threads"] == 4
    assert h.params["threads_source"] == "probe failed: TypeError: cannot copy me"


def test_a_pinned_count_is_kept_even_when_it_equals_the_default(fresh: None) -> None:
    from steadygrad.train.threads import pinned_threads

    with pinned_threads(4):  # the default here: only the pin says a caller chose it
        assert thread_choice(None, _net(), None, *_data()) == (4, "user")
    assert thread_choice(None, _net(), nn.functional.cross_entropy, *_data())[1] == "probe"
