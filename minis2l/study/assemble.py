"""From the jobs' results to the study's ``results.json``: regimes, pairs, baseline, ablations."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict
from typing import Any

import numpy as np

from minis2l import __version__
from minis2l import modality as M
from minis2l.items import Items
from minis2l.pretext import PUZZLE_METRICS
from minis2l.study.config import ABLATION_METHODS, METHODS, PAIRS, PROBE_FRACTIONS, StudyConfig
from minis2l.study.encoders import Job, probe_regimes, valid_accuracy
from minis2l.study.stats import collect, paired_difference, summary

#: The results' key of the valid-only probes of layers and patch types (the audio study
#: added them to find out why pitch probes fall after pretraining).
INVESTIGATION = "pitch_investigation"


def assemble(cfg: StudyConfig, done: dict[Job, dict[str, Any]], items: Items) -> dict[str, Any]:
    """The study's results (the schema in :mod:`minis2l.study`) from every job's result,
    with the no-encoder baseline probed on the same label subsets as the encoders."""
    seeds = list(range(cfg.seeds))
    scores = {job: r["scores"] for job, r in done.items()}
    main = {m: [scores[(m, cfg.patches, s)] for s in seeds] for m in METHODS}
    baseline = M.get(cfg.modality).baseline
    pooled = {s: M.baseline_features(cfg.modality, x) for s, x in items.inputs.items()}
    baseline_runs = [probe_regimes(pooled, items.labels, cfg, s) for s in seeds]

    def regime(key: str, with_baseline: bool) -> dict[str, Any]:
        r = {m: collect([run[key] for run in main[m]]) for m in METHODS}
        if with_baseline:
            r[baseline] = collect([run[key] for run in baseline_runs])
        return r

    fine = cfg.finetune_fractions
    regimes = {
        "probe": {str(f): regime(f"probe_{f}", True) for f in PROBE_FRACTIONS},
        "finetune": {str(f): regime(f"finetune_{f}", False) for f in fine},
    }
    keys = [f"probe_{f}" for f in PROBE_FRACTIONS] + [f"finetune_{f}" for f in fine]
    first = items.tasks[0]
    tenth = regimes["probe"]["0.1"]
    kinds = cfg.patch_kinds() if cfg.ablations else []
    results = {
        "config": {
            **asdict(cfg),
            "label_fractions": list(PROBE_FRACTIONS),
            "minis2l_version": __version__,
        },
        "methods": {m: regimes["probe"]["1.0"][m] for m in METHODS},
        "regimes": regimes,
        "sensitivity": {
            f"{first}_probe_0.1": tenth["supervised"][first]["accuracy"]["mean"]
            - tenth["random"][first]["accuracy"]["mean"]
        },
        "paired": _paired(main, keys, items.tasks),
        "ablations": {
            "label_fraction": {
                f: {m: r for m, r in by.items() if m != baseline}
                for f, by in regimes["probe"].items()
            },
            "patches": {
                k: {m: collect([scores[(m, k, seeds[0])]["probe_1.0"]]) for m in ABLATION_METHODS}
                for k in kinds
            },
        },
        "baselines": {baseline: regimes["probe"]["1.0"][baseline]},
        **_pretext(cfg, done),
    }
    if cfg.ablations:
        results[INVESTIGATION] = _investigation(cfg, done, items)
    return results


def _paired(
    main: dict[str, list[dict[str, Any]]], keys: list[str], tasks: tuple[str, ...]
) -> dict[str, Any]:
    """``{"a-b": {regime key: {task: paired difference of accuracies}}}`` for :data:`PAIRS`."""
    return {
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


def pretext_summary(method: str, runs: list[list[dict[str, float]]]) -> dict[str, Any]:
    """A pretext method's last valid epoch over seeds: ``{"all_perms": {metric: S}}`` on the
    shuffles from all K! that every method is scored on, and for jigsaw ``"own_set"`` too (on
    shuffles from its own set; :mod:`minis2l.pretext`)."""
    out = {"all_perms": {k: summary([h[-1][f"valid_{k}"] for h in runs]) for k in PUZZLE_METRICS}}
    if method == "jigsaw":
        out["own_set"] = {
            k: summary([h[-1][f"valid_own_{k}"] for h in runs]) for k in PUZZLE_METRICS
        }
    return out


def _pretext(cfg: StudyConfig, done: dict[Job, dict[str, Any]]) -> dict[str, Any]:
    """``"curves"``: each trained method's per-epoch metrics per seed (main patch kind);
    ``"pretext"``: each pretext method's :func:`pretext_summary`."""
    curves: dict[str, list[list[dict[str, float]]]] = defaultdict(list)
    for (method, kind, _), r in done.items():
        if kind == cfg.patches and r["history"]:
            curves[method].append(r["history"])
    pretext = {m: pretext_summary(m, runs) for m, runs in curves.items() if m != "supervised"}
    return {"pretext": pretext, "curves": dict(curves)}


def _investigation(
    cfg: StudyConfig, done: dict[Job, dict[str, Any]], items: Items
) -> dict[str, Any]:
    """Valid-only probes on seed 0: which layer, which patch type and which combination of
    patch types gives the best probe (the test split is not used)."""
    kinds = cfg.patch_kinds()
    patches = {
        k: {
            m: {t: r["valid_accuracy"] for t, r in done[(m, k, 0)]["scores"]["probe_1.0"].items()}
            for m in ABLATION_METHODS
        }
        for k in kinds
    }
    combined = {}
    for m in ABLATION_METHODS:
        emb = {
            s: np.concatenate(
                [done[(m, k, 0)]["embeddings"][s].float().numpy() for k in kinds], axis=1
            )
            for s in ("train", "valid")
        }
        combined[m] = valid_accuracy(emb, items.labels)
    return {
        "split": "valid",
        "layers": {m: done[(m, cfg.patches, 0)]["layers"] for m in METHODS},
        "patches": patches,
        "combined_" + "+".join(kinds): combined,
    }
