"""The Python example of docs/architectures.md runs and prints what the page shows."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

PAGE = Path(__file__).resolve().parents[2] / "docs" / "architectures.md"


def test_the_python_example_prints_what_the_page_shows() -> None:
    code = re.findall(r"```python\n(.*?)```", PAGE.read_text(), re.S)
    assert len(code) == 1
    shown = [line[2:] for line in code[0].splitlines() if line.startswith("# ")]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code[0], str(PAGE), "exec"), {})  # our own doc page
    assert out.getvalue().splitlines() == shown
