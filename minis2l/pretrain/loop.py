"""The pretraining loop: data, optimizer, learning-rate schedule, checkpoints, resume.

Every epoch's shuffles, jitter crops and batch order are functions of (seed, epoch)
(:mod:`minis2l.pretext`), so a run resumed from its last checkpoint reproduces the weights of
an uninterrupted run, and a run on N processes (:mod:`~minis2l.pretrain.distributed`) sees the
same global batches as one process. Only rank 0 writes files: ``checkpoint.pt`` (every epoch,
atomically; ``torch.load(..., weights_only=True)``), ``metrics.csv`` and ``config.json``.
"""

from __future__ import annotations

import csv
import io
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from minis2l import __version__
from minis2l import modality as M
from minis2l import patches as P
from minis2l.config import default_device, repo_relative
from minis2l.io import atomic_write, load_checkpoint, save_json, save_torch
from minis2l.pretext import epoch_offsets, epoch_shuffles, evaluate, pretext_loss
from minis2l.pretrain import distributed as D
from minis2l.pretrain.config import PretrainConfig, build_model

METRIC_FIELDS = (
    "epoch",
    "train_loss",
    "valid_loss",
    "valid_exact",
    "valid_spearman",
    "valid_per_position",
    "valid_own_exact",
    "valid_own_per_position",
    "valid_own_spearman",
    "valid_accuracy",
    "lr",
    "seconds",
)


def load_features(cfg: PretrainConfig, progress: bool = True) -> dict[str, torch.Tensor]:
    """Train and valid inputs as float32 tensors (``"train"``, ``"valid"``) and the labels of
    the modality's supervised task, its first (``"train_label"``, ``"valid_label"``), loading
    (for audio: building, when missing) the data with the modality's loader."""
    rank, world = D.dist_info()
    if world > 1 and rank != 0:
        torch.distributed.barrier()  # let rank 0 build the cache first
    items = M.load_items(
        cfg.modality,
        cfg.data,
        fast=cfg.fast,
        progress=progress and rank == 0,
        verbose=progress and rank == 0,
        **cfg.loader_options(),
    )
    if world > 1 and rank == 0:
        torch.distributed.barrier()
    task = items.tasks[0]
    out = {}
    for split in ("train", "valid"):
        out[split] = torch.from_numpy(np.array(items.inputs[split], dtype=np.float32))
        out[f"{split}_label"] = torch.from_numpy(items.labels[split][task])
    return out


def lr_at(cfg: PretrainConfig, step: int, total: int) -> float:
    """Cosine decay from ``lr`` to ``lr / 20`` over the run, after a 3 % linear warm-up."""
    warm = max(1, total // 33)
    if step < warm:
        return cfg.lr * (step + 1) / warm
    t = (step - warm) / max(1, total - warm)
    return cfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t)))


PLATEAU_PATIENCE = 2  # epochs without a gain of ``plateau`` over the best before them


def levelled_off(cfg: PretrainConfig, history: list[dict[str, Any]]) -> bool:
    """Whether a run with ``cfg.plateau`` stops here: over the last :data:`PLATEAU_PATIENCE`
    epochs its valid metric (Spearman for the pretexts, accuracy for supervised) never beat the
    best of the epochs before them by ``plateau`` or more. Patience, because one epoch's dip is
    noise (a run's valid Spearman can fall while its exact reorders still rise). A function of
    the history only, so a resumed run stops where an uninterrupted one did."""
    if cfg.plateau is None or len(history) <= PLATEAU_PATIENCE:
        return False
    key = "valid_accuracy" if cfg.method == "supervised" else "valid_spearman"
    before = max(h[key] for h in history[:-PLATEAU_PATIENCE])
    recent = max(h[key] for h in history[-PLATEAU_PATIENCE:])
    return recent - before < cfg.plateau


def pretrain(
    cfg: PretrainConfig,
    out: str | Path | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    resume_epochs: int | None = None,
) -> dict[str, Any]:
    """Train ``cfg``; write files to ``out`` (rank 0 only). Returns the last checkpoint dict.

    With ``resume`` the run in ``out`` continues with its stored configuration (``cfg`` only
    chooses the device) up to its own epoch count, or up to ``resume_epochs`` when that is
    larger.

    Raises:
        FileExistsError: ``out`` already holds a checkpoint and neither ``resume`` nor
            ``overwrite`` is set (nothing is touched).
        FileNotFoundError, ValueError: ``resume`` without a readable checkpoint.
    """
    device = default_device(cfg.device)
    started_dist = D.maybe_init_distributed(device)
    try:
        run = _Run.open(cfg, out, resume, overwrite, resume_epochs, device, progress)
        return _Trainer(run).train()
    finally:
        if started_dist:
            torch.distributed.destroy_process_group()


