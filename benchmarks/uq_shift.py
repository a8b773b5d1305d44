"""Does a deep ensemble of FNOs know when it is out of its depth? Burgers under a shift.

Setup (Lakshminarayanan et al., "Simple and Scalable Predictive Uncertainty Estimation using Deep
Ensembles", NeurIPS 2017, Sec. 3.5, transposed to neural operators):

* data: 1D viscous Burgers ``u_t + u u_x = nu u_xx`` on the unit torus (nu = 0.01 by default),
  the map ``u(., 0) -> u(., 1)`` at 128 points, solved by scidl's pseudo-spectral ETDRK4 solver
  (calibrated to 1e-6). The initial states are Gaussian random fields
  ``N(0, sigma^2 (-Laplacian + tau^2 I)^-gamma)``, gamma = 2:
  - training and in-distribution test: tau = 5, sigma = 25 (the FNO paper's text setting);
  - shifted test: tau = 15 (a 3x shorter correlation length: rougher initial states), with
    sigma chosen so that the pointwise standard deviation of ``u(., 0)`` is the same, so the
    shift is one of length-scale only, not of amplitude;
* model: an ensemble of 5 FNO-1D (16 modes, width 32, 4 layers, no coordinate channel), each
  trained from its own seed (initialisation and batch order) through scidl's training loop,
  relative-L2 loss, Adam with a one-cycle schedule; the members are trained through
  ``scidl.uq.parallel.train_ensemble_members`` (``--backend ray`` runs them as Ray tasks);
* prediction: ``Prediction.from_samples`` over the members (mixture mean and std).

Reported, in distribution and under the shift: the ensemble mean's relative L2 and RMSE, the mean
predicted std, the coverage of the central 90 % Gaussian interval; Spearman's rank correlation
between each sample's predicted std (mean over its points) and its RMSE -- on the pooled
in-distribution + shifted test set (the question "which predictions should I not trust?") and on
each set alone -- and between pointwise std and pointwise absolute error.
Targets: Spearman >= 0.5 and the std rising under the shift.

Usage: python benchmarks/uq_shift.py [--quick] [--backend sequential|ray] [--ray-address ADDR]
       [--num-workers N] [--epochs E] [--members M] [--nu NU] [--threads T]
Writes benchmarks/results/uq_shift.json (--quick: uq_shift_quick.json).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch
from _results import machine_info, utc_now, write_result
from scipy.stats import spearmanr

from scidl.data import TrajectoryRecipe, generate_trajectories
from scidl.models import FNO1d
from scidl.numerics import GaussianRandomField, PeriodicGrid
from scidl.train import FieldRegression, Stage, TrainOptions, train
from scidl.uq import Prediction
from scidl.uq.parallel import train_ensemble_members

HERE = Path(__file__).resolve().parent
GAMMA = 2.0
TRAIN_TAU, TRAIN_SIGMA = 5.0, 25.0
MODEL = {"modes": 16, "width": 32, "layers": 4, "grid_channel": False}


# ---- data -------------------------------------------------------------------------------------

def pointwise_std(sigma: float, tau: float, gamma: float, points: int = 1024) -> float:
    """Pointwise standard deviation of the zero-mean periodic GRF: ``sqrt(sum_k lambda_k)``
    over all modes ``k != 0`` (the rfft layout holds each ``+-k`` pair once)."""
    eigenvalues = GaussianRandomField(sigma, tau, gamma).eigenvalues(PeriodicGrid((points,), 1.0))
    return math.sqrt(2 * float(eigenvalues[1:].sum()))


def matched_sigma(tau: float) -> float:
    """The sigma that gives GRF(tau) the pointwise std of the training GRF."""
    return TRAIN_SIGMA * pointwise_std(TRAIN_SIGMA, TRAIN_TAU, GAMMA) / pointwise_std(
        TRAIN_SIGMA, tau, GAMMA)


def burgers_pairs(nu: float, tau: float, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` pairs ``u(., 0) -> u(., 1)``, each ``[n, 1, 128]``, from GRF(tau) initial states."""
    recipe = TrajectoryRecipe.build(
        "burgers", {"nu": nu, "sigma": matched_sigma(tau), "tau": tau, "gamma": GAMMA},
        resolution=128, n_times=2, seed=seed)
    u = generate_trajectories(recipe, n).u  # [n, 2, 128]
    return u[:, :1].contiguous(), u[:, 1:].contiguous()


