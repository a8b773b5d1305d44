"""scidl against DeepXDE on the Raissi et al. Burgers PINN, side by side in one process.

DeepXDE's own example (``examples/pinn_forward/Burgers.py``, pytorch backend, float32): a
3 x 20 tanh network (Glorot normal), 2,540 domain, 80 boundary and 160 initial points, Adam
(lr 1e-3) for 15,000 iterations, then L-BFGS with DeepXDE's defaults (at most 15,000
iterations; ``--lbfgs`` sets the cap for both libraries). scidl runs the same network, the same
numbers of points and the same optimiser schedule, through its own training loop, with
forward-mode derivatives compiled by ``torch.compile`` (its fast path;
``benchmarks/pinn_derivatives.py``) -- the compile time counts.

Time to accuracy: while training, both runs snapshot the network weights at most every
``--snapshot`` CPU seconds (a forward hook for DeepXDE, whose L-BFGS runs 1,000 iterations per
call; an optimiser hook for scidl). Afterwards every snapshot is scored against the reference
solution (``$SCIDL_DATA/pinn/Burgers.npz``), so the scoring costs neither run any time. Time is
CPU time of the process and of the compiler processes it waits for (``torch.compile``'s work is
kept in-process with ``TORCHINDUCTOR_COMPILE_THREADS=1`` so that it is counted): on a shared
machine that is what a run costs whatever else runs beside it; wall time is reported next to it.
Reported per seed: CPU milliseconds per Adam and per L-BFGS iteration, iterations each optimiser
really ran, the time to relative L2 <= 1e-2 and <= 1e-3, and the final error; the summary gives
scidl's speed-up on every seed and on the medians, a seed that never gets there counting as
never (an infinite time, as in time-to-target benchmarking).

    python benchmarks/pinn_vs_deepxde.py [--seeds 0 1 2 3 4] [--variants same hard recipe rad rad64]

Variants of scidl: ``same`` (soft conditions, exactly DeepXDE's setting), ``hard`` (the
initial and boundary conditions built into the network, ``u = -sin(pi x) + t (1 - x^2) N``,
which leaves only the residual to train; a formulation DeepXDE supports too) and ``recipe``
(the same network and points, in float64, with 1,000 Adam steps before L-BFGS instead of
15,000), ``rad`` (the same network, point count and schedule, float32, but the collocation
points are redrawn every ``--rad-every`` Adam steps by residual-based adaptive sampling, RAD with
``k = c = 1``; L-BFGS trains on the last draw) and ``rad64`` (``rad`` in float64).
"""

from __future__ import annotations

import os

os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")  # count the compiler's CPU time

import argparse
import copy
import math
import time
from pathlib import Path

import numpy as np
import torch
from _results import arguments, cpu_seconds, machine_info, utc_now, write_result
from torch.optim.optimizer import (
    register_optimizer_step_post_hook,
    register_optimizer_step_pre_hook,
)

from scidl.data.pinn_reference import load_pinn_reference
from scidl.models.mlp import MLP
from scidl.pdes import Burgers
from scidl.pinn import (
    AdaptiveSampling,
    DirichletBC,
    FieldNetwork,
    HardConstraint,
    InitialCondition,
    Interval,
    PINNProblem,
    SpaceTime,
    TimeDomain,
)
from scidl.train import Stage, TrainOptions, train

NU = 0.01 / math.pi
RESULTS = Path(__file__).parent / "results" / "pinn_vs_deepxde.json"


def reference():
    return load_pinn_reference("burgers").points()


