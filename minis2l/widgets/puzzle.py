"""The machinery the vision puzzles share: a rank model puts shuffled pieces back in order.

:class:`_Puzzle` holds one item of a set, its pieces (:mod:`minis2l.patches`), the shuffle on
screen and the model's answer, draws the original, shuffled and reassembled pieces in one
figure (made once, updated in place) and writes the status line. :mod:`~minis2l.widgets.vision`
builds :class:`~minis2l.widgets.vision.TilePuzzle` and
:class:`~minis2l.widgets.vision.ClipShuffle` on it.

The model scores the shuffled pieces; the predicted original position of slot ``j`` is
``hard_rank(scores)[j] - 1``, and the reassembly puts slot ``j`` there. Slot ``j`` holds original
piece ``perm[j]`` (:mod:`minis2l.patches`), so it is in place when the prediction is ``perm[j]``,
or when the piece there looks the same (two blank tiles are interchangeable): ``placed`` counts
the positions that show the original's pixels.
"""

from __future__ import annotations

import functools
import html
from typing import Any

import ipywidgets as W
import matplotlib
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.text import Text

from minis2l import patches as P
from minis2l.ranking import hard_rank
from minis2l.widgets._common import (
    _WIDE,
    _guarded,
    _new_perm,
    _pixel_size,
    _status_html,
    display_with_hint,
    figure_png,
)

_GOOD, _BAD = "#4d4", "#f55"  # a placed piece's label: in place, misplaced
_GRAY = matplotlib.colormaps["gray"].with_extremes(bad="white")  # NaN gaps between pieces


def _as_inputs(x: Any, name: str) -> torch.Tensor:
    """``x`` as a float32 ``(N, H, W)`` tensor of finite values, or a ValueError naming why."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    t = torch.from_numpy(np.array(x, dtype=np.float32))  # a copy: inputs may be read-only
    if t.dim() != 3 or len(t) == 0:
        raise ValueError(f"{name} must be (N, H, W) with N >= 1, got shape {tuple(t.shape)}")
    bad = (~torch.isfinite(t)).flatten(1).any(1)
    if bad.any():
        items = torch.nonzero(bad)[:5, 0].tolist()
        raise ValueError(f"{name} hold NaN or infinite values (items {items})")
    return t


def _mosaic(pieces: np.ndarray, rows: int, cols: int, gap: int = 1) -> np.ndarray:
    """Pieces ``(K, h, w)`` laid out on a ``rows x cols`` grid with ``gap`` NaN pixels between."""
    k, h, w = pieces.shape
    out = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap), np.nan, np.float32)
    for i, piece in enumerate(pieces):
        r, c = divmod(i, cols)
        out[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = piece
    return out


def _panel(ax: Axes, shape: tuple[int, ...], title: str) -> tuple[AxesImage, Text]:
    """An image of ``shape`` in grey (NaN gaps white) without ticks, and a text in its middle."""
    art = ax.imshow(np.full(shape, np.nan), cmap=_GRAY, interpolation="nearest")
    ax.set(xticks=[], yticks=[], title=title)
    return art, ax.text(0.5, 0.5, "", ha="center", va="center", transform=ax.transAxes, fontsize=8)


def _piece_labels(ax: Axes, shape: tuple[int, ...], cols: int, numbered: bool) -> list[Text]:
    """A label at the top left of each piece ``(K, h, w)`` of a :func:`_mosaic`: its number
    (white) when ``numbered``, else empty (filled in later)."""
    k, h, w = shape
    return [
        ax.text(
            (i % cols) * (w + 1) - 0.3,
            (i // cols) * (h + 1) - 0.3,
            str(i) if numbered else "",
            ha="left",
            va="top",
            fontsize=8,
            color="white",
            fontweight="bold",
            bbox={"facecolor": "black", "edgecolor": "none", "pad": 1.0, "alpha": 0.8},
        )  # fmt: skip
        for i in range(k)
    ]


def _check_model(model: Any, kind: str, num_patches: int, jitter: int) -> None:
    """Raise ValueError unless ``model`` is a rank model that cuts the puzzle's pieces."""
    method = getattr(model, "method", None)
    if method != "rank":
        raise ValueError(
            f"the model must be a rank model (method='rank'), got method={method!r}: only a "
            "rank model scores each piece, and the scores say where the pieces go"
        )
    got = (getattr(model, "kind", None), getattr(model, "num_patches", None))
    if got != (kind, num_patches):
        raise ValueError(
            f"the model cuts {got[1]} {got[0]!r} pieces, this puzzle {num_patches} {kind!r} ones"
        )
    if int(getattr(model, "jitter", 0)) != jitter:
        raise ValueError(f"the model crops jitter={model.jitter}, this puzzle jitter={jitter}")


