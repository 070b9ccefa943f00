"""Deliberately wrong answers to every exercise, for the autograding tests.

``WRONG[exercise][label]`` is the whole solution cell a student might submit: the exercise's
function with a plausible mistake. Each must lose points when autograded, and at least one of
the exercise's *visible* tests must already fail for it, so the student sees the mistake before
grading (tests/test_assignments.py checks both).

``SHORTCUTS[exercise][label]`` computes the right answer by calling the library, scikit-learn or
torch function the exercise asks the student to write. Its visible tests pass (the answer is
right), but a hidden test must fail, so it loses points.

Labels say what is wrong, so a failing test names the mistake that slipped through.
"""

from __future__ import annotations

WRONG: dict[str, dict[str, str]] = {
    # --- 01 isotonic regression -----------------------------------------------------------
    "01_ex1": {
        "counts entries instead of summing weights": """
def pav_weighted(y, weights):
    y = np.asarray(y, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    stack = []  # [start, weighted total, count]
    for i in range(len(y)):
        stack.append([i, weights[i] * y[i], 1])
        while len(stack) > 1 and stack[-2][1] / stack[-2][2] <= stack[-1][1] / stack[-1][2]:
            _, wt, c = stack.pop()
            stack[-1][1] += wt
            stack[-1][2] += c
    v = np.empty(len(y))
    for start, wt, c in stack:
        v[start : start + c] = wt / c
    return v
""",
        "ignores the weights (plain PAV)": """
def pav_weighted(y, weights):
    return pav_l2(y)
""",
        "increasing instead of decreasing": """
def pav_weighted(y, weights):
    y = np.asarray(y, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    stack = []
    for i in range(len(y)):
        stack.append([i, weights[i] * y[i], weights[i], 1])
        while len(stack) > 1 and stack[-2][1] / stack[-2][2] >= stack[-1][1] / stack[-1][2]:
            _, wt, w, c = stack.pop()
            stack[-1][1] += wt
            stack[-1][2] += w
            stack[-1][3] += c
    v = np.empty(len(y))
    for start, wt, w, c in stack:
        v[start : start + c] = wt / w
    return v
""",
        "pools only once per step (if instead of while)": """
def pav_weighted(y, weights):
    y = np.asarray(y, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    stack = []
    for i in range(len(y)):
        stack.append([i, weights[i] * y[i], weights[i], 1])
        if len(stack) > 1 and stack[-2][1] / stack[-2][2] <= stack[-1][1] / stack[-1][2]:
            _, wt, w, c = stack.pop()
            stack[-1][1] += wt
            stack[-1][2] += w
            stack[-1][3] += c
    v = np.empty(len(y))
    for start, wt, w, c in stack:
        v[start : start + c] = wt / w
    return v
""",
    },
    "01_ex2": {
        "wrong sign": """
def kl_block_value(s_block, w_block):
    return float(logsumexp(w_block) - logsumexp(s_block))
""",
        "means instead of log-sum-exps": """
def kl_block_value(s_block, w_block):
    return float(np.mean(s_block) - np.mean(w_block))
""",
        "overflows (log of a sum of exps)": """
def kl_block_value(s_block, w_block):
    return float(np.log(np.sum(np.exp(s_block))) - np.log(np.sum(np.exp(w_block))))
""",
        "maxima instead of log-sum-exps": """
def kl_block_value(s_block, w_block):
    return float(np.max(s_block) - np.max(w_block))
""",
        "one shift for both sums (underflows)": """
def kl_block_value(s_block, w_block):
    m = max(np.max(s_block), np.max(w_block))
    lse_s = m + np.log(np.sum(np.exp(s_block - m)))
    lse_w = m + np.log(np.sum(np.exp(w_block - m)))
    return float(lse_s - lse_w)
""",
    },
    # --- 02 soft sort and rank -------------------------------------------------------------
    "02_ex1": {
        "does not undo the sort": """
def project(z, w, regularization="l2"):
    z, w = np.asarray(z, dtype=np.float64), np.asarray(w, dtype=np.float64)
    perm = np.argsort(-z, kind="stable")
    z_sorted, w_sorted = z[perm], np.sort(w)[::-1]
    if regularization == "l2":
        v = isotonic_l2(z_sorted - w_sorted)
    else:
        v = isotonic_kl(z_sorted, w_sorted)
    return z_sorted - v
""",
        "undoes the sort by reading (r[perm]) instead of writing": """
def project(z, w, regularization="l2"):
    z, w = np.asarray(z, dtype=np.float64), np.asarray(w, dtype=np.float64)
    perm = np.argsort(-z, kind="stable")
    z_sorted, w_sorted = z[perm], np.sort(w)[::-1]
    if regularization == "l2":
        v = isotonic_l2(z_sorted - w_sorted)
    else:
        v = isotonic_kl(z_sorted, w_sorted)
    return (z_sorted - v)[perm]
""",
        "leaves w in its given order": """
def project(z, w, regularization="l2"):
    z, w = np.asarray(z, dtype=np.float64), np.asarray(w, dtype=np.float64)
    perm = np.argsort(-z, kind="stable")
    z_sorted = z[perm]
    if regularization == "l2":
        v = isotonic_l2(z_sorted - w)
    else:
        v = isotonic_kl(z_sorted, w)
    out = np.empty_like(z_sorted)
    out[perm] = z_sorted - v
    return out
""",
        "sorts z ascending": """
def project(z, w, regularization="l2"):
    z, w = np.asarray(z, dtype=np.float64), np.asarray(w, dtype=np.float64)
    perm = np.argsort(z, kind="stable")
    z_sorted, w_sorted = z[perm], np.sort(w)[::-1]
    if regularization == "l2":
        v = isotonic_l2(z_sorted - w_sorted)
    else:
        v = isotonic_kl(z_sorted, w_sorted)
    out = np.empty_like(z_sorted)
    out[perm] = z_sorted - v
    return out
""",
        "returns the isotonic solution v": """
def project(z, w, regularization="l2"):
    z, w = np.asarray(z, dtype=np.float64), np.asarray(w, dtype=np.float64)
    perm = np.argsort(-z, kind="stable")
    z_sorted, w_sorted = z[perm], np.sort(w)[::-1]
    if regularization == "l2":
        v = isotonic_l2(z_sorted - w_sorted)
    else:
        v = isotonic_kl(z_sorted, w_sorted)
    out = np.empty_like(z_sorted)
    out[perm] = v
    return out
""",
        "the squared loss for both regularizations": """
def project(z, w, regularization="l2"):
    z, w = np.asarray(z, dtype=np.float64), np.asarray(w, dtype=np.float64)
    perm = np.argsort(-z, kind="stable")
    z_sorted, w_sorted = z[perm], np.sort(w)[::-1]
    v = isotonic_l2(z_sorted - w_sorted)
    out = np.empty_like(z_sorted)
    out[perm] = z_sorted - v
    return out
""",
    },
    "02_ex2": {
        "skips the sums-are-equal condition": """
def in_permutahedron(y, w, atol=1e-9):
    y_desc, w_desc = np.sort(y)[::-1], np.sort(w)[::-1]
    return bool(np.all(np.cumsum(y_desc) <= np.cumsum(w_desc) + atol))
""",
        "sorts ascending": """
def in_permutahedron(y, w, atol=1e-9):
    y_asc, w_asc = np.sort(y), np.sort(w)
    if abs(y_asc.sum() - w_asc.sum()) > atol:
        return False
    return bool(np.all(np.cumsum(y_asc) <= np.cumsum(w_asc) + atol))
""",
        "does not sort y": """
def in_permutahedron(y, w, atol=1e-9):
    y, w_desc = np.asarray(y, dtype=np.float64), np.sort(w)[::-1]
    if abs(y.sum() - w_desc.sum()) > atol:
        return False
    return bool(np.all(np.cumsum(y) <= np.cumsum(w_desc) + atol))
""",
        "checks the entries' range instead of partial sums": """
def in_permutahedron(y, w, atol=1e-9):
    y, w = np.asarray(y, dtype=np.float64), np.asarray(w, dtype=np.float64)
    if abs(y.sum() - w.sum()) > atol:
        return False
    return bool(y.max() <= w.max() + atol and y.min() >= w.min() - atol)
""",
    },
    "02_ex3": {
        "n + 1 - rank (right for l2 only)": """
def soft_rank_desc(x, eps=1.0, regularization="l2"):
    x = np.asarray(x, dtype=np.float64)
    return len(x) + 1 - soft_rank_np(x, eps, regularization)
""",
        "negates the ranks instead of the input": """
def soft_rank_desc(x, eps=1.0, regularization="l2"):
    return -soft_rank_np(np.asarray(x, dtype=np.float64), eps, regularization)
""",
        "reverses the array": """
def soft_rank_desc(x, eps=1.0, regularization="l2"):
    return soft_rank_np(np.asarray(x, dtype=np.float64)[::-1], eps, regularization)
""",
        "ranks 1 / x": """
def soft_rank_desc(x, eps=1.0, regularization="l2"):
    return soft_rank_np(1.0 / np.asarray(x, dtype=np.float64), eps, regularization)
""",
    },
    # --- 03 gradients ----------------------------------------------------------------------
    "03_ex1": {
        "does not undo the sort": """
def vjp_l2(g, perm, blk, eps):
    g_sorted = np.asarray(g, dtype=np.float64)[perm]
    means = np.bincount(blk, weights=g_sorted) / np.bincount(blk)
    return (g_sorted - means[blk]) / eps
""",
        "undoes the sort by reading (u[perm]) instead of writing": """
def vjp_l2(g, perm, blk, eps):
    g_sorted = np.asarray(g, dtype=np.float64)[perm]
    means = np.bincount(blk, weights=g_sorted) / np.bincount(blk)
    return ((g_sorted - means[blk]) / eps)[perm]
""",
        "does not sort g": """
def vjp_l2(g, perm, blk, eps):
    g = np.asarray(g, dtype=np.float64)
    means = np.bincount(blk, weights=g) / np.bincount(blk)
    return (g - means[blk]) / eps
""",
        "forgets to divide by eps": """
def vjp_l2(g, perm, blk, eps):
    g_sorted = np.asarray(g, dtype=np.float64)[perm]
    means = np.bincount(blk, weights=g_sorted) / np.bincount(blk)
    out = np.empty_like(g_sorted)
    out[perm] = g_sorted - means[blk]
    return out
""",
        "one global mean instead of block means": """
def vjp_l2(g, perm, blk, eps):
    g = np.asarray(g, dtype=np.float64)
    return (g - g.mean()) / eps
""",
        "block sums instead of block means": """
def vjp_l2(g, perm, blk, eps):
    g_sorted = np.asarray(g, dtype=np.float64)[perm]
    sums = np.bincount(blk, weights=g_sorted)
    out = np.empty_like(g_sorted)
    out[perm] = (g_sorted - sums[blk]) / eps
    return out
""",
        "M g instead of (I - M) g": """
def vjp_l2(g, perm, blk, eps):
    g_sorted = np.asarray(g, dtype=np.float64)[perm]
    means = np.bincount(blk, weights=g_sorted) / np.bincount(blk)
    out = np.empty_like(g_sorted)
    out[perm] = means[blk] / eps
    return out
""",
    },
    "03_ex2": {
        "one softmax over all entries, not per block": """
def kl_block_weights(s, blk):
    s = np.asarray(s, dtype=np.float64)
    e = np.exp(s - s.max())
    return e / e.sum()
""",
        "uniform 1/|B| weights (the l2 case)": """
def kl_block_weights(s, blk):
    return 1.0 / np.bincount(blk)[blk]
""",
        "no block maximum subtracted (overflows)": """
def kl_block_weights(s, blk):
    e = np.exp(np.asarray(s, dtype=np.float64))
    return e / np.bincount(blk, weights=e)[blk]
""",
        "the global maximum subtracted (underflows)": """
def kl_block_weights(s, blk):
    s = np.asarray(s, dtype=np.float64)
    e = np.exp(s - s.max())
    return e / np.bincount(blk, weights=e)[blk]
""",
    },
    "03_ex3": {
        "no centering": """
def soft_spearman_ours(pred, target, eps=1.0):
    a = soft_rank_ours(pred, eps)
    b = minis2l.hard_rank(target.detach()).to(a.dtype)
    return (a * b).sum() / (a.norm() * b.norm())
""",
        "hard ranks for the prediction (no gradient)": """
def soft_spearman_ours(pred, target, eps=1.0):
    a = minis2l.hard_rank(pred.detach()).to(pred.dtype)
    b = minis2l.hard_rank(target.detach()).to(pred.dtype)
    a, b = a - a.mean(), b - b.mean()
    return (a * b).sum() / (a.norm() * b.norm())
""",
        "raw target values instead of their ranks": """
def soft_spearman_ours(pred, target, eps=1.0):
    a = soft_rank_ours(pred, eps)
    b = target.detach().to(a.dtype)
    a, b = a - a.mean(), b - b.mean()
    return (a * b).sum() / (a.norm() * b.norm())
""",
    },
    # --- 04 spectrogram shuffling ----------------------------------------------------------
    "04_ex1": {
        "off by one in the patch grid": """
def split_grid_np(x, rows, cols):
    f, t = x.shape
    h, w = f // rows, t // cols
    grid = x[: rows * h, : cols * w].reshape(rows, h, cols, w)
    return grid.transpose(0, 2, 1, 3).reshape(rows * cols, h, w)[1:]
""",
        "column-major order": """
def split_grid_np(x, rows, cols):
    f, t = x.shape
    h, w = f // rows, t // cols
    grid = x[: rows * h, : cols * w].reshape(rows, h, cols, w)
    return grid.transpose(2, 0, 1, 3).reshape(rows * cols, h, w)
""",
        "reshape without the transpose": """
def split_grid_np(x, rows, cols):
    f, t = x.shape
    h, w = f // rows, t // cols
    return x[: rows * h, : cols * w].reshape(rows * cols, h, w)
""",
        "crops the first bins and frames instead of the last": """
def split_grid_np(x, rows, cols):
    f, t = x.shape
    h, w = f // rows, t // cols
    grid = x[f - rows * h :, t - cols * w :].reshape(rows, h, cols, w)
    return grid.transpose(0, 2, 1, 3).reshape(rows * cols, h, w)
""",
    },
    "04_ex2": {
        "composes in the wrong order (q[p])": """
def unshuffle_twice(p, q):
    r = np.asarray(q)[np.asarray(p)]
    fix = np.empty_like(r)
    fix[r] = np.arange(len(r))
    return fix
""",
        "returns the combined shuffle, not its inverse": """
def unshuffle_twice(p, q):
    return np.asarray(p)[np.asarray(q)]
""",
        "undoes only the second shuffle": """
def unshuffle_twice(p, q):
    q = np.asarray(q)
    fix = np.empty_like(q)
    fix[q] = np.arange(len(q))
    return fix
""",
        "off by one (positions from 1)": """
def unshuffle_twice(p, q):
    r = np.asarray(p)[np.asarray(q)]
    fix = np.empty_like(r)
    fix[r] = np.arange(1, len(r) + 1)
    return fix
""",
    },
    # --- 05 pretraining --------------------------------------------------------------------
    "05_ex1": {
        "targets without the + 1 (positions, not ranks)": """
def rank_loss(scores, perms, eps=cfg.regularization_strength):
    k = scores.shape[-1]
    ranks = soft_rank(scores, cfg.regularization, eps)
    return ((ranks - perms.to(scores.dtype)) / k).square().mean()
""",
        "ranks of the inverse permutation as targets": """
def rank_loss(scores, perms, eps=cfg.regularization_strength):
    k = scores.shape[-1]
    ranks = soft_rank(scores, cfg.regularization, eps)
    target = torch.argsort(perms, dim=-1).to(scores.dtype) + 1
    return ((ranks - target) / k).square().mean()
""",
        "not divided by K": """
def rank_loss(scores, perms, eps=cfg.regularization_strength):
    ranks = soft_rank(scores, cfg.regularization, eps)
    return (ranks - perms.to(scores.dtype) - 1).square().mean()
""",
        "summed over the batch instead of averaged": """
def rank_loss(scores, perms, eps=cfg.regularization_strength):
    k = scores.shape[-1]
    ranks = soft_rank(scores, cfg.regularization, eps)
    return ((ranks - perms.to(scores.dtype) - 1) / k).square().sum()
""",
        "hard ranks (no gradient)": """
def rank_loss(scores, perms, eps=cfg.regularization_strength):
    k = scores.shape[-1]
    ranks = hard_rank(scores.detach()).to(scores.dtype)
    return ((ranks - perms.to(scores.dtype) - 1) / k).square().mean()
""",
        "descending soft rank": """
def rank_loss(scores, perms, eps=cfg.regularization_strength):
    k = scores.shape[-1]
    ranks = soft_rank(scores, cfg.regularization, eps, descending=True)
    return ((ranks - perms.to(scores.dtype) - 1) / k).square().mean()
""",
    },
    "05_ex2": {
        "the most likely class only (no expectation)": """
def jigsaw_expected_ranks(logits, perm_set):
    return perm_set[logits.argmax(-1)].to(logits.dtype) + 1
""",
        "softmax over the batch axis": """
def jigsaw_expected_ranks(logits, perm_set):
    prob = torch.softmax(logits, dim=0)
    return prob @ (perm_set.to(prob.dtype) + 1)
""",
        "positions instead of ranks (no + 1)": """
def jigsaw_expected_ranks(logits, perm_set):
    prob = torch.softmax(logits, dim=-1)
    return prob @ perm_set.to(prob.dtype)
""",
        "logits as weights (no softmax)": """
def jigsaw_expected_ranks(logits, perm_set):
    return logits @ (perm_set.to(logits.dtype) + 1)
""",
        "ranks of the inverse permutations": """
def jigsaw_expected_ranks(logits, perm_set):
    prob = torch.softmax(logits, dim=-1)
    return prob @ (torch.argsort(perm_set, dim=-1).to(prob.dtype) + 1)
""",
    },
    "05_ex3": {
        "per-slot accuracy instead of whole notes": """
def reorder_metrics(scores, perms):
    k = scores.shape[-1]
    pred, true = hard_rank(scores.float()), perms.float() + 1
    exact = (pred == true).float().mean()
    rho = 1 - 6 * (pred - true).square().sum(-1) / (k * (k * k - 1))
    return float(exact), float(rho.mean())
""",
        "K (K - 1) in the Spearman formula": """
def reorder_metrics(scores, perms):
    k = scores.shape[-1]
    pred, true = hard_rank(scores.float()), perms.float() + 1
    exact = (pred == true).all(-1).float().mean()
    rho = 1 - 6 * (pred - true).square().sum(-1) / (k * (k - 1))
    return float(exact), float(rho.mean())
""",
        "argsort of the scores instead of their ranks": """
def reorder_metrics(scores, perms):
    k = scores.shape[-1]
    pred, true = torch.argsort(scores, dim=-1).float() + 1, perms.float() + 1
    exact = (pred == true).all(-1).float().mean()
    rho = 1 - 6 * (pred - true).square().sum(-1) / (k * (k * k - 1))
    return float(exact), float(rho.mean())
""",
    },
    # --- 06 downstream probes --------------------------------------------------------------
    "06_ex1": {
        "penalty alpha, not alpha * N": """
def ridge_scores(x_train, y_train, x_eval, alpha):
    classes = np.unique(y_train)
    targets = (y_train[:, None] == classes[None, :]).astype(np.float64)
    offset = targets.mean(0)
    gram = x_train.T @ x_train + alpha * np.eye(x_train.shape[1])
    return x_eval @ np.linalg.solve(gram, x_train.T @ (targets - offset)) + offset
""",
        "forgets the intercept (class frequencies)": """
def ridge_scores(x_train, y_train, x_eval, alpha):
    classes = np.unique(y_train)
    targets = (y_train[:, None] == classes[None, :]).astype(np.float64)
    gram = x_train.T @ x_train + alpha * len(x_train) * np.eye(x_train.shape[1])
    return x_eval @ np.linalg.solve(gram, x_train.T @ targets)
""",
        "no penalty (plain least squares)": """
def ridge_scores(x_train, y_train, x_eval, alpha):
    classes = np.unique(y_train)
    targets = (y_train[:, None] == classes[None, :]).astype(np.float64)
    offset = targets.mean(0)
    w = np.linalg.lstsq(x_train, targets - offset, rcond=None)[0]
    return x_eval @ w + offset
""",
        "penalty added to every entry of the Gram matrix": """
def ridge_scores(x_train, y_train, x_eval, alpha):
    classes = np.unique(y_train)
    targets = (y_train[:, None] == classes[None, :]).astype(np.float64)
    offset = targets.mean(0)
    gram = x_train.T @ x_train + alpha * len(x_train)
    return x_eval @ np.linalg.solve(gram, x_train.T @ (targets - offset)) + offset
""",
        "one-hot columns 0..max(y), not the classes present": """
def ridge_scores(x_train, y_train, x_eval, alpha):
    targets = np.eye(int(y_train.max()) + 1)[y_train]
    offset = targets.mean(0)
    gram = x_train.T @ x_train + alpha * len(x_train) * np.eye(x_train.shape[1])
    return x_eval @ np.linalg.solve(gram, x_train.T @ (targets - offset)) + offset
""",
    },
    "06_ex2": {
        "averages only over the classes in y_true": """
def macro_f1(y_true, y_pred):
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    scores = []
    for c in np.unique(y_true):
        tp = np.sum((y_pred == c) & (y_true == c))
        fp = np.sum((y_pred == c) & (y_true != c))
        fn = np.sum((y_pred != c) & (y_true == c))
        scores.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores))
""",
        "accuracy (micro average) instead of macro-F1": """
def macro_f1(y_true, y_pred):
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))
""",
        "mean precision instead of F1": """
def macro_f1(y_true, y_pred):
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    scores = []
    for c in np.union1d(y_true, y_pred):
        tp = np.sum((y_pred == c) & (y_true == c))
        fp = np.sum((y_pred == c) & (y_true != c))
        scores.append(tp / (tp + fp) if tp + fp else 0.0)
    return float(np.mean(scores))
""",
    },
    "06_ex3": {
        "a fraction of the whole set, not of each class": """
def stratified_subsample(labels, fraction, seed):
    labels = np.asarray(labels)
    gen = np.random.default_rng(seed)
    k = max(1, int(round(fraction * len(labels))))
    return np.sort(gen.choice(len(labels), size=k, replace=False))
""",
        "indices not sorted": """
def stratified_subsample(labels, fraction, seed):
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    labels = np.asarray(labels)
    gen = np.random.default_rng(seed)
    keep = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        keep.append(gen.choice(idx, size=max(1, int(round(fraction * len(idx)))), replace=False))
    return np.concatenate(keep)[::-1]
""",
        "small classes can vanish (no max(1, ...))": """
def stratified_subsample(labels, fraction, seed):
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    labels = np.asarray(labels)
    gen = np.random.default_rng(seed)
    keep = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        keep.append(gen.choice(idx, size=int(fraction * len(idx)), replace=False))
    return np.sort(np.concatenate(keep))
""",
    },
    # --- 07 beyond audio ------------------------------------------------------------------
    "07_ex1": {
        "row and column offsets swapped": """
def jitter_crop(tiles, margin, offsets):
    if margin == 0:
        return tiles
    n, k, h, w = tiles.shape
    out = torch.empty(n, k, h - margin, w - margin, dtype=tiles.dtype)
    for i in range(n):
        for j in range(k):
            c, r = int(offsets[i, j, 0]), int(offsets[i, j, 1])
            out[i, j] = tiles[i, j, r : r + h - margin, c : c + w - margin]
    return out
""",
        "crops one pixel too many": """
def jitter_crop(tiles, margin, offsets):
    if margin == 0:
        return tiles
    n, k, h, w = tiles.shape
    out = torch.empty(n, k, h - margin - 1, w - margin - 1, dtype=tiles.dtype)
    for i in range(n):
        for j in range(k):
            r, c = int(offsets[i, j, 0]), int(offsets[i, j, 1])
            out[i, j] = tiles[i, j, r : r + h - margin - 1, c : c + w - margin - 1]
    return out
""",
        "ignores the offsets (centre crop)": """
def jitter_crop(tiles, margin, offsets):
    if margin == 0:
        return tiles
    h, w = tiles.shape[-2:]
    c = margin // 2
    return tiles[..., c : c + h - margin, c : c + w - margin]
""",
    },
    "07_ex2": {
        "sorts by x only": """
def unshuffle_clip(frames):
    t, h, w = frames.shape
    ys, xs = np.mgrid[:h, :w]
    mass = frames.sum(axis=(1, 2))
    c = np.stack([(frames * xs).sum(axis=(1, 2)), (frames * ys).sum(axis=(1, 2))], 1)
    c = c / mass[:, None]
    order = np.argsort(c[:, 0])
    step = np.linalg.norm(np.diff(c[order], axis=0), axis=1)
    half = len(step) // 2
    if step[:half].sum() < step[-half:].sum():
        order = order[::-1]
    return np.asarray(order)
""",
        "never decides which end comes first": """
def unshuffle_clip(frames):
    t, h, w = frames.shape
    ys, xs = np.mgrid[:h, :w]
    mass = frames.sum(axis=(1, 2))
    c = np.stack([(frames * xs).sum(axis=(1, 2)), (frames * ys).sum(axis=(1, 2))], 1)
    c = c / mass[:, None]
    centred = c - c.mean(axis=0)
    axis = np.linalg.svd(centred, full_matrices=False)[2][0]
    return np.asarray(np.argsort(centred @ axis))
""",
        "puts the small steps first": """
def unshuffle_clip(frames):
    t, h, w = frames.shape
    ys, xs = np.mgrid[:h, :w]
    mass = frames.sum(axis=(1, 2))
    c = np.stack([(frames * xs).sum(axis=(1, 2)), (frames * ys).sum(axis=(1, 2))], 1)
    c = c / mass[:, None]
    centred = c - c.mean(axis=0)
    axis = np.linalg.svd(centred, full_matrices=False)[2][0]
    order = np.argsort(centred @ axis)
    step = np.linalg.norm(np.diff(c[order], axis=0), axis=1)
    half = len(step) // 2
    if step[:half].sum() > step[-half:].sum():
        order = order[::-1]
    return np.asarray(order)
""",
        "returns each slot's time instead of each time's slot": """
def unshuffle_clip(frames):
    t, h, w = frames.shape
    ys, xs = np.mgrid[:h, :w]
    mass = frames.sum(axis=(1, 2))
    c = np.stack([(frames * xs).sum(axis=(1, 2)), (frames * ys).sum(axis=(1, 2))], 1)
    c = c / mass[:, None]
    centred = c - c.mean(axis=0)
    axis = np.linalg.svd(centred, full_matrices=False)[2][0]
    order = np.argsort(centred @ axis)
    step = np.linalg.norm(np.diff(c[order], axis=0), axis=1)
    half = len(step) // 2
    if step[:half].sum() < step[-half:].sum():
        order = order[::-1]
    return np.argsort(order)
""",
    },
}

