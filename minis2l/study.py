"""The study (``python -m minis2l demo``): which encoder gives the best representation?

For each seed, four encoders with the same architecture and training budget, on one modality
(``--modality``: audio notes, images or video clips; :mod:`minis2l.modality`):

* ``random``: untrained (the seed's initialization);
* ``jigsaw``: pretrained to classify a fixed set of P = 100 permutations;
* ``rank``: pretrained with the soft-rank loss on all K! permutations;
* ``supervised``: trained on the first task's labels (instrument family; image class; clip
  class): a reference, not a competitor.

Each is evaluated in five **regimes**: frozen, with linear probes (:mod:`minis2l.probe`) on 1 %,
10 % and 100 % of the train labels (class-stratified subsets; at 1 % the mean over several
subsets), and fine-tuned with a linear head (:mod:`minis2l.finetune`) on 1 % and 10 %, with the
same budget from each initialization and the stopping step chosen on valid (audio; the image
and video scales skip fine-tuning). Tasks: the modality's labels (audio: instrument family and
pitch, scored on instruments never seen in training; image: class; video: class and motion
direction). A linear probe on the input itself (average-pooled, no encoder: ``logmel`` or
``pixels``) is reported in the probe regimes.

Then: mean ± std over seeds; for rank - jigsaw and rank - random the paired difference per
seed, its mean and 95 % t-interval; a **sensitivity** line (supervised - random on the first
task with 10 % of the labels: if even labels do not move the probe, the study cannot tell
representations apart); the pretext curves on valid. With ablations (audio), seed 0 also trains
rank (and takes a
random encoder) on the other patch types, and a **pitch investigation** on valid only probes
other layers (conv features, patch embeddings, the context layer) and patch-type combinations.

Three audio scales (:data:`SCALES`): ``fast`` (CI, seconds), ``demo`` (``make demo``, part of
the SoundFont pool, minutes) and ``full`` (``make study``, the whole pool, the committed
``results/``); images and video have ``fast`` and ``demo`` (:data:`VISION_SCALES`, a few
minutes each; ``make study`` commits them in ``results/image`` and ``results/video``). Outputs
in ``out``: ``results.json``, ``results.md`` and PNG plots. Schema::

    {"config": {..., "modality", "command", "code_version", "seconds", and the data's
                description: audio "soundfonts": [{"name", "sha256"}], "notes"; images and
                video "source", "files", "counts"},
     "methods": {method: {task: {"accuracy": S, "macro_f1": S}}},          # probe, 100 %
     "regimes": {"probe": {"0.01"|"0.1"|"1.0": R}, "finetune": {"0.01"|"0.1": R}},
     "sensitivity": {"<first task>_probe_0.1": float},
     "paired": {"rank-jigsaw"|"rank-random": {"probe_0.1"|...: {task: {"mean", "ci95"}}}},
     "ablations": {"label_fraction": {fraction: R}, "patches": {kind: R}},
     "baselines": {"logmel"|"pixels": {task: {...}}},
     "pretext": {method: {"valid_exact": S, "valid_spearman": S}},
     "curves": {method: [[{epoch metrics}, ...] per seed]},
     "pitch_investigation": {...valid accuracies...}}

where ``S = {"mean", "std", "runs"}`` and ``R = {method: {task: {"accuracy": S, ...}}}``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from minis2l import __version__
from minis2l import modality as M
from minis2l.config import fast_mode
from minis2l.finetune import FinetuneConfig, finetune
from minis2l.io import atomic_write, save_json, save_torch
from minis2l.items import Items
from minis2l.pretrain import PretrainConfig, build_model, pretrain
from minis2l.probe import embed, embed_layers, probe_embeddings, subsample

METHODS = ("random", "jigsaw", "rank", "supervised")
PATCH_KINDS = ("time", "freq", "2d")
PROBE_FRACTIONS = (0.01, 0.1, 1.0)
PAIRS = (("rank", "jigsaw"), ("rank", "random"))
#: Encoders the patch-type ablation and the pitch investigation train on the other patch types.
ABLATION_METHODS = ("random", "rank")
SENSITIVITY_POINTS = 5.0
REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass
class StudyConfig:
    """Everything that defines a study run (stored under ``config`` in ``results.json``).

    ``soundfonts`` (audio): ``"pool"`` (every installed pool SoundFont), ``"pool:N"`` (the
    first N of the pool), ``"default"`` (pretty_midi's TimGM6mb) or a list of paths.
    ``pitch_step`` (audio): semitones between rendered pitches (24-108). ``images`` (image,
    video): a folder of Fashion-MNIST IDX files (default: Debian's). ``probe_subsets``: label
    subsets averaged at 1 %. ``finetune_fractions``: label fractions of the fine-tuning
    regimes (empty: none). ``fast`` uses the fast-mode data set. ``ablations`` (audio only):
    the patch-type ablation and the pitch investigation.
    """

    scale: str = "demo"
    seeds: int = 3
    patches: str = "freq"
    num_patches: int = 6
    perm_set_size: int = 100
    epochs: int = 3
    soundfonts: str | list[str] = "pool:2"
    pitch_step: int = 4
    probe_subsets: int = 5
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    ablations: bool = True
    fast: bool = False
    device: str = "auto"
    modality: str = "audio"
    batch_size: int = 64
    lr: float = 2e-3
    finetune_fractions: list[float] = field(default_factory=lambda: [0.01, 0.1])
    images: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.finetune, dict):
            self.finetune = FinetuneConfig(**self.finetune)
        self.finetune_fractions = [float(f) for f in self.finetune_fractions]
        M.get(self.modality)
        if self.ablations and self.modality != "audio":
            raise ValueError("the patch-type ablation and pitch investigation are audio-only")
        if self.images is not None and self.modality == "audio":
            raise ValueError("images is for the image and video modalities")
        if self.seeds < 1:
            raise ValueError(f"seeds must be at least 1, got {self.seeds}")
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        if self.patches not in PATCH_KINDS:
            raise ValueError(f"patches must be one of {PATCH_KINDS}, got {self.patches!r}")
        if not 1 <= self.pitch_step <= 12:
            raise ValueError(f"pitch_step must be 1-12 semitones, got {self.pitch_step}")

    @classmethod
    def for_scale(cls, scale: str, **overrides: Any) -> StudyConfig:
        """The settings of one of :data:`SCALES` (audio) or :data:`VISION_SCALES` (the
        ``modality`` in ``overrides``), with ``overrides`` on top."""
        modality = overrides.get("modality", "audio")
        table = SCALES if modality == "audio" else VISION_SCALES[M.get(modality).name]
        if scale not in table:
            raise ValueError(
                f"unknown scale {scale!r} for {modality}; choose from {', '.join(table)}"
            )
        return cls(**{**table[scale], "scale": scale, **overrides})


SCALES: dict[str, dict[str, Any]] = {
    "fast": {
        "seeds": 2,
        "epochs": 1,
        "soundfonts": "default",
        "fast": True,
        "probe_subsets": 2,
        "ablations": False,
        "finetune": FinetuneConfig(steps=8, batch_size=16, eval_every=4, max_valid=100),
    },
    "demo": {
        "seeds": 3,
        "epochs": 2,
        "soundfonts": "pool:2",
        "pitch_step": 4,
        "ablations": False,
        "finetune": FinetuneConfig(steps=60, eval_every=20, max_valid=500),
    },
    "full": {
        "seeds": 3,
        "epochs": 4,
        "soundfonts": "pool",
        "pitch_step": 2,
        "finetune": FinetuneConfig(steps=150, eval_every=50, max_valid=500),
    },
}


def _vision(modality: str, **settings: Any) -> dict[str, Any]:
    m = M.get(modality)
    base = {
        "modality": modality,
        "patches": m.patches,
        "num_patches": m.num_patches,
        "soundfonts": "default",
        "ablations": False,
        "finetune_fractions": [],
    }
    return base | settings


#: The image and video studies: a few minutes on 2 CPU cores (``demo``), seconds (``fast``).
VISION_SCALES: dict[str, dict[str, dict[str, Any]]] = {
    "image": {
        "fast": _vision("image", seeds=2, epochs=1, fast=True, probe_subsets=2),
        "demo": _vision("image", seeds=3, epochs=4),
    },
    "video": {
        "fast": _vision(
            "video", seeds=2, epochs=1, fast=True, probe_subsets=2, batch_size=16, lr=4e-3
        ),
        # Chosen on valid: the rank pretext stalls at Spearman ~0.39 until it can tell which
        # end of a path comes first; at lr 2e-3 the three seeds ended at 0.51, 0.90 and 0.39,
        # at 4e-3 all three reached 0.99.
        "demo": _vision("video", seeds=3, epochs=4, batch_size=16, lr=4e-3),
    },
}


def _summary(values: list[float]) -> dict[str, Any]:
    arr = np.asarray(values, dtype=float)
    return {"mean": float(arr.mean()), "std": float(arr.std()), "runs": [float(v) for v in arr]}


def _collect(runs: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, Any]]:
    """[{task: {"accuracy", "macro_f1", ...}}] over seeds -> {task: {metric: summary}}."""
    return {
        task: {m: _summary([r[task][m] for r in runs]) for m in ("accuracy", "macro_f1")}
        for task in runs[0]
    }


def _mean_runs(runs: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Average several probe results (label subsets) into one."""
    metrics = ("accuracy", "macro_f1", "valid_accuracy")
    return {
        task: {m: float(np.mean([r[task][m] for r in runs])) for m in metrics} for task in runs[0]
    }


def paired_difference(a: list[float], b: list[float]) -> dict[str, Any]:
    """Mean of ``a[s] - b[s]`` over seeds and its 95 % t-interval (None with one seed)."""
    from scipy import stats

    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    mean = float(d.mean())
    if len(d) < 2:
        return {"mean": mean, "ci95": None, "runs": d.tolist()}
    half = float(stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d)))
    return {"mean": mean, "ci95": [mean - half, mean + half], "runs": d.tolist()}


