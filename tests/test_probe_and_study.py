"""Linear probes against scikit-learn, label subsampling, and the study's outputs."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.linear_model import RidgeClassifier

from minis2l import modality as M
from minis2l import probe, study
from minis2l.config import REPO_ROOT, repo_relative
from minis2l.data import POOL
from minis2l.finetune import FinetuneConfig, finetune
from minis2l.items import Items
from minis2l.models import PermutationModel
from minis2l.pretrain import PretrainConfig

ROOT = Path(__file__).resolve().parents[1]


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


def test_paired_difference_matches_scipys_one_sample_t_interval():
    from scipy import stats

    a, b = [0.61, 0.58, 0.66, 0.60], [0.55, 0.57, 0.59, 0.50]
    d = study.paired_difference(a, b)
    ci = stats.ttest_1samp(np.subtract(a, b), 0.0).confidence_interval(0.95)
    assert d["mean"] == pytest.approx(np.mean(np.subtract(a, b)))
    assert d["ci95"] == pytest.approx([ci.low, ci.high])
    assert study.paired_difference([0.5], [0.4])["ci95"] is None


def _toy_notes(n: int, seed: int):
    """Log-mel-shaped inputs whose class is which frequency band is bright."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.normal(size=(n, 64, 63)).astype(np.float32)
    for i, c in enumerate(y):
        x[i, 20 * c : 20 * c + 20] += 2.0
    return x, y + 40  # labels need not be 0..C-1


def test_finetune_learns_leaves_the_model_alone_and_stops_on_valid():
    torch.manual_seed(0)
    model = PermutationModel("rank", "freq", 4, dim=16)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train, valid, test = _toy_notes(96, 0), _toy_notes(60, 1), _toy_notes(60, 2)
    cfg = FinetuneConfig(steps=40, batch_size=16, eval_every=10, max_valid=60)
    a = finetune(model, train, valid, test, cfg, seed=0)
    assert a["accuracy"] > 0.8 and a["best_step"] in (10, 20, 30, 40)
    scrambled = (test[0], np.random.default_rng(0).permutation(test[1]))
    b = finetune(model, train, valid, scrambled, cfg, seed=0)
    assert (a["best_step"], a["valid_accuracy"]) == (b["best_step"], b["valid_accuracy"])
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, before[k])
    with pytest.raises(ValueError, match="steps"):
        FinetuneConfig(steps=0)


#: (tasks, baseline, fine-tuning fractions) of each modality's results.
SCHEMA = {
    "audio": (("family", "pitch"), "logmel", {"0.01", "0.1"}),
    "image": (("class",), "pixels", set()),
    "video": (("class", "direction"), "pixels", set()),
}


