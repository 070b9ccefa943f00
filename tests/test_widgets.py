"""The widgets, driven from Python as a browser would drive them (no browser).

Notebook 04's patch-shuffle explorer, notebook 02's ε explorer and the vision puzzles (an
image's tiles, a clip's frames): every control, the states a student can leave them in, and what
they show (PNG at its displayed size, messages, audio).
"""

from __future__ import annotations

import io
import struct
import wave

import ipywidgets as W
import numpy as np
import pytest
import torch
import torchsort
import traitlets
from matplotlib.backends.backend_agg import FigureCanvasAgg

from minis2l import patches as P
from minis2l.data import FAMILIES, load_dataset
from minis2l.widgets import (
    EpsExplorer,
    ShuffleExplorer,
    griffin_lim,
    mel_magnitude,
    parse_order,
    wav_bytes,
)

PNG = b"\x89PNG\r\n\x1a\n"
X6 = np.array([0.4, -1.1, 2.0, 0.9, -0.3, 1.45])


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
        explorer.wait_audio()
        assert explorer.errors == [], explorer.errors


def _wav_frames(data: bytes) -> np.ndarray:
    with wave.open(io.BytesIO(data)) as f:
        assert f.getnchannels() == 1 and f.getsampwidth() == 2 and f.getframerate() == 16000
        return np.frombuffer(f.readframes(f.getnframes()), dtype="<i2")


def _png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    assert data.startswith(PNG)
    return struct.unpack(">II", data[16:24])


def _all_widgets(root: W.Widget) -> list[W.Widget]:
    out = [root]
    for child in getattr(root, "children", ()):
        out += _all_widgets(child)
    return out


# ------------------------------------------------------------------------------ patch explorer


def test_starts_shuffled_and_shows_a_png(make, notes):
    e = make()
    assert e.last_image.startswith(PNG)
    assert bytes(e.image.value) == e.last_image
    k = e.num_patches.value
    assert sorted(e.perm.tolist()) == list(range(k))
    assert e.perm.tolist() != list(range(k))
    row = e.index
    assert notes.family[row] == e.family.value and notes.pitch[row] == e.pitch.value


def test_image_is_rendered_at_the_size_it_is_shown(make):
    """Crisp: the PNG's pixels are the <img>'s size, whatever K, kind or mode."""
    e = make()
    sizes = {_png_size(e.last_image)}
    assert (int(e.image.width), int(e.image.height)) == _png_size(e.last_image)
    assert e.image.layout.align_self == "flex-start"  # not stretched to the output's width
    e.num_patches.value = 12
    e.kind.value = "2d"
    e.solve.value = True
    sizes.add(_png_size(e.last_image))
    assert (int(e.image.width), int(e.image.height)) == _png_size(e.last_image)
    assert len(sizes) == 1, "the picture keeps its size, so the page below does not jump"


def test_figure_has_a_colour_bar_and_titles_without_the_perm(make):
    e = make()
    e.num_patches.value = 12
    labels = [ax.get_ylabel() for ax in e.figure.axes]
    assert "log power" in labels, labels
    titles = [ax.get_title() for ax in e.figure.axes]
    assert "shuffled" in titles and not any("perm" in t for t in titles)
    assert str(e.perm.tolist()) in e.message  # the perm is in the status line, which wraps
    renderer = FigureCanvasAgg(e.figure).get_renderer()
    box = e.figure.bbox
    texts = list(e.figure.texts)  # the suptitle
    for ax in e.figure.axes:
        texts += [ax.title, ax.xaxis.label, ax.yaxis.label, *ax.texts]
    texts = [t for t in texts if t.get_text()]
    assert any(t.get_text().startswith(e.notes.manifest[e.index]["family"]) for t in texts)
    assert sum(t.get_text().isdigit() for t in texts) == 24  # patch numbers, both panels
    for text in texts:  # every title, label and patch number lies inside: nothing is cut
        extent = text.get_window_extent(renderer)
        assert box.x0 <= extent.x0 and extent.x1 <= box.x1, text.get_text()
        assert box.y0 <= extent.y0 and extent.y1 <= box.y1, text.get_text()