@dataclass
class _Run:
    """Where a run stands before training: its config, files, device, rank and resume point."""

    cfg: PretrainConfig
    out: Path | None
    device: torch.device
    progress: bool
    rank: int
    world: int
    state: dict[str, Any] | None  # the checkpoint resumed from

    @classmethod
    def open(
        cls,
        cfg: PretrainConfig,
        out: str | Path | None,
        resume: bool,
        overwrite: bool,
        resume_epochs: int | None,
        device: torch.device,
        progress: bool,
    ) -> _Run:
        """Check the request against ``out`` (resume, overwrite) and the process group."""
        rank, world = D.dist_info()
        device = D.local_device(device, world)
        out = Path(out) if out else None
        state = None
        if resume:
            if out is None:
                raise ValueError("--resume needs --out DIR holding the run to continue")
            state = load_checkpoint(out / "checkpoint.pt")
            stored = PretrainConfig.from_dict(state["config"])
            if stored.method == "rank" and "head.bias" in state["model"]:
                raise ValueError(
                    f"{out} was trained by an older minis2l whose rank head had a bias: its "
                    "weights still load (load_pretrained), but its training cannot be resumed "
                    "exactly; start a new run with --overwrite"
                )
            stored.epochs = max(resume_epochs or 0, stored.epochs)
            stored.device = cfg.device
            cfg = stored
        elif out is not None and (out / "checkpoint.pt").exists() and not overwrite:
            raise FileExistsError(
                f"{out} already holds a run; pass --resume to continue it or --overwrite to "
                "replace it"
            )
        if cfg.batch_size % world:
            raise ValueError(f"batch size {cfg.batch_size} is not divisible by {world} processes")
        return cls(cfg, out, device, progress, rank, world, state)

    @property
    def writes(self) -> bool:
        """Whether this process writes the run's files (rank 0, with an ``out`` folder)."""
        return self.rank == 0 and self.out is not None