# ---- ensemble ---------------------------------------------------------------------------------

def train_member(seed: int, x: torch.Tensor, y: torch.Tensor, epochs: int,
                 batch_size: int = 20, lr: float = 3e-3) -> dict[str, torch.Tensor]:
    """One ensemble member, trained from ``seed``; returns its state dict."""
    torch.manual_seed(seed)
    model = FNO1d(**MODEL)
    objective = FieldRegression(x, y, batch_size=batch_size, loss="relative_l2", seed=seed)
    stage = Stage(optimizer="adam", steps=epochs * objective.steps_per_epoch, lr=lr,
                  weight_decay=1e-4, schedule="onecycle")
    train(model, objective, [stage], seed=seed,
          options=TrainOptions(name=f"member-{seed}", progress=False))
    return model.state_dict()


@torch.no_grad()
def ensemble_prediction(states: list[dict], x: torch.Tensor) -> Prediction:
    samples = []
    for state in states:
        model = FNO1d(**MODEL)
        model.load_state_dict(state)
        model.eval()
        samples.append(model(x))
    return Prediction.from_samples(torch.stack(samples))  # samples [S, N, 1, 128]


# ---- scores -----------------------------------------------------------------------------------

def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(spearmanr(a.flatten().double().numpy(), b.flatten().double().numpy()).statistic)


def scores(prediction: Prediction, y: torch.Tensor) -> dict:
    """Errors of the ensemble mean and how well its std ranks them, on one test set."""
    error = prediction.mean - y
    rmse = error.flatten(1).pow(2).mean(1).sqrt()
    rel_l2 = error.flatten(1).norm(dim=1) / y.flatten(1).norm(dim=1)
    std = prediction.std.flatten(1).mean(1)
    low, high = prediction.interval(0.9)
    members = prediction.samples - y
    return {
        "rel_l2": float(rel_l2.mean()),
        "rmse": float(rmse.mean()),
        "member_rel_l2": float((members.flatten(2).norm(dim=2)
                                / y.flatten(1).norm(dim=1)).mean()),
        "mean_std": float(std.mean()),
        "coverage_90": float(((y >= low) & (y <= high)).double().mean()),
        "spearman_sample": spearman(std, rmse),
        "spearman_pixel": spearman(prediction.std, error.abs()),
        "per_sample": {"std": std.tolist(), "rmse": rmse.tolist()},
    }


def pooled(prediction: Prediction, y: torch.Tensor, shifted: Prediction,
           y_shifted: torch.Tensor) -> dict:
    both, y_both = Prediction.cat([prediction, shifted]), torch.cat([y, y_shifted])
    out = scores(both, y_both)
    out.pop("per_sample")
    return out


# ---- main -------------------------------------------------------------------------------------

