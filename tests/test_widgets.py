"""The patch-shuffle explorer, driven from Python as a browser would drive it (no browser)."""

from __future__ import annotations

import io
import wave

import numpy as np
import pytest
import torch

from minis2l import patches as P
from minis2l.data import FAMILIES, load_dataset
from minis2l.widgets import ShuffleExplorer, griffin_lim, parse_order, wav_bytes

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def notes():
    return load_dataset(fast=True, verbose=False)


@pytest.fixture
def make(notes):
    """Build explorers in strict mode; fail the test if any callback raised."""
    made: list[ShuffleExplorer] = []

    def build(**kwargs) -> ShuffleExplorer:
        kwargs.setdefault("audio", False)
        explorer = ShuffleExplorer(notes, strict=True, **kwargs)
        made.append(explorer)
        return explorer

    yield build
    for explorer in made:
        assert explorer.errors == [], explorer.errors


def _wav_frames(data: bytes) -> np.ndarray:
    with wave.open(io.BytesIO(data)) as f:
        assert f.getnchannels() == 1 and f.getsampwidth() == 2 and f.getframerate() == 16000
        return np.frombuffer(f.readframes(f.getnframes()), dtype="<i2")


def test_starts_shuffled_and_shows_a_png(make, notes):
    e = make()
    assert e.last_image.startswith(PNG)
    assert bytes(e.image.value) == e.last_image
    k = e.num_patches.value
    assert sorted(e.perm.tolist()) == list(range(k))
    assert e.perm.tolist() != list(range(k))
    row = e.index
    assert notes.family[row] == e.family.value and notes.pitch[row] == e.pitch.value


def test_shuffled_spectrogram_is_the_library_shuffle(make, notes):
    e = make()
    x = torch.from_numpy(np.asarray(notes.features[e.index], dtype=np.float32))
    k, kind = e.num_patches.value, e.kind.value
    torch.testing.assert_close(e.spectrogram, P.crop_to_patches(x, k, kind))
    # Undo the shuffle independently: patches of the shuffled picture, put back by slot.
    pieces = P.split_patches(e.shuffled, k, kind)
    back = torch.empty_like(pieces)
    back[e.perm] = pieces
    torch.testing.assert_close(P.merge_patches(back, kind), e.spectrogram)


def test_shuffle_and_reset_buttons_change_figure_and_perm(make):
    e = make()
    first_image, first_perm = e.last_image, e.perm.tolist()
    e.shuffle_button.click()
    assert e.last_image != first_image or e.perm.tolist() == first_perm
    perms = {tuple(e.perm.tolist())}
    for _ in range(4):
        e.shuffle_button.click()
        perms.add(tuple(e.perm.tolist()))
    assert len(perms) > 1
    e.reset_button.click()
    assert e.perm.tolist() == list(range(e.num_patches.value))
    torch.testing.assert_close(e.shuffled, e.spectrogram)
    assert e.message == "in order"


@pytest.mark.parametrize("kind,k", [("time", 6), ("freq", 8), ("2d", 6), ("2d", 9)])
def test_kind_and_k_controls(make, kind, k):
    e = make()
    before = e.last_image
    e.kind.value = kind
    e.num_patches.value = k
    assert len(e.perm) == k and sorted(e.perm.tolist()) == list(range(k))
    assert e.last_image != before
    rows, cols = P.grid_shape(k, kind)
    assert e.spectrogram.shape == (64 - 64 % rows, 63 - 63 % cols)
    assert len(e.patch_buttons.children) == k


def test_prime_k_has_no_2d_grid_and_says_so(make):
    e = make()
    e.kind.value = "2d"
    e.num_patches.value = 7
    assert "prime" in e.message
    assert "prime" in e.status.value
    e.num_patches.value = 4
    assert "prime" not in e.message
    assert e.errors == []


