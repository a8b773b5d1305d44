"""Vectorised ensemble training against training the same members one after another.

Eight small MLPs (2 hidden layers of 64 tanh units, Gaussian head) on 10,000 points of a
smooth 4-D regression problem, Gaussian NLL, Adam, 2 epochs at each of several batch sizes:
trained as
one :class:`~scidl.uq.ensemble.VectorizedEnsemble` (one vmap step for all members) and as
eight ordinary modules in sequence with exactly the same work (same initialisations, batch
orders and number of steps: ``fit_ensemble(..., vectorize=False)``). The two are interleaved
``--repeats`` times and the median wall time of each is reported with their ratio; the final
parameters of the two are compared as a check that the work was the same. The vectorised step
removes per-member Python and dispatch overhead, not arithmetic: the ratio is largest for small
batches and shrinks as the (shared) arithmetic -- tanh is the costliest part on CPU, its cost
per element is recorded -- takes over.

Usage: python benchmarks/uq_ensemble_speed.py [--members 8] [--points 10000] [--epochs 2]
[--batch-sizes 32,64,128,256] [--repeats 5] [--threads 1] [--adversarial]
Writes benchmarks/results/uq_ensemble_speed.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from _results import machine_info, utc_now, write_result

from scidl.models.mlp import MLP
from scidl.uq.ensemble import fit_ensemble
from scidl.uq.heads import GaussianHead

HERE = Path(__file__).resolve().parent


def problem(points: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(points, 4, generator=gen) * 2 - 1
    mean = torch.sin(2 * x[:, :1]) * x[:, 1:2] + x[:, 2:3] ** 2 - 0.5 * x[:, 3:]
    noise = 0.05 + 0.1 * x[:, :1].abs()
    return x, mean + noise * torch.randn(points, 1, generator=gen)


def tanh_ns_per_element(repeats: int = 200) -> float:
    """Cost of ``torch.tanh`` on this build (the floor both ways share)."""
    t = torch.randn(8, 100, 64)
    for _ in range(10):
        torch.tanh(t)
    start = time.perf_counter()
    for _ in range(repeats):
        torch.tanh(t)
    return 1e9 * (time.perf_counter() - start) / (repeats * t.numel())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=8)
    parser.add_argument("--points", type=int, default=10_000)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-sizes", default="32,64,128,256")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--adversarial", action="store_true")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "uq_ensemble_speed.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x, y = problem(args.points)

    def factory():
        return GaussianHead(MLP(4, 2, args.width, 2, "tanh"), min_std=1e-3)

    def run(vectorize: bool, batch_size: int):
        start = time.perf_counter()
        model = fit_ensemble(factory, x, y, members=args.members, epochs=args.epochs,
                             batch_size=batch_size, lr=3e-3,
                             adversarial_eps=0.01 if args.adversarial else None, seed=0,
                             vectorize=vectorize)
        return time.perf_counter() - start, model

    rows = []
    for batch_size in [int(b) for b in args.batch_sizes.split(",")]:
        run(True, batch_size)  # warm-up: vmap's first call builds its batching machinery
        run(False, batch_size)
        times: dict[str, list[float]] = {"vectorized": [], "sequential": []}
        for _ in range(args.repeats):  # interleaved, so that load on the machine hits both
            seconds, fast = run(True, batch_size)
            times["vectorized"].append(seconds)
            seconds, slow = run(False, batch_size)
            times["sequential"].append(seconds)
        with torch.no_grad():
            difference = max(float((p - q).abs().max())
                             for p, q in zip(fast.parameters(), slow.parameters()))
        median = {k: statistics.median(v) for k, v in times.items()}
        steps = args.epochs * -(-args.points // batch_size)
        rows.append({
            "batch_size": batch_size, "steps_per_member": steps, "seconds": times,
            "median_seconds": median, "speedup": median["sequential"] / median["vectorized"],
            "ms_per_step_vectorized_all_members": 1e3 * median["vectorized"] / steps,
            "ms_per_step_sequential_one_member": 1e3 * median["sequential"]
            / (steps * args.members),
            "max_parameter_difference_float32": difference})
        print(f"batch {batch_size:4d}: vectorized {median['vectorized']:.2f} s, sequential "
              f"{median['sequential']:.2f} s (median of {args.repeats}): "
              f"{rows[-1]['speedup']:.2f}x; max |param diff| {difference:.1e}", flush=True)
    result = {
        "benchmark": "uq_ensemble_speed", "date": utc_now(), "machine": machine_info(),
        "command": " ".join(sys.argv),
        "setup": {"members": args.members, "points": args.points,
                  "model": f"MLP 4 -> 2x{args.width} tanh -> 2 (GaussianHead)",
                  "epochs": args.epochs, "loss": "gaussian_nll",
                  "optimizer": "Adam 3e-3 (fused)", "adversarial": args.adversarial,
                  "repeats": args.repeats, "dtype": "float32"},
        "tanh_ns_per_element": tanh_ns_per_element(),
        "target_speedup": 3.0,
        "results": rows,
        "target_met_at_batch_sizes": [r["batch_size"] for r in rows if r["speedup"] >= 3.0],
    }
    write_result(args.out, result)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