def test_help_text_labels_and_alt_text(make):
    e = make(audio=True, n_iter=4)
    everything = _all_widgets(e.widget)
    assert "shuffle" in e.help.value and "solve it" in e.help.value
    for control in (e.family, e.pitch, e.kind, e.num_patches, e.answer):
        assert control.description and control.style.description_width == "initial"
    # The picture in words beside it (ipywidgets' Image has no alt, and a tooltip on an
    # Image or Audio breaks its view in JupyterLab).
    assert "MIDI pitch" in e.caption.value and "time patches" in e.caption.value
    before = e.caption.value
    e.kind.value = "freq"
    assert e.caption.value != before and "freq patches" in e.caption.value
    assert e.image.tooltip is None and e.audio_original.tooltip is None
    labels = [w.value for w in everything if isinstance(w, W.Label)]
    assert "listen: original note" in labels and "shuffled note" in labels
    assert any("click the shuffled patches" in t for t in labels), "the button row has a label"


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
    previous, image = e.perm.tolist(), e.last_image
    for _ in range(5):
        e.shuffle_button.click()
        assert e.perm.tolist() != previous, "a shuffle never shows the same order again"
        assert e.last_image != image
        previous, image = e.perm.tolist(), e.last_image
    e.reset_button.click()
    assert e.perm.tolist() == list(range(e.num_patches.value))
    torch.testing.assert_close(e.shuffled, e.spectrogram)
    assert e.message.startswith("in order")


def test_shuffle_says_so_when_k2_draws_the_same_order(make):
    e = make()
    e.num_patches.value = 2
    assert e.perm.tolist() == [1, 0]
    e.shuffle_button.click()
    assert e.perm.tolist() == [1, 0]
    assert "only one order" in e.message
    e.shuffle_button.click()
    assert "only one order" in e.message
    e.num_patches.value = 3
    assert "only one order" not in e.message


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


def test_k_slider_both_ends(make):
    e = make()
    for k in (min(e.num_patches.options), max(e.num_patches.options)):
        e.num_patches.value = k
        assert len(e.perm) == k and len(e.patch_buttons.children) == k
    assert (min(e.num_patches.options), max(e.num_patches.options)) == (2, 12)


@pytest.mark.parametrize("prime", [5, 7, 11])
def test_2d_offers_only_grids_and_a_prime_k_moves_to_one(make, notes, prime):
    e = make(audio=True, n_iter=4)
    e.num_patches.value = prime
    e.solve.value = True
    e.kind.value = "2d"
    assert e.num_patches.options == (4, 6, 8, 9, 10, 12)
    k = e.num_patches.value
    assert k in (prime - 1, prime + 1)
    assert "prime" in e.message and f"K is now {k}" in e.message
    assert "prime" in e.status.value
    # Everything agrees with the new K: perm, buttons, picture, reassembly, audio.
    assert len(e.perm) == k and len(e.patch_buttons.children) == k
    assert e.placed == [] and all(not b.disabled for b in e.patch_buttons.children)
    rows, cols = P.grid_shape(k, "2d")
    assert e.spectrogram.shape == (64 - 64 % rows, 63 - 63 % cols)
    e.wait_audio()
    assert "ready" in e.audio_status.value
    assert e.audio_shuffled.layout.visibility == e.audio_original.layout.visibility == "visible"
    expected = e._audio_shuffled(e.index, "2d", k, e.perm)
    assert bytes(e.audio_shuffled.value) == expected
    with pytest.raises(traitlets.TraitError):
        e.num_patches.value = prime
    e.kind.value = "time"
    assert e.num_patches.options == tuple(range(2, 13)) and e.num_patches.value == k
    assert "prime" not in e.message


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


def test_entering_solve_mode_draws_a_fresh_puzzle(make):
    e = make(seed=3)
    e.num_patches.value = 5
    shown = e.perm.tolist()
    e.solve.value = True
    assert e.perm.tolist() != shown, "the answer was on screen a moment ago"
    assert e._solve_box.layout.display == ""
    assert str(e.perm.tolist()) not in e.message
    assert e.message.startswith("0 of 5")
    e.solve.value = False
    assert e._solve_box.layout.display == "none"


