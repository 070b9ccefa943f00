"""The study's results as Markdown, and the verdicts read from its own numbers.

Accuracies are in %, mean ± std over seeds; differences of accuracies are in points. A verdict
("rank beats jigsaw") needs two things: the study's sensitivity check (supervised - random on
the first task with 10 % of the labels, at least :data:`SENSITIVITY_POINTS` points: the probe
can see a better representation at all) and a paired 95 % interval that excludes zero.
Fast-mode results get no verdicts: their numbers only show that the code runs.
"""

from __future__ import annotations

import math
from typing import Any

from minis2l import modality as M
from minis2l.study.assemble import INVESTIGATION
from minis2l.study.config import METHODS

#: Supervised - random (points) below which the study cannot tell representations apart.
SENSITIVITY_POINTS = 5.0


def tasks_of(results: dict[str, Any]) -> list[str]:
    """The tasks of a study's results, supervised task first."""
    return list(results["methods"]["random"])


def baseline_of(results: dict[str, Any]) -> str:
    """The name of a study's no-encoder baseline (its modality's, e.g. ``logmel``)."""
    return next(iter(results["baselines"]))


def modality_of(results: dict[str, Any]) -> M.Modality:
    """The modality a study ran on (results from before ``modality`` was recorded: audio)."""
    return M.get(results["config"].get("modality", M.DEFAULT))


def _cell(s: dict[str, Any]) -> str:
    """``mean ± std`` in %, or one value for one run or runs that agree (std below 0.05 %)."""
    if len(s.get("runs", [])) <= 1 or round(100 * s["std"], 1) == 0:
        return f"{100 * s['mean']:.1f}"
    return f"{100 * s['mean']:.1f} ± {100 * s['std']:.1f}"


def _diff_cell(d: dict[str, Any]) -> str:
    """A paired difference in points, with its 95 % interval when there is one."""
    ci = d["ci95"]
    text = f"{100 * d['mean']:+.1f}"
    return text + (f" [{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]" if ci else "")


def _word(ci: list[float] | None) -> str:
    """How a paired interval reads: beats, loses to, or is not separable from."""
    if ci is not None and ci[0] > 0:
        return "beats"
    if ci is not None and ci[1] < 0:
        return "loses to"
    return "is not separable from"


def verdicts(results: dict[str, Any]) -> list[str]:
    """Plain sentences computed from the numbers: per regime and task, who beats whom.

    A difference counts when its paired 95 % interval excludes zero (with one seed: never),
    and only when the sensitivity check passes; otherwise the first sentence says why there
    is no verdict, and there are no others. Fast-mode results get none at all.
    """
    if results["config"].get("fast"):
        return []
    tasks, baseline = tasks_of(results), baseline_of(results)
    label = modality_of(results).baseline_label
    sens = 100 * results["sensitivity"][f"{tasks[0]}_probe_0.1"]
    if sens < SENSITIVITY_POINTS:
        return [
            f"Sensitivity: supervised - random is {sens:+.1f} points on {tasks[0]} with 10 % of "
            f"the labels (< {SENSITIVITY_POINTS:.0f}): the probe cannot tell representations "
            "apart in this study, so no encoder is declared better than another."
        ]
    lines = [
        f"Sensitivity: supervised beats random by {sens:.1f} points on {tasks[0]} with 10 % "
        "of the labels, so the probe can see a better representation."
    ]
    for pair, by_regime in results["paired"].items():
        a, b = pair.split("-")
        for key, by_task in by_regime.items():
            for task, d in by_task.items():
                lines.append(
                    f"{key.replace('_', ' ')}, {task}: {a} {_word(d['ci95'])} {b} "
                    f"({_diff_cell(d)} points)."
                )
    for frac, by_method in results["regimes"]["probe"].items():
        for task in tasks:
            base = by_method[baseline][task]["accuracy"]["mean"]
            above = [m for m in METHODS if by_method[m][task]["accuracy"]["mean"] > base]
            lines.append(
                f"probe {frac}, {task}: above the {label} probe ({100 * base:.1f} %): "
                + (", ".join(above) if above else "none")
                + "."
            )
    return lines


def _header(results: dict[str, Any], h1: str) -> list[str]:
    """The title, the fast-mode warning, what the data were, and how the study was run."""
    cfg = results["config"]
    modality = modality_of(results)
    lines = [
        f"{h1} minis2l study ({modality.name}, {cfg.get('scale', '?')}): {cfg['patches']} "
        f"patches, K = {cfg['num_patches']}, {cfg['seeds']} seed(s), {cfg['epochs']} epochs",
        "",
    ]
    if cfg["fast"]:
        lines += [
            "**Fast mode**: a small slice of the data and a few steps of training, to check "
            "that the code runs. These numbers are too small to mean anything, so no verdicts "
            "are drawn from them.",
            "",
        ]
    lines += [
        f"{modality.describe(cfg)}; accuracy in %, mean ± std over seeds (one value: a single "
        f"run, or runs that agree, as the {modality.baseline_label} probe on all labels does); "
        "differences in points.",
        "",
    ]
    if "command" in cfg:
        lines += [
            f"Command: `{cfg['command']}`; code: {cfg['code_version']}; "
            f"{cfg['seconds'] / 60:.1f} min.",
            "",
        ]
    return lines


