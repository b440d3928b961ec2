"""``steadygrad summary``: a Keras-style table of a model's layers and parameter counts.

The argument is an example model's name or a run config file (``.toml``, ``.yaml``/``.yml``,
``.json``; ``--set`` overrides apply): the config's model is built for its dataset's input
shape and classes, exactly as ``steadygrad train`` builds it. The built-in datasets (digits,
Fashion-MNIST, MNIST) are not loaded: their shapes are known.

Example:
    >>> from steadygrad.cli.main import main
    >>> main(["summary", "book_bn", "--json"])  # doctest: +ELLIPSIS
    {"model_name": "Sequential", ...}
    0
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from steadygrad.errors import ConfigError
from steadygrad.nn.summary import summary
from steadygrad.nn.zoo import EXAMPLE_MODELS, example_model

__all__ = ["add_parser", "run"]

_EXAMPLES = """examples:
  steadygrad summary                 # the book's batch-norm MLP
  steadygrad summary deep_sigmoid    # the deep sigmoid net that fails to learn
  steadygrad summary book_bn --json  # machine-readable
  steadygrad summary run.toml --set model.batch_norm=before   # the model of a run config
"""

_CONFIG_SUFFIXES = (".toml", ".yaml", ".yml", ".json")

# The built-in image datasets' (C, H, W) and classes: a summary needs no data (issue 18);
# files (npz, csv) are read, since only they know their shape; synthetic sets are generated.
_KNOWN = {
    "digits": ((1, 8, 8), 10),
    "fashion_mnist": ((1, 28, 28), 10),
    "mnist": ((1, 28, 28), 10),
}


def _shape_only(name: str, shape: str = "default") -> SimpleNamespace | None:
    """A stand-in for a built-in dataset with its shape and classes, without loading it.

    ``shape`` is the loader's option (:mod:`steadygrad.data.shape`): ``"default"`` (digits
    ``(64,)``, the 28x28 sets ``(28, 28)``, as loaded), ``"flat"`` or ``"image"``.

    >>> _shape_only("fmnist").input_shape, _shape_only("csv") is None
    ((28, 28), True)
    >>> _shape_only("digits").input_shape, _shape_only("digits", "image").input_shape
    ((64,), (1, 8, 8))
    """
    from steadygrad.data.datasets import DATASETS

    canonical = DATASETS.canonical(name)
    known = _KNOWN.get(canonical)
    if known is None:
        return None
    (c, h, w), classes = known
    if shape == "image":
        input_shape: tuple[int, ...] = (c, h, w)
    elif shape == "flat" or canonical == "digits":
        input_shape = (c * h * w,)
    else:
        input_shape = (h, w)
    return SimpleNamespace(input_shape=input_shape, task="multiclass", num_classes=classes)


def add_parser(sub: Any) -> None:
    """Register the ``summary`` subcommand.

    Example:
        >>> import argparse
        >>> sub = argparse.ArgumentParser(prog="steadygrad").add_subparsers()
        >>> add_parser(sub)
        >>> args = sub.choices["summary"].parse_args([])
        >>> args.model, args.seed, args.json, args.func is run
        ('book_bn', 0, False, True)
    """
    parser = sub.add_parser(
        "summary",
        help="print a Keras-style summary of a model",
        description="Print layers, output shapes and parameter counts (trainable and "
        "non-trainable; batch-norm running statistics count as non-trainable, as in Keras).",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "model",
        nargs="?",
        default="book_bn",
        metavar="CONFIG|EXAMPLE",
        help="a run config file, or an example model: one of "
        f"{', '.join(EXAMPLE_MODELS.names())} (default: book_bn)",
    )
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="with a CONFIG: override one config key (repeatable), e.g. --set model.hidden=[64]",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for the weights (default 0)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the model, summarize it and print the result.

    Example:
        >>> import contextlib, io, json
        >>> from steadygrad.cli.main import build_parser
        >>> parser = build_parser()
        >>> buf = io.StringIO()
        >>> with contextlib.redirect_stdout(buf):
        ...     code = run(parser.parse_args(["summary", "book_bn", "--json"]))
        >>> code, json.loads(buf.getvalue())["model_name"]
        (0, 'Sequential')
        >>> run(parser.parse_args(["summary", "book_bn", "--set", "model.hidden=[4]"]))
        Traceback (most recent call last):
        ...
        steadygrad.errors.ConfigError: --set: got 'model.hidden=[4]'; expected a CONFIG file ...
    """
    if Path(args.model).suffix.lower() in _CONFIG_SUFFIXES:
        from steadygrad.experiments.execute import build_model, load_data
        from steadygrad.experiments.loader import load_config

        config = load_config(args.model, args.overrides)
        data = _shape_only(config.data.name, config.data.kwargs.get("shape", "default"))
        if data is None or getattr(config.model, "vocab", None) is not None:
            data = load_data(config)  # files know their shape; token models check vocab
        result = summary(build_model(config, data), tuple(data.input_shape))
    else:
        if args.overrides:
            raise ConfigError("--set", args.overrides[0], "a CONFIG file argument to override",
                              hint="--set applies to run config files, not example models")
        model, input_shape = example_model(args.model, seed=args.seed)
        result = summary(model, input_shape)
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        print(result)
    return 0
