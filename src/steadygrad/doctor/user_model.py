"""The doctor on the user's own model: a factory (callable or ``module:function``) + data -> config.

``sg.doctor(model_fn, data)`` runs the same diagnose -> trials -> proof loop as a config file,
because it *is* a config: ``[model] factory`` names ``model_fn`` (:func:`steadygrad.nn.factory
.factory_spec`), ``[data]`` names the data (a registered dataset name or table as is; an
in-memory :class:`~steadygrad.data.Dataset` is saved, already split and standardized, as
``data.npz`` in the doctor's output folder and read back with the ``npz`` loader, so every trial
sees exactly the user's split), and ``[train]`` is the training setup.

Example:
    >>> from steadygrad.nn.factory import example_factory
    >>> cfg = factory_config(example_factory, "digits", None, {"epochs": 2}, {"hidden": 8})
    >>> cfg.model.factory, cfg.model.kwargs, cfg.data.name, cfg.train.epochs
    ('steadygrad.nn.factory:example_factory', {'hidden': 8}, 'digits', 2)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from steadygrad.errors import ConfigError
from steadygrad.experiments.config import RunConfig, config_from_dict

__all__ = ["factory_config", "is_factory", "save_dataset"]


def is_factory(value: Any) -> bool:
    """A callable (not a config) or a ``module:function`` string.

    >>> is_factory("pkg.nets:make"), is_factory(len), is_factory(RunConfig())
    (True, True, False)
    """
    return (callable(value) and not isinstance(value, RunConfig)) or (
        isinstance(value, str) and ":" in value)


def save_dataset(data: Any, path: Path) -> dict[str, Any]:
    """Write a :class:`~steadygrad.data.Dataset`'s splits to ``path`` (``.npz``); returns the
    ``[data]`` table that loads them back unchanged (``standardize = false``)."""
    import numpy as np

    arrays = {"x_train": data.x_train, "y_train": data.y_train, "x_val": data.x_val,
              "y_val": data.y_val}
    if getattr(data, "x_test", None) is not None:
        arrays.update(x_test=data.x_test, y_test=data.y_test)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{k: v.detach().cpu().numpy() for k, v in arrays.items()})
    table: dict[str, Any] = {"name": "npz", "path": str(path), "standardize": False,
                             "task": data.task}
    if data.num_classes is not None:
        table["num_classes"] = int(data.num_classes)
    return table


def _data_table(data: Any, out: Path | None) -> dict[str, Any]:
    from steadygrad.data.dataset import Dataset

    if isinstance(data, str):
        return {"name": data}
    if isinstance(data, Mapping):
        return dict(data)
    if isinstance(data, Dataset):
        if out is None:
            raise ConfigError("data", "Dataset", "an output folder to save it in")
        return save_dataset(data, out / "data.npz")
    raise ConfigError("data", type(data).__name__,
                      "a steadygrad Dataset, a registered dataset name or a [data] table",
                      hint="e.g. sg.data.load('digits') or 'digits'")


def factory_config(model_fn: Callable[..., Any] | str, data: Any, out: Path | None,
                   train: Mapping[str, Any] | None = None,
                   kwargs: Mapping[str, Any] | None = None, name: str | None = None,
                   diagnostics: Mapping[str, Any] | None = None) -> RunConfig:
    """The run config of a factory: ``[model] factory`` + ``factory_kwargs``, ``[data]``,
    ``[train]`` (``fit``'s settings: epochs, batch_size, optimizer, schedule...) and
    ``[diagnostics]``.

    Raises:
        ConfigError: a bad factory, data or train table (named by its config path).
    """
    from steadygrad.nn.factory import check_spec, factory_spec

    spec = check_spec(model_fn) if isinstance(model_fn, str) else factory_spec(model_fn)
    if name is None:
        name = spec.rsplit(":", 1)[1].rsplit(".", 1)[-1]
    table = {"name": name, "data": _data_table(data, out),
             "model": {"factory": spec, "factory_kwargs": dict(kwargs or {})},
             "train": dict(train or {}), "diagnostics": dict(diagnostics or {})}
    return config_from_dict(table)