class Snapshots:
    """Weights against CPU time (and wall time), taken at most every ``interval`` CPU seconds."""

    def __init__(self, module: torch.nn.Module, interval: float):
        self.module, self.interval = module, interval
        self.records: list[tuple[float, float, dict]] = []
        self.start = self.wall_start = None
        self.overhead = self.wall_overhead = 0.0
        self.last = -math.inf

    def begin(self):
        self.start, self.wall_start = cpu_seconds(), time.perf_counter()

    def now(self):
        return (cpu_seconds() - self.start - self.overhead,
                time.perf_counter() - self.wall_start - self.wall_overhead)

    def maybe(self, *_args, **_kwargs):
        if self.start is None:
            return
        c0, w0 = cpu_seconds(), time.perf_counter()
        cpu, wall = c0 - self.start - self.overhead, w0 - self.wall_start - self.wall_overhead
        if cpu - self.last >= self.interval:
            self.last = cpu
            state = {k: v.detach().clone() for k, v in self.module.state_dict().items()}
            self.records.append((cpu, wall, state))
        self.overhead += cpu_seconds() - c0
        self.wall_overhead += time.perf_counter() - w0

    def final(self):
        self.records.append((*self.now(), copy.deepcopy(self.module.state_dict())))


def score(snapshots: Snapshots, module, predict, X, u) -> list[tuple[float, float, float]]:
    """``(cpu seconds, wall seconds, relative L2)`` of every snapshot."""
    curve = []
    for cpu, wall, state in snapshots.records:
        module.load_state_dict(state)
        with torch.no_grad():
            pred = predict(X).double().reshape(-1)
        curve.append((cpu, wall, float((pred - u).norm() / u.norm())))
    return curve


def time_to(curve, threshold, wall: bool = False):
    return next((w if wall else c for c, w, e in curve if e <= threshold), None)


def scores(curve) -> dict:
    return {"cpu_seconds": curve[-1][0], "wall_seconds": curve[-1][1],
            "final_rel_l2": curve[-1][2],
            "time_to_1e-2": time_to(curve, 1e-2), "time_to_1e-3": time_to(curve, 1e-3),
            "wall_time_to_1e-2": time_to(curve, 1e-2, True),
            "wall_time_to_1e-3": time_to(curve, 1e-3, True)}


def run_deepxde(seed: int, X, u, args) -> dict:
    os.environ.setdefault("DDE_BACKEND", "pytorch")
    import deepxde as dde

    dde.config.set_random_seed(seed)

    def pde(x, y):
        dy_x = dde.grad.jacobian(y, x, i=0, j=0)
        dy_t = dde.grad.jacobian(y, x, i=0, j=1)
        dy_xx = dde.grad.hessian(y, x, i=0, j=0)
        return dy_t + y * dy_x - NU * dy_xx

    geomtime = dde.geometry.GeometryXTime(dde.geometry.Interval(-1, 1),
                                          dde.geometry.TimeDomain(0, 0.99))
    bc = dde.icbc.DirichletBC(geomtime, lambda x: 0, lambda _, on_boundary: on_boundary)
    ic = dde.icbc.IC(geomtime, lambda x: -np.sin(np.pi * x[:, 0:1]),
                     lambda _, on_initial: on_initial)
    data = dde.data.TimePDE(geomtime, pde, [bc, ic], num_domain=args.collocation, num_boundary=80,
                            num_initial=160)
    net = dde.nn.FNN([2] + [20] * 3 + [1], "tanh", "Glorot normal")
    snaps = Snapshots(net, args.snapshot)
    net.register_forward_pre_hook(snaps.maybe)
    model = dde.Model(data, net)
    snaps.begin()
    model.compile("adam", lr=1e-3)
    t0 = cpu_seconds()
    model.train(iterations=args.adam, display_every=1000, verbose=0)
    adam_seconds = cpu_seconds() - t0
    dde.optimizers.set_LBFGS_options(maxiter=args.lbfgs)
    model.compile("L-BFGS")
    t0 = cpu_seconds()
    _, state = model.train(verbose=0)
    lbfgs_seconds = cpu_seconds() - t0
    snaps.final()
    lbfgs_iterations = int(state.step) - args.adam
    curve = score(snaps, net, lambda x: net(x.float()), X, u)
    return {"library": "deepxde", "version": dde.__version__, "seed": seed,
            "cpu_ms_per_adam_iteration": 1e3 * adam_seconds / args.adam,
            "cpu_ms_per_lbfgs_iteration": 1e3 * lbfgs_seconds / max(lbfgs_iterations, 1),
            "adam_iterations": args.adam, "lbfgs_iterations": lbfgs_iterations,
            **scores(curve), "curve": curve}


