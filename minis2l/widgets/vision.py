"""The vision puzzles: watch a rank model put an image's tiles, or a clip's frames, back in order.

:class:`TilePuzzle` shows one image cut into a grid of tiles, the tiles shuffled (each shuffled
slot numbered ``j``) and how a rank model put them back; :class:`ClipShuffle` does the same for
the frames of a clip (a film strip, see :mod:`minis2l.vision.video`), with a player that animates
the original, shuffled and reordered clips frame by frame. The shared machinery (the state, the
figure, the status line) is :class:`minis2l.widgets.puzzle._Puzzle`.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as W
import numpy as np
import torch
from matplotlib.figure import Figure

from minis2l.widgets._common import _guarded, _pixel_size, figure_png
from minis2l.widgets.puzzle import _as_inputs, _panel, _Puzzle


class TilePuzzle(_Puzzle):
    """An image cut into tiles, shuffled, and put back together by a rank model.

    Args:
        images: standardized images ``(N, H, W)``, e.g. ``load_images(fast=True).inputs["test"]``.
        model: a rank :class:`~minis2l.models.PermutationModel` (``kind="2d"``, the same K and
            jitter), or None (then the solve button is disabled and says why).
        num_patches: K tiles (a rows x cols grid: 4, 6, 8, 9, ...).
        jitter: pixels centre-cropped off each tile's height and width, as the model sees them.
        class_names: one name per image, shown in the title (optional).
        strict: re-raise exceptions from callbacks (always recorded in ``errors``).

    State: ``perm``, ``prediction`` (each slot's predicted original position, or None),
    ``placed`` (positions showing the original tile), ``message``, ``errors``, ``last_image``
    (PNG bytes). Display it as the last expression of a cell.
    """

    def __init__(
        self,
        images: Any,
        model: Any = None,
        *,
        num_patches: int = 9,
        jitter: int = 2,
        class_names: list[str] | None = None,
        strict: bool = False,
    ) -> None:
        inputs = _as_inputs(images, "images")
        if class_names is not None and len(class_names) != len(inputs):
            raise ValueError(f"{len(class_names)} class names for {len(inputs)} images")
        self.class_names = None if class_names is None else [str(c) for c in class_names]
        super().__init__(inputs, model, num_patches, jitter, strict)
        self.widget = W.VBox(
            [self._controls, self.model_note, self.status, self.image, self.caption]
        )
        self.widget.add_class("minis2l-tile-puzzle")
        _guarded(self, self._refresh)()

    def _title(self) -> str:
        name = f" ({self.class_names[self.index]})" if self.class_names else ""
        return f"image {self.index}{name} cut into {self.rows} x {self.cols} tiles"


class ClipShuffle(_Puzzle):
    """A clip's frames, shuffled and put back in order by a rank model, with a player.

    Args:
        strips: film strips ``(N, H, frames * W)`` (``load_video(fast=True).inputs["test"]``).
        model: a rank :class:`~minis2l.models.PermutationModel` (``kind="time"``, K = frames),
            or None (then the reorder button is disabled and says why).
        frames: frames per clip.
        strict: re-raise exceptions from callbacks (always recorded in ``errors``).

    State as :class:`TilePuzzle`, plus ``frame_images`` (one PNG per frame, the original,
    shuffled and reordered clips side by side, made once per shuffle or answer so playing only
    swaps bytes) and ``frame`` (the one on show). :meth:`show_frame` is what the player calls.
    """

    kind, noun, figsize = "time", "frame", (7.2, 3.9)
    shuffle_text, solve_text = "Shuffle frames", "Let the model reorder"
    titles = ("original clip (frame t)", "shuffled (slot j)", "model's reorder (slot)")

    def __init__(
        self, strips: Any, model: Any = None, *, frames: int = 8, strict: bool = False
    ) -> None:
        inputs = _as_inputs(strips, "strips")
        if int(frames) < 2:
            raise ValueError(f"a clip needs frames >= 2 to shuffle, got frames={frames}")
        if inputs.shape[-1] % int(frames):
            raise ValueError(f"strips {inputs.shape[-1]} px wide do not hold {frames} frames")
        jitter = 0 if model is None else int(getattr(model, "jitter", 0))
        super().__init__(inputs, model, int(frames), jitter, strict)
        self.frame, self.frame_images = 0, []
        self.frame_slider = W.IntSlider(value=0, min=0, max=frames - 1, description="frame")
        self.play = W.Play(value=0, min=0, max=frames - 1, interval=400, repeat=True)
        self._link = W.jslink((self.play, "value"), (self.frame_slider, "value"))
        self.frame_image = W.Image(format="png")
        self.frame_image.add_class("minis2l-frame-image")
        self.frame_slider.add_class("minis2l-frame-slider")
        self.frame_image.layout.align_self = "flex-start"
        self.player_figure = fig = Figure(figsize=(4.8, 1.9))  # made once, updated per frame
        fig.subplots_adjust(left=0.02, right=0.98, bottom=0.03, top=0.78, wspace=0.1)
        self._player_axes = fig.subplots(1, 3)
        panels = [_panel(ax, self.pieces.shape[-2:], "") for ax in self._player_axes]
        self._player_arts, self._player_hint = [art for art, _ in panels], panels[2][1]
        self.frame_image.width, self.frame_image.height = _pixel_size(fig)
        show = _guarded(self, lambda c: self._updating or self.show_frame(c["new"]))
        self.frame_slider.observe(show, "value")
        player = W.HBox([W.Label("play the three clips:"), self.play, self.frame_slider])
        self.widget = W.VBox(
            [self._controls, self.model_note, self.status, player, self.frame_image,
             self.image, self.caption]
        )  # fmt: skip
        self.widget.add_class("minis2l-clip-shuffle")
        _guarded(self, self._refresh)()

    def show_frame(self, t: int) -> None:
        """Show frame ``t`` of the three clips."""
        if not 0 <= int(t) < self.num_patches:
            raise ValueError(f"frame {t} is out of range: use 0 to {self.num_patches - 1}")
        self.frame = int(t)
        self._quietly(self.frame_slider, self.frame)
        self.frame_image.value = self.frame_images[self.frame]

    def _title(self) -> str:
        return f"clip {self.index} as film strips of {self.num_patches} frames"

    def _refresh(self) -> None:
        super()._refresh()
        pieces, back = self.pieces.numpy(), self.reassembled
        later = np.full_like(pieces, np.nan) if back is None else back.numpy()
        sources = (pieces, self.shuffled.numpy(), later)
        self._player_hint.set_text(self._hint() if back is None else "")
        slot = None if back is None else torch.argsort(self.prediction).tolist()
        colors = self._verdict()[1]
        axes, self.frame_images = self._player_axes, []
        for t in range(self.num_patches):
            for art, src in zip(self._player_arts, sources, strict=True):
                art.set_data(src[t])
                art.set_clim(float(pieces.min()), float(pieces.max()))
            axes[0].set_title(f"original, frame {t}", fontsize=9)
            axes[1].set_title(f"shuffled, slot {t}", fontsize=9)
            axes[2].set_title(
                f"model, frame {t}" + ("" if slot is None else f" (slot {slot[t]})"),
                fontsize=9, color="black" if slot is None else colors[t],
            )  # fmt: skip
            self.frame_images.append(figure_png(self.player_figure))
        self.frame_image.value = self.frame_images[self.frame]
