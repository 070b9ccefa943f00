"""The widgets, driven from Python as a browser would drive them (no browser).

Notebook 04's patch-shuffle explorer and notebook 02's ε explorer: every control, the states a
student can leave them in, and what they show (PNG at its displayed size, messages, audio).
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
    for bad in ("a", "3", "1 1"):
        with pytest.raises(ValueError):
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
    with pytest.raises(ValueError, match="x must be"):
        EpsExplorer([1.0])
    with pytest.raises(ValueError, match="eps"):
        EpsExplorer(X6, eps=1e3)
