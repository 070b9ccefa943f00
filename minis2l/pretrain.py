"""Permutation pretext pretraining: un-shuffle patches (``python -m minis2l pretrain``).

Each training item (a note's log-mel, an image, a clip's film strip: ``--modality``) is cut
into K patches (with ``jitter``, each patch loses a random margin: gaps between tiles),
shuffled with a permutation, and the model must say where each patch belongs:

* ``--method rank``: the permutation is drawn uniformly from all K!; the model scores each
  patch and the loss is the squared error between ``soft_rank(scores)`` and the true ranks,
  divided by K^2 (ranks scaled to [0, 1]).
* ``--method jigsaw``: the permutation is one of a fixed set of P (spread out in Hamming
  distance); the model classifies which one (cross-entropy).

Held-out metrics on the valid split (the same shuffles every epoch): the loss, exact-reorder
accuracy (every patch put back in place; chance is 1/K! for rank, 1/P for jigsaw) and the
Spearman correlation between predicted and true positions.

Reproducibility: all randomness of epoch ``e`` comes from generators seeded with ``(seed, e)``
and each clip's shuffle is a function of (seed, epoch, clip), so a run resumed from its last
checkpoint (``--resume``) reproduces the weights of an uninterrupted run, and a run on N
processes (``torchrun --nproc_per_node=N -m minis2l pretrain``: DistributedDataParallel, gloo on
CPU, nccl on CUDA) sees the same global batches as one process. Only rank 0 writes files.

Files in ``--out DIR``: ``checkpoint.pt`` (every epoch, atomically; ``torch.load(...,
weights_only=True)``), ``metrics.csv`` and ``config.json``.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm.auto import tqdm

from minis2l import __version__
from minis2l import modality as M
from minis2l import patches as P
from minis2l.config import default_device, fast_mode
from minis2l.io import atomic_write, load_checkpoint, save_json, save_torch
from minis2l.models import METHODS, PermutationModel
from minis2l.ranking import hard_rank, soft_rank

METRIC_FIELDS = (
    "epoch",
    "train_loss",
    "valid_loss",
    "valid_exact",
    "valid_spearman",
    "valid_accuracy",
    "lr",
    "seconds",
)


@dataclass
class PretrainConfig:
    """Everything that defines a pretraining run (stored in ``config.json`` and checkpoints).

    ``epochs=None`` means the default: 12, or 2 in fast mode. ``patches``, ``num_patches`` and
    ``jitter`` left at None take the modality's defaults (:data:`minis2l.modality.MODALITIES`:
    audio 6 freq bands, image 3 x 3 tiles with jitter 2, video 8 frames). ``data``: a built
    note data set (audio) or a folder of Fashion-MNIST IDX files (image, video).
    """

    method: str = "rank"
    modality: str = "audio"
    patches: str | None = None
    num_patches: int | None = None
    jitter: int | None = None
    perm_set_size: int = 100
    epochs: int | None = None
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0
    device: str = "auto"
    regularization: str = "l2"
    regularization_strength: float = 0.1
    dim: int = 128
    compile: bool = False
    fast: bool = False
    data: str | None = None
    soundfont: str | None = None

    def __post_init__(self) -> None:
        if self.epochs is None:
            self.epochs = 2 if self.fast else 12
        modality = M.get(self.modality)
        if self.patches is None:
            self.patches = modality.patches
        if self.num_patches is None:
            self.num_patches = modality.num_patches
        if self.jitter is None:
            self.jitter = modality.jitter
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the first bad field."""
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; use rank, jigsaw or supervised")
        P.grid_shape(self.num_patches, self.patches)  # kind and K >= 2
        for name in ("epochs", "batch_size", "perm_set_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.method == "jigsaw" and self.num_perms() < 2:
            raise ValueError("the jigsaw head needs a permutation set of at least 2")
        if self.jitter < 0:
            raise ValueError(f"jitter must be at least 0, got {self.jitter}")
        if self.soundfont and self.modality != "audio":
            raise ValueError(f"--soundfont is for audio; the {self.modality} modality has none")

    def num_perms(self) -> int:
        """P: the fixed set's size, capped at K!."""
        return min(self.perm_set_size, math.factorial(self.num_patches))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PretrainConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


# --- distributed helpers --------------------------------------------------------------------


def _dist_info() -> tuple[int, int]:
    """(rank, world size); (0, 1) unless started by torchrun."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _maybe_init_distributed(device: torch.device) -> bool:
    """Join the process group when torchrun started us; return whether we did."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return False
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend)
    return True


