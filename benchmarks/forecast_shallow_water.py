"""Long rollouts of a learned shallow-water emulator, with and without a mass projection.

Data: rotating shallow water (:class:`scidl.pdes.ShallowWater2D`, g = 1, f = 3, H = 1, so the
deformation radius is 1/3 of a 2 pi box; biharmonic hyperviscosity nu = 2e-6) on a 64^2 grid,
solved by scidl's ETDRK4 pseudo-spectral solver from random geostrophically balanced states
(rms speed 0.2, spectrum peaked at |k| = 6) after a spin-up of 10 time units. Snapshots every
dt = 0.2. Training: 24 trajectories of 60 steps; test: 8 other trajectories of 240 steps.

Model: a 2D FNO (scidl.models.FNO, 12 modes, width 24, 4 layers) trained through
``scidl.train.train`` with :class:`scidl.forecast.OneStepForecast` (residual one-step
training on per-channel standardised fields, MSE). Rollouts of 240 steps from the test initial
states in float32, free and with :class:`scidl.forecast.projections.MeanProjection` (mean depth of
the initial state restored after every step). Reported: the relative mass drift
``|M(t) - M(0)| / M(0)`` (max over the rollout and the trajectories) for the solver, the free
model and the projected model, and the RMSE by lead (per channel) of both rollouts and of
persistence.

Usage: python benchmarks/forecast_shallow_water.py [--quick] [--out FILE]
Writes benchmarks/results/forecast_shallow_water.json (--quick: *_quick.json).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch
from _results import machine_info, utc_now, write_result

from scidl.data.shallow_water import shallow_water_trajectories
from scidl.forecast import OneStepForecast
from scidl.forecast.projections import MeanProjection, conserved_mass
from scidl.metrics.forecast import rmse_by_lead
from scidl.models import FNO, count_parameters
from scidl.numerics import PeriodicGrid
from scidl.pdes import ShallowWater2D
from scidl.train import Stage, TrainOptions, train

HERE = Path(__file__).resolve().parent
CHANNELS = ("h", "u", "v")
LEADS = (1, 10, 50, 100, 200, 240)


def relative_drift(mass: torch.Tensor, mass0: torch.Tensor) -> float:
    """max over trajectories and leads of ``|M(t) - M(0)| / M(0)``, float64."""
    return float(((mass - mass0[:, None]).abs() / mass0[:, None].abs()).max())


def rollout(step, u0: torch.Tensor, steps: int, projection=None) -> torch.Tensor:
    states, u = [], u0
    with torch.no_grad():
        for _ in range(steps):
            u = step(u)
            if projection is not None:
                u = projection(u)
            states.append(u)
    return torch.stack(states, dim=1)


def scores(forecast: torch.Tensor, reference: torch.Tensor, leads) -> dict:
    out = {}
    for c, name in enumerate(CHANNELS):
        rmse = rmse_by_lead(forecast[:, :, c].double(), reference[:, :, c].double())
        out[name] = {str(k): float(rmse[k - 1]) for k in leads}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    quick = args.quick
    torch.manual_seed(0)
    n_train, n_test = (6, 2) if quick else (24, 8)
    train_steps, test_steps = (20, 200) if quick else (60, 240)
    grid = PeriodicGrid((64, 64), 2 * math.pi)
    pde = ShallowWater2D(g=1.0, f=3.0, H=1.0, nu=2e-6)
    common = dict(dt_out=0.2, dt=0.1, speed=0.2, peak=6.0, spin_up=10.0)

    started = time.perf_counter()
    train_data64 = shallow_water_trajectories(pde, grid, n_train, steps=train_steps, seed=1,
                                              **common)
    test_data64 = shallow_water_trajectories(pde, grid, n_test, steps=test_steps, seed=2,
                                             **common)
    data_seconds = time.perf_counter() - started
    solver_mass = pde.mass(test_data64, grid)
    solver_drift = relative_drift(solver_mass[:, 1:], solver_mass[:, 0])
    train_data, test_data = train_data64.float(), test_data64.float()
    print(f"data: {data_seconds:.1f} s; depth range [{float(test_data[:, :, 0].min()):.3f}, "
          f"{float(test_data[:, :, 0].max()):.3f}]; solver mass drift {solver_drift:.2e}")

    objective = OneStepForecast(train_data, batch_size=8, seed=0)
    model = FNO(ndim=2, in_channels=3, out_channels=3, modes=12, width=24, layers=4,
                grid_channels=False)
    stages = [Stage(optimizer="adam", steps=200 if quick else 2000, lr=2e-3, schedule="cosine")]
    started = time.perf_counter()
    result = train(model, objective, stages, seed=0,
                   options=TrainOptions(name="sw-fno", log_every=50, progress=False))
    train_seconds = time.perf_counter() - started
    print(f"training: {train_seconds:.1f} s, loss {result.history[0]['loss']:.3e} -> "
          f"{result.history[-1]['loss']:.3e}")
    model.eval()

    u0 = test_data[:, 0]
    reference = test_data[:, 1:]
    mass0 = conserved_mass(u0)
    step = lambda u: objective.step(model, u)  # noqa: E731
    projection = MeanProjection.from_state(u0, channels=0)
    runs = {}
    for name, proj in (("free", None), ("projected", projection)):
        started = time.perf_counter()
        forecast = rollout(step, u0, test_steps, proj)
        seconds = time.perf_counter() - started
        mass = conserved_mass(forecast)
        runs[name] = {
            "rollout_seconds": seconds,
            "finite": bool(torch.isfinite(forecast).all()),
            "relative_mass_drift_max": relative_drift(mass, mass0),
            "relative_mass_drift_final": float(((mass[:, -1] - mass0).abs() / mass0).max()),
            "rmse_by_lead": scores(forecast, reference, [k for k in LEADS if k <= test_steps]),
        }
        print(f"{name}: mass drift max {runs[name]['relative_mass_drift_max']:.2e}; "
              f"RMSE h {runs[name]['rmse_by_lead']['h']}")
    persistence = u0[:, None].expand_as(reference)
    leads = [k for k in LEADS if k <= test_steps]
    result_json = {
        "benchmark": "forecast_shallow_water",
        "date": utc_now(),
        "machine": machine_info(),
        "quick": quick,
        "setup": {
            "pde": pde.parameters(), "grid": list(grid.shape), "box": grid.length[0],
            "deformation_radius": pde.deformation_radius, "n_train": n_train, "n_test": n_test,
            "train_steps": train_steps, "rollout_steps": test_steps, **common,
            "solver": "ETDRK4 pseudo-spectral, 2/3 de-aliasing, float64",
            "model": "FNO 2D (modes 12, width 24, 4 layers), residual one-step, float32",
            "parameters": count_parameters(model),
            "training": {"stages": [vars(s) for s in stages], "batch_size": 8,
                         "loss_first": result.history[0]["loss"],
                         "loss_last": result.history[-1]["loss"], "seconds": train_seconds},
            "data_seconds": data_seconds,
        },
        "solver_relative_mass_drift_max": solver_drift,
        "rollouts": runs,
        "persistence_rmse_by_lead": scores(persistence, reference, leads),
        "target": "relative mass drift <= 1e-6 with the projection over the whole rollout",
        "target_met": runs["projected"]["relative_mass_drift_max"] <= 1e-6,
    }
    out = args.out or HERE / "results" / (
        "forecast_shallow_water_quick.json" if quick else "forecast_shallow_water.json")
    write_result(out, result_json)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
