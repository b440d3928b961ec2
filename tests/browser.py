"""Headless Chromium for the page-layout tests: how wide a page really renders, screenshots.

``layout(path, width)`` loads a copy of the page with a small script appended that records the
viewport width, the document's scroll width and the right edge of the widest element, then
reads them back from ``--dump-dom``. A page that fits has ``scroll_width <= viewport`` and
``right <= viewport``: nothing is cut off or needs horizontal scrolling.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

__all__ = ["chromium", "layout", "screenshot"]

_PROBE = """<script>
(function(){var r=0,w='';document.querySelectorAll('body *').forEach(function(e){
var b=e.getBoundingClientRect();if(b.right>r){r=b.right;w=e.tagName;}});
var d=document.createElement('pre');d.id='sg-layout';
d.textContent=JSON.stringify({viewport:document.documentElement.clientWidth,
scroll_width:document.documentElement.scrollWidth,right:r,widest:w,
images:document.images.length,
broken:Array.from(document.images).filter(function(i){return !i.naturalWidth}).length});
document.body.appendChild(d);})();
</script>"""


def chromium() -> str:
    """The Chromium executable, or skip the test (CI's .ci/run installs it)."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("headless Chromium is not installed (apt-get install chromium)")
    raise AssertionError  # unreachable


def _run(args: list[str]) -> str:
    base = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--disable-dev-shm-usage", "--no-first-run", "--force-device-scale-factor=1"]
    done = subprocess.run(base + args, capture_output=True, text=True, timeout=120,
                          check=False)
    return done.stdout


def layout(path: Path, width: int = 1280) -> dict[str, float]:
    """Render ``path`` at ``width`` px and measure it (see the module doc)."""
    probe = path.with_name(path.stem + ".probe.html")
    text = path.read_text(encoding="utf-8")
    probe.write_text(text.replace("</body>", _PROBE + "</body>"), encoding="utf-8")
    try:
        out = _run([f"--window-size={width},900", "--virtual-time-budget=3000", "--dump-dom",
                    probe.resolve().as_uri()])
    finally:
        probe.unlink()
    match = re.search(r'<pre id="sg-layout">(.*?)</pre>', out, re.S)
    assert match, f"no layout probe in Chromium's DOM dump: {out[:300]!r}"
    result: dict[str, float] = json.loads(match.group(1).replace("&quot;", '"'))
    return result


def screenshot(path: Path, png: Path, width: int = 1280, height: int = 2400) -> Path:
    """A ``width`` x ``height`` screenshot of ``path`` (PNG)."""
    png.parent.mkdir(parents=True, exist_ok=True)
    _run([f"--window-size={width},{height}", f"--screenshot={png.resolve()}",
          "--virtual-time-budget=3000", path.resolve().as_uri()])
    assert png.is_file() and png.stat().st_size > 0, "Chromium wrote no screenshot"
    return png
