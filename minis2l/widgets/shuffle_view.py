"""What :class:`~minis2l.widgets.ShuffleExplorer` shows: its controls, their layout, the figure.

``_ShuffleView`` is a mixin, as :class:`~minis2l.widgets.audio._AudioWorker` is: it makes the
explorer's widgets (each with a CSS class, the browser test's handle), lays them out, makes one
button per patch for the solve mode and draws the spectrograms with their patch grids. The
explorer (:mod:`minis2l.widgets.shuffle`) holds the state and answers the clicks.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as W
import numpy as np
from matplotlib.figure import Figure

from minis2l import patches as P
from minis2l.data import FAMILIES
from minis2l.widgets._common import _WIDE, _guarded, _pixel_size, figure_png
from minis2l.widgets.audio import wav_bytes
from minis2l.widgets.grid import _valid_k, draw_patch_grid


class _ShuffleView:
    """The explorer's widgets and figure (a mixin; see the module docstring).

    The explorer provides ``notes``, ``index``, ``max_patches``, ``sample_rate``,
    ``with_audio``, ``choose(patch)`` and the attributes its ``_guarded`` callbacks need.
    """

    def _build_controls(self, fams: list[int]) -> None:
        """The controls, image, players and texts, each with its CSS class."""
        self.family = W.Dropdown(
            options=[(FAMILIES[f], f) for f in fams], value=fams[0], description="family",
            style=_WIDE,
        )  # fmt: skip
        self.pitch = W.Dropdown(options=[], description="MIDI pitch", style=_WIDE)
        self.kind = W.ToggleButtons(
            options=list(P.KINDS), value="time", description="patches along", style=_WIDE,
            tooltips=["vertical strips", "horizontal bands", "a rows x cols grid of tiles"],
        )  # fmt: skip
        self.num_patches = W.SelectionSlider(
            options=_valid_k("time", self.max_patches), value=4, description="K patches",
            continuous_update=False, style=_WIDE,
        )  # fmt: skip
        self.shuffle_button = W.Button(description="shuffle", icon="random")
        self.reset_button = W.Button(description="reset", icon="undo")
        self.solve = W.Checkbox(value=False, description="solve it", indent=False)
        self.answer = W.Text(
            value="", description="or type the order", style=_WIDE,
            placeholder="shuffled patch numbers, e.g. 2 0 1 3",
        )  # fmt: skip
        self.undo_button = W.Button(description="undo", icon="undo", layout=W.Layout(width="6em"))
        self.clear_button = W.Button(description="clear", layout=W.Layout(width="6em"))
        self.patch_buttons = W.HBox([])
        self.image = W.Image(format="png")
        self.image.layout.align_self = "flex-start"
        # Players start with a moment of silence, hidden until their audio arrives: an empty
        # value breaks the browser's view ("Error setting state", an unplayable empty blob).
        silence = wav_bytes(np.zeros(160, dtype=np.float32), self.sample_rate)
        self.audio_original, self.audio_shuffled = (
            W.Audio(value=silence, format="wav", autoplay=False, loop=False, controls=True,
                    layout=W.Layout(visibility="hidden"))
            for _ in range(2)
        )  # fmt: skip
        self.caption = W.HTML()
        self.audio_status = W.HTML()
        self.status = W.HTML()
        self.help = W.HTML(
            "Pick a note and a patch kind, press <b>shuffle</b> and listen. Tick <b>solve it</b> "
            "for a fresh puzzle, then click the shuffled patches in the order that rebuilds the "
            "original."
        )
        for w, cls in (
            (self.family, "minis2l-family"),
            (self.pitch, "minis2l-pitch"),
            (self.kind, "minis2l-kind"),
            (self.num_patches, "minis2l-k-slider"),
            (self.shuffle_button, "minis2l-shuffle-button"),
            (self.reset_button, "minis2l-reset-button"),
            (self.solve, "minis2l-solve"),
            (self.answer, "minis2l-answer"),
            (self.undo_button, "minis2l-undo-button"),
            (self.clear_button, "minis2l-clear-button"),
            (self.image, "minis2l-image"),
            (self.caption, "minis2l-caption"),
            (self.audio_original, "minis2l-audio-original"),
            (self.audio_shuffled, "minis2l-audio-shuffled"),
            (self.audio_status, "minis2l-audio-status"),
            (self.status, "minis2l-status"),
        ):
            w.add_class(cls)

    def _lay_out(self) -> None:
        """Arrange the controls: the solve box and the players shown only when they apply."""
        click_row = W.HBox(
            [W.Label("click the shuffled patches, slot by slot:"), self.patch_buttons,
             self.undo_button, self.clear_button]
        )  # fmt: skip
        self._solve_box = W.VBox([click_row, self.answer])
        self._solve_box.layout.display = "none"
        self._players = W.HBox(
            [
                W.Label("listen: original note"), self.audio_original,
                W.Label("shuffled note"), self.audio_shuffled, self.audio_status,
            ]
        )  # fmt: skip
        self.widget = W.VBox(
            [
                self.help,
                W.HBox([self.family, self.pitch, self.kind]),
                W.HBox([self.num_patches, self.shuffle_button, self.reset_button, self.solve]),
                self._solve_box,
                self.status,
                self.image,
                self.caption,
                self._players,
            ]
        )
        self.widget.add_class("minis2l-shuffle-explorer")
        if not self.with_audio:
            self._players.layout.display = "none"

    def _make_patch_buttons(self) -> None:
        """One button per shuffled patch (solve mode): a click puts it in the next slot."""
        buttons = []
        for k in range(self.num_patches.value):
            b = W.Button(description=str(k), layout=W.Layout(width="3em"))
            b.tooltip = f"put shuffled patch {k} in the next slot"
            b.add_class("minis2l-patch-button")
            b.on_click(_guarded(self, lambda _, k=k: self.choose(k)))
            buttons.append(b)
        self.patch_buttons.children = buttons

    def _draw(
        self,
        panels: list[np.ndarray],
        k: int,
        kind: str,
        titles: list[str],
        labels: list[list[Any] | None],
    ) -> None:
        """Draw ``panels`` side by side on one colour scale, each with its patch grid, title and
        patch ``labels``; show the PNG and describe it in the caption."""
        fig = Figure(figsize=(9.6, 3.4))  # a fixed layout: constrained layout doubles the cost
        fig.subplots_adjust(left=0.06, right=0.885, bottom=0.14, top=0.84, wspace=0.06)
        finite = np.concatenate([p[np.isfinite(p)].ravel() for p in panels])
        vmin, vmax = float(finite.min()), float(finite.max())
        axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
        for ax, spec, title, lab in zip(axes, panels, titles, labels, strict=True):
            image = draw_patch_grid(ax, spec, k, kind, lab, title=title, vmin=vmin, vmax=vmax)
            if ax is not axes[0]:
                ax.set_ylabel("")
        fig.colorbar(image, cax=fig.add_axes((0.9, 0.14, 0.012, 0.7)), label="log power")
        note = self.notes.manifest[self.index]
        name = f"{note['family']} {note.get('program_name', '')}".strip()
        fig.suptitle(f"{name}, MIDI pitch {note['pitch']}, K = {k} {kind} patches")
        self.figure, self.last_image = fig, figure_png(fig)
        self.image.width, self.image.height = _pixel_size(fig)
        self.image.value = self.last_image
        self.caption.value = html.escape(  # the picture in words (ipywidgets' Image has no alt)
            f"Pictured: log-mel spectrograms of {name} at MIDI pitch {note['pitch']} ("
            + ", ".join(titles)
            + f"), cut into {k} {kind} patches, low frequencies at the bottom."
        )
