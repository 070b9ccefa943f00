"""Time minis2l.soft_rank against torchsort.soft_rank and plain torch.sort, in one run.

For each (batch, n) the script reports the median wall time of the forward pass and of
forward + backward (l2 regularization, strength 1, float32 by default), and the ratios
minis2l / torchsort and minis2l / torch.sort. torch.sort's "forward + backward" is a sort whose
values are summed and back-propagated, the cheapest differentiable thing one could do.

Usage:  python benchmarks/ranking.py [--repeats R] [--dtype float32|float64] [--device cpu|cuda]
        [--reg l2|kl] [--sizes 256x16,8x10000] [--threads T]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torchsort

import minis2l

DEFAULT_SIZES = [(256, 16), (256, 64), (64, 1000), (8, 10_000), (1, 100_000)]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def interleaved_medians(
    fns: dict[str, Callable[[], object]], repeats: int, device: torch.device
) -> dict[str, float]:
    """Median wall time of each ``fn()``, timing them in turn so that noise hits all alike."""
    for _ in range(5):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            _sync(device)
            start = time.perf_counter()
            fn()
            _sync(device)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def contenders(reg: str) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    return {
        "minis2l": lambda x: minis2l.soft_rank(x, reg, 1.0),
        "torchsort": lambda x: torchsort.soft_rank(x, reg, 1.0),
        "torch.sort": lambda x: torch.sort(x, dim=-1).values,
    }


def measure(batch: int, n: int, args: argparse.Namespace) -> dict[str, tuple[float, float]]:
    """{name: (forward seconds, forward+backward seconds)} for one size."""
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    x = torch.randn(batch, n, dtype=dtype, device=device, generator=None)
    g = torch.randn_like(x)
    fns = {}
    for name, fn in contenders(args.reg).items():
        xg = x.clone().requires_grad_()

        def forward(fn=fn):
            with torch.no_grad():
                return fn(x)

        def forward_backward(fn=fn, xg=xg):
            xg.grad = None
            fn(xg).backward(g)

        fns[(name, "f")] = forward
        fns[(name, "fb")] = forward_backward
    med = interleaved_medians(fns, args.repeats, device)
    return {name: (med[(name, "f")], med[(name, "fb")]) for name, _ in fns}


def peak_extra_memory(batch: int, n: int) -> float:
    """Bytes saved for backward by minis2l.soft_rank, per input element (float32)."""
    x = torch.randn(batch, n, requires_grad=True)
    saved = []

    def pack(t):
        saved.append(t.numel() * t.element_size())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        minis2l.soft_rank(x)
    return sum(saved) / x.numel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=51, help="timed calls per cell (median)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--reg", default="l2", choices=["l2", "kl"])
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument(
        "--sizes",
        default=",".join(f"{b}x{n}" for b, n in DEFAULT_SIZES),
        help="comma-separated BATCHxN list",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    torch.manual_seed(0)
    print(
        f"soft_rank, regularization={args.reg}, strength=1, {args.dtype}, device={args.device}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"median of {args.repeats}\n"
    )
    header = (
        "| batch x n | minis2l fwd | torchsort fwd | torch.sort fwd | minis2l f+b | "
        "torchsort f+b | torch.sort f+b | f+b vs torchsort | f+b vs torch.sort |"
    )
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for batch, n in sizes:
        r = measure(batch, n, args)
        ms = {k: (f * 1e3, fb * 1e3) for k, (f, fb) in r.items()}
        print(
            f"| {batch} x {n} | {ms['minis2l'][0]:.3f} ms | {ms['torchsort'][0]:.3f} ms | "
            f"{ms['torch.sort'][0]:.3f} ms | {ms['minis2l'][1]:.3f} ms | "
            f"{ms['torchsort'][1]:.3f} ms | {ms['torch.sort'][1]:.3f} ms | "
            f"{r['minis2l'][1] / r['torchsort'][1]:.2f}x | "
            f"{r['minis2l'][1] / r['torch.sort'][1]:.2f}x |"
        )
    print(
        f"\nmemory saved for backward by minis2l: {peak_extra_memory(64, 1000):.0f} bytes per "
        "input element (O(batch * n))"
    )


if __name__ == "__main__":
    main()