def test_solve_by_clicking_with_undo_and_disabled_buttons(make):
    e = make(seed=3)
    e.num_patches.value = 5
    e.solve.value = True
    right = e.solution
    buttons = e.patch_buttons.children
    assert e.undo_button.disabled and e.clear_button.disabled
    buttons[right[0]].click()
    buttons[right[1]].click()
    assert e.placed == right[:2] and e.message.startswith("2 of 5")
    assert [b.disabled for b in buttons] == [k in right[:2] for k in range(5)]
    image = e.last_image
    e.choose(right[1])  # a second click on a used patch (the button is disabled anyway)
    assert e.placed == right[:2], "clicking a patch twice keeps the reassembly"
    assert "already placed" in e.message
    assert e.last_image == image
    e.undo_button.click()
    assert e.placed == right[:1] and not buttons[right[1]].disabled
    assert e.answer.value == str(right[0])
    for k in right[1:]:
        buttons[k].click()
    assert e.message.startswith("Solved")
    solved_image = e.last_image
    assert solved_image != image
    e.undo_button.click()
    assert not e.message.startswith("Solved"), "a stale Solved! is cleared"
    e.clear_button.click()
    assert e.answer.value == "" and e.placed == [] and e.message.startswith("0 of 5")


def test_a_wrong_answer_says_which_slots(make):
    e = make(seed=3)
    e.num_patches.value = 5
    e.solve.value = True
    wrong = list(reversed(e.solution))
    for k in wrong:
        e.patch_buttons.children[k].click()
    slots = [j for j in range(5) if wrong[j] != e.solution[j]]
    assert (
        e.message == f"Not yet: {len(slots)} of 5 slots are wrong (slots {slots}). Undo or clear."
    )
    assert "#b00" not in e.status.value or e.message.startswith("Not yet")


def test_typed_answers_and_typos(make):
    e = make(seed=3)
    e.num_patches.value = 5
    e.solve.value = True
    right = e.solution
    e.answer.value = " ".join(map(str, right))
    assert e.message.startswith("Solved")
    e.answer.value = " ".join(map(str, right[:3]))
    assert e.message.startswith("3 of 5"), "a stale Solved! is cleared as the text changes"
    image = e.last_image
    e.answer.value = f"{right[0]} {right[0]}"
    assert "used twice" in e.message and e.placed == right[:3]
    assert e.last_image == image, "a typo keeps the last reassembly on show"
    e.answer.value = "9"
    assert "does not exist" in e.message
    e.shuffle_button.click()
    assert e.answer.value == "" and e.message.startswith("0 of 5")
    assert e.errors == []  # bad answers are the student's, not the program's


def test_parse_order():
    assert parse_order("2 0, 1", 3) == [2, 0, 1]
    assert parse_order("", 3) == []
    # the message names the entry at fault and, for a number out of range, the range
    for bad, match in (("a", r"'a'"), ("3", r"\b3\b.*0 to 2"), ("1 1", r"\b1\b.*twice")):
        with pytest.raises(ValueError, match=match):
            parse_order(bad, 3)


def test_audio_players_change_with_the_shuffle(make):
    e = make(audio=True, n_iter=8)
    e.wait_audio()
    original, shuffled = bytes(e.audio_original.value), bytes(e.audio_shuffled.value)
    assert original.startswith(b"RIFF") and shuffled.startswith(b"RIFF")
    assert original != shuffled
    assert len(_wav_frames(original)) > 8000
    e.shuffle_button.click()
    e.wait_audio()
    assert bytes(e.audio_original.value) == original  # same note, same (cached) sound
    assert bytes(e.audio_shuffled.value) != shuffled
    e.reset_button.click()
    e.wait_audio()
    k = e.num_patches.value
    crop = len(_wav_frames(bytes(e.audio_shuffled.value)))
    assert crop == 256 * (63 - 63 % k - 1)  # Griffin-Lim of the cropped frames
    e.kind.value = "freq"
    e.wait_audio()
    assert bytes(e.audio_shuffled.value).startswith(b"RIFF")


def test_audio_follows_the_last_request_and_matches_an_independent_inversion(make, notes):
    """Quick shuffles: the player is hidden or holds the shown shuffle's sound, never stale."""
    e = make(audio=True, n_iter=8)
    e.wait_audio()
    spec = np.asarray(notes.features[e.index], dtype=np.float32)
    magnitude = torch.from_numpy(mel_magnitude(spec))
    k = e.num_patches.value

    def expected() -> bytes:  # the inversion of the shown shuffle, outside the widget
        shuffled_magnitude = P.shuffle(magnitude, e.perm, k, "time").numpy()
        return wav_bytes(griffin_lim(magnitude=shuffled_magnitude, n_iter=8))

    for _ in range(6):
        e.shuffle_button.click()
        hidden = e.audio_shuffled.layout.visibility == "hidden"
        assert hidden or bytes(e.audio_shuffled.value) == expected()
    e.wait_audio()
    assert bytes(e.audio_shuffled.value) == expected()
    assert bytes(e.audio_original.value) == wav_bytes(griffin_lim(spec, n_iter=8))
    assert "ready" in e.audio_status.value


