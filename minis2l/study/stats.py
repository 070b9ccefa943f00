"""Summaries over seeds and the paired differences between encoders."""

from __future__ import annotations

from typing import Any

import numpy as np

#: The metrics of one probe or fine-tuning run that the study keeps.
METRICS = ("accuracy", "macro_f1")


def summary(values: list[float]) -> dict[str, Any]:
    """``{"mean", "std", "runs"}`` of one number over seeds (population std)."""
    arr = np.asarray(values, dtype=float)
    return {"mean": float(arr.mean()), "std": float(arr.std()), "runs": [float(v) for v in arr]}


def collect(runs: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, Any]]:
    """``[{task: {"accuracy", "macro_f1", ...}}]`` over seeds -> ``{task: {metric: summary}}``."""
    return {task: {m: summary([r[task][m] for r in runs]) for m in METRICS} for task in runs[0]}


def mean_runs(runs: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Average several probe results (label subsets) into one."""
    metrics = (*METRICS, "valid_accuracy")
    return {
        task: {m: float(np.mean([r[task][m] for r in runs])) for m in metrics} for task in runs[0]
    }


def paired_difference(a: list[float], b: list[float]) -> dict[str, Any]:
    """Mean of ``a[s] - b[s]`` over seeds and its 95 % t-interval (None with one seed)."""
    from scipy import stats

    if len(a) != len(b) or not len(a):
        raise ValueError(
            f"paired values need the same seeds on both sides, got {len(a)} and {len(b)}"
        )
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    mean = float(d.mean())
    if len(d) < 2:
        return {"mean": mean, "ci95": None, "runs": d.tolist()}
    half = float(stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d)))
    return {"mean": mean, "ci95": [mean - half, mean + half], "runs": d.tolist()}
