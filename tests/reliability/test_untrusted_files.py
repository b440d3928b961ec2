"""Item 9: untrusted files never execute code, never hang, and always fail with a clear error.

Oracle: a pickle payload whose unpickling would create a canary file; the canary must never
appear. Every malformed input must either load as a valid safetensors mapping or raise
:class:`CheckpointError` / :class:`ConfigError` (never another exception, never a fallback to
``torch.load``/pickle).
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save as st_save

from steadygrad.errors import CheckpointError, ConfigError
from steadygrad.experiments.loader import loads_yaml, read_table
from steadygrad.train.checkpoint import CheckpointManager, load_weights, read_tensors

SRC = Path(__file__).resolve().parents[2] / "src" / "steadygrad"


class _Payload:
    """Unpickling this calls ``open(canary, "w")``: a code-execution proof."""

    def __init__(self, canary: Path) -> None:
        self.canary = str(canary)

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.canary, "w"))


def _valid_bytes() -> bytes:
    return st_save({"weight": torch.arange(6.0).reshape(2, 3), "bias": torch.ones(2)})


def _checked_read(path: Path) -> dict[str, torch.Tensor] | None:
    """read_tensors(path): a valid mapping, or None after a CheckpointError; nothing else."""
    try:
        out = read_tensors(path)
    except CheckpointError as err:
        assert str(path) in str(err)
        return None
    assert all(isinstance(v, torch.Tensor) for v in out.values())
    return out


def test_pickle_payload_would_run_under_an_unsafe_loader(tmp_path: Path) -> None:
    """Positive control: the same payload DOES execute under ``pickle.load`` and under
    ``torch.load(weights_only=False)`` (in a child process, inside ``tmp_path``), so the test
    below proves something when its canary stays absent."""
    for loader in ("import pickle; pickle.loads(open(sys.argv[1], 'rb').read())",
                   "import torch; torch.load(sys.argv[1], weights_only=False)"):
        canary = tmp_path / "canary"
        blob_path = tmp_path / "payload.bin"
        if "torch" in loader:
            torch.save({"x": _Payload(canary)}, blob_path)
        else:
            blob_path.write_bytes(pickle.dumps({"weight": _Payload(canary)}))
        assert not canary.exists()
        subprocess.run([sys.executable, "-c", f"import sys; {loader}", str(blob_path)],
                       cwd=tmp_path, check=True, capture_output=True, timeout=120)
        assert canary.exists(), loader  # the payload ran: it is a real code-execution proof
        canary.unlink()


def test_pickle_payload_never_runs(tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    blob = pickle.dumps({"weight": _Payload(canary)})
    torch_file = tmp_path / "model.pt"
    torch.save({"x": _Payload(canary)}, torch_file)  # a torch.save zip holding the payload
    assert not canary.exists()
    ckpt = tmp_path / "ckpt" / "epoch-0001"
    ckpt.mkdir(parents=True)
    for name in ("model.safetensors", "state.safetensors"):
        (ckpt / name).write_bytes(blob)
    (ckpt / "state.json").write_text(json.dumps({"format": "steadygrad-checkpoint/1",
                                                 "state": {}}))
    for path in (torch_file, ckpt / "model.safetensors"):
        with pytest.raises(CheckpointError, match="not a valid safetensors"):
            read_tensors(path)
        with pytest.raises(CheckpointError):
            load_weights(torch.nn.Linear(3, 2), path)
    with pytest.raises(CheckpointError):
        CheckpointManager(tmp_path / "ckpt").load()
    assert not canary.exists()


def test_no_unsafe_loader_in_library() -> None:
    """No code path can fall back to pickle: the library never calls torch.load or pickle."""
    offenders = []
    for path in SRC.rglob("*.py"):
        text = path.read_text()
        for needle in ("torch.load(", "pickle.load", "pickle.loads", "yaml.load(", "yaml.unsafe"):
            for line in text.splitlines():
                if needle in line and "Loader=_NoAliasSafeLoader" not in line \
                        and not line.lstrip().startswith(("#", ">>>", "``")) \
                        and "not used" not in line:
                    offenders.append(f"{path.relative_to(SRC)}: {line.strip()}")
    assert offenders == []


def test_truncated_random_and_empty_files(tmp_path: Path) -> None:
    good = _valid_bytes()
    p = tmp_path / "w.safetensors"
    for cut in range(0, len(good), 7):
        p.write_bytes(good[:cut])
        assert _checked_read(p) is None, cut
    rng = torch.Generator().manual_seed(0)
    for n in (1, 8, 9, 100, 4096):
        p.write_bytes(bytes(torch.randint(0, 256, (n,), generator=rng).tolist()))
        assert _checked_read(p) is None


def _with_header(header: dict[str, object], body: bytes = b"") -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + body


@pytest.mark.parametrize("blob", [
    struct.pack("<Q", 2**63) + b"{}",  # header length beyond the file
    struct.pack("<Q", 2**40) + b"{}",
    _with_header({"w": {"dtype": "F32", "shape": [2**40, 2**40], "data_offsets": [0, 8]}},
                 b"\0" * 8),
    _with_header({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 2**62]}}, b"\0" * 8),
    _with_header({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, b"\0" * 4),
    _with_header({"w": {"dtype": "PICKLE", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4),
    _with_header({"w": {"dtype": "F32", "shape": [4], "data_offsets": [4, 0]}}, b"\0" * 16),
])
def test_hostile_headers_rejected_without_allocating(tmp_path: Path, blob: bytes) -> None:
    p = tmp_path / "h.safetensors"
    p.write_bytes(blob)
    assert _checked_read(p) is None


def test_mismatched_shapes_and_keys(tmp_path: Path) -> None:
    p = tmp_path / "w.safetensors"
    p.write_bytes(_valid_bytes())  # weight (2, 3), bias (2,)
    with pytest.raises(CheckpointError, match="shape mismatch"):
        load_weights(torch.nn.Linear(4, 2), p)
    with pytest.raises(CheckpointError, match="missing"):
        load_weights(torch.nn.Sequential(torch.nn.Linear(3, 2)), p)


def _fuzz_one(tmp_path: Path, data: bytes) -> None:
    p = tmp_path / "f.safetensors"
    p.write_bytes(data)
    out = _checked_read(p)
    if out is not None:  # a mutation that is still valid must also pass strict loading checks
        with contextlib.suppress(CheckpointError):
            load_weights(torch.nn.Linear(3, 2), out)


_MUTATION = st.tuples(
    st.sampled_from(["flip", "insert", "delete", "truncate", "header"]),
    st.integers(0, 10_000), st.binary(min_size=1, max_size=16),
)


def _mutate(good: bytes, ops: list[tuple[str, int, bytes]]) -> bytes:
    data = bytearray(good)
    for op, pos, chunk in ops:
        i = pos % (len(data) + 1)
        if op == "flip" and data:
            data[i % len(data)] ^= chunk[0] or 1
        elif op == "insert":
            data[i:i] = chunk
        elif op == "delete":
            del data[i:i + len(chunk)]
        elif op == "truncate":
            del data[i:]
        elif op == "header" and len(data) >= 8:  # rewrite the header-length field
            data[:8] = struct.pack("<Q", int.from_bytes(chunk[:8].ljust(8, b"\0"), "little"))
    return bytes(data)


def _fuzz_settings(n: int) -> settings:
    return settings(max_examples=n, deadline=2000, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@_fuzz_settings(200)
@given(ops=st.lists(_MUTATION, min_size=1, max_size=4))
def test_fuzzed_safetensors_fast(tmp_path: Path, ops: list[tuple[str, int, bytes]]) -> None:
    _fuzz_one(tmp_path, _mutate(_valid_bytes(), ops))


@pytest.mark.slow
@_fuzz_settings(10_000)
@given(ops=st.lists(_MUTATION, min_size=1, max_size=4))
def test_fuzzed_safetensors_full(tmp_path: Path, ops: list[tuple[str, int, bytes]]) -> None:
    _fuzz_one(tmp_path, _mutate(_valid_bytes(), ops))


def _fuzz_state_json(tmp_path: Path, structure: object) -> None:
    """A checkpoint whose state.json is arbitrary JSON: loads or raises CheckpointError."""
    d = tmp_path / "ck"
    ck = d / "epoch-0001"
    ck.mkdir(parents=True, exist_ok=True)
    (ck / "model.safetensors").write_bytes(_valid_bytes())
    (ck / "state.safetensors").write_bytes(st_save({"t0": torch.ones(1)}))
    (ck / "state.json").write_text(json.dumps({"format": "steadygrad-checkpoint/1",
                                               "state": structure}))
    with contextlib.suppress(CheckpointError):
        CheckpointManager(d).load()


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5)
    | st.sampled_from(["__tensor__", "__tuple__", "__dict__", "t0", "t9"]),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.sampled_from(["__tensor__", "__tuple__", "__dict__", "a"]), inner,
                      max_size=2),
    max_leaves=8,
)


@pytest.mark.parametrize("structure", [{"__dict__": 5}, {"__tuple__": 3}, {"__dict__": [[1]]},
                                       {"__tensor__": ["t0"]}])
def test_malformed_state_json(tmp_path: Path, structure: object) -> None:
    _fuzz_state_json(tmp_path, structure)


@_fuzz_settings(200)
@given(structure=_JSON)
def test_fuzzed_state_json(tmp_path: Path, structure: object) -> None:
    """Arbitrary JSON structures (malformed tag payloads included) load or fail with
    CheckpointError, never another exception."""
    _fuzz_state_json(tmp_path, structure)


YAML_ATTACKS = [
    "a: !!python/object/apply:os.system ['touch CANARY']",
    "a: !!python/object/new:os.system ['touch CANARY']",
    "a: !!python/name:os.system",
    "!!python/object/apply:subprocess.check_output [['touch', 'CANARY']]",
    'a: &a ["x","x","x","x"]\nb: &b [*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b]\nd: [*c,*c,*c,*c]\n',
    "base: &b {x: 1}\nother: *b\n",
]


@pytest.mark.parametrize("text", YAML_ATTACKS)
def test_yaml_tags_and_alias_bombs_rejected(tmp_path: Path, text: str,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        loads_yaml(text)
    assert info.value.path == "yaml" and info.value.expected
    p = tmp_path / "c.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError):
        read_table(p)
    assert not (tmp_path / "CANARY").exists()
    assert os.listdir(tmp_path) == ["c.yaml"]
