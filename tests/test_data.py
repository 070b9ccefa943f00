"""The note data set: family table, rendering, splits, features, cache, command line, NoteSet."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import librosa
import numpy as np
import pytest

from minis2l import data as d
from minis2l.data import FAMILIES, build_dataset, load_dataset
from minis2l.data import cache as data_cache
from minis2l.data import tasks as data_tasks
from minis2l.data.splits import split_programs

ROOT = Path(__file__).resolve().parents[1]
TINY = {"programs": [0, 40], "pitches": [48, 60], "velocities": [64, 127]}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """The fast-mode data set (a few hundred notes), built once for the module."""
    return build_dataset(tmp_path_factory.mktemp("notes") / "fast", fast=True, verbose=False)


def _manifest(root: Path) -> list[dict[str, str]]:
    with (root / "manifest.csv").open(newline="") as f:
        return list(csv.DictReader(f))


# ---------------------------------------------------------------------------- family table


def test_family_table_maps_gm_programs_to_the_eleven_nsynth_families():
    rows = d.family_table()
    assert [r["program"] for r in rows] == list(range(128))
    kept = [r for r in rows if r["family"]]
    assert {r["family"] for r in kept} == set(FAMILIES)
    assert len(FAMILIES) == 11
    assert all(r["reason"].strip() for r in rows if not r["family"]), "exclusions need a reason"
    by_program = {r["program"]: r["family"] for r in rows}
    assert all(by_program[p] == "" for p in range(120, 128)), "sound effects are left out"
    assert all(by_program[p] == "" for p in range(88, 104)), "pads and FX are left out"
    assert by_program[0] == "keyboard" and by_program[40] == "string"
    assert by_program[56] == "brass" and by_program[73] == "flute" and by_program[33] == "bass"
    assert sum(1 for r in kept if r["family"] == "vocal") >= 3


# ---------------------------------------------------------------------------- rendering


def test_same_parameters_give_bit_identical_audio_regardless_of_batch(built, tmp_path):
    tiny = build_dataset(tmp_path / "tiny", workers=1, verbose=False, **TINY)
    again = build_dataset(tmp_path / "tiny2", workers=2, verbose=False, **TINY)
    w1 = np.load(tiny / "waveforms.npy")
    np.testing.assert_array_equal(w1, np.load(again / "waveforms.npy"))
    np.testing.assert_array_equal(np.load(tiny / "features.npy"), np.load(again / "features.npy"))
    # the same notes inside the bigger fast build (other programs rendered before) agree too
    big = {r["note_id"]: i for i, r in enumerate(_manifest(built))}
    wb = np.load(built / "waveforms.npy", mmap_mode="r")
    shared = [(i, big[r["note_id"]]) for i, r in enumerate(_manifest(tiny)) if r["note_id"] in big]
    assert shared
    for i, j in shared:
        np.testing.assert_array_equal(w1[i], wb[j])


def test_notes_are_peak_normalized_and_faded(built):
    w = np.load(built / "waveforms.npy", mmap_mode="r")
    assert w.dtype == np.int16 and w.shape[1] == 16000
    np.testing.assert_array_equal(np.abs(w.astype(np.int32)).max(axis=1), 32767)
    assert np.abs(w[:, 0]).max() == 0 and np.abs(w[:, -1]).max() <= 5
    note = d.render_note(40, 60, 100)
    assert note is not None and note.dtype == np.float32 and note.shape == (16000,)
    assert np.isclose(np.abs(note).max(), 1.0)


def test_silent_renders_are_dropped_and_counted(tmp_path):
    """TimGM6mb's baritone sax (67) has no sample above about MIDI 80: those notes drop."""
    import tinysoundfont

    pitches, program = [60, 72, 96, 104], 67
    root = build_dataset(
        tmp_path / "s", programs=[program], pitches=pitches, velocities=[100], verbose=False
    )
    meta = json.loads((root / "metadata.json").read_text())
    c = meta["counts"]
    assert c["notes"] + c["dropped"] == c["attempted"] == len(pitches)
    silent = set()
    for pitch in pitches:  # an independent render: fresh synth, plain tinysoundfont
        synth = tinysoundfont.Synth(samplerate=16000)
        synth.program_select(0, synth.sfload(str(d.default_soundfont())), 0, program)
        synth.noteon(0, pitch, 100)
        peak = np.abs(np.frombuffer(synth.generate(16000), dtype=np.float32)).max()
        if peak < 1e-3:
            silent.add(pitch)
    assert silent, "the premise: some of these pitches are silent in TimGM6mb"
    assert {x["pitch"] for x in meta["dropped"]} == silent
    assert {int(r["pitch"]) for r in _manifest(root)} == set(pitches) - silent


