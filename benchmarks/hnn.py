"""Hamiltonian neural networks against a neural-ODE baseline (Greydanus et al., NeurIPS 2019).

Tasks 1 and 2 of Greydanus, Dzamba & Yosinski, "Hamiltonian Neural Networks" (arXiv:1906.01563;
github.com/greydanus/hamiltonian-nn, experiment-spring/ and experiment-pend/data.py and train.py),
with their setup:

* ideal mass-spring ``H = q^2 + p^2`` and ideal pendulum ``H = 3 (1 - cos q) + p^2``, fields
  ``q' = dH/dp``, ``p' = -dH/dq``;
* 50 trajectories on ``t in [0, 3]`` (30 samples for the spring, 45 for the pendulum) from a
  random direction in phase space scaled to a radius ``U(0.1, 1)`` (spring) or ``U(1.3, 2.3)``
  (pendulum), solved at rtol 1e-10 (here scidl's dopri5); Gaussian noise sigma = 0.1 on q and p;
  targets: the exact derivatives at the noise-free states; the first 25 trajectories train, the
  last 25 test (their 50 % split of the concatenated samples);
* MLP with 2 hidden layers of 200 tanh units (baseline: 2 outputs, the field; HNN: 1 output, H),
  float32, Adam lr 1e-3, weight decay 1e-4, 2,000 full-batch steps, through ``scidl.train.train``.
  Difference: scidl's MLP is Xavier-initialised (theirs: orthogonal).

Metrics (per model, over the 25 test trajectories): the derivative MSE (their ``L2_loss``) on
train and test; the paper's "energy MSE" -- the mean squared difference between the true energy
along the model's rollout and along the true trajectory, from each test trajectory's noise-free
initial state over ``t in [0, 20]`` (their analysis notebooks' span), RK4 with h = 0.01; and the
long-run drift ``max_t |E(t) - E(0)| / E(0)`` of the true energy over ``t in [0, T_long]``
(default 1,000 time units, RK4 with h = 0.05: 20,000 steps), with the same RK4 applied to the
exact field as a floor. A separable HNN ``H = T(p) + V(q)`` (two such MLPs) is also integrated
with its own Stormer-Verlet (symplectic) scheme at the same step.

Usage: python benchmarks/hnn.py [--quick] [--steps N] [--long T] [--seed S] [--out FILE]
Writes benchmarks/results/hnn.json (--quick: hnn_quick.json: 200 steps, T_long = 100).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch
from _results import machine_info, utc_now, write_result

from scidl.models.dynamics import DerivativeMatching, HamiltonianNN, NeuralODE
from scidl.numerics.odeint import odeint
from scidl.train.loop import Stage, TrainOptions, train

HERE = Path(__file__).resolve().parent
F64 = torch.float64

#: Greydanus et al. 2019, README "Numbers" (x1e-3 in the paper's Table 1), mean +- std. error
PAPER = {
    "spring": {"test_loss": {"baseline": 3.6656e-02, "hnn": 3.5928e-02},
               "energy_mse": {"baseline": 1.7077e-01, "hnn": 3.8416e-04}},
    "pendulum": {"test_loss": {"baseline": 3.5273e-02, "hnn": 3.5586e-02},
                 "energy_mse": {"baseline": 4.1519e-02, "hnn": 2.4852e-02}},
}
TASKS = {
    # name: (H(q, p), samples per trajectory, radius range)
    "spring": (lambda q, p: q**2 + p**2, 30, (0.1, 1.0)),
    "pendulum": (lambda q, p: 3 * (1 - torch.cos(q)) + p**2, 45, (1.3, 2.3)),
}


def true_field(task: str):
    energy = TASKS[task][0]

    def field(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            leaf = y.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(energy(*leaf.unbind(-1)).sum(), leaf)
        return torch.stack([grad[..., 1], -grad[..., 0]], dim=-1)

    return field


def true_energy(task: str, y: torch.Tensor) -> torch.Tensor:
    return TASKS[task][0](*y.unbind(-1))


def dataset(task: str, seed: int, n: int = 50, noise: float = 0.1) -> dict:
    """Their get_dataset: trajectories [S, n, 2] (noise-free), noisy inputs, exact targets."""
    _, samples, (low, high) = TASKS[task]
    generator = torch.Generator().manual_seed(seed)
    direction = torch.rand(n, 2, generator=generator, dtype=F64) * 2 - 1
    radius = low + (high - low) * torch.rand(n, 1, generator=generator, dtype=F64)
    y0 = direction / direction.norm(dim=-1, keepdim=True) * radius
    t = torch.linspace(0, 3, samples, dtype=F64)
    with torch.no_grad():
        clean = odeint(true_field(task), y0, t, rtol=1e-10, atol=1e-12)
        rates = true_field(task)(t, clean)
    noisy = clean + noise * torch.randn(clean.shape, generator=generator, dtype=F64)
    split = n // 2

    def flat(x: torch.Tensor) -> torch.Tensor:  # [S, n, 2] -> trajectory-major [n * S, 2]
        return x.transpose(0, 1).reshape(-1, 2).float()

    return {"x": flat(noisy[:, :split]), "dx": flat(rates[:, :split]),
            "test_x": flat(noisy[:, split:]), "test_dx": flat(rates[:, split:]),
            "test_y0": clean[0, split:]}


def derivative_mse(model, x: torch.Tensor, dx: torch.Tensor) -> float:
    return float((model(torch.zeros(()), x).detach() - dx).square().mean())


def rollout(model, y0: torch.Tensor, horizon: float, step: float, points: int,
            symplectic: bool = False) -> torch.Tensor:
    t = torch.linspace(0, horizon, points, dtype=F64)
    with torch.no_grad():
        if symplectic:
            return model.leapfrog(y0, t, step)
        return odeint(model, y0, t, method="rk4", step_size=step)


def energy_metrics(task: str, model, y0: torch.Tensor, long: float,
                   symplectic: bool = False) -> dict:
    """Energy MSE on [0, 20] (h = 0.01) and the long-run relative drift (h = 0.05)."""
    exact_energy = true_energy(task, y0)
    short = rollout(model, y0, 20.0, 0.01, 1000, symplectic)
    mse = (true_energy(task, short.double()) - exact_energy).square().mean(0)
    started = time.perf_counter()
    states = rollout(model, y0, long, 0.05, 2001, symplectic)
    seconds = time.perf_counter() - started
    relative = (true_energy(task, states.double()) - exact_energy).abs() / exact_energy
    drift = relative.max(0).values
    return {"energy_mse": float(mse.mean()),
            "energy_mse_stderr": float(mse.std() / math.sqrt(mse.numel())),
            "drift_max_mean": float(drift.mean()), "drift_max_median": float(drift.median()),
            "drift_final_mean": float(relative[-1].mean()), "long_rollout_seconds": seconds}


def fit(model, data: dict, steps: int, seed: int) -> tuple[dict, float]:
    torch.manual_seed(seed)
    started = time.perf_counter()
    train(model, DerivativeMatching(data["x"], data["dx"]),
          [Stage("adam", steps, 1e-3, schedule="constant", weight_decay=1e-4)], seed=seed,
          options=TrainOptions(progress=False, log_every=max(steps // 10, 1)))
    seconds = time.perf_counter() - started
    return {"train_loss": derivative_mse(model, data["x"], data["dx"]),
            "test_loss": derivative_mse(model, data["test_x"], data["test_dx"])}, seconds


def run_task(task: str, steps: int, long: float, seed: int) -> dict:
    data = dataset(task, seed)
    y0 = data["test_y0"].float()
    builders = {
        "baseline": lambda: NeuralODE(2, 200, 2),
        "hnn": lambda: HamiltonianNN(1, 200, 2),
        "hnn_separable": lambda: HamiltonianNN(1, 200, 2, separable=True),
    }
    results: dict = {}
    for name, build in builders.items():
        torch.manual_seed(seed)
        model = build()
        losses, seconds = fit(model, data, steps, seed)
        results[name] = {**losses, "train_seconds": seconds, "integrator": "rk4",
                         **energy_metrics(task, model, y0, long)}
        if name == "hnn_separable":
            results[name + "_leapfrog"] = {**losses, "integrator": "stormer-verlet",
                                           **energy_metrics(task, model, y0, long, True)}
        print(f"{task:8s} {name:14s} test loss {losses['test_loss']:.4e}  energy MSE "
              f"{results[name]['energy_mse']:.3e}  drift {results[name]['drift_max_mean']:.3e}",
              flush=True)
    floor = energy_metrics(task, true_field(task), data["test_y0"], long)
    results["exact_field_rk4"] = {"integrator": "rk4", **floor}
    return {"models": results, "paper": PAPER[task]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 steps, T_long = 100")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--long", type=float, default=1000.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    steps, long = (200, 100.0) if args.quick else (args.steps, args.long)
    out = args.out or HERE / "results" / f"hnn{'_quick' if args.quick else ''}.json"
    started = time.perf_counter()
    tasks = {task: run_task(task, steps, long, args.seed) for task in TASKS}
    result = {
        "benchmark": "hnn",
        "reference": "Greydanus, Dzamba & Yosinski, Hamiltonian Neural Networks, NeurIPS 2019",
        "date": utc_now(), "machine": machine_info(), "mode": "quick" if args.quick else "default",
        "setup": {"steps": steps, "optimizer": "adam lr 1e-3 wd 1e-4, full batch",
                  "mlp": "2 x 200 tanh", "noise_std": 0.1, "trajectories": "25 train / 25 test",
                  "energy_mse": "t in [0, 20], rk4 h = 0.01, from the clean test initial states",
                  "drift": f"max |E - E0| / E0 over t in [0, {long:g}], h = 0.05",
                  "seed": args.seed, "dtype": "float32 models"},
        "tasks": tasks, "seconds": time.perf_counter() - started,
    }
    print(f"wrote {write_result(out, result)} ({result['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
