"""The patch-shuffle explorer of notebook 04, and its "solve it" mode.

:class:`ShuffleExplorer` takes a :class:`minis2l.data.NoteSet` and shows one note's log-mel
spectrogram next to a shuffled copy, with the patch borders and numbers drawn, and a player for
each (Griffin-Lim inversion of the log-mel, so you *hear* what a shuffle does; see
:mod:`minis2l.widgets.audio`). In "solve it" mode the student clicks (or types) the shuffled patch
numbers in the order that rebuilds the original and sees the reassembled spectrogram and whether
it is right.

Patch numbering follows :mod:`minis2l.patches`: patches in reading order (left to right, then
top to bottom), ``shuffled[j] = patches[perm[j]]``.
"""

from __future__ import annotations

import functools
import html
from typing import Any

import ipywidgets as W
import numpy as np
import torch
from matplotlib.figure import Figure

from minis2l import patches as P
from minis2l.data import FAMILIES
from minis2l.widgets._common import (
    _WIDE,
    _guarded,
    _pixel_size,
    _status_html,
    display_with_hint,
    figure_png,
)
from minis2l.widgets.audio import HOP_LENGTH, N_FFT, _AudioWorker, wav_bytes
from minis2l.widgets.grid import _valid_k, draw_patch_grid, parse_order