SHORTCUTS: dict[str, dict[str, str]] = {
    "01_ex1": {
        "calls IsotonicRegression": """
def pav_weighted(y, weights):
    y = np.asarray(y, dtype=np.float64)
    iso = IsotonicRegression(increasing=False)
    return iso.fit_transform(np.arange(len(y)), y, sample_weight=weights)
""",
    },
    "01_ex2": {
        "calls minimize_scalar": """
def kl_block_value(s_block, w_block):
    def objective(c):
        return np.sum(np.exp(s_block - c)) + c * np.sum(np.exp(w_block))

    guess = float(np.max(s_block) - np.max(w_block))
    return float(minimize_scalar(objective, bracket=(guess - 5, guess + 5), tol=1e-12).x)
""",
    },
    "02_ex3": {
        "calls minis2l.soft_rank(descending=True)": """
def soft_rank_desc(x, eps=1.0, regularization="l2"):
    t = torch.tensor(np.asarray(x, dtype=np.float64))
    return minis2l.soft_rank(t, regularization, eps, descending=True).numpy()
""",
    },
    "03_ex1": {
        "calls jacobian_from_blocks (dense, O(n^2))": """
def vjp_l2(g, perm, blk, eps):
    out = np.empty(len(perm))
    out[perm] = jacobian_from_blocks(blk, eps).T @ np.asarray(g, dtype=np.float64)[perm]
    return out
""",
    },
    "03_ex2": {
        "calls softmax per block": """
def kl_block_weights(s, blk):
    from scipy.special import softmax

    s = np.asarray(s, dtype=np.float64)
    out = np.empty_like(s)
    for b in np.unique(blk):
        out[blk == b] = softmax(s[blk == b])
    return out
""",
    },
    "03_ex3": {
        "calls minis2l.soft_spearman": """
def soft_spearman_ours(pred, target, eps=1.0):
    return minis2l.soft_spearman(pred, target, regularization_strength=eps)
""",
    },
    "04_ex1": {
        "calls minis2l.patches.split_patches": """
def split_grid_np(x, rows, cols):
    import torch
    from minis2l.patches import split_patches

    xt = torch.from_numpy(x)
    bands = split_patches(xt, rows, "freq") if rows > 1 else xt[None]  # (rows, h, T)
    tiles = split_patches(bands, cols, "time") if cols > 1 else bands[:, None]  # (rows, cols, h, w)
    return tiles.reshape(rows * cols, *tiles.shape[-2:]).numpy()
""",
    },
    "04_ex2": {
        "calls np.argsort": """
def unshuffle_twice(p, q):
    return np.argsort(np.asarray(p)[np.asarray(q)])
""",
    },
    "05_ex1": {
        "calls minis2l.pretrain.pretext_loss": """
def rank_loss(scores, perms, eps=cfg.regularization_strength):
    from minis2l.pretrain import PretrainConfig, pretext_loss

    b, k = scores.shape
    c = PretrainConfig(method="rank", patches="time", num_patches=k, regularization_strength=eps)
    x = torch.zeros(b, 4, 4 * k)  # any input: the model below ignores it and returns the scores
    loss, _ = pretext_loss(lambda _: scores, c, x, perms, torch.full((b,), -1))
    return loss.to(scores.dtype)
""",
    },
    "05_ex3": {
        "calls minis2l.pretrain.spearman": """
def reorder_metrics(scores, perms):
    from minis2l.pretrain import spearman

    pred, true = hard_rank(scores.float()), perms.float() + 1
    exact = (pred == true).all(-1).float().mean()
    return float(exact), float(spearman(pred, true).mean())
""",
    },
    "06_ex1": {
        "calls Ridge": """
def ridge_scores(x_train, y_train, x_eval, alpha):
    classes = np.unique(y_train)
    targets = (y_train[:, None] == classes[None, :]).astype(np.float64)
    return Ridge(alpha=alpha * len(x_train)).fit(x_train, targets).predict(x_eval)
""",
    },
    "06_ex2": {
        "calls f1_score": """
def macro_f1(y_true, y_pred):
    return float(f1_score(y_true, y_pred, average="macro", zero_division=0))
""",
    },
    "06_ex3": {
        "calls minis2l.probe.subsample": """
def stratified_subsample(labels, fraction, seed):
    from minis2l.probe import subsample

    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    return np.sort(subsample(np.asarray(labels), fraction, seed))
""",
    },
    "07_ex1": {
        "calls minis2l.patches.crop_patches": """
def jitter_crop(tiles, margin, offsets):
    from minis2l.patches import crop_patches

    return crop_patches(tiles, margin, offsets)
""",
    },
}
