"""``steadygrad sweep``: run every config of a sweep file, resumably, on local workers or Ray.

The sweep file is expanded and every run config validated (and each distinct ``[data]``
section loaded once) before anything is created; then
:func:`steadygrad.experiments.runner.run_sweep` executes the runs under ``<out>/<sweep name>``.
A live line with the done/failed/running counts is drawn on a terminal (not with ``--quiet``
or ``--json``, nor when stderr is not a TTY).

Exit codes: 0 every run done, 1 some run failed (its traceback is in the index and its
``summary.json``), 2 bad input, 3 every run completed but some diverged.

Example:
    >>> import tempfile, pathlib
    >>> from steadygrad.cli.main import main
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "s.toml").write_text('name = "s"\\nseeds = [0]\\n[base.data]\\nname = "digits"\\n'
    ...     '[base.model]\\nhidden = [8]\\n[base.train]\\nepochs = 1\\n'
    ...     '[axes]\\n"model.activation" = ["relu", "tanh"]\\n')
    >>> main(["sweep", str(d / "s.toml"), "--out", str(d / "out"), "--quiet"])  # doctest: +SKIP
    sweep s: 2 runs: 2 done, 0 failed ...
    0
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO

from steadygrad.cli._common import make_parser, positive_int, print_json, show_progress
from steadygrad.errors import ConfigError

__all__ = ["SweepProgress", "add_parser", "run"]

_EXAMPLES = """
  steadygrad sweep activations.toml --workers 2          # into ./sweeps/<sweep name>
  steadygrad sweep activations.toml --resume             # continue after a crash or Ctrl-C
  steadygrad sweep big.toml --backend ray --address auto --workers 32
  steadygrad report sweeps/activations                   # then read the report

