"""An NSynth-style data set of musical notes, rendered offline from General MIDI SoundFonts.

NSynth (Engel et al., 2017) was made by rendering single notes of sampled instruments; this
module does the same on the learner's own machine, with no download: it plays every kept
General MIDI program of a SoundFont (default: ``TimGM6mb.sf2``, shipped inside ``pretty_midi``)
with ``tinysoundfont``, at a grid of pitches and velocities, and stores

* ``manifest.csv`` - one row per note: ``note_id, split, program, instrument, family,
  family_index, pitch, velocity, soundfont, program_name``;
* ``features.npy`` - log-mel spectrograms, ``float16``, shape ``(notes, n_mels, frames)``,
  row ``i`` belongs to manifest row ``i``;
* ``waveforms.npy`` - the audio, ``int16`` (full scale 32767), shape ``(notes, samples)``;
* ``metadata.json`` - SoundFont sha256, every parameter, counts, dropped renders, version.

The notes (defaults): 16 kHz mono, 1.0 s long, the key held 0.75 s then released; a 5 ms
fade-in and a 50 ms fade-out (a sustained note cut without a fade clicks); peak-normalized
(loudness varies a lot between programs). Pitches MIDI 24-108 every 4 semitones (C, E and G#
of every octave: 22 pitches inside NSynth's 21-108) at velocities 64 and 127. A render whose
peak stays below -60 dBFS (a program that is silent at that pitch) is dropped and counted.
Rendering is deterministic: identical parameters give bit-identical audio.

Features: ``librosa.feature.melspectrogram`` of the stored (int16) audio with ``n_fft=1024``,
``hop_length=256``, ``n_mels=64`` (Slaney mel scale, 0-8 kHz, power 2, centred frames), then
``log(max(mel, 1e-5))``: 64 x 63 frames for a 1 s note.

Splits are by instrument, as in NSynth: all notes of a program go to one split, so train, valid
and test never share a program; within each family the programs are shuffled with ``seed`` and
about 70 % / 10 % / 20 % go to train / valid / test, so every family with at least 3 instruments
appears in both train and test. An instrument is a (SoundFont, program) pair; with several
SoundFonts the split unit stays the program, so no program crosses splits.

Programs map to NSynth's 11 families through ``data/gm_families.csv`` (programs that fit no
family are left out there, with the reason). Fast mode (``MINIS2L_FAST=1``) keeps 4 programs
per family (3 vocal), 5 pitches (36-84 every 12) and builds in about a second.

Builds are atomic (a temporary directory next to the target, renamed at the end) and cached:
the same parameters reuse the cache, other parameters or a damaged cache rebuild it.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import functools
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from minis2l.config import fast_mode

__all__ = [
    "FAMILIES",
    "SPLITS",
    "NoteDataset",
    "NoteSet",
    "build_dataset",
    "default_cache_dir",
    "default_soundfont",
    "family_table",
    "load_dataset",
    "log_mel",
    "parse_int_list",
    "render_note",
]

#: NSynth's instrument families, in NSynth's order; ``family_index`` indexes this tuple.
FAMILIES: tuple[str, ...] = (
    "bass",
    "brass",
    "flute",
    "guitar",
    "keyboard",
    "mallet",
    "organ",
    "reed",
    "string",
    "synth_lead",
    "vocal",
)
SPLITS: tuple[str, ...] = ("train", "valid", "test")

FORMAT_VERSION = 1
REPO_ROOT = Path(__file__).resolve().parents[1]
FAMILY_TABLE = REPO_ROOT / "data" / "gm_families.csv"
MANIFEST_COLUMNS = (
    "note_id",
    "split",
    "program",
    "instrument",
    "family",
    "family_index",
    "pitch",
    "velocity",
    "soundfont",
    "program_name",
)

# Defaults (full size; fast mode shrinks programs and pitches).
SAMPLE_RATE = 16000
DURATION = 1.0
HOLD = 0.75
FADE_IN = 0.005
FADE_OUT = 0.05
N_FFT = 1024
HOP_LENGTH = 256
N_MELS = 64
LOG_FLOOR = 1e-5
SILENCE_DBFS = -60.0
FLUSH_SECONDS = 0.1
FULL_PITCHES = tuple(range(24, 109, 4))
FAST_PITCHES = (36, 48, 60, 72, 84)
VELOCITIES = (64, 127)
SPLIT_FRACTIONS = (0.7, 0.1, 0.2)


# --------------------------------------------------------------------------------------------
# Inputs: family table, SoundFonts, selections


def family_table(path: str | Path | None = None) -> list[dict[str, Any]]:
    """Read the General MIDI program -> NSynth family table (128 rows).

    Each row is ``{"program": int, "name": str, "family": str, "reason": str}``; ``family`` is
    ``""`` for a program left out (sound effects, drums, pads, ambiguous instruments) and then
    ``reason`` says why; for kept programs ``reason`` may note a judgement call.
    """
    path = Path(path) if path is not None else FAMILY_TABLE
    if not path.is_file():
        raise FileNotFoundError(f"family table not found: {path}")
    with path.open(newline="") as f:
        rows = [
            {
                "program": int(r["program"]),
                "name": r["name"],
                "family": r["family"],
                "reason": r["reason"],
            }
            for r in csv.DictReader(f)
        ]
    return rows


def _program_families() -> dict[int, str]:
    return {r["program"]: r["family"] for r in family_table() if r["family"]}


def default_soundfont() -> Path:
    """The General MIDI SoundFont shipped inside the ``pretty_midi`` package (TimGM6mb.sf2)."""
    import pretty_midi

    path = Path(pretty_midi.__file__).resolve().parent / "TimGM6mb.sf2"
    if not path.is_file():
        raise FileNotFoundError(f"pretty_midi's SoundFont is missing: {path}")
    return path


def _check_soundfont(path: str | Path) -> Path:
    """Return ``path`` resolved, after checking that it is a readable SoundFont (sf2/sf3)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"SoundFont not found: {path}")
    if not path.is_file():
        raise ValueError(f"SoundFont path is not a file: {path}")
    with path.open("rb") as f:
        head = f.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"sfbk":
        raise ValueError(f"not a SoundFont (no RIFF 'sfbk' header): {path}")
    import tinysoundfont

    try:
        tinysoundfont.Synth(samplerate=SAMPLE_RATE).sfload(str(path))
    except Exception as exc:  # tinysoundfont raises its own SoundFontException
        raise ValueError(f"not a readable SoundFont: {path} ({exc})") from exc
    return path.resolve()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def parse_int_list(text: str, what: str = "value") -> list[int]:
    """Parse ``"0-7,40,56-63"`` or ``"24-108:4"`` (a range with a step) into a sorted list.

    Raises:
        ValueError: on an empty or malformed specification, naming ``what``.
    """
    out: set[int] = set()
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        m = re.fullmatch(r"(-?\d+)(?:-(-?\d+))?(?::(\d+))?", part)
        if m is None or (m.group(3) is not None and (m.group(2) is None or int(m.group(3)) < 1)):
            raise ValueError(f"bad {what} specification {text!r} (use e.g. 0-7,40 or 24-108:4)")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if hi < lo:
            raise ValueError(f"bad {what} range {part!r}: {hi} < {lo}")
        out.update(range(lo, hi + 1, int(m.group(3) or 1)))
    if not out:
        raise ValueError(f"empty {what} selection {text!r}")
    return sorted(out)


