"""Time one training step with the ranking head and with the jigsaw head, in one run.

Same encoder, same context layer, same batch of log-mel spectrograms; only the head and the
loss differ (soft rank + squared error over all K! permutations, against cross-entropy over a
fixed set of P permutations). The paper's claim is that the ranking head costs nothing extra.
Steps alternate between the two heads so that machine noise hits both alike; the medians are
reported, with samples per second, and the last line ends with ``ratio: X.XX`` (rank / jigsaw).

Usage:  python benchmarks/heads.py [--batch-size 64] [--num-patches 6] [--patches freq]
        [--steps 30] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from minis2l import patches as P
from minis2l.pretrain import PretrainConfig, build_model, pretext_loss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--num-patches", type=int, default=PretrainConfig().num_patches)
    parser.add_argument("--patches", default=PretrainConfig().patches)
    parser.add_argument("--perm-set-size", type=int, default=100)
    parser.add_argument("--steps", type=int, default=30, help="timed steps per head")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    x = torch.randn(args.batch_size, 64, 63, device=device)
    setups = {}
    for method in ("rank", "jigsaw"):
        cfg = PretrainConfig(
            method=method,
            patches=args.patches,
            num_patches=args.num_patches,
            perm_set_size=args.perm_set_size,
            device=args.device,
        )
        torch.manual_seed(0)
        model = build_model(cfg).to(device)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        perm_set = P.fixed_permutation_set(cfg.num_perms(), cfg.num_patches)
        labels = torch.randint(len(perm_set), (args.batch_size,))
        perms = (
            P.random_permutations(args.batch_size, cfg.num_patches)
            if method == "rank"
            else perm_set[labels]
        )
        setups[method] = (cfg, model, opt, perms.to(device), labels.to(device))

    def step(method: str) -> float:
        cfg, model, opt, perms, labels = setups[method]
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        loss, _ = pretext_loss(model, cfg, x, perms, labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    for _ in range(3):  # warm-up (Numba compilation, allocator)
        step("rank"), step("jigsaw")
    times = {"rank": [], "jigsaw": []}
    for _ in range(args.steps):
        for method in times:
            times[method].append(step(method))
    print(
        f"batch {args.batch_size}, {args.patches} patches, K = {args.num_patches}, "
        f"P = {setups['jigsaw'][0].num_perms()}, device {device}, "
        f"{torch.get_num_threads()} threads, median of {args.steps} steps"
    )
    med = {m: statistics.median(t) for m, t in times.items()}
    for m in ("rank", "jigsaw"):
        params = sum(p.numel() for p in setups[m][1].parameters())
        print(
            f"{m:7s} {1e3 * med[m]:8.2f} ms/step  {args.batch_size / med[m]:8.1f} samples/s  "
            f"({params} parameters)"
        )
    print(f"ranking head / jigsaw head time per step, ratio: {med['rank'] / med['jigsaw']:.2f}")


if __name__ == "__main__":
    main()