class _Puzzle:
    """What both puzzles share: the item, the shuffle, the model's answer, status and figure."""

    kind, noun, figsize = "2d", "tile", (7.2, 2.8)
    shuffle_text, solve_text = "Shuffle", "Let the model solve it"
    titles = ("original", "shuffled (slot j)", "model's reassembly (slot)")

    def __init__(
        self, inputs: torch.Tensor, model: Any, num_patches: int, jitter: int, strict: bool
    ) -> None:
        self.inputs, self.model, self.num_patches = inputs, model, int(num_patches)
        self.rows, self.cols = P.grid_shape(self.num_patches, self.kind)
        self.jitter, self.strict = int(jitter), bool(strict)
        if model is not None:
            _check_model(model, self.kind, self.num_patches, self.jitter)
        shape = tuple(self.pieces_of(inputs[:1]).shape[1:])  # (or a ValueError saying why not)
        self.errors: list[BaseException] = []
        self.message, self.last_image, self.placed = "", b"", 0
        self.prediction: torch.Tensor | None = None
        self._gen, self._updating = torch.Generator().manual_seed(0), False
        self.perm = _new_perm(self.num_patches, self._gen)
        n = len(inputs)
        self.item = W.BoundedIntText(
            value=0, min=0, max=n - 1, description=f"item (0 to {n - 1})", style=_WIDE,
            layout=W.Layout(width="14em"),
        )  # fmt: skip
        self.shuffle_button = W.Button(description=self.shuffle_text, icon="random")
        self.solve_button = W.Button(description=self.solve_text, layout=W.Layout(width="auto"))
        self.solve_button.disabled = model is None
        self.model_note = W.Label(
            "the model scores the shuffled pieces; each goes where its rank says"
            if model is not None
            else "no model given: pass a trained rank model to let it solve the puzzle"
        )
        self.image = W.Image(format="png")
        self.image.layout.align_self = "flex-start"
        self.caption, self.status = W.HTML(), W.HTML()
        guard = functools.partial(_guarded, self)
        self.item.observe(guard(lambda c: self._updating or self.select(c["new"])), "value")
        self.shuffle_button.on_click(guard(lambda _: self.shuffle()))
        self.solve_button.on_click(guard(lambda _: self.solve()))
        self._controls = W.HBox([self.item, self.shuffle_button, self.solve_button])
        for widget, name in (
            (self.image, "image"),
            (self.status, "status"),
            (self.shuffle_button, "shuffle"),
            (self.solve_button, "solve"),
            (self.item, "item"),
        ):
            widget.add_class(f"minis2l-puzzle-{name}")  # handles for the browser test
        # The figure is made once and updated in place (a new one per redraw costs twice as much).
        art_shape = _mosaic(np.zeros(shape, np.float32), self.rows, self.cols).shape
        self.figure = fig = Figure(figsize=self.figsize)
        side = self.kind == "2d"  # tiles side by side, film strips one above the other
        fig.subplots_adjust(left=0.02, right=0.98, bottom=0.03, top=0.8 if side else 0.86)
        axes = fig.subplots(*((1, 3) if side else (3, 1)), gridspec_kw={"hspace": 0.45})
        panels = [_panel(ax, art_shape, self.titles[i]) for i, ax in enumerate(axes)]
        self._arts, self._hint_text = [art for art, _ in panels], panels[2][1]
        if not side:  # the frame numbers along the original strip
            _piece_labels(axes[0], shape, self.cols, numbered=True)
        _piece_labels(axes[1], shape, self.cols, numbered=True)  # the slot numbers
        self._answer_labels = _piece_labels(axes[2], shape, self.cols, numbered=False)
        self._suptitle = fig.suptitle("")
        self.image.width, self.image.height = _pixel_size(fig)

    def _ipython_display_(self) -> None:
        display_with_hint(self.widget)

    def _quietly(self, widget: W.Widget, value: Any) -> None:
        """Set a control's value without running its observer."""
        self._updating = True
        try:
            widget.value = value
        finally:
            self._updating = False

    # ---------------------------------------------------------------- state

    @property
    def index(self) -> int:
        """The item on show."""
        return int(self.item.value)

    def pieces_of(self, x: torch.Tensor) -> torch.Tensor:
        """Natural-order pieces ``(B, K, h, w)`` of inputs ``(B, H, W)``, cropped by jitter."""
        return P.cut_pieces(x, self.num_patches, self.kind, self.jitter)

    @property
    def pieces(self) -> torch.Tensor:
        """The item's pieces ``(K, h, w)`` in their natural order."""
        return self.pieces_of(self.inputs[self.index][None])[0]

    @property
    def shuffled(self) -> torch.Tensor:
        """The pieces as shuffled: slot ``j`` holds piece ``perm[j]``."""
        return P.permute_patches(self.pieces, self.perm)

    @property
    def reassembled(self) -> torch.Tensor | None:
        """The shuffled pieces where the model put them (None before it tried)."""
        if self.prediction is None:
            return None
        out = torch.empty_like(self.pieces)
        out[self.prediction] = self.shuffled
        return out

    # ---------------------------------------------------------------- actions

    def select(self, index: int) -> None:
        """Show item ``index`` (the same shuffle; the model's answer is cleared)."""
        if not 0 <= int(index) < len(self.inputs):
            raise ValueError(f"item {index} is out of range: use 0 to {len(self.inputs) - 1}")
        self._quietly(self.item, int(index))
        self.prediction = None
        self._refresh()

    def shuffle(self) -> None:
        """A fresh permutation, never the identity nor the one on show (unless K = 2)."""
        self.perm, self.prediction = _new_perm(self.num_patches, self._gen, self.perm), None
        self._refresh()

    def solve(self) -> None:
        """Let the model score the shuffled pieces and put each where its rank says.

        The model runs in eval mode, on its own device, and gets its train/eval mode back."""
        if self.model is None:
            raise ValueError("no model to solve the puzzle: pass a trained rank model")
        param = next(iter(self.model.parameters()), None)
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                x = self.inputs[self.index][None].to(param.device if param is not None else "cpu")
                scores = self.model(P.permute_patches(self.model.pieces(x), self.perm))
        finally:
            self.model.train(was_training)
        if tuple(scores.shape) != (1, self.num_patches):
            raise ValueError(f"the model gave scores of shape {tuple(scores.shape)}, not (1, K)")
        self.prediction = (hard_rank(scores.float().cpu())[0] - 1).long()
        self._refresh()

    # ---------------------------------------------------------------- drawing

    def _say(self, text: str, error: bool = False) -> None:
        self.message = text
        color = "#b00" if error else "#060" if "solved!" in text else "#333"
        self.status.value = _status_html(text, color)

    def _verdict(self) -> tuple[str, list[str]]:
        """The status line, and the label colour of each reassembled position."""
        k, hint = self.num_patches, self._hint()
        if self.prediction is None:
            self.placed = 0
            return f"Shuffled: where does each {self.noun} go? ({hint})", []
        back, pieces = self.reassembled, self.pieces  # in place: the original's pixels there
        right = torch.tensor([torch.equal(back[int(p)], pieces[int(p)]) for p in self.prediction])
        self.placed = int(right.sum())
        colors = [""] * k
        for j in range(k):
            colors[int(self.prediction[j])] = _GOOD if right[j] else _BAD
        text = f"the model put {self.placed} of {k} {self.noun}s in place"
        if self.placed == k:
            return text + ": solved!", colors
        wrong = torch.nonzero(~right)[:, 0].tolist()
        return f"{text}; not solved: slots {wrong} went to the wrong place", colors

    def _hint(self) -> str:
        return "no model to try" if self.model is None else f"press '{self.solve_text}'"

    def _refresh(self) -> None:
        """Redraw the figure and the status line from the state."""
        text, colors = self._verdict()
        pieces, shuffled, back = self.pieces.numpy(), self.shuffled.numpy(), self.reassembled
        later = np.full_like(shuffled, np.nan) if back is None else back.numpy()
        for art, src in zip(self._arts, (pieces, shuffled, later), strict=True):
            art.set_data(_mosaic(src, self.rows, self.cols))
            art.set_clim(float(pieces.min()), float(pieces.max()))
        self._hint_text.set_text(self._hint() if back is None else "")
        slot = [""] * self.num_patches if back is None else torch.argsort(self.prediction).tolist()
        for label, j, color in zip(self._answer_labels, slot, colors or slot, strict=True):
            label.set(text=str(j), color=color or "white")  # the slot put at each position
        self._say(text)
        self._suptitle.set_text(self._title())
        self.last_image = figure_png(self.figure)
        self.image.value = self.last_image
        self.caption.value = html.escape(
            f"Pictured: {self._title()}: in order, shuffled (each slot numbered) and as the "
            f"model put them back (the slot numbers, green where the {self.noun} is in place)."
        )

    def _title(self) -> str:
        raise NotImplementedError
