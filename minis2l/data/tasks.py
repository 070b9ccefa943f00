"""The rendering work: one task per (SoundFont, program), run in worker processes.

A task renders and featurizes every pitch and velocity of one program of one SoundFont. The
tasks are spread over worker processes (forked after the SoundFonts are loaded, so a slow
``.sf3`` is decoded once), each limited to one BLAS thread.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from minis2l.data.features import log_mel
from minis2l.data.render import finish, render_raw
from minis2l.data.soundfonts import load_synth


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
        f = log_mel(w, r.sample_rate, **feat.as_dict()).astype(np.float16)
    else:
        w = np.zeros((0, r.samples), np.int16)
        f = np.zeros((0, feat.n_mels, feat.frames(r.samples)), np.float16)
    if not store_audio:
        w = np.zeros((0, r.samples), np.int16)
    return len(pitches) * len(velocities), kept, w, f, dropped


def _workers(requested: int | None, tasks: int) -> int:
    if requested is not None:
        return max(1, int(requested))
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8, tasks // 4 or 1))


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


def run_tasks(tasks: list[tuple], workers: int | None, progress: bool) -> list[tuple[tuple, tuple]]:
    """Run :func:`_render_task` on every task; ``[(task, result), ...]`` in finishing order.

    ``workers``: processes (default :func:`_workers`); one runs the tasks in this process.
    """
    from tqdm.auto import tqdm

    workers = _workers(workers, len(tasks))

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