def run_scidl(seed: int, X, u, args, variant: str) -> dict:
    torch.manual_seed(seed)
    domain = SpaceTime(Interval(-1, 1), TimeDomain(0, 0.99))
    constraint, conditions = None, [
        DirichletBC(n=80, value=0.0, method="sobol"),
        InitialCondition(n=160, value=lambda Y: -torch.sin(math.pi * Y[:, :1]), method="sobol"),
    ]
    if variant == "hard":
        constraint = HardConstraint(lambda Y: -torch.sin(math.pi * Y[:, :1]),
                                    lambda Y: Y[:, 1:] * (1 - Y[:, :1] ** 2))
        conditions = []
    dtype = torch.float64 if variant in ("recipe", "rad64") else torch.float32
    sampling = (AdaptiveSampling(every=args.rad_every, k=args.rad_k, c=args.rad_c,
                                 until=args.adam)
                if variant.startswith("rad") else None)
    problem = PINNProblem(Burgers(NU), domain, conditions, collocation=args.collocation,
                          method="sobol",
                          derivatives="forward", compile=not args.no_compile, seed=seed,
                          dtype=dtype, adaptive_sampling=sampling)
    model = problem.model(FieldNetwork(MLP(2, 1, 20, 3, "tanh"), constraint=constraint))
    model = model.to(dtype)
    snaps = Snapshots(model, args.snapshot)
    hook = register_optimizer_step_post_hook(snaps.maybe)
    stages = [Stage("adam", args.adam, 1e-3, "constant"), Stage("lbfgs", args.lbfgs, 1.0)]
    if variant == "recipe":  # scidl's recipe: float64, a short Adam warm-up, then L-BFGS
        stages = [Stage("adam", args.recipe_adam, 1e-3, "cosine"),
                  Stage("lbfgs", args.lbfgs, 1.0)]
    adam_clock = {}

    def adam_done(optimizer, *_):
        if isinstance(optimizer, torch.optim.LBFGS) and "end" not in adam_clock:
            adam_clock["end"] = cpu_seconds()

    lbfgs_hook = register_optimizer_step_pre_hook(adam_done)
    try:
        snaps.begin()
        adam_clock["start"] = cpu_seconds()
        result = train(model, problem, stages, seed=seed,
                       options=TrainOptions(progress=False, log_every=1000,
                                            divergence_factor=1e12))
        snaps.final()
    finally:
        hook.remove()
        lbfgs_hook.remove()
    end = cpu_seconds()
    adam_seconds = adam_clock.get("end", end) - adam_clock["start"]
    lbfgs_iterations = result.optimizer_iterations.get("1:lbfgs")
    curve = score(snaps, model, lambda x: problem.predict(model, x), X, u)
    return {"library": "scidl", "variant": variant, "seed": seed,
            "cpu_ms_per_adam_iteration": 1e3 * adam_seconds / stages[0].steps,
            "cpu_ms_per_lbfgs_iteration": 1e3 * (end - adam_clock.get("end", end))
            / max(lbfgs_iterations or 0, 1),
            "adam_iterations": result.optimizer_iterations.get("0:adam"),
            "lbfgs_iterations": lbfgs_iterations, "lbfgs_stalled_at": result.stalled,
            **scores(curve), "curve": curve}


def _median_time(rows: list[dict], key: str) -> float | None:
    """Median over seeds, a seed that never got there counting as an infinite time."""
    times = [math.inf if r[key] is None else r[key] for r in rows]
    median = float(np.median(times)) if times else math.inf
    return None if math.isinf(median) or math.isnan(median) else median


