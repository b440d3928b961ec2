"""Tests of steadygrad._registry.Registry: names, aliases, errors, pass-through."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from steadygrad._registry import Registry, normalize_name
from steadygrad.errors import ConfigError, UnknownNameError


def make() -> Registry[object]:
    reg: Registry[object] = Registry("initializer")
    reg.add("he_normal", "HE", "kaiming_normal")
    reg.add("glorot_uniform", "GLOROT", "xavier_uniform")
    reg.add("zeros", "ZEROS")
    return reg


def test_register_decorator_returns_object_and_aliases_resolve() -> None:
    reg: Registry[Callable[[], str]] = Registry("activation")

    @reg.register("swish", "silu")
    def make_swish() -> str:
        return "swish"

    assert make_swish() == "swish"  # the decorator returns the function itself
    assert reg.get("silu") is make_swish
    assert reg.get("swish") is make_swish
    assert reg.canonical("SiLU") == "swish"
    assert reg.names() == ["swish"]
    assert reg.all_names() == ["silu", "swish"]


def test_case_hyphen_and_space_insensitive() -> None:
    reg = make()
    for spelling in ["he_normal", "He-Normal", "HE_NORMAL", " he normal ", "Kaiming-Normal"]:
        assert reg.get(spelling) == "HE", spelling
        assert spelling in reg
    assert normalize_name(" Leaky-ReLU ") == "leaky_relu"


def test_unknown_name_lists_choices_and_close_match() -> None:
    reg = make()
    with pytest.raises(UnknownNameError) as info:
        reg.get("he_normall")
    err = info.value
    assert isinstance(err, ConfigError) and isinstance(err, KeyError)
    assert err.path == "initializer" and err.received == "he_normall"
    assert str(err) == (
        "initializer: got 'he_normall'; expected one of glorot_uniform, he_normal, zeros; "
        "did you mean 'he_normal'?"
    )


def test_close_match_through_alias_names_the_canonical() -> None:
    with pytest.raises(UnknownNameError, match=r"did you mean 'glorot_uniform'\?"):
        make().get("xavier_unifrom")


def test_no_suggestion_for_a_distant_name() -> None:
    with pytest.raises(UnknownNameError) as info:
        make().get("adamw")
    assert "did you mean" not in str(info.value)
    assert "expected one of glorot_uniform, he_normal, zeros" in str(info.value)


@pytest.mark.parametrize(
    ("name", "aliases"),
    [
        ("he_normal", ()),  # same name
        ("He-Normal", ()),  # same name after normalization
        ("lecun_normal", ("kaiming_normal",)),  # alias collides with an alias
        ("kaiming_normal", ()),  # name collides with an alias
        ("lecun_uniform", ("zeros",)),  # alias collides with a name
    ],
)
def test_duplicate_registration_rejected(name: str, aliases: tuple[str, ...]) -> None:
    reg = make()
    with pytest.raises(ValueError, match="already registered"):
        reg.add(name, "NEW", *aliases)
    assert reg.get("he_normal") == "HE"  # the original stays


def test_rejected_registration_leaves_registry_unchanged() -> None:
    reg = make()
    with pytest.raises(ValueError):
        reg.add("lecun_normal", "NEW", "zeros")
    assert "lecun_normal" not in reg
    assert reg.all_names() == make().all_names()


def test_get_passes_non_strings_through() -> None:
    reg = make()

    def custom_initializer() -> None:
        return None

    instance = object()
    assert reg.get(custom_initializer) is custom_initializer
    assert reg.get(instance) is instance


def test_canonical_rejects_non_strings() -> None:
    with pytest.raises(ConfigError, match=r"^initializer: got 3; expected a name \(str\)"):
        make().canonical(3)  # type: ignore[arg-type]


def test_container_protocol() -> None:
    reg = make()
    assert len(reg) == 3
    assert list(reg) == ["glorot_uniform", "he_normal", "zeros"]
    assert 3 not in reg and "ones" not in reg
    assert "he_normal" in repr(reg)
