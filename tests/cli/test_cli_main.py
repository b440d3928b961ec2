"""The console entry point itself: what happens around every subcommand."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


def test_a_closed_pipe_ends_quietly() -> None:
    """Regression: ``steadygrad study --list | head -1`` ended in a BrokenPipeError traceback
    once ``head`` had closed the pipe. Here the pipe's read end is closed before the command
    writes at all, so every write fails (EPIPE; Python ignores SIGPIPE)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [sys.executable, "-c", "import sys; from steadygrad.cli.main import main; "
             "sys.exit(main(['study', '--list']))"],
            stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=300, check=False,
            env={**os.environ, "PYTHONPATH": str(SRC)})
    finally:
        os.close(write_end)
    assert "Traceback" not in done.stderr, done.stderr
    assert "BrokenPipeError" not in done.stderr
    assert done.returncode == 141  # 128 + SIGPIPE, as a shell reports it
