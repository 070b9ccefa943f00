"""Pretraining: the task is learned, runs resume exactly after a real kill, torchrun agrees
with one process, and bad requests get one-line errors without touching files."""

from __future__ import annotations

import dataclasses
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import minis2l.pretrain as pretrain_package
from minis2l import patches as P
from minis2l import pretext
from minis2l.models import PermutationModel
from minis2l.pretrain import (
    PretrainConfig,
    build_model,
    epoch_shuffles,
    evaluate,
    levelled_off,
    pretext_loss,
    pretrain,
    spearman,
)
from minis2l.ranking import hard_rank

ENV = dict(os.environ, MINIS2L_FAST="1")


def _cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "minis2l", "pretrain", *args],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=timeout,
    )


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


def test_config_validation_names_the_problem():
    with pytest.raises(ValueError, match="method.*'sort'"):
        PretrainConfig(method="sort")
    with pytest.raises(ValueError, match="num_patches.*2.*1"):
        PretrainConfig(num_patches=1)
    with pytest.raises(ValueError, match="patch kind.*'diag'"):
        PretrainConfig(patches="diag")
    with pytest.raises(ValueError, match="soundfont.*audio.*image"):
        PretrainConfig(modality="image", soundfont="x.sf2")
    assert PretrainConfig(method="jigsaw", num_patches=3).num_perms() == 6  # K! < 100


def test_shuffles_are_a_function_of_seed_and_epoch():
    cfg = PretrainConfig(num_patches=5, fast=True)
    a, _ = epoch_shuffles(cfg, 50, 3, None)
    b, _ = epoch_shuffles(cfg, 50, 3, None)
    c, _ = epoch_shuffles(cfg, 50, 4, None)
    assert torch.equal(a, b) and not torch.equal(a, c)
    perm_set = P.fixed_permutation_set(10, 5)
    perms, labels = epoch_shuffles(PretrainConfig(method="jigsaw", num_patches=5), 50, 0, perm_set)
    assert torch.equal(perms, perm_set[labels])


def test_losses_are_zero_for_a_perfect_model_and_spearman_is_exact():
    cfg = PretrainConfig(num_patches=4, fast=True)
    x = torch.randn(3, 64, 63)
    perms = P.random_permutations(3, 4, generator=torch.Generator().manual_seed(0))

    class Oracle(torch.nn.Module):  # scores each slot by its true position, scaled up
        def forward(self, shuffled):
            return 100.0 * perms.float()

    loss, out = pretext_loss(Oracle(), cfg, x, perms, torch.full((3,), -1))
    assert loss.item() < 1e-6
    true = P.target_ranks(perms)
    assert torch.allclose(spearman(true, true), torch.ones(3))
    assert torch.allclose(spearman(5 - true, true), -torch.ones(3))  # reversed order
    scipy_stats = pytest.importorskip("scipy.stats")
    a, b = torch.tensor([[1.0, 3, 2, 4]]), torch.tensor([[2.0, 1, 4, 3]])
    assert spearman(a, b).item() == pytest.approx(scipy_stats.spearmanr(a[0], b[0]).statistic)
    model = PermutationModel("rank", "freq", 4)
    assert model(P.split_patches(x, 4, "freq")).shape == (3, 4)
    assert model.embed(x).shape == (3, 4 * 128)


def test_the_pretext_reads_alone_and_pretrain_still_offers_it():
    for name in ("epoch_shuffles", "pretext_loss", "predicted_ranks", "spearman", "evaluate"):
        assert getattr(pretext, name) is getattr(pretrain_package, name), name


def test_supervised_evaluation_scores_the_labels_it_is_given():
    torch.manual_seed(0)
    cfg = PretrainConfig(method="supervised", num_patches=4, fast=True)
    model = build_model(cfg).eval()
    x, y = torch.randn(40, 64, 63), torch.randint(0, 11, (40,))
    with torch.no_grad():
        pred = model(P.split_patches(x, 4, "freq")).argmax(-1)  # no shuffle, no jitter
    got = evaluate(model, cfg, x, None, torch.device("cpu"), batch_size=16, labels=y)
    assert got["accuracy"] == pytest.approx((pred == y).float().mean().item())
    assert torch.isnan(torch.tensor(got["spearman"]))
    with pytest.raises(ValueError, match="labels"):
        evaluate(model, cfg, x, None, torch.device("cpu"))


