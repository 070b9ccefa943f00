"""Interactive widgets: the ε explorer of notebook 02 and the patch-shuffle explorer of notebook 04.

:class:`EpsExplorer` shows the soft ranks of a fixed vector as the regularization strength ε and
the regularization change. :class:`ShuffleExplorer` takes a :class:`minis2l.data.NoteSet` and
shows one note's log-mel spectrogram next to a shuffled copy, with the patch borders and numbers
drawn, and a player for each (Griffin-Lim inversion of the log-mel, so you *hear* what a shuffle
does). In "solve it" mode the student clicks (or types) the shuffled patch numbers in the order
that rebuilds the original and sees the reassembled spectrogram and whether it is right.

Everything a widget shows is also plain Python state, so it can be tested without a browser
(``last_image`` PNG bytes, ``message``, ``errors``, ...). Figures are rendered to PNG at the size
they are shown and put into an :class:`ipywidgets.Image`, replaced in place (no ``with output:``
capture, which does not work headless, swallows exceptions and makes the page blink). An
exception inside a callback is recorded in ``errors``, shown in the status line, and re-raised
when ``strict=True``. The explorer's audio is computed on a background thread, off the
interaction path; :meth:`ShuffleExplorer.wait_audio` waits for it.

Patch numbering follows :mod:`minis2l.patches`: patches in reading order (left to right, then
top to bottom), ``shuffled[j] = patches[perm[j]]``.
"""

from __future__ import annotations

import functools
import html
import io
import threading
import wave
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
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
    "EpsExplorer",
    "ShuffleExplorer",
    "display_with_hint",
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
DPI = 100  # figures are drawn at DPI and shown at their pixel size: crisp, never stretched
REOPEN_HINT = (
    "Widget missing, or 'Error displaying widget: model not found'? A widget lives in the "
    "running kernel, not in the saved file: run the cells above (Run > Run All Cells)."
)
_WIDE = {"description_width": "initial"}  # show a control's label in full, beside it


# --------------------------------------------------------------------------------------------
# Helpers (also used by the notebooks' figures)


def display_with_hint(widget: W.Widget) -> None:
    """Display ``widget`` after a one-line hint that survives in the saved notebook.

    After a notebook is reopened its widgets are gone (they live in the kernel), and JupyterLab
    shows only "model not found"; the hint tells the student to run the cells above.
    """
    from IPython.display import HTML, display

    hint = f"<p class='minis2l-reopen-hint' style='color:#777;margin:0'>{REOPEN_HINT}</p>"
    display(HTML(hint))
    display(widget)


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
) -> Any:
    """Show a ``(F, T)`` log-mel on ``ax`` with the patch borders and one label per patch.

    ``spec`` should already be cropped to the patch grid (:func:`minis2l.patches.crop_to_patches`).
    ``labels`` defaults to the patch numbers ``0..K-1`` in reading order; ``None`` entries
    (or NaN patches, e.g. unfilled slots) get no label. Low frequencies are at the bottom, so the
    first patch row in reading order (the lowest mel bins) is drawn at the bottom. Returns the
    image (a matplotlib ``AxesImage``, e.g. for a colour bar).
    """
    spec = np.asarray(spec, dtype=np.float32)
    rows, cols = P.grid_shape(num_patches, kind)
    f, t = spec.shape
    h, w = f // rows, t // cols
    image = ax.imshow(spec, origin="lower", aspect="auto", cmap="magma", vmin=vmin, vmax=vmax)
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
            fontsize=12 if cols <= 8 else 10,
            fontweight="bold",
            path_effects=[patheffects.withStroke(linewidth=3, foreground="black")],
        )
    ax.set_xlabel("frame")
    ax.set_ylabel("mel bin")
    if title:
        ax.set_title(title)
    return image


def figure_png(fig: Figure, dpi: int = DPI) -> bytes:
    """Render a matplotlib figure to PNG bytes (no pyplot, no display backend needed)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def _pixel_size(fig: Figure, dpi: int = DPI) -> tuple[str, str]:
    """``(width, height)`` in pixels of ``fig`` rendered at ``dpi``, as Image widget strings."""
    width, height = fig.get_size_inches() * dpi
    return str(round(width)), str(round(height))


@functools.lru_cache(maxsize=8)
def _mel_inverse(sample_rate: int, n_fft: int, n_mels: int) -> tuple[np.ndarray, np.ndarray]:
    """The Slaney mel filter bank ``(n_mels, 1 + n_fft // 2)`` and its pseudo-inverse."""
    import librosa

    basis = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels).astype(np.float64)
    return basis, np.linalg.pinv(basis)


