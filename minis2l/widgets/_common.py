"""Shared pieces of the widgets: the reopen hint, figures as PNG, the callback guard, a shuffle.

The hint above each widget fits where the kernel runs: in JupyterLab it tells a student who
reopened a notebook to run the cells above (:data:`REOPEN_HINT`); under Voilà (the explorers
app, ``make explorers``), where there are no cells to run, to reload the page
(:data:`VOILA_HINT`).

Every widget renders its matplotlib figure to PNG at the size it is shown (:func:`figure_png`,
``_pixel_size``) and wraps each callback in ``_guarded``, which records an exception in the
owner's ``errors``, shows it in the status line and re-raises it when the owner is strict.
"""

from __future__ import annotations

import functools
import html
import io
import os
from collections.abc import Callable
from typing import Any

import ipywidgets as W
import torch
from matplotlib.figure import Figure

from minis2l import patches as P

DPI = 100  # figures are drawn at DPI and shown at their pixel size: crisp, never stretched
REOPEN_HINT = (
    "Widget missing, or 'Error displaying widget: model not found'? A widget lives in the "
    "running kernel, not in the saved file: run the cells above (Run > Run All Cells)."
)
VOILA_HINT = "Widget missing, or not answering? Reload the page: it starts the explorer afresh."
_WIDE = {"description_width": "initial"}  # show a control's label in full, beside it


def under_voila() -> bool:
    """Whether this kernel serves a Voilà page.

    Voilà sets ``SERVER_SOFTWARE=voila/<version>`` in the environment of a kernel it starts
    for a page, and ``VOILA_PREHEAT`` in that of a preheated one (which gets the page's
    request only after it has run the notebook).
    """
    return os.environ.get("SERVER_SOFTWARE", "").startswith("voila/") or bool(
        os.environ.get("VOILA_PREHEAT")
    )


def display_with_hint(widget: W.Widget) -> None:
    """Display ``widget`` after a one-line hint that survives in the saved notebook.

    After a notebook is reopened its widgets are gone (they live in the kernel), and JupyterLab
    shows only "model not found"; the hint tells the student to run the cells above. Under
    Voilà it says to reload the page instead. It has the class ``minis2l-reopen-hint`` (the
    course website hides it).
    """
    from IPython.display import HTML, display

    text = VOILA_HINT if under_voila() else REOPEN_HINT
    hint = f"<p class='minis2l-reopen-hint' style='color:#777;margin:0'>{text}</p>"
    display(HTML(hint))
    display(widget)


def figure_png(fig: Figure, dpi: int = DPI) -> bytes:
    """Render a matplotlib figure to PNG bytes (no pyplot, no display backend needed)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def _pixel_size(fig: Figure, dpi: int = DPI) -> tuple[str, str]:
    """``(width, height)`` in pixels of ``fig`` rendered at ``dpi``, as Image widget strings."""
    width, height = fig.get_size_inches() * dpi
    return str(round(width)), str(round(height))


def _guarded(owner: Any, fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a callback of ``owner``: record (and show) any exception; re-raise it when strict.

    ``owner`` has ``errors`` (a list), ``strict`` (bool) and ``_say(text, error)``.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            owner.errors.append(exc)
            owner._say(f"error: {type(exc).__name__}: {exc}", error=True)
            if owner.strict:
                raise
            return None

    return wrapper


def _status_html(text: str, color: str) -> str:
    return f"<span style='color:{color}'>{html.escape(text)}</span>"


def _new_perm(k: int, generator: torch.Generator, old: torch.Tensor | None = None) -> torch.Tensor:
    """A random permutation of ``k`` pieces that moves at least one: never the identity, and
    never ``old`` (the shuffle on show) unless ``k = 2``, where only one order moves a piece."""
    avoid = [torch.arange(k)]
    if old is not None and len(old) == k and k > 2:
        avoid.append(old)
    while True:
        perm = P.random_permutations(1, k, generator=generator)[0]
        if not any(torch.equal(perm, a) for a in avoid):
            return perm
