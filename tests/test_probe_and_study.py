"""Linear probes against scikit-learn, label subsampling, and the study's outputs."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
from sklearn.linear_model import RidgeClassifier

from minis2l import probe, study


def _blobs(n: int, seed: int, classes: int = 4, dim: int = 20):
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).normal(size=(classes, dim)) * 2
    y = rng.integers(0, classes, n)
    return centres[y] + rng.normal(size=(n, dim)), y * 3 + 10  # labels need not be 0..C-1


def test_ridge_probe_matches_scikit_learn():
    train, valid, test = _blobs(300, 0), _blobs(100, 1), _blobs(200, 2)
    result = probe.fit_probe(train, valid, test)
    assert result["alpha"] in probe.RIDGE_GRID
    mean, std = train[0].mean(0), train[0].std(0) + 1e-6
    clf = RidgeClassifier(alpha=result["alpha"] * len(train[0]), solver="svd")
    clf.fit((train[0] - mean) / std, train[1])
    expected = clf.score((test[0] - mean) / std, test[1])
    assert result["accuracy"] == pytest.approx(expected)
    assert result["accuracy"] > 0.9  # well-separated blobs


def test_penalty_is_chosen_on_valid_not_test():
    train, valid, test = _blobs(200, 3), _blobs(100, 4), _blobs(100, 5)
    scrambled = (test[0], np.random.default_rng(0).permutation(test[1]))
    a = probe.fit_probe(train, valid, test)
    b = probe.fit_probe(train, valid, scrambled)
    assert a["alpha"] == b["alpha"] and a["valid_accuracy"] == b["valid_accuracy"]


def test_subsample_is_stratified_and_deterministic():
    labels = np.repeat(np.arange(5), [100, 50, 10, 3, 1])
    idx = probe.subsample(labels, 0.1, seed=0)
    kept = np.bincount(labels[idx], minlength=5)
    assert kept.tolist() == [10, 5, 1, 1, 1]  # at least one per class
    assert np.array_equal(idx, probe.subsample(labels, 0.1, seed=0))
    assert len(probe.subsample(labels, 1.0, seed=0)) == len(labels)
    with pytest.raises(ValueError, match="label fraction"):
        probe.subsample(labels, 0.0, seed=0)


def test_fast_study_writes_the_promised_results(tmp_path):
    args = argparse.Namespace(
        soundfont=None,
        seeds=2,
        out=str(tmp_path),
        patches="freq",
        num_patches=4,
        perm_set_size=10,
        epochs=1,
        device="cpu",
        no_ablations=False,
        progress=False,
    )
    results = study.run_study(args)
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert on_disk["methods"].keys() == {"random", "jigsaw", "rank", "supervised"}
    for method in on_disk["methods"].values():
        for task in ("family", "pitch"):
            for metric in ("accuracy", "macro_f1"):
                s = method[task][metric]
                assert len(s["runs"]) == 2 and 0 <= s["mean"] <= 1
                assert s["mean"] == pytest.approx(np.mean(s["runs"]))
    assert set(on_disk["ablations"]["patches"]) == {"time", "freq", "2d"}
    assert set(on_disk["ablations"]["label_fraction"]) == {"0.01", "0.1", "1.0"}
    full = on_disk["ablations"]["label_fraction"]["1.0"]
    assert full["rank"] == on_disk["methods"]["rank"]
    for name in ("results.md", "accuracy.png", "label_fraction.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert "| rank |" in (tmp_path / "results.md").read_text()
    assert results["config"]["seeds"] == 2