def check_results_schema(results: dict, seeds: int, modality: str = "audio") -> None:
    """The keys and shapes ``results.json`` promises (see the docstring of minis2l.study)."""
    tasks, baseline, finetune = SCHEMA[modality]
    first = tasks[0]
    assert results["config"].get("modality", "audio") == modality
    methods = {"random", "jigsaw", "rank", "supervised"}
    assert results["methods"].keys() == methods
    assert set(results["regimes"]) == {"probe", "finetune"}
    assert set(results["regimes"]["probe"]) == {"0.01", "0.1", "1.0"}
    assert set(results["regimes"]["finetune"]) == finetune
    for kind, fracs in results["regimes"].items():
        for by_method in fracs.values():
            assert by_method.keys() == (methods | {baseline} if kind == "probe" else methods)
            for r in by_method.values():
                assert tuple(r) == tasks
                for task in tasks:
                    s = r[task]["accuracy"]
                    assert len(s["runs"]) == seeds and 0 <= s["mean"] <= 1
                    assert s["mean"] == pytest.approx(np.mean(s["runs"]))
    assert results["methods"]["rank"] == results["regimes"]["probe"]["1.0"]["rank"]
    assert results["baselines"][baseline] == results["regimes"]["probe"]["1.0"][baseline]
    fam = results["regimes"]["probe"]["0.1"]
    assert results["sensitivity"][f"{first}_probe_0.1"] == pytest.approx(
        fam["supervised"][first]["accuracy"]["mean"] - fam["random"][first]["accuracy"]["mean"]
    )
    keys = {"probe_0.01", "probe_0.1", "probe_1.0"} | {f"finetune_{f}" for f in finetune}
    assert set(results["paired"]) == {"rank-jigsaw", "rank-random"}
    for pair, by_key in results["paired"].items():
        assert set(by_key) == keys
        a, b = pair.split("-")
        for key, by_task in by_key.items():
            kind, frac = key.split("_")
            for task, d in by_task.items():
                r = results["regimes"][kind][frac]
                diff = np.subtract(r[a][task]["accuracy"]["runs"], r[b][task]["accuracy"]["runs"])
                assert d["mean"] == pytest.approx(diff.mean())
                if seeds == 1:
                    assert d["ci95"] is None
                else:
                    assert d["ci95"][0] <= d["mean"] <= d["ci95"][1]
    cfg = results["config"]
    assert cfg["seeds"] == seeds
    if modality == "audio":
        assert cfg["notes"] > 0 and cfg["soundfonts"]
        assert all(
            set(sf) == {"name", "sha256"} and len(sf["sha256"]) == 64 for sf in cfg["soundfonts"]
        )
    else:
        assert cfg["source"] and all(n > 0 for n in cfg["counts"].values())
        assert not re.search(r"/(usr|home|root|tmp|work|opt)/", cfg["source"]), cfg["source"]
    assert cfg["command"] and cfg["code_version"].startswith("minis2l")
    if cfg.get("data") is not None:  # inside the repository: recorded relative to it
        assert not Path(cfg["data"]).is_absolute(), cfg["data"]
    assert results["curves"].keys() == {"jigsaw", "rank", "supervised"}
    assert all(len(runs) == seeds for runs in results["curves"].values())
    check_pretext_schema(results["pretext"], seeds, cfg["num_patches"])


def check_pretext_schema(pretext: dict, seeds: int, num_patches: int) -> None:
    """``pretext[method]["all_perms"]`` for rank and jigsaw (the same puzzles from all K!),
    ``pretext["jigsaw"]["own_set"]``, each metric ``{"mean", "std", "runs"}`` over seeds."""
    metrics = {"exact", "per_position", "spearman"}
    assert pretext.keys() == {"rank", "jigsaw"}
    assert pretext["rank"].keys() == {"all_perms"}
    assert pretext["jigsaw"].keys() == {"all_perms", "own_set"}
    for by_set in pretext.values():
        for r in by_set.values():
            assert r.keys() == metrics
            for name, s in r.items():
                assert s.keys() == {"mean", "std", "runs"} and len(s["runs"]) == seeds
                assert s["mean"] == pytest.approx(np.mean(s["runs"]))
                low = -1 if name == "spearman" else 0
                assert all(low <= v <= 1 for v in s["runs"]), (name, s)
            # Every piece in place implies every position right: exact <= per position.
            assert r["exact"]["mean"] <= r["per_position"]["mean"] + 1e-9


def test_repo_relative_names_no_machine_folder(tmp_path):
    inside = REPO_ROOT / "data" / "cache" / "notes-x"
    assert repo_relative(inside) == "data/cache/notes-x"
    assert repo_relative(tmp_path) == str(tmp_path)  # outside the repository: as given


def test_fast_study_writes_the_promised_results(tmp_path):
    cfg = study.StudyConfig.for_scale("fast", num_patches=4, perm_set_size=10, device="cpu")
    results = study.run_study(cfg, tmp_path)
    on_disk = json.loads((tmp_path / "results.json").read_text())
    check_results_schema(on_disk, seeds=2)
    assert on_disk["config"]["scale"] == "fast" and results["config"]["seeds"] == 2
    for name in ("results.md", "accuracy.png", "label_fraction.png", "pretext_curves.png"):
        assert (tmp_path / name).stat().st_size > 0
    # Every encoder's config.json names the data the way the results do: no machine's folders.
    runs = sorted((tmp_path / "runs").glob("*/config.json"))
    assert runs
    for path in runs:
        data = json.loads(path.read_text())["data"]
        assert data == on_disk["config"]["data"] and not Path(data).is_absolute(), path
    text = (tmp_path / "results.md").read_text()
    assert "| rank |" in text and "Fine-tuning" in text and "± 0.0 |" not in text
    # Fast mode: said once, before the first table, and no verdicts.
    assert text.count("too small to mean anything") == 1
    assert text.index("too small to mean anything") < text.index("| encoder |")
    assert study.verdicts(on_disk) == [] and "What the numbers say" not in text
    check_verdicts(on_disk)