def speedups(rows: list[dict]) -> dict:
    """DeepXDE's time over scidl's, per seed and on the medians, for each scidl variant."""
    deepxde = {r["seed"]: r for r in rows if r["library"] == "deepxde"}
    out = {}
    for variant in sorted({r["variant"] for r in rows if r["library"] == "scidl"}):
        ours = [r for r in rows if r.get("variant") == variant and r["seed"] in deepxde]
        theirs = [deepxde[r["seed"]] for r in ours]
        for key in ("time_to_1e-2", "time_to_1e-3"):
            per_seed = {}
            for a, b in zip(ours, theirs, strict=True):
                if a[key] is None:
                    per_seed[a["seed"]] = "neither" if b[key] is None else "only DeepXDE"
                else:
                    per_seed[a["seed"]] = "only scidl" if b[key] is None else b[key] / a[key]
            m_ours, m_theirs = _median_time(ours, key), _median_time(theirs, key)
            on_medians = (None if m_ours is None else
                          "only scidl" if m_theirs is None else m_theirs / m_ours)
            out[f"{variant}/{key}"] = {"per_seed": per_seed, "on_medians": on_medians,
                                       "median_scidl": m_ours, "median_deepxde": m_theirs}
    return out


def summary(rows: list[dict]) -> dict:
    out = {}
    for key in sorted({(r["library"], r.get("variant", "")) for r in rows}):
        group = [r for r in rows if (r["library"], r.get("variant", "")) == key]
        t2 = [r["time_to_1e-2"] for r in group if r["time_to_1e-2"] is not None]
        t3 = [r["time_to_1e-3"] for r in group if r["time_to_1e-3"] is not None]
        out["/".join(k for k in key if k)] = {
            "runs": len(group),
            "reached_1e-2": len(t2), "median_time_to_1e-2": _median_time(group, "time_to_1e-2"),
            "reached_1e-3": len(t3), "median_time_to_1e-3": _median_time(group, "time_to_1e-3"),
            "final_rel_l2": [r["final_rel_l2"] for r in group],
            "lbfgs_iterations": [r["lbfgs_iterations"] for r in group],
            "cpu_ms_per_adam_iteration": [r["cpu_ms_per_adam_iteration"] for r in group],
            "cpu_ms_per_lbfgs_iteration": [r["cpu_ms_per_lbfgs_iteration"] for r in group],
        }
    if any(r["library"] == "deepxde" for r in rows):
        out["speedup"] = speedups(rows)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--variants", nargs="+", default=["same", "hard"])
    parser.add_argument("--adam", type=int, default=15000)
    parser.add_argument("--lbfgs", type=int, default=15000,
                        help="L-BFGS iterations at most, for both (DeepXDE's default, 15,000; "
                             "its L-BFGS may stop earlier on its own)")
    parser.add_argument("--recipe-adam", type=int, default=1000,
                        help="Adam steps of the `recipe` variant before its L-BFGS")
    parser.add_argument("--collocation", type=int, default=2540,
                        help="domain points, for both (DeepXDE's example: 2,540)")
    parser.add_argument("--rad-every", type=int, default=1000,
                        help="Adam steps between the `rad` variants' redraws of the points")
    parser.add_argument("--rad-k", type=float, default=1.0)
    parser.add_argument("--rad-c", type=float, default=1.0)
    parser.add_argument("--snapshot", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-deepxde", action="store_true")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--no-compile", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    X, u = reference()
    rows = []
    for seed in args.seeds:
        runs = [] if args.no_deepxde else [("deepxde", None)]
        runs += [("scidl", v) for v in args.variants]
        for library, variant in runs:
            row = (run_deepxde(seed, X, u, args) if library == "deepxde"
                   else run_scidl(seed, X, u, args, variant))
            rows.append(row)
            print(f"seed {seed} {library:7s} {variant or '':5s} final {row['final_rel_l2']:.2e} "
                  f"in {row['cpu_seconds']:.0f} CPU s ({row['wall_seconds']:.0f} s wall, "
                  f"{row['cpu_ms_per_adam_iteration']:.2f} ms per Adam step); "
                  f"to 1e-2: {row['time_to_1e-2']}, "
                  f"to 1e-3: {row['time_to_1e-3']}; L-BFGS iterations "
                  f"{row['lbfgs_iterations']}", flush=True)
            write_result(args.results, {"benchmark": "pinn_vs_deepxde", "date": utc_now(),
                                   "machine": machine_info(),
                                   "args": arguments(args),
                                   "summary": summary(rows), "runs": rows})
    print(summary(rows))


if __name__ == "__main__":
    main()
