"""Building a data set: render every note of every (SoundFont, program), featurize, split, cache.

The rendering runs in worker processes (:mod:`~minis2l.data.tasks`); this module chooses what to
render, names and splits the instruments, and writes the cache atomically.
"""

from __future__ import annotations

import csv
import functools
import json
import os
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from minis2l.config import fast_mode
from minis2l.data.cache import (
    FORMAT_VERSION,
    MANIFEST_COLUMNS,
    cache_problem,
    default_cache_dir,
    file_records,
    write_atomically,
)
from minis2l.data.features import LOG_FLOOR, FeatureSpec
from minis2l.data.programs import (
    FAMILIES,
    FAST_PITCHES,
    FULL_PITCHES,
    VELOCITIES,
    check_pitches,
    check_velocities,
    family_table,
    select_programs,
)
from minis2l.data.render import RenderSpec
from minis2l.data.soundfonts import check_soundfont, default_soundfont, sha256, soundfont_tags
from minis2l.data.splits import SPLIT_FRACTIONS, SPLITS, split_programs
from minis2l.data.tasks import run_tasks

#: Waveforms are stored when they take at most this many bytes; beyond, they are re-rendered
#: on demand (a pool of ~30 000 notes would need ~1 GB).
AUDIO_BUDGET_BYTES = 300 * 2**20


@dataclass(frozen=True)
class _Plan:
    """What a build renders: the checked selections and settings."""

    paths: list[Path]
    programs: list[int]
    pitches: list[int]
    velocities: list[int]
    seed: int
    render: RenderSpec
    features: FeatureSpec
    store_audio: bool
    fast: bool

    @property
    def attempted(self) -> int:
        """Notes to render: SoundFonts x programs x pitches x velocities."""
        return len(self.paths) * len(self.programs) * len(self.pitches) * len(self.velocities)

    def params(self) -> dict[str, Any]:
        """Everything that determines a build's contents (the cache key)."""
        r = self.render
        return {
            "format": FORMAT_VERSION,
            "soundfonts": [{"name": p.name, "sha256": sha256(p)} for p in self.paths],
            "programs": self.programs,
            "pitches": self.pitches,
            "velocities": self.velocities,
            "seed": int(self.seed),
            "split_fractions": list(SPLIT_FRACTIONS),
            "sample_rate": r.sample_rate,
            "duration": r.duration,
            "hold": r.hold,
            "fade_in": r.fade_in,
            "fade_out": r.fade_out,
            "silence_dbfs": r.silence_dbfs,
            "store_audio": self.store_audio,
            "features": {
                **self.features.as_dict(),
                "log_floor": LOG_FLOOR,
                "mel": "librosa slaney, fmin 0, fmax sr/2",
            },
        }

    def tasks(self) -> list[tuple]:
        """One rendering task per (SoundFont, program) (see :mod:`minis2l.data.tasks`), the
        SoundFonts interleaved so that the workers share the slow and the fast ones."""
        return [
            (si, str(sf), prog, self.pitches, self.velocities, self.render, self.features,
             self.store_audio)
            for prog in self.programs
            for si, sf in enumerate(self.paths)
        ]  # fmt: skip


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
    render: RenderSpec | None = None,
    features: FeatureSpec | None = None,
    store_audio: bool | None = None,
    workers: int | None = None,
    force: bool = False,
    progress: bool = False,
    verbose: bool = True,
) -> Path:
    """Render, featurize and split the note data set; return its directory.

    Args:
        out: target directory; default ``data/cache/notes-{fast|full}-<hash>`` in the repo.
        soundfont: a ``.sf2``/``.sf3`` path or a list of them (default: pretty_midi's
            TimGM6mb.sf2; :func:`minis2l.data.pool_soundfonts` gives the pool). With several,
            an instrument is a (SoundFont, program) pair.
        fast: small data set (4 programs per family, 5 pitches); default ``fast_mode()``.
        seed: seeds the instrument split (the audio itself involves no randomness).
        programs, families: restrict the General MIDI programs / NSynth families; programs
            without a family in ``data/gm_families.csv`` are always left out.
        pitches, velocities: MIDI keys (0-127) and velocities (1-127) to render (default:
            24-108 every 4 semitones, velocities 64 and 127).
        render: the audio format (:class:`~minis2l.data.render.RenderSpec`: sample rate,
            duration, when the key is released, fades); default 16 kHz, 1 s.
        features: the log-mel settings (:class:`~minis2l.data.features.FeatureSpec`).
        store_audio: keep the int16 waveforms in ``waveforms.npy``; default: when they take
            at most :data:`AUDIO_BUDGET_BYTES`. Without them, audio is re-rendered on demand.
        workers: processes for rendering (default: the available cores, at most 8).
        force: rebuild even when a matching cache exists.
        progress: show a tqdm progress bar.
        verbose: say on stderr when a cache is reused or rebuilt.

    Returns:
        The directory holding ``manifest.csv``, ``features.npy``, ``metadata.json`` and,
        with ``store_audio``, ``waveforms.npy``. Identical parameters reuse it; other
        parameters or a damaged cache rebuild it. The build is atomic: an interrupted one
        leaves no target behind, and the next build removes its temporary directory.

    Raises:
        FileNotFoundError: a SoundFont does not exist.
        ValueError: a file that is not a SoundFont, an empty program selection, a pitch or
            velocity outside the MIDI range, or an ``out`` directory holding other files.
    """
    fast = fast_mode() if fast is None else bool(fast)
    r = render if render is not None else RenderSpec()
    paths = _soundfont_paths(soundfont, r.sample_rate)
    default_pitches = FAST_PITCHES if fast else FULL_PITCHES
    plan = _Plan(
        paths=paths,
        programs=select_programs(programs, families, fast),
        pitches=check_pitches(pitches if pitches is not None else default_pitches),
        velocities=check_velocities(velocities if velocities is not None else VELOCITIES),
        seed=seed,
        render=r,
        features=features if features is not None else FeatureSpec(),
        store_audio=bool(store_audio),
        fast=fast,
    )
    if store_audio is None:  # by default, store the audio when it is small enough
        plan = replace(plan, store_audio=plan.attempted * r.samples * 2 <= AUDIO_BUDGET_BYTES)
    params = plan.params()
    target = Path(out).expanduser() if out is not None else default_cache_dir(params, fast)
    target = target.resolve()
    if not _reusable(target, params, force, verbose):
        write_atomically(target, functools.partial(_fill, plan, params, workers, progress))
    return target


