"""Hearing a log-mel: mel-to-audio inversion, Griffin-Lim, WAV bytes, and a background worker.

:func:`mel_magnitude` estimates the STFT magnitude behind a log-mel, :func:`griffin_lim` recovers
a phase for it and :func:`wav_bytes` packs the audio into a WAV file for an
:class:`ipywidgets.Audio` player. ``_AudioWorker`` is the part of
:class:`~minis2l.widgets.ShuffleExplorer` that fills its two players on a background thread
(latest request wins), with a small cache of magnitudes and WAV bytes per note and shuffle.
"""

from __future__ import annotations

import functools
import io
import threading
import wave
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import ipywidgets as W
import numpy as np
import torch

from minis2l import patches as P
from minis2l.data.features import HOP_LENGTH, N_FFT
from minis2l.data.render import SAMPLE_RATE
from minis2l.widgets._common import _status_html


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


class _AudioWorker:
    """The audio of :class:`~minis2l.widgets.ShuffleExplorer`, computed off the interaction path.

    A mixin: the explorer calls :meth:`_start_audio_worker` in ``__init__`` and provides
    ``notes``, ``index``, ``kind``, ``num_patches``, ``perm``, ``with_audio``, ``sample_rate``,
    ``_n_fft``, ``_hop``, ``n_iter``, ``errors`` and the widgets ``audio_original``,
    ``audio_shuffled`` and ``audio_status``.
    """

    def _start_audio_worker(self) -> None:
        """The cache, the one background thread and the request counter (latest wins)."""
        self._audio_cache: OrderedDict[tuple, Any] = OrderedDict()
        self._audio_cache_size = 64
        self._audio_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="minis2l-audio")
        self._audio_job: Future | None = None
        self._audio_token = 0
        self._audio_lock = threading.Lock()

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
