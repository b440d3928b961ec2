"""``steadygrad summary``: a Keras-style table of a model's layers and parameter counts.

Example:
    >>> from steadygrad.cli.main import main
    >>> main(["summary", "book_bn", "--json"])  # doctest: +ELLIPSIS
    {"model_name": "Sequential", ...}
    0
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from steadygrad.nn.summary import summary
from steadygrad.nn.zoo import EXAMPLE_MODELS, example_model

__all__ = ["add_parser", "run"]

_EXAMPLES = """examples:
  steadygrad summary                 # the book's batch-norm MLP
  steadygrad summary deep_sigmoid    # the deep sigmoid net that fails to learn
  steadygrad summary book_bn --json  # machine-readable
"""


def add_parser(sub: Any) -> None:
    """Register the ``summary`` subcommand."""
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
        help=f"example model: one of {', '.join(EXAMPLE_MODELS.names())} (default: book_bn)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for the weights (default 0)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the model, summarize it and print the result."""
    model, input_shape = example_model(args.model, seed=args.seed)
    result = summary(model, input_shape)
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        print(result)
    return 0
