"""Energy stability: velocity Verlet against RK4 at the same step over 10^6 steps.

A symplectic method keeps the energy error of a Hamiltonian system bounded for exponentially long
times, while a non-symplectic one lets it drift (Hairer, Lubich & Wanner, "Geometric Numerical
Integration", 2006, Sec. I.1 and IX.8). Problems, both float64 and with analytic forces:

* kepler: two bodies (masses 1, 1, G = 1, a = 1) on an orbit of eccentricity 0.5, 100 steps
  per period (h = P / 100 = 0.0444; 10^6 steps = 10^4 orbits), started at pericentre;
* springs: a ring of 8 particles in 2D with springs to the first and second neighbours
  (stiffness 1-2, masses 0.5-1.5, seeded), rest lengths those of the regular octagon, started
  from the octagon with 0.1 random displacements and velocities (zero total momentum), h = 0.05.

Each method runs through ``scidl.numerics.symplectic.integrate_second_order`` (Verlet: one force
evaluation per step; RK4: four, on the first-order system) in ``torch.inference_mode``, keeping
the state only at ~180 sample steps (log spaced, plus every 1% of the run); |Delta E / E| is
recorded there. Per run: seconds, microseconds per step, the error at 10% of the run and at the
end, and the largest error in the first and the last tenth.

Usage: python benchmarks/energy_stability.py [--steps N] [--quick] [--jobs J] [--threads T]
       [--out FILE]
Writes benchmarks/results/energy_stability.json and energy_stability.png (--quick: *_quick.*).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from _results import machine_info, utc_now, write_result

from scidl.numerics.symplectic import integrate_second_order
from scidl.sims import MechanicalSystem, SpringNetwork, kepler_orbit

HERE = Path(__file__).resolve().parent
F64 = torch.float64
METHODS = ("verlet", "rk4")
PROBLEMS = ("kepler", "springs")


def kepler_problem() -> tuple[MechanicalSystem, torch.Tensor, torch.Tensor, float, dict]:
    orbit = kepler_orbit(0.5, semi_major_axis=1.0, masses=(1.0, 1.0), G=1.0, dim=2)
    step = orbit.period / 100
    description = {"eccentricity": 0.5, "semi_major_axis": 1.0, "masses": [1.0, 1.0], "G": 1.0,
                   "period": orbit.period, "steps_per_period": 100, "step": step}
    return orbit.system(learnable=False), orbit.positions, orbit.velocities, step, description


def springs_problem(n: int = 8, seed: int = 0
                    ) -> tuple[MechanicalSystem, torch.Tensor, torch.Tensor, float, dict]:
    generator = torch.Generator().manual_seed(seed)
    angles = torch.arange(n, dtype=F64) * 2 * math.pi / n
    octagon = torch.stack([torch.cos(angles), torch.sin(angles)], -1) / (2 * math.sin(math.pi / n))
    edges = torch.tensor([[i, (i + k) % n] for k in (1, 2) for i in range(n)])
    rest = torch.linalg.vector_norm(octagon[edges[:, 0]] - octagon[edges[:, 1]], dim=-1)
    stiffness = 1 + torch.rand(len(edges), generator=generator, dtype=F64)
    masses = 0.5 + torch.rand(n, generator=generator, dtype=F64)
    system = SpringNetwork(edges, stiffness, rest, masses, dim=2, learnable=False)
    q0 = octagon + 0.1 * torch.randn(n, 2, generator=generator, dtype=F64)
    v0 = 0.1 * torch.randn(n, 2, generator=generator, dtype=F64)
    v0 = v0 - (masses[:, None] * v0).sum(0) / masses.sum()
    step = 0.05
    description = {"particles": n, "springs": len(edges), "dim": 2, "seed": seed, "step": step}
    return system, q0, v0, step, description


def sample_steps(steps: int) -> np.ndarray:
    logarithmic = np.logspace(0, math.log10(steps), 80)
    linear = np.linspace(0, steps, 101)
    return np.unique(np.concatenate([[0], np.round(logarithmic), np.round(linear)])).astype(int)


def run(problem: str, method: str, steps: int, threads: int) -> dict:
    torch.set_num_threads(threads)
    system, q0, v0, h, _ = {"kepler": kepler_problem, "springs": springs_problem}[problem]()
    samples = sample_steps(steps)
    times = torch.as_tensor(samples, dtype=F64) * h
    started = time.perf_counter()
    with torch.inference_mode():
        q, v = integrate_second_order(system.acceleration, q0, v0, times, h, method=method)
    seconds = time.perf_counter() - started
    with torch.inference_mode():
        energy = system.energy_qv(q, v)
        error = ((energy - energy[0]) / energy[0]).abs().numpy()
    first = samples <= steps // 10
    last = samples >= steps - steps // 10
    tenth = int(np.searchsorted(samples, steps // 10))
    return {
        "problem": problem, "method": method, "steps": steps, "seconds": seconds,
        "microseconds_per_step": 1e6 * seconds / steps,
        "rel_energy_error_at_10pct": float(error[tenth]),
        "rel_energy_error_at_end": float(error[-1]),
        "max_rel_energy_error": float(error.max()),
        "max_rel_energy_error_first_tenth": float(error[first].max()),
        "max_rel_energy_error_last_tenth": float(error[last].max()),
        "sample_steps": samples.tolist(),
        "rel_energy_error": error.tolist(),
    }


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5.5 * len(results), 4), squeeze=False)
    for ax, (problem, runs) in zip(axes[0], results.items()):
        for method, r in runs.items():
            steps, error = np.array(r["sample_steps"][1:]), np.array(r["rel_energy_error"][1:])
            label = f"{'velocity Verlet' if method == 'verlet' else 'RK4'} " \
                    f"({r['microseconds_per_step']:.0f} us/step)"
            ax.loglog(steps, np.maximum(error, 1e-17), label=label)
        ax.set_title(f"{problem}, h = {r['step']:.3g}")
        ax.set_xlabel("step")
        ax.set_ylabel("|E - E0| / |E0|")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1_000_000, help="steps per run")
    parser.add_argument("--quick", action="store_true", help="10^4 steps, *_quick.* outputs")
    parser.add_argument("--only", nargs="*", choices=PROBLEMS, help="problems to run")
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel processes")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--out", help="result file (default benchmarks/results/"
                                      "energy_stability.json)")
    args = parser.parse_args()
    steps = 10_000 if args.quick else args.steps
    out = Path(args.out) if args.out else \
        HERE / "results" / f"energy_stability{'_quick' if args.quick else ''}.json"
    problems = args.only or PROBLEMS
    started = time.perf_counter()
    load_before = os.getloadavg()
    jobs = [(p, m, steps, args.threads) for p in problems for m in METHODS]
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        finished = list(pool.map(run, *zip(*jobs)))
    results: dict = {}
    for r in finished:
        description = {"kepler": kepler_problem, "springs": springs_problem}[r["problem"]]()[-1]
        results.setdefault(r["problem"], {})[r["method"]] = {**description, **r}
        print(f"{r['problem']:<8} {r['method']:<7} {r['seconds']:8.1f} s "
              f"{r['microseconds_per_step']:7.1f} us/step  |dE/E| at 10%: "
              f"{r['rel_energy_error_at_10pct']:.2e}  end: {r['rel_energy_error_at_end']:.2e}  "
              f"max first/last tenth: {r['max_rel_energy_error_first_tenth']:.2e} / "
              f"{r['max_rel_energy_error_last_tenth']:.2e}", flush=True)
    figure = out.with_suffix(".png")
    plot(results, figure)
    result = {
        "benchmark": "energy_stability",
        "mode": "quick" if args.quick else "default",
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "steps": steps,
        "note": ("|dE/E| relative to the initial energy at the sample steps; microseconds per "
                 "step include the python loop (tiny tensors: overhead-bound); runs in "
                 f"{args.jobs} parallel process(es), {args.threads} torch thread(s) each"),
        "problems": results,
        "figure": figure.name,
        "machine": machine_info(load_average_before=load_before,
                                load_average_after=os.getloadavg()),
        "seconds": time.perf_counter() - started,
        "date": utc_now(),
    }
    print(f"wrote {write_result(out, result)} and {figure} ({result['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