def _fill(
    plan: _Plan, params: dict[str, Any], workers: int | None, progress: bool, tmp: Path
) -> None:
    """Render ``plan`` and write the data set into the directory ``tmp``."""
    start = time.perf_counter()
    results = run_tasks(plan.tasks(), workers, progress)
    rows, waves, feats, dropped = _collect(results, plan.paths, plan.seed)
    _write_arrays(tmp, rows, feats, waves if plan.store_audio else None)
    seconds = time.perf_counter() - start
    meta = {
        "minis2l_version": _version(),
        "params": params,
        "fast": plan.fast,
        "soundfont_paths": [str(p) for p in plan.paths],
        "counts": _counts(rows, dropped, plan.attempted),
        "dropped": dropped,
        "build_seconds": round(seconds, 3),
        "notes_per_second": round(plan.attempted / seconds, 1),
        "files": file_records(tmp),
        "feature_shape": list(np.load(tmp / "features.npy", mmap_mode="r").shape[1:]),
        "manifest_columns": list(MANIFEST_COLUMNS),
    }
    (tmp / "metadata.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")


def _soundfont_paths(
    soundfont: str | Path | Sequence[str | Path] | None, sample_rate: int
) -> list[Path]:
    """The checked SoundFont paths of :func:`build_dataset`'s ``soundfont`` argument."""
    if soundfont is None:
        sf_list = [default_soundfont()]
    elif isinstance(soundfont, (str, os.PathLike)):
        sf_list = [soundfont]
    else:
        sf_list = list(soundfont)
    if not sf_list:
        raise ValueError("no SoundFont given")
    paths = [check_soundfont(p, int(sample_rate)) for p in sf_list]
    if len(set(paths)) != len(paths):
        raise ValueError("the same SoundFont is given twice")
    return paths


def _reusable(target: Path, params: dict[str, Any], force: bool, verbose: bool) -> bool:
    """Whether ``target`` already holds the build of ``params`` (and no rebuild is forced).

    Raises ValueError when ``target`` is a file, or a directory of other files than a build's.
    """
    if not target.exists():
        return False
    if not target.is_dir():
        raise ValueError(f"output path exists and is not a directory: {target}")
    problem = cache_problem(target, params)
    if problem is None and not force:
        _say(verbose, f"reusing the cache at {target}")
        return True
    ours = {"metadata.json", "manifest.csv", "features.npy", "waveforms.npy"}
    contents = {p.name for p in target.iterdir()}
    if contents and not contents & ours:
        raise ValueError(f"output directory is not empty and holds no data set: {target}")
    if contents:
        why = "rebuild requested" if problem is None else problem
        _say(verbose, f"rebuilding the cache at {target}: {why}")
    return False


def _collect(
    results: list[tuple[tuple, tuple]], paths: list[Path], seed: int
) -> tuple[list[dict[str, Any]], list[np.ndarray], list[np.ndarray], list[dict[str, Any]]]:
    """The workers' results as manifest rows, waveforms, features and dropped renders.

    Instruments are split by ``seed`` among the programs that kept at least one note; rows
    come in (SoundFont, program) order, whatever order the workers finished in.
    """
    table = family_table()
    names = {row["program"]: row["name"] for row in table}
    program_family = {row["program"]: row["family"] for row in table if row["family"]}
    sf_tags = soundfont_tags(paths)
    present = {prog: program_family[prog] for (_, _, prog, *_), res in results if res[1]}
    split_of = split_programs(present, seed)
    rows: list[dict[str, Any]] = []
    waves, feats, dropped = [], [], []
    for (si, _, prog, *_), (_, kept, w, f, drop) in sorted(
        results, key=lambda tr: (tr[0][0], tr[0][2])
    ):
        fam = program_family[prog]
        instrument = f"{fam}_{sf_tags[si]}_{prog:03d}"
        rows += [
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
            for pitch, velocity in kept
        ]
        waves.append(w)
        feats.append(f)
        dropped += [
            {"instrument": instrument, "pitch": p, "velocity": v, "reason": "silent"}
            for p, v in drop
        ]
    if not rows:
        raise ValueError("every render was silent: no notes to write")
    return rows, waves, feats, dropped


def _write_arrays(
    tmp: Path,
    rows: list[dict[str, Any]],
    feats: list[np.ndarray],
    waves: list[np.ndarray] | None,
) -> None:
    """Write ``features.npy``, ``manifest.csv`` and (unless ``waves`` is None) the audio."""
    if waves is not None:
        np.save(tmp / "waveforms.npy", np.concatenate(waves))
    np.save(tmp / "features.npy", np.concatenate(feats))
    with (tmp / "manifest.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def _version() -> str:
    from minis2l import __version__

    return __version__


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