def test_rank_pretext_is_learned_in_fast_mode(tmp_path):
    ckpt = pretrain(PretrainConfig(fast=True, epochs=4, seed=0), tmp_path, progress=False)
    first, last = ckpt["metrics"][0], ckpt["metrics"][-1]
    assert last["train_loss"] < first["train_loss"]
    assert last["valid_spearman"] > 0.5  # chance is 0
    assert last["valid_exact"] > 3 / 24  # chance is 1/4! = 0.042
    files = {p.name for p in tmp_path.iterdir()}
    assert {"checkpoint.pt", "metrics.csv", "config.json"} <= files
    assert not [f for f in files if f.endswith(".tmp")]
    lines = (tmp_path / "metrics.csv").read_text().splitlines()
    assert lines[0].startswith("epoch,train_loss,valid_loss,valid_exact,valid_spearman")
    assert len(lines) == 5


def test_jigsaw_runs_and_beats_chance(tmp_path):
    ckpt = pretrain(
        PretrainConfig(method="jigsaw", num_patches=4, perm_set_size=10, fast=True, epochs=4),
        tmp_path,
        progress=False,
    )
    assert ckpt["perm_set"].shape == (10, 4)
    last = ckpt["metrics"][-1]
    assert last["valid_own_exact"] > 0.2  # on its own set: chance is 1/10
    # On shuffles from all 4! = 24 it can only be right on those in its set of 10.
    assert last["valid_exact"] <= 10 / 24 + 0.1  # (+ sampling noise of the held-out set)


def test_rank_and_jigsaw_are_scored_on_the_same_puzzles():
    """evaluate() shuffles from all K! for both heads (jigsaw answering with the member of its
    set it predicts), and scores jigsaw on its own set apart; recomputed by hand here."""
    scipy_stats = pytest.importorskip("scipy.stats")
    torch.manual_seed(0)
    n, k, x = 60, 4, torch.randn(60, 64, 63)
    perm_set = P.fixed_permutation_set(6, k, seed=0)
    rcfg = PretrainConfig(num_patches=k, fast=True)
    jcfg = PretrainConfig(method="jigsaw", num_patches=k, perm_set_size=6, fast=True)
    rmodel, jmodel = build_model(rcfg).eval(), build_model(jcfg).eval()
    cpu = torch.device("cpu")
    rank = evaluate(rmodel, rcfg, x, None, cpu, batch_size=16)
    jig = evaluate(jmodel, jcfg, x, perm_set, cpu, batch_size=16)
    puzzles, _ = epoch_shuffles(rcfg, n, -1, None)  # from all K!
    assert torch.equal(puzzles, epoch_shuffles(jcfg, n, -1, None)[0])  # the same for jigsaw
    own, _ = epoch_shuffles(jcfg, n, -1, perm_set)
    pieces = P.split_patches(x, k, "freq")
    rows = torch.arange(n)[:, None]
    with torch.no_grad():  # slot j holds patch perms[j], whose rank is perms[j] + 1
        rank_pred = rmodel(pieces[rows, puzzles]).argsort(-1).argsort(-1) + 1.0
        jig_pred = perm_set[jmodel(pieces[rows, puzzles]).argmax(-1)] + 1.0
        own_pred = perm_set[jmodel(pieces[rows, own]).argmax(-1)] + 1.0
    own_scores = {name[4:]: v for name, v in jig.items() if name.startswith("own_")}
    for got, pred, perms in (
        (rank, rank_pred, puzzles),
        (jig, jig_pred, puzzles),
        (own_scores, own_pred, own),
    ):
        hits = pred == perms + 1.0
        assert got["exact"] == pytest.approx(hits.all(-1).float().mean().item())
        assert got["per_position"] == pytest.approx(hits.float().mean().item())
        rho = [scipy_stats.spearmanr(a, b).statistic for a, b in zip(pred, perms, strict=True)]
        assert got["spearman"] == pytest.approx(float(np.mean(rho)), abs=1e-5)
    # Jigsaw can only be exactly right on the puzzles that lie in its set.
    in_set = (puzzles[:, None, :] == perm_set[None]).all(-1).any(-1).float().mean().item()
    assert jig["exact"] <= in_set
    assert math.isnan(rank["own_exact"]) and math.isnan(rank["accuracy"])


