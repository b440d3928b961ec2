"""Checkpoints without pickle: safetensors for tensors, JSON for structure, atomic writes.

A checkpoint is a directory ``<dir>/epoch-0003/`` holding ``model.safetensors`` (the model's
``state_dict``), ``state.safetensors`` (every other tensor: optimizer moments, RNG states, ...)
and ``state.json`` (the structure, with ``{"__tensor__": key}`` where a tensor goes). It is
written into a temporary ``.tmp-*`` directory beside its final place, each file fsync'ed, then
moved into place with :func:`os.replace`; only after that does the ``latest`` pointer change
(itself written atomically). A crash at any point leaves the previous checkpoint and pointer
intact; the leftover ``.tmp-*`` entries are removed by the next :class:`CheckpointManager`.
Reading never unpickles (``torch.load`` is not used): a file that is not valid safetensors
raises :class:`~steadygrad.errors.CheckpointError`.

Example:
    >>> import tempfile, torch
    >>> d = tempfile.mkdtemp()
    >>> model = torch.nn.Linear(2, 1)
    >>> manager = CheckpointManager(d)
    >>> path = manager.save("epoch-0001", model, state={"epoch": 1, "note": (1, 2.5)})
    >>> ckpt = manager.load()
    >>> ckpt.state["epoch"], ckpt.state["note"], ckpt.path.name
    (1, (1, 2.5), 'epoch-0001')
    >>> bool(torch.equal(ckpt.model_state["weight"], model.weight))
    True
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

from steadygrad import _atomic
from steadygrad.errors import CheckpointError

__all__ = [
    "Checkpoint",
    "CheckpointManager",
    "atomic_write_bytes",
    "check_resume_state",
    "is_finite_model",
    "load_weights",
    "pack",
    "read_tensors",
    "save_weights",
    "unpack",
]

FORMAT = "steadygrad-checkpoint/1"
TMP_PREFIX = ".tmp-"


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :mod:`steadygrad._atomic`).

    The temporary file carries :data:`TMP_PREFIX`, so :meth:`CheckpointManager.cleanup`
    recognizes and removes the leftover of an interrupted write.

    >>> import tempfile; p = Path(tempfile.mkdtemp()) / "x.txt"
    >>> atomic_write_bytes(p, b"hi"); p.read_bytes()
    b'hi'
    """
    _atomic.atomic_write_bytes(path, data, prefix=f"{TMP_PREFIX}{Path(path).name}.")


def _to_storable(t: torch.Tensor) -> torch.Tensor:
    # A fresh contiguous CPU copy: safetensors refuses shared or non-contiguous storage.
    return t.detach().to("cpu", copy=True).contiguous()


