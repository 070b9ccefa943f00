"""Images and video: IDX files read (and refused) correctly, clips made as documented, the same
patch function cutting all three modalities, and one-line errors for bad requests."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from minis2l import modality as M
from minis2l import patches as P
from minis2l.items import Items
from minis2l.pretrain import PretrainConfig, epoch_offsets
from minis2l.vision import idx, images, video

ENV = dict(os.environ, MINIS2L_FAST="1")


def _idx_bytes(arr: np.ndarray) -> bytes:
    header = bytes([0, 0, 8, arr.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in arr.shape)
    return header + arr.astype(np.uint8).tobytes()


def _write_set(folder: Path, n_train: int = 50, n_test: int = 20) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    rows, cols = np.mgrid[:28, :28]
    for split, n in (("train", n_train), ("t10k", n_test)):
        # a diagonal ramp with a random tilt and some noise: a puzzle with an answer
        tilt = rng.uniform(0.5, 2.0, (n, 1, 1))
        x = (rows + tilt * cols) * 255 / (27 * 3) + rng.normal(0, 8, (n, 28, 28))
        x = np.clip(x, 0, 255)
        y = np.arange(n) % 10
        (folder / f"{split}-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(x)))
        (folder / f"{split}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(y)))


def _cli(command: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "minis2l", command, *args],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=300,
    )


def test_read_idx_round_trips_gzipped_and_plain(tmp_path):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a.gz").write_bytes(gzip.compress(_idx_bytes(arr)))
    (tmp_path / "a").write_bytes(_idx_bytes(arr))
    assert np.array_equal(idx.read_idx(tmp_path / "a.gz"), arr)
    assert np.array_equal(idx.read_idx(tmp_path / "a"), arr)


@pytest.mark.parametrize(
    "payload, message",
    [
        (gzip.compress(b"\x00\x00\x0d\x03" + b"\x00" * 20), "bad magic"),
        (gzip.compress(_idx_bytes(np.zeros((4, 28, 28)))[:-5]), "expected"),
        (gzip.compress(b"\x00\x00\x08\x03\x00\x00"), "truncated header"),
        (b"not gzip at all", "cannot decompress"),
        (gzip.compress(_idx_bytes(np.zeros((4, 28, 28))))[:-12], "cannot decompress"),
    ],
    # ids that name the fault: gzip stamps the time into its bytes, and pytest-xdist needs
    # every worker to collect the same test names
    ids=["bad-magic", "short-data", "truncated-header", "not-gzip", "cut-gzip"],
)
def test_corrupt_idx_files_get_an_error_naming_the_file(tmp_path, payload, message):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(payload)
    with pytest.raises(ValueError, match=message) as err:
        idx.read_idx(path)
    assert str(path) in str(err.value)


def test_an_image_folder_is_read_and_a_missing_file_is_named(tmp_path):
    _write_set(tmp_path / "ok")
    source = idx.read_image_dir(tmp_path / "ok")
    assert source.train[0].shape == (50, 28, 28) and source.test[1].shape == (20,)
    assert len(source.files) == 4 and all(len(f["sha256"]) == 64 for f in source.files)
    (tmp_path / "ok" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        idx.read_image_dir(tmp_path / "ok")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        idx.read_image_dir(tmp_path / "nowhere")


def test_labels_that_are_not_classes_are_refused(tmp_path):
    _write_set(tmp_path)
    y = np.full(50, 12)
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(y)))
    with pytest.raises(ValueError, match=r"train-labels.*label 12"):
        idx.read_image_dir(tmp_path)


def test_without_the_package_the_digits_stand_in_and_say_so(monkeypatch, capsys):
    monkeypatch.setattr(idx, "DEBIAN_DIR", Path("/nonexistent/fashion-mnist"))
    source = idx.find_images()
    assert "digits" in source.name and source.train[0].shape[1:] == (28, 28)
    assert len(source.train[1]) + len(source.test[1]) == 1797
    err = capsys.readouterr().err.strip()
    assert "dataset-fashion-mnist" in err and "digits" in err and "\n" not in err


def test_splits_are_disjoint_stratified_and_standardized(tmp_path):
    _write_set(tmp_path, n_train=600, n_test=100)
    items = images.load_images(tmp_path, fast=True, verbose=False)
    assert {s: len(x) for s, x in items.inputs.items()} == {"train": 480, "valid": 120, "test": 100}
    assert abs(float(items.inputs["train"].mean())) < 1e-3
    assert abs(float(items.inputs["train"].std()) - 1) < 1e-3
    assert np.bincount(items.labels["valid"]["class"]).min() >= 10
    train = {x.tobytes() for x in items.inputs["train"]}
    assert not any(x.tobytes() in train for x in items.inputs["valid"])
    assert items.tasks == ("class",)


def test_clips_are_deterministic_stay_on_the_canvas_and_slow_down():
    rng = np.random.default_rng(1)
    imgs = rng.random((40, 28, 28)).astype(np.float32)
    clips, direction = video.make_clips(imgs, seed=3)
    again, direction2 = video.make_clips(imgs, seed=3)
    assert np.array_equal(clips, again) and np.array_equal(direction, direction2)
    assert clips.shape == (40, video.FRAMES, video.CANVAS, video.CANVAS)
    # the whole item is on the canvas in every frame: its total brightness does not change
    mass = clips.sum(axis=(2, 3))
    np.testing.assert_allclose(mass, mass[:, :1].repeat(video.FRAMES, 1), rtol=0.02)
    # centroids move along the clip's direction with shrinking steps (friction)
    ys, xs = np.mgrid[: video.CANVAS, : video.CANVAS]
    cx = (clips * xs).sum(axis=(2, 3)) / mass
    cy = (clips * ys).sum(axis=(2, 3)) / mass
    steps = np.hypot(np.diff(cx), np.diff(cy))
    assert (np.diff(steps, axis=1) < 0).all()
    angle = np.arctan2(-(cy[:, -1] - cy[:, 0]), cx[:, -1] - cx[:, 0])
    expected = direction * np.pi / 4
    assert np.allclose(np.angle(np.exp(1j * (angle - expected))), 0, atol=0.05)
    assert set(direction) <= set(range(len(video.DIRECTIONS)))


def test_the_same_function_cuts_spectrograms_images_and_clips():
    clips = torch.randn(2, 8, 24, 24)
    strip = video.film_strip(clips)
    assert strip.shape == (2, 24, 8 * 24)
    assert torch.equal(video.frames_of(strip, 8), clips)
    assert torch.equal(P.split_patches(strip, 8, "time"), clips)  # time strips = frames
    image = torch.randn(28, 28)
    tiles = P.split_patches(image, 9, "2d")
    assert torch.equal(tiles[5], image[9:18, 18:27])  # reading order: row 1, column 2
    with pytest.raises(ValueError, match=r"\b192\b.*\b7\b.*frames"):
        video.frames_of(strip, 7)


def test_crop_patches_centres_or_follows_the_offsets():
    patches = torch.arange(2 * 3 * 9 * 9, dtype=torch.float32).reshape(2, 3, 9, 9)
    assert torch.equal(P.crop_patches(patches, 2), patches[..., 1:8, 1:8])
    offsets = torch.tensor([[[0, 2], [1, 1], [2, 0]], [[2, 2], [0, 0], [1, 2]]])
    out = P.crop_patches(patches, 2, offsets)
    for b in range(2):
        for k in range(3):
            r, c = offsets[b, k].tolist()
            assert torch.equal(out[b, k], patches[b, k, r : r + 7, c : c + 7])
    assert P.crop_patches(patches, 0) is patches
    with pytest.raises(ValueError, match=r"margin.*9 x 9"):
        P.crop_patches(patches, 9)


def test_jitter_offsets_depend_on_seed_and_epoch_only():
    cfg = PretrainConfig(modality="image", fast=True)
    assert (cfg.patches, cfg.num_patches, cfg.jitter) == ("2d", 9, 2)
    a, b = epoch_offsets(cfg, 30, 1), epoch_offsets(cfg, 30, 1)
    assert torch.equal(a, b) and not torch.equal(a, epoch_offsets(cfg, 30, 2))
    assert a.shape == (30, 9, 2) and a.min() == 0 and a.max() == 2
    assert epoch_offsets(PretrainConfig(fast=True), 30, 1) is None  # audio: no jitter
    assert PretrainConfig(modality="video").num_patches == 8


def test_pieces_that_do_not_fit_are_refused_by_name():
    # Each message names the setting, its value and what it does not fit.
    with pytest.raises(ValueError, match=r"K=12.*8 frames"):
        M.check_pieces("video", "time", 12, 0, (24, 192))
    with pytest.raises(ValueError, match=r"8 frames.*K=3"):
        M.check_pieces("video", "time", 3, 0, (24, 192))
    with pytest.raises(ValueError, match=r"time.*'2d'"):
        M.check_pieces("video", "2d", 4, 0, (24, 192))
    with pytest.raises(ValueError, match=r"30 x 30.*28 x 28"):
        M.check_pieces("image", "2d", 900, 0, (28, 28))
    with pytest.raises(ValueError, match=r"jitter 8.*9 x 9"):
        M.check_pieces("image", "2d", 9, 8, (28, 28))
    M.check_pieces("image", "2d", 9, 2, (28, 28))
    with pytest.raises(ValueError, match=r"modality.*'smell'"):
        M.get("smell")


def test_items_refuse_mismatched_labels():
    x = np.zeros((3, 4, 4), np.float32)
    good = {s: x for s in ("train", "valid", "test")}
    labels = {s: {"class": np.zeros(3, np.int64)} for s in good}
    assert Items(good, labels, "f").tasks == ("class",)
    labels["valid"] = {"class": np.zeros(2, np.int64)}
    with pytest.raises(ValueError, match=r"valid.*\b3\b.*\b2 class"):
        Items(good, labels, "f")


@pytest.mark.parametrize(
    "command, args, message",
    [
        ("pretrain", ["--modality", "video", "--num-patches", "12"], "larger than the 8 frames"),
        ("pretrain", ["--modality", "image", "--num-patches", "900"], "does not fit"),
        ("pretrain", ["--modality", "image", "--images", "{missing}"], "does not exist"),
        ("pretrain", ["--images", "{tmp}"], "--images is for"),
        ("demo", ["--modality", "image", "--images", "{corrupt}"], "corrupt"),
        ("demo", ["--modality", "video", "--soundfont", "x.sf2"], "--soundfont is for"),
    ],
)
def test_bad_requests_exit_2_with_one_line_and_write_nothing(tmp_path, command, args, message):
    corrupt = tmp_path / "corrupt"
    _write_set(corrupt)
    (corrupt / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b broken")
    out = tmp_path / "out"
    subs = {
        "{missing}": str(tmp_path / "missing"),
        "{tmp}": str(tmp_path),
        "{corrupt}": str(corrupt),
    }
    args = [subs.get(a, a) for a in args]
    proc = _cli(command, *args, "--out", str(out))
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert not out.exists() or not any(out.rglob("*.pt")) and not any(out.rglob("*.json"))


def test_image_pretraining_learns_the_puzzle_from_an_idx_folder(tmp_path):
    _write_set(tmp_path / "imgs", n_train=600, n_test=100)
    cfg = PretrainConfig(
        method="jigsaw", modality="image", epochs=2, fast=True, data=str(tmp_path / "imgs")
    )
    from minis2l.pretrain import pretrain

    ckpt = pretrain(cfg, tmp_path / "run", progress=False)
    assert ckpt["config"]["modality"] == "image" and ckpt["config"]["jitter"] == 2
    assert (tmp_path / "run" / "checkpoint.pt").is_file()
    assert ckpt["metrics"][-1]["train_loss"] < ckpt["metrics"][0]["train_loss"]

    from minis2l.probe import probe_checkpoint

    probes = probe_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert probes.keys() == {"class"} and 0 <= probes["class"]["accuracy"] <= 1


def test_clips_at_constant_speed_and_a_canvas_too_small_are_named():
    imgs = np.random.default_rng(2).random((10, 28, 28)).astype(np.float32)
    clips, _ = video.make_clips(imgs, friction=1.0, speeds=(1.0,), seed=1)
    ys, xs = np.mgrid[: video.CANVAS, : video.CANVAS]
    mass = clips.sum(axis=(2, 3))
    cx = (clips * xs).sum(axis=(2, 3)) / mass
    cy = (clips * ys).sum(axis=(2, 3)) / mass
    np.testing.assert_allclose(np.hypot(np.diff(cx), np.diff(cy)), 1.0, atol=0.02)
    with pytest.raises(ValueError, match=r"20 px.*8 frames"):
        video.make_clips(imgs, friction=1.0)
    with pytest.raises(ValueError, match=r"friction.*0\.0"):
        video.make_clips(imgs, friction=0.0)


def test_the_video_fingerprint_follows_how_clips_are_made(monkeypatch):
    """A study resumes only from results on the same clips: the key changes with the clips."""
    video._load_video.cache_clear()
    first = video.load_video(fast=True, verbose=False)
    monkeypatch.setattr(video, "FRICTION", 0.65)
    video._load_video.cache_clear()
    slower = video.load_video(fast=True, verbose=False)
    video._load_video.cache_clear()
    assert slower.metadata["clip"]["friction"] == 0.65
    assert slower.fingerprint != first.fingerprint
    assert not np.array_equal(slower.inputs["train"], first.inputs["train"])
