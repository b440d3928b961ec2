"""``steadygrad train``: one run of a config into the run store; prints metrics and findings.

The run is built in a private staging folder (``<out>/.staging``) by
:func:`steadygrad.experiments.execute.run_config` and moved into place as ``<out>/<name>`` in
one rename when it is complete, so ``<out>/<name>`` never holds half a run. Exit codes: 0 done,
1 failed (an exception during training; the traceback is in the run's ``summary.json``; or
the disk is full: then nothing changed), 2 bad input (nothing is created), 3 diverged (NaN/Inf).

The staging folder holds an epoch checkpoint, so a killed run (``kill -9``) is resumed with
``steadygrad train --resume NAME``: it continues bit-exactly on CPU. Staging folders of dead
processes are removed at the next start unless they can be resumed (a new run of the same
name, without ``--resume``, removes those too). With ``--overwrite`` the old run is replaced
only once the new one is done; a new run that fails or diverges goes to ``<out>/.failed/``.

Example:
    >>> import tempfile, pathlib
    >>> from steadygrad.cli.main import main
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "tiny.toml").write_text(
    ...     '[data]\\nname = "digits"\\nn_train = 100\\n[model]\\nhidden = [8]\\n'
    ...     '[train]\\nepochs = 1\\n[diagnostics]\\nenabled = false\\n')
    >>> main(["train", str(d / "tiny.toml"), "--out", str(d / "runs"),
    ...       "--quiet"])  # doctest: +ELLIPSIS
    run tiny: done ...
    0
    >>> names = {p.name for p in (d / "runs" / "tiny").iterdir()}
    >>> {"config.toml", "history.csv", "summary.json", "weights.safetensors"} <= names
    True
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import shutil
import sys
import warnings
from pathlib import Path
from typing import Any

from steadygrad.cli._common import (
    finding_lines,
    format_metrics,
    load_run_config,
    make_parser,
    print_json,
    show_progress,
)
from steadygrad.errors import ConfigError, StorageError

__all__ = ["add_parser", "run"]

_EXAMPLES = """
  steadygrad train run.toml                              # into ./runs/<config name>
  steadygrad train run.toml --set model.activation=selu \\
      --set model.kernel_initializer=lecun_normal --name selu
  steadygrad train run.yaml --out results --overwrite    # replace (move aside) an existing run
  steadygrad train run.toml --json | jq .metrics         # machine-readable
  steadygrad train run.toml --nproc 2                    # 2 data-parallel processes (torchrun)

  steadygrad train --resume NAME --out results       # continue a killed run bit-exactly

