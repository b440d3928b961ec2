"""Shared helpers of the speed benchmarks: environment, system facts, models, timing, docs.

Every benchmark script in this folder runs as ``python benchmarks/<name>.py`` (this module is
imported as ``_common``), prints its tables and, with ``--write``, replaces *its own* section
of ``docs/benchmarks.md`` (other sections belong to other benchmarks and are left byte for
byte; the file is rewritten atomically under an exclusive lock).

Example:
    >>> median([3.0, 1.0, 2.0]), ratio(2.0, 1.0)
    (2.0, '2.00x')
    >>> print(markdown_table(["a", "b"], [[1, "x"]]))
    | a | b |
    |---|---|
    | 1 | x |
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import fcntl
import hashlib
import math
import os
import platform
import re
import shlex
import statistics
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "DATA_FILE",
    "DOC_PATH",
    "ROOT",
    "configure_threads",
    "cpu_model",
    "deep_bn_mlp",
    "environment",
    "load_average",
    "load_fashion_mnist",
    "load_note",
    "markdown_table",
    "median",
    "noise_note",
    "ratio",
    "shallow_mlp",
    "system_info",
    "thread_counts",
    "verdict",
    "write_section",
    "write_subsection",
]

ROOT = Path(__file__).resolve().parent.parent
DOC_PATH = ROOT / "docs" / "benchmarks.md"
DATA_FILE = ROOT.parent / "shared" / "data" / "fashion-mnist.npz"


def configure_threads(threads: int | None) -> int:
    """Set the environment for ``threads`` compute threads; call before importing torch/jax.

    Sets ``STEADYGRAD_DATA`` to the shared data folder when unset and the file exists,
    ``KERAS_BACKEND=jax``, the OpenMP thread count and, for one thread, XLA's single-threaded
    CPU flags (XLA otherwise uses every core). Returns the thread count (default: all cores).

    Raises:
        ValueError: ``threads`` is not a positive int.

    >>> configure_threads(1)
    1
    >>> os.environ["KERAS_BACKEND"]
    'jax'
    """
    n = (os.cpu_count() or 1) if threads is None else threads
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"--threads: got {threads!r}; expected an int >= 1 (or omit it)")
    if "STEADYGRAD_DATA" not in os.environ and DATA_FILE.exists():
        os.environ["STEADYGRAD_DATA"] = str(DATA_FILE.parent)
    os.environ.setdefault("KERAS_BACKEND", "jax")
    os.environ["OMP_NUM_THREADS"] = str(n)
    if n == 1:
        flags = os.environ.get("XLA_FLAGS", "")
        extra = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        if extra not in flags:
            os.environ["XLA_FLAGS"] = f"{flags} {extra}".strip()
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)
    return n


def thread_counts(text: str) -> list[str]:
    """``--thread-counts`` parsed (an argparse ``type=``): positive ints and/or ``"default"``
    (torch's own count).

    >>> thread_counts("1, default")
    ['1', 'default']
    >>> thread_counts("0")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: got '0'; expected positive ints and/or 'default', comma-separated
    """
    counts = [c.strip() for c in text.split(",") if c.strip()]
    if not counts or any(c != "default" and not (c.isdigit() and int(c) >= 1) for c in counts):
        raise argparse.ArgumentTypeError(f"got {text!r}; expected positive ints and/or "
                                         "'default', comma-separated")
    return counts


def cpu_model() -> str:
    """The CPU model name from ``/proc/cpuinfo`` (``platform.processor()`` elsewhere).

    >>> isinstance(cpu_model(), str)
    True
    """
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _version(module: str) -> str | None:
    """The installed version of ``module``'s distribution, read without importing it (an
    imported JAX would start XLA's threads in the benchmark's own process)."""
    from importlib import metadata

    try:
        return metadata.version(module)
    except metadata.PackageNotFoundError:
        return None


def system_info(threads: int, *, keras: bool = True) -> dict[str, Any]:
    """Facts to print next to a measurement: versions, CPU, threads, date, load, command.

    >>> info = system_info(1, keras=False)
    >>> sorted(k for k in info if k in ("python", "torch", "threads", "cores"))
    ['cores', 'python', 'threads', 'torch']
    """
    info: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "torch": _version("torch"),
        "numpy": _version("numpy"),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "threads": threads,
        "load_before": load_average(),
        "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
    }
    if keras:
        info["keras"] = _version("keras")
        info["jax"] = _version("jax")
    return info


def environment(info: dict[str, Any], *, threads: bool = True, note: str = "") -> list[str]:
    """The closing lines of a benchmark's section: the environment line, a blank line and the
    command (``threads``: name ``info["threads"]``; ``note``: appended to the load figures).

    >>> info = {"date": "D", "cpu": "C", "cores": 2, "threads": 1, "python": "3", "torch": "T",
    ...         "load_before": "a", "load_after": "b", "command": "python x.py"}
    >>> print(*environment(info)[0].split("; "), sep="\\n")
    Environment: D
    CPU C, 2 cores, 1 compute thread(s)
    Python 3, torch T
    load average (1/5/15 min) before a, after b.
    >>> print(*environment({**info, "keras": "K", "jax": "J"}, threads=False,
    ...                    note=" (n)")[0].split("; ")[1:], sep="\\n")
    CPU C, 2 cores
    Python 3, torch T, keras K, jax J
    load average (1/5/15 min) before a, after b (n).
    """
    versions = f"torch {info['torch']}" + (
        f", keras {info['keras']}, jax {info['jax']}" if "keras" in info else "")
    cores = f"{info['cores']} cores" + (
        f", {info['threads']} compute thread(s)" if threads else "")
    return [f"Environment: {info['date']}; CPU {info['cpu']}, {cores}; Python {info['python']}, "
            f"{versions}; load average (1/5/15 min) before {info['load_before']}, after "
            f"{info['load_after']}{note}.", "", f"Command: `{info['command']}`"]


def load_average() -> str:
    """The 1/5/15-minute load averages as ``"1.23 1.10 0.90"`` (``"n/a"`` if unknown).

    >>> len(load_average().split()) in (1, 3)
    True
    """
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def load_note(info: dict[str, Any]) -> str | None:
    """A sentence saying that other work loaded the CPU, when the 1-minute load average
    before or after the run exceeded 1.5 (the benchmark's own busy process accounts for ~1).

    >>> note = load_note({"load_before": "3.10 2 1", "load_after": "0.90 1 1", "cores": 2})
    >>> note.split(":")[1].split(";")[0]
    ' 1-minute load average 3.10 before, 0.90 after'
    >>> load_note({"load_before": "0.50 0 0", "load_after": "1.20 0 0", "cores": 2}) is None
    True
    """
    try:
        before = float(str(info.get("load_before", "nan")).split()[0])
        after = float(str(info.get("load_after", "nan")).split()[0])
    except (ValueError, IndexError):
        return None
    if not max(before, after) > 1.5:
        return None
    return (f"Other processes were loading the "
            f"{info.get('cores')}-core CPU while this ran: 1-minute load average {before:.2f} "
            f"before, {after:.2f} after; wall times are inflated accordingly, CPU times much less.")


def load_fashion_mnist(limit: int | None) -> tuple[Any, Any]:
    """``(x, y)`` training tensors of Fashion-MNIST (55,000 rows; the first ``limit`` if given).

    Uses ``steadygrad.data.load("fashion_mnist")`` (standardized float32 images, int64
    labels), i.e. the same tensors ``fit`` receives from a ``Dataset``.

    Raises:
        ValueError: ``limit`` is not a positive int.
    """
    from steadygrad.data import load

    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"--limit: got {limit!r}; expected an int >= 1")
    ds = load("fashion_mnist")
    x, y = ds.x_train, ds.y_train
    if limit is not None:
        x, y = x[:limit].contiguous(), y[:limit].contiguous()
    return x, y


def shallow_mlp(seed: int) -> Any:
    """Workload (a): Flatten → Dense 300 relu → Dense 100 relu → Dense 10 (Keras-like init).

    >>> net = shallow_mlp(0)
    >>> [type(m).__name__ for m in net]
    ['Flatten', 'Linear', 'ReLU', 'Linear', 'ReLU', 'Linear']
    """
    from steadygrad.nn.build import mlp

    return mlp((28, 28), (300, 100), activation="relu", kernel_initializer="glorot_uniform",
               num_outputs=10, seed=seed)


def deep_bn_mlp(seed: int, depth: int = 20) -> Any:
    """Workload (b): ``depth`` × [Dense 100 (He, no bias) → BN → ELU] → Dense 10.

    Batch norm uses Keras's defaults translated to PyTorch (momentum 0.99 → 0.01, eps 1e-3).

    >>> net = deep_bn_mlp(0, depth=2)
    >>> [type(m).__name__ for m in net][:4], net.dense1.bias is None
    (['Flatten', 'Linear', 'BatchNorm1d', 'ELU'], True)
    """
    from steadygrad.nn.build import mlp

    return mlp((28, 28), (100,) * depth, activation="elu", kernel_initializer="he_normal",
               batch_norm="before", bn_momentum=0.01, bn_eps=1e-3, num_outputs=10, seed=seed)


def median(values: Sequence[float]) -> float:
    """Median of ``values`` (NaN when empty).

    >>> median([]), median([1.0, 4.0])
    (nan, 2.5)
    """
    return statistics.median(values) if values else math.nan


def paired_ratio(values: Sequence[float], reference: Sequence[float]) -> float:
    """Median over repeats of each repeat's ratio ``values[i] / reference[i]``.

    Every repeat runs each contender back to back, so a slow drift of the machine's speed
    over the run (seen: the same contender 9.4 s, then 9.8 s, then 10.3 s per epoch) cancels in
    each repeat's ratio, where a ratio of medians taken over the whole run would not.

    >>> paired_ratio([9.5, 10.5, 10.3], [9.4, 9.8, 10.3])
    1.010...
    """
    q = [v / r for v, r in zip(values, reference, strict=True) if r > 0]
    return median(q) if q else math.nan


def ratio(value: float, reference: float) -> str:
    """``value / reference`` formatted as ``"1.03x"`` (``"n/a"`` when undefined).

    >>> ratio(1.0, 0.0)
    'n/a'
    """
    if not (math.isfinite(value) and math.isfinite(reference)) or reference <= 0:
        return "n/a"
    return f"{value / reference:.2f}x"


def verdict(label: str, wall: float, cpu: float, goal: float) -> str:
    """One goal line: the wall and CPU ratios and whether each meets ``goal``.

    >>> verdict("fit / minimal", 1.10, 1.01, 1.05)
    'fit / minimal: 1.010x CPU, 1.100x wall (goal ≤ 1.05x: met on CPU time, NOT met on wall time)'
    """
    def ok(q: float) -> str:
        return "n/a" if not math.isfinite(q) else ("met" if q <= goal else "NOT met")

    return (f"{label}: {cpu:.3f}x CPU, {wall:.3f}x wall (goal ≤ {goal:.2f}x: {ok(cpu)} on CPU "
            f"time, {ok(wall)} on wall time)")


def noise_note(pairs: Sequence[tuple[float, float]]) -> str | None:
    """How much other work stretched wall time: the range of wall / CPU over timed epochs.

    >>> noise_note([(2.0, 1.0), (1.1, 1.0)])[:48]
    'Wall / CPU time per timed epoch ranged 1.10–2.00'
    """
    r = [w / c for w, c in pairs if c > 0 and math.isfinite(w) and math.isfinite(c)]
    if not r:
        return None
    return (f"Wall / CPU time per timed epoch ranged {min(r):.2f}–{max(r):.2f} (1.00: the "
            "process had a core to itself; single-threaded runs only).")


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table.

    >>> markdown_table(["x"], [[1.5]]).splitlines()[-1]
    '| 1.5 |'
    """
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:16]
    with open(Path(tempfile.gettempdir()) / f"steadygrad-bench-{digest}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


_TITLE = (
    "# Benchmarks\n\nSpeed and overhead measurements; each section is written by the script "
    "it names.\n"
)


def replace_section(text: str, title: str, body: str) -> str:
    """``text`` with the ``## title`` section (up to the next ``## ``) replaced by ``body``.

    A missing section is appended. Other sections are kept unchanged.

    >>> doc = "# B\\n\\n## One\\nold\\n\\n## Two\\nkeep\\n"
    >>> print(replace_section(doc, "One", "new"))
    # B
    <BLANKLINE>
    ## One
    new
    <BLANKLINE>
    ## Two
    keep
    <BLANKLINE>
    """
    section = f"## {title}\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(title)}[ \t]*\n.*?(?=^## |\Z)", re.M | re.S)
    match = pattern.search(text)
    if match is None:
        return text.rstrip("\n") + "\n\n" + section
    tail = text[match.end():]
    return text[: match.start()] + section + ("\n" + tail if tail else "")


