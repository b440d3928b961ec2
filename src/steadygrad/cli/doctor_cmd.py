"""``steadygrad doctor``: diagnose a training setup, then prove the fix with controlled trials.

Without CONFIG it runs the built-in failing network (10 sigmoid layers with N(0, 1) weights,
:func:`steadygrad.doctor.core.example_config`) on the embedded digits data, offline, together
with its healthy reference (ELU + He) and prints the best remedy's share of the reference's
accuracy. ``--data fashion_mnist`` runs the same example on a Fashion-MNIST subset when the
dataset files are available. ``--example NAME`` runs a built-in failing model of another
architecture family (``cnn``, ``resnet``, ``rnn``, ``transformer``, or ``mlp`` as a factory;
:mod:`steadygrad.doctor.examples`), written as a plain-PyTorch model factory, with its healthy
reference. A CONFIG whose ``[model] factory = "package.module:function"`` runs the user's own
model; its remedies are model rewrites and training changes. Progress lines go to stderr on a
terminal only.

``--backend ray`` runs each round of trials as a sweep on Ray, through the execution path of
``steadygrad sweep --backend ray`` (``--address`` joins a cluster, e.g. ``auto``; without it a
local Ray instance starts; ``--workers`` Ray tasks at once, each with ``--threads`` torch
threads); the result is the same as with the local backend for the same seeds. On several
machines ``--out`` must be on a filesystem every node sees at the same path, and a model
factory must be importable there.

Exit codes: 0 healthy or repaired, 1 problems found but no candidate succeeded, 2 bad input.

Example:
    >>> import argparse
    >>> sub = argparse.ArgumentParser(prog="steadygrad").add_subparsers()
    >>> add_parser(sub)
    >>> args = sub.choices["doctor"].parse_args(["--seeds", "2", "--steps", "50"])
    >>> args.config, args.seeds, args.steps, args.max_trials, args.example
    (None, 2, 50, 10, None)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from steadygrad.cli._common import int_at_least, make_parser, print_json, show_progress
from steadygrad.errors import ConfigError

__all__ = ["add_parser", "default_out", "run"]

_EXAMPLES = """
  steadygrad doctor                          # built-in deep sigmoid net on digits (~1 min)
  steadygrad doctor --data fashion_mnist     # the same on a Fashion-MNIST subset
  steadygrad doctor --example cnn            # built-in failing CNN (also resnet, rnn,
                                             # transformer, mlp), as plain-PyTorch factories
  steadygrad doctor run.toml --steps 300 --seeds 3 --out doctor/run
  steadygrad doctor run.toml --reference healthy.toml --json > doctor.json
  steadygrad doctor --backend ray            # the trials on a local Ray instance
  steadygrad doctor run.toml --backend ray --address auto --workers 16   # on a Ray cluster