# ---------------------------------------------------------------------------- splits


def test_splits_are_disjoint_by_program_and_cover_families(built):
    rows = _manifest(built)
    programs = {s: {r["program"] for r in rows if r["split"] == s} for s in d.SPLITS}
    assert not programs["train"] & programs["valid"]
    assert not programs["train"] & programs["test"]
    assert not programs["valid"] & programs["test"]
    for fam in FAMILIES:
        instruments = {r["instrument"] for r in rows if r["family"] == fam}
        if len(instruments) >= 3:
            splits = {r["split"] for r in rows if r["family"] == fam}
            assert {"train", "test"} <= splits, fam


@pytest.mark.parametrize("seed", range(12))
def test_split_rule_holds_for_the_full_table_and_any_seed(seed):
    table = {r["program"]: r["family"] for r in d.family_table() if r["family"]}
    split = split_programs(table, seed)
    assert split == split_programs(table, seed), "deterministic for a seed"
    assert set(split) == set(table)
    for fam in FAMILIES:
        got = [split[p] for p in table if table[p] == fam]
        if len(got) >= 3:
            assert "train" in got and "test" in got, fam
    assert {"train", "valid", "test"} == set(split.values())
    assert split != split_programs(table, seed + 100)


# ---------------------------------------------------------------------------- files


