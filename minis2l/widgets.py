"""Interactive widgets for notebook 04: see, shuffle, listen to and solve spectrogram patches.

:class:`ShuffleExplorer` takes a :class:`minis2l.data.NoteSet` and shows one note's log-mel
spectrogram next to a shuffled copy, with the patch borders and numbers drawn, and a player for
each (Griffin-Lim inversion of the log-mel, so you *hear* what a shuffle does). In "solve it"
mode the student types (or clicks) the shuffled patch numbers in the order that rebuilds the
original and sees the reassembled spectrogram and whether it is right.

Everything the widget shows is also plain Python state, so it can be tested without a browser:
``perm``, ``spectrogram``, ``shuffled``, ``last_image`` (PNG bytes), ``audio_original.value``
and ``audio_shuffled.value`` (WAV bytes), ``message`` and ``errors``. Figures are rendered to
PNG and put into an :class:`ipywidgets.Image` (no ``with output:`` capture, which does not work
headless and swallows exceptions). An exception inside a callback is recorded in ``errors``,
shown in the status line, and re-raised when ``strict=True``.

Patch numbering follows :mod:`minis2l.patches`: patches in reading order (left to right, then
top to bottom), ``shuffled[j] = patches[perm[j]]``.
"""

from __future__ import annotations

import functools
import io
import wave
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as W
import numpy as np
import torch
from matplotlib import patheffects
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from minis2l import patches as P
from minis2l.data import FAMILIES

__all__ = [
    "ShuffleExplorer",
    "draw_patch_grid",
    "figure_png",
    "griffin_lim",
    "mel_magnitude",
    "parse_order",
    "wav_bytes",
]

SAMPLE_RATE = 16000
N_FFT = 1024
HOP_LENGTH = 256


# --------------------------------------------------------------------------------------------
# Helpers (also used by the notebook's figures)


def draw_patch_grid(
    ax: Axes,
    spec: np.ndarray,
    num_patches: int,
    kind: str,
    labels: Sequence[Any] | None = None,
    *,
    title: str | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
) -> None:
    """Show a ``(F, T)`` log-mel on ``ax`` with the patch borders and one label per patch.

    ``spec`` should already be cropped to the patch grid (:func:`minis2l.patches.crop_to_patches`).
    ``labels`` defaults to the patch numbers ``0..K-1`` in reading order; ``None`` entries
    (or NaN patches, e.g. unfilled slots) get no label. Low frequencies are at the bottom, so the
    first patch row in reading order (the lowest mel bins) is drawn at the bottom.
    """
    spec = np.asarray(spec, dtype=np.float32)
    rows, cols = P.grid_shape(num_patches, kind)
    f, t = spec.shape
    h, w = f // rows, t // cols
    ax.imshow(spec, origin="lower", aspect="auto", cmap="magma", vmin=vmin, vmax=vmax)
    for r in range(1, rows):
        ax.axhline(r * h - 0.5, color="white", lw=1.5)
    for c in range(1, cols):
        ax.axvline(c * w - 0.5, color="white", lw=1.5)
    labels = list(range(num_patches)) if labels is None else list(labels)
    for k, label in enumerate(labels):
        if label is None:
            continue
        r, c = divmod(k, cols)
        ax.text(
            c * w + (w - 1) / 2,
            r * h + (h - 1) / 2,
            str(label),
            ha="center",
            va="center",
            color="white",
            fontsize=12,
            fontweight="bold",
            path_effects=[patheffects.withStroke(linewidth=3, foreground="black")],
        )
    ax.set_xlabel("frame")
    ax.set_ylabel("mel bin")
    if title:
        ax.set_title(title)