def test_mel_magnitude_explains_the_mel_power_as_well_as_librosa(notes):
    """Its mel power is close to the stored one, about as close as librosa's L-BFGS NNLS."""
    import librosa

    basis = librosa.filters.mel(sr=16000, n_fft=1024, n_mels=64).astype(np.float64)
    for row in (0, len(notes) // 2, len(notes) - 1):
        spec = np.asarray(notes.features[row], dtype=np.float32)
        power, loud = np.exp(spec.astype(np.float64)), spec > np.log(1e-3)
        ours = mel_magnitude(spec)
        theirs = librosa.feature.inverse.mel_to_stft(power, sr=16000, n_fft=1024)
        assert ours.shape == theirs.shape and (ours >= 0).all()
        fit = {}
        for name, magnitude in (("ours", ours), ("librosa", theirs)):
            again = basis @ magnitude.astype(np.float64) ** 2
            residual = np.linalg.norm(again - power) / np.linalg.norm(power)
            corr = np.corrcoef(np.log(np.maximum(again, 1e-5))[loud], spec[loud])[0, 1]
            fit[name] = residual, corr
        assert fit["ours"][0] < 0.05, fit
        assert fit["ours"][1] > fit["librosa"][1] - 0.02, fit


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
    from minis2l.widgets import _guarded

    e = ShuffleExplorer(notes, audio=False)

    def boom(_):
        raise RuntimeError("boom")

    e.shuffle_button.on_click(_guarded(e, boom))
    e.shuffle_button.click()  # ipywidgets' click dispatcher logs and swallows; we keep it
    assert [str(x) for x in e.errors] == ["boom"]
    assert "boom" in e.status.value

    strict = ShuffleExplorer(notes, audio=False, strict=True)
    strict.num_patches.observe(_guarded(strict, boom), names="value")
    with pytest.raises(RuntimeError, match="boom"):
        strict.num_patches.value = 3
    assert len(strict.errors) == 1


# ------------------------------------------------------------------------------ eps explorer


def test_eps_explorer_shows_the_rank_function_for_the_controls_values():
    calls = []

    def rank_fn(x, eps, reg):
        calls.append((eps, reg))
        return torchsort.soft_rank(torch.tensor(x)[None], reg, eps)[0].numpy()

    e = EpsExplorer(X6, rank_fn, strict=True)
    assert calls == [(1.0, "l2")]
    for eps, reg in [(10.0, "l2"), (10.0, "kl"), (0.1, "kl")]:
        e.eps.value, e.regularization.value = eps, reg
        assert calls[-1] == (e.eps.value, e.regularization.value)
        expected = torchsort.soft_rank(torch.tensor(X6)[None], reg, eps)[0].numpy()
        np.testing.assert_allclose(e.ranks, expected)
        heights = [bar.get_height() for bar in e.figure.axes[0].patches]
        np.testing.assert_allclose(heights, expected)
    assert e.errors == []


def test_eps_explorer_default_is_minis2l_soft_rank():
    e = EpsExplorer(X6, eps=0.3, strict=True)
    e.regularization.value = "kl"
    expected = torchsort.soft_rank(torch.tensor(X6)[None], "kl", 0.3)[0].numpy()
    np.testing.assert_allclose(e.ranks, expected, atol=1e-9)


def test_eps_check_holds_whatever_state_the_student_left():
    """Notebook 02's check cell, after the student left kl and ε = 10 (no redraw on set)."""
    from minis2l.ranking import soft_rank

    def rank_fn(x, eps, reg):
        return soft_rank(torch.tensor(x)[None], reg, eps)[0].numpy()

    for left in [(10.0, "kl"), (0.1, "l2"), (1.0, "kl")]:
        e = EpsExplorer(X6, rank_fn, strict=True)
        e.eps.value, e.regularization.value = left
        redraws = e.redraws
        e.eps.value, e.regularization.value = left  # the values it holds: no redraw
        assert e.redraws == redraws
        images = []
        for eps, reg in [(0.1, "l2"), (10.0, "l2"), (10.0, "kl"), (0.1, "kl")]:
            e.eps.value, e.regularization.value = eps, reg
            np.testing.assert_allclose(e.ranks, rank_fn(X6, eps, reg))
            images.append(e.last_image)
        assert len(set(images)) == 4


def test_eps_explorer_redraws_in_place():
    """One Image widget whose value is replaced: nothing is emptied and refilled."""
    e = EpsExplorer(X6, strict=True)
    image, figure = e.image, e.figure
    assert not any(isinstance(w, W.Output) for w in _all_widgets(e.widget))
    values = set()
    for eps in np.geomspace(0.01, 100, 9):
        e.eps.value = float(eps)
        assert e.image is image and e.figure is figure
        assert bytes(e.image.value) == e.last_image and e.last_image.startswith(PNG)
        values.add(e.last_image)
    assert len(values) == 9 and e.redraws == 10
    assert (int(e.image.width), int(e.image.height)) == _png_size(e.last_image)


def test_eps_explorer_legend_vector_help_and_one_eps_format():
    e = EpsExplorer(X6, strict=True)
    _, labels = e.figure.axes[0].get_legend_handles_labels()
    assert labels == ["hard rank", "$(n+1)/2$", "soft rank"]
    for v in X6:
        assert f"{v:g}" in e.vector.value
    ticks = [t.get_text() for t in e.figure.axes[0].get_xticklabels()]
    assert ticks[1] == "$x_{1}$ = -1.1"
    assert "(n+1)/2 = 3.5" in e.help.value
    e.eps.value = 10**-1.5
    shown = format(e.eps.value, e.eps.readout_format)
    assert e.eps.readout_format == ".3g" and shown == "0.0316"
    assert f"ε = {shown}" in e.figure.axes[0].get_title()
    assert f"ε = {shown}" in e.message and e.image.tooltip is None
    for control in (e.eps, e.regularization):
        assert control.style.description_width == "initial"


def test_eps_explorer_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\bx\b.*\(1,\)"):
        EpsExplorer([1.0])
    with pytest.raises(ValueError, match=r"eps.*1000"):
        EpsExplorer(X6, eps=1e3)


# ------------------------------------------------------------------------------ vision puzzles


class _Oracle(torch.nn.Module):
    """A rank "model" that knows the answer: it finds each shuffled piece among the natural ones
    and scores it by its true position (``swap``: two slots' answers exchanged)."""

    method = "rank"

    def __init__(self, kind, num_patches, jitter=0, swap=None, fail=None):
        super().__init__()
        self.kind, self.num_patches, self.jitter = kind, num_patches, jitter
        self.swap, self.fail, self.seen = swap, fail, []

    def pieces(self, x):
        self.natural = P.crop_patches(P.split_patches(x, self.num_patches, self.kind), self.jitter)
        return self.natural

    def forward(self, shuffled):
        if self.fail is not None:
            raise self.fail
        self.seen.append(shuffled)
        dist = (shuffled[:, :, None] - self.natural[:, None]).pow(2).flatten(3).sum(-1)
        position = dist.argmin(-1).float()
        if self.swap is not None:
            a, b = self.swap
            position[:, [a, b]] = position[:, [b, a]]
        return 3 * position - 5  # scores increase with the true position


@pytest.fixture(scope="module")
def noise():
    """Images and film strips whose pieces all differ (an oracle's answer is then unique)."""
    gen = torch.Generator().manual_seed(0)
    return torch.randn(6, 28, 28, generator=gen), torch.randn(5, 24, 8 * 24, generator=gen)


@pytest.fixture(scope="module")
def vision_items():
    from minis2l.vision import load_images, load_video

    return load_images(fast=True, verbose=False), load_video(fast=True, verbose=False)


def _is_perm(perm, k):
    return sorted(perm.tolist()) == list(range(k))


def test_vision_tile_puzzle_shuffle_never_repeats_nor_is_the_identity(noise):
    from minis2l.widgets import ClipShuffle, TilePuzzle

    t = TilePuzzle(noise[0], strict=True)
    assert _is_perm(t.perm, 9) and t.perm.tolist() != list(range(9))
    assert t.solve_button.disabled and "no model" in t.model_note.value
    assert "no model" in t.message and t.prediction is None and t.placed == 0
    previous, image = t.perm.clone(), t.last_image
    for _ in range(8):
        t.shuffle_button.click()
        assert _is_perm(t.perm, 9) and t.perm.tolist() != list(range(9))
        assert not torch.equal(t.perm, previous), "a shuffle never shows the same order again"
        assert t.last_image != image and t.last_image.startswith(PNG)
        previous, image = t.perm.clone(), t.last_image
    with pytest.raises(ValueError, match="no model"):
        t.solve()
    assert t.errors == []
    c = ClipShuffle(noise[1][:, :, :72], frames=3, strict=True)  # 5 orders to choose from
    seen = set()
    for _ in range(12):
        previous = c.perm.tolist()
        c.shuffle()
        assert c.perm.tolist() not in (previous, [0, 1, 2]) and _is_perm(c.perm, 3)
        seen.add(tuple(c.perm.tolist()))
    assert len(seen) >= 4, "the shuffles vary"
    two = ClipShuffle(noise[1][:, :, :48], frames=2, strict=True)
    two.shuffle()  # with 2 frames the one order that moves them is drawn again
    assert two.perm.tolist() == [1, 0]


def test_vision_tile_puzzle_shows_the_library_tiles_at_display_size(noise):
    from minis2l.widgets import TilePuzzle

    t = TilePuzzle(noise[0], jitter=2, class_names=list("abcdef"), strict=True)
    tiles = P.split_patches(noise[0][0], 9, "2d")[:, 1:8, 1:8]  # 9 x 9 tiles, 1 px off each side
    torch.testing.assert_close(t.pieces, tiles)
    torch.testing.assert_close(t.shuffled, tiles[t.perm])
    assert t.reassembled is None
    assert bytes(t.image.value) == t.last_image
    assert (int(t.image.width), int(t.image.height)) == _png_size(t.last_image)
    titles = [ax.get_title() for ax in t.figure.axes]
    assert titles == ["original", "shuffled (slot j)", "model's reassembly (slot)"]
    drawn = t.figure.axes[1].images[0]  # tiles of 7 x 7 px with 1 px gaps
    assert drawn.get_extent() == [-0.5, 22.5, 22.5, -0.5]
    np.testing.assert_array_equal(drawn.get_array()[8:15, 16:23], t.shuffled[5].numpy())
    gaps = np.ma.getmaskarray(drawn.get_array())  # NaN, drawn white
    assert gaps[7].all() and gaps[:, 15].all() and not gaps[8:15, 16:23].any()
    shuffled_labels = [x.get_text() for x in t.figure.axes[1].texts if x.get_text()]
    assert shuffled_labels == [str(j) for j in range(9)], "each shuffled slot is numbered"
    assert "image 0 (a)" in t.figure.texts[0].get_text() and "image 0 (a)" in t.caption.value
    assert t.image.tooltip is None


def test_vision_tile_puzzle_an_oracle_solves_it(noise):
    from minis2l.widgets import TilePuzzle

    oracle = _Oracle("2d", 9, jitter=2)
    t = TilePuzzle(noise[0], oracle, strict=True)
    assert not t.solve_button.disabled
    t.select(4)
    t.solve_button.click()
    x = noise[0][4][None]
    torch.testing.assert_close(oracle.seen[-1], P.permute_patches(oracle.pieces(x), t.perm))
    assert torch.equal(t.prediction, t.perm)
    assert t.placed == 9 and "the model put 9 of 9 tiles in place" in t.message
    assert "solved!" in t.message and "#060" in t.status.value
    torch.testing.assert_close(t.reassembled, t.pieces)
    labels = [x for x in t.figure.axes[2].texts if x.get_text()]
    assert [x.get_text() for x in labels] == [str(j) for j in torch.argsort(t.perm).tolist()]
    assert {x.get_color() for x in labels} == {"#4d4"}
    t.shuffle()
    assert t.prediction is None and t.placed == 0 and "Shuffled" in t.message
    t.solve()
    assert t.placed == 9 and t.errors == []


def test_vision_tile_puzzle_counts_the_misplaced_tiles(noise):
    from minis2l.widgets import TilePuzzle

    t = TilePuzzle(noise[0], _Oracle("2d", 9, jitter=2, swap=(2, 6)), strict=True)
    t.solve()
    assert t.placed == 7
    assert t.message == (
        "the model put 7 of 9 tiles in place; not solved: slots [2, 6] went to the wrong place"
    )
    assert "#060" not in t.status.value
    colors = [x.get_color() for x in t.figure.axes[2].texts if x.get_text()]
    assert colors.count("#f55") == 2 and colors.count("#4d4") == 7


def test_vision_tile_puzzle_identical_tiles_are_interchangeable(noise):
    """Two blank tiles swapped: the picture is the original, so the puzzle is solved."""
    from minis2l.widgets import TilePuzzle

    image = noise[0][:1].clone()
    image[0, :9, :18] = -1.0  # tiles 0 and 1 are the same blank tile
    t = TilePuzzle(image, strict=True)
    t.perm = torch.tensor([1, 0, 2, 3, 4, 5, 6, 7, 8])
    t.model = _Oracle("2d", 9, jitter=2)
    t.solve()
    assert t.placed == 9 and "solved!" in t.message


def test_vision_select_shows_another_item_and_clears_the_answer(noise):
    from minis2l.widgets import TilePuzzle

    t = TilePuzzle(noise[0], _Oracle("2d", 9, jitter=2), strict=True)
    t.solve()
    perm, image = t.perm.clone(), t.last_image
    t.item.value = 3  # as the browser would
    assert t.index == 3 and t.prediction is None and torch.equal(t.perm, perm)
    torch.testing.assert_close(t.pieces, t.pieces_of(noise[0][3][None])[0])
    assert t.last_image != image and "image 3" in t.caption.value
    t.select(5)
    assert t.item.value == 5 and t.index == 5
    for bad in (6, -1):
        with pytest.raises(ValueError, match=rf"item {bad}\b.*0 to 5"):
            t.select(bad)
    assert t.index == 5 and t.errors == []


def test_vision_untrained_models_run(vision_items):
    from minis2l.pretrain import PretrainConfig, build_model
    from minis2l.vision import frames_of
    from minis2l.widgets import ClipShuffle, TilePuzzle

    images, video = vision_items
    classes = images.metadata["classes"]
    names = [classes[c] for c in images.labels["test"]["class"]]
    torch.manual_seed(0)
    shown = {}
    for modality, make in (
        ("image", lambda m: TilePuzzle(images.inputs["test"], m, class_names=names, strict=True)),
        ("video", lambda m: ClipShuffle(video.inputs["test"], m, strict=True)),
    ):
        model = build_model(PretrainConfig(method="rank", modality=modality, fast=True))
        model.train()
        w = make(model)
        w.select(7)
        w.solve_button.click()
        k = model.num_patches
        assert _is_perm(w.prediction, k) and 0 <= w.placed <= k
        assert f"of {k} {w.noun}s in place" in w.message
        assert model.training, "the model's train/eval mode is given back"
        assert w.errors == []
        shown[modality] = w
    assert f"image 7 ({names[7]})" in shown["image"].caption.value
    strip = torch.tensor(video.inputs["test"][7])
    torch.testing.assert_close(shown["video"].pieces, frames_of(strip, 8))


def test_vision_bad_inputs_raise(noise):
    from minis2l.models import PermutationModel
    from minis2l.widgets import ClipShuffle, TilePuzzle

    images, strips = noise
    nan = images.clone()
    nan[2, 5, 5] = float("nan")
    for bad, match in [
        (images[0], r"images.*\(N, H, W\).*\(28, 28\)"),  # what, what was expected, the value
        (images[:0], r"images.*N >= 1.*\(0, 28, 28\)"),
        (nan, r"images.*NaN.*\[2\]"),  # and which items
    ]:
        with pytest.raises(ValueError, match=match):
            TilePuzzle(bad)
    with pytest.raises(ValueError, match=r"strips.*infinite.*\[0, 1\]"):
        ClipShuffle(torch.full((2, 24, 192), float("inf")))
    with pytest.raises(ValueError, match=r"strips.*\b190\b.*\b8 frames"):
        ClipShuffle(strips[:, :, :190])
    with pytest.raises(ValueError, match=r"frames=1"):
        ClipShuffle(strips, frames=1)
    with pytest.raises(ValueError, match=r"\b3 class names.*\b6 images"):
        TilePuzzle(images, class_names=["a", "b", "c"])
    with pytest.raises(ValueError, match=r"num_patches=7.*2-D"):
        TilePuzzle(images, num_patches=7)
    jigsaw = PermutationModel("jigsaw", "2d", 9, num_perms=10, dim=16, jitter=2)
    with pytest.raises(ValueError, match=r"rank.*method='jigsaw'"):
        TilePuzzle(images, jigsaw)
    with pytest.raises(ValueError, match=r"model.*\b4 '2d'.*puzzle.*\b9\b"):
        TilePuzzle(images, _Oracle("2d", 4, jitter=2))
    with pytest.raises(ValueError, match=r"model.*jitter=0.*puzzle.*jitter=2"):
        TilePuzzle(images, _Oracle("2d", 9, jitter=0))
    with pytest.raises(ValueError, match=r"model.*\b9 '2d'.*puzzle.*\b8 'time'"):
        ClipShuffle(strips, _Oracle("2d", 9))


def test_vision_callback_errors_are_recorded_and_strict_reraises(noise):
    from minis2l.widgets import ClipShuffle, TilePuzzle, _guarded

    t = TilePuzzle(noise[0], _Oracle("2d", 9, jitter=2, fail=RuntimeError("boom")))
    image = t.last_image
    t.solve_button.click()
    assert [str(e) for e in t.errors] == ["boom"]
    assert t.message == "error: RuntimeError: boom" and "#b00" in t.status.value
    assert t.prediction is None and t.last_image == image
    t.shuffle_button.click()  # the widget still works
    assert len(t.errors) == 1 and "Shuffled" in t.message

    class Wrong(_Oracle):
        def forward(self, shuffled):
            return torch.zeros(1, 3)

    c = ClipShuffle(noise[1], Wrong("time", 8))
    c.solve_button.click()
    assert "scores of shape (1, 3), not (1, K)" in c.message and len(c.errors) == 1
    failing = _Oracle("2d", 9, jitter=2, fail=RuntimeError("boom"))
    strict = TilePuzzle(noise[0], failing, strict=True)
    with pytest.raises(RuntimeError, match="boom"):  # a click swallows it: guard it directly
        _guarded(strict, strict.solve)()
    assert len(strict.errors) == 1 and "boom" in strict.message


def test_vision_clip_shuffle_player_has_one_picture_per_frame(noise):
    from minis2l.widgets import ClipShuffle

    c = ClipShuffle(noise[1], strict=True)
    assert c.play.min == c.frame_slider.min == 0
    assert c.play.max == c.frame_slider.max == 7
    assert (c._link.source, c._link.target) == ((c.play, "value"), (c.frame_slider, "value"))
    assert len(c.frame_images) == 8 and len(set(c.frame_images)) == 8
    for ax, shown in zip(c.player_figure.axes, (c.pieces, c.shuffled), strict=False):
        assert ax.images[0].get_extent() == [-0.5, 23.5, 23.5, -0.5]  # one 24 x 24 frame
        np.testing.assert_array_equal(ax.images[0].get_array(), shown[7].numpy())  # drawn last
    assert all(png.startswith(PNG) for png in c.frame_images)
    assert (int(c.frame_image.width), int(c.frame_image.height)) == _png_size(c.frame_images[0])
    assert bytes(c.frame_image.value) == c.frame_images[0]
    c.show_frame(5)
    assert c.frame == c.frame_slider.value == 5 and bytes(c.frame_image.value) == c.frame_images[5]
    c.frame_slider.value = 2  # the slider (and the player, linked to it in the browser)
    assert c.frame == 2 and bytes(c.frame_image.value) == c.frame_images[2]
    with pytest.raises(ValueError, match=r"frame 8\b.*0 to 7"):
        c.show_frame(8)
    before = list(c.frame_images)
    c.shuffle_button.click()
    assert len(c.frame_images) == 8 and c.frame_images != before and c.frame == 2
    assert bytes(c.frame_image.value) == c.frame_images[2]
    assert "Shuffle frames" == c.shuffle_button.description and c.solve_button.disabled
    assert c.errors == []


def test_vision_clip_shuffle_an_oracle_reorders_it(noise):
    from minis2l.vision import frames_of
    from minis2l.widgets import ClipShuffle

    c = ClipShuffle(noise[1], _Oracle("time", 8), strict=True)
    c.select(2)
    torch.testing.assert_close(c.pieces, frames_of(noise[1][2], 8))
    torch.testing.assert_close(c.shuffled, c.pieces[c.perm])
    before = list(c.frame_images)
    c.solve_button.click()
    assert torch.equal(c.prediction, c.perm) and c.placed == 8
    assert "the model put 8 of 8 frames in place: solved!" == c.message
    torch.testing.assert_close(c.reassembled, c.pieces)
    assert c.frame_images != before, "the player shows the model's reorder once it has one"
    rows = [ax.get_title() for ax in c.figure.axes]
    assert rows == ["original clip (frame t)", "shuffled (slot j)", "model's reorder (slot)"]
    swapped = ClipShuffle(noise[1], _Oracle("time", 8, swap=(0, 7)), strict=True)
    swapped.solve()
    assert swapped.placed == 6 and "slots [0, 7] went to the wrong place" in swapped.message
