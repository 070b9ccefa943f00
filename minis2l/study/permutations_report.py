"""The permutation sweep's results (:mod:`minis2l.study.permutations`) as Markdown, verdicts
read from its intervals, and its figure: rank - jigsaw and rank - random against K!.

A difference is read as a verdict only where its paired 95 % interval excludes zero and the
sweep can see a better representation at that K at all (supervised - random at least
:data:`~minis2l.study.report.SENSITIVITY_POINTS` points; where the references did not run,
the smallest sensitivity measured is used). Fast-mode results get no verdicts.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from minis2l.io import atomic_write
from minis2l.study.report import SENSITIVITY_POINTS, _cell, _diff_cell, _word


def tasks_of(results: dict[str, Any]) -> list[str]:
    """The sweep's tasks, supervised task first."""
    return list(next(iter(results["points"][0]["probe"].values())))


def sensitivity_at(results: dict[str, Any], k: int) -> tuple[float, bool]:
    """(supervised - random in points, whether measured at this K): at a K without the
    references, the smallest sensitivity the sweep measured."""
    by_k = next(iter(results["sensitivity"].values()))
    if str(k) in by_k:
        return 100 * by_k[str(k)], True
    return 100 * min(by_k.values()), False


def reading(results: dict[str, Any], d: dict[str, Any]) -> str:
    """What a paired difference says: ``"rank beats jigsaw"``, ``"... loses to ..."``,
    ``"... is not separable from ..."``, or why it says nothing (fast mode, sensitivity)."""
    if results["config"].get("fast"):
        return "no verdict (fast mode)"
    sens, _ = sensitivity_at(results, d["num_patches"])
    if sens < SENSITIVITY_POINTS:
        return f"no verdict (sensitivity {sens:+.1f} < {SENSITIVITY_POINTS:.0f} points)"
    a, b = d["pair"].split("-")
    return f"{a} {_word(d['ci95'])} {b}"


def _size(point: dict[str, Any]) -> str:
    """The fixed set's size as a cell (``all 24`` when P reaches K!)."""
    p, k = point["perm_set_size"], point["num_patches"]
    if p is None:
        return ""
    return f"all {p}" if p == math.factorial(k) else str(p)


def sweep_markdown(results: dict[str, Any]) -> str:
    """The sweep's tables: sensitivity, probes, pretext on the same puzzles, paired
    differences with what each says."""
    cfg, tasks = results["config"], tasks_of(results)
    fracs = list(results["points"][0]["probe"])
    lines = [
        f"# Rank against jigsaw as K grows (minis2l, {cfg['scale']}): {cfg['patches']} patches, "
        f"K in {cfg['num_patches']}, {cfg['seeds']} seed(s), {cfg['epochs']} epoch(s)",
        "",
    ]
    if cfg["fast"]:
        lines += [
            "**Fast mode**: a smoke test; these numbers mean nothing and get no verdicts.",
            "",
        ]
    lines += [
        f"{cfg.get('notes', '?')} notes; test accuracy in %, mean ± std over seeds; differences "
        f"in points. jigsaw's fixed set: P = {cfg['perm_set_size']} at every K (capped at K!), "
        f"and {cfg['set_sizes']} at K = {cfg['set_sizes_at']}.",
        "",
    ]
    if "command" in cfg:
        lines += [
            f"Command: `{cfg['command']}`; code: {cfg['code_version']}; "
            f"{cfg['seconds'] / 60:.1f} min.",
            "",
        ]
    key, by_k = next(iter(results["sensitivity"].items()))
    lines += ["## Sensitivity", "", f"supervised - random, {key.replace('_', ' ')}:", ""]
    for k, v in by_k.items():
        ok = (
            "the probe can see a better representation"
            if 100 * v >= SENSITIVITY_POINTS
            else (f"under {SENSITIVITY_POINTS:.0f}: the probe cannot tell representations apart")
        )
        lines.append(f"- K = {k}: {100 * v:+.1f} points ({ok})")
    head = [f"{t} {float(f):g}" for t in tasks for f in fracs]
    lines += ["", "## Linear probes", "", "| K | K! | method | P | " + " | ".join(head) + " |"]
    lines.append("|---" * (4 + len(head)) + "|")
    for pt in results["points"]:
        k = pt["num_patches"]
        cells = [_cell(pt["probe"][f][t]["accuracy"]) for t in tasks for f in fracs]
        lines.append(
            f"| {k} | {math.factorial(k):.3g} | {pt['method']} | {_size(pt)} | "
            + " | ".join(cells)
            + " |"
        )
    lines += _pretext_lines(results) + _paired_lines(results)
    return "\n".join(lines) + "\n"


def _pretext_lines(results: dict[str, Any]) -> list[str]:
    """The pretext table: rank and jigsaw on the same held-out shuffles, jigsaw on its set."""
    lines = ["", "## Pretext on valid: the same held-out shuffles from all K!", ""]
    lines += [
        "| K | method | P | exact % (chance 1/K!) | per position % (chance 1/K) | Spearman | "
        "jigsaw on its own set, exact % (chance 1/P) |",
        "|---|---|---|---|---|---|---|",
    ]
    for pt in results["points"]:
        if not pt["pretext"]:
            continue
        r, own = pt["pretext"]["all_perms"], pt["pretext"].get("own_set")
        lines.append(
            f"| {pt['num_patches']} | {pt['method']} | {_size(pt)} | {_cell(r['exact'])} | "
            f"{_cell(r['per_position'])} | {r['spearman']['mean']:.3f} | "
            f"{_cell(own['exact']) if own else ''} |"
        )
    return lines


