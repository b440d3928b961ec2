"""The chapter's pictures, computed by steadygrad itself: ``steadygrad figures``.

Activation functions and their derivatives, signal and gradient scale vs depth per
initialization, optimizer paths on a 2-D loss, the learning-rate schedules, batch norm in
training vs inference, inverted-dropout scaling, MC-dropout uncertainty and the reliability
diagram: each drawn from numbers the library computes (:mod:`steadygrad.figures.compute`),
with a caption formatted from those numbers, on one self-contained HTML page.

Example:
    >>> title, png, caption = make_figures(["dropout"])[0]
    >>> title, png[:4], caption.startswith("Mean of 100,000 dropped-out ones")
    ('Inverted dropout scaling', b'\\x89PNG', True)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from steadygrad.errors import ConfigError
from steadygrad.figures.draw import FIGURES, Figure

__all__ = ["FIGURES", "Figure", "make_figures", "render_figures_page", "write_figures"]


def make_figures(names: Sequence[str] | None = None) -> list[Figure]:
    """``(title, png, caption)`` of the named figures (all of :data:`FIGURES` by default).

    Raises:
        ConfigError: an unknown figure name.
    """
    chosen = list(FIGURES) if names is None else list(names)
    for name in chosen:
        if name not in FIGURES:
            raise ConfigError("figure", name, f"one of {', '.join(FIGURES)}")
    return [FIGURES[name]() for name in chosen]


def render_figures_page(figures: Sequence[Figure]) -> str:
    """One self-contained HTML page: a section per figure with its caption.

    >>> page = render_figures_page([("T", b"png", "c")])
    >>> "<h2>T</h2>" in page and "data:image/png;base64," in page
    True
    """
    from steadygrad.experiments.run_report import figure_html, page

    body = "".join(f"<h2>{title}</h2>{figure_html(png, caption)}"
                   for title, png, caption in figures)
    return page("The chapter's figures, computed by steadygrad", body,
                "Every curve and every number in a caption is computed by steadygrad's own "
                "functions when the page is made (steadygrad figures).")


def write_figures(out_dir: str | Path = "figures", names: Sequence[str] | None = None) -> Path:
    """Write ``OUT_DIR/figures.html`` (atomically); returns its path."""
    from steadygrad.experiments.store import atomic_write_text

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError("--out", str(out), "a folder (or a path to create one)")
    out.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(out / "figures.html", render_figures_page(make_figures(names)))
