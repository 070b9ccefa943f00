"""The study's figures: accuracy per encoder, accuracy against label fraction, pretext curves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from minis2l.io import atomic_write
from minis2l.study.config import METHODS
from minis2l.study.report import baseline_of, modality_of, tasks_of

#: One colour per encoder (a qualitative palette); the no-encoder baseline is black.
COLORS = {"random": "#7f7f7f", "jigsaw": "#d95f02", "rank": "#1b9e77", "supervised": "#7570b3"}
BASELINE_COLOR = "#000000"


def _save(fig: Any, path: Path) -> Path:
    atomic_write(path, lambda p: fig.savefig(p, format="png", dpi=110))
    return path


def _accuracy(results: dict[str, Any]) -> Any:
    """Bars: each encoder's probe accuracy on all train labels, per task; the baseline as a
    dashed line."""
    from matplotlib.figure import Figure  # no pyplot: leaves a notebook's backend alone

    tasks, baseline = tasks_of(results), baseline_of(results)
    fig = Figure(figsize=(4.5 * len(tasks), 3.6))
    axes = fig.subplots(1, len(tasks), squeeze=False)[0]
    for ax, task in zip(axes, tasks, strict=True):
        r = results["methods"]
        means = [100 * r[m][task]["accuracy"]["mean"] for m in METHODS]
        stds = [100 * r[m][task]["accuracy"]["std"] for m in METHODS]
        ax.bar(METHODS, means, yerr=stds, capsize=4, color=[COLORS[m] for m in METHODS])
        base = 100 * results["baselines"][baseline][task]["accuracy"]["mean"]
        label = f"{modality_of(results).baseline_label} probe"
        ax.axhline(base, ls="--", c=BASELINE_COLOR, lw=1, label=label)
        ax.set_title(f"{task}: linear probe, all train labels")
        ax.set_ylabel("test accuracy (%)")
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def _label_fraction(results: dict[str, Any]) -> Any:
    """Lines: accuracy against the fraction of train labels, per regime kind and task."""
    from matplotlib.figure import Figure

    tasks, baseline = tasks_of(results), baseline_of(results)
    kinds = [k for k in ("probe", "finetune") if results["regimes"][k]]
    fig = Figure(figsize=(5 * len(tasks), 3.2 * len(kinds)))
    axes = fig.subplots(len(kinds), len(tasks), squeeze=False)
    for row, kind in enumerate(kinds):
        fracs = results["regimes"][kind]
        xs = [float(f) for f in fracs]
        for ax, task in zip(axes[row], tasks, strict=True):
            present = next(iter(fracs.values()))  # JSON sorts its keys: keep this order
            for m in [x for x in (*METHODS, baseline) if x in present]:
                r = [fracs[f][m][task]["accuracy"] for f in fracs]
                ax.errorbar(
                    xs,
                    [100 * x["mean"] for x in r],
                    yerr=[100 * x["std"] for x in r],
                    marker="o",
                    capsize=3,
                    label=m,
                    color=COLORS.get(m, BASELINE_COLOR),
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
    return fig


def _curves(results: dict[str, Any]) -> Any:
    """Per-epoch valid curves: the pretexts' Spearman, the supervised reference's accuracy."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

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
    axes[0].set_title("pretext on valid: Spearman, shuffles from all K!")
    axes[0].set_ylabel("Spearman")
    axes[1].set_title(f"supervised on valid: {tasks_of(results)[0]} accuracy")
    axes[1].set_ylabel("accuracy")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # whole epochs only
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_results(results: dict[str, Any], out: str | Path) -> list[Path]:
    """Write ``accuracy.png``, ``label_fraction.png`` and (with curves) ``pretext_curves.png``
    into ``out``; return their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [
        _save(_accuracy(results), out / "accuracy.png"),
        _save(_label_fraction(results), out / "label_fraction.png"),
    ]
    if results["curves"]:
        paths.append(_save(_curves(results), out / "pretext_curves.png"))
    return paths