def test_killed_run_resumes_to_the_same_weights(tmp_path):
    args = ["--epochs", "4", "--seed", "3", "--batch-size", "16"]
    straight = _cli(*args, "--out", str(tmp_path / "straight"))
    assert straight.returncode == 0, straight.stderr[-2000:]

    out = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "minis2l", "pretrain", *args, "--out", str(out)],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 240
    while not (out / "checkpoint.pt").exists() and time.time() < deadline:
        assert proc.poll() is None, "the run ended before its first checkpoint"
        time.sleep(0.05)
    time.sleep(0.3)  # into the second epoch
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    interrupted = torch.load(out / "checkpoint.pt", weights_only=True)
    assert interrupted["epoch"] < 3, "the run finished before it could be killed"

    resumed = _cli(*args, "--out", str(out), "--resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a, b = _weights(tmp_path / "straight" / "checkpoint.pt"), _weights(out / "checkpoint.pt")
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_resume_keeps_the_stored_epoch_count_unless_told(tmp_path):
    pretrain(PretrainConfig(fast=True, epochs=1, seed=2), tmp_path, progress=False)
    again = pretrain(PretrainConfig(fast=True), tmp_path, resume=True, progress=False)
    assert len(again["metrics"]) == 1  # a finished 1-epoch run stays at 1 epoch
    longer = pretrain(
        PretrainConfig(fast=True), tmp_path, resume=True, progress=False, resume_epochs=2
    )
    assert [m["epoch"] for m in longer["metrics"]] == [1, 2]


def test_torchrun_two_processes_match_one(tmp_path):
    args = ["--epochs", "1", "--seed", "5", "--batch-size", "32"]
    single = _cli(*args, "--out", str(tmp_path / "one"))
    assert single.returncode == 0, single.stderr[-2000:]
    ddp = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "minis2l",
            "pretrain",
            *args,
            "--out",
            str(tmp_path / "two"),
        ],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=300,
    )
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    ckpt = torch.load(tmp_path / "two" / "checkpoint.pt", weights_only=True)
    assert ckpt["ddp"]["world_size"] == 2
    assert ckpt["ddp"]["max_weight_diff_across_ranks"] == 0.0
    # Same global batches, so the same training up to float summation order (gloo's
    # all-reduce), which Adam's normalized steps can amplify to a fraction of one step (lr).
    # The rank head's bias is the exception: soft rank ignores a shift of all the scores, so
    # its gradient is zero up to rounding, and Adam turns that rounding noise into full-size
    # steps, in directions that depend on the summation order. Every other weight must agree.
    one = torch.load(tmp_path / "one" / "checkpoint.pt", weights_only=True)
    assert ckpt["model"].keys() == one["model"].keys()
    for name, w in ckpt["model"].items():
        if name != "head.bias":
            torch.testing.assert_close(w, one["model"][name], rtol=0, atol=1e-3)
    a, b = ckpt["metrics"][-1], one["metrics"][-1]
    assert abs(a["train_loss"] - b["train_loss"]) < 1e-3 * b["train_loss"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--method", "sort"], ("method", "'sort'")),
        (["--patches", "diag"], ("patch kind", "'diag'")),
        (["--num-patches", "1"], ("num_patches", "1")),
        (["--patches", "freq", "--num-patches", "65"], ("65", "64 x 63")),
    ],
)
def test_bad_requests_fail_cleanly(tmp_path, args, message):
    result = _cli(*args, "--out", str(tmp_path / "run"))
    assert result.returncode == 2
    assert all(m in result.stderr for m in message) and "Traceback" not in result.stderr
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_resume_problems_fail_cleanly_and_touch_nothing(tmp_path):
    missing = _cli("--resume", "--out", str(tmp_path / "none"))
    assert missing.returncode == 2 and "no checkpoint" in missing.stderr
    assert "Traceback" not in missing.stderr
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "checkpoint.pt").write_bytes(b"not a checkpoint")
    result = _cli("--resume", "--out", str(corrupt))
    assert result.returncode == 2 and "corrupt" in result.stderr
    assert "Traceback" not in result.stderr
    assert (corrupt / "checkpoint.pt").read_bytes() == b"not a checkpoint"
    assert sorted(p.name for p in corrupt.iterdir()) == ["checkpoint.pt"]