def _regime_tables(results: dict[str, Any], h2: str) -> list[str]:
    """One table per kind of regime (probe, fine-tuning): encoders x (task, label fraction)."""
    tasks, baseline = tasks_of(results), baseline_of(results)
    lines = []
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
    return lines


def _ablation_tables(results: dict[str, Any], h2: str) -> list[str]:
    """The patch-type ablation (test) and the layer and patch-type probes (valid)."""
    tasks = tasks_of(results)
    head = ["| {} | encoder | " + " | ".join(tasks) + " |", "|---" * (2 + len(tasks)) + "|"]
    lines = []
    if results["ablations"]["patches"]:
        lines += ["", f"{h2} Patch type (seed 0, probe on 100 %; accuracy %)", ""]
        lines += [head[0].format("patches"), head[1]]
        for kind, by_method in results["ablations"]["patches"].items():
            for m, r in by_method.items():
                cells = [_cell(r[t]["accuracy"]) for t in tasks]
                lines.append(f"| {kind} | {m} | " + " | ".join(cells) + " |")
    if INVESTIGATION in results:
        inv = results[INVESTIGATION]
        rows = [
            (f"layer {layer}", m, acc)
            for m, by in inv["layers"].items()
            for layer, acc in by.items()
        ]
        rows += [
            (f"{kind} patches", m, acc)
            for kind, by in inv["patches"].items()
            for m, acc in by.items()
        ]
        for key, by_method in inv.items():
            if key.startswith("combined_"):
                rows += [(key.removeprefix("combined_"), m, acc) for m, acc in by_method.items()]
        lines += ["", f"{h2} Layers and patch types (valid split only; probe accuracy %)", ""]
        lines += [head[0].format("what"), head[1]]
        for what, m, acc in rows:
            lines.append(
                f"| {what} | {m} | " + " | ".join(f"{100 * acc[t]:.1f}" for t in tasks) + " |"
            )
    return lines


def results_markdown(results: dict[str, Any], heading_level: int = 1) -> str:
    """The results as Markdown (accuracy in %, mean ± std over seeds; test split).

    ``heading_level`` is the level of the title; sections are one level below (use 3 or more
    to embed the tables under a notebook's own headings).
    """
    h1, h2 = "#" * heading_level, "#" * (heading_level + 1)
    lines = _header(results, h1) + _regime_tables(results, h2)
    if not results["config"]["fast"]:
        lines += ["", f"{h2} What the numbers say", ""]
        lines += [f"- {v}" for v in verdicts(results)]
    lines += _ablation_tables(results, h2)
    if results["pretext"]:
        lines += ["", f"{h2} Pretext task on valid (last epoch)", ""]
        cfg = results["config"]
        lines += pretext_table(results["pretext"], cfg["num_patches"], cfg["perm_set_size"])
    return "\n".join(lines) + "\n"


def pretext_table(pretext: dict[str, Any], num_patches: int, perm_set_size: int) -> list[str]:
    """The pretext methods on the same held-out shuffles from all K!, with chance, then jigsaw
    on its own set of P (a different, easier task), with its chance: Markdown lines."""
    k = num_patches
    p = min(perm_set_size, math.factorial(k))
    if any("all_perms" not in r for r in pretext.values()):  # results of older code
        return [
            "Recorded before both heads were scored on the same puzzles (rank on shuffles from "
            "all K!, jigsaw on its own set): run the study again for comparable numbers."
        ]
    lines = [
        f"Rank and jigsaw are scored on the same held-out shuffles, drawn from all K! = "
        f"{math.factorial(k)}; jigsaw answers with the member of its set it predicts. Its "
        f"score on shuffles from its own set of P = {p} is another task, shown apart.",
        "",
        "| method | shuffles from | exact reorder % | per position % | Spearman |",
        "|---|---|---|---|---|",
    ]

    def row(method: str, where: str, r: dict[str, Any]) -> str:
        s = r["spearman"]
        rho = f"{s['mean']:.3f}" + (f" ± {s['std']:.3f}" if len(s["runs"]) > 1 else "")
        return f"| {method} | {where} | {_cell(r['exact'])} | {_cell(r['per_position'])} | {rho} |"

    for m, r in pretext.items():
        lines.append(row(m, "all K!", r["all_perms"]))
    chance = f"{100 / math.factorial(k):.2g}"
    lines.append(f"| chance | all K! | {chance} (1/K!) | {100 / k:.1f} (1/K) | 0 |")
    for m, r in pretext.items():
        if "own_set" in r:
            lines.append(row(m, f"its own set of {p}", r["own_set"]))
    if any("own_set" in r for r in pretext.values()):
        lines.append(f"| chance | its own set of {p} | {100 / p:.2g} (1/P) | | |")
    return lines