def _select_programs(
    programs: Iterable[int] | None, families: Iterable[str] | None, fast: bool
) -> list[int]:
    table = _program_families()
    if families is not None:
        families = list(families)
        unknown = [f for f in families if f not in FAMILIES]
        if unknown:
            raise ValueError(f"unknown family {unknown[0]!r}; choose from {', '.join(FAMILIES)}")
    if programs is not None:
        programs = [int(p) for p in programs]
        bad = [p for p in programs if not 0 <= p <= 127]
        if bad:
            raise ValueError(f"program {bad[0]} is outside the General MIDI range 0-127")
        chosen = sorted({p for p in programs if p in table})
    else:
        chosen = sorted(table)
        if fast:  # three programs per family, spread over the family's programs
            keep = []
            for fam in FAMILIES:
                members = [p for p in chosen if table[p] == fam]
                n = len(members)
                keep.extend({members[i * (n - 1) // 3] for i in range(4)} if members else [])
            chosen = sorted(keep)
    if families is not None:
        chosen = [p for p in chosen if table[p] in families]
    if not chosen:
        raise ValueError(
            "empty program selection: no selected program has a family in data/gm_families.csv"
        )
    return chosen


def _check_pitches(pitches: Iterable[int]) -> list[int]:
    pitches = sorted({int(p) for p in pitches})
    if not pitches:
        raise ValueError("empty pitch selection")
    bad = [p for p in pitches if not 0 <= p <= 127]
    if bad:
        raise ValueError(f"pitch {bad[0]} is outside the MIDI range 0-127")
    return pitches


def _check_velocities(velocities: Iterable[int]) -> list[int]:
    velocities = sorted({int(v) for v in velocities})
    if not velocities:
        raise ValueError("empty velocity selection")
    bad = [v for v in velocities if not 1 <= v <= 127]
    if bad:
        raise ValueError(f"velocity {bad[0]} is outside the MIDI range 1-127")
    return velocities


# --------------------------------------------------------------------------------------------
# Rendering and features


@dataclass(frozen=True)
class _Render:
    sample_rate: int
    duration: float
    hold: float
    fade_in: float
    fade_out: float
    silence_dbfs: float

    @property
    def samples(self) -> int:
        return int(round(self.duration * self.sample_rate))


_SYNTHS: dict[tuple[str, int], tuple[Any, int]] = {}


def _synth(soundfont: str, sample_rate: int) -> tuple[Any, int]:
    """One synthesizer per process and SoundFont, reused and flushed between notes."""
    key = (soundfont, sample_rate)
    if key not in _SYNTHS:
        import tinysoundfont

        synth = tinysoundfont.Synth(samplerate=sample_rate)
        _SYNTHS[key] = (synth, synth.sfload(soundfont))
    return _SYNTHS[key]


def _flush(synth: Any, sample_rate: int) -> None:
    """Silence every voice and render until the synth is idle, so no state carries over."""
    synth.sounds_off()
    n = int(FLUSH_SECONDS * sample_rate)
    for _ in range(20):
        out = np.frombuffer(synth.generate(n), dtype=np.float32)
        if not out[-64:].any():
            return


def _fades(r: _Render) -> np.ndarray:
    env = np.ones(r.samples, dtype=np.float32)
    n_in = max(1, int(round(r.fade_in * r.sample_rate)))
    n_out = max(1, int(round(r.fade_out * r.sample_rate)))
    env[:n_in] *= 0.5 - 0.5 * np.cos(np.pi * np.arange(n_in) / n_in)
    env[-n_out:] *= 0.5 + 0.5 * np.cos(np.pi * (np.arange(n_out) + 1) / n_out)
    return env


def _render_raw(synth: Any, sfid: int, program: int, pitch: int, velocity: int, r: _Render):
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


def _finish(raw: np.ndarray | None, r: _Render, env: np.ndarray) -> np.ndarray | None:
    """Fade, drop if nearly silent, peak-normalize, quantize to int16."""
    if raw is None:
        return None
    x = raw * env
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if not np.isfinite(peak) or peak <= 10 ** (r.silence_dbfs / 20):
        return None
    return np.round(x * np.float32(32767 / peak)).astype(np.int16)


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
    path = _check_soundfont(soundfont if soundfont is not None else default_soundfont())
    _check_pitches([pitch])
    _check_velocities([velocity])
    if not 0 <= int(program) <= 127:
        raise ValueError(f"program {program} is outside the General MIDI range 0-127")
    r = _Render(sample_rate, duration, hold, FADE_IN, FADE_OUT, SILENCE_DBFS)
    synth, sfid = _synth(str(path), sample_rate)
    wave = _finish(
        _render_raw(synth, sfid, int(program), int(pitch), int(velocity), r), r, _fades(r)
    )
    return None if wave is None else wave.astype(np.float32) / 32767


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
    import librosa

    return librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels).astype(np.float32)


def _render_task(task: tuple) -> tuple[int, list[tuple[int, int]], np.ndarray, np.ndarray, list]:
    """Worker: render and featurize every note of one (SoundFont, program)."""
    sf_index, sf_path, program, pitches, velocities, r, feat = task
    synth, sfid = _synth(sf_path, r.sample_rate)
    env = _fades(r)
    kept: list[tuple[int, int]] = []
    waves: list[np.ndarray] = []
    dropped: list[tuple[int, int]] = []
    for pitch in pitches:
        for velocity in velocities:
            wave = _finish(_render_raw(synth, sfid, program, pitch, velocity, r), r, env)
            if wave is None:
                dropped.append((pitch, velocity))
            else:
                kept.append((pitch, velocity))
                waves.append(wave)
    if waves:
        w = np.stack(waves)
        f = log_mel(w, r.sample_rate, **feat).astype(np.float16)
    else:
        frames = 1 + r.samples // feat["hop_length"]
        w = np.zeros((0, r.samples), np.int16)
        f = np.zeros((0, feat["n_mels"], frames), np.float16)
    return len(pitches) * len(velocities), kept, w, f, dropped


# --------------------------------------------------------------------------------------------
# Splits


def _split_programs(
    program_family: dict[int, str], seed: int, fractions: Sequence[float] = SPLIT_FRACTIONS
) -> dict[int, str]:
    """Assign each program to a split, family by family, deterministically for ``seed``.

    Per family of n programs: ``test = max(1, round(n * f_test))`` and
    ``valid = round(n * f_valid)``, at least 1 from n >= 4 (always at least 2 left for
    train); 1 program goes to train, 2 to train and test. So families with >= 3 programs
    are in train and test.
    """
    out: dict[int, str] = {}
    for fi, fam in enumerate(FAMILIES):
        members = sorted(p for p, f in program_family.items() if f == fam)
        n = len(members)
        if n == 0:
            continue
        rng = np.random.default_rng([int(seed), fi])
        order = [members[i] for i in rng.permutation(n)]
        if n == 1:
            n_test, n_valid = 0, 0
        elif n == 2:
            n_test, n_valid = 1, 0
        else:
            n_test = max(1, int(round(n * fractions[2])))
            n_valid = max(1 if n >= 4 else 0, int(round(n * fractions[1])))
            n_valid = min(n_valid, n - n_test - 1)
        for i, p in enumerate(order):
            out[p] = "test" if i < n_test else "valid" if i < n_test + n_valid else "train"
    return out


# --------------------------------------------------------------------------------------------
# Cache


def _params(
    soundfonts: list[Path],
    programs: list[int],
    pitches: list[int],
    velocities: list[int],
    seed: int,
    r: _Render,
    feat: dict[str, int],
) -> dict[str, Any]:
    return {
        "format": FORMAT_VERSION,
        "soundfonts": [{"name": p.name, "sha256": _sha256(p)} for p in soundfonts],
        "programs": programs,
        "pitches": pitches,
        "velocities": velocities,
        "seed": int(seed),
        "split_fractions": list(SPLIT_FRACTIONS),
        "sample_rate": r.sample_rate,
        "duration": r.duration,
        "hold": r.hold,
        "fade_in": r.fade_in,
        "fade_out": r.fade_out,
        "silence_dbfs": r.silence_dbfs,
        "features": {**feat, "log_floor": LOG_FLOOR, "mel": "librosa slaney, fmin 0, fmax sr/2"},
    }


def default_cache_dir(params: dict[str, Any], fast: bool) -> Path:
    """``data/cache/notes-{fast|full}-<hash of the parameters>`` under the repository."""
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:10]
    return REPO_ROOT / "data" / "cache" / f"notes-{'fast' if fast else 'full'}-{digest}"


def _cache_problem(root: Path, params: dict[str, Any] | None = None) -> str | None:
    """None when ``root`` holds a complete, consistent cache (for ``params`` if given)."""
    try:
        meta = json.loads((root / "metadata.json").read_text())
    except FileNotFoundError:
        return "metadata.json is missing"
    except (OSError, ValueError) as exc:
        return f"metadata.json is unreadable ({exc})"
    if not isinstance(meta, dict) or meta.get("params", {}).get("format") != FORMAT_VERSION:
        return "it has another format version"
    if params is not None and meta["params"] != params:
        return "it was built with other parameters"
    try:
        n = int(meta["counts"]["notes"])
        with (root / "manifest.csv").open(newline="") as f:
            reader = csv.reader(f)
            header = next(reader)
            rows = sum(1 for _ in reader)
        if tuple(header) != MANIFEST_COLUMNS or rows != n:
            return "manifest.csv does not match metadata.json"
        p = meta["params"]
        frames = 1 + int(round(p["duration"] * p["sample_rate"])) // p["features"]["hop_length"]
        expect = {
            "features.npy": ((n, p["features"]["n_mels"], frames), np.float16),
            "waveforms.npy": ((n, int(round(p["duration"] * p["sample_rate"]))), np.int16),
        }
        for name, (shape, dtype) in expect.items():
            arr = np.load(root / name, mmap_mode="r")
            if arr.shape != shape or arr.dtype != dtype:
                return f"{name} has shape {arr.shape} {arr.dtype}, expected {shape}"
            if (root / name).stat().st_size != meta["files"][name]:
                return f"{name} has the wrong size"
    except (OSError, ValueError, KeyError, TypeError, StopIteration) as exc:
        return f"a file is unreadable ({type(exc).__name__}: {exc})"
    return None


def _write_atomically(out: Path, fill: Callable[[Path], None]) -> None:
    """Build into a temporary directory beside ``out`` and move it into place at the end."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        fill(tmp)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.replace(out, old / "x")
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _workers(requested: int | None, tasks: int) -> int:
    if requested is not None:
        return max(1, int(requested))
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8, tasks // 4 or 1))


def _say(verbose: bool, message: str) -> None:
    if verbose:
        print(f"minis2l data: {message}", file=sys.stderr)


def build_dataset(
    out: str | Path | None = None,
    soundfont: str | Path | Sequence[str | Path] | None = None,
    fast: bool | None = None,
    seed: int = 0,
    *,
    programs: Iterable[int] | None = None,
    families: Iterable[str] | None = None,
    pitches: Iterable[int] | None = None,
    velocities: Iterable[int] | None = None,
    sample_rate: int = SAMPLE_RATE,
    duration: float = DURATION,
    hold: float = HOLD,
    n_fft: int = N_FFT,
    hop_length: int = HOP_LENGTH,
    n_mels: int = N_MELS,
    workers: int | None = None,
    force: bool = False,
    progress: bool = False,
    verbose: bool = True,
) -> Path:
    """Render, featurize and split the note data set; return its directory.

    Args:
        out: target directory; default ``data/cache/notes-{fast|full}-<hash>`` in the repo.
        soundfont: a ``.sf2``/``.sf3`` path or a list of them (default: pretty_midi's
            TimGM6mb.sf2). With several, an instrument is a (SoundFont, program) pair.
        fast: small data set (4 programs per family, 5 pitches); default ``fast_mode()``.
        seed: seeds the instrument split (the audio itself involves no randomness).
        programs, families: restrict the General MIDI programs / NSynth families; programs
            without a family in ``data/gm_families.csv`` are always left out.
        pitches, velocities: MIDI keys (0-127) and velocities (1-127) to render.
        sample_rate, duration, hold: audio format; the key is released after ``hold`` s.
        n_fft, hop_length, n_mels: log-mel parameters.
        workers: processes for rendering (default: the available cores, at most 8).
        force: rebuild even when a matching cache exists.
        progress: show a tqdm progress bar.
        verbose: say on stderr when a cache is reused or rebuilt.

    Returns:
        The directory holding ``manifest.csv``, ``features.npy``, ``waveforms.npy`` and
        ``metadata.json``. Identical parameters reuse it; other parameters or a damaged
        cache rebuild it. The build is atomic: an interrupted one leaves no target behind.

    Raises:
        FileNotFoundError: a SoundFont does not exist.
        ValueError: a file that is not a SoundFont, an empty program selection, a pitch or
            velocity outside the MIDI range, or an ``out`` directory holding other files.
    """
    fast = fast_mode() if fast is None else bool(fast)
    if soundfont is None:
        sf_list = [default_soundfont()]
    elif isinstance(soundfont, (str, os.PathLike)):
        sf_list = [soundfont]
    else:
        sf_list = list(soundfont)
    if not sf_list:
        raise ValueError("no SoundFont given")
    paths = [_check_soundfont(p) for p in sf_list]
    program_list = _select_programs(programs, families, fast)
    pitch_list = _check_pitches(
        pitches if pitches is not None else (FAST_PITCHES if fast else FULL_PITCHES)
    )
    velocity_list = _check_velocities(velocities if velocities is not None else VELOCITIES)
    if sample_rate <= 0 or duration <= 0 or hold < 0:
        raise ValueError("sample_rate and duration must be positive and hold non-negative")
    r = _Render(int(sample_rate), float(duration), float(hold), FADE_IN, FADE_OUT, SILENCE_DBFS)
    feat = {"n_fft": int(n_fft), "hop_length": int(hop_length), "n_mels": int(n_mels)}
    params = _params(paths, program_list, pitch_list, velocity_list, seed, r, feat)
    target = Path(out).expanduser() if out is not None else default_cache_dir(params, fast)
    target = target.resolve()

    if target.exists():
        if not target.is_dir():
            raise ValueError(f"output path exists and is not a directory: {target}")
        problem = _cache_problem(target, params)
        if problem is None and not force:
            _say(verbose, f"reusing the cache at {target}")
            return target
        ours = {"metadata.json", "manifest.csv", "features.npy", "waveforms.npy"}
        contents = {p.name for p in target.iterdir()}
        if contents and not contents & ours:
            raise ValueError(f"output directory is not empty and holds no data set: {target}")
        if contents:
            why = "rebuild requested" if problem is None else problem
            _say(verbose, f"rebuilding the cache at {target}: {why}")

    table = family_table()
    names = {row["program"]: row["name"] for row in table}
    program_family = {row["program"]: row["family"] for row in table if row["family"]}
    tasks = [
        (si, str(sf), prog, pitch_list, velocity_list, r, feat)
        for si, sf in enumerate(paths)
        for prog in program_list
    ]
    sf_tags = _soundfont_tags(paths)

    def fill(tmp: Path) -> None:
        start = time.perf_counter()
        results = _run_tasks(tasks, _workers(workers, len(tasks)), progress)
        rows: list[dict[str, Any]] = []
        waves, feats, dropped = [], [], []
        present = {prog: program_family[prog] for (_, _, prog, *_), res in results if res[1]}
        split_of = _split_programs(present, seed)
        for (si, _, prog, *_), (_, kept, w, f, drop) in results:
            fam = program_family[prog]
            instrument = f"{fam}_{sf_tags[si]}_{prog:03d}"
            for pitch, velocity in kept:
                rows.append(
                    {
                        "note_id": f"{instrument}-{pitch:03d}-{velocity:03d}",
                        "split": split_of[prog],
                        "program": prog,
                        "instrument": instrument,
                        "family": fam,
                        "family_index": FAMILIES.index(fam),
                        "pitch": pitch,
                        "velocity": velocity,
                        "soundfont": paths[si].name,
                        "program_name": names[prog],
                    }
                )
            waves.append(w)
            feats.append(f)
            dropped += [
                {"instrument": instrument, "pitch": p, "velocity": v, "reason": "silent"}
                for p, v in drop
            ]
        if not rows:
            raise ValueError("every render was silent: no notes to write")
        np.save(tmp / "waveforms.npy", np.concatenate(waves))
        np.save(tmp / "features.npy", np.concatenate(feats))
        with (tmp / "manifest.csv").open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        seconds = time.perf_counter() - start
        meta = {
            "minis2l_version": _version(),
            "params": params,
            "fast": fast,
            "soundfont_paths": [str(p) for p in paths],
            "counts": _counts(rows, dropped, len(tasks) * len(pitch_list) * len(velocity_list)),
            "dropped": dropped,
            "build_seconds": round(seconds, 3),
            "files": {
                name: (tmp / name).stat().st_size for name in ("features.npy", "waveforms.npy")
            },
            "feature_shape": list(np.load(tmp / "features.npy", mmap_mode="r").shape[1:]),
            "manifest_columns": list(MANIFEST_COLUMNS),
        }
        (tmp / "metadata.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")

    _write_atomically(target, fill)
    return target


def _soundfont_tags(paths: list[Path]) -> list[str]:
    tags = []
    for p in paths:
        tag = "".join(c for c in p.stem.lower() if c.isalnum()) or "sf"
        while tag in tags:
            tag += "x"
        tags.append(tag)
    return tags


def _version() -> str:
    from minis2l import __version__

    return __version__


def _one_blas_thread() -> Any:
    """Limit BLAS/OpenMP pools to one thread (a context manager; a no-op without threadpoolctl).

    The work is already spread over processes; threaded BLAS on top of that only spins and
    competes for the same cores (several times slower on a busy 2-core machine).
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return contextlib.nullcontext()
    return threadpool_limits(1)


_WORKER_LIMITS: list[Any] = []


def _worker_init() -> None:
    _WORKER_LIMITS.append(_one_blas_thread())


def _run_tasks(tasks: list[tuple], workers: int, progress: bool) -> list[tuple[tuple, tuple]]:
    from tqdm.auto import tqdm

    total = sum(len(t[3]) * len(t[4]) for t in tasks)
    bar = tqdm(total=total, unit="note", desc="rendering", disable=not progress)
    results = []
    try:
        with _one_blas_thread():
            log_mel(np.zeros(2048, np.float32))  # librosa's lazy imports, once, before a fork
            if workers <= 1:
                for task in tasks:
                    res = _render_task(task)
                    results.append((task, res))
                    bar.update(res[0])
            else:
                import multiprocessing as mp

                methods = mp.get_all_start_methods()
                ctx = mp.get_context("fork" if "fork" in methods else None)
                with ctx.Pool(workers, initializer=_worker_init) as pool:
                    jobs = pool.imap(_render_task, tasks, chunksize=1)
                    for task, res in zip(tasks, jobs, strict=True):
                        results.append((task, res))
                        bar.update(res[0])
    finally:
        bar.close()
    return results


def _counts(rows: list[dict], dropped: list[dict], attempted: int) -> dict[str, Any]:
    notes = defaultdict(Counter)
    instruments: dict[str, dict[str, set]] = defaultdict(lambda: defaultdict(set))
    for row in rows:
        notes[row["split"]][row["family"]] += 1
        instruments[row["split"]][row["family"]].add(row["instrument"])
    return {
        "attempted": attempted,
        "notes": len(rows),
        "dropped": len(dropped),
        "instruments": len({row["instrument"] for row in rows}),
        "notes_per_split": {s: sum(notes[s].values()) for s in SPLITS},
        "notes_per_family_split": {s: {f: notes[s][f] for f in FAMILIES} for s in SPLITS},
        "instruments_per_family_split": {
            s: {f: len(instruments[s][f]) for f in FAMILIES} for s in SPLITS
        },
    }


# --------------------------------------------------------------------------------------------
# Loading


@dataclass
class NoteSet:
    """A built data set (or one split of it) as arrays, row-aligned with ``manifest``.

    ``features``: ``(N, n_mels, frames)`` float16 log-mel; ``waveforms``: ``(N, samples)``
    int16 (divide by 32767 for [-1, 1]); ``family``, ``pitch``, ``velocity``, ``program``:
    ``(N,)`` int64 labels (``family`` indexes :data:`FAMILIES`).
    """

    root: Path
    manifest: list[dict[str, str]]
    features: np.ndarray
    waveforms: np.ndarray
    metadata: dict[str, Any]
    family: np.ndarray = field(init=False)
    pitch: np.ndarray = field(init=False)
    velocity: np.ndarray = field(init=False)
    program: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        for name, col in (
            ("family", "family_index"),
            ("pitch", "pitch"),
            ("velocity", "velocity"),
            ("program", "program"),
        ):
            setattr(self, name, np.array([int(r[col]) for r in self.manifest], dtype=np.int64))

    def __len__(self) -> int:
        return len(self.manifest)

    @property
    def sample_rate(self) -> int:
        """Audio sample rate in Hz."""
        return int(self.metadata["params"]["sample_rate"])

    def split(self, name: str) -> NoteSet:
        """The rows of one split (``"train"``, ``"valid"`` or ``"test"``), loaded in memory."""
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; choose from {', '.join(SPLITS)}")
        idx = np.array([i for i, r in enumerate(self.manifest) if r["split"] == name], dtype=int)
        return NoteSet(
            self.root,
            [self.manifest[i] for i in idx],
            np.asarray(self.features[idx]),
            np.asarray(self.waveforms[idx]),
            self.metadata,
        )


def _open(root: str | Path) -> tuple[Path, list[dict[str, str]], np.ndarray, np.ndarray, dict]:
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"no data set at {root}; build one with `python -m minis2l data`")
    problem = _cache_problem(root)
    if problem is not None:
        raise ValueError(f"the data set at {root} is damaged ({problem}); rebuild it")
    meta = json.loads((root / "metadata.json").read_text())
    with (root / "manifest.csv").open(newline="") as f:
        manifest = list(csv.DictReader(f))
    features = np.load(root / "features.npy", mmap_mode="r")
    waveforms = np.load(root / "waveforms.npy", mmap_mode="r")
    return root, manifest, features, waveforms, meta