def check_verdicts(results: dict) -> None:
    """The verdicts of ``results`` read as full-size results, against their paired intervals:
    with a passing sensitivity check, one sentence per pair, regime and task; with a failing
    one, no sentence that declares an encoder better."""
    full = json.loads(json.dumps(results))
    full["config"]["fast"] = False
    first = next(iter(full["sensitivity"]))
    full["sensitivity"][first] = 0.5  # supervised 50 points above random: sensitive
    lines = [v for v in study.verdicts(full) if v.startswith(("probe", "finetune"))]
    pairs = [(p, k, t) for p, by in full["paired"].items() for k in by for t in by[k]]
    assert len(lines) >= len(pairs)
    for line, (pair, key, task) in zip(lines, pairs, strict=False):
        ci = full["paired"][pair][key][task]["ci95"]
        word = "beats" if ci and ci[0] > 0 else "loses to" if ci and ci[1] < 0 else "is not"
        assert line.startswith(f"{key.replace('_', ' ')}, {task}: {pair.split('-')[0]} {word}")
        assert line.endswith("points).") and "%" not in line
    full["sensitivity"][first] = 0.01  # one point: the probe cannot tell encoders apart
    insensitive = study.verdicts(full)
    assert len(insensitive) == 1 and "+1.0 points" in insensitive[0]
    assert not any(w in insensitive[0] for w in ("beats", "loses to", "above"))
    markdown = study.results_markdown(full)
    assert insensitive[0] in markdown and " beats " not in markdown
    # Results written before both heads met the same puzzles still read, with a warning.
    old = json.loads(json.dumps(full))
    old["pretext"] = {
        m: {"valid_exact": r["all_perms"]["exact"]} for m, r in old["pretext"].items()
    }
    assert "Recorded before both heads" in study.results_markdown(old)


