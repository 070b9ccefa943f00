"""The study's job runner: every encoder is a job, saved as soon as it is done.

Each job's result goes to ``out/runs/<method>-<patches>-<seed>/result.pt`` with a key (the
config and the data's fingerprint), so a killed study resumes from its finished encoders when
run again with the same configuration and data. Several worker processes share one list of
jobs: a process claims a job by creating its ``claim`` file atomically, and takes over the
claim of a process that is gone.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from minis2l import modality as M
from minis2l.io import save_torch
from minis2l.items import Items
from minis2l.study.config import ABLATION_METHODS, StudyConfig
from minis2l.study.encoders import Job, run_job


def job_name(job: Job) -> str:
    """``"<method>-<patches>-<seed>"``: the job's folder under ``out/runs``."""
    return "{}-{}-{}".format(*job)


def jobs_of(cfg: StudyConfig) -> list[Job]:
    """Every encoder to train and evaluate: each method per seed on the main patch kind,
    then seed 0's :data:`ABLATION_METHODS` on the other kinds (with ablations)."""
    jobs = [(m, cfg.patches, s) for s in range(cfg.seeds) for m in cfg.methods]
    jobs += [(m, k, 0) for k in cfg.patch_kinds()[1:] for m in ABLATION_METHODS]
    return jobs


def load_data(cfg: StudyConfig, progress: bool) -> Items:
    """The study's items, from its modality's loader (which builds audio notes first)."""
    return M.load_items(
        cfg.modality, fast=cfg.fast, progress=progress, verbose=progress, **cfg.loader_options()
    )


#: Bumped whenever a job's result changes for the same config and data (a model or a metric
#: changes), so that a study never reuses results of older code. 2: the rank head lost its
#: bias, and the pretext is scored on the same puzzles for both heads.
RESULT_FORMAT = 2


def job_key(cfg: StudyConfig, items: Items) -> str:
    """What a saved job result must match to be reused: the config, the data's contents and
    :data:`RESULT_FORMAT`."""
    blob = json.dumps(
        {"cfg": asdict(cfg) | {"device": None}, "data": items.fingerprint, "format": RESULT_FORMAT},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def load_result(run_dir: Path, key: str) -> dict[str, Any] | None:
    """The job result saved in ``run_dir`` under ``key``; None if missing, stale or damaged."""
    path = run_dir / "result.pt"
    if not path.is_file():
        return None
    try:
        result = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a result from another version or a damaged file: recompute
        return None
    return result if result.get("key") == key else None


def _claim(run_dir: Path) -> bool:
    """Claim a job for this process (atomically); steal the claim of a process that is gone."""
    run_dir.mkdir(parents=True, exist_ok=True)
    claim = run_dir / "claim"
    for _ in range(2):
        try:
            with claim.open("x") as f:
                f.write(str(os.getpid()))
            return True
        except FileExistsError:
            try:
                pid = int(claim.read_text() or 0)
                os.kill(pid, 0)
                return False  # a live process works on it
            except (ValueError, ProcessLookupError):
                claim.unlink(missing_ok=True)
            except PermissionError:
                return False
    return False


def _work(cfg: StudyConfig, out: Path, jobs: list[Job], items: Items, progress: bool) -> None:
    """Run every job not done or claimed yet, in order; each result is saved atomically."""
    t0 = time.perf_counter()
    key = job_key(cfg, items)
    for i, job in enumerate(jobs, 1):
        run_dir = out / "runs" / job_name(job)
        if load_result(run_dir, key) is not None or not _claim(run_dir):
            continue
        try:
            print(f"[{i}/{len(jobs)}] {job[0]} / {job[1]} patches / seed {job[2]}", flush=True)
            result = run_job(job, cfg, items, run_dir, progress)
            save_torch(run_dir / "result.pt", {"key": key, **result})
        finally:
            (run_dir / "claim").unlink(missing_ok=True)
        last = result["scores"][f"probe_{max(cfg.probe_fractions)}"]
        accuracies = "  ".join(f"{t} {r['accuracy']:.3f}" for t, r in last.items())
        print(
            f"      {job_name(job)}: probe {accuracies}  ({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )


def _worker_main(cfg: StudyConfig, out: str, threads: int) -> None:
    """Entry point of an extra worker process (spawned by :func:`run_jobs`)."""
    torch.set_num_threads(threads)
    _work(cfg, Path(out), jobs_of(cfg), load_data(cfg, progress=False), progress=False)


def run_jobs(
    cfg: StudyConfig, out: Path, items: Items, *, progress: bool, workers: int
) -> dict[Job, dict[str, Any]]:
    """Every job's result: those saved already, the others computed by this process and
    ``workers - 1`` more (each with its share of the CPU threads)."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    jobs = jobs_of(cfg)
    if workers > 1:
        import multiprocessing as mp

        threads = max(1, torch.get_num_threads() // workers)
        torch.set_num_threads(threads)
        ctx = mp.get_context("spawn")
        procs = [
            ctx.Process(target=_worker_main, args=(cfg, str(out), threads))
            for _ in range(workers - 1)
        ]
        for proc in procs:
            proc.start()
        try:
            _work(cfg, out, jobs, items, progress)
        finally:
            for proc in procs:
                proc.join()
        if any(proc.exitcode for proc in procs):
            raise RuntimeError("a study worker process failed; rerun to resume")
    else:
        _work(cfg, out, jobs, items, progress)
    key = job_key(cfg, items)
    done = {}
    for job in jobs:
        done[job] = load_result(out / "runs" / job_name(job), key)
        if done[job] is None:
            raise RuntimeError(f"study job {job_name(job)} has no result; rerun to resume")
    return done