def test_changing_the_note_changes_the_data(make, notes):
    e = make()
    spec, image = e.spectrogram.clone(), e.last_image
    other = next(f for f in e.family.options if f[1] != e.family.value)[1]
    e.family.value = other
    assert FAMILIES[other] in e.family.label
    assert not torch.equal(e.spectrogram, spec)
    assert e.last_image != image
    pitches = list(e.pitch.options)
    assert pitches == sorted({int(p) for p in notes.pitch[notes.family == other]})
    spec = e.spectrogram.clone()
    e.pitch.value = next(p for p in pitches if p != e.pitch.value)
    assert not torch.equal(e.spectrogram, spec)


def test_solve_mode_with_the_text_box_and_the_patch_buttons(make):
    e = make(seed=3)
    e.num_patches.value = 5
    e.solve.value = True
    assert e.solution == P.invert_permutation(e.perm).tolist()
    wrong = list(reversed(e.solution))
    e.answer.value = " ".join(map(str, wrong))
    assert e.message.startswith("Not yet")
    e.clear_button.click()
    assert e.answer.value == ""
    for k in e.solution[:2]:
        e.patch_buttons.children[k].click()
    assert e.message.startswith("2 of 5")
    image = e.last_image
    for k in e.solution[2:]:
        e.patch_buttons.children[k].click()
    assert e.message.startswith("Solved")
    assert e.last_image != image
    e.answer.value = "0 0 1"
    assert "used twice" in e.message
    e.answer.value = "9"
    assert "does not exist" in e.message
    assert e.errors == []  # bad answers are the student's, not the program's


def test_parse_order():
    assert parse_order("2 0, 1", 3) == [2, 0, 1]
    assert parse_order("", 3) == []
    for bad in ("a", "3", "1 1"):
        with pytest.raises(ValueError):
            parse_order(bad, 3)


def test_audio_players_change_with_the_shuffle(make):
    e = make(audio=True, n_iter=8)
    original, shuffled = bytes(e.audio_original.value), bytes(e.audio_shuffled.value)
    assert original.startswith(b"RIFF") and shuffled.startswith(b"RIFF")
    assert original != shuffled
    assert len(_wav_frames(original)) > 8000
    e.shuffle_button.click()
    assert bytes(e.audio_original.value) == original  # same note, same (cached) sound
    assert bytes(e.audio_shuffled.value) != shuffled
    e.reset_button.click()
    k = e.num_patches.value
    crop = len(_wav_frames(bytes(e.audio_shuffled.value)))
    assert crop == 256 * (63 - 63 % k - 1)  # Griffin-Lim of the cropped frames
    e.kind.value = "freq"
    assert bytes(e.audio_shuffled.value).startswith(b"RIFF")


def test_griffin_lim_inverts_a_log_mel(notes):
    """The inverted audio's log-mel is close to the one it came from (a direct check)."""
    from minis2l.data import log_mel

    spec = np.asarray(notes.features[0], dtype=np.float32)
    audio = griffin_lim(spec, n_iter=16)
    assert audio.dtype == np.float32 and np.abs(audio).max() == pytest.approx(0.9)
    again = log_mel(audio)
    frames = min(again.shape[1], spec.shape[1])
    loud = spec[:, :frames] > np.log(1e-3)
    corr = np.corrcoef(again[:, :frames][loud], spec[:, :frames][loud])[0, 1]
    assert corr > 0.8
    assert _wav_frames(wav_bytes(audio)).shape == audio.shape


def test_callback_errors_are_recorded_and_strict_reraises(notes):
    e = ShuffleExplorer(notes, audio=False)

    def boom(_):
        raise RuntimeError("boom")

    e.check_button.on_click(e._guard(boom))
    e.check_button.click()  # ipywidgets' click dispatcher logs and swallows; we keep it
    assert [str(x) for x in e.errors] == ["boom"]
    assert "boom" in e.status.value

    strict = ShuffleExplorer(notes, audio=False, strict=True)
    strict.num_patches.observe(strict._guard(lambda change: boom(change)), names="value")
    with pytest.raises(RuntimeError, match="boom"):
        strict.num_patches.value = 3
    assert len(strict.errors) == 1