class _Trainer:
    """The model, optimizer and data of one run, and its epochs."""

    def __init__(self, run: _Run):
        cfg = self.cfg = run.cfg
        self.run = run
        torch.manual_seed(cfg.seed)
        self.data = load_features(cfg, run.progress)
        shape = tuple(self.data["train"].shape[1:])
        M.check_pieces(cfg.modality, cfg.patches, cfg.num_patches, cfg.jitter, shape)
        self.perm_set = (
            P.fixed_permutation_set(cfg.num_perms(), cfg.num_patches, seed=cfg.seed)
            if cfg.method == "jigsaw"
            else None
        )
        self.model = build_model(cfg)
        self.opt = torch.optim.AdamW(
            self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay
        )
        self.history: list[dict[str, Any]] = []
        self.first_epoch = 0
        if run.state is not None:
            self.model.load_state_dict(run.state["model"])
            self.opt.load_state_dict(run.state["optimizer"])
            self.history = list(run.state["metrics"])
            self.first_epoch = int(run.state["epoch"]) + 1
        self.model.to(run.device)
        for group in self.opt.state.values():
            for k, v in group.items():
                if isinstance(v, torch.Tensor) and k != "step":
                    group[k] = v.to(run.device)
        self.train_model: torch.nn.Module = self.model
        if run.world > 1:
            self.train_model = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[run.device.index] if run.device.type == "cuda" else None
            )
        if cfg.compile:
            self.train_model = torch.compile(self.train_model)
        n_train = len(self.data["train"])
        self.steps_per_epoch = n_train // cfg.batch_size
        if self.steps_per_epoch == 0:
            raise ValueError(f"batch size {cfg.batch_size} exceeds the {n_train} training items")
        self.sampler = torch.utils.data.DistributedSampler(
            range(n_train),
            num_replicas=run.world,
            rank=run.rank,
            shuffle=True,
            seed=cfg.seed,
            drop_last=True,
        )

    def train(self) -> dict[str, Any]:
        """Train the remaining epochs; return the last checkpoint."""
        cfg, run = self.cfg, self.run
        total_steps = self.steps_per_epoch * cfg.epochs
        if run.writes:
            run.out.mkdir(parents=True, exist_ok=True)
            saved = asdict(cfg) | {"minis2l_version": __version__}
            if cfg.data is not None:  # a run folder may be shared: name no machine's folders
                saved["data"] = repo_relative(cfg.data)
            save_json(run.out / "config.json", saved)
        self.bar = tqdm(
            total=total_steps,
            initial=self.first_epoch * self.steps_per_epoch,
            disable=not run.progress or run.rank != 0,
            desc=f"pretrain {cfg.method}/{cfg.patches}/K={cfg.num_patches}",
            unit="step",
        )
        ckpt: dict[str, Any] = run.state or {}
        for epoch in range(self.first_epoch, cfg.epochs):
            if levelled_off(cfg, self.history):
                break
            t0 = time.perf_counter()
            metrics = {"epoch": epoch + 1, "train_loss": self.epoch(epoch, total_steps)}
            valid = evaluate(
                self.model,
                cfg,
                self.data["valid"],
                self.perm_set,
                run.device,
                labels=self.data["valid_label"],
            )
            metrics |= {f"valid_{k}": v for k, v in valid.items()}
            metrics |= {"lr": self.opt.param_groups[0]["lr"], "seconds": time.perf_counter() - t0}
            self.history.append(metrics)
            ckpt = self.checkpoint(epoch)
            if run.rank == 0 and run.progress:
                tqdm.write(
                    f"epoch {epoch + 1}/{cfg.epochs}: train {metrics['train_loss']:.4f}, valid "
                    f"{valid['loss']:.4f}, all K!: exact {valid['exact']:.3f}, spearman "
                    f"{valid['spearman']:.3f}; own set exact {valid['own_exact']:.3f}; "
                    f"accuracy {valid['accuracy']:.3f} ({metrics['seconds']:.1f} s)"
                )
        self.bar.close()
        return ckpt

    def epoch(self, epoch: int, total_steps: int) -> float:
        """Train one epoch; return its mean training loss (over every rank's batches)."""
        cfg, device = self.cfg, self.run.device
        local_batch = cfg.batch_size // self.run.world
        torch.manual_seed(cfg.seed * 1_000_003 + epoch)
        self.sampler.set_epoch(epoch)
        order = torch.tensor(list(self.sampler))
        perms, labels = epoch_shuffles(cfg, len(self.data["train"]), epoch, self.perm_set)
        offsets = epoch_offsets(cfg, len(self.data["train"]), epoch)
        pin = device.type == "cuda"
        running = 0.0
        for step in range(self.steps_per_epoch):
            idx = order[step * local_batch : (step + 1) * local_batch]
            xb, pb = self.data["train"][idx], perms[idx]
            lb = self.data["train_label"][idx] if cfg.method == "supervised" else labels[idx]
            ob = None if offsets is None else offsets[idx].to(device)
            if pin:
                xb, pb, lb = xb.pin_memory(), pb.pin_memory(), lb.pin_memory()
            xb = xb.to(device, non_blocking=True)
            pb, lb = pb.to(device, non_blocking=True), lb.to(device, non_blocking=True)
            for group in self.opt.param_groups:
                group["lr"] = lr_at(cfg, epoch * self.steps_per_epoch + step, total_steps)
            loss, _ = pretext_loss(self.train_model, cfg, xb, pb, lb, ob)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            running += loss.item()
            self.bar.update(1)
            self.bar.set_postfix(epoch=epoch + 1, loss=f"{running / (step + 1):.4f}")
        return D.mean_over_ranks(running, self.run.world) / self.steps_per_epoch

    def checkpoint(self, epoch: int) -> dict[str, Any]:
        """The checkpoint after ``epoch``, written by rank 0 with the metrics so far."""
        ckpt = {
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "optimizer": _cpu(self.opt.state_dict()),
            "epoch": epoch,
            "config": asdict(self.cfg),
            "perm_set": self.perm_set,
            "metrics": self.history,
            "minis2l_version": __version__,
        }
        if self.run.world > 1:
            ckpt["ddp"] = D.compare_ranks(self.model, self.run.world)
        if self.run.writes:
            save_torch(self.run.out / "checkpoint.pt", ckpt)
            _write_metrics(self.run.out / "metrics.csv", self.history)
        return ckpt


def _write_metrics(path: Path, rows: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=METRIC_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(path, lambda p: p.write_text(buf.getvalue()))


def _cpu(obj: Any) -> Any:
    """``obj`` with every tensor in it (nested dicts and lists) moved to the CPU."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _cpu(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_cpu(v) for v in obj]
    return obj