def resolve_soundfonts(spec: str | list[str]) -> list[str] | None:
    """The SoundFont paths of a :attr:`StudyConfig.soundfonts` value (None: the default)."""
    from minis2l.data import pool_soundfonts

    if isinstance(spec, list):
        return [str(p) for p in spec]
    if spec == "default":
        return None
    if spec == "pool":
        return [str(p) for p in pool_soundfonts()]
    if spec.startswith("pool:"):
        return [str(p) for p in pool_soundfonts()[: int(spec.split(":", 1)[1])]]
    raise ValueError(f"soundfonts must be 'pool', 'pool:N', 'default' or a list, got {spec!r}")


def code_version() -> str:
    """``minis2l <version>`` and, in a git checkout, the commit (``+dirty`` if modified)."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "minis2l"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit, dirty = "", ""
    version = f"minis2l {__version__}"
    return f"{version} (git {commit[:12]}{'+dirty' if dirty else ''})" if commit else version


def train_encoder(
    method: str,
    kind: str,
    seed: int,
    cfg: StudyConfig,
    data: str | None,
    run_dir: Path,
    progress: bool,
) -> tuple[torch.nn.Module, list[dict[str, float]]]:
    """An encoder for ``method`` (trained unless ``random``) and its per-epoch metrics."""
    pcfg = PretrainConfig(
        method="rank" if method == "random" else method,
        modality=cfg.modality,
        patches=kind,
        num_patches=cfg.num_patches,
        perm_set_size=cfg.perm_set_size,
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        seed=seed,
        device=cfg.device,
        fast=cfg.fast,
        data=data,
    )
    if method == "random":
        torch.manual_seed(pcfg.seed)  # the same initialization pretrain() starts from
        return build_model(pcfg).eval(), []
    ckpt = pretrain(pcfg, run_dir, overwrite=True, progress=progress)
    model = build_model(pcfg)
    model.load_state_dict(ckpt["model"])
    return model.eval().cpu(), ckpt["metrics"]


def _evaluate(
    model: torch.nn.Module,
    features: dict[str, np.ndarray],
    labels: dict[str, dict[str, np.ndarray]],
    cfg: StudyConfig,
    seed: int,
) -> tuple[dict[str, dict[str, Any]], dict[str, np.ndarray]]:
    """Every regime for one encoder, ``{"probe_0.01": {task: metrics}, ...}``, and its
    embeddings of each split."""
    emb = {s: embed(model, features[s]) for s in labels}
    out = _probe_regimes(emb, labels, cfg, seed)
    for frac in cfg.finetune_fractions:
        out[f"finetune_{frac}"] = {}
        for t, task in enumerate(labels["train"]):
            keep = subsample(labels["train"][task], frac, seed)
            out[f"finetune_{frac}"][task] = finetune(
                model,
                (features["train"][keep], labels["train"][task][keep]),
                (features["valid"], labels["valid"][task]),
                (features["test"], labels["test"][task]),
                cfg.finetune,
                seed=1000 * seed + t,
            )
    return out, emb


def _probe_regimes(
    emb: dict[str, np.ndarray], labels: dict[str, Any], cfg: StudyConfig, seed: int
) -> dict[str, dict[str, Any]]:
    out = {}
    for frac in PROBE_FRACTIONS:
        subsets = cfg.probe_subsets if frac < 0.05 else 1
        runs = [
            probe_embeddings(emb, labels, label_fraction=frac, seed=100 * seed + j)
            for j in range(subsets)
        ]
        out[f"probe_{frac}"] = _mean_runs(runs)
    return out


def _job_name(job: tuple[str, str, int]) -> str:
    return "{}-{}-{}".format(*job)


def _data_arg(cfg: StudyConfig, items: Items) -> str | None:
    """What pretraining loads: the built note data set, or the image folder."""
    return items.metadata["data"] if cfg.modality == "audio" else cfg.images


def _run_job(
    job: tuple[str, str, int],
    cfg: StudyConfig,
    items: Items,
    run_dir: Path,
    progress: bool,
) -> dict[str, Any]:
    """Train (unless random) and evaluate one encoder; what the study keeps of it."""
    method, kind, seed = job
    features, labels = items.inputs, items.labels
    data = _data_arg(cfg, items)
    model, history = train_encoder(method, kind, seed, cfg, data, run_dir, progress)
    result: dict[str, Any] = {"history": history}
    if kind == cfg.patches:
        result["scores"], emb = _evaluate(model, features, labels, cfg, seed)
        if seed == 0 and cfg.ablations:
            result["layers"] = _layer_probes(model, features, labels)
    else:
        emb = {s: embed(model, features[s]) for s in labels}
        result["scores"] = {"probe_1.0": probe_embeddings(emb, labels, seed=seed)}
    if cfg.ablations and seed == 0 and method in ABLATION_METHODS:
        result["embeddings"] = {
            s: torch.from_numpy(emb[s]).to(torch.float16) for s in ("train", "valid")
        }
    return result


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


def _work(
    cfg: StudyConfig,
    out: Path,
    jobs: list[tuple[str, str, int]],
    items: Items,
    progress: bool,
) -> None:
    """Run every job not done or claimed yet, in order; each result is saved atomically."""
    t0 = time.perf_counter()
    key = _job_key(cfg, items)
    for i, job in enumerate(jobs, 1):
        run_dir = out / "runs" / _job_name(job)
        if _job_done(run_dir, key) or not _claim(run_dir):
            continue
        try:
            print(f"[{i}/{len(jobs)}] {job[0]} / {job[1]} patches / seed {job[2]}", flush=True)
            result = _run_job(job, cfg, items, run_dir, progress)
            save_torch(run_dir / "result.pt", {"key": key, **result})
        finally:
            (run_dir / "claim").unlink(missing_ok=True)
        last = result["scores"]["probe_1.0"]
        accuracies = "  ".join(f"{t} {r['accuracy']:.3f}" for t, r in last.items())
        print(
            f"      {_job_name(job)}: probe {accuracies}  ({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )


def _job_key(cfg: StudyConfig, items: Items) -> str:
    """What a saved job result must match to be reused: the config and the data's contents."""
    blob = json.dumps(
        {"cfg": asdict(cfg) | {"device": None}, "data": items.fingerprint}, sort_keys=True
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def _job_done(run_dir: Path, key: str) -> bool:
    path = run_dir / "result.pt"
    if not path.is_file():
        return False
    try:
        return torch.load(path, map_location="cpu", weights_only=True)["key"] == key
    except Exception:  # a result from another version or a damaged file: recompute
        return False


def _worker_main(cfg: StudyConfig, out: str, threads: int) -> None:
    """Entry point of an extra worker process (spawned by :func:`run_study`)."""
    torch.set_num_threads(threads)
    _work(cfg, Path(out), _jobs(cfg), _load_data(cfg, progress=False), progress=False)


def _load_data(cfg: StudyConfig, progress: bool) -> Items:
    """The study's items (for audio, the note data set is built first or reused)."""
    if cfg.modality != "audio":
        return M.load_items(cfg.modality, cfg.images, fast=cfg.fast, verbose=progress)
    from minis2l.data import build_dataset

    soundfonts = resolve_soundfonts(cfg.soundfonts)
    pitches = None if cfg.fast else range(24, 109, cfg.pitch_step)
    data = build_dataset(soundfont=soundfonts, pitches=pitches, fast=cfg.fast, progress=progress)
    return M.load_items("audio", data)


def _jobs(cfg: StudyConfig) -> list[tuple[str, str, int]]:
    """Every encoder to train and evaluate: (method, patch kind, seed)."""
    jobs = [(m, cfg.patches, s) for s in range(cfg.seeds) for m in METHODS]
    if cfg.ablations:
        others = [k for k in PATCH_KINDS if k != cfg.patches]
        jobs += [(m, k, 0) for k in others for m in ABLATION_METHODS]
    return jobs


def run_study(
    cfg: StudyConfig, out: str | Path, *, progress: bool = False, workers: int = 1
) -> dict[str, Any]:
    """Run the study described in the module docstring; write and return the results.

    Each encoder's result is saved in ``out/runs/<method>-<patches>-<seed>/result.pt`` as soon
    as it is done, so a killed study resumes where it stopped when run again with the same
    configuration and data. ``workers`` > 1 starts that many processes (one CPU thread share
    each) that take the encoders from the same list; this process then assembles the results.
    """
    out = Path(out)
    t0 = time.perf_counter()
    items = _load_data(cfg, progress)  # before anything is written: bad data writes nothing
    out.mkdir(parents=True, exist_ok=True)
    features, labels = items.inputs, items.labels
    jobs = _jobs(cfg)
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
    key = _job_key(cfg, items)
    done = {}
    for job in jobs:
        path = out / "runs" / _job_name(job) / "result.pt"
        if not _job_done(path.parent, key):
            raise RuntimeError(f"study job {_job_name(job)} has no result; rerun to resume")
        done[job] = torch.load(path, map_location="cpu", weights_only=True)

    seeds = list(range(cfg.seeds))
    kinds = [cfg.patches] + [k for k in PATCH_KINDS if k != cfg.patches]
    scores = {job: r["scores"] for job, r in done.items()}
    curves: dict[str, list[list[dict[str, float]]]] = defaultdict(list)
    for (method, kind, _), r in done.items():
        if kind == cfg.patches and r["history"]:
            curves[method].append(r["history"])
    pooled = {s: M.baseline_features(cfg.modality, f) for s, f in features.items()}
    baseline_runs = [_probe_regimes(pooled, labels, cfg, s) for s in seeds]
    results = _assemble(
        cfg, scores, baseline_runs, curves, seeds, kinds if cfg.ablations else [], items.tasks
    )
    if cfg.ablations:
        layers = {m: done[(m, cfg.patches, 0)]["layers"] for m in METHODS}
        ablation_emb = {
            (m, k): {s: e.float().numpy() for s, e in done[(m, k, 0)]["embeddings"].items()}
            for m in ABLATION_METHODS
            for k in kinds
        }
        results["pitch_investigation"] = _pitch_investigation(
            layers, scores, ablation_emb, labels, kinds
        )
    results["config"] |= {k: v for k, v in items.metadata.items() if k != "modality"}
    results["config"] |= {
        "command": " ".join(["python -m minis2l", *sys.argv[1:]])
        if Path(sys.argv[0]).name in ("__main__.py", "minis2l")
        else f"minis2l.study.run_study(StudyConfig.for_scale({cfg.scale!r}))",
        "code_version": code_version(),
        "seconds": time.perf_counter() - t0,
    }
    save_json(out / "results.json", results)
    markdown = results_markdown(results)
    atomic_write(out / "results.md", lambda p: p.write_text(markdown))
    plot_results(results, out)
    return results


def _assemble(
    cfg: StudyConfig,
    scores: dict[tuple[str, str, int], dict[str, Any]],
    baseline_runs: list[dict[str, Any]],
    curves: dict[str, list[list[dict[str, float]]]],
    seeds: list[int],
    kinds: list[str],
    tasks: tuple[str, ...],
) -> dict[str, Any]:
    main = {m: [scores[(m, cfg.patches, s)] for s in seeds] for m in METHODS}
    baseline = M.get(cfg.modality).baseline

    def regime(key: str, with_baseline: bool) -> dict[str, Any]:
        r = {m: _collect([run[key] for run in main[m]]) for m in METHODS}
        if with_baseline:
            r[baseline] = _collect([run[key] for run in baseline_runs])
        return r

    fine = cfg.finetune_fractions
    regimes = {
        "probe": {str(f): regime(f"probe_{f}", True) for f in PROBE_FRACTIONS},
        "finetune": {str(f): regime(f"finetune_{f}", False) for f in fine},
    }
    keys = [f"probe_{f}" for f in PROBE_FRACTIONS] + [f"finetune_{f}" for f in fine]
    paired = {
        f"{a}-{b}": {
            key: {
                task: paired_difference(
                    [run[key][task]["accuracy"] for run in main[a]],
                    [run[key][task]["accuracy"] for run in main[b]],
                )
                for task in tasks
            }
            for key in keys
        }
        for a, b in PAIRS
    }
    fam = regimes["probe"]["0.1"]
    pretext = {}
    for m, runs in curves.items():
        if m != "supervised":
            pretext[m] = {
                k: _summary([h[-1][k] for h in runs]) for k in ("valid_exact", "valid_spearman")
            }
    return {
        "config": {
            **{k: v for k, v in asdict(cfg).items()},
            "label_fractions": list(PROBE_FRACTIONS),
            "minis2l_version": __version__,
        },
        "methods": {m: regimes["probe"]["1.0"][m] for m in METHODS},
        "regimes": regimes,
        "sensitivity": {
            f"{tasks[0]}_probe_0.1": fam["supervised"][tasks[0]]["accuracy"]["mean"]
            - fam["random"][tasks[0]]["accuracy"]["mean"]
        },
        "paired": paired,
        "ablations": {
            "label_fraction": {
                f: {m: r for m, r in by.items() if m != baseline}
                for f, by in regimes["probe"].items()
            },
            "patches": {
                k: {m: _collect([scores[(m, k, seeds[0])]["probe_1.0"]]) for m in ABLATION_METHODS}
                for k in kinds
            },
        },
        "baselines": {baseline: regimes["probe"]["1.0"][baseline]},
        "pretext": pretext,
        "curves": dict(curves),
    }


def _valid_accuracy(emb: dict[str, np.ndarray], labels: dict[str, Any]) -> dict[str, float]:
    """Probe accuracy on valid (penalty chosen on valid too); the test split is not used."""
    splits = {"train": "train", "valid": "valid", "test": "valid"}
    res = probe_embeddings(
        {s: emb[src] for s, src in splits.items()}, {s: labels[src] for s, src in splits.items()}
    )
    return {task: res[task]["valid_accuracy"] for task in res}


def _layer_probes(
    model: torch.nn.Module, features: dict[str, np.ndarray], labels: dict[str, Any]
) -> dict[str, dict[str, float]]:
    """Valid probe accuracy of each layer's features (seed 0, main patch type)."""
    per_split = {s: embed_layers(model, features[s]) for s in ("train", "valid")}
    return {
        name: _valid_accuracy({s: per_split[s][name] for s in per_split}, labels)
        for name in per_split["train"]
    }


def _pitch_investigation(
    layers: dict[str, dict[str, Any]],
    scores: dict[tuple[str, str, int], dict[str, Any]],
    ablation_emb: dict[tuple[str, str], dict[str, np.ndarray]],
    labels: dict[str, Any],
    kinds: list[str],
) -> dict[str, Any]:
    """Valid-only probes: which layer, which patch type, which combination helps pitch."""
    patches = {
        k: {
            m: {t: r["valid_accuracy"] for t, r in scores[(m, k, 0)]["probe_1.0"].items()}
            for m in ABLATION_METHODS
        }
        for k in kinds
    }
    combined = {}
    for m in ABLATION_METHODS:
        emb = {
            s: np.concatenate([ablation_emb[(m, k)][s] for k in kinds], axis=1)
            for s in ("train", "valid")
        }
        combined[m] = _valid_accuracy(emb, labels)
    return {
        "split": "valid",
        "layers": layers,
        "patches": patches,
        "combined_" + "+".join(kinds): combined,
    }


# --------------------------------------------------------------------------------------------
# Reporting


def _cell(s: dict[str, Any]) -> str:
    """``mean ± std`` in %, or one value for one run or runs that agree (std below 0.05 %)."""
    if len(s.get("runs", [])) <= 1 or round(100 * s["std"], 1) == 0:
        return f"{100 * s['mean']:.1f}"
    return f"{100 * s['mean']:.1f} ± {100 * s['std']:.1f}"


def _diff_cell(d: dict[str, Any]) -> str:
    ci = d["ci95"]
    text = f"{100 * d['mean']:+.1f}"
    return text + (f" [{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]" if ci else "")


def tasks_of(results: dict[str, Any]) -> list[str]:
    """The tasks of a study's results, supervised task first."""
    return list(results["methods"]["random"])


def baseline_of(results: dict[str, Any]) -> str:
    """The name of a study's no-encoder baseline (``logmel`` or ``pixels``)."""
    return next(iter(results["baselines"]))


def _label(baseline: str) -> str:
    return "log-mel" if baseline == "logmel" else baseline


def verdicts(results: dict[str, Any]) -> list[str]:
    """Plain sentences computed from the numbers: per regime and task, who beats whom.

    A difference counts when its paired 95 % interval excludes zero (with one seed: never).
    """
    lines = []
    tasks, baseline = tasks_of(results), baseline_of(results)
    sens = 100 * results["sensitivity"][f"{tasks[0]}_probe_0.1"]
    if sens < SENSITIVITY_POINTS:
        lines.append(
            f"Sensitivity: supervised beats random by only {sens:.1f} points on {tasks[0]} with "
            f"10 % of the labels (< {SENSITIVITY_POINTS:.0f}): this study cannot tell "
            "representations apart."
        )
    else:
        lines.append(
            f"Sensitivity: supervised beats random by {sens:.1f} points on {tasks[0]} with 10 % "
            "of the labels, so the probe can see a better representation."
        )
    for pair, by_regime in results["paired"].items():
        a, b = pair.split("-")
        for key, by_task in by_regime.items():
            for task, d in by_task.items():
                ci = d["ci95"]
                if ci is not None and ci[0] > 0:
                    word = "beats"
                elif ci is not None and ci[1] < 0:
                    word = "loses to"
                else:
                    word = "is not separable from"
                lines.append(
                    f"{key.replace('_', ' ')}, {task}: {a} {word} {b} ({_diff_cell(d)} points)."
                )
    for frac, by_method in results["regimes"]["probe"].items():
        for task in tasks:
            base = by_method[baseline][task]["accuracy"]["mean"]
            above = [m for m in METHODS if by_method[m][task]["accuracy"]["mean"] > base]
            lines.append(
                f"probe {frac}, {task}: above the {_label(baseline)} probe ({100 * base:.1f}): "
                + (", ".join(above) if above else "none")
                + "."
            )
    return lines


def results_markdown(results: dict[str, Any], heading_level: int = 1) -> str:
    """The results as Markdown (accuracy in %, mean ± std over seeds; test split).

    ``heading_level`` is the level of the title; sections are one level below (use 3 or more
    to embed the tables under a notebook's own headings).
    """
    cfg = results["config"]
    tasks, baseline = tasks_of(results), baseline_of(results)
    h1, h2 = "#" * heading_level, "#" * (heading_level + 1)
    modality = cfg.get("modality", "audio")
    if modality == "audio":
        sfs = ", ".join(s["name"] for s in cfg.get("soundfonts", []))
        data = f"{cfg.get('notes', '?')} notes from {sfs or '?'}; test split = instruments never "
        data += "seen in training"
    else:
        counts = cfg.get("counts", {})
        data = f"{modality}: {cfg.get('source', '?')}; " + ", ".join(
            f"{n} {s}" for s, n in counts.items()
        )
    lines = [
        f"{h1} minis2l study ({modality}, {cfg.get('scale', '?')}): {cfg['patches']} patches, "
        f"K = {cfg['num_patches']}, {cfg['seeds']} seed(s), {cfg['epochs']} epochs"
        f"{' (fast mode)' if cfg['fast'] else ''}",
        "",
        f"{data}; accuracy in %, mean ± std over seeds (one value: a single run, or runs that "
        f"agree, as the {baseline} probe on all labels does).",
        "",
    ]
    if "command" in cfg:
        lines += [
            f"Command: `{cfg['command']}`; code: {cfg['code_version']}; "
            f"{cfg['seconds'] / 60:.1f} min.",
            "",
        ]
    for kind in ("probe", "finetune"):
        fracs = results["regimes"][kind]
        if not fracs:
            continue
        title = "Linear probe (frozen encoder)" if kind == "probe" else "Fine-tuning"
        lines += [f"{h2} {title}, by fraction of train labels", ""]
        head = [f"{t} {float(f):g}" for t in tasks for f in fracs]
        lines.append("| encoder | " + " | ".join(head) + " |")
        lines.append("|---" * (1 + len(head)) + "|")
        present = next(iter(fracs.values()))
        for m in [x for x in (*METHODS, baseline) if x in present]:
            cells = [_cell(fracs[f][m][t]["accuracy"]) for t in tasks for f in fracs]
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += [f"{h2} Paired differences over seeds (points, [95 % interval])", ""]
    keys = list(next(iter(results["paired"].values())))
    lines.append("| pair | task | " + " | ".join(k.replace("_", " ") for k in keys) + " |")
    lines.append("|---" * (2 + len(keys)) + "|")
    for pair, by_key in results["paired"].items():
        for t in tasks:
            cells = [_diff_cell(by_key[k][t]) for k in keys]
            lines.append(f"| {pair} | {t} | " + " | ".join(cells) + " |")
    lines += ["", f"{h2} What the numbers say", ""]
    lines += [f"- {v}" for v in verdicts(results)]
    if results["ablations"]["patches"]:
        lines += ["", f"{h2} Patch type (seed 0, probe on 100 %; accuracy %)", ""]
        lines += ["| patches | encoder | family | pitch |", "|---|---|---|---|"]
        for kind, by_method in results["ablations"]["patches"].items():
            for m, r in by_method.items():
                lines.append(
                    f"| {kind} | {m} | {_cell(r['family']['accuracy'])} | "
                    f"{_cell(r['pitch']['accuracy'])} |"
                )
    if "pitch_investigation" in results:
        pi = results["pitch_investigation"]
        lines += ["", f"{h2} Pitch investigation (valid split only; probe accuracy %)", ""]
        lines += ["| what | encoder | family | pitch |", "|---|---|---|---|"]
        for m, by_layer in pi["layers"].items():
            for layer, acc in by_layer.items():
                lines.append(
                    f"| layer {layer} | {m} | {100 * acc['family']:.1f} | "
                    f"{100 * acc['pitch']:.1f} |"
                )
        for kind, by_method in pi["patches"].items():
            for m, acc in by_method.items():
                lines.append(
                    f"| {kind} patches | {m} | {100 * acc['family']:.1f} | "
                    f"{100 * acc['pitch']:.1f} |"
                )
        for key, by_method in pi.items():
            if key.startswith("combined_"):
                for m, acc in by_method.items():
                    lines.append(
                        f"| {key.removeprefix('combined_')} | {m} | "
                        f"{100 * acc['family']:.1f} | {100 * acc['pitch']:.1f} |"
                    )
    if results["pretext"]:
        lines += ["", f"{h2} Pretext task on valid (last epoch)", ""]
        lines += ["| method | exact reorder % | Spearman |", "|---|---|---|"]
        for m, r in results["pretext"].items():
            s = r["valid_spearman"]
            spread = f" ± {s['std']:.3f}" if len(s["runs"]) > 1 else ""
            lines.append(f"| {m} | {_cell(r['valid_exact'])} | {s['mean']:.3f}{spread} |")
    return "\n".join(lines) + "\n"


COLORS = {
    "random": "#7f7f7f",
    "jigsaw": "#d95f02",
    "rank": "#1b9e77",
    "supervised": "#7570b3",
    "logmel": "#000000",
    "pixels": "#000000",
}


def plot_results(results: dict[str, Any], out: Path) -> list[Path]:
    """Write ``accuracy.png``, ``label_fraction.png`` and ``pretext_curves.png``."""
    from matplotlib.figure import Figure  # no pyplot: leaves a notebook's backend alone

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    tasks, baseline = tasks_of(results), baseline_of(results)
    fig = Figure(figsize=(4.5 * len(tasks), 3.6))
    axes = fig.subplots(1, len(tasks), squeeze=False)[0]
    for ax, task in zip(axes, tasks, strict=True):
        r = results["methods"]
        means = [100 * r[m][task]["accuracy"]["mean"] for m in METHODS]
        stds = [100 * r[m][task]["accuracy"]["std"] for m in METHODS]
        ax.bar(METHODS, means, yerr=stds, capsize=4, color=[COLORS[m] for m in METHODS])
        base = 100 * results["baselines"][baseline][task]["accuracy"]["mean"]
        ax.axhline(base, ls="--", c="k", lw=1, label=f"{_label(baseline)} probe")
        ax.set_title(f"{task}: linear probe, all train labels")
        ax.set_ylabel("test accuracy (%)")
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    paths.append(out / "accuracy.png")
    atomic_write(paths[-1], lambda p: fig.savefig(p, format="png", dpi=110))

    kinds = [k for k in ("probe", "finetune") if results["regimes"][k]]
    fig = Figure(figsize=(5 * len(tasks), 3.2 * len(kinds)))
    axes = fig.subplots(len(kinds), len(tasks), squeeze=False)
    for row, kind in enumerate(kinds):
        fracs = results["regimes"][kind]
        xs = [float(f) for f in fracs]
        for ax, task in zip(axes[row], tasks, strict=True):
            for m in next(iter(fracs.values())):
                r = [fracs[f][m][task]["accuracy"] for f in fracs]
                ax.errorbar(
                    xs,
                    [100 * x["mean"] for x in r],
                    yerr=[100 * x["std"] for x in r],
                    marker="o",
                    capsize=3,
                    label=m,
                    color=COLORS[m],
                    ls="--" if m == baseline else "-",
                )
            ax.set_xscale("log")
            ax.set_xticks(xs, [f"{100 * x:g} %" for x in xs])
            ax.minorticks_off()
            ax.set_xlabel("fraction of train labels")
            ax.set_ylabel("test accuracy (%)")
            ax.set_title(f"{task}: {'linear probe' if kind == 'probe' else 'fine-tuning'}")
            ax.legend(fontsize=7)
    fig.tight_layout()
    paths.append(out / "label_fraction.png")
    atomic_write(paths[-1], lambda p: fig.savefig(p, format="png", dpi=110))

    if results["curves"]:
        fig = Figure(figsize=(10, 3.4))
        axes = fig.subplots(1, 2)
        for m, runs in results["curves"].items():
            key = "valid_accuracy" if m == "supervised" else "valid_spearman"
            ax = axes[1] if m == "supervised" else axes[0]
            for j, hist in enumerate(runs):
                ax.plot(
                    [h["epoch"] for h in hist],
                    [h[key] for h in hist],
                    marker="o",
                    color=COLORS[m],
                    alpha=0.8,
                    label=m if j == 0 else None,
                )
        axes[0].set_title("pretext on valid: Spearman of predicted order")
        axes[0].set_ylabel("Spearman")
        axes[1].set_title(f"supervised on valid: {tasks[0]} accuracy")
        axes[1].set_ylabel("accuracy")
        for ax in axes:
            ax.set_xlabel("epoch")
            ax.legend(fontsize=8)
        fig.tight_layout()
        paths.append(out / "pretext_curves.png")
        atomic_write(paths[-1], lambda p: fig.savefig(p, format="png", dpi=110))
    return paths


# --------------------------------------------------------------------------------------------
# Command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m minis2l demo``."""
    parser.add_argument(
        "--scale",
        choices=list(SCALES),
        default=None,
        help="demo (default; part of the SoundFont pool, minutes), full (the whole pool, what "
        "`make study` runs), fast (seconds; same as --fast)",
    )
    parser.add_argument(
        "--modality",
        choices=list(M.MODALITIES),
        default="audio",
        help="audio (default: notes from SoundFonts), image (Fashion-MNIST tile puzzles) or "
        "video (moving Fashion-MNIST clips, frame order); image and video take a few minutes",
    )
    parser.add_argument(
        "--soundfont",
        metavar="PATH",
        action="append",
        help="audio: SoundFont(s) to use instead of the scale's (repeat for several)",
    )
    parser.add_argument(
        "--images",
        metavar="DIR",
        help="image/video: a folder with Fashion-MNIST's four IDX files (default: Debian's "
        "dataset-fashion-mnist, else scikit-learn's digits)",
    )
    parser.add_argument("--seeds", type=int, metavar="N", help="seeds (default 3)")
    parser.add_argument(
        "--out", metavar="DIR", default="runs/demo", help="output folder (default %(default)s)"
    )
    parser.add_argument(
        "--patches",
        choices=PATCH_KINDS,
        help="patch type (default: audio freq, image 2d, video time)",
    )
    parser.add_argument(
        "--num-patches", type=int, metavar="K", help="K (default: audio 6, image 9, video 8)"
    )
    parser.add_argument(
        "--perm-set-size", type=int, metavar="P", help="jigsaw's fixed set (default 100)"
    )
    parser.add_argument(
        "--epochs", type=int, metavar="N", help="pretraining epochs (default: the scale's)"
    )
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    parser.add_argument(
        "--no-ablations", action="store_true", help="skip the patch ablation and pitch probes"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=min(2, os.cpu_count() or 1),
        metavar="N",
        help="processes sharing the encoders, each with its share of the CPU threads (default "
        "%(default)s: 2 where there are 2 cores or more). A killed study resumes from its "
        "finished encoders.",
    )


def config_from_args(args: argparse.Namespace) -> StudyConfig:
    """The :class:`StudyConfig` a command line asks for."""
    scale = args.scale or ("fast" if fast_mode() else "demo")
    overrides: dict[str, Any] = {"device": args.device, "modality": args.modality}
    for name in ("seeds", "patches", "num_patches", "perm_set_size", "epochs"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    if args.soundfont:
        if args.modality != "audio":
            raise ValueError("--soundfont is for --modality audio")
        overrides["soundfonts"] = list(args.soundfont)
    if args.images:
        overrides["images"] = args.images
    if args.no_ablations:
        overrides["ablations"] = False
    return StudyConfig.for_scale(scale, **overrides)


def run(args: argparse.Namespace) -> int:
    """Run ``python -m minis2l demo``; errors become one line on stderr and exit 2."""
    try:
        cfg = config_from_args(args)
        if args.workers < 1:
            raise ValueError(f"--workers must be at least 1, got {args.workers}")
        results = run_study(cfg, args.out, progress=sys.stderr.isatty(), workers=args.workers)
    except (ValueError, FileNotFoundError, TypeError) as err:
        print(f"minis2l demo: error: {err}", file=sys.stderr)
        return 2
    print()
    print(results_markdown(results))
    seconds = results["config"]["seconds"]
    print(f"wrote {args.out}/results.json, results.md and plots in {seconds:.0f} s")
    return 0


__all__ = [
    "SCALES",
    "VISION_SCALES",
    "StudyConfig",
    "paired_difference",
    "plot_results",
    "results_markdown",
    "run_study",
    "tasks_of",
    "verdicts",
]