def pack(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """JSON-able structure of ``obj`` with its tensors moved into ``tensors``.

    Dicts with non-string keys, tuples and tensors are tagged so :func:`unpack` rebuilds them.

    >>> tensors = {}
    >>> pack({"step": torch.tensor(3.0), 0: (1, None)}, tensors)
    {'__dict__': [['step', {'__tensor__': 't0'}], [0, {'__tuple__': [1, None]}]]}
    """
    if isinstance(obj, torch.Tensor):
        key = f"t{len(tensors)}"
        tensors[key] = _to_storable(obj)
        return {"__tensor__": key}
    if isinstance(obj, Mapping):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: pack(v, tensors) for k, v in obj.items()}
        return {"__dict__": [[pack(k, tensors), pack(v, tensors)] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"__tuple__": [pack(v, tensors) for v in obj]}
    if isinstance(obj, list):
        return [pack(v, tensors) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return obj.item()
    raise CheckpointError(
        f"cannot store a {type(obj).__name__} in a checkpoint; state must be made of tensors, "
        "numbers, strings, None, lists, tuples and dicts"
    )


def unpack(obj: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    """Inverse of :func:`pack`.

    >>> t = {}; unpack(pack({1: (2, torch.ones(1))}, t), t)
    {1: (2, tensor([1.]))}
    """
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            try:
                return tensors[obj["__tensor__"]]
            except KeyError:
                key = obj["__tensor__"]
                raise CheckpointError(f"tensor {key!r} missing from checkpoint") from None
        if "__tuple__" in obj:
            return tuple(unpack(v, tensors) for v in obj["__tuple__"])
        if "__dict__" in obj:
            return {unpack(k, tensors): unpack(v, tensors) for k, v in obj["__dict__"]}
        return {k: unpack(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [unpack(v, tensors) for v in obj]
    return obj


def read_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """Load a safetensors file; anything else raises :class:`CheckpointError` (never unpickles).

    >>> import tempfile; p = Path(tempfile.mkdtemp()) / "bad.safetensors"
    >>> _ = p.write_bytes(b"not safetensors")
    >>> read_tensors(p)
    Traceback (most recent call last):
    ...
    steadygrad.errors.CheckpointError: ... is not a valid safetensors file ...
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise CheckpointError(f"cannot read {path}: {e}") from e
    try:
        return st_load(data)
    except Exception as e:
        raise CheckpointError(
            f"{path} is not a valid safetensors file ({type(e).__name__}: {e}); steadygrad "
            "stores weights only as safetensors and never unpickles files"
        ) from e


def save_weights(model: nn.Module, path: str | Path) -> None:
    """Save ``model.state_dict()`` (parameters and buffers) as safetensors, atomically.

    >>> import tempfile; p = Path(tempfile.mkdtemp()) / "w.safetensors"
    >>> m = torch.nn.Linear(2, 2); save_weights(m, p); load_weights(torch.nn.Linear(2, 2), p)
    """
    state = {k: _to_storable(v) for k, v in model.state_dict().items()}
    atomic_write_bytes(path, st_save(state, metadata={"format": FORMAT}))


def load_weights(model: nn.Module, path: str | Path | Mapping[str, torch.Tensor]) -> None:
    """Copy weights from a safetensors file (or a loaded mapping) into ``model``, strictly.

    Missing or unexpected keys and shape mismatches raise :class:`CheckpointError`.

    >>> a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    >>> load_weights(b, a.state_dict()); bool(torch.equal(a.weight, b.weight))
    True
    """
    state = read_tensors(path) if isinstance(path, (str, Path)) else dict(path)
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = [k for k in own if k in state and own[k].shape != state[k].shape]
    kind = [k for k in own if k in state
            and own[k].is_floating_point() != state[k].is_floating_point()]
    if missing or unexpected or wrong or kind:
        raise CheckpointError(
            f"weights do not match the model: missing {missing}, unexpected {unexpected}, "
            f"shape mismatch {[(k, tuple(own[k].shape), tuple(state[k].shape)) for k in wrong]}"
            + (f", dtype mismatch {[(k, own[k].dtype, state[k].dtype) for k in kind]}"
               if kind else "")
        )
    with torch.no_grad():
        for k, v in own.items():
            v.copy_(state[k])


_PARTIAL_KEYS = ("shuffle", "loss_sum", "pen_sum", "norm_sum", "norm_count", "skipped", "seen",
                 "begin", "checked", "outs", "targets")


def check_resume_state(state: Any, path: str | Path, epochs: int | None = None) -> None:
    """Validate the training state of a checkpoint before anything is restored from it.

    A checkpoint is read back from disk, so it is untrusted: each field ``fit`` needs is
    checked for presence and type, counters for range (``0 <= epoch <= epochs``).

    Raises:
        CheckpointError: naming the checkpoint, the field, what was found and what is allowed.

    >>> check_resume_state({"epoch": -5}, "ck/epoch-0001")
    Traceback (most recent call last):
    ...
    steadygrad.errors.CheckpointError: ck/epoch-0001: state.epoch is -5; expected an integer >= 0
    """

    def bad(field: str, value: Any, expected: str) -> CheckpointError:
        shown = repr(value) if len(repr(value)) < 80 else f"a {type(value).__name__}"
        return CheckpointError(f"{path}: state.{field} is {shown}; expected {expected}")

    def count(container: Mapping[str, Any], field: str, prefix: str = "") -> int:
        value = container.get(field)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise bad(prefix + field, value, "an integer >= 0")
        return value

    if not isinstance(state, Mapping):
        raise CheckpointError(f"{path}: state is a {type(state).__name__}; expected a table")
    epoch = count(state, "epoch")
    if epochs is not None and epoch > epochs:
        raise bad("epoch", epoch, f"at most epochs={epochs} (this run's length)")
    count(state, "global_step")
    optimizer = state.get("optimizer")
    if not isinstance(optimizer, Mapping) or not isinstance(optimizer.get("state"), Mapping) \
            or not isinstance(optimizer.get("param_groups"), list) \
            or not all(isinstance(g, Mapping) for g in optimizer["param_groups"]):
        raise bad("optimizer", optimizer, "an optimizer state_dict (state, param_groups)")
    history = state.get("history")
    if not isinstance(history, Mapping) or not isinstance(history.get("history"), Mapping) \
            or not isinstance(history.get("epoch"), list) \
            or not all(isinstance(v, list) for v in history["history"].values()):
        raise bad("history", history, "a History state_dict (history, epoch)")
    rng = state.get("rng")
    if not isinstance(rng, Mapping) or not all(isinstance(v, torch.Tensor) for v in rng.values()):
        raise bad("rng", rng, "a table of RNG state tensors")
    for field in ("config", "plateau"):
        if state.get(field) is not None and not isinstance(state[field], Mapping):
            raise bad(field, state[field], "a table")
    partial = state.get("partial")
    if partial is None:
        return
    if not isinstance(partial, Mapping) or any(k not in partial for k in _PARTIAL_KEYS):
        raise bad("partial", partial, f"None or a table with {', '.join(_PARTIAL_KEYS)}")
    if not isinstance(partial["shuffle"], torch.Tensor):
        raise bad("partial.shuffle", partial["shuffle"], "a tensor")
    for key in ("norm_count", "skipped", "seen", "begin", "checked"):
        count(partial, key, "partial.")
    for key in ("outs", "targets"):
        if not isinstance(partial[key], list):
            raise bad(f"partial.{key}", partial[key], "a list of tensors")


def is_finite_model(model: nn.Module) -> bool:
    """True when every floating-point parameter and buffer is finite.

    >>> is_finite_model(torch.nn.Linear(2, 2))
    True
    """
    return all(
        bool(torch.isfinite(t).all()) for t in model.state_dict().values() if t.is_floating_point()
    )


def _plain_name(name: Any) -> bool:
    """A single, ordinary entry name: no separator, not ``.``/``..``, not hidden."""
    return (isinstance(name, str) and bool(name) and "/" not in name and "\\" not in name
            and "\0" not in name and not name.startswith("."))


@dataclass
class Checkpoint:
    """A loaded checkpoint: the model's tensors and the unpacked state (incl. ``optimizer``).

    >>> Checkpoint(Path("epoch-0001"), {}, {"epoch": 1}).state["epoch"]
    1
    """

    path: Path
    model_state: dict[str, torch.Tensor]
    state: dict[str, Any]


class CheckpointManager:
    """Writes, finds and reads checkpoints in one directory; keeps the newest ``keep``.

    Creating a manager removes ``.tmp-*`` leftovers of an interrupted save.

    Args:
        directory: where checkpoints live (created when missing).
        keep: how many checkpoints to keep (older ones are deleted after a successful save).

    >>> import tempfile
    >>> m = CheckpointManager(tempfile.mkdtemp(), keep=1)
    >>> for e in (1, 2):
    ...     _ = m.save(f"epoch-{e:04d}", torch.nn.Linear(1, 1), state={"epoch": e})
    >>> [p.name for p in m.checkpoints()], m.latest().name
    (['epoch-0002'], 'epoch-0002')
    """

    def __init__(self, directory: str | Path, keep: int = 2) -> None:
        if keep < 1:
            raise CheckpointError(f"keep: got {keep}; expected at least 1")
        self.directory = Path(directory)
        self.keep = keep
        self.directory.mkdir(parents=True, exist_ok=True)
        self.cleanup()

    def cleanup(self) -> list[Path]:
        """Remove leftovers of interrupted writes; returns what was removed."""
        removed = []
        for p in self.directory.iterdir():
            original = self.directory / p.name.removeprefix(f"{TMP_PREFIX}old-")
            if p.name.startswith(f"{TMP_PREFIX}old-") and not original.exists():
                p.rename(original)  # the crash came between moving the old one and the new one
            elif p.name.startswith(TMP_PREFIX):
                shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
                removed.append(p)
        return removed

    def _inside(self, path: Path) -> bool:
        """Whether ``path`` resolves (symlinks followed) to an entry of this directory."""
        try:
            return path.resolve().parent == self.directory.resolve()
        except (OSError, RuntimeError):
            return False

    def checkpoints(self) -> list[Path]:
        """Complete checkpoint directories, oldest first (symlinks leaving the directory are
        not checkpoints)."""
        return sorted(
            p for p in self.directory.iterdir()
            if p.is_dir() and not p.name.startswith(TMP_PREFIX) and (p / "state.json").is_file()
            and self._inside(p)
        )

    def latest(self) -> Path | None:
        """The checkpoint the ``latest`` pointer names (or the newest complete one), or None.

        The pointer is untrusted: only a plain entry name of this directory is followed (no
        ``/``, no ``..``, no absolute path, no symlink out of the directory).
        """
        pointer = self.directory / "latest"
        if pointer.is_file():
            try:
                name = json.loads(pointer.read_text(encoding="utf-8"))["checkpoint"]
                if _plain_name(name) and self._inside(self.directory / name) and (
                        self.directory / name / "state.json").is_file():
                    return self.directory / name
            except (ValueError, KeyError, TypeError, OSError):
                pass
        found = self.checkpoints()
        return found[-1] if found else None

    def save(
        self,
        name: str,
        model: nn.Module,
        optimizer: torch.optim.Optimizer | None = None,
        state: Mapping[str, Any] | None = None,
    ) -> Path | None:
        """Write checkpoint ``name`` atomically and point ``latest`` at it.

        A model with a non-finite parameter or buffer is not saved (a warning says so, and
        None is returned), so a diverged state never replaces a good checkpoint.
        """
        if not is_finite_model(model):
            warnings.warn(
                f"checkpoint {name!r} not written: the model has non-finite values",
                RuntimeWarning,
                stacklevel=2,
            )
            return None
        tensors: dict[str, torch.Tensor] = {}
        full = dict(state or {})
        if optimizer is not None:
            full["optimizer"] = optimizer.state_dict()
        structure = {"format": FORMAT, "state": pack(full, tensors)}
        weights = {k: _to_storable(v) for k, v in model.state_dict().items()}
        final = self.directory / name
        tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{name}.", dir=self.directory))
        try:
            for fname, payload in (
                ("model.safetensors", st_save(weights, metadata={"format": FORMAT})),
                ("state.safetensors", st_save(tensors, metadata={"format": FORMAT})),
                ("state.json", json.dumps(structure).encode()),
            ):
                with open(tmp / fname, "wb") as f:
                    f.write(payload)
                    f.flush()
                    os.fsync(f.fileno())
            _atomic.fsync_dir(tmp)
            if final.exists():
                old = final.rename(self.directory / f"{TMP_PREFIX}old-{name}")
                os.replace(tmp, final)
                shutil.rmtree(old)
            else:
                os.replace(tmp, final)
            _atomic.fsync_dir(self.directory)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        atomic_write_bytes(self.directory / "latest", json.dumps({"checkpoint": name}).encode())
        for old_ckpt in self.checkpoints()[: -self.keep]:
            if old_ckpt != final:
                # rename first: a kill mid-delete must not leave a half-deleted checkpoint
                # under its final name (cleanup() removes TMP_PREFIX leftovers next start)
                doomed = old_ckpt.rename(self.directory / f"{TMP_PREFIX}del-{old_ckpt.name}")
                shutil.rmtree(doomed, ignore_errors=True)
        return final

    def load(self, path: str | Path | None = None) -> Checkpoint:
        """Read a checkpoint (default: :meth:`latest`); raises :class:`CheckpointError`."""
        target = Path(path) if path is not None else self.latest()
        if target is None:
            raise CheckpointError(f"no checkpoint in {self.directory}")
        if not self._inside(target):
            raise CheckpointError(f"{target} is not a checkpoint of {self.directory} (it "
                                  "resolves outside it); checkpoints are read only from there")
        try:
            structure = json.loads((target / "state.json").read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as e:
            raise CheckpointError(f"{target}/state.json is missing or not valid JSON: {e}") from e
        if not isinstance(structure, dict) or structure.get("format") != FORMAT:
            raise CheckpointError(f"{target} is not a {FORMAT} checkpoint")
        tensors = read_tensors(target / "state.safetensors")
        try:
            state = unpack(structure["state"], tensors)
        except (TypeError, ValueError, AttributeError, KeyError, RecursionError) as e:
            raise CheckpointError(
                f"{target}/state.json has a malformed structure ({type(e).__name__}: {e})"
            ) from e
        return Checkpoint(target, read_tensors(target / "model.safetensors"), state)
