"""Building a data set: render every note of every (SoundFont, program), featurize, split, cache.

The work is one task per (SoundFont, program), spread over worker processes (forked after the
SoundFonts are loaded, so a slow ``.sf3`` is decoded once), each limited to one BLAS thread.
"""

from __future__ import annotations

import csv
import json
import os
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
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
from minis2l.data.features import HOP_LENGTH, LOG_FLOOR, N_FFT, N_MELS, log_mel
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
from minis2l.data.render import (
    DURATION,
    HOLD,
    SAMPLE_RATE,
    RenderSpec,
    finish,
    render_raw,
)
from minis2l.data.soundfonts import (
    check_soundfont,
    default_soundfont,
    load_synth,
    sha256,
    soundfont_tags,
)
from minis2l.data.splits import SPLIT_FRACTIONS, SPLITS, split_programs

#: Waveforms are stored when they take at most this many bytes; beyond, they are re-rendered
#: on demand (a pool of ~30 000 notes would need ~1 GB).
AUDIO_BUDGET_BYTES = 300 * 2**20


def _render_task(task: tuple) -> tuple[int, list[tuple[int, int]], np.ndarray, np.ndarray, list]:
    """Worker: render and featurize every note of one (SoundFont, program).

    Returns (attempted, kept (pitch, velocity) pairs, int16 waveforms or an empty array when
    audio is not stored, float16 log-mels, dropped pairs).
    """
    _, sf_path, program, pitches, velocities, r, feat, store_audio = task
    synth, sfid = load_synth(sf_path, r.sample_rate)
    env = r.envelope()
    kept: list[tuple[int, int]] = []
    waves: list[np.ndarray] = []
    dropped: list[tuple[int, int]] = []
    for pitch in pitches:
        for velocity in velocities:
            wave = finish(render_raw(synth, sfid, program, pitch, velocity, r), r, env)
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
    if not store_audio:
        w = np.zeros((0, r.samples), np.int16)
    return len(pitches) * len(velocities), kept, w, f, dropped


def _params(
    soundfonts: list[Path],
    programs: list[int],
    pitches: list[int],
    velocities: list[int],
    seed: int,
    r: RenderSpec,
    feat: dict[str, int],
    store_audio: bool,
) -> dict[str, Any]:
    """Everything that determines a build's contents (the cache key)."""
    return {
        "format": FORMAT_VERSION,
        "soundfonts": [{"name": p.name, "sha256": sha256(p)} for p in soundfonts],
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
        "store_audio": store_audio,
        "features": {**feat, "log_floor": LOG_FLOOR, "mel": "librosa slaney, fmin 0, fmax sr/2"},
    }


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
        sample_rate, duration, hold: audio format; the key is released after ``hold`` s.
        n_fft, hop_length, n_mels: log-mel parameters.
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
    if soundfont is None:
        sf_list = [default_soundfont()]
    elif isinstance(soundfont, (str, os.PathLike)):
        sf_list = [soundfont]
    else:
        sf_list = list(soundfont)
    if not sf_list:
        raise ValueError("no SoundFont given")
    if sample_rate <= 0 or duration <= 0 or hold < 0:
        raise ValueError("sample_rate and duration must be positive and hold non-negative")
    paths = [check_soundfont(p, int(sample_rate)) for p in sf_list]
    if len(set(paths)) != len(paths):
        raise ValueError("the same SoundFont is given twice")
    program_list = select_programs(programs, families, fast)
    pitch_list = check_pitches(
        pitches if pitches is not None else (FAST_PITCHES if fast else FULL_PITCHES)
    )
    velocity_list = check_velocities(velocities if velocities is not None else VELOCITIES)
    r = RenderSpec(int(sample_rate), float(duration), float(hold))
    feat = {"n_fft": int(n_fft), "hop_length": int(hop_length), "n_mels": int(n_mels)}
    attempted = len(paths) * len(program_list) * len(pitch_list) * len(velocity_list)
    if store_audio is None:
        store_audio = attempted * r.samples * 2 <= AUDIO_BUDGET_BYTES
    params = _params(
        paths, program_list, pitch_list, velocity_list, seed, r, feat, bool(store_audio)
    )
    target = Path(out).expanduser() if out is not None else default_cache_dir(params, fast)
    target = target.resolve()

    if target.exists():
        if not target.is_dir():
            raise ValueError(f"output path exists and is not a directory: {target}")
        problem = cache_problem(target, params)
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
    # Interleave the SoundFonts so that the workers share the slow and the fast ones.
    tasks = [
        (si, str(sf), prog, pitch_list, velocity_list, r, feat, bool(store_audio))
        for prog in program_list
        for si, sf in enumerate(paths)
    ]
    sf_tags = soundfont_tags(paths)

    def fill(tmp: Path) -> None:
        start = time.perf_counter()
        results = _run_tasks(tasks, _workers(workers, len(tasks)), progress)
        rows: list[dict[str, Any]] = []
        waves, feats, dropped = [], [], []
        present = {prog: program_family[prog] for (_, _, prog, *_), res in results if res[1]}
        split_of = split_programs(present, seed)
        for (si, _, prog, *_), (_, kept, w, f, drop) in sorted(
            results, key=lambda tr: (tr[0][0], tr[0][2])
        ):
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
        if store_audio:
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
            "counts": _counts(rows, dropped, attempted),
            "dropped": dropped,
            "build_seconds": round(seconds, 3),
            "notes_per_second": round(attempted / seconds, 1),
            "files": file_records(tmp),
            "feature_shape": list(np.load(tmp / "features.npy", mmap_mode="r").shape[1:]),
            "manifest_columns": list(MANIFEST_COLUMNS),
        }
        (tmp / "metadata.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")

    write_atomically(target, fill)
    return target


def _version() -> str:
    from minis2l import __version__

    return __version__


def _one_blas_thread() -> Any:
    """Limit BLAS/OpenMP pools to one thread (a context manager).

    The work is already spread over processes; threaded BLAS on top of that only spins and
    competes for the same cores (several times slower on a busy 2-core machine).
    """
    from threadpoolctl import threadpool_limits

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
                    jobs = pool.imap_unordered(_indexed_task, list(enumerate(tasks)), chunksize=1)
                    for i, res in jobs:
                        results.append((tasks[i], res))
                        bar.update(res[0])
    finally:
        bar.close()
    return results


def _indexed_task(item: tuple[int, tuple]) -> tuple[int, tuple]:
    return item[0], _render_task(item[1])


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