# --- data -----------------------------------------------------------------------------------


def load_features(cfg: PretrainConfig, progress: bool = True) -> dict[str, torch.Tensor]:
    """Train and valid inputs as float32 tensors (``"train"``, ``"valid"``) and the labels
    of the modality's supervised task (``"train_label"``, ``"valid_label"``: the instrument
    family for audio, the class for images and video), building the data set when missing."""
    rank, world = _dist_info()
    kwargs: dict[str, Any] = {}
    if cfg.soundfont and cfg.data is None:
        kwargs["soundfont"] = cfg.soundfont
    if world > 1 and rank != 0:
        dist.barrier()  # let rank 0 build the cache first
    items = M.load_items(
        cfg.modality,
        cfg.data,
        fast=cfg.fast,
        progress=progress and rank == 0,
        verbose=progress and rank == 0,
        **kwargs,
    )
    if world > 1 and rank == 0:
        dist.barrier()
    task = items.tasks[0]
    out = {}
    for split in ("train", "valid"):
        out[split] = torch.from_numpy(np.array(items.inputs[split], dtype=np.float32))
        out[f"{split}_label"] = torch.from_numpy(items.labels[split][task])
    return out


def epoch_shuffles(
    cfg: PretrainConfig, n: int, epoch: int, perm_set: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The permutation of each of ``n`` clips in ``epoch`` and its jigsaw label (or -1).

    A function of (seed, epoch) only, so every process and every resumed run agrees.
    Epoch -1 is reserved for the fixed held-out shuffles. The supervised reference does not
    shuffle: identity permutations.
    """
    if cfg.method == "supervised":
        return torch.arange(cfg.num_patches).expand(n, -1).clone(), torch.full((n,), -1)
    gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch + 1)
    if perm_set is None:
        perms = P.random_permutations(n, cfg.num_patches, generator=gen)
        return perms, torch.full((n,), -1)
    labels = torch.randint(len(perm_set), (n,), generator=gen)
    return perm_set[labels], labels


def epoch_offsets(cfg: PretrainConfig, n: int, epoch: int) -> torch.Tensor | None:
    """Where each patch's crop starts, ``(n, K, 2)`` in ``[0, jitter]``, for ``epoch``; None
    without jitter. A function of (seed, epoch) only, like :func:`epoch_shuffles`."""
    if cfg.jitter == 0:
        return None
    gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch + 500_009)
    return torch.randint(cfg.jitter + 1, (n, cfg.num_patches, 2), generator=gen)


# --- the model's task -----------------------------------------------------------------------


def pretext_loss(
    model: torch.nn.Module,
    cfg: PretrainConfig,
    x: torch.Tensor,
    perms: torch.Tensor,
    labels: torch.Tensor,
    offsets: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, output) for inputs ``x`` (B, H, W) shuffled with ``perms`` (B, K).

    ``labels``: the jigsaw class of each permutation, or the class for ``"supervised"``.
    ``offsets`` (B, K, 2): where each shuffled patch's jitter crop starts (None: centred).
    """
    shuffled = P.split_patches(x, cfg.num_patches, cfg.patches)
    if cfg.method != "supervised":
        shuffled = P.permute_patches(shuffled, perms)
    shuffled = P.crop_patches(shuffled, cfg.jitter, offsets)
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=x.is_cuda):
        out = model(shuffled)
    out = out.float()
    if cfg.method == "rank":
        ranks = soft_rank(out, cfg.regularization, cfg.regularization_strength)
        target = P.target_ranks(perms, out.dtype)
        loss = ((ranks - target) / cfg.num_patches).square().mean()
    else:
        loss = F.cross_entropy(out, labels)
    return loss, out


def predicted_ranks(cfg: PretrainConfig, out: torch.Tensor, perm_set: torch.Tensor | None):
    """Hard predicted ranks (B, K) from scores (rank) or logits (jigsaw)."""
    if cfg.method == "rank":
        return hard_rank(out)
    return P.target_ranks(perm_set.to(out.device)[out.argmax(-1)], out.dtype)