class ShuffleExplorer(_AudioWorker):
    """See, shuffle, listen to and solve the patches of one note's log-mel spectrogram.

    Args:
        noteset: a :class:`minis2l.data.NoteSet` (any split); features ``(N, F, T)`` log-mel.
        seed: seeds the shuffles (the same clicks give the same permutations).
        max_patches: the largest K on the slider (at least 4, the smallest 2-D grid).
        n_iter: Griffin-Lim iterations for the audio (more is cleaner and slower).
        audio: make the audio players (turn off for speed when only the pictures matter).
        strict: re-raise exceptions from callbacks (tests use it); they are always recorded
            in :attr:`errors` and shown in the status line.

    The K slider offers only the K that cut the chosen kind of patch: for 2-D patches the
    primes (no rows x cols grid) are left out, and switching to 2-D with a prime K moves K to
    the nearest grid and says so. Audio is computed on a background thread once per note and
    shuffle (and cached), so the picture answers at once; :meth:`wait_audio` waits for it.

    Display it in a notebook as the last expression of a cell (or ``display(explorer)``).
    """

    def __init__(
        self,
        noteset: Any,
        *,
        seed: int = 0,
        max_patches: int = 12,
        n_iter: int = 32,
        audio: bool = True,
        strict: bool = False,
    ) -> None:
        if len(noteset) == 0:
            raise ValueError("noteset is empty")
        if max_patches < 4:
            raise ValueError(f"max_patches must be at least 4, got {max_patches}")
        self.notes = noteset
        self.max_patches = int(max_patches)
        self.sample_rate = int(noteset.metadata["params"]["sample_rate"])
        feat = noteset.metadata["params"].get("features", {})
        self._n_fft = int(feat.get("n_fft", N_FFT))
        self._hop = int(feat.get("hop_length", HOP_LENGTH))
        self.n_iter = int(n_iter)
        self.with_audio = bool(audio)
        self.strict = bool(strict)
        self.errors: list[BaseException] = []
        self.message = ""
        self.last_image = b""
        self.placed: list[int] = []  # solve mode: the last valid answer, slot by slot
        self._note = ""  # said once, before the next message (e.g. why K moved)
        self._gen = torch.Generator().manual_seed(seed)
        self._start_audio_worker()
        self._updating = False

        fams = sorted({int(f) for f in noteset.family})
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

        guard = functools.partial(_guarded, self)
        self.family.observe(guard(self._on_family), names="value")
        self.pitch.observe(guard(self._on_note), names="value")
        self.kind.observe(guard(self._on_kind), names="value")
        self.num_patches.observe(guard(self._on_k), names="value")
        self.solve.observe(guard(self._on_solve_mode), names="value")
        self.answer.observe(guard(self._on_answer), names="value")
        self.shuffle_button.on_click(guard(lambda _: self.shuffle()))
        self.reset_button.on_click(guard(lambda _: self.reset()))
        self.undo_button.on_click(guard(lambda _: self.undo()))
        self.clear_button.on_click(guard(lambda _: self._set_answer([])))

        self.perm = self._new_perm(self.num_patches.value)
        self._make_patch_buttons()
        guard(self._on_family)()

    def _ipython_display_(self) -> None:
        display_with_hint(self.widget)

    # ---------------------------------------------------------------- state

    @property
    def index(self) -> int:
        """Row of ``noteset`` on show: the chosen family and pitch, loudest velocity."""
        fam, pitch = self.family.value, self.pitch.value
        rows = np.flatnonzero((self.notes.family == fam) & (self.notes.pitch == pitch))
        if len(rows) == 0:
            raise ValueError(f"no note of family {FAMILIES[fam]} at pitch {pitch}")
        return int(rows[np.argmax(self.notes.velocity[rows])])

    @property
    def spectrogram(self) -> torch.Tensor:
        """The note's log-mel, float32 ``(F, T)``, cropped to the patch grid."""
        x = torch.from_numpy(np.asarray(self.notes.features[self.index], dtype=np.float32))
        return P.crop_to_patches(x, self.num_patches.value, self.kind.value)

    @property
    def shuffled(self) -> torch.Tensor:
        """The spectrogram with its patches permuted by :attr:`perm`."""
        return P.shuffle(self.spectrogram, self.perm, self.num_patches.value, self.kind.value)

    @property
    def solution(self) -> list[int]:
        """The order that rebuilds the original: shuffled patch numbers, slot by slot."""
        return P.invert_permutation(self.perm).tolist()

    # ---------------------------------------------------------------- actions

    def shuffle(self) -> None:
        """Draw a new permutation of the K patches, never the identity nor the one on show.

        With K = 2 the only order that moves a patch is drawn again, and the message says so.
        """
        k, old = self.num_patches.value, self.perm
        self.perm = self._new_perm(k, old)
        if torch.equal(self.perm, old):
            self._note = "Shuffled again: with K = 2 there is only one order that moves a patch."
        self._set_answer([], refresh=False)
        self._refresh()

    def _new_perm(self, k: int, old: torch.Tensor | None = None) -> torch.Tensor:
        avoid = [torch.arange(k)]
        if old is not None and len(old) == k and k > 2:
            avoid.append(old)
        perm = P.random_permutations(1, k, generator=self._gen)[0]
        while any(torch.equal(perm, a) for a in avoid):
            perm = P.random_permutations(1, k, generator=self._gen)[0]
        return perm

    def reset(self) -> None:
        """Put the patches back in order (the identity permutation)."""
        self.perm = torch.arange(self.num_patches.value)
        self._set_answer([], refresh=False)
        self._refresh()

    def choose(self, patch: int) -> None:
        """Solve mode: put shuffled patch ``patch`` in the next free slot (a patch button)."""
        if int(patch) in self.placed:
            self._say(f"patch {patch} is already placed: undo or clear to move it", error=True)
            return
        self._set_answer([*self.placed, int(patch)])

    def undo(self) -> None:
        """Solve mode: take the last placed patch out again."""
        self._set_answer(self.placed[:-1])

    def wait_audio(self, timeout: float | None = 60) -> None:
        """Block until the players hold the audio of what is on show (tests, scripts).

        Raises the audio job's exception when ``strict``; it is recorded in ``errors`` anyway.
        """
        job = self._audio_job
        if job is not None:
            job.result(timeout)
        if self.strict and self.errors:
            raise self.errors[-1]

    def _set_answer(self, order: list[int], refresh: bool = True) -> None:
        """Show ``order`` in the text box and take it as the answer (redraw unless told not)."""
        self.placed = list(order)
        self._updating = True
        try:
            self.answer.value = " ".join(map(str, order))
        finally:
            self._updating = False
        if refresh:
            self._refresh(audio=False)

    # ---------------------------------------------------------------- callbacks

    def _on_family(self, _change: Any = None) -> None:
        fam = self.family.value
        pitches = sorted({int(p) for p in self.notes.pitch[self.notes.family == fam]})
        old = self.pitch.value
        self._updating = True
        try:
            self.pitch.options = pitches
            self.pitch.value = old if old in pitches else pitches[len(pitches) // 2]
        finally:
            self._updating = False
        self._on_note()

    def _on_note(self, _change: Any = None) -> None:
        if self._updating:
            return
        self._set_answer([], refresh=False)
        self._refresh()

    def _on_kind(self, _change: Any = None) -> None:
        kind, k = self.kind.value, self.num_patches.value
        offered = _valid_k(kind, self.max_patches)
        new_k = k if k in offered else min(offered, key=lambda v: (abs(v - k), v))
        if new_k != k:
            rows, cols = P.grid_shape(new_k, kind)
            self._note = (
                f"K = {k} is prime, so it has no 2-D grid: K is now {new_k} "
                f"({rows} x {cols} tiles)."
            )
        self._updating = True
        try:
            self.num_patches.options = offered
            self.num_patches.value = new_k
        finally:
            self._updating = False
        self._on_k()

    def _on_k(self, _change: Any = None) -> None:
        if self._updating:
            return
        self._make_patch_buttons()
        self.shuffle()

    def _on_solve_mode(self, _change: Any = None) -> None:
        self._solve_box.layout.display = "" if self.solve.value else "none"
        if self.solve.value:  # a fresh puzzle: the last one's answer was just on screen
            self.shuffle()
        else:
            self._set_answer([], refresh=False)
            self._refresh(audio=False)

    def _on_answer(self, _change: Any = None) -> None:
        if self._updating:
            return
        try:
            self.placed = parse_order(self.answer.value, self.num_patches.value)
        except ValueError as exc:  # the student's mistake: say so, keep the last reassembly
            self._refresh(audio=False, problem=f"your order: {exc}")
            return
        self._refresh(audio=False)

    def _make_patch_buttons(self) -> None:
        buttons = []
        for k in range(self.num_patches.value):
            b = W.Button(description=str(k), layout=W.Layout(width="3em"))
            b.tooltip = f"put shuffled patch {k} in the next slot"
            b.add_class("minis2l-patch-button")
            b.on_click(_guarded(self, lambda _, k=k: self.choose(k)))
            buttons.append(b)
        self.patch_buttons.children = buttons

    # ---------------------------------------------------------------- drawing

    def _say(self, text: str, error: bool = False) -> None:
        self.message = text
        color = "#b00" if error else "#060" if text.startswith("Solved") else "#333"
        self.status.value = _status_html(text, color)

    def _refresh(self, audio: bool = True, problem: str | None = None) -> None:
        """Redraw the figure, buttons and message from the current state (and queue the audio)."""
        k, kind = self.num_patches.value, self.kind.value
        original, shuffled = self.spectrogram, self.shuffled
        panels = [original.numpy(), shuffled.numpy()]
        titles = ["original", "shuffled"]
        labels: list[list[Any] | None] = [None, self.perm.tolist()]
        if self.solve.value:
            labels[1] = None  # slot numbers: the perm must not be on show
            panels.append(self._rebuild(shuffled, self.placed))
            titles.append("your reassembly")
            labels.append([*self.placed, *([None] * (k - len(self.placed)))])
            text = problem or self._verdict(self.placed)
        elif bool((self.perm == torch.arange(k)).all()):
            text = "in order: press shuffle"
        else:
            text = f"shuffled: slot j holds original patch perm[j]; perm = {self.perm.tolist()}"
        for b in self.patch_buttons.children:
            b.disabled = int(b.description) in self.placed
        self.undo_button.disabled = self.clear_button.disabled = not self.placed
        self._say(f"{self._note} {text}".strip(), error=problem is not None)
        self._note = ""
        self._draw(panels, k, kind, titles, labels)
        if audio:
            self._queue_audio()

    def _rebuild(self, shuffled: torch.Tensor, order: list[int]) -> np.ndarray:
        k, kind = self.num_patches.value, self.kind.value
        pieces = P.split_patches(shuffled, k, kind)
        out = torch.full_like(pieces, float("nan"))
        if order:
            out[: len(order)] = pieces[torch.tensor(order)]
        return P.merge_patches(out, kind).numpy()

    def _verdict(self, order: list[int]) -> str:
        k = self.num_patches.value
        right = self.solution
        if len(order) < k:
            return f"{len(order)} of {k} patches placed: which one goes in slot {len(order)}?"
        if order == right:
            return "Solved! The reassembled spectrogram is the original."
        wrong = [j for j in range(k) if order[j] != right[j]]
        return f"Not yet: {len(wrong)} of {k} slots are wrong (slots {wrong}). Undo or clear."

    def _draw(
        self,
        panels: list[np.ndarray],
        k: int,
        kind: str,
        titles: list[str],
        labels: list[list[Any] | None],
    ) -> None:
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
