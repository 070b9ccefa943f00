"""Rendering notes: one General MIDI program, pitch and velocity -> one second of mono audio.

The notes (defaults): 16 kHz mono, 1.0 s long, the key held 0.75 s then released; a 5 ms
fade-in and a 50 ms fade-out (a sustained note cut without a fade clicks); peak-normalized
(loudness varies a lot between programs); int16 when stored. A render whose peak stays below
-60 dBFS (a program silent at that pitch, outside its playable range) is dropped. The synth is
flushed between notes (voices silenced, rendered until idle), so no state carries over from one
note to the next and rendering is deterministic: identical parameters give bit-identical audio.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from minis2l.data.programs import check_pitches, check_velocities
from minis2l.data.soundfonts import check_soundfont, default_soundfont, load_synth

SAMPLE_RATE = 16000
DURATION = 1.0
HOLD = 0.75
FADE_IN = 0.005
FADE_OUT = 0.05
SILENCE_DBFS = -60.0
FLUSH_SECONDS = 0.1


@dataclass(frozen=True)
class RenderSpec:
    """How a note is rendered (see the module docstring); ``samples`` per note."""

    sample_rate: int = SAMPLE_RATE
    duration: float = DURATION
    hold: float = HOLD
    fade_in: float = FADE_IN
    fade_out: float = FADE_OUT
    silence_dbfs: float = SILENCE_DBFS

    def __post_init__(self) -> None:
        if not self.sample_rate > 0:
            raise ValueError(f"sample_rate must be positive, got {self.sample_rate}")
        if not self.duration > 0:
            raise ValueError(f"duration must be positive, got {self.duration}")
        if not self.hold >= 0:
            raise ValueError(f"hold must be non-negative, got {self.hold}")

    @property
    def samples(self) -> int:
        """Samples per note."""
        return int(round(self.duration * self.sample_rate))

    def envelope(self) -> np.ndarray:
        """The fade-in/fade-out gain curve, float32 ``(samples,)`` (raised-cosine ramps)."""
        env = np.ones(self.samples, dtype=np.float32)
        n_in = max(1, int(round(self.fade_in * self.sample_rate)))
        n_out = max(1, int(round(self.fade_out * self.sample_rate)))
        env[:n_in] *= 0.5 - 0.5 * np.cos(np.pi * np.arange(n_in) / n_in)
        env[-n_out:] *= 0.5 + 0.5 * np.cos(np.pi * (np.arange(n_out) + 1) / n_out)
        return env


def _flush(synth: Any, sample_rate: int) -> None:
    """Silence every voice and render until the synth is idle, so no state carries over."""
    synth.sounds_off()
    n = int(FLUSH_SECONDS * sample_rate)
    for _ in range(20):
        out = np.frombuffer(synth.generate(n), dtype=np.float32)
        if not out[-64:].any():
            return


def render_raw(
    synth: Any, sfid: int, program: int, pitch: int, velocity: int, r: RenderSpec
) -> np.ndarray | None:
    """Render one note (mono float32, before fades); None when the program has no sound."""
    try:
        synth.program_select(0, sfid, 0, program)
    except RuntimeError:
        return None
    if not synth.noteon(0, pitch, velocity):
        _flush(synth, r.sample_rate)
        return None
    hold = min(r.samples, int(round(r.hold * r.sample_rate)))
    stereo = np.empty(2 * r.samples, dtype=np.float32)
    if hold:
        stereo[: 2 * hold] = np.frombuffer(synth.generate(hold), dtype=np.float32)
    synth.noteoff(0, pitch)
    if r.samples - hold:
        rest = np.frombuffer(synth.generate(r.samples - hold), dtype=np.float32)
        stereo[2 * hold :] = rest
    _flush(synth, r.sample_rate)
    return (stereo[0::2] + stereo[1::2]) * np.float32(0.5)


def finish(raw: np.ndarray | None, r: RenderSpec, env: np.ndarray) -> np.ndarray | None:
    """Fade, drop if nearly silent (None), peak-normalize, quantize to int16."""
    if raw is None:
        return None
    x = raw * env
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if not np.isfinite(peak) or peak <= 10 ** (r.silence_dbfs / 20):
        return None
    return np.round(x * np.float32(32767 / peak)).astype(np.int16)


def render_int16(
    soundfont: str | Path, program: int, pitch: int, velocity: int, r: RenderSpec
) -> np.ndarray | None:
    """One note exactly as the data set stores it: int16 ``(samples,)``, or None if silent."""
    synth, sfid = load_synth(soundfont, r.sample_rate)
    raw = render_raw(synth, sfid, int(program), int(pitch), int(velocity), r)
    return finish(raw, r, r.envelope())


def render_note(
    program: int,
    pitch: int,
    velocity: int = 100,
    *,
    soundfont: str | Path | None = None,
    sample_rate: int = SAMPLE_RATE,
    duration: float = DURATION,
    hold: float = HOLD,
) -> np.ndarray | None:
    """Render one note as the data set does: float32 mono in [-1, 1], shape ``(samples,)``.

    ``program`` is a General MIDI program (0-127), ``pitch`` a MIDI key (0-127). The note is
    held ``hold`` seconds, released, faded in/out and peak-normalized (the values the cached
    int16 waveform holds, divided by 32767). Returns None when the program is silent there.
    """
    path = check_soundfont(soundfont if soundfont is not None else default_soundfont())
    check_pitches([pitch])
    check_velocities([velocity])
    if not 0 <= int(program) <= 127:
        raise ValueError(f"program {program} is outside the General MIDI range 0-127")
    r = RenderSpec(sample_rate, duration, hold)
    wave = render_int16(path, program, pitch, velocity, r)
    return None if wave is None else wave.astype(np.float32) / 32767
