"""Residual-based adaptive sampling (RAD) in Wu et al.'s protocol, on the Raissi Burgers problem.

Wu, Zhu, Tan, Kartha & Lu (CMAME 403, 2023) pretrain on uniform points (Adam, then L-BFGS), then
repeat rounds of: redraw the collocation points from the residual (``|r|^k / mean |r|^k + c``),
1,000 Adam steps, 1,000 L-BFGS iterations. This script runs that protocol with scidl's
``AdaptiveSampling(start=..., every=...)`` against the same schedule on fixed Sobol points, with
DeepXDE's 3 x 20 network and few collocation points (500 by default), where uniform points
cannot resolve the shock. Relative L2 against ``$SCIDL_DATA/pinn/Burgers.npz`` after every
round.

    python benchmarks/pinn_rad.py [--points 500] [--rounds 30] [--dtype float64] [--seed 0]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch
from _results import arguments, cpu_seconds, machine_info, utc_now, write_result
from pinn_vs_deepxde import NU, reference
from torch.optim.optimizer import register_optimizer_step_post_hook

from scidl.models.mlp import MLP
from scidl.pdes import Burgers
from scidl.pinn import (
    AdaptiveSampling,
    DirichletBC,
    FieldNetwork,
    InitialCondition,
    Interval,
    PINNProblem,
    SpaceTime,
    TimeDomain,
)
from scidl.train import Stage, TrainOptions, train

RESULTS = Path(__file__).parent / "results" / "pinn_rad.json"
PRETRAIN_ADAM, PRETRAIN_LBFGS, ROUND = 15000, 2000, 1000


def run(variant: str, args, X, u) -> dict:
    """One training: ``uniform`` (fixed Sobol points) or ``rad`` (a draw at every round)."""
    dtype = getattr(torch, args.dtype)
    start = PRETRAIN_ADAM + PRETRAIN_LBFGS
    sampling = (AdaptiveSampling(every=2 * ROUND, start=start, k=args.k, c=args.c)
                if variant == "rad" else None)
    torch.manual_seed(args.seed)
    problem = PINNProblem(
        Burgers(NU), SpaceTime(Interval(-1, 1), TimeDomain(0, 0.99)),
        [DirichletBC(n=80, value=0.0, method="sobol"),
         InitialCondition(n=160, value=lambda Y: -torch.sin(math.pi * Y[:, :1]),
                          method="sobol")],
        collocation=args.points, method="sobol", derivatives="forward", compile=True,
        seed=args.seed, dtype=dtype, adaptive_sampling=sampling)
    model = problem.model(FieldNetwork(MLP(2, 1, 20, 3, "tanh"))).to(dtype)
    stages = [Stage("adam", PRETRAIN_ADAM, 1e-3, "constant"), Stage("lbfgs", PRETRAIN_LBFGS, 1.0)]
    stages += [Stage("adam", ROUND, 1e-3, "constant"), Stage("lbfgs", ROUND, 1.0)] * args.rounds

    def error() -> float:
        with torch.no_grad():
            prediction = problem.predict(model, X.to(dtype)).double().reshape(-1)
        return float((prediction - u).norm() / u.norm())

    curve, steps, began = [], [0], cpu_seconds()

    def after_step(*_):  # the error at the end of the pretraining and of every round
        steps[0] += 1
        if steps[0] >= start and (steps[0] - start) % (2 * ROUND) == 0:
            curve.append((steps[0], cpu_seconds() - began, error()))

    hook = register_optimizer_step_post_hook(after_step)
    try:
        result = train(model, problem, stages, seed=args.seed,
                       options=TrainOptions(progress=False, log_every=1000))
    finally:
        hook.remove()
    errors = [e for _, _, e in curve]
    return {"variant": variant, "final_rel_l2": error(), "best_rel_l2": min(errors),
            "median_rel_l2_last_10_rounds": float(torch.tensor(errors[-10:]).median()),
            "cpu_seconds": cpu_seconds() - began, "lbfgs_stalled_at": result.stalled,
            "curve": curve}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float64")
    parser.add_argument("--k", type=float, default=1.0)
    parser.add_argument("--c", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    X, u = reference()
    rows = []
    for variant in ("uniform", "rad"):
        rows.append(run(variant, args, X, u))
        row = rows[-1]
        print(f"{variant:7s} final {row['final_rel_l2']:.2e}, best {row['best_rel_l2']:.2e}, "
              f"median of the last 10 rounds {row['median_rel_l2_last_10_rounds']:.2e}, "
              f"{row['cpu_seconds']:.0f} CPU s", flush=True)
        write_result(args.results, {"benchmark": "pinn_rad", "date": utc_now(),
                                    "machine": machine_info(),
                                    "args": arguments(args),
                                    "runs": rows})


if __name__ == "__main__":
    main()