def test_manifest_features_and_waveforms_are_aligned(built):
    rows = _manifest(built)
    meta = json.loads((built / "metadata.json").read_text())
    feats = np.load(built / "features.npy", mmap_mode="r")
    waves = np.load(built / "waveforms.npy", mmap_mode="r")
    assert len(rows) == feats.shape[0] == waves.shape[0] == meta["counts"]["notes"]
    assert feats.dtype == np.float16 and feats.shape[1:] == (64, 63)
    assert set(rows[0]) >= {"note_id", "split", "program", "instrument", "family", "pitch"}
    assert len({r["note_id"] for r in rows}) == len(rows)
    for r in rows:
        assert r["note_id"].endswith(f"-{int(r['pitch']):03d}-{int(r['velocity']):03d}")
        assert FAMILIES[int(r["family_index"])] == r["family"]
    for i in (0, len(rows) // 2, len(rows) - 1):  # an independent log-mel of the stored audio
        mel = librosa.feature.melspectrogram(
            y=waves[i].astype(np.float32) / 32767, sr=16000, n_fft=1024, hop_length=256, n_mels=64
        )
        np.testing.assert_allclose(feats[i], np.log(np.maximum(mel, 1e-5)), atol=0.02, rtol=0.01)
    assert len(meta["params"]["soundfonts"][0]["sha256"]) == 64
    assert meta["minis2l_version"]


def test_default_cache_dir_depends_on_parameters():
    a = d.default_cache_dir({"x": 1}, fast=True)
    assert a.parent == ROOT / "data" / "cache" and a.name.startswith("notes-fast-")
    assert d.default_cache_dir({"x": 2}, fast=True) != a
    assert d.default_cache_dir({"x": 1}, fast=False).name.startswith("notes-full-")


def test_cache_is_reused_and_rebuilt_when_parameters_change(tmp_path, capsys):
    out = tmp_path / "c"
    build_dataset(out, **TINY)
    stamp = (out / "features.npy").stat().st_mtime_ns
    assert build_dataset(out, **TINY) == out.resolve()
    assert (out / "features.npy").stat().st_mtime_ns == stamp
    assert "reusing" in capsys.readouterr().err
    build_dataset(out, **{**TINY, "velocities": [100]})
    assert "other parameters" in capsys.readouterr().err
    assert {r["velocity"] for r in _manifest(out)} == {"100"}


@pytest.mark.parametrize("damage", ["truncate", "metadata", "manifest", "contents"])
def test_corrupt_cache_is_rebuilt(tmp_path, capsys, damage):
    out = build_dataset(tmp_path / "c", verbose=False, **TINY)
    if damage == "truncate":
        with (out / "features.npy").open("r+b") as f:
            f.truncate(1000)
    elif damage == "metadata":
        (out / "metadata.json").write_text("{not json")
    elif damage == "manifest":
        (out / "manifest.csv").write_text("note_id\n")
    else:  # same size, other bytes: only a checksum notices
        arr = np.load(out / "features.npy")
        arr[0, 0, 0] += 1
        np.save(out / "features.npy", arr)
    with pytest.raises(ValueError, match=re.escape(str(out.resolve()))):  # which data set
        load_dataset(out)
    build_dataset(out, **TINY)
    assert "rebuilding" in capsys.readouterr().err
    assert len(load_dataset(out)) == 8


def test_interrupted_build_leaves_nothing_behind(tmp_path, monkeypatch):
    good = build_dataset(tmp_path / "kept", verbose=False, **TINY)
    before = (good / "waveforms.npy").read_bytes()
    calls = []

    def boom(task):
        calls.append(task)
        if len(calls) > 1:
            raise RuntimeError("injected failure")
        return real(task)

    real = data_tasks._render_task
    monkeypatch.setattr(data_tasks, "_render_task", boom)
    with pytest.raises(RuntimeError, match="injected"):
        build_dataset(tmp_path / "new", workers=1, verbose=False, **TINY)
    assert not (tmp_path / "new").exists()
    calls.clear()
    with pytest.raises(RuntimeError, match="injected"):  # a forced rebuild that fails ...
        build_dataset(good, workers=1, force=True, verbose=False, **TINY)
    assert (good / "waveforms.npy").read_bytes() == before  # ... keeps the old cache
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept"]  # no temp dirs left


def test_refuses_to_overwrite_a_directory_of_other_files(tmp_path):
    (tmp_path / "mine.txt").write_text("precious")
    with pytest.raises(ValueError, match=re.escape(str(tmp_path.resolve()))):
        build_dataset(tmp_path, **TINY)
    assert (tmp_path / "mine.txt").read_text() == "precious"


# ---------------------------------------------------------------------------- bad input


def test_library_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"SoundFont.*missing\.sf2"):
        build_dataset(tmp_path / "x", soundfont=tmp_path / "missing.sf2")
    with pytest.raises(ValueError, match=r"pitch.*\b128\b"):
        build_dataset(tmp_path / "x", programs=[0], pitches=[60, 128])
    with pytest.raises(ValueError, match=r"velocity.*\b0\b"):
        build_dataset(tmp_path / "x", programs=[0], velocities=[0])
    with pytest.raises(ValueError, match=r"program.*gm_families"):  # none has a family
        build_dataset(tmp_path / "x", programs=range(120, 128))
    with pytest.raises(ValueError, match=r"program.*gm_families"):
        build_dataset(tmp_path / "x", programs=[])
    with pytest.raises(ValueError, match=r"family.*'kazoo'"):
        build_dataset(tmp_path / "x", families=["kazoo"])
    assert not (tmp_path / "x").exists()
    assert d.parse_int_list("0-3,10,24-36:6") == [0, 1, 2, 3, 10, 24, 30, 36]
    with pytest.raises(ValueError, match=r"'a-b'"):
        d.parse_int_list("a-b")


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "minis2l", "data", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def test_cli_reports_bad_input_in_one_line(tmp_path):
    fake = tmp_path / "fake.sf2"
    fake.write_text("this is not a SoundFont\n")
    out = tmp_path / "out"
    cases = [
        (["--soundfont", str(tmp_path / "missing.sf2")], r"SoundFont.*missing\.sf2"),
        (["--soundfont", str(fake)], r"SoundFont.*fake\.sf2"),
        (["--pitches", "60,200"], r"pitch.*\b200\b"),
        (["--programs", "120-127"], r"program.*gm_families"),
    ]
    for args, needle in cases:
        result = _cli(*args, "--out", str(out))
        assert result.returncode != 0, args
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("minis2l data: error: "), result.stderr
        assert re.search(needle, lines[0]), (needle, lines[0])  # the thing and the value
        assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["fake.sf2"]


def test_cli_builds_and_summarizes(tmp_path):
    result = _cli("--fast", "--programs", "0,40", "--pitches", "60", "--out", str(tmp_path / "o"))
    assert result.returncode == 0, result.stderr
    assert "4 notes from 2 instruments" in result.stdout
    assert "keyboard" in result.stdout and "dropped renders" in result.stdout


# ---------------------------------------------------------------------------- NoteSet