def spearman(pred_ranks: torch.Tensor, true_ranks: torch.Tensor) -> torch.Tensor:
    """Spearman correlation of two rank matrices (B, K) without ties, per row."""
    k = pred_ranks.shape[-1]
    d2 = (pred_ranks - true_ranks).square().sum(-1)
    return 1 - 6 * d2 / (k * (k * k - 1))


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    cfg: PretrainConfig,
    x: torch.Tensor,
    perm_set: torch.Tensor | None,
    device: torch.device,
    batch_size: int = 256,
    family: torch.Tensor | None = None,
) -> dict[str, float]:
    """Held-out loss, exact-reorder accuracy and Spearman correlation on fixed shuffles.

    For ``"supervised"`` the last two are NaN and ``accuracy`` is the supervised task's
    accuracy (``family`` holds its labels); for the pretext methods ``accuracy`` is NaN.
    """
    model.eval()
    perms, labels = epoch_shuffles(cfg, len(x), -1, perm_set)
    supervised = cfg.method == "supervised"
    if supervised:
        labels = family
    total = {"loss": 0.0, "exact": 0.0, "spearman": 0.0, "accuracy": 0.0}
    for lo in range(0, len(x), batch_size):
        xb = x[lo : lo + batch_size].to(device)
        pb, lb = perms[lo : lo + batch_size].to(device), labels[lo : lo + batch_size].to(device)
        loss, out = pretext_loss(model, cfg, xb, pb, lb)
        total["loss"] += loss.item() * len(xb)
        if supervised:
            total["accuracy"] += (out.argmax(-1) == lb).float().sum().item()
            continue
        pred = predicted_ranks(cfg, out, perm_set)
        true = P.target_ranks(pb, pred.dtype)
        total["exact"] += (pred == true).all(-1).float().sum().item()
        total["spearman"] += spearman(pred, true).sum().item()
    model.train()
    result = {k: v / max(len(x), 1) for k, v in total.items()}
    nan = float("nan")
    if supervised:
        result["exact"] = result["spearman"] = nan
    else:
        result["accuracy"] = nan
    return result


# --- training -------------------------------------------------------------------------------


def _lr_at(cfg: PretrainConfig, step: int, total: int) -> float:
    """Cosine decay from ``lr`` to ``lr / 20`` over the run, after a 3 % linear warm-up."""
    warm = max(1, total // 33)
    if step < warm:
        return cfg.lr * (step + 1) / warm
    t = (step - warm) / max(1, total - warm)
    return cfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t)))


def _write_metrics(path: Path, rows: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=METRIC_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(path, lambda p: p.write_text(buf.getvalue()))


def _flat_params(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1).float() for p in model.parameters()])


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
    started_dist = _maybe_init_distributed(device)
    try:
        out = Path(out) if out else None
        return _pretrain(cfg, out, resume, overwrite, progress, device, resume_epochs)
    finally:
        if started_dist:
            dist.destroy_process_group()


