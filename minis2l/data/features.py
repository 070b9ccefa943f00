"""Features: the log-mel spectrogram of a note.

``librosa``'s mel power spectrogram of the stored (int16) audio with ``n_fft=1024`` (a 64 ms
window at 16 kHz), ``hop_length=256`` (16 ms), ``n_mels=64`` (Slaney mel scale, 0-8 kHz,
power 2, centred frames), then ``log(max(mel, 1e-5))``: 64 x 63 frames for a 1 s note.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from minis2l.data.render import SAMPLE_RATE

N_FFT = 1024
HOP_LENGTH = 256
N_MELS = 64
LOG_FLOOR = 1e-5


@dataclass(frozen=True)
class FeatureSpec:
    """How a note's log-mel is computed: STFT window ``n_fft`` and ``hop_length`` (samples),
    ``n_mels`` mel bands (see the module docstring)."""

    n_fft: int = N_FFT
    hop_length: int = HOP_LENGTH
    n_mels: int = N_MELS

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")

    def frames(self, samples: int) -> int:
        """Frames of the log-mel of ``samples`` samples (centred frames)."""
        return 1 + samples // self.hop_length

    def as_dict(self) -> dict[str, Any]:
        """``{"n_fft", "hop_length", "n_mels"}``: the keyword arguments of :func:`log_mel`."""
        return asdict(self)


def log_mel(
    audio: np.ndarray,
    sample_rate: int = SAMPLE_RATE,
    *,
    n_fft: int = N_FFT,
    hop_length: int = HOP_LENGTH,
    n_mels: int = N_MELS,
    floor: float = LOG_FLOOR,
) -> np.ndarray:
    """Log-mel spectrogram(s) as the data set stores them, ``float32``.

    ``audio`` is ``(samples,)`` or ``(notes, samples)`` (float in [-1, 1], or int16, which is
    divided by 32767). Returns ``(n_mels, frames)`` or ``(notes, n_mels, frames)`` with
    ``frames = 1 + samples // hop_length``: ``log(max(mel_power, floor))``.
    """
    import librosa

    x = np.asarray(audio)
    if x.dtype == np.int16:
        x = x.astype(np.float32) / 32767
    x = np.ascontiguousarray(x, dtype=np.float32)
    # librosa.feature.melspectrogram(power=2) computed in two steps: the STFT, then one
    # matrix product with the (cached) mel filter bank, which is much faster on a batch.
    spec = librosa.stft(x, n_fft=n_fft, hop_length=hop_length, center=True, pad_mode="constant")
    power = spec.real**2 + spec.imag**2  # (..., 1 + n_fft // 2, frames)
    mel = np.matmul(_mel_basis(sample_rate, n_fft, n_mels), power)
    return np.log(np.maximum(mel, floor)).astype(np.float32)


@functools.lru_cache(maxsize=8)
def _mel_basis(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """The mel filter bank (float32, cached): ``(n_mels, 1 + n_fft // 2)``."""
    import librosa

    return librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels).astype(np.float32)