def test_note_set_splits_hold_the_manifest_rows(built):
    meta = json.loads((built / "metadata.json").read_text())
    manifest = _manifest(built)
    notes = load_dataset(built)
    sizes = {s: len(notes.split(s)) for s in d.SPLITS}
    assert sizes == meta["counts"]["notes_per_split"]
    test = notes.split("test")
    rows = [i for i, r in enumerate(manifest) if r["split"] == "test"]
    np.testing.assert_array_equal(test.features, np.load(built / "features.npy")[rows])
    np.testing.assert_array_equal(test.waveforms, np.load(built / "waveforms.npy")[rows])
    assert test.features.shape[1:] == (64, 63) and test.waveforms.shape[1:] == (16000,)
    assert test.family.tolist() == [int(manifest[i]["family_index"]) for i in rows]
    assert test.pitch.tolist() == [int(manifest[i]["pitch"]) for i in rows]
    with pytest.raises(ValueError, match="'dev'"):
        notes.split("dev")


# ---------------------------------------------------------------------------- robustness


def test_a_killed_build_leaves_a_temp_dir_that_the_next_build_clears(tmp_path):
    """SIGKILL a real build mid-way: its temporary directory is removed by the next build."""
    import os
    import signal
    import time

    out = tmp_path / "killed"
    code = (
        "import sys, time\n"
        "from minis2l.data import build as b, tasks as t\n"
        "real = t._render_task\n"
        "def slow(task):\n"
        "    print('rendering', flush=True); time.sleep(60); return real(task)\n"
        "t._render_task = slow\n"
        f"b.build_dataset({str(out)!r}, programs=[0], pitches=[60], workers=1, verbose=False)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "rendering"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    stale = [p for p in tmp_path.iterdir() if p.name.startswith(".killed.tmp-")]
    assert stale and not out.exists(), "the premise: the kill left a temporary directory"
    live = tmp_path / f".other.tmp-{os.getpid()}-abc"  # a build of a process still running
    live.mkdir()
    start = time.perf_counter()
    build_dataset(out, programs=[0], pitches=[60], workers=1, verbose=False)
    assert time.perf_counter() - start < 60
    assert sorted(p.name for p in tmp_path.iterdir()) == [live.name, "killed"]


def test_a_build_without_stored_audio_renders_notes_on_demand(tmp_path):
    kept = build_dataset(tmp_path / "kept", verbose=False, **TINY)
    lazy = build_dataset(tmp_path / "lazy", store_audio=False, verbose=False, **TINY)
    assert not (lazy / "waveforms.npy").exists()
    np.testing.assert_array_equal(np.load(kept / "features.npy"), np.load(lazy / "features.npy"))
    stored, rendered = load_dataset(kept), load_dataset(lazy)
    assert isinstance(rendered.waveforms, d.RenderedAudio)
    assert rendered.waveforms.shape == stored.waveforms.shape
    np.testing.assert_array_equal(rendered.waveforms[3], stored.waveforms[3])
    test = rendered.split("test")
    np.testing.assert_array_equal(np.asarray(test.waveforms), stored.split("test").waveforms)


def test_the_pool_lists_what_is_installed_and_names_what_is_missing(monkeypatch, capsys):
    from minis2l.data import soundfonts

    found = d.pool_soundfonts()
    assert found[0] == d.default_soundfont()
    assert all("fluid" not in p.name.lower() for p in found)
    missing = soundfonts.PoolEntry("Nowhere.sf2", Path("/nonexistent/Nowhere.sf2"), "apt-get x")
    monkeypatch.setattr(soundfonts, "POOL", (*soundfonts.POOL, missing))
    capsys.readouterr()
    assert d.pool_soundfonts() == found
    err = capsys.readouterr().err.strip().splitlines()
    assert any("skipping Nowhere.sf2" in line and "apt-get x" in line for line in err)


def test_several_soundfonts_share_one_program_split(tmp_path):
    pool = d.pool_soundfonts(verbose=False)
    if len(pool) < 2:
        pytest.skip("only one pool SoundFont installed (run scripts/offline_data.sh)")
    root = build_dataset(
        tmp_path / "p", soundfont=pool[:2], programs=[0, 40, 56, 73], pitches=[60], verbose=False
    )
    rows = _manifest(root)
    assert {r["soundfont"] for r in rows} == {p.name for p in pool[:2]}
    split_of = {}
    for r in rows:
        assert split_of.setdefault(r["program"], r["split"]) == r["split"]
    meta = json.loads((root / "metadata.json").read_text())
    assert [s["sha256"] for s in meta["params"]["soundfonts"]] == [
        data_cache.file_digest(p) for p in pool[:2]
    ]
