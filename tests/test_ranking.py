"""minis2l.soft_rank / soft_sort against torchsort, independent solvers, limits and gradients."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import scipy.optimize
import scipy.stats
import torch
import torchsort
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.isotonic import IsotonicRegression

import minis2l
from minis2l import isotonic
from minis2l._pav import pav

REGS = ["l2", "kl"]
STRENGTHS = [1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0, 1e3]


def _rand(b: int, n: int, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    return torch.randn(b, n, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# --- agreement with torchsort -------------------------------------------------------------


@pytest.mark.parametrize("reg", REGS)
@pytest.mark.parametrize("eps", STRENGTHS)
@pytest.mark.parametrize("n", [1, 2, 3, 17, 200])
def test_equal_to_torchsort(reg, eps, n):
    x = _rand(8, n, seed=n) * 3
    torch.testing.assert_close(
        minis2l.soft_rank(x, reg, eps), torchsort.soft_rank(x, reg, eps), rtol=0, atol=1e-6
    )
    torch.testing.assert_close(
        minis2l.soft_sort(x, reg, eps), torchsort.soft_sort(x, reg, eps), rtol=0, atol=1e-6
    )


@pytest.mark.parametrize("reg", REGS)
@pytest.mark.parametrize("eps", [1e-3, 1.0, 1e3])
def test_equal_to_torchsort_with_ties(reg, eps):
    x = torch.randint(0, 4, (16, 12), generator=torch.Generator().manual_seed(1)).double()
    torch.testing.assert_close(
        minis2l.soft_rank(x, reg, eps), torchsort.soft_rank(x, reg, eps), rtol=0, atol=1e-6
    )
    torch.testing.assert_close(
        minis2l.soft_sort(x, reg, eps), torchsort.soft_sort(x, reg, eps), rtol=0, atol=1e-6
    )


@pytest.mark.parametrize("reg", REGS)
def test_equal_to_torchsort_large_n(reg):
    x = _rand(1, 100_000, seed=3) * 10
    for eps in (1e-3, 1.0, 1e3):
        torch.testing.assert_close(
            minis2l.soft_rank(x, reg, eps), torchsort.soft_rank(x, reg, eps), rtol=0, atol=1e-6
        )
        torch.testing.assert_close(
            minis2l.soft_sort(x, reg, eps), torchsort.soft_sort(x, reg, eps), rtol=0, atol=1e-6
        )


@pytest.mark.parametrize("reg", REGS)
def test_gradients_equal_torchsort(reg):
    x = _rand(4, 30, seed=5).requires_grad_()
    g = _rand(4, 30, seed=6)
    for ours, theirs in [
        (minis2l.soft_rank, torchsort.soft_rank),
        (minis2l.soft_sort, torchsort.soft_sort),
    ]:
        (a,) = torch.autograd.grad(ours(x, reg, 0.3), x, g)
        (b,) = torch.autograd.grad(theirs(x, reg, 0.3), x, g)
        torch.testing.assert_close(a, b, rtol=0, atol=1e-8)


# --- an independent computation: project onto the permutahedron directly -----------------


def _check_projection(mu: np.ndarray, z: np.ndarray, w: np.ndarray, kl: bool) -> None:
    """Check that mu is argmin over P(w) of 1/2||mu - z||^2 (l2) or KL(mu, exp z) (kl).

    P(w), for w sorted descending, is {sum(mu) = sum(w), sum(mu[S]) <= sum of the |S|
    largest w for every subset S}: exponentially many constraints, so small n only. mu must be
    feasible and no worse than what SLSQP finds from the centre; as the objective is strictly
    convex, it must also be close to SLSQP's point.
    """
    n = len(z)
    w = np.sort(w)[::-1]
    cons = [{"type": "eq", "fun": lambda mu: mu.sum() - w.sum()}]
    for k in range(1, n):
        for subset in itertools.combinations(range(n), k):
            idx = list(subset)
            cons.append({"type": "ineq", "fun": lambda mu, i=idx, k=k: w[:k].sum() - mu[i].sum()})
    if kl:
        ez = np.exp(z)

        def f(mu):
            return np.sum(mu * np.log(mu / ez) - mu + ez)

        def grad(mu):
            return np.log(mu / ez)

        x0, bounds = np.full(n, w.mean()), [(1e-9, None)] * n
    else:

        def f(mu):
            return 0.5 * np.sum((mu - z) ** 2)

        def grad(mu):
            return mu - z

        x0, bounds = np.full(n, w.mean()), None
    res = scipy.optimize.minimize(
        f,
        x0,
        jac=grad,
        constraints=cons,
        bounds=bounds,
        method="SLSQP",
        options={"ftol": 1e-12, "maxiter": 1000},
    )
    assert all(c["fun"](res.x) > -1e-6 for c in cons[1:]) and abs(cons[0]["fun"](res.x)) < 1e-6
    assert abs(cons[0]["fun"](mu)) < 1e-9
    assert all(c["fun"](mu) > -1e-9 for c in cons[1:]), "not inside the permutahedron"
    assert f(mu) <= f(res.x) + 1e-9, (f(mu), f(res.x))
    np.testing.assert_allclose(mu, res.x, atol=1e-4)


@pytest.mark.parametrize("reg", REGS)
@pytest.mark.parametrize("seed", range(6))
def test_soft_rank_equals_direct_projection(reg, seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 6))
    x = rng.normal(size=n) * 2
    eps = float(rng.choice([0.3, 1.0, 3.0]))
    rho = np.arange(n, 0, -1, dtype=float)
    got = minis2l.soft_rank(torch.tensor(x)[None], reg, eps)[0].numpy()
    _check_projection(got, x / eps, rho, kl=(reg == "kl"))


@pytest.mark.parametrize("seed", range(4))
def test_soft_sort_l2_equals_direct_projection(seed):
    rng = np.random.default_rng(seed + 10)
    n = int(rng.integers(2, 6))
    x = rng.normal(size=n) * 2
    eps = float(rng.choice([0.3, 1.0, 3.0]))
    # descending soft sort = projection of rho/eps onto P(x)
    got = minis2l.soft_sort(torch.tensor(x)[None], "l2", eps, descending=True)[0].numpy()
    _check_projection(got, np.arange(n, 0, -1) / eps, x, kl=False)


# --- the isotonic solvers ------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_isotonic_l2_matches_sklearn_and_fast_path(seed):
    rng = np.random.default_rng(seed)
    y = rng.normal(size=50) + np.linspace(3, 0, 50)
    expected = IsotonicRegression(increasing=False).fit_transform(np.arange(50), y)
    np.testing.assert_allclose(isotonic.isotonic_l2(y), expected, atol=1e-12)
    v, _, _ = pav(torch.tensor(y)[None], torch.zeros(1, 50, dtype=torch.float64), 0)
    np.testing.assert_allclose(v[0].numpy(), expected, atol=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_isotonic_kl_plain_matches_fast_path_and_optimality(seed):
    rng = np.random.default_rng(seed)
    s, w = rng.normal(size=30), np.sort(rng.normal(size=30))[::-1].copy()
    plain = isotonic.isotonic_kl(s, w)
    v, blk, _ = pav(torch.tensor(s)[None], torch.tensor(w)[None], 1)
    np.testing.assert_allclose(v[0].numpy(), plain, atol=1e-12)
    assert np.all(np.diff(plain) <= 1e-12)
    # KKT: on each block the gradient exp(w) - exp(s - v) sums to zero.
    for start in np.unique(blk[0].numpy()):
        block = blk[0].numpy() == start
        assert abs(np.sum(np.exp(w[block]) - np.exp(s[block] - plain[block]))) < 1e-9


def test_isotonic_rejects_bad_input():
    # Each message names the argument and what is wrong with its value.
    with pytest.raises(ValueError, match=r"\by\b.*\(2, 2\)"):
        isotonic.isotonic_l2(np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"\by\b.*NaN"):
        isotonic.isotonic_l2(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match=r"\bs\b.*\bw\b.*\(3,\).*\(4,\)"):
        isotonic.isotonic_kl(np.zeros(3), np.zeros(4))


# --- limits and invariants -----------------------------------------------------------------


@pytest.mark.parametrize("reg", REGS)
def test_small_strength_gives_hard_rank_and_sort(reg):
    x = _rand(6, 40, seed=7)
    torch.testing.assert_close(minis2l.soft_rank(x, reg, 1e-6), minis2l.hard_rank(x))
    torch.testing.assert_close(minis2l.soft_sort(x, reg, 1e-6), torch.sort(x).values)
    torch.testing.assert_close(
        minis2l.soft_rank(x, reg, 1e-6, descending=True), minis2l.hard_rank(x, descending=True)
    )


@pytest.mark.parametrize("reg", REGS)
def test_large_strength_collapses_to_the_mean(reg):
    n = 25
    x = _rand(3, n, seed=8)
    ranks = minis2l.soft_rank(x, reg, 1e6)
    torch.testing.assert_close(ranks, torch.full_like(ranks, (n + 1) / 2), rtol=0, atol=1e-3)
    if reg == "l2":
        sorted_ = minis2l.soft_sort(x, reg, 1e6)
        # the spread left is (n - 1) / (2 eps)
        torch.testing.assert_close(
            sorted_, x.mean(-1, keepdim=True).expand_as(x), rtol=0, atol=(n - 1) / 2e6 + 1e-9
        )


vectors = st.lists(
    st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False), min_size=1, max_size=30
)


@settings(max_examples=60, deadline=None)
@given(vectors, st.sampled_from(REGS), st.floats(1e-2, 1e2), st.randoms(use_true_random=False))
def test_permutation_equivariance(values, reg, eps, rnd):
    x = torch.tensor(values, dtype=torch.float64)
    perm = list(range(len(values)))
    rnd.shuffle(perm)
    perm = torch.tensor(perm)
    if len(set(values)) == len(values):  # ties may be broken differently after permuting
        torch.testing.assert_close(
            minis2l.soft_rank(x[perm][None], reg, eps)[0],
            minis2l.soft_rank(x[None], reg, eps)[0][perm],
        )
    # soft sort does not depend on the order of its input at all
    torch.testing.assert_close(
        minis2l.soft_sort(x[perm][None], reg, eps), minis2l.soft_sort(x[None], reg, eps)
    )


@settings(max_examples=60, deadline=None)
@given(vectors, st.sampled_from(REGS), st.floats(1e-2, 1e2))
def test_sum_invariants_and_order(values, reg, eps):
    x = torch.tensor(values, dtype=torch.float64)[None]
    n = x.shape[-1]
    ranks = minis2l.soft_rank(x, reg, eps)
    torch.testing.assert_close(ranks.sum(), torch.tensor(n * (n + 1) / 2, dtype=torch.float64))
    assert torch.all(ranks >= 1 - 1e-9) and torch.all(ranks <= n + 1e-9)
    sorted_ = minis2l.soft_sort(x, reg, eps)
    assert torch.all(sorted_.diff() >= -1e-9), "soft sort must be ascending"
    if reg == "l2":
        torch.testing.assert_close(sorted_.sum(), x.sum())
    # ranks keep the order of the values
    order = torch.argsort(x[0])
    assert torch.all(ranks[0][order].diff() >= -1e-9)


# --- gradients -----------------------------------------------------------------------------


@pytest.mark.parametrize("reg", REGS)
@pytest.mark.parametrize("op", ["rank", "sort"])
@pytest.mark.parametrize("descending", [False, True])
def test_gradcheck(reg, op, descending):
    fn = minis2l.soft_rank if op == "rank" else minis2l.soft_sort
    x = _rand(3, 9, seed=11).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: fn(t, reg, 0.7, descending=descending), (x,))
    y = torch.randn(2, 5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    assert torch.autograd.gradcheck(lambda t: fn(t, reg, 2.0, dim=1), (y.requires_grad_(),))


@pytest.mark.parametrize("reg", REGS)
@pytest.mark.parametrize("fn", [minis2l.soft_rank, minis2l.soft_sort])
def test_compiled_and_torch_backward_agree(reg, fn, monkeypatch):
    """The CPU's fused passes and the device-generic torch ones give the same values and grads."""
    from minis2l import ranking

    x = _rand(5, 40, seed=19).requires_grad_()
    g = _rand(5, 40, seed=20)
    fused = fn(x, reg, 0.4)
    (compiled,) = torch.autograd.grad(fused, x, g)
    monkeypatch.setattr(ranking, "_FORCE_TORCH_PATH", True)
    generic = fn(x, reg, 0.4)
    torch.testing.assert_close(fused, generic, rtol=0, atol=1e-12)
    torch.testing.assert_close(compiled, torch.autograd.grad(generic, x, g)[0], rtol=0, atol=1e-12)