def mel_magnitude(
    log_mel: np.ndarray,
    *,
    sample_rate: int = SAMPLE_RATE,
    n_fft: int = N_FFT,
    n_iter: int = 60,
) -> np.ndarray:
    """STFT magnitude ``(1 + n_fft // 2, frames)`` whose mel power approximates ``exp(log_mel)``.

    The data set stores ``log(max(mel_power, 1e-5))`` of a Slaney mel scale (0 to sr/2) with
    power 2, so ``exp`` gives back the mel power ``m``, and the linear-frequency power ``s >= 0``
    behind it solves the non-negative least squares ``min ||M s - m||`` frame by frame (``M``
    the mel filter bank), as :func:`librosa.feature.inverse.mel_to_stft` does. We start from the
    clipped pseudo-inverse and take ``n_iter`` multiplicative updates
    ``s <- s * (M^T m) / (M^T M s)``, which keep ``s >= 0`` and never increase the error; this is
    some 20 times faster than librosa's L-BFGS solver and sounds the same after Griffin-Lim.
    Returns ``sqrt(s)``, float32.
    """
    from threadpoolctl import threadpool_limits  # installed with scikit-learn

    power = np.exp(np.asarray(log_mel, dtype=np.float64))
    basis, inverse = _mel_inverse(int(sample_rate), int(n_fft), power.shape[0])
    tiny = 1e-12 * float(power.max())
    # Small products: one BLAS thread is fastest, and ten times faster on a busy machine
    # than several threads fighting over the cores.
    with threadpool_limits(1, user_api="blas"):
        s = np.maximum(inverse @ power, 0.0) + tiny
        target = basis.T @ power
        for _ in range(n_iter):
            s *= target / (basis.T @ (basis @ s) + tiny)
    return np.sqrt(s).astype(np.float32)


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


# --------------------------------------------------------------------------------------------
# The patch-shuffle explorer


def _valid_k(kind: str, max_patches: int) -> list[int]:
    """The K on offer for a patch kind: 2..max, or only those with a 2-D grid for ``"2d"``."""
    out = []
    for k in range(2, max_patches + 1):
        try:
            P.grid_shape(k, kind)
        except ValueError:
            continue
        out.append(k)
    return out


class ShuffleExplorer:
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
        self._audio_cache: OrderedDict[tuple, Any] = OrderedDict()
        self._audio_cache_size = 64
        self._audio_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="minis2l-audio")
        self._audio_job: Future | None = None
        self._audio_token = 0
        self._audio_lock = threading.Lock()
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

    # ---------------------------------------------------------------- audio (background)

    def _queue_audio(self) -> None:
        """Hide the shuffled player and compute the audio on the background thread (latest wins)."""
        if not self.with_audio:
            return
        with self._audio_lock:
            self._audio_token += 1
            token = self._audio_token
            self.audio_shuffled.layout.visibility = "hidden"  # never the last shuffle's sound
            self.audio_status.value = _status_html("computing the audio…", "#777")
        state = (self.index, self.kind.value, self.num_patches.value, self.perm.clone())
        self._audio_job = self._audio_pool.submit(self._audio_job_run, token, state)

    def _show_audio(self, token: int, player: W.Audio, wav: bytes) -> bool:
        """Put ``wav`` in ``player`` if request ``token`` is still the latest; say if it was."""
        with self._audio_lock:  # checked and set together: a newer request cannot slip between
            if token != self._audio_token:
                return False
            player.value = wav
            player.layout.visibility = "visible"
            return True

    def _audio_job_run(self, token: int, state: tuple) -> None:
        """Fill both players for ``state``, unless a newer request came in meanwhile."""
        try:
            with self._audio_lock:
                if token != self._audio_token:
                    return  # stale: skipped, so no one waits behind audio nobody will hear
            self._show_audio(token, self.audio_original, self._audio_original(state[0]))
            if self._show_audio(token, self.audio_shuffled, self._audio_shuffled(*state)):
                self.audio_status.value = _status_html("audio ready", "#060")
        except Exception as exc:
            self.errors.append(exc)
            self.audio_status.value = _status_html(f"audio error: {exc}", "#b00")

    def _cached(self, key: tuple, make: Callable[[], Any]) -> Any:
        if key in self._audio_cache:
            self._audio_cache.move_to_end(key)
            return self._audio_cache[key]
        value = self._audio_cache[key] = make()
        while len(self._audio_cache) > self._audio_cache_size:
            self._audio_cache.popitem(last=False)
        return value

    def _log_mel(self, row: int) -> np.ndarray:
        return np.asarray(self.notes.features[row], dtype=np.float32)

    def _magnitude(self, row: int) -> np.ndarray:
        """STFT magnitude of the whole (uncropped) note, computed once per note."""
        make = functools.partial(
            mel_magnitude, self._log_mel(row), sample_rate=self.sample_rate, n_fft=self._n_fft
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

    def _audio_original(self, row: int) -> bytes:
        """WAV bytes of the Griffin-Lim inversion of the note's log-mel (cached per note)."""
        return self._cached(("wav", row), lambda: self._wav(self._magnitude(row)))

    def _audio_shuffled(self, row: int, kind: str, k: int, perm: torch.Tensor) -> bytes:
        """WAV bytes of the shuffled log-mel (cached per note, patch kind, K and perm).

        Time patches only reorder frames, and the magnitude estimate is frame by frame, so the
        original's magnitude is shuffled the same way instead of being estimated again. Other
        kinds are estimated from the shuffled log-mel, with the mel bins cropped off the top
        filled with the note's quietest value (they are cut from the picture too).
        """
        key = ("wav", row, kind, k, tuple(perm.tolist()))

        def make() -> bytes:
            if kind == "time":
                mag = torch.from_numpy(np.ascontiguousarray(self._magnitude(row)))
                return self._wav(P.shuffle(mag, perm, k, kind).numpy())
            spec = self._log_mel(row)
            shuffled = P.shuffle(torch.from_numpy(spec), perm, k, kind).numpy()
            full = np.full((spec.shape[0], shuffled.shape[1]), spec.min(), dtype=np.float32)
            full[: shuffled.shape[0]] = shuffled
            return self._wav(mel_magnitude(full, sample_rate=self.sample_rate, n_fft=self._n_fft))

        return self._cached(key, make)