def load_dataset(root: str | Path | None = None, **build_kwargs: Any) -> NoteSet:
    """Open a built data set; with no ``root``, build (or reuse) one first.

    ``build_kwargs`` go to :func:`build_dataset` (e.g. ``fast=True``, ``soundfont=...``).
    Arrays are memory-mapped; ``NoteSet.split("train")`` loads one split into memory.
    """
    if root is None:
        root = build_dataset(**build_kwargs)
    elif build_kwargs:
        raise ValueError("give either root or build arguments, not both")
    return NoteSet(*_open(root))


class NoteDataset(torch.utils.data.Dataset):
    """A torch ``Dataset`` over one split of a built data set.

    Item ``i`` is a dict: ``features`` float32 tensor ``(n_mels, frames)``; ``family`` (index
    into :data:`FAMILIES`), ``pitch``, ``velocity``, ``program`` and ``index`` (manifest row) as
    int64 scalar tensors; with ``with_audio=True`` also ``audio``, float32 ``(samples,)`` in
    [-1, 1].
    """

    def __init__(self, root: str | Path, split: str | None = "train", with_audio: bool = False):
        if split is not None and split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; choose from {', '.join(SPLITS)} or None")
        self.root, manifest, self._features, self._waveforms, self.metadata = _open(root)
        rows = [i for i, r in enumerate(manifest) if split is None or r["split"] == split]
        self.split = split
        self.with_audio = with_audio
        self.indices = np.array(rows, dtype=np.int64)
        self.manifest = [manifest[i] for i in rows]
        self.family = np.array([int(r["family_index"]) for r in self.manifest], dtype=np.int64)
        self.pitch = np.array([int(r["pitch"]) for r in self.manifest], dtype=np.int64)
        self.sample_rate = int(self.metadata["params"]["sample_rate"])

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        row = int(self.indices[i])
        meta = self.manifest[i]
        item = {
            "features": torch.from_numpy(np.asarray(self._features[row], dtype=np.float32)),
            "family": torch.tensor(int(meta["family_index"])),
            "pitch": torch.tensor(int(meta["pitch"])),
            "velocity": torch.tensor(int(meta["velocity"])),
            "program": torch.tensor(int(meta["program"])),
            "index": torch.tensor(row),
        }
        if self.with_audio:
            wave = np.asarray(self._waveforms[row], dtype=np.float32) / 32767
            item["audio"] = torch.from_numpy(wave)
        return item