def test_backward_memory_is_linear():
    """The backward saves O(batch * n) tensors: no (n, n) Jacobian is formed."""
    x = _rand(2, 5000, seed=12).requires_grad_()
    saved = []

    def pack(t):
        saved.append(t.numel())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        minis2l.soft_rank(x, "kl", 1.0).sum().backward()
    assert saved and max(saved) <= x.numel()


# --- shapes, dims, dtypes ------------------------------------------------------------------


@pytest.mark.parametrize("fn", [minis2l.soft_rank, minis2l.soft_sort])
def test_dims_and_leading_dimensions(fn):
    x = torch.randn(3, 4, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for dim in range(3):
        expected = fn(x.movedim(dim, -1).reshape(-1, x.shape[dim]), "l2", 0.5)
        expected = expected.reshape(x.movedim(dim, -1).shape).movedim(-1, dim)
        torch.testing.assert_close(fn(x, "l2", 0.5, dim=dim), expected)
        torch.testing.assert_close(fn(x, "l2", 0.5, dim=dim - 3), expected)
    torch.testing.assert_close(fn(x[0, 0], "l2", 0.5), fn(x[0, :1], "l2", 0.5)[0])


def test_descending_conventions():
    x = _rand(4, 10, seed=13)
    n = x.shape[-1]
    torch.testing.assert_close(
        minis2l.soft_rank(x, "l2", 0.5, descending=True), n + 1 - minis2l.soft_rank(x, "l2", 0.5)
    )
    torch.testing.assert_close(
        minis2l.soft_sort(x, "l2", 0.5, descending=True), minis2l.soft_sort(x, "l2", 0.5).flip(-1)
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_dtypes(dtype):
    x = _rand(4, 50, seed=14)
    for fn in (minis2l.soft_rank, minis2l.soft_sort):
        out = fn(x.to(dtype), "l2", 0.5)
        assert out.dtype == dtype
        tol = {torch.float32: 1e-4, torch.float16: 0.1, torch.bfloat16: 0.5}[dtype]
        torch.testing.assert_close(
            out.double(), fn(x.to(dtype).double(), "l2", 0.5), rtol=0, atol=tol
        )


def test_half_gradients_flow():
    x = _rand(2, 8, seed=15).half().requires_grad_()
    minis2l.soft_rank(x).sum().backward()
    assert x.grad is not None and x.grad.dtype == torch.float16


# --- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize("fn", [minis2l.soft_rank, minis2l.soft_sort])
def test_bad_input_is_named(fn):
    # Each message names the argument and what is wrong with its value.
    x = torch.randn(2, 3)
    with pytest.raises(ValueError, match=r"values.*NaN"):
        fn(torch.tensor([[1.0, float("nan")]]))
    with pytest.raises(ValueError, match=r"values.*infinite"):
        fn(torch.tensor([[1.0, float("inf")]]))
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match=rf"regularization_strength.*{bad}"):
            fn(x, "l2", bad)
    with pytest.raises(TypeError, match=r"regularization_strength.*str"):
        fn(x, "l2", "1")
    with pytest.raises(ValueError, match=r"regularization.*'entropy'"):
        fn(x, "entropy")
    with pytest.raises(TypeError, match=r"values.*int64"):
        fn(torch.tensor([[1, 2, 3]]))
    with pytest.raises(TypeError, match=r"values.*list"):
        fn([[1.0, 2.0]])
    with pytest.raises(ValueError, match=r"values.*\(3, 0\)"):
        fn(torch.zeros(3, 0))
    with pytest.raises(ValueError, match=r"dim=2.*2 dimensions"):
        fn(x, dim=2)
    with pytest.raises(ValueError, match=r"values.*scalar"):
        fn(torch.tensor(1.0))


# --- soft Spearman -------------------------------------------------------------------------


def test_soft_spearman_matches_scipy_for_small_strength():
    pred, target = _rand(5, 20, seed=16), _rand(5, 20, seed=17)
    got = minis2l.soft_spearman(pred, target, regularization_strength=1e-6)
    expected = [scipy.stats.spearmanr(p, t).statistic for p, t in zip(pred, target, strict=True)]
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-10)
    assert minis2l.spearman_loss(target, target, regularization_strength=1e-6).item() < 1e-10


