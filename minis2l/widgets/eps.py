"""The ε explorer of notebook 02: soft ranks of a fixed vector as ε and the regularization change.

:class:`EpsExplorer` draws its figure once and updates it in place (bar heights, title), then shows
it as PNG in an :class:`ipywidgets.Image`; its state (``ranks``, ``last_image``, ``message``,
``errors``) is plain Python, so it can be tested without a browser.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as W
import numpy as np
import torch
from matplotlib.figure import Figure

from minis2l.widgets._common import (
    _WIDE,
    _guarded,
    _pixel_size,
    _status_html,
    display_with_hint,
    figure_png,
)


def _library_soft_rank(x: np.ndarray, eps: float, regularization: str) -> np.ndarray:
    """:func:`minis2l.soft_rank` of a 1-D array (float64), as a 1-D array."""
    from minis2l.ranking import soft_rank

    values = torch.as_tensor(x, dtype=torch.float64)[None]
    return soft_rank(values, regularization, eps)[0].numpy()


class EpsExplorer:
    """The soft ranks of a fixed vector ``x`` as ε and the regularization change (notebook 02).

    Bars are the soft ranks, black ticks the hard ranks, the dotted line the constant
    ``(n + 1) / 2`` that every rank tends to as ε grows. The figure is drawn once and updated in
    place (bar heights, title), then put into an :class:`ipywidgets.Image`, so a drag of the
    slider neither blanks the picture nor moves the page.

    Args:
        x: the 1-D vector to rank (at least 2 entries).
        rank_fn: ``rank_fn(x, eps, regularization) -> ranks``; defaults to
            :func:`minis2l.soft_rank`. Notebook 02 passes its from-scratch version.
        eps: the starting ε (the slider spans 0.01 to 100).
        strict: re-raise exceptions from callbacks (they are always recorded in ``errors``).

    State: ``ranks`` (what the bars show), ``figure`` and ``last_image`` (its PNG bytes),
    ``redraws`` (count), ``message`` and ``errors``. Display it as the last expression of a cell.
    """

    def __init__(
        self,
        x: Sequence[float] | np.ndarray,
        rank_fn: Callable[[np.ndarray, float, str], np.ndarray] | None = None,
        *,
        eps: float = 1.0,
        strict: bool = False,
    ) -> None:
        self.x = np.asarray(x, dtype=np.float64)
        if self.x.ndim != 1 or len(self.x) < 2:
            raise ValueError(f"x must be a 1-D vector of at least 2 values, got {self.x.shape}")
        if not 0.01 <= eps <= 100:
            raise ValueError(f"eps must be in [0.01, 100], got {eps}")
        self.rank_fn = rank_fn or _library_soft_rank
        self.strict = bool(strict)
        self.errors: list[BaseException] = []
        self.message = ""
        self.redraws = 0
        self.last_image = b""
        self.ranks = np.zeros_like(self.x)
        n = len(self.x)
        self.eps = W.FloatLogSlider(
            value=eps, base=10, min=-2, max=2, step=0.05, description="ε (strength)",
            readout_format=".3g", style=_WIDE,
        )  # fmt: skip
        self.regularization = W.ToggleButtons(
            options=["l2", "kl"], value="l2", description="regularization", style=_WIDE
        )
        self.help = W.HTML(
            "Drag ε: small ε gives the hard ranks (black ticks), large ε pulls every rank to "
            f"(n+1)/2 = {(n + 1) / 2:g} (dotted line). Switch l2 / kl to compare the two."
        )
        values = ", ".join(f"{v:g}" for v in self.x)
        self.vector = W.HTML(f"input x = [{values}]")
        self.status = W.HTML()

        self.figure = Figure(figsize=(6.4, 3.2), layout="constrained")
        ax = self.figure.add_subplot()
        entries = np.arange(n)
        self._bars = ax.bar(entries, np.zeros(n), color="C0", alpha=0.7, label="soft rank")
        hard = np.argsort(np.argsort(self.x)) + 1
        ax.plot(entries, hard, "k_", ms=25, mew=2, label="hard rank")
        ax.axhline((n + 1) / 2, color="k", ls=":", lw=1, label="$(n+1)/2$")
        ax.set_xticks(entries, [f"$x_{{{i}}}$ = {v:g}" for i, v in enumerate(self.x)])
        ax.set(xlabel="entry of x (and its value)", ylabel="rank", ylim=(0, n + 1.6))
        ax.legend(loc="upper left", fontsize=8, ncols=3)
        self._ax = ax
        width, height = _pixel_size(self.figure)
        self.image = W.Image(format="png", width=width, height=height)
        self.image.layout.align_self = "flex-start"

        for w, cls in (
            (self.eps, "minis2l-eps-slider"),
            (self.regularization, "minis2l-regularization"),
            (self.image, "minis2l-eps-image"),
            (self.status, "minis2l-eps-status"),
        ):
            w.add_class(cls)
        self.widget = W.VBox(
            [self.help, self.vector, W.HBox([self.eps, self.regularization]), self.image,
             self.status]
        )  # fmt: skip
        self.widget.add_class("minis2l-eps-explorer")
        self.eps.observe(_guarded(self, self._redraw), names="value")
        self.regularization.observe(_guarded(self, self._redraw), names="value")
        _guarded(self, self._redraw)()

    def _ipython_display_(self) -> None:
        display_with_hint(self.widget)

    def _say(self, text: str, error: bool = False) -> None:
        self.message = text
        self.status.value = _status_html(text, "#b00" if error else "#333")

    def _redraw(self, _change: Any = None) -> None:
        """Recompute the ranks for the controls' current values and redraw the figure in place."""
        eps, reg = float(self.eps.value), self.regularization.value
        ranks = np.asarray(self.rank_fn(self.x, eps, reg), dtype=np.float64)
        for bar, height in zip(self._bars, ranks, strict=True):
            bar.set_height(height)
        self._ax.set_title(f"soft rank, {reg}, ε = {eps:.3g}")
        self.ranks = ranks
        self.last_image = figure_png(self.figure)
        self.image.value = self.last_image
        self.redraws += 1
        self._say(f"ε = {eps:.3g}, {reg}: soft ranks " + ", ".join(f"{r:.2f}" for r in ranks))