exit codes: 0 healthy or repaired, 1 no candidate succeeded, 2 bad input
"""


def add_parser(sub: Any) -> None:
    """Register the ``doctor`` subcommand.

    Example:
        >>> import argparse
        >>> sub = argparse.ArgumentParser(prog="steadygrad").add_subparsers()
        >>> add_parser(sub)
        >>> args = sub.choices["doctor"].parse_args(["run.toml", "--max-trials", "0",
        ...                                           "--set", "train.epochs=2"])
        >>> args.config, args.max_trials, args.overrides, args.threads, args.func is run
        ('run.toml', 0, ['train.epochs=2'], 1, True)
    """
    parser = make_parser(
        sub, "doctor", help="diagnose a setup and run the trials that show which fix works",
        description="Run the config under the gradient monitor; for every finding, try the "
        "toolbox remedies as short controlled trials (same data split, seeds and budget), "
        "rank them, write repaired.toml and a report. Without CONFIG: a built-in deep network "
        "that fails to learn.",
        examples=_EXAMPLES,
    )
    parser.add_argument("config", metavar="CONFIG", nargs="?", default=None,
                        help="run config file (.toml/.yaml/.json); omit for the built-in example")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override one config key (repeatable)")
    parser.add_argument("--data", default=None, metavar="NAME",
                        help="dataset of the built-in example: digits (default) or "
                        "fashion_mnist")
    parser.add_argument("--example", default=None, metavar="NAME",
                        help="a built-in failing model per architecture family: mlp, cnn, "
                        "resnet, rnn, transformer (plain-PyTorch factories on digits)")
    parser.add_argument("--reference", default=None, metavar="FILE",
                        help="a healthy config to compare with (built-in example: ELU + He)")
    parser.add_argument("--steps", type=int_at_least(1), default=None, metavar="N",
                        help="optimizer steps per trial, rounded up to whole epochs "
                        "(default: the config's epochs)")
    parser.add_argument("--seeds", type=int_at_least(1), default=3, metavar="N",
                        help="seeds per trial (default 3)")
    parser.add_argument("--max-trials", type=int_at_least(0), default=10, metavar="N",
                        help="most candidate trials, the combination included (default 10)")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="output folder, must be new or empty (default doctor/<name>-N)")
    parser.add_argument("--threads", type=int_at_least(1), default=1, metavar="N",
                        help="torch threads (default 1: fastest for short trials of small nets)")
    parser.add_argument("--backend", choices=("local", "ray"), default="local",
                        help="where the trials run: local (this process, default) or ray "
                        "(each round of trials as a sweep on Ray, like steadygrad sweep "
                        "--backend ray)")
    parser.add_argument("--address", default=None, metavar="ADDR",
                        help="Ray cluster address, e.g. auto (with --backend ray; default: "
                        "a local Ray instance)")
    parser.add_argument("--workers", type=int_at_least(1), default=None, metavar="N",
                        help="Ray tasks at once (with --backend ray; default: one per run of "
                        "a round, queued by Ray on free CPUs); each uses --threads threads")
    parser.add_argument("--json", action="store_true", help="print doctor.json on stdout")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.set_defaults(func=run)


def default_out(name: str, root: str | Path = "doctor") -> Path:
    """``doctor/<name>-<n>``: the first numbered folder that does not exist yet.

    >>> import tempfile
    >>> default_out("x", tempfile.mkdtemp()).name
    'x-1'
    """
    n = 1
    while (Path(root) / f"{name}-{n}").exists():
        n += 1
    return Path(root) / f"{name}-{n}"


def _check_backend(args: argparse.Namespace) -> None:
    """Refuse ``--address``/``--workers`` without ``--backend ray``, or Ray not installed
    (the messages of ``steadygrad sweep``), before any config is read or any trial runs.

    >>> ns = argparse.Namespace(backend="local", address="auto", workers=None)
    >>> _check_backend(ns)
    Traceback (most recent call last):
    ...
    steadygrad.errors.ConfigError: --address: got 'auto'; expected an address only with ...ray
    """
    import importlib.util

    if args.address is not None and args.backend != "ray":
        raise ConfigError("--address", args.address, "an address only with --backend ray")
    if args.workers is not None and args.backend != "ray":
        raise ConfigError("--workers", args.workers, "--workers only with --backend ray",
                          hint="the local backend runs the trials one after another")
    if args.backend == "ray" and importlib.util.find_spec("ray") is None:
        raise ConfigError("--backend", "ray", "Ray installed",
                          hint="pip install 'steadygrad[ray]', or use --backend local")


def run(args: argparse.Namespace) -> int:
    """Execute ``steadygrad doctor``; returns the exit code.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "tiny.toml").write_text("[model]\\nhidden = [8]\\n")
        >>> from steadygrad.cli.main import build_parser
        >>> args = build_parser().parse_args(["doctor", str(d / "tiny.toml"), "--data", "digits"])
        >>> run(args)  # --data is for the built-in example only; rejected before any trial
        Traceback (most recent call last):
        ...
        steadygrad.errors.ConfigError: --data: got 'digits'; expected no --data with a CONFIG ...
    """
    from steadygrad.doctor.core import doctor, example_config
    from steadygrad.doctor.write import render_text
    from steadygrad.experiments.loader import load_config

    _check_backend(args)

    reference = load_config(args.reference) if args.reference else None
    if args.example is not None:
        from steadygrad.doctor.examples import example

        if args.config is not None or args.data is not None:
            raise ConfigError("--example", args.example, "no CONFIG and no --data with "
                              "--example", hint="the example brings its model, data and setup")
        chosen = example(args.example)
        config = chosen.config()
        if args.overrides:
            from steadygrad.experiments.config import config_from_dict, config_to_dict
            from steadygrad.experiments.loader import apply_overrides

            config = config_from_dict(apply_overrides(config_to_dict(config), args.overrides))
        reference = chosen.config(reference=True) if reference is None else reference
    elif args.config is None:
        config = example_config(args.data or "digits")
        if args.overrides:
            from steadygrad.experiments.config import config_from_dict, config_to_dict
            from steadygrad.experiments.loader import apply_overrides

            config = config_from_dict(apply_overrides(config_to_dict(config), args.overrides))
        if reference is None:
            from steadygrad.doctor.core import reference_config

            reference = reference_config(config)
    else:
        if args.data is not None:
            raise ConfigError("--data", args.data, "no --data with a CONFIG file",
                              hint="set the dataset in the file or with --set data.name=...")
        config = load_config(args.config, args.overrides)
    out = Path(args.out) if args.out else default_out(config.name)
    live = show_progress(args)
    started = time.time()

    def progress(line: str) -> None:
        print(f"\r{line[:100]:<100}", end="", file=sys.stderr, flush=True)

    result = doctor(config, steps=args.steps, seeds=args.seeds, max_trials=args.max_trials,
                    out_dir=out, progress=progress if live else None, reference=reference,
                    threads=args.threads, backend=args.backend, address=args.address,
                    workers=args.workers)
    if live:
        print("\r" + " " * 100 + "\r", end="", file=sys.stderr, flush=True)
    if args.json:
        print_json(result.to_dict())
    else:
        print(render_text(result))
        print(f"done in {time.time() - started:.1f} s; files in {out}")
    return 0 if result.healthy or result.best is not None else 1