def _pretrain(cfg, out, resume, overwrite, progress, device, resume_epochs) -> dict[str, Any]:
    rank, world = _dist_info()
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    ckpt_path = out / "checkpoint.pt" if out else None
    state = None
    if resume:
        if ckpt_path is None:
            raise ValueError("--resume needs --out DIR holding the run to continue")
        state = load_checkpoint(ckpt_path)
        stored = PretrainConfig.from_dict(state["config"])
        stored.epochs = max(resume_epochs or 0, stored.epochs)
        stored.device = cfg.device
        cfg = stored
    elif ckpt_path is not None and ckpt_path.exists() and not overwrite:
        raise FileExistsError(
            f"{out} already holds a run; pass --resume to continue it or --overwrite to replace it"
        )
    if cfg.batch_size % world:
        raise ValueError(f"batch size {cfg.batch_size} is not divisible by {world} processes")

    torch.manual_seed(cfg.seed)
    data = load_features(cfg, progress)
    M.check_pieces(
        cfg.modality, cfg.patches, cfg.num_patches, cfg.jitter, tuple(data["train"].shape[1:])
    )
    perm_set = (
        P.fixed_permutation_set(cfg.num_perms(), cfg.num_patches, seed=cfg.seed)
        if cfg.method == "jigsaw"
        else None
    )
    model = build_model(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    history: list[dict[str, Any]] = []
    first_epoch = 0
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        history = list(state["metrics"])
        first_epoch = int(state["epoch"]) + 1
    model.to(device)
    for group in opt.state.values():
        for k, v in group.items():
            if isinstance(v, torch.Tensor) and k != "step":
                group[k] = v.to(device)
    train_model: torch.nn.Module = model
    if world > 1:
        train_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    if cfg.compile:
        train_model = torch.compile(train_model)

    n_train = len(data["train"])
    local_batch = cfg.batch_size // world
    steps_per_epoch = n_train // cfg.batch_size
    if steps_per_epoch == 0:
        raise ValueError(f"batch size {cfg.batch_size} exceeds the {n_train} training clips")
    total_steps = steps_per_epoch * cfg.epochs
    if rank == 0 and out is not None:
        out.mkdir(parents=True, exist_ok=True)
        save_json(out / "config.json", asdict(cfg) | {"minis2l_version": __version__})
    sampler = torch.utils.data.DistributedSampler(
        range(n_train), num_replicas=world, rank=rank, shuffle=True, seed=cfg.seed, drop_last=True
    )
    pin = device.type == "cuda"
    bar = tqdm(
        total=total_steps,
        initial=first_epoch * steps_per_epoch,
        disable=not progress or rank != 0,
        desc=f"pretrain {cfg.method}/{cfg.patches}/K={cfg.num_patches}",
        unit="step",
    )
    ckpt: dict[str, Any] = state or {}
    for epoch in range(first_epoch, cfg.epochs):
        t0 = time.perf_counter()
        torch.manual_seed(cfg.seed * 1_000_003 + epoch)
        sampler.set_epoch(epoch)
        order = torch.tensor(list(sampler))
        perms, labels = epoch_shuffles(cfg, n_train, epoch, perm_set)
        offsets = epoch_offsets(cfg, n_train, epoch)
        running = 0.0
        for step in range(steps_per_epoch):
            idx = order[step * local_batch : (step + 1) * local_batch]
            xb, pb = data["train"][idx], perms[idx]
            lb = data["train_label"][idx] if cfg.method == "supervised" else labels[idx]
            ob = None if offsets is None else offsets[idx].to(device)
            if pin:
                xb, pb, lb = xb.pin_memory(), pb.pin_memory(), lb.pin_memory()
            xb = xb.to(device, non_blocking=True)
            pb, lb = pb.to(device, non_blocking=True), lb.to(device, non_blocking=True)
            for group in opt.param_groups:
                group["lr"] = _lr_at(cfg, epoch * steps_per_epoch + step, total_steps)
            loss, _ = pretext_loss(train_model, cfg, xb, pb, lb, ob)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            running += loss.item()
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, loss=f"{running / (step + 1):.4f}")
        if world > 1:  # report the global batch's loss, not this rank's half
            total = torch.tensor(running, dtype=torch.float64)
            dist.all_reduce(total)
            running = total.item() / world
        metrics = {"epoch": epoch + 1, "train_loss": running / steps_per_epoch}
        valid = evaluate(model, cfg, data["valid"], perm_set, device, family=data["valid_label"])
        metrics |= {f"valid_{k}": v for k, v in valid.items()}
        metrics |= {"lr": opt.param_groups[0]["lr"], "seconds": time.perf_counter() - t0}
        history.append(metrics)
        ckpt = {
            "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "optimizer": _cpu(opt.state_dict()),
            "epoch": epoch,
            "config": asdict(cfg),
            "perm_set": perm_set,
            "metrics": history,
            "minis2l_version": __version__,
        }
        if world > 1:
            ckpt["ddp"] = _compare_ranks(model, world)
        if rank == 0 and out is not None:
            save_torch(ckpt_path, ckpt)
            _write_metrics(out / "metrics.csv", history)
        if rank == 0 and progress:
            tqdm.write(
                f"epoch {epoch + 1}/{cfg.epochs}: train {metrics['train_loss']:.4f}, valid "
                f"{valid['loss']:.4f}, exact {valid['exact']:.3f}, spearman "
                f"{valid['spearman']:.3f}, accuracy {valid['accuracy']:.3f} "
                f"({metrics['seconds']:.1f} s)"
            )
    bar.close()
    return ckpt


def _cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _cpu(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_cpu(v) for v in obj]
    return obj


def _compare_ranks(model: torch.nn.Module, world: int) -> dict[str, float]:
    """Gather every rank's weights; return the largest difference from rank 0's."""
    flat = _flat_params(model)
    gathered = [torch.empty_like(flat) for _ in range(world)]
    dist.all_gather(gathered, flat)
    diff = max(float((g - gathered[0]).abs().max()) for g in gathered)
    return {"world_size": world, "max_weight_diff_across_ranks": diff}


def build_model(cfg: PretrainConfig) -> PermutationModel:
    """A freshly initialized model for ``cfg`` (seed it first for reproducible weights)."""
    return PermutationModel(
        cfg.method,
        cfg.patches,
        cfg.num_patches,
        cfg.num_perms(),
        cfg.dim,
        M.get(cfg.modality).num_classes,
        cfg.jitter,
        M.get(cfg.modality).coords,
    )


