"""How long each built-in study takes in quick mode: measured here, shipped for ``--list``.

Runs ``steadygrad study NAME --quiet`` for every registered study, one after the other, each
in a fresh results root, and writes the wall seconds each took (from its ``study.json``) with
the machine, thread count and date to ``src/steadygrad/studies/durations.json``, which
``steadygrad study --list`` shows for a study not yet run under ``--out``. Run it on a quiet
machine.

Usage::

    python benchmarks/study_durations.py            # print the table
    python benchmarks/study_durations.py --write    # and write durations.json

Example:
    >>> row = {"seconds": 19.4}
    >>> f"{row['seconds']:.0f} s"
    '19 s'
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "src" / "steadygrad" / "studies" / "durations.json"


def measure(name: str) -> float:
    """Run study ``name`` in quick mode in a fresh root; its own measured wall seconds."""
    with tempfile.TemporaryDirectory() as out:
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        done = subprocess.run([sys.executable, "-m", "steadygrad.cli.main", "study", name,
                               "--quiet", "--out", out], env=env, capture_output=True,
                              text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"study {name} failed: {done.stderr[-2000:]}")
        (found,) = Path(out).glob("*-quick/study.json")  # the study's own folder name
        return float(json.loads(found.read_text())["seconds"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--write", action="store_true", help=f"write {TARGET.name}")
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    import torch

    from steadygrad.studies.registry import STUDIES

    rows = {}
    for name in STUDIES.names():
        key = name.replace("_", "-")
        rows[key] = {"seconds": round(measure(key), 1)}
        print(f"{key:20s} {rows[key]['seconds']:8.1f} s", flush=True)
    doc = {"mode": "quick", "studies": rows,
           "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
           "threads": torch.get_num_threads(), "torch": torch.__version__,
           "date": dt.date.today().isoformat(),
           "command": "python benchmarks/study_durations.py --write"}
    if args.write:
        TARGET.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