def _paired_lines(results: dict[str, Any]) -> list[str]:
    """The paired differences, each with what it reads as."""
    cfg = results["config"]
    lines = ["", "## Paired differences (points, [95 % interval])", ""]
    lines += [
        "| K | P | pair | regime | task | difference | reads |",
        "|---|---|---|---|---|---|---|",
    ]
    for d in results["paired"]:
        size = "" if d["perm_set_size"] is None else str(d["perm_set_size"])
        measured = sensitivity_at(results, d["num_patches"])[1]
        note = "" if measured or cfg["fast"] else " *"
        lines.append(
            f"| {d['num_patches']} | {size} | {d['pair']} | {d['regime'].replace('_', ' ')} | "
            f"{d['task']} | {_diff_cell(d)} | {reading(results, d)}{note} |"
        )
    if any(not sensitivity_at(results, k)[1] for k in cfg["num_patches"]):
        lines += [
            "",
            "\\* random and supervised did not run at this K: read with the smallest "
            "sensitivity the sweep measured.",
        ]
    return lines


#: Colours: rank - jigsaw with the sweep's P (and other set sizes), rank - random.
_COLORS = ["#d95f02", "#e7298a", "#66a61e", "#e6ab02"]
_RANDOM_COLOR = "#7f7f7f"


def _series(results: dict[str, Any], task: str) -> dict[tuple[str, int | None, str], list]:
    """``(pair, P, regime) -> [(K, mean, ci95)]`` for one task, by K. The sweep's own P is
    ``None`` for rank - jigsaw (capped at K!, so it changes with K at small K)."""
    base = results["config"]["perm_set_size"]
    out: dict[tuple[str, int | None, str], list] = {}
    for d in results["paired"]:
        if d["task"] != task:
            continue
        p, k = d["perm_set_size"], d["num_patches"]
        if d["pair"] == "rank-jigsaw" and p == min(base, math.factorial(k)):
            p = None
        out.setdefault((d["pair"], p, d["regime"]), []).append((k, d["mean"], d["ci95"]))
    return out


def _big(k: int) -> str:
    """K! as a tick label: ``720``, ``3.6e+05``."""
    n = math.factorial(k)
    return f"{n}" if n < 10_000 else f"{n:.1e}"


def plot_sweep(results: dict[str, Any], out: str | Path) -> Path:
    """``differences.png``: rank - jigsaw and rank - random (points, 95 % intervals) against
    K! on a log scale, one panel per task; solid lines at the smallest label fraction."""
    from matplotlib.figure import Figure

    tasks = tasks_of(results)
    ks = results["config"]["num_patches"]
    fracs = list(results["points"][0]["probe"])
    fig = Figure(figsize=(5.5 * len(tasks), 4.2))
    axes = fig.subplots(1, len(tasks), squeeze=False)[0]
    for ax, task in zip(axes, tasks, strict=True):
        series = _series(results, task)
        sizes = sorted({p for _, p, _ in series if p is not None})
        for j, ((pair, p, regime), rows) in enumerate(sorted(series.items(), key=str)):
            if pair == "rank-random":
                color, name = _RANDOM_COLOR, "rank - random"
            else:
                color = _COLORS[0 if p is None else 1 + sizes.index(p) % 3]
                name = (
                    f"rank - jigsaw (P = {results['config']['perm_set_size'] if p is None else p})"
                )
            shift = 1.12 ** ((j % 5) - 2)  # spread the points of one K apart a little
            xs = [math.factorial(k) * shift for k, _, _ in rows]
            ys = [100 * m for _, m, _ in rows]
            err = [
                [100 * (m - (ci or [m, m])[0]) for _, m, ci in rows],
                [100 * ((ci or [m, m])[1] - m) for _, m, ci in rows],
            ]
            frac = regime.removeprefix("probe_")
            ax.errorbar(
                xs,
                ys,
                yerr=err,
                marker="o" if frac == fracs[0] else "s",
                ls="-" if frac == fracs[0] else "--",
                color=color,
                capsize=3,
                label=f"{name}, {100 * float(frac):g} % labels",
            )
        ax.axhline(0, color="black", lw=0.8)
        ax.set_xscale("log")
        ax.set_xticks([math.factorial(k) for k in ks], [f"K = {k}\n{_big(k)}" for k in ks])
        ax.minorticks_off()
        ax.set_xlabel("size of the permutation space, K! (log scale)")
        ax.set_ylabel("paired difference, points (95 % interval)")
        ax.set_title(f"{task}: linear probe")
        ax.legend(fontsize=7)
    fig.tight_layout()
    path = Path(out) / "differences.png"
    atomic_write(path, lambda p: fig.savefig(p, format="png", dpi=110))
    return path