# --------------------------------------------------------------------------------------------
# Command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``python -m minis2l data``."""
    parser.add_argument(
        "--soundfont",
        metavar="PATH",
        action="append",
        help="a .sf2/.sf3 General MIDI SoundFont (repeat for several; default: pretty_midi's "
        "TimGM6mb.sf2)",
    )
    parser.add_argument(
        "--out", metavar="DIR", help="output directory (default: data/cache/notes-...)"
    )
    parser.add_argument("--seed", metavar="S", type=int, default=0, help="split seed (default 0)")
    parser.add_argument(
        "--programs", metavar="LIST", help="General MIDI programs, e.g. 0-7,40 (default: all kept)"
    )
    parser.add_argument(
        "--families",
        metavar="LIST",
        help=f"families to keep, comma-separated: {','.join(FAMILIES)}",
    )
    parser.add_argument(
        "--pitches", metavar="LIST", help="MIDI pitches, e.g. 24-108:4 (default) or 60,64,67"
    )
    parser.add_argument("--velocities", metavar="LIST", help="MIDI velocities (default 64,127)")
    parser.add_argument("--workers", metavar="N", type=int, help="rendering processes")
    parser.add_argument("--force", action="store_true", help="rebuild even if the cache matches")


def run(args: argparse.Namespace) -> int:
    """Build the data set from parsed arguments; print a summary. Returns the exit status."""
    try:
        kwargs: dict[str, Any] = {}
        if args.programs is not None:
            kwargs["programs"] = parse_int_list(args.programs, "program")
        if args.families is not None:
            kwargs["families"] = [f.strip() for f in args.families.split(",") if f.strip()]
            if not kwargs["families"]:
                raise ValueError("empty family selection")
        if args.pitches is not None:
            kwargs["pitches"] = parse_int_list(args.pitches, "pitch")
        if args.velocities is not None:
            kwargs["velocities"] = parse_int_list(args.velocities, "velocity")
        start = time.perf_counter()
        root = build_dataset(
            out=args.out,
            soundfont=args.soundfont,
            seed=args.seed,
            workers=args.workers,
            force=args.force,
            progress=True,
            **kwargs,
        )
        elapsed = time.perf_counter() - start
        meta = json.loads((root / "metadata.json").read_text())
    except (ValueError, OSError) as exc:
        print(f"minis2l data: error: {exc}", file=sys.stderr)
        return 1
    print(summary(meta, root, elapsed))
    return 0