exit codes: 0 all done, 1 some run failed, 2 bad input, 3 some run diverged
"""



def add_parser(sub: Any) -> None:
    """Register the ``sweep`` subcommand.

    Example:
        >>> import argparse
        >>> sub = argparse.ArgumentParser(prog="steadygrad").add_subparsers()
        >>> add_parser(sub)
        >>> args = sub.choices["sweep"].parse_args(["s.toml", "--workers", "2", "--resume"])
        >>> args.file, args.workers, args.backend, args.resume, args.out, args.func is run
        ('s.toml', 2, 'local', True, 'sweeps', True)
    """
    parser = make_parser(
        sub, "sweep", help="run a sweep (grid/random configs x seeds), resumably",
        description="Expand a sweep file into run configs and execute them on local worker "
        "processes or Ray; every state change is recorded in DIR/<name>/index.sqlite so an "
        "interrupted sweep continues with --resume.",
        examples=_EXAMPLES,
    )
    parser.add_argument("file", metavar="FILE", help="sweep file (.toml or .yaml)")
    parser.add_argument("--workers", type=positive_int, default=1, metavar="N",
                        help="runs at once (default 1)")
    parser.add_argument("--threads", type=positive_int, default=None, metavar="T",
                        help="torch threads per worker (default: cores // workers)")
    parser.add_argument("--backend", choices=("local", "ray"), default="local",
                        help="local processes (default) or a Ray cluster")
    parser.add_argument("--address", default=None, metavar="ADDR",
                        help="Ray cluster address (with --backend ray; default: local Ray)")
    parser.add_argument("--resume", action="store_true",
                        help="continue an existing sweep (committed runs are kept)")
    parser.add_argument("--retry-failed", action="store_true",
                        help="with --resume: run failed runs again")
    parser.add_argument("--out", default="sweeps", metavar="DIR",
                        help="results root; the sweep goes to DIR/<sweep name> (default: sweeps)")
    parser.add_argument("--quiet", action="store_true", help="no progress display")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.set_defaults(func=run)


class SweepProgress:
    """A background thread redrawing ``[3/8] 2 done, 1 failed, 1 running`` from the index.

    Args:
        index_path: the sweep's ``index.sqlite`` (it may not exist yet).
        total: number of runs.
        stream: where to draw (a terminal).
        every: seconds between redraws.

    Example:
        >>> import io, pathlib, tempfile
        >>> out = io.StringIO()
        >>> p = SweepProgress(pathlib.Path(tempfile.mkdtemp()) / "index.sqlite", 4, out, 0.01)
        >>> p.line({"done": 2, "failed": 1, "running": 1, "pending": 0})
        '[3/4] 2 done, 1 failed, 1 running'
    """

    def __init__(self, index_path: Path, total: int, stream: TextIO, every: float = 0.5) -> None:
        self.index_path = index_path
        self.total = total
        self.stream = stream
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._start = time.monotonic()

    def line(self, counts: dict[str, int]) -> str:
        """The progress text for state ``counts``."""
        finished = counts.get("done", 0) + counts.get("failed", 0)
        return (f"[{finished}/{self.total}] {counts.get('done', 0)} done, "
                f"{counts.get('failed', 0)} failed, {counts.get('running', 0)} running")

    def _draw(self) -> None:
        from steadygrad.experiments.index import RunIndex

        if not self.index_path.exists():
            return
        try:
            with RunIndex(self.index_path, timeout=1.0) as index:
                counts = index.counts()
        except Exception:  # a locked or half-created database: try again next time
            return
        self.stream.write(f"\r{self.line(counts)}  {time.monotonic() - self._start:.0f}s ")
        self.stream.flush()

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self._draw()

    def __enter__(self) -> SweepProgress:
        self._start = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._draw()  # the final state, even for a sweep shorter than one refresh
        self.stream.write("\n")
        self.stream.flush()


def _check_arguments(args: argparse.Namespace) -> None:
    if args.address is not None and args.backend != "ray":
        raise ConfigError("--address", args.address, "an address only with --backend ray")
    if args.retry_failed and not args.resume:
        raise ConfigError("--retry-failed", True, "--retry-failed together with --resume")
    if args.backend == "ray" and importlib.util.find_spec("ray") is None:
        raise ConfigError("--backend", "ray", "Ray installed",
                          hint="pip install 'steadygrad[ray]', or use --backend local")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ConfigError("--out", str(out), "a folder (or a path to create one)")


def run(args: argparse.Namespace) -> int:
    """Validate the sweep, run it and print the outcome.

    Example:
        >>> from steadygrad.cli.main import build_parser
        >>> run(build_parser().parse_args(["sweep", "s.toml", "--retry-failed"]))
        Traceback (most recent call last):
        ...
        steadygrad.errors.ConfigError: --retry-failed: got True; expected --retry-failed ...
    """
    from steadygrad.experiments.execute import load_data
    from steadygrad.experiments.runner import run_sweep
    from steadygrad.experiments.space import load_sweep

    _check_arguments(args)
    sweep = load_sweep(args.file)
    seen = set()
    for planned in sweep.runs:  # data errors surface before any work
        if planned.config.data not in seen:
            seen.add(planned.config.data)
            load_data(planned.config)
    sweep_dir = Path(args.out).resolve() / sweep.name
    if sweep_dir.exists() and any(sweep_dir.iterdir()) and not args.resume:
        raise ConfigError("sweep", sweep.name, f"a sweep name not used yet in {args.out}",
                          hint="pass --resume to continue it, or change the sweep's name")
    kwargs: dict[str, Any] = dict(workers=args.workers, backend=args.backend, address=args.address,
                  resume=args.resume, threads=args.threads, retry_failed=args.retry_failed)
    if show_progress(args, sys.stderr):
        with SweepProgress(sweep_dir / "index.sqlite", len(sweep.runs), sys.stderr):
            result = run_sweep(sweep, args.out, **kwargs)
    else:
        result = run_sweep(sweep, args.out, **kwargs)
    diverged = [r.name for r in result.rows
                if r.state == "done" and (r.result or {}).get("status") == "diverged"]
    failed = [r.name for r in result.rows if r.state == "failed"]
    code = 1 if failed or not result.ok else (3 if diverged else 0)
    if args.json:
        print_json({"sweep": sweep.name, "sweep_dir": str(result.sweep_dir),
                    "runs": len(result.rows), "counts": result.counts,
                    "diverged": diverged, "failed": failed, "exit_code": code})
        return code
    counts = result.counts
    print(f"sweep {sweep.name}: {len(result.rows)} runs: {counts.get('done', 0)} done "
          f"({len(diverged)} diverged), {counts.get('failed', 0)} failed -> {result.sweep_dir}")
    for name in failed:
        print(f"  failed: {name}", file=sys.stderr)
    for name in diverged:
        print(f"  diverged: {name}")
    print(f"report: steadygrad report {result.sweep_dir}")
    return code
