"""The permutation sweep (rank against jigsaw as K grows): its schema, end to end at the fast
scale, and the committed ``results/permutations`` against what ``make study-permutations`` runs."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest

from minis2l.study.permutations import SweepConfig, run_sweep
from minis2l.study.permutations_report import reading, sweep_markdown

ROOT = Path(__file__).resolve().parents[1]
TASKS = ("family", "pitch")
METRICS = {"exact", "per_position", "spearman"}


def _summary_ok(s: dict, seeds: int) -> None:
    assert s.keys() == {"mean", "std", "runs"} and len(s["runs"]) == seeds
    assert s["mean"] == pytest.approx(np.mean(s["runs"]))


def expected_points(cfg: dict) -> set[tuple]:
    """(K, P or None, method) of every point a sweep with config ``cfg`` must report."""
    refs = cfg["reference_patches"] or cfg["num_patches"]
    out = set()
    for k in cfg["num_patches"]:
        out |= {(k, None, "rank"), (k, min(cfg["perm_set_size"], math.factorial(k)), "jigsaw")}
        if k in refs:
            out |= {(k, None, "random"), (k, None, "supervised")}
    k = cfg["set_sizes_at"]
    out |= {(k, min(p, math.factorial(k)), "jigsaw") for p in cfg["set_sizes"]}
    return out


def check_sweep_schema(results: dict) -> None:
    """The keys, shapes and arithmetic the sweep's ``results.json`` promises (the schema in
    minis2l.study.permutations), recomputed from its own points."""
    assert results.keys() == {"config", "sensitivity", "points", "paired"}
    cfg = results["config"]
    seeds, fracs = cfg["seeds"], [str(f) for f in cfg["probe_fractions"]]
    assert cfg["command"] and cfg["code_version"].startswith("minis2l") and cfg["seconds"] > 0
    points = {(p["num_patches"], p["perm_set_size"], p["method"]): p for p in results["points"]}
    assert len(points) == len(results["points"]) and set(points) == expected_points(cfg)
    for (_, _, method), pt in points.items():
        assert pt.keys() == {"num_patches", "perm_set_size", "method", "pretext", "probe"}
        assert list(pt["probe"]) == fracs
        for by_task in pt["probe"].values():
            assert tuple(by_task) == TASKS
            for r in by_task.values():
                assert r.keys() == {"accuracy"}
                _summary_ok(r["accuracy"], seeds)
        want = {"rank": {"all_perms"}, "jigsaw": {"all_perms", "own_set"}}.get(method, set())
        assert pt["pretext"].keys() == want
        for r in pt["pretext"].values():
            assert r.keys() == METRICS
            for s in r.values():
                _summary_ok(s, seeds)

    def runs(k, p, method, frac, task):
        return np.array(points[(k, p, method)]["probe"][frac][task]["accuracy"]["runs"])

    refs = cfg["reference_patches"] or cfg["num_patches"]
    want_pairs = {
        (k, p, "rank-jigsaw", f"probe_{f}", t)
        for k, p, m in points
        if m == "jigsaw"
        for f in fracs
        for t in TASKS
    } | {(k, None, "rank-random", f"probe_{f}", t) for k in refs for f in fracs for t in TASKS}
    got = {
        (d["num_patches"], d["perm_set_size"], d["pair"], d["regime"], d["task"])
        for d in results["paired"]
    }
    assert got == want_pairs and len(results["paired"]) == len(want_pairs)
    for d in results["paired"]:
        assert d.keys() == {
            "num_patches",
            "perm_set_size",
            "pair",
            "regime",
            "task",
            "mean",
            "ci95",
        }
        other = d["pair"].split("-")[1]
        frac = d["regime"].removeprefix("probe_")
        diff = runs(d["num_patches"], None, "rank", frac, d["task"]) - runs(
            d["num_patches"], d["perm_set_size"], other, frac, d["task"]
        )
        assert d["mean"] == pytest.approx(diff.mean())
        assert d["ci95"] is None if seeds == 1 else d["ci95"][0] <= d["mean"] <= d["ci95"][1]
    frac = "0.1" if "0.1" in fracs else fracs[0]
    assert results["sensitivity"].keys() == {f"family_probe_{frac}"}
    sens = results["sensitivity"][f"family_probe_{frac}"]
    assert set(sens) == {str(k) for k in refs}
    for k, v in sens.items():
        gap = runs(int(k), None, "supervised", frac, "family") - runs(
            int(k), None, "random", frac, "family"
        )
        assert v == pytest.approx(gap.mean())


def test_fast_sweep_runs_end_to_end_and_resumes(tmp_path, capsys):
    cfg = SweepConfig.for_scale("fast", device="cpu")
    results = run_sweep(cfg, tmp_path)
    on_disk = json.loads((tmp_path / "results.json").read_text())
    check_sweep_schema(on_disk)
    assert on_disk["config"]["fast"] and results["config"]["num_patches"] == [3, 4]
    assert (tmp_path / "differences.png").stat().st_size > 0
    text = (tmp_path / "results.md").read_text()
    assert text == sweep_markdown(on_disk) and "Fast mode" in text and " beats " not in text
    # The jigsaw set reaches K! at K = 3 (6 orders): labelled so.
    assert "| jigsaw | all 6 |" in text
    # Readings follow the intervals once the sweep is sensitive, and say nothing when not.
    full = json.loads(json.dumps(on_disk))
    full["config"]["fast"] = False
    key = next(iter(full["sensitivity"]))
    full["sensitivity"][key] = {k: 0.5 for k in full["sensitivity"][key]}
    for d in full["paired"]:
        ci, (a, b) = d["ci95"], d["pair"].split("-")
        word = "beats" if ci[0] > 0 else "loses to" if ci[1] < 0 else "is not separable from"
        assert reading(full, d) == f"{a} {word} {b}"
    full["sensitivity"][key] = {k: 0.01 for k in full["sensitivity"][key]}
    assert all(reading(full, d).startswith("no verdict") for d in full["paired"])
    # A second run reuses every encoder: nothing is trained again.
    capsys.readouterr()
    again = run_sweep(cfg, tmp_path)
    assert "/ seed" not in capsys.readouterr().out
    assert again["paired"] == results["paired"]


def test_sweep_config_refuses_what_it_cannot_run():
    with pytest.raises(ValueError, match="set_sizes_at"):
        SweepConfig(num_patches=[4, 6], set_sizes_at=9)
    with pytest.raises(ValueError, match="reference_patches"):
        SweepConfig(num_patches=[4, 6], set_sizes_at=4, reference_patches=[16])
    with pytest.raises(ValueError, match="distinct"):  # 100 and 1000 are both all 4! = 24
        SweepConfig(num_patches=[4], set_sizes_at=4, set_sizes=[100, 1000], reference_patches=None)
    with pytest.raises(ValueError, match="scale"):
        SweepConfig.for_scale("huge")
    default = SweepConfig.for_scale("default")
    assert len(default.num_patches) >= 5 and max(default.num_patches) >= 16
    assert {10, 100, 1000} <= set(default.set_sizes) and default.set_sizes_at >= 9
    assert default.seeds >= 3 and set(default.probe_fractions) == {0.1, 1.0}


def test_committed_sweep_matches_what_make_study_permutations_runs():
    """results/permutations holds the last `make study-permutations`: its schema, its config
    equal to today's default scale, and its run within the 150-minute budget.

    Fails until the sweep is run and committed (`make study-permutations`, about 2 hours on
    2 cores), and again whenever the default scale changes without a re-run.
    """
    path = ROOT / "results" / "permutations" / "results.json"
    assert path.is_file(), f"{path} is missing: run `make study-permutations` and commit it"
    results = json.loads(path.read_text())
    check_sweep_schema(results)
    today = dataclasses.asdict(SweepConfig.for_scale("default"))
    for key, value in today.items():
        if key not in ("device", "soundfonts"):  # soundfonts: resolved to names and checksums
            assert results["config"][key] == value, key
    assert "minis2l permutations" in results["config"]["command"]
    assert "--scale fast" not in results["config"]["command"]
    assert results["config"]["seconds"] <= 150 * 60, "the sweep should take at most 150 minutes"
    for name in ("results.md", "differences.png"):
        assert (path.parent / name).is_file(), name
    text = (path.parent / "results.md").read_text()
    assert results["config"]["command"] in text and results["config"]["code_version"] in text