def summary(meta: dict[str, Any], root: Path | str, elapsed: float | None = None) -> str:
    """A text table: notes (instruments) per family and split, and the dropped renders."""
    c = meta["counts"]
    names = ", ".join(sf["name"] for sf in meta["params"]["soundfonts"])
    took = f" in {elapsed:.1f} s" if elapsed is not None else ""
    lines = [
        f"{c['notes']} notes from {c['instruments']} instruments ({names}){took} -> {root}",
        f"(build took {meta['build_seconds']:.1f} s; notes as 'notes (instruments)')",
        f"{'family':<12}" + "".join(f"{s:>14}" for s in SPLITS),
    ]
    nf, inf = c["notes_per_family_split"], c["instruments_per_family_split"]
    for fam in FAMILIES:
        cells = [f"{nf[s][fam]} ({inf[s][fam]})" for s in SPLITS]
        lines.append(f"{fam:<12}" + "".join(f"{cell:>14}" for cell in cells))
    totals = [f"{c['notes_per_split'][s]} ({sum(inf[s].values())})" for s in SPLITS]
    lines.append(f"{'total':<12}" + "".join(f"{cell:>14}" for cell in totals))
    lines.append(f"dropped renders (silent or nearly silent): {c['dropped']} of {c['attempted']}")
    return "\n".join(lines)