exit codes: 0 done, 1 failed (also: disk full, nothing changed), 2 bad input (nothing
created), 3 diverged (NaN/Inf)
"""

EXIT_CODES = {"done": 0, "failed": 1, "diverged": 3}


def add_parser(sub: Any) -> None:
    """Register the ``train`` subcommand.

    Example:
        >>> import argparse
        >>> sub = argparse.ArgumentParser(prog="steadygrad").add_subparsers()
        >>> add_parser(sub)
        >>> args = sub.choices["train"].parse_args(["run.toml", "--name", "a", "--overwrite"])
        >>> args.config, args.name, args.overwrite, args.out, args.func is run
        ('run.toml', 'a', True, 'runs', True)
    """
    parser = make_parser(
        sub, "train", help="train one config into the run store",
        description="Train one run config and write its run directory (config, history.csv, "
        "health.json, weights, summary.json); print the final metrics and gradient-health "
        "findings.",
        examples=_EXAMPLES,
    )
    parser.add_argument("config", metavar="CONFIG", nargs="?", default=None,
                        help="run config file (.toml, .yaml/.yml or .json); not with --resume")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override one config key, e.g. --set model.activation=selu (repeatable; the "
        "value is a TOML literal: 0.1, true, [64, 64], {name = \"elu\", alpha = 0.5})",
    )
    parser.add_argument("--resume", metavar="NAME", default=None,
                        help="continue the interrupted (killed) run NAME from its last "
                        "checkpoint in DIR/.staging; CONFIG and --set are not needed "
                        "(the run's own config is used)")
    parser.add_argument("--out", default="runs", metavar="DIR",
                        help="results root; the run goes to DIR/NAME (default: runs)")
    parser.add_argument("--name", default=None,
                        help="run name (default: the config's name, or the file's stem when "
                        "the config sets none)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing run of that name once the new one is done "
                        "(the old one is moved to DIR/.replaced/, not deleted; a new run "
                        "that fails or diverges goes to DIR/.failed/ and the old one stays)")
    parser.add_argument("--quiet", action="store_true", help="no progress display")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON document on stdout instead of text")
    parser.add_argument("--nproc", type=int, default=1, metavar="N",
                        help="train with N data-parallel processes on this machine (launched "
                        "through torch.distributed.run; [train] batch_size is the global "
                        "batch; default: 1)")
    parser.set_defaults(func=run)


def _launch(args: argparse.Namespace) -> int:
    """Re-run this command in ``args.nproc`` processes under ``torch.distributed.run``."""
    import subprocess

    from steadygrad.train.distributed import torchrun_command

    argv = [args.config, "--out", args.out]
    for item in args.overrides:
        argv += ["--set", item]
    if args.name is not None:
        argv += ["--name", args.name]
    argv += [flag for flag, on in (("--overwrite", args.overwrite), ("--quiet", args.quiet),
                                   ("--json", args.json)) if on]
    cmd = torchrun_command(args.nproc, "steadygrad.cli.main", ["train", *argv],
                           python=sys.executable)
    return subprocess.run(cmd, check=False).returncode


def _findings(run_dir: Path) -> list[dict[str, Any]] | None:
    path = run_dir / "health.json"
    if not path.is_file():
        return None
    findings: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))["findings"]
    return findings


def run(args: argparse.Namespace) -> int:
    """Validate everything, train, commit the run directory and print the outcome.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "tiny.toml").write_text("[model]\\nhidden = [8]\\n")
        >>> _ = (d / "taken").write_text("a file, not a folder")
        >>> from steadygrad.cli.main import build_parser
        >>> args = build_parser().parse_args(["train", str(d / "tiny.toml"),
        ...                                   "--out", str(d / "taken")])
        >>> run(args)
        Traceback (most recent call last):
        ...
        steadygrad.errors.ConfigError: --out: got '...taken'; expected a folder ...
    """
    from dataclasses import replace

    from steadygrad.experiments.config import RunConfig
    from steadygrad.experiments.execute import (
        build_model,
        fit_arguments,
        load_data,
        run_config,
    )
    from steadygrad.experiments.loader import load_config
    from steadygrad.experiments.store import RunStore, sanitize_name, validate_run_name
    from steadygrad.optim.schedule_units import check_run_length
    from steadygrad.train.distributed import World

    world = World.from_env()
    if isinstance(args.nproc, bool) or args.nproc < 1:
        raise ConfigError("--nproc", args.nproc, "an int >= 1")
    if args.nproc > 1 and world is None:
        if args.resume is None:
            load_run_config(args)  # bad input fails here, before any process starts
        return _launch(args)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ConfigError("--out", str(out), "a folder (or a path to create one)")
    resume_dir = None
    if args.resume is not None:
        name = validate_run_name(args.resume)
        resume_dir = RunStore(out).interrupted(name) if out.is_dir() else None
        if resume_dir is None:
            raise ConfigError("--resume", name, f"an interrupted run in {out / '.staging'} "
                              "with a checkpoint", hint="only a killed 'steadygrad train' "
                              "that wrote at least one epoch checkpoint can be resumed")
        config = load_config(resume_dir / "config.toml")
    else:
        if args.config is None:
            raise ConfigError("CONFIG", None, "a config file (or --resume NAME)")
        config = load_run_config(args)
        if args.name is not None:
            name = validate_run_name(args.name)
        elif config.name != RunConfig().name:
            name = validate_run_name(config.name)
        else:
            name = sanitize_name(Path(args.config).stem)
    if name != config.name:
        config = replace(config, name=name)
    if world is not None and world.rank != 0:  # trains its shard; rank 0 writes the run
        import tempfile

        with tempfile.TemporaryDirectory() as scratch, warnings.catch_warnings():
            warnings.filterwarnings("ignore", "training stopped", RuntimeWarning)
            result = run_config(config, Path(scratch) / name, verbose=0)
        return EXIT_CODES.get(result.status, 1)
    if (out / name).exists() and not args.overwrite:
        raise ConfigError("--name", name, f"a run name not used yet in {out}",
                          hint="pass --overwrite to move the old run aside, or choose --name")
    data = load_data(config)  # data and model errors surface before any work
    build_model(config, data)
    check_run_length(fit_arguments(config)["schedule"], n_train=len(data.x_train),
                     batch_size=config.train.batch_size, epochs=config.train.epochs)
    try:
        store = RunStore(out)
        if resume_dir is None:
            store.clean_staging(name)  # a new run of this name: its killed attempts go
            staging = store.staging(name)
        else:
            staging = store.root / ".staging" / f"{name[:200]}.{os.getpid()}"
            os.replace(resume_dir, staging)  # claim it: now ours (our PID), not stale
        verbose = 1 if show_progress(args, sys.stdout) else 0
        with warnings.catch_warnings():  # the divergence is reported below, not as a warning
            warnings.filterwarnings("ignore", "training stopped", RuntimeWarning)
            result = run_config(config, staging, verbose=verbose, data=data,  # loaded once
                                checkpoints=True, resume=resume_dir is not None)
        if result.status != "done" and args.overwrite and store.exists(name):
            run_dir = store.set_aside(staging, name, ".failed")  # the old run stays
            print(f"steadygrad train: the new run {result.status}; {out / name} is unchanged, "
                  f"the new one is in {run_dir}", file=sys.stderr)
        else:
            run_dir = store.commit(staging, name, overwrite=args.overwrite)
    except OSError as exc:
        if "staging" in locals():
            shutil.rmtree(staging, ignore_errors=True)
        kept = (f"the previous run {out / name} is intact" if (out / name).exists()
                else "no run was created")
        raise StorageError(
            f"cannot write run {name!r} in {out}: {exc.strerror or exc} "
            f"({errno.errorcode.get(exc.errno or 0, 'OSError')}); nothing was changed: "
            f"{kept}; fix: free space (or fix permissions) and run the command again"
        ) from exc
    findings = _findings(run_dir)
    summary = result.summary
    code = EXIT_CODES.get(result.status, 1)
    if args.json:
        print_json({
            "name": name, "run_dir": str(run_dir), "status": result.status, "exit_code": code,
            "metrics": result.metrics, "epochs_run": summary.get("epochs_run"),
            "seconds_per_epoch": summary.get("seconds_per_epoch"),
            "stopped_reason": summary.get("stopped_reason"), "step": summary.get("step"),
            "diverged": summary.get("diverged"), "findings": findings,
            "error": result.error,
        })
        return code
    spe = summary.get("seconds_per_epoch")
    timing = f", {spe:.3g} s/epoch" if isinstance(spe, (int, float)) else ""
    print(f"run {name}: {result.status} ({summary.get('epochs_run', 0)} epochs{timing}) "
          f"-> {run_dir}")
    if result.metrics:
        print("final: " + format_metrics(result.metrics))
    if (summary.get("step") or {}).get("fallback"):
        from steadygrad.experiments.run_report import step_text

        print(f"step: {step_text(summary['step'])}")
    if summary.get("diverged"):
        d = summary["diverged"]
        where = f"at step {d['step']}" if d.get("step") is not None else "in the last epoch"
        print(f"diverged {where}: {d.get('kind')}"
              + (f" (first faulty: {d['layer']})" if d.get("layer") else ""))
    elif summary.get("stopped_reason"):
        print(f"stopped: {summary['stopped_reason']}")
    if findings is not None:
        print("\n".join(finding_lines(findings, diverged=bool(summary.get("diverged")))))
    if result.error:
        last = result.error.strip().splitlines()[-1]
        print(f"steadygrad train: run failed: {last} (traceback in {run_dir / 'summary.json'})",
              file=sys.stderr)
    return code