def test_existing_run_is_not_overwritten_by_accident(tmp_path):
    (tmp_path / "checkpoint.pt").write_bytes(b"precious")
    result = _cli("--out", str(tmp_path))
    assert result.returncode == 2 and "--resume" in result.stderr
    assert (tmp_path / "checkpoint.pt").read_bytes() == b"precious"


def test_the_rank_head_has_no_bias_and_older_checkpoints_still_load(tmp_path):
    """Soft rank ignores a shift common to all K scores, so the rank head has no bias; an older
    checkpoint's bias is dropped on loading, which leaves every rank as it was."""
    torch.manual_seed(0)
    cfg = PretrainConfig(num_patches=4, fast=True)
    model = build_model(cfg).eval()
    assert model.head.bias is None
    assert "head.bias" not in model.state_dict()
    assert build_model(PretrainConfig(method="jigsaw", fast=True)).head.bias is not None
    old = model.state_dict() | {"head.bias": torch.tensor([3.0])}  # as an older minis2l wrote
    fresh = build_model(cfg).eval()
    fresh.load_state_dict(old)  # strict: the bias is the only key dropped
    pieces = P.split_patches(torch.randn(5, 64, 63), 4, "freq")
    with torch.no_grad():
        scores = fresh(pieces)
        biased = torch.nn.functional.linear(
            fresh.context(fresh.encode_patches(pieces)), old["head.weight"], old["head.bias"]
        ).squeeze(-1)
    torch.testing.assert_close(biased - scores, torch.full_like(scores, 3.0))
    torch.testing.assert_close(hard_rank(biased), hard_rank(scores))
    # A run written with a biased head cannot resume exactly: refused, nothing touched.
    pretrain(dataclasses.replace(cfg, epochs=1), tmp_path, progress=False)
    ckpt = torch.load(tmp_path / "checkpoint.pt", map_location="cpu", weights_only=True)
    ckpt["model"]["head.bias"] = torch.zeros(1)
    torch.save(ckpt, tmp_path / "checkpoint.pt")
    stamp = (tmp_path / "checkpoint.pt").stat().st_mtime_ns
    with pytest.raises(ValueError, match="bias"):
        pretrain(dataclasses.replace(cfg, epochs=2), tmp_path, resume=True, progress=False)
    assert (tmp_path / "checkpoint.pt").stat().st_mtime_ns == stamp


def test_plateau_stops_a_run_once_its_valid_metric_levels_off(tmp_path):
    """With ``plateau``, training stops once two epochs in a row fail to beat the best before
    them by it; the decision reads the history only, so a resumed run stops at the same place."""
    cfg = PretrainConfig(num_patches=4, fast=True, epochs=5, plateau=1.0)  # no epoch gains 1
    ckpt = pretrain(cfg, tmp_path, progress=False)
    assert len(ckpt["metrics"]) == 3  # one epoch to compare with, two of patience
    assert ckpt["epoch"] == 2
    rising = [{"valid_spearman": v} for v in (0.5, 0.52, 0.55)]
    assert levelled_off(dataclasses.replace(cfg, plateau=0.06), rising)
    assert not levelled_off(dataclasses.replace(cfg, plateau=0.04), rising)
    assert not levelled_off(dataclasses.replace(cfg, plateau=None), rising)
    dip = [{"valid_spearman": v} for v in (0.5, 0.6, 0.59, 0.7)]  # one epoch's dip is not a stop
    assert not levelled_off(dataclasses.replace(cfg, plateau=0.002), dip[:3])
    assert not levelled_off(dataclasses.replace(cfg, plateau=0.002), dip)
    flat = [{"valid_spearman": v} for v in (0.5, 0.6, 0.59, 0.601)]
    assert levelled_off(dataclasses.replace(cfg, plateau=0.002), flat)
    again = pretrain(cfg, tmp_path, resume=True, progress=False)  # levelled off: nothing more
    assert len(again["metrics"]) == 3
    with pytest.raises(ValueError, match="plateau"):
        PretrainConfig(plateau=-0.1)