def test_spearman_loss_trains_a_ranker():
    torch.manual_seed(0)
    features = torch.randn(64, 10, 4)
    true_w = torch.tensor([1.0, -2.0, 0.5, 0.0])
    target = features @ true_w
    weights = (0.1 * torch.randn(4)).requires_grad_()
    opt = torch.optim.SGD([weights], lr=1.0)
    for _ in range(300):
        opt.zero_grad()
        loss = minis2l.spearman_loss(features @ weights, target, regularization_strength=0.1)
        loss.backward()
        opt.step()
    assert loss.item() < 0.01
    cosine = torch.nn.functional.cosine_similarity(weights.detach(), true_w, dim=0)
    assert cosine > 0.99
    with pytest.raises(ValueError, match=r"pred.*target.*\(2, 3\).*\(2, 4\)"):
        minis2l.soft_spearman(torch.zeros(2, 3), torch.zeros(2, 4))


# --- the CUDA kernel, run by Numba's CUDA simulator on the CPU -----------------------------


def test_cuda_kernel_in_simulator():
    """The CUDA kernel (one row per thread) gives the CPU path's results.

    Numba's simulator interprets the kernel in Python, so this checks the kernel's logic and
    indexing, not the GPU itself or the torch <-> CUDA array hand-over.
    """
    code = textwrap.dedent(
        """
        import numpy as np, torch
        from minis2l import _pav
        rng = np.random.default_rng(0)
        for mode in (0, 1, 2):
            s = rng.normal(size=(5, 9)); w = np.sort(rng.normal(size=(5, 9)))[:, ::-1].copy()
            out = [np.empty_like(s), np.empty(s.shape, np.int64), np.empty_like(s)]
            work = [np.empty(s.shape, np.int64), np.empty_like(s), np.empty_like(s)]
            _pav._cuda_kernel()[2, 4](s, w, mode, *out, *work)
            ref = _pav.pav(torch.tensor(s), torch.tensor(w), mode)
            for a, b in zip(out, ref):
                np.testing.assert_allclose(a, b.numpy(), atol=1e-12)
        print("ok")
        """
    )
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-2000:]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")
@pytest.mark.parametrize("reg", REGS)
def test_cuda_matches_cpu(reg):  # pragma: no cover - GPU only
    x = _rand(16, 300, seed=18).requires_grad_()
    xc = x.detach().cuda().requires_grad_()
    for fn in (minis2l.soft_rank, minis2l.soft_sort):
        out, out_c = fn(x, reg, 0.5), fn(xc, reg, 0.5)
        assert out_c.is_cuda
        torch.testing.assert_close(out_c.cpu(), out)
        (g,) = torch.autograd.grad(out.square().sum(), x)
        (gc,) = torch.autograd.grad(out_c.square().sum(), xc)
        torch.testing.assert_close(gc.cpu(), g)