def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny run to check the script")
    parser.add_argument("--backend", choices=("sequential", "ray"), default="sequential")
    parser.add_argument("--ray-address", default=None,
                        help="an existing Ray cluster ('auto', 'ray://host:port'); default: a "
                             "local instance")
    parser.add_argument("--num-workers", type=int, default=None,
                        help="CPUs of a local Ray instance (default: all)")
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--n-train", type=int, default=500)
    parser.add_argument("--n-test", type=int, default=100)
    parser.add_argument("--nu", type=float, default=0.01)
    parser.add_argument("--shift-tau", type=float, default=15.0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per member")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.members, args.epochs, args.n_train, args.n_test = 3, 2, 40, 20
    if args.out is None:
        args.out = HERE / "results" / ("uq_shift_quick.json" if args.quick else "uq_shift.json")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse(sys.argv[1:] if argv is None else argv)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    # Distinct recipe seeds: the in-distribution test states are not the training states.
    x_train, y_train = burgers_pairs(args.nu, TRAIN_TAU, args.n_train, seed=0)
    x_test, y_test = burgers_pairs(args.nu, TRAIN_TAU, args.n_test, seed=1)
    x_shift, y_shift = burgers_pairs(args.nu, args.shift_tau, args.n_test, seed=2)
    data_seconds = time.perf_counter() - started
    print(f"data: {args.n_train} train, {args.n_test} + {args.n_test} test "
          f"({data_seconds:.0f} s)", flush=True)

    t0 = time.perf_counter()
    states = train_ensemble_members(
        train_member, list(range(args.members)),
        common={"x": x_train, "y": y_train, "epochs": args.epochs}, backend=args.backend,
        ray_address=args.ray_address, num_cpus=args.threads, num_workers=args.num_workers)
    train_seconds = time.perf_counter() - t0
    print(f"trained {args.members} members ({train_seconds:.0f} s, {args.backend})", flush=True)

    in_dist = ensemble_prediction(states, x_test)
    shifted = ensemble_prediction(states, x_shift)
    results = {"in_distribution": scores(in_dist, y_test), "shifted": scores(shifted, y_shift),
               "pooled": pooled(in_dist, y_test, shifted, y_shift)}
    std_ratio = results["shifted"]["mean_std"] / results["in_distribution"]["mean_std"]
    targets = {
        "spearman_pooled_at_least_0.5": results["pooled"]["spearman_sample"] >= 0.5,
        "std_rises_under_shift": std_ratio > 1.0,
    }
    wall = time.perf_counter() - started
    result = {
        "benchmark": "uq_shift",
        "date": utc_now(),
        "quick": args.quick,
        "setup": {
            "equation": "burgers", "nu": args.nu, "resolution": 128, "t_final": 1.0,
            "initial_condition": {"gamma": GAMMA,
                                  "train": {"tau": TRAIN_TAU, "sigma": TRAIN_SIGMA},
                                  "shifted": {"tau": args.shift_tau,
                                              "sigma": matched_sigma(args.shift_tau)},
                                  "pointwise_std": pointwise_std(TRAIN_SIGMA, TRAIN_TAU, GAMMA)},
            "n_train": args.n_train, "n_test": args.n_test, "members": args.members,
            "model": {"name": "fno1d", **MODEL}, "epochs": args.epochs, "batch_size": 20,
            "lr": 3e-3, "loss": "relative_l2", "schedule": "onecycle", "backend": args.backend,
        },
        "results": results,
        "std_ratio_shifted_over_in_distribution": std_ratio,
        "targets_met": targets,
        "seconds": {"data": data_seconds, "train": train_seconds, "wall": wall},
        "machine": machine_info(),
    }
    print_table(results, std_ratio, targets, wall)
    write_result(args.out, result)
    print(f"wrote {args.out}")
    return result


def print_table(results: dict, std_ratio: float, targets: dict, wall: float) -> None:
    columns = ("rel_l2", "rmse", "member_rel_l2", "mean_std", "coverage_90", "spearman_sample",
               "spearman_pixel")
    print(f"\n{'test set':<16}" + "".join(f"{c:>16}" for c in columns))
    for name, row in results.items():
        print(f"{name:<16}" + "".join(f"{row[c]:>16.4f}" for c in columns))
    print(f"\nstd shifted / in-distribution: {std_ratio:.2f}")
    for name, met in targets.items():
        print(f"{name}: {'met' if met else 'NOT met'}")
    print(f"wall time: {wall:.0f} s")


if __name__ == "__main__":
    main()
