"""Patches and permutations: round trips, conventions, the fixed set, and errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import minis2l
from minis2l import patches as P


@st.composite
def spectrograms(draw):
    kind = draw(st.sampled_from(P.KINDS))
    k = draw(st.sampled_from([4, 6, 8, 9]) if kind == "2d" else st.integers(2, 10))
    rows, cols = P.grid_shape(k, kind)
    f = draw(st.integers(rows, 3 * rows + 2))
    t = draw(st.integers(cols, 3 * cols + 2))
    batch = draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2**16))
    x = torch.randn(batch, f, t, generator=torch.Generator().manual_seed(seed))
    return x, k, kind, seed


@settings(max_examples=80, deadline=None)
@given(spectrograms())
def test_split_then_merge_is_identity_on_the_cropped_input(case):
    x, k, kind, _ = case
    parts = P.split_patches(x, k, kind)
    assert parts.shape[-3] == k
    assert torch.equal(P.merge_patches(parts, kind), P.crop_to_patches(x, k, kind))


@settings(max_examples=80, deadline=None)
@given(spectrograms())
def test_shuffle_then_inverse_is_identity_and_ranks_match(case):
    x, k, kind, seed = case
    parts = P.split_patches(x, k, kind)
    perm = P.random_permutations(x.shape[0], k, generator=torch.Generator().manual_seed(seed))
    shuffled = P.permute_patches(parts, perm)
    assert torch.equal(P.permute_patches(shuffled, P.invert_permutation(perm)), parts)
    # slot j holds original patch perm[j], whose target rank is perm[j] + 1
    for b in range(x.shape[0]):
        for j in range(k):
            assert torch.equal(shuffled[b, j], parts[b, perm[b, j]])
    ranks = P.target_ranks(perm)
    assert torch.equal(ranks, perm.float() + 1)
    # the hard rank of the "true position" scores recovers exactly these targets
    assert torch.equal(minis2l.hard_rank(perm.float()), ranks)


def test_patch_geometry():
    x = torch.arange(4 * 6, dtype=torch.float32).reshape(1, 4, 6)
    time = P.split_patches(x, 3, "time")
    assert time.shape == (1, 3, 4, 2) and torch.equal(time[0, 1], x[0, :, 2:4])
    freq = P.split_patches(x, 2, "freq")
    assert freq.shape == (1, 2, 2, 6) and torch.equal(freq[0, 1], x[0, 2:, :])
    grid = P.split_patches(x, 4, "2d")  # 2 x 2 tiles of 2 x 3, reading order
    assert grid.shape == (1, 4, 2, 3)
    assert torch.equal(grid[0, 1], x[0, :2, 3:]) and torch.equal(grid[0, 2], x[0, 2:, :3])
    assert P.grid_shape(6, "2d") == (2, 3) and P.grid_shape(9, "2d") == (3, 3)
    # not divisible: the trailing frames are cropped
    assert P.split_patches(torch.zeros(4, 7), 3, "time").shape == (3, 4, 2)
    assert P.shuffle(x, torch.tensor([2, 0, 1]), 3, "time").shape == (1, 4, 6)


def test_impossible_requests_are_named():
    x = torch.zeros(8, 5)
    # Each message names the argument or the input and the value that does not work.
    with pytest.raises(ValueError, match=r"num_patches.*\b1\b"):
        P.split_patches(x, 1, "time")
    with pytest.raises(ValueError, match=r"8 x 5.*1 x 6"):  # the input and the grid
        P.split_patches(x, 6, "time")
    with pytest.raises(ValueError, match=r"8 x 5.*9 x 1"):
        P.split_patches(x, 9, "freq")
    with pytest.raises(ValueError, match=r"num_patches=7.*2-D"):
        P.split_patches(x, 7, "2d")
    with pytest.raises(ValueError, match=r"kind.*'diagonal'"):
        P.split_patches(x, 2, "diagonal")
    with pytest.raises(ValueError, match=r"input.*\(5,\)"):
        P.split_patches(torch.zeros(5), 2, "time")
    with pytest.raises(TypeError, match=r"perm.*float32"):
        P.permute_patches(P.split_patches(x, 2, "time"), torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"perm.*\b3\b.*\b2 patches"):
        P.permute_patches(P.split_patches(x, 2, "time"), torch.tensor([0, 1, 2]))


def test_random_permutations_are_uniform_and_deterministic():
    gen = torch.Generator().manual_seed(0)
    perms = P.random_permutations(24_000, 4, generator=gen)
    assert torch.equal(perms.sort(-1).values, torch.arange(4).expand_as(perms))
    _, counts = torch.unique(perms, dim=0, return_counts=True)
    assert len(counts) == 24  # every one of the 4! permutations appears
    # chi-square against uniform, 23 degrees of freedom: 99.9 % quantile is about 49.7
    chi2 = ((counts.float() - 1000) ** 2 / 1000).sum()
    assert chi2 < 49.7
    again = P.random_permutations(24_000, 4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(perms, again)
    big = P.random_permutations(3, 20, generator=gen)  # K! ~ 2.4e18, never enumerated
    assert torch.equal(big.sort(-1).values, torch.arange(20).expand(3, 20))


@pytest.mark.parametrize("k, size", [(3, 6), (4, 10), (5, 100), (9, 100), (12, 50)])
def test_fixed_set_is_spread_out(k, size):
    chosen = P.fixed_permutation_set(size, k, seed=1)
    assert chosen.shape == (size, k)
    assert len(torch.unique(chosen, dim=0)) == size
    assert torch.equal(chosen.sort(-1).values, torch.arange(k).expand(size, k))
    assert torch.equal(chosen, P.fixed_permutation_set(size, k, seed=1))
    dist = P.hamming(chosen, chosen).fill_diagonal_(k + 1)
    # far better than random: a random set of the same size has a much smaller minimum
    random_set = P.random_permutations(size, k, generator=torch.Generator().manual_seed(2))
    rdist = P.hamming(random_set, random_set).fill_diagonal_(k + 1)
    assert dist.min() >= rdist.min()
    if size < math.factorial(k):
        assert dist.min() >= 2
    if (k, size) == (9, 100):
        assert dist.min() >= 6  # the jigsaw literature's 100 permutations of 9 tiles reach 6+


def test_fixed_set_errors():
    with pytest.raises(ValueError, match=r"size.*1\.\.6.*\b7\b"):  # the range and the value
        P.fixed_permutation_set(7, 3)
    with pytest.raises(ValueError, match=r"num_patches.*\b1\b"):
        P.fixed_permutation_set(1, 1)


def test_cut_pieces_matches_slicing_by_hand():
    x = torch.randn(2, 9, 12, generator=torch.Generator().manual_seed(0))
    perm = torch.tensor([[2, 0, 3, 1], [1, 3, 0, 2]])
    offsets = torch.randint(0, 3, (2, 4, 2), generator=torch.Generator().manual_seed(1))
    pieces = P.cut_pieces(x, 4, "2d", 2, perm=perm, offsets=offsets)
    assert pieces.shape == (2, 4, 2, 4)  # 2 x 2 tiles of 4 x 6 (one row cropped), less 2
    for b in range(2):
        for j in range(4):
            r, c = divmod(int(perm[b, j]), 2)  # slot j holds tile perm[j]
            dr, dc = offsets[b, j].tolist()
            want = x[b, 4 * r + dr : 4 * r + dr + 2, 6 * c + dc : 6 * c + dc + 4]
            assert torch.equal(pieces[b, j], want)
    centred = P.cut_pieces(x, 3, "time", 2)  # 3 strips of 9 x 4, the centre 7 x 2 of each
    assert torch.equal(centred[:, 1], x[:, 1:8, 5:7])
    assert torch.equal(P.cut_pieces(x, 3, "freq"), P.split_patches(x, 3, "freq"))


def _modality_inputs(name: str) -> torch.Tensor:
    """Three inputs shaped as the modality's items: log-mels, images, video film strips."""
    gen = torch.Generator().manual_seed(0)
    if name == "video":
        from minis2l.vision.video import film_strip, make_clips

        clips, _ = make_clips(torch.rand(3, 28, 28, generator=gen).numpy())
        return film_strip(clips).float()
    shape = {"audio": (64, 63), "image": (28, 28)}[name]
    return torch.randn(3, *shape, generator=gen)


@pytest.mark.parametrize("name", ["audio", "image", "video"])
def test_every_modality_encoder_goes_through_the_probe(name):
    """The probe's layer features cut the same pieces as the encoder (coordinates included)."""
    from minis2l.modality import get
    from minis2l.models import PermutationModel
    from minis2l.probe import embed, embed_layers

    m = get(name)
    torch.manual_seed(0)
    model = PermutationModel("rank", m.patches, m.num_patches, dim=16, jitter=m.jitter,
                             coords=m.coords)  # fmt: skip
    x = _modality_inputs(name)
    layers = embed_layers(model, x.numpy())
    k = m.num_patches
    assert layers["conv"].shape == (3, k * 64)  # the conv stack's 4 * width channels per piece
    np.testing.assert_allclose(layers["patch"], embed(model, x.numpy()), rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        pieces = P.cut_pieces(x, k, m.patches, m.jitter)
        context = model.context(model.encode_patches(pieces)).flatten(1)
    np.testing.assert_allclose(layers["context"], context.numpy(), rtol=1e-5, atol=1e-6)