def section_text(text: str, title: str) -> str | None:
    """The body of the ``## title`` section of ``text`` (None if absent).

    >>> section_text(chr(10).join(["## A", "x", "", "## B", "y"]), "A")
    'x'
    """
    m = re.search(rf"^## {re.escape(title)}[ \t]*\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    return None if m is None else m.group(1).strip()


def write_subsection(title: str, sub: str, body: str, path: Path = DOC_PATH) -> Path:
    """Replace (or append) the ``### sub`` part of the ``## title`` section, atomically.

    >>> tmp = Path(tempfile.mkdtemp()) / "b.md"
    >>> _ = write_section("A", "main", tmp); _ = write_subsection("A", "S", "one", tmp)
    >>> _ = write_subsection("A", "S", "two", tmp)
    >>> section_text(tmp.read_text(), "A").split()
    ['main', '###', 'S', 'two']
    """
    with _locked(path):
        text = path.read_text() if path.exists() else _TITLE
        current = section_text(text, title) or ""
        head = re.split(rf"^### {re.escape(sub)}[ \t]*\n", current, maxsplit=1, flags=re.M)
        rest = ""
        if len(head) == 2:
            after = re.search(r"^### ", head[1], re.M)
            rest = head[1][after.start():] if after else ""
        new_body = f"{head[0].rstrip()}\n\n### {sub}\n{body.strip()}\n"
        if rest:
            new_body += "\n" + rest.strip() + "\n"
        _atomic_write(path, replace_section(text, title, new_body))
    return path


def _atomic_write(path: Path, new: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(new)
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_section(title: str, body: str, path: Path = DOC_PATH) -> Path:
    """Replace (or append) the ``## title`` section of ``path`` atomically, under a lock.

    The file is read, edited and written to a temporary file in the same folder, then moved
    over the original (``os.replace``), while holding an exclusive ``flock`` on a lock file
    in the temporary folder (named after the path), so two benchmarks finishing together
    cannot drop each other's section.

    >>> tmp = Path(tempfile.mkdtemp()) / "b.md"
    >>> _ = write_section("A", "one", tmp); _ = write_section("B", "two", tmp)
    >>> _ = write_section("A", "uno", tmp)
    >>> [line for line in tmp.read_text().splitlines() if line and not line.startswith("Speed")]
    ['# Benchmarks', '## A', 'uno', '## B', 'two']
    """
    with _locked(path):
        text = path.read_text() if path.exists() else _TITLE
        old = section_text(text, title) or ""
        keep = re.search(r"^### ", old, re.M)  # subsections written by write_subsection
        if keep and "### " not in body:
            body = body.rstrip() + "\n\n" + old[keep.start():]
        _atomic_write(path, replace_section(text, title, body))
    return path