@pytest.mark.parametrize("modality", ["image", "video"])
def test_image_and_video_fast_studies_write_the_same_schema(tmp_path, modality):
    cfg = study.StudyConfig.for_scale("fast", modality=modality, device="cpu")
    assert cfg.patches == {"image": "2d", "video": "time"}[modality]
    results = study.run_study(cfg, tmp_path)
    on_disk = json.loads((tmp_path / "results.json").read_text())
    check_results_schema(on_disk, seeds=2, modality=modality)
    assert on_disk["config"]["modality"] == modality and on_disk["config"]["fast"]
    assert results["pretext"].keys() == {"jigsaw", "rank"}
    text = (tmp_path / "results.md").read_text()
    assert f"({modality}, fast)" in text and "pixels" in text and "Fine-tuning" not in text
    for name in ("accuracy.png", "label_fraction.png", "pretext_curves.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert "| pixels |" in text and study.verdicts(on_disk) == []
    check_verdicts(on_disk)


def test_a_modality_refuses_the_options_it_does_not_take():
    with pytest.raises(ValueError, match="ablations.*image"):
        study.StudyConfig.for_scale("demo", modality="image", ablations=True)
    with pytest.raises(ValueError, match="'full'.*video"):
        study.StudyConfig.for_scale("full", modality="video")
    with pytest.raises(ValueError, match="images.*audio.*'/tmp'"):
        study.StudyConfig.for_scale("fast", images="/tmp")
    with pytest.raises(ValueError, match="soundfonts.*video.*'pool'"):
        study.StudyConfig.for_scale("fast", modality="video", soundfonts="pool")
    with pytest.raises(ValueError, match="patches.*video.*'2d'"):
        study.StudyConfig.for_scale("fast", modality="video", patches="2d")


def test_the_study_hands_each_encoder_its_pretraining_config():
    cfg = study.StudyConfig.for_scale("demo", modality="video", epochs=3, perm_set_size=20)
    got = cfg.pretrain_config("random", "time", 2, "/data")
    expected = PretrainConfig(
        method="rank",  # the random encoder is an untrained rank model
        modality="video",
        patches="time",
        num_patches=cfg.num_patches,
        perm_set_size=20,
        epochs=3,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        seed=2,
        device=cfg.device,
        fast=cfg.fast,
        data="/data",
    )
    assert got == expected
    assert cfg.pretrain_config("jigsaw", "time", 0, None).method == "jigsaw"


def test_jigsaw_can_have_a_pretraining_budget_of_its_own():
    cfg = study.StudyConfig.for_scale("fast", jigsaw_epochs=5, jigsaw_lr=1e-3, plateau=0.01)
    jig = cfg.pretrain_config("jigsaw", "freq", 0, None)
    assert (jig.epochs, jig.lr, jig.plateau) == (5, 1e-3, 0.01)
    for method in ("rank", "random", "supervised"):
        other = cfg.pretrain_config(method, "freq", 0, None)
        assert (other.epochs, other.lr, other.plateau) == (cfg.epochs, cfg.lr, 0.01)
    with pytest.raises(ValueError, match="jigsaw_epochs"):
        study.StudyConfig.for_scale("fast", jigsaw_epochs=0)


def test_study_and_pretraining_never_ask_which_modality_they_run():
    """Everything specific to a modality comes from minis2l.modality (or its loader)."""
    package = ROOT / "minis2l"
    files = [*(package / "study").glob("*.py"), *(package / "pretrain").glob("*.py")]
    files.append(package / "pretext.py")
    for path in files:
        text = path.read_text()
        for word in ("audio", "image", "video", "family", "pitch", "logmel", "pixels"):
            for quote in "\"'":
                assert f"{quote}{word}{quote}" not in text, f"{path.name} names {word!r}"


def _toy_items(n: int = 96) -> Items:
    """Items of a made-up modality: 12 x 12 inputs whose class is the brighter half."""
    rng = np.random.default_rng(0)
    inputs, labels = {}, {}
    for split in ("train", "valid", "test"):
        y = rng.integers(0, 2, n)
        x = rng.normal(size=(n, 12, 12)).astype(np.float32)
        x[y == 1, :6] += 1.5
        inputs[split], labels[split] = x, {"half": y}
    return Items(inputs, labels, "toy-v1", {"modality": "toy", "data": None, "source": "noise"})


def test_a_fourth_modality_is_one_loader_and_one_entry(tmp_path, monkeypatch):
    toy = M.Modality(
        name="toy",
        summary="random 12 x 12 squares",
        load=lambda data=None, *, fast=False, progress=False, verbose=True: _toy_items(),
        describe=lambda config: "toy noise",
        patches="time",
        num_patches=4,
        jitter=0,
        num_classes=2,
        baseline="raw",
        baseline_size=(4, 4),
        baseline_label="raw",
        pieces="columns",
        scales={"fast": {"seeds": 2, "epochs": 1, "fast": True, "finetune_fractions": []}},
    )
    monkeypatch.setitem(M.MODALITIES, "toy", toy)
    cfg = study.StudyConfig.for_scale("fast", modality="toy", device="cpu", perm_set_size=10)
    results = study.run_study(cfg, tmp_path)
    assert results["baselines"].keys() == {"raw"} and study.tasks_of(results) == ["half"]
    assert results["regimes"]["probe"]["1.0"]["supervised"]["half"]["accuracy"]["mean"] > 0.7
    assert "toy noise" in (tmp_path / "results.md").read_text()


def test_the_pretext_curves_count_whole_epochs():
    from minis2l.study.plots import _curves

    history = [{"epoch": e, "valid_spearman": 0.1 * e, "valid_accuracy": 0.2} for e in (1, 2, 3)]
    results = {"curves": {"rank": [history], "supervised": [history]}}
    results["methods"] = {"random": {"class": {}}}
    for ax in _curves(results).axes:
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks


#: StudyConfig fields added after a committed study ran, with the defaults it ran with.
ADDED = {"methods": list(study.METHODS), "probe_fractions": list(study.PROBE_FRACTIONS)}


#: Each vision study's wall-time budget on 2 cores. Video trains longer (8 epochs, and jigsaw
#: 12 at its own learning rate), the budget chosen on valid so that both heads learn.
VISION_BUDGET_MINUTES = {"image": 5, "video": 8}


@pytest.mark.parametrize("modality", ["image", "video"])
def test_committed_vision_studies_match_what_make_study_runs(modality):
    path = ROOT / "results" / modality / "results.json"
    assert path.is_file(), f"{path} is missing: run `make study-vision` and commit it"
    results = json.loads(path.read_text())
    check_results_schema(results, seeds=results["config"]["seeds"], modality=modality)
    today = dataclasses.asdict(study.StudyConfig.for_scale("demo", modality=modality))
    for key, value in today.items():
        if key != "device":
            assert results["config"].get(key, ADDED.get(key)) == value, key
    assert f"--modality {modality}" in results["config"]["command"]
    minutes = VISION_BUDGET_MINUTES[modality]
    assert results["config"]["seconds"] <= minutes * 60, f"the study should take <= {minutes} min"
    for name in ("results.md", "accuracy.png", "label_fraction.png", "pretext_curves.png"):
        assert (path.parent / name).is_file(), name


def test_one_seed_study_with_ablations_reports_no_interval(tmp_path):
    cfg = study.StudyConfig.for_scale(
        "fast", seeds=1, num_patches=4, perm_set_size=10, device="cpu", ablations=True
    )
    results = study.run_study(cfg, tmp_path)
    check_results_schema(results, seeds=1)
    assert set(results["ablations"]["patches"]) == {"time", "freq", "2d"}
    pi = results["pitch_investigation"]
    assert pi["split"] == "valid" and set(pi["patches"]) == {"time", "freq", "2d"}
    assert set(pi["layers"]["rank"]) == {"conv", "patch", "context"}
    assert set(pi["patches"]["time"]) == set(study.ABLATION_METHODS)
    assert set(pi["layers"]["supervised"]) == {"conv", "patch"}


def test_committed_full_study_matches_what_make_study_runs():
    """results/ holds the last `make study`: its schema, and its config equals today's."""
    path = ROOT / "results" / "results.json"
    assert path.is_file(), "results/results.json is missing: run `make study` and commit it"
    results = json.loads(path.read_text())
    check_results_schema(results, seeds=results["config"]["seeds"])
    today = dataclasses.asdict(study.StudyConfig.for_scale("full"))
    # Fields added after this study ran; their defaults are what it ran with.
    added = {"modality": "audio", "batch_size": 64, "lr": 2e-3, "images": None} | ADDED
    for key, value in today.items():
        if key not in ("device", "soundfonts"):  # soundfonts: resolved to names and checksums
            assert results["config"].get(key, added.get(key)) == value, key
    assert today["soundfonts"] == "pool"
    assert "--scale full" in results["config"]["command"]
    names = [sf["name"] for sf in results["config"]["soundfonts"]]
    assert names == [e.name for e in POOL], names
    assert "pitch_investigation" in results
    for name in ("results.md", "accuracy.png", "label_fraction.png", "pretext_curves.png"):
        assert (path.parent / name).is_file(), name
    text = (path.parent / "results.md").read_text()
    assert results["config"]["command"] in text and results["config"]["code_version"] in text


def test_a_killed_study_resumes_from_its_finished_encoders(tmp_path, capsys):
    cfg = study.StudyConfig.for_scale("fast", seeds=1, num_patches=4, perm_set_size=10)
    first = study.run_study(cfg, tmp_path)
    kept = tmp_path / "runs" / "rank-freq-0" / "result.pt"
    stamp = kept.stat().st_mtime_ns
    (tmp_path / "runs" / "jigsaw-freq-0" / "result.pt").unlink()  # as if killed during jigsaw
    (tmp_path / "runs" / "jigsaw-freq-0" / "claim").write_text("999999999")  # a dead claimer
    capsys.readouterr()
    again = study.run_study(cfg, tmp_path)
    printed = capsys.readouterr().out
    assert "jigsaw / freq" in printed and "rank / freq" not in printed
    assert kept.stat().st_mtime_ns == stamp
    assert again["regimes"] == first["regimes"] and again["paired"] == first["paired"]
    other = dataclasses.replace(cfg, epochs=2)  # another configuration recomputes everything
    study.run_study(other, tmp_path)
    assert "rank / freq" in capsys.readouterr().out


def test_two_worker_processes_share_the_encoders(tmp_path):
    cfg = study.StudyConfig.for_scale("fast", seeds=1, num_patches=4, perm_set_size=10)
    results = study.run_study(cfg, tmp_path, workers=2)
    check_results_schema(results, seeds=1)
    assert len(list((tmp_path / "runs").glob("*/result.pt"))) == 4
    assert not list((tmp_path / "runs").glob("*/claim"))
