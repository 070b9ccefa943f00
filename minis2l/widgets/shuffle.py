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
from typing import Any

import numpy as np
import torch

from minis2l import patches as P
from minis2l.data import FAMILIES
from minis2l.data.features import HOP_LENGTH, N_FFT
from minis2l.widgets._common import _guarded, _new_perm, _status_html, display_with_hint
from minis2l.widgets.audio import _AudioWorker
from minis2l.widgets.grid import _valid_k, parse_order
from minis2l.widgets.shuffle_view import _ShuffleView


class ShuffleExplorer(_ShuffleView, _AudioWorker):
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

        self._build_controls(sorted({int(f) for f in noteset.family}))
        self._lay_out()
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

        self.perm = _new_perm(self.num_patches.value, self._gen)
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
        self.perm = _new_perm(k, self._gen, old)
        if torch.equal(self.perm, old):
            self._note = "Shuffled again: with K = 2 there is only one order that moves a patch."
        self._set_answer([], refresh=False)
        self._refresh()

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
