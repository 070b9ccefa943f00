"""Investigate, on the valid split only, why a pretrained encoder does or does not beat random.

Trains a few variants of the rank and jigsaw pretext (training length, K, patch type, soft-rank
strength) with one seed, probes each frozen encoder, and prints the probes' *valid* accuracy
next to the random encoder's for the same patch layout. The test split is never touched, so
what this finds can inform the study's settings without tuning on test.

Usage:  python experiments/valid_sweep.py [--out runs/valid_sweep] [--fast]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from minis2l.config import set_fast_mode
from minis2l.data import build_dataset, load_dataset
from minis2l.io import save_json
from minis2l.pretrain import PretrainConfig, build_model, pretrain
from minis2l.probe import embed, probe_embeddings, split_labels

# (name, PretrainConfig overrides); every variant is compared with random init of its layout.
VARIANTS = [
    ("rank freq K=6, 4 ep", {"method": "rank", "patches": "freq", "num_patches": 6, "epochs": 4}),
    ("rank freq K=6, 1 ep", {"method": "rank", "patches": "freq", "num_patches": 6, "epochs": 1}),
    ("rank freq K=6, 10 ep", {"method": "rank", "patches": "freq", "num_patches": 6, "epochs": 10}),
    (
        "rank freq K=6, eps=1",
        {
            "method": "rank",
            "patches": "freq",
            "num_patches": 6,
            "epochs": 4,
            "regularization_strength": 1.0,
        },
    ),
    ("rank freq K=4, 4 ep", {"method": "rank", "patches": "freq", "num_patches": 4, "epochs": 4}),
    ("rank time K=6, 4 ep", {"method": "rank", "patches": "time", "num_patches": 6, "epochs": 4}),
    ("rank 2d K=6, 4 ep", {"method": "rank", "patches": "2d", "num_patches": 6, "epochs": 4}),
    (
        "jigsaw freq K=6, 4 ep",
        {"method": "jigsaw", "patches": "freq", "num_patches": 6, "epochs": 4},
    ),
    (
        "jigsaw freq K=6, 10 ep",
        {"method": "jigsaw", "patches": "freq", "num_patches": 6, "epochs": 10},
    ),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/valid_sweep")
    parser.add_argument("--fast", action="store_true", help="tiny data and 1 epoch, to smoke-test")
    args = parser.parse_args()
    if args.fast:
        set_fast_mode(True)
    out = Path(args.out)
    root = build_dataset(fast=args.fast)
    notes = load_dataset(root)
    labels = split_labels(notes)
    feats = {s: np.asarray(notes.split(s).features, dtype=np.float32) for s in labels}
    rows, randoms = [], {}
    for name, overrides in VARIANTS:
        t0 = time.perf_counter()
        if args.fast:
            overrides = overrides | {"epochs": 1}
        cfg = PretrainConfig(fast=args.fast, data=str(root), **overrides)
        layout = (cfg.patches, cfg.num_patches)
        if layout not in randoms:
            torch.manual_seed(cfg.seed)
            model = build_model(PretrainConfig(**(overrides | {"method": "rank"}), data=str(root)))
            randoms[layout] = _valid(probe_embeddings(_emb(model, feats), labels))
        ckpt = pretrain(cfg, out / name.replace(" ", "_"), overwrite=True, progress=False)
        model = build_model(cfg)
        model.load_state_dict(ckpt["model"])
        last = ckpt["metrics"][-1]
        rows.append(
            {
                "variant": name,
                "pretext_spearman": last["valid_spearman"],
                "valid": _valid(probe_embeddings(_emb(model, feats), labels)),
                "random_valid": randoms[layout],
                "seconds": time.perf_counter() - t0,
            }
        )
        r = rows[-1]
        print(
            f"{name:24s} pretext Spearman {r['pretext_spearman']:.3f} | valid family "
            f"{r['valid']['family']:.3f} (random {r['random_valid']['family']:.3f}) | valid pitch "
            f"{r['valid']['pitch']:.3f} (random {r['random_valid']['pitch']:.3f}) "
            f"[{r['seconds']:.0f} s]",
            flush=True,
        )
    save_json(out / "valid_sweep.json", rows)


def _emb(model: torch.nn.Module, feats: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {s: embed(model.eval(), f) for s, f in feats.items()}


def _valid(result: dict) -> dict[str, float]:
    return {task: r["valid_accuracy"] for task, r in result.items()}


if __name__ == "__main__":
    main()
