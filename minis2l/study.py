"""The headline study (``python -m minis2l demo``): does learning from all permutations beat a
fixed set?

For each seed, four encoders with the same architecture and training budget:

* ``random``: untrained (the seed's initialization);
* ``jigsaw``: pretrained to classify a fixed set of P = 100 permutations;
* ``rank``: pretrained with the soft-rank loss on all K! permutations;
* ``supervised``: trained on the instrument-family labels (a reference, not a competitor).

Each is frozen and probed linearly (:mod:`minis2l.probe`) for instrument family and pitch,
with probe hyperparameters chosen on valid and scores from test (unseen instruments), at
several label fractions. A patch-type ablation repeats random/jigsaw/rank with time, frequency
and 2-D patches for the first seed. A linear probe on the log-mel itself (average-pooled to
32 x 8) is reported alongside.

Outputs in ``--out DIR``: ``results.json`` (schema below), ``results.md`` and two PNG plots
(accuracy per method with error bars; accuracy against label fraction)::

    {"config": {...},
     "methods": {method: {task: {"accuracy": {"mean", "std", "runs"}, "macro_f1": {...}}}},
     "ablations": {"label_fraction": {fraction: {method: {task: {...}}}},
                   "patches": {kind: {method: {task: {...}}}}},
     "baselines": {"logmel": {task: {...}}},
     "pretext": {method: {"valid_exact": {...}, "valid_spearman": {...}}}}
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from minis2l import __version__
from minis2l.config import fast_mode
from minis2l.io import atomic_write, save_json
from minis2l.pretrain import PretrainConfig, build_model, pretrain
from minis2l.probe import TASKS, embed, probe_embeddings, split_labels

METHODS = ("random", "jigsaw", "rank", "supervised")
PATCH_KINDS = ("time", "freq", "2d")
LABEL_FRACTIONS = (0.01, 0.1, 1.0)


def _summary(values: list[float]) -> dict[str, Any]:
    arr = np.asarray(values, dtype=float)
    return {"mean": float(arr.mean()), "std": float(arr.std()), "runs": [float(v) for v in arr]}


def _collect(runs: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, Any]]:
    """[{task: {"accuracy", "macro_f1", ...}}] over seeds -> {task: {metric: summary}}."""
    return {
        task: {m: _summary([r[task][m] for r in runs]) for m in ("accuracy", "macro_f1")}
        for task in TASKS
    }


def logmel_features(features: np.ndarray) -> np.ndarray:
    """The no-encoder baseline: log-mel average-pooled to 32 mel bands x 8 time steps."""
    x = torch.nn.functional.adaptive_avg_pool2d(torch.as_tensor(features), (32, 8))
    return x.flatten(1).numpy()


def train_encoder(
    method: str, kind: str, seed: int, args: argparse.Namespace, run_dir: Path
) -> tuple[torch.nn.Module, dict[str, float]]:
    """An encoder for ``method`` (trained unless ``random``) and its last pretext metrics."""
    cfg = PretrainConfig(
        method="rank" if method == "random" else method,
        patches=kind,
        num_patches=args.num_patches,
        perm_set_size=args.perm_set_size,
        epochs=args.epochs,
        seed=seed,
        device=args.device,
        fast=fast_mode(),
        data=str(args.data_root),
    )
    if method == "random":
        torch.manual_seed(cfg.seed)  # the same initialization pretrain() starts from
        return build_model(cfg).eval(), {}
    ckpt = pretrain(cfg, run_dir, overwrite=True, progress=args.progress)
    model = build_model(cfg)
    model.load_state_dict(ckpt["model"])
    return model.eval(), ckpt["metrics"][-1]


def run_study(args: argparse.Namespace) -> dict[str, Any]:
    """Run the study described in the module docstring; write and return the results."""
    from minis2l.data import build_dataset, load_dataset

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if getattr(args, "epochs", None) is None:
        args.epochs = default_epochs()
    t0 = time.perf_counter()
    args.data_root = build_dataset(
        soundfont=args.soundfont, fast=fast_mode(), progress=args.progress
    )
    notes = load_dataset(args.data_root)
    labels = split_labels(notes)
    features = {s: np.asarray(notes.split(s).features, dtype=np.float32) for s in labels}
    seeds = list(range(args.seeds))
    kinds = [args.patches] + [k for k in PATCH_KINDS if k != args.patches]
    if args.no_ablations:
        kinds = kinds[:1]
    jobs = [(m, args.patches, s) for s in seeds for m in METHODS]
    jobs += [(m, k, seeds[0]) for k in kinds[1:] for m in ("random", "jigsaw", "rank")]

    probes: dict[tuple[str, str, int], dict[float, dict]] = {}
    pretext: dict[str, list[dict[str, float]]] = {m: [] for m in METHODS}
    for i, (method, kind, seed) in enumerate(jobs, 1):
        print(f"[{i}/{len(jobs)}] {method} / {kind} patches / seed {seed}", flush=True)
        model, last = train_encoder(
            method, kind, seed, args, out / "runs" / f"{method}-{kind}-{seed}"
        )
        if kind == args.patches and last:
            pretext[method].append(last)
        emb = {s: embed(model, features[s]) for s in labels}
        fractions = LABEL_FRACTIONS if kind == args.patches else (1.0,)
        probes[(method, kind, seed)] = {
            f: probe_embeddings(emb, labels, label_fraction=f, seed=seed) for f in fractions
        }
        fam = probes[(method, kind, seed)][1.0]["family"]["accuracy"]
        pit = probes[(method, kind, seed)][1.0]["pitch"]["accuracy"]
        print(f"      family {fam:.3f}  pitch {pit:.3f}  ({time.perf_counter() - t0:.0f} s)")

    pooled = {s: logmel_features(f) for s, f in features.items()}
    results = {
        "config": {
            "seeds": args.seeds,
            "patches": args.patches,
            "num_patches": args.num_patches,
            "perm_set_size": args.perm_set_size,
            "epochs": args.epochs,
            "fast": fast_mode(),
            "data": str(args.data_root),
            "label_fractions": list(LABEL_FRACTIONS),
            "minis2l_version": __version__,
        },
        "methods": {
            m: _collect([probes[(m, args.patches, s)][1.0] for s in seeds]) for m in METHODS
        },
        "ablations": {
            "label_fraction": {
                str(f): {
                    m: _collect([probes[(m, args.patches, s)][f] for s in seeds]) for m in METHODS
                }
                for f in LABEL_FRACTIONS
            },
            "patches": {
                k: {
                    m: _collect([probes[(m, k, seeds[0])][1.0]])
                    for m in ("random", "jigsaw", "rank")
                }
                for k in kinds
            },
        },
        "baselines": {"logmel": _collect([probe_embeddings(pooled, labels)])},
        "pretext": {
            m: {k: _summary([r[k] for r in runs]) for k in ("valid_exact", "valid_spearman")}
            for m, runs in pretext.items()
            if runs and m != "supervised"
        },
    }
    results["config"]["seconds"] = time.perf_counter() - t0
    save_json(out / "results.json", results)
    markdown = results_markdown(results)
    atomic_write(out / "results.md", lambda p: p.write_text(markdown))
    plot_results(results, out)
    return results


def _cell(s: dict[str, Any]) -> str:
    return f"{100 * s['mean']:.1f} ± {100 * s['std']:.1f}"


def results_markdown(results: dict[str, Any]) -> str:
    """The results as Markdown tables (accuracy and macro-F1 in %, mean ± std over seeds)."""
    cfg = results["config"]
    lines = [
        f"# minis2l study: {cfg['patches']} patches, K = {cfg['num_patches']}, "
        f"{cfg['seeds']} seed(s), {cfg['epochs']} epochs{' (fast mode)' if cfg['fast'] else ''}",
        "",
        "Linear probes on frozen encoders; test split (instruments unseen in training); "
        "mean ± std over seeds, in %.",
        "",
        "| encoder | family acc. | family macro-F1 | pitch acc. | pitch macro-F1 |",
        "|---|---|---|---|---|",
    ]
    rows = dict(results["methods"]) | {"log-mel (no encoder)": results["baselines"]["logmel"]}
    for name, r in rows.items():
        lines.append(
            f"| {name} | {_cell(r['family']['accuracy'])} | {_cell(r['family']['macro_f1'])} | "
            f"{_cell(r['pitch']['accuracy'])} | {_cell(r['pitch']['macro_f1'])} |"
        )
    lines += ["", "## Label fraction (probe trained on a fraction of train labels; accuracy %)", ""]
    fracs = list(results["ablations"]["label_fraction"])
    lines.append(
        "| encoder | "
        + " | ".join(f"family @{f}" for f in fracs)
        + " | "
        + " | ".join(f"pitch @{f}" for f in fracs)
        + " |"
    )
    lines.append("|---" * (1 + 2 * len(fracs)) + "|")
    for m in results["methods"]:
        cells = [
            _cell(results["ablations"]["label_fraction"][f][m][t]["accuracy"])
            for t in TASKS
            for f in fracs
        ]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Patch type (first seed; accuracy %)",
        "",
        "| patches | encoder | family | pitch |",
        "|---|---|---|---|",
    ]
    for kind, by_method in results["ablations"]["patches"].items():
        for m, r in by_method.items():
            lines.append(
                f"| {kind} | {m} | {_cell(r['family']['accuracy'])} | "
                f"{_cell(r['pitch']['accuracy'])} |"
            )
    if results["pretext"]:
        lines += [
            "",
            "## Pretext task on valid (last epoch)",
            "",
            "| method | exact reorder | Spearman |",
            "|---|---|---|",
        ]
        for m, r in results["pretext"].items():
            lines.append(
                f"| {m} | {_cell(r['valid_exact'])} | "
                f"{r['valid_spearman']['mean']:.3f} ± {r['valid_spearman']['std']:.3f} |"
            )
    return "\n".join(lines) + "\n"


def plot_results(results: dict[str, Any], out: Path) -> list[Path]:
    """Write ``accuracy.png`` and ``label_fraction.png``; return their paths."""
    from matplotlib.figure import Figure  # no pyplot: leaves a notebook's backend alone

    paths = []
    methods = list(results["methods"])
    fig = Figure(figsize=(9, 3.5))
    axes = fig.subplots(1, 2)
    for ax, task in zip(axes, TASKS, strict=True):
        means = [100 * results["methods"][m][task]["accuracy"]["mean"] for m in methods]
        stds = [100 * results["methods"][m][task]["accuracy"]["std"] for m in methods]
        ax.bar(
            methods, means, yerr=stds, capsize=4, color=["#999", "#d95f02", "#1b9e77", "#7570b3"]
        )
        base = 100 * results["baselines"]["logmel"][task]["accuracy"]["mean"]
        ax.axhline(base, ls="--", c="k", lw=1, label="log-mel probe")
        ax.set_title(f"{task}: linear probe, test accuracy")
        ax.set_ylabel("accuracy (%)")
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    paths.append(out / "accuracy.png")
    atomic_write(paths[-1], lambda p: fig.savefig(p, format="png", dpi=110))

    fracs = [float(f) for f in results["ablations"]["label_fraction"]]
    fig = Figure(figsize=(9, 3.5))
    axes = fig.subplots(1, 2)
    for ax, task in zip(axes, TASKS, strict=True):
        for m in methods:
            r = [results["ablations"]["label_fraction"][str(f)][m][task]["accuracy"] for f in fracs]
            ax.errorbar(
                fracs,
                [100 * x["mean"] for x in r],
                yerr=[100 * x["std"] for x in r],
                marker="o",
                capsize=3,
                label=m,
            )
        ax.set_xscale("log")
        ax.set_xlabel("fraction of train labels")
        ax.set_ylabel("accuracy (%)")
        ax.set_title(task)
        ax.legend(fontsize=8)
    fig.tight_layout()
    paths.append(out / "label_fraction.png")
    atomic_write(paths[-1], lambda p: fig.savefig(p, format="png", dpi=110))
    return paths


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m minis2l demo``."""
    d = PretrainConfig.__dataclass_fields__
    parser.add_argument("--soundfont", metavar="PATH", help="SoundFont (default: TimGM6mb)")
    parser.add_argument("--seeds", type=int, default=3, metavar="N", help="seeds (default 3)")
    parser.add_argument("--out", metavar="DIR", default="runs/demo", help="default %(default)s")
    parser.add_argument(
        "--patches",
        default=d["patches"].default,
        choices=PATCH_KINDS,
        help="patch type of the main comparison (default %(default)s)",
    )
    parser.add_argument(
        "--num-patches",
        type=int,
        default=d["num_patches"].default,
        metavar="K",
        help="default %(default)s",
    )
    parser.add_argument(
        "--perm-set-size",
        type=int,
        default=100,
        metavar="P",
        help="jigsaw's fixed set (default 100)",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        metavar="N",
        help="training epochs per encoder (default 4, 1 with --fast)",
    )
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    parser.add_argument("--no-ablations", action="store_true", help="skip the patch ablation")


def default_epochs() -> int:
    """Training epochs per encoder in the study: 4, or 1 in fast mode."""
    return 1 if fast_mode() else 4


def run(args: argparse.Namespace) -> int:
    """Run ``python -m minis2l demo``; errors become one line on stderr and exit 2."""
    if args.seeds < 1:
        print("minis2l demo: error: --seeds must be at least 1", file=sys.stderr)
        return 2
    args.progress = sys.stderr.isatty()
    try:
        results = run_study(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"minis2l demo: error: {err}", file=sys.stderr)
        return 2
    print()
    print(results_markdown(results))
    print(
        f"wrote {args.out}/results.json, results.md, accuracy.png, label_fraction.png "
        f"in {results['config']['seconds']:.0f} s"
    )
    return 0
