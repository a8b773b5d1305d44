"""scidl's Burgers solver against the Raissi et al. reference (DeepXDE Burgers.npz) and Basdevant.

Solves u_t + u u_x = (0.01/pi) u_xx, u0 = -sin(pi x) on the periodic grid x_j = -1 + 2 j / N (odd
symmetry makes u(+-1, t) = 0, so this is the Dirichlet problem of the reference) at a few (N, dt),
and for each prints and records: the relative L2 difference from Burgers.npz over its whole
256 x 100 grid (the solver's state evaluated at the data's points by its trigonometric
interpolant), and min_t u_x(0, t) with its time (Basdevant et al. 1986: -152.00516 at
t = 1.6037/pi).

Usage: python benchmarks/burgers_reference.py [--data DIR] [--runs N:DT ...] [--out FILE]
The data folder is --data, else $SCIDL_DATA, else ../shared/data beside the repository.
Writes benchmarks/results/burgers_reference.json.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from _results import machine_info, utc_now, write_result

from scidl.numerics import PeriodicGrid, SpectralDerivatives, fourier_interpolate, simulate
from scidl.pdes import Burgers

HERE = Path(__file__).resolve().parent
NU = 0.01 / math.pi
BASDEVANT_MIN = -152.00516
BASDEVANT_T_PI = 1.6037
DEFAULT_RUNS = ["1024:1e-3", "2048:1e-3", "2048:5e-4", "4096:2.5e-4", "4096:1e-4", "8192:1.25e-4"]


def data_folder(argument: str | None) -> Path:
    beside_repo = HERE.parent.parent / "shared" / "data"
    candidates = [argument, os.environ.get("SCIDL_DATA"), str(beside_repo)]
    for candidate in candidates:
        if candidate and (Path(candidate) / "pinn" / "Burgers.npz").is_file():
            return Path(candidate)
    sys.exit("Burgers.npz not found: pass --data DIR or set SCIDL_DATA (DIR/pinn/Burgers.npz)")


def trig_interpolate(u: torch.Tensor, x: np.ndarray) -> np.ndarray:
    """``u [..., N]`` on ``x_j = -1 + 2 j / N`` evaluated at ``x`` by its Fourier series."""
    return fourier_interpolate(u, torch.as_tensor(x) + 1.0, PeriodicGrid(u.shape[-1], 2.0)).numpy()

def run(n: int, dt: float, x_ref, t_ref, u_ref) -> dict:
    grid = PeriodicGrid(n, length=2.0)
    pde = Burgers(nu=NU)
    u0 = -torch.sin(math.pi * (grid.coordinates()[0] - 1.0))
    started = time.perf_counter()
    with torch.inference_mode():
        states = simulate(pde, u0, torch.as_tensor(t_ref, dtype=torch.float64), grid=grid, dt=dt)
        seconds_reference = time.perf_counter() - started
        u_num = trig_interpolate(states, x_ref).T
        # u_x(0, t) on 9 times within 2e-3 of the published minimum, restarted from t = 0.5
        start = int(np.flatnonzero(np.isclose(t_ref, 0.5))[0])
        centre = BASDEVANT_T_PI / math.pi
        times = np.linspace(centre - 2e-3, centre + 2e-3, 9)
        window = simulate(pde, states[start], torch.as_tensor(np.r_[t_ref[start], times]),
                          grid=grid, dt=dt)[1:]
        ux0 = SpectralDerivatives(grid).x(window)[:, n // 2].numpy()  # index n/2 is x = 0
    fit = np.polynomial.Polynomial.fit(times, ux0, 4)
    roots = fit.deriv().roots()
    roots = roots[np.isreal(roots)].real
    roots = roots[(roots > times[0]) & (roots < times[-1])]
    t_min = float(roots[np.argmin(fit(roots))]) if roots.size else float("nan")
    return {
        "N": n,
        "dt": dt,
        "rel_l2": float(np.linalg.norm(u_num - u_ref) / np.linalg.norm(u_ref)),
        "max_abs": float(np.abs(u_num - u_ref).max()),
        "min_ux0": float(fit(t_min)),
        "t_min": t_min,
        "t_min_times_pi": t_min * math.pi,
        "fit_residual": float(np.abs(fit(times) - ux0).max()),
        "seconds_reference_grid": seconds_reference,
        "seconds": time.perf_counter() - started,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="reference data folder (default: $SCIDL_DATA)")
    parser.add_argument("--runs", nargs="*", default=DEFAULT_RUNS, help="N:dt pairs")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest here)")
    parser.add_argument("--out", default=str(HERE / "results" / "burgers_reference.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    root = data_folder(args.data)
    with np.load(root / "pinn" / "Burgers.npz") as data:
        x_ref, t_ref, u_ref = data["x"].ravel(), data["t"].ravel(), data["usol"]

    print(f"reference: {root / 'pinn' / 'Burgers.npz'}; Basdevant: min u_x(0,t) = "
          f"{BASDEVANT_MIN} at t*pi = {BASDEVANT_T_PI}")
    header = f"{'N':>6} {'dt':>9} {'rel L2':>10} {'max abs':>10} {'min u_x(0,t)':>15} " \
             f"{'t_min*pi':>10} {'seconds':>8}"
    print(header)
    rows = []
    for spec in args.runs:
        n, dt = spec.split(":")
        row = run(int(n), float(dt), x_ref, t_ref, u_ref)
        rows.append(row)
        print(f"{row['N']:>6} {row['dt']:>9.3g} {row['rel_l2']:>10.2e} {row['max_abs']:>10.2e} "
              f"{row['min_ux0']:>15.7f} {row['t_min_times_pi']:>10.6f} {row['seconds']:>8.1f}",
              flush=True)

    result = {
        "benchmark": "burgers_reference",
        "problem": "u_t + u u_x = (0.01/pi) u_xx, u0 = -sin(pi x), x in [-1, 1], u(+-1, t) = 0",
        "solver": "scidl.numerics.simulate, ETDRK4, 2/3 de-aliasing, float64, periodic [-1, 1)",
        "reference": "DeepXDE Burgers.npz (Raissi et al. 2019), 256 x 100, relative L2 over all",
        "basdevant": {"min_ux0": BASDEVANT_MIN, "t_min_times_pi": BASDEVANT_T_PI},
        "rows": rows,
        "machine": machine_info(),
        "date": utc_now(),
    }
    print(f"wrote {write_result(args.out, result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