def load_pretrained(path: str | Path) -> tuple[PermutationModel, PretrainConfig, dict[str, Any]]:
    """Rebuild the model of a checkpoint: ``(model in eval mode, config, checkpoint)``."""
    ckpt = load_checkpoint(path)
    cfg = PretrainConfig.from_dict(ckpt["config"])
    model = build_model(cfg)
    model.load_state_dict(ckpt["model"])
    return model.eval(), cfg, ckpt


# --- command line ---------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m minis2l pretrain``."""
    d = PretrainConfig.__dataclass_fields__
    parser.add_argument(
        "--method",
        default=d["method"].default,
        help="rank (all K! permutations, soft-rank loss), jigsaw (a fixed set of P, "
        "classification) or supervised (the labels: the reference)",
    )
    parser.add_argument(
        "--modality",
        default="audio",
        choices=list(M.MODALITIES),
        help="audio (notes' log-mels, default), image (Fashion-MNIST tiles) or video (moving "
        "Fashion-MNIST clips, frames)",
    )
    parser.add_argument(
        "--patches", help="time, freq or 2d (default: the modality's: freq, 2d, time)"
    )
    parser.add_argument(
        "--num-patches",
        type=int,
        metavar="K",
        help="number of patches K (default: the modality's: 6, 9, 8)",
    )
    parser.add_argument(
        "--jitter",
        type=int,
        metavar="PX",
        help="pixels randomly cropped off each patch, leaving gaps (default: image 2, else 0)",
    )
    parser.add_argument(
        "--perm-set-size",
        type=int,
        default=d["perm_set_size"].default,
        metavar="P",
        help="jigsaw: size of the fixed set (default 100, or K!)",
    )
    parser.add_argument("--epochs", type=int, metavar="N", help="default 12 (2 with --fast)")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=d["batch_size"].default,
        metavar="B",
        help="global batch size (default %(default)s)",
    )
    parser.add_argument(
        "--lr", type=float, default=d["lr"].default, help="peak learning rate (default %(default)s)"
    )
    parser.add_argument(
        "--regularization-strength",
        type=float,
        metavar="EPS",
        default=d["regularization_strength"].default,
        help="soft rank's epsilon (default %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="default 0")
    parser.add_argument(
        "--device",
        default="auto",
        choices=["auto", "cpu", "cuda", "mps"],
        help="default auto: CUDA, then MPS, then CPU",
    )
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument(
        "--data", metavar="DIR", help="a built data set (default: build/reuse the default one)"
    )
    parser.add_argument("--soundfont", metavar="PATH", help="SoundFont for the default data set")
    parser.add_argument(
        "--images",
        metavar="DIR",
        help="image/video: a folder with Fashion-MNIST's four IDX files (default: Debian's "
        "dataset-fashion-mnist, else scikit-learn's digits)",
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        default="runs/pretrain",
        help="output directory (default %(default)s)",
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its last checkpoint"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace a run already in --out")


def run(args: argparse.Namespace) -> int:
    """Run ``python -m minis2l pretrain``; errors become one line on stderr and exit 2."""
    try:
        if args.images and args.modality == "audio":
            raise ValueError("--images is for --modality image or video")
        cfg = PretrainConfig(
            method=args.method,
            modality=args.modality,
            patches=args.patches,
            num_patches=args.num_patches,
            jitter=args.jitter,
            perm_set_size=args.perm_set_size,
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            regularization_strength=args.regularization_strength,
            seed=args.seed,
            device=args.device,
            compile=args.compile,
            fast=fast_mode(),
            data=args.images or args.data,
            soundfont=args.soundfont,
        )
        ckpt = pretrain(
            cfg, args.out, resume=args.resume, overwrite=args.overwrite, resume_epochs=args.epochs
        )
    except (ValueError, FileNotFoundError, FileExistsError, TypeError) as err:
        print(f"minis2l pretrain: error: {err}", file=sys.stderr)
        return 2
    last = ckpt["metrics"][-1] if ckpt.get("metrics") else {}
    if int(os.environ.get("RANK", "0")) == 0 and last:
        if cfg.method == "supervised":
            summary = f"valid supervised accuracy {last['valid_accuracy']:.3f}"
        else:
            summary = (
                f"valid exact-reorder {last['valid_exact']:.3f}, "
                f"Spearman {last['valid_spearman']:.3f}"
            )
        print(f"done: {args.out}/checkpoint.pt; {summary}")
    return 0