def figure_png(fig: Figure, dpi: int = 72) -> bytes:
    """Render a matplotlib figure to PNG bytes (no pyplot, no display backend needed)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def mel_magnitude(
    log_mel: np.ndarray, *, sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT
) -> np.ndarray:
    """STFT magnitude ``(1 + n_fft // 2, frames)`` whose mel power approximates ``exp(log_mel)``.

    The data set stores ``log(max(mel_power, 1e-5))`` of a Slaney mel scale (0 to sr/2) with
    power 2, so ``exp`` gives back the mel power, and
    :func:`librosa.feature.inverse.mel_to_stft` (non-negative least squares, frame by frame)
    estimates the linear-frequency magnitude behind it.
    """
    import librosa

    power = np.exp(np.asarray(log_mel, dtype=np.float32))
    return librosa.feature.inverse.mel_to_stft(power, sr=sample_rate, n_fft=n_fft, power=2.0)


def griffin_lim(
    log_mel: np.ndarray | None = None,
    *,
    magnitude: np.ndarray | None = None,
    sample_rate: int = SAMPLE_RATE,
    n_fft: int = N_FFT,
    hop_length: int = HOP_LENGTH,
    n_iter: int = 32,
    seed: int = 0,
) -> np.ndarray:
    """Audio (float32, peak 0.9) for a log-mel ``(n_mels, frames)`` or an STFT ``magnitude``.

    This is :func:`librosa.feature.inverse.mel_to_audio` in its two steps
    (:func:`mel_magnitude`, then Griffin-Lim phase recovery, ``n_iter`` rounds), with the phase
    initialisation seeded so that the same spectrogram always gives the same sound. Pass
    ``magnitude`` to skip the first (slower) step.
    """
    import librosa

    if (log_mel is None) == (magnitude is None):
        raise ValueError("give exactly one of log_mel and magnitude")
    if magnitude is None:
        magnitude = mel_magnitude(log_mel, sample_rate=sample_rate, n_fft=n_fft)
    audio = librosa.griffinlim(
        np.asarray(magnitude), n_iter=n_iter, hop_length=hop_length, n_fft=n_fft, random_state=seed
    )
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak > 0:
        audio = audio * (0.9 / peak)
    return audio.astype(np.float32)


def wav_bytes(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> bytes:
    """A mono 16-bit WAV file of ``audio`` (float in [-1, 1], or int16) as bytes."""
    audio = np.asarray(audio)
    if audio.dtype != np.int16:
        audio = np.round(np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(int(sample_rate))
        f.writeframes(audio.astype("<i2").tobytes())
    return buf.getvalue()


def parse_order(text: str, num_patches: int) -> list[int]:
    """Parse ``"2 0 1 3"`` (or ``"2,0,1,3"``) into patch numbers, each in ``0..K-1``, no repeats.

    Raises:
        ValueError: naming the offending entry.
    """
    out: list[int] = []
    for token in text.replace(",", " ").split():
        try:
            k = int(token)
        except ValueError:
            raise ValueError(f"{token!r} is not a patch number") from None
        if not 0 <= k < num_patches:
            raise ValueError(f"patch {k} does not exist: use 0 to {num_patches - 1}")
        if k in out:
            raise ValueError(f"patch {k} is used twice")
        out.append(k)
    if len(out) > num_patches:
        raise ValueError(f"{len(out)} patch numbers for {num_patches} slots")
    return out


# --------------------------------------------------------------------------------------------
# The explorer


class ShuffleExplorer:
    """See, shuffle, listen to and solve the patches of one note's log-mel spectrogram.

    Args:
        noteset: a :class:`minis2l.data.NoteSet` (any split); features ``(N, F, T)`` log-mel.
        seed: seeds the shuffles (the same clicks give the same permutations).
        max_patches: the largest K on the slider.
        n_iter: Griffin-Lim iterations for the audio (more is cleaner and slower).
        audio: make the audio players (turn off for speed when only the pictures matter).
        strict: re-raise exceptions from callbacks (tests use it); they are always recorded
            in :attr:`errors` and shown in the status line.

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
        if max_patches < 2:
            raise ValueError(f"max_patches must be at least 2, got {max_patches}")
        self.notes = noteset
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
        self._gen = torch.Generator().manual_seed(seed)
        self._audio_cache: OrderedDict[tuple, bytes] = OrderedDict()
        self._audio_cache_size = 64
        self._updating = False

        fams = sorted({int(f) for f in noteset.family})
        family_options = [(FAMILIES[f], f) for f in fams]
        self.family = W.Dropdown(options=family_options, value=fams[0], description="family")
        self.pitch = W.Dropdown(options=[], description="pitch")
        self.kind = W.ToggleButtons(options=list(P.KINDS), value="time", description="patches")
        self.num_patches = W.IntSlider(
            value=4, min=2, max=max_patches, step=1, description="K", continuous_update=False
        )
        self.shuffle_button = W.Button(description="shuffle", icon="random")
        self.reset_button = W.Button(description="reset", icon="undo")
        self.solve = W.Checkbox(value=False, description="solve it")
        self.answer = W.Text(
            value="",
            description="your order",
            placeholder="shuffled patch numbers, e.g. 2 0 1 3",
            continuous_update=False,
        )
        self.check_button = W.Button(description="check", icon="check")
        self.clear_button = W.Button(description="clear")
        self.patch_buttons = W.HBox([])
        self.image = W.Image(format="png")
        self.audio_original = W.Audio(format="wav", autoplay=False, loop=False, controls=True)
        self.audio_shuffled = W.Audio(format="wav", autoplay=False, loop=False, controls=True)
        self.status = W.HTML(value="")

        for w, cls in (
            (self.family, "minis2l-family"),
            (self.pitch, "minis2l-pitch"),
            (self.kind, "minis2l-kind"),
            (self.num_patches, "minis2l-k-slider"),
            (self.shuffle_button, "minis2l-shuffle-button"),
            (self.reset_button, "minis2l-reset-button"),
            (self.solve, "minis2l-solve"),
            (self.answer, "minis2l-answer"),
            (self.check_button, "minis2l-check-button"),
            (self.clear_button, "minis2l-clear-button"),
            (self.image, "minis2l-image"),
            (self.audio_original, "minis2l-audio-original"),
            (self.audio_shuffled, "minis2l-audio-shuffled"),
            (self.status, "minis2l-status"),
        ):
            w.add_class(cls)

        self._solve_box = W.VBox([W.HBox([self.answer, self.check_button, self.clear_button])])
        self._solve_box.children += (self.patch_buttons,)
        self._solve_box.layout.display = "none"
        players = W.HBox(
            [
                W.VBox([W.HTML("<b>original</b>"), self.audio_original]),
                W.VBox([W.HTML("<b>shuffled</b>"), self.audio_shuffled]),
            ]
        )
        self.widget = W.VBox(
            [
                W.HBox([self.family, self.pitch]),
                W.HBox([self.kind]),
                W.HBox([self.num_patches, self.shuffle_button, self.reset_button, self.solve]),
                self._solve_box,
                self.image,
                players,
                self.status,
            ]
        )
        self.widget.add_class("minis2l-shuffle-explorer")
        if not self.with_audio:
            players.layout.display = "none"

        self.family.observe(self._guard(self._on_family), names="value")
        self.pitch.observe(self._guard(self._on_note), names="value")
        self.kind.observe(self._guard(self._on_shape), names="value")
        self.num_patches.observe(self._guard(self._on_shape), names="value")
        self.solve.observe(self._guard(self._on_solve_mode), names="value")
        self.answer.observe(self._guard(self._on_answer), names="value")
        self.shuffle_button.on_click(self._guard(lambda _: self.shuffle()))
        self.reset_button.on_click(self._guard(lambda _: self.reset()))
        self.check_button.on_click(self._guard(lambda _: self._refresh(audio=False)))
        self.clear_button.on_click(self._guard(lambda _: self._set_answer("")))

        self.perm = self._new_perm(self.num_patches.value)
        self._make_patch_buttons()
        self._guard(self._on_family)()

    # ---------------------------------------------------------------- plumbing

    def _guard(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Wrap a callback: record (and show) any exception; re-raise it when strict."""

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                self.errors.append(exc)
                self.message = f"error: {type(exc).__name__}: {exc}"
                self.status.value = f"<span style='color:#b00'>{_escape(self.message)}</span>"
                if self.strict:
                    raise
                return None

        return wrapper

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

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

    def _valid_shape(self) -> bool:
        try:
            P.grid_shape(self.num_patches.value, self.kind.value)
        except ValueError as exc:
            self._say(str(exc), error=True)
            return False
        return True

    # ---------------------------------------------------------------- actions

    def shuffle(self) -> None:
        """Draw a new permutation of the K patches (never the identity when K > 1)."""
        self.perm = self._new_perm(self.num_patches.value)
        self._set_answer("", refresh=False)
        self._refresh()

    def _new_perm(self, k: int) -> torch.Tensor:
        perm = P.random_permutations(1, k, generator=self._gen)[0]
        while bool((perm == torch.arange(k)).all()):
            perm = P.random_permutations(1, k, generator=self._gen)[0]
        return perm

    def reset(self) -> None:
        """Put the patches back in order (the identity permutation)."""
        self.perm = torch.arange(self.num_patches.value)
        self._set_answer("", refresh=False)
        self._refresh()

    def choose(self, patch: int) -> None:
        """Solve mode: append shuffled patch ``patch`` to the answer (what a patch button does)."""
        text = f"{self.answer.value} {int(patch)}".strip()
        self._set_answer(text)

    def _set_answer(self, text: str, refresh: bool = True) -> None:
        self._updating = not refresh
        try:
            self.answer.value = text
        finally:
            self._updating = False

    # ---------------------------------------------------------------- callbacks

    def _on_family(self, change: Any = None) -> None:
        fam = self.family.value
        pitches = sorted({int(p) for p in self.notes.pitch[self.notes.family == fam]})
        old = self.pitch.value
        self._updating = True
        try:
            self.pitch.options = pitches
            middle = pitches[len(pitches) // 2]
            self.pitch.value = old if old in pitches else middle
        finally:
            self._updating = False
        self._on_note()

    def _on_note(self, change: Any = None) -> None:
        if self._updating:
            return
        self._set_answer("", refresh=False)
        self._refresh()

    def _on_shape(self, change: Any = None) -> None:
        self.perm = torch.arange(self.num_patches.value)
        self._set_answer("", refresh=False)
        self._make_patch_buttons()
        if self._valid_shape():
            self.shuffle()
        else:
            self._refresh()

    def _on_solve_mode(self, change: Any = None) -> None:
        self._solve_box.layout.display = "" if self.solve.value else "none"
        self._make_patch_buttons()
        self._refresh(audio=False)

    def _on_answer(self, change: Any = None) -> None:
        if not self._updating:
            self._refresh(audio=False)

    def _make_patch_buttons(self) -> None:
        buttons = []
        for k in range(self.num_patches.value):
            b = W.Button(description=str(k), layout=W.Layout(width="3em"))
            b.add_class("minis2l-patch-button")
            b.on_click(self._guard(lambda _, k=k: self.choose(k)))
            buttons.append(b)
        self.patch_buttons.children = buttons

    # ---------------------------------------------------------------- drawing and audio

    def _say(self, text: str, error: bool = False) -> None:
        self.message = text
        color = "#b00" if error else "#060" if text.startswith("Solved") else "#333"
        self.status.value = f"<span style='color:{color}'>{_escape(text)}</span>"

    def _refresh(self, audio: bool = True) -> None:
        """Redraw the figure (and, if asked, the audio) from the current state."""
        k, kind = self.num_patches.value, self.kind.value
        if not self._valid_shape():
            self._draw([np.asarray(self.notes.features[self.index], dtype=np.float32)], k, None)
            return
        if len(self.perm) != k:
            self.perm = torch.arange(k)
        original = self.spectrogram
        shuffled = self.shuffled
        panels = [original.numpy(), shuffled.numpy()]
        titles = ["original", f"shuffled, perm = {self.perm.tolist()}"]
        labels: list[list[Any] | None] = [None, None]
        if self.solve.value:
            titles[1] = "shuffled"
            try:
                order = parse_order(self.answer.value, k)
            except ValueError as exc:
                order = None
                self._say(f"your order: {exc}", error=True)
            rebuilt, placed = self._rebuild(shuffled, order or [])
            panels.append(rebuilt)
            titles.append("your reassembly")
            labels.append(placed)
            if order is not None:
                self._judge(order)
        else:
            labels[1] = self.perm.tolist()  # the original number of the patch in each slot
            self._say(
                "in order"
                if bool((self.perm == torch.arange(k)).all())
                else f"shuffled: slot j holds original patch perm[j] = {self.perm.tolist()}"
            )
        self._draw(panels, k, kind, titles, labels)
        if audio and self.with_audio:
            self.audio_original.value = self._audio_original()
            self.audio_shuffled.value = self._audio_shuffled(shuffled)

    def _rebuild(self, shuffled: torch.Tensor, order: list[int]) -> tuple[np.ndarray, list]:
        k, kind = self.num_patches.value, self.kind.value
        pieces = P.split_patches(shuffled, k, kind)
        out = torch.full_like(pieces, float("nan"))
        if order:
            out[: len(order)] = pieces[torch.tensor(order)]
        placed = [*order, *([None] * (k - len(order)))]
        return P.merge_patches(out, kind).numpy(), placed

    def _judge(self, order: list[int]) -> None:
        k = self.num_patches.value
        right = self.solution
        if len(order) < k:
            self._say(f"{len(order)} of {k} patches placed; keep going")
        elif order == right:
            self._say("Solved! The reassembled spectrogram is the original.")
        else:
            wrong = [j for j in range(k) if order[j] != right[j]]
            self._say(f"Not yet: {len(wrong)} of {k} slots are wrong (slots {wrong}).")

    def _draw(
        self,
        panels: list[np.ndarray],
        k: int,
        kind: str | None,
        titles: list[str] | None = None,
        labels: list[list[Any] | None] | None = None,
    ) -> None:
        fig = Figure(figsize=(4.2 * len(panels), 3.2), layout="constrained")
        finite = np.concatenate([p[np.isfinite(p)].ravel() for p in panels])
        vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (None, None)
        note = self.notes.manifest[self.index]
        for i, spec in enumerate(panels):
            ax = fig.add_subplot(1, len(panels), i + 1)
            title = titles[i] if titles else "original"
            if kind is None:
                ax.imshow(spec, origin="lower", aspect="auto", cmap="magma")
                ax.set_title(title)
                ax.set_xlabel("frame")
                ax.set_ylabel("mel bin")
            else:
                lab = labels[i] if labels else None
                draw_patch_grid(ax, spec, k, kind, lab, title=title, vmin=vmin, vmax=vmax)
        fig.suptitle(f"{note['family']} {note.get('program_name', '')}, MIDI pitch {note['pitch']}")
        self.last_image = figure_png(fig)
        self.image.value = self.last_image

    def _cached(self, key: tuple, make: Callable[[], Any]) -> Any:
        if key in self._audio_cache:
            self._audio_cache.move_to_end(key)
            return self._audio_cache[key]
        value = self._audio_cache[key] = make()
        while len(self._audio_cache) > self._audio_cache_size:
            self._audio_cache.popitem(last=False)
        return value

    def _magnitude(self) -> np.ndarray:
        """STFT magnitude of the whole (uncropped) note, computed once per note."""
        row = self.index
        spec = np.asarray(self.notes.features[row], dtype=np.float32)
        make = functools.partial(
            mel_magnitude, spec, sample_rate=self.sample_rate, n_fft=self._n_fft
        )
        return self._cached(("magnitude", row), make)

    def _wav(self, magnitude: np.ndarray) -> bytes:
        audio = griffin_lim(
            magnitude=magnitude,
            sample_rate=self.sample_rate,
            n_fft=self._n_fft,
            hop_length=self._hop,
            n_iter=self.n_iter,
        )
        return wav_bytes(audio, self.sample_rate)

    def _audio_original(self) -> bytes:
        """WAV bytes of the Griffin-Lim inversion of the note's log-mel (cached per note)."""
        return self._cached(("wav", self.index), lambda: self._wav(self._magnitude()))

    def _audio_shuffled(self, shuffled: torch.Tensor) -> bytes:
        """WAV bytes of the shuffled log-mel (cached per note, patch kind, K and perm).

        Time patches only reorder frames, and the magnitude estimate is frame by frame, so the
        original's magnitude is shuffled the same way instead of being estimated again.
        """
        k, kind = self.num_patches.value, self.kind.value
        key = ("wav", self.index, kind, k, tuple(self.perm.tolist()))

        def make() -> bytes:
            if kind == "time":
                mag = torch.from_numpy(np.ascontiguousarray(self._magnitude()))
                magnitude = P.shuffle(mag, self.perm, k, kind).numpy()
            else:
                magnitude = mel_magnitude(
                    shuffled.numpy(), sample_rate=self.sample_rate, n_fft=self._n_fft
                )
            return self._wav(magnitude)

        return self._cached(key, make)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
