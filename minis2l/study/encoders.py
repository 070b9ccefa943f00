"""One encoder of the study: train it (unless random), then probe and fine-tune it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from minis2l.finetune import finetune
from minis2l.items import Items
from minis2l.pretrain import build_model, pretrain
from minis2l.probe import embed, embed_layers, probe_embeddings, subsample
from minis2l.study.config import ABLATION_METHODS, StudyConfig
from minis2l.study.stats import mean_runs

#: One encoder to train and evaluate: (method, patch kind, seed).
Job = tuple[str, str, int]


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
    pcfg = cfg.pretrain_config(method, kind, seed, data)
    if method == "random":
        torch.manual_seed(pcfg.seed)  # the same initialization pretrain() starts from
        return build_model(pcfg).eval(), []
    ckpt = pretrain(pcfg, run_dir, overwrite=True, progress=progress)
    model = build_model(pcfg)
    model.load_state_dict(ckpt["model"])
    return model.eval().cpu(), ckpt["metrics"]


def probe_regimes(
    emb: dict[str, np.ndarray], labels: dict[str, Any], cfg: StudyConfig, seed: int
) -> dict[str, dict[str, Any]]:
    """Linear probes on each of ``cfg.probe_fractions`` of the train labels (under 5 %, the mean
    over ``cfg.probe_subsets`` label subsets): ``{"probe_0.01": {task: metrics}, ...}``."""
    out = {}
    for frac in cfg.probe_fractions:
        subsets = cfg.probe_subsets if frac < 0.05 else 1
        runs = [
            probe_embeddings(emb, labels, label_fraction=frac, seed=100 * seed + j)
            for j in range(subsets)
        ]
        out[f"probe_{frac}"] = mean_runs(runs)
    return out


def evaluate_encoder(
    model: torch.nn.Module, items: Items, cfg: StudyConfig, seed: int
) -> tuple[dict[str, dict[str, Any]], dict[str, np.ndarray]]:
    """Every regime for one encoder, ``{"probe_0.01": {task: metrics}, ...,
    "finetune_0.1": ...}``, and its embeddings of each split."""
    features, labels = items.inputs, items.labels
    emb = {s: embed(model, features[s]) for s in labels}
    out = probe_regimes(emb, labels, cfg, seed)
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


def valid_accuracy(emb: dict[str, np.ndarray], labels: dict[str, Any]) -> dict[str, float]:
    """Probe accuracy on valid (penalty chosen on valid too); the test split is not used."""
    splits = {"train": "train", "valid": "valid", "test": "valid"}
    res = probe_embeddings(
        {s: emb[src] for s, src in splits.items()}, {s: labels[src] for s, src in splits.items()}
    )
    return {task: res[task]["valid_accuracy"] for task in res}


def layer_probes(
    model: torch.nn.Module, features: dict[str, np.ndarray], labels: dict[str, Any]
) -> dict[str, dict[str, float]]:
    """Valid probe accuracy of each layer's features (seed 0, main patch type)."""
    per_split = {s: embed_layers(model, features[s]) for s in ("train", "valid")}
    return {
        name: valid_accuracy({s: per_split[s][name] for s in per_split}, labels)
        for name in per_split["train"]
    }


def run_job(
    job: Job, cfg: StudyConfig, items: Items, run_dir: Path, progress: bool
) -> dict[str, Any]:
    """Train (unless random) and evaluate one encoder; what the study keeps of it.

    The main patch kind gets every regime (and, with ablations, seed 0 its layer probes);
    another kind (the patch-type ablation) a probe on all labels. With ablations, seed 0's
    random and rank encoders keep their train and valid embeddings (float16) for the probes
    on patch-type combinations.
    """
    method, kind, seed = job
    model, history = train_encoder(
        method, kind, seed, cfg, items.metadata["data"], run_dir, progress
    )
    result: dict[str, Any] = {"history": history}
    if kind == cfg.patches:
        result["scores"], emb = evaluate_encoder(model, items, cfg, seed)
        if seed == 0 and cfg.ablations:
            result["layers"] = layer_probes(model, items.inputs, items.labels)
    else:
        emb = {s: embed(model, items.inputs[s]) for s in items.labels}
        result["scores"] = {"probe_1.0": probe_embeddings(emb, items.labels, seed=seed)}
    if cfg.ablations and seed == 0 and method in ABLATION_METHODS:
        result["embeddings"] = {
            s: torch.from_numpy(emb[s]).to(torch.float16) for s in ("train", "valid")
        }
    return result
