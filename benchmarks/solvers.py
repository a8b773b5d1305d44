"""Solver speed: scidl's batched ETDRK4 against scipy.integrate.solve_ivp at the same accuracy.

Problems (the FNO paper's data sets, see ../shared/PROTOCOLS.md):

* Burgers, u_t + u u_x = nu u_xx on [0, 1), N = 8,192 points, T = 1, in two settings:
  nu = 0.1 with u0 ~ N(0, 625 (-Laplacian + 25 I)^-2) (the paper's text), and nu = 1e-3 with the
  repository's GRF sigma = 49, tau = 7, gamma = 2.5;
* 2D Navier-Stokes vorticity at 64 x 64, nu = 1e-3, the paper's forcing and GRF, T = 10 (the
  family's default), outputs every t = 1.

For each problem the script

1. draws the initial states with ``TrajectoryRecipe.initial_states(0, B)`` (chunk 0 of the
   dataset the recipe would write);
2. computes a fine reference on the first R of them: scidl ETDRK4 (float64) with a small step
   ``dt_ref``; its own time error is estimated against a solve at ``2 dt_ref``, and its spatial
   error by one sample solved on a grid twice as fine (spectrally upsampled initial state);
3. picks scidl's step: the largest ``dt = interval / m`` (m = 1, 2, 3, 4, 5, 6, 8, 10, ...) whose
   relative L2 error at the final time against the reference is <= --tol on all R samples;
4. times scidl on the whole batch of B samples at that dt (best of --repeats): seconds per sample
   = batch seconds / B;
5. tunes the baseline's rtol (atol = 1e-3 rtol) down a ladder on sample 0 until its error is
   <= --tol, or until it stops improving (its spatial discretisation error); then times it on
   the first S samples one at a time (solve_ivp is not batched), best of --repeats per sample;
   errors are measured against the same reference.

Baselines (what a user would write with scipy): Burgers: second-order central finite differences
(flux form) on the same 8,192-point grid, method='BDF' with a sparse periodic tridiagonal
``jac_sparsity``; a pseudo-spectral right-hand side is too stiff for an explicit method, which is
shown by timing 'RK45' on it over a short initial interval and extrapolating its step count.
Navier-Stokes: the same de-aliased pseudo-spectral vorticity right-hand side written with numpy
FFTs (4,096 unknowns), method='RK45'.

The time for 1,200 samples is seconds per sample x 1,200 for both (an extrapolation, stated as
such); --full really writes 1,200 samples of each set with ``scidl.data.write_trajectories`` at
the chosen dt to a temporary folder and times it.

Usage: python benchmarks/solvers.py [--quick] [--full] [--batch B] [--samples S] [--tol TOL]
       [--threads T] [--repeats K] [--out FILE]
Writes benchmarks/results/solvers.json (--quick: solvers_quick.json).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sparse
import torch
from _results import machine_info, utc_now, write_result
from scipy.integrate import solve_ivp

from scidl.data import TrajectoryRecipe, calibrate, write_trajectories
from scidl.errors import DivergenceError
from scidl.numerics import PeriodicGrid, fourier_resample, simulate

HERE = Path(__file__).resolve().parent
N_DATASET = 1200
# dt = interval / m, tried from the largest
LADDER = [1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 25, 32, 40, 50, 64, 80, 100, 128, 160, 200, 256,
          320, 400, 500, 640, 800, 1000, 1280, 1600, 2000, 2560, 3200, 4000]
RTOLS = [1e-3, 3e-4, 1e-4, 3e-5, 1e-5, 3e-6, 1e-6, 3e-7, 1e-7, 3e-8, 1e-8, 3e-9, 1e-9, 3e-10,
         1e-10]


# ----------------------------------------------------------------------------- helpers

def rel_l2(u: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Relative L2 error per sample (all but the first axis are space)."""
    axes = tuple(range(1, u.ndim))
    with np.errstate(over="ignore", invalid="ignore"):  # a blown-up solve gives inf/nan
        err = np.sqrt(((u - ref) ** 2).sum(axis=axes) / (ref**2).sum(axis=axes))
    return np.where(np.isfinite(err), err, np.inf)


def timed(fn, repeats: int):
    """``(best seconds, result of the last call)``."""
    best, result = math.inf, None
    for _ in range(max(1, repeats)):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return best, result


def scidl_final(recipe: TrajectoryRecipe, u0: torch.Tensor, dt: float,
                points: int | None = None) -> np.ndarray:
    """scidl's state at ``t_final`` (solved through all of the recipe's output times) on the
    solver grid, from ``u0`` on the solver grid. With ``points``, solved on that many points
    per dimension: the initial state and the result are resampled spectrally in and out, as
    ``scidl.data`` does on a calibrated compute grid."""
    grid = recipe.solver_grid()
    solve_grid = grid if points is None else PeriodicGrid((points,) * grid.ndim, recipe.length)
    with torch.inference_mode():
        out = simulate(recipe.pde(), fourier_resample(u0, solve_grid.shape), recipe.times(),
                       grid=solve_grid, dt=dt)
        return fourier_resample(out[:, -1], grid.shape).numpy()


def pick_dt(recipe, u0_ref, ref, tol, points: int | None = None) -> tuple[float, list[dict]]:
    """Largest ``interval / m`` with error <= tol on every reference sample."""
    interval = recipe.t_final / max(recipe.n_times - 1, 1)
    tried = []
    for m in LADDER:
        dt = interval / m
        try:
            err = rel_l2(scidl_final(recipe, u0_ref, dt, points), ref)
            if not np.isfinite(err).all():
                raise DivergenceError("blew up")
            tried.append({"dt": dt, "max_rel_l2": float(err.max())})
        except DivergenceError:
            tried.append({"dt": dt, "max_rel_l2": None, "diverged": True})
            continue
        if err.max() <= tol:
            return dt, tried
    raise RuntimeError(f"no dt down to {interval / LADDER[-1]:g} reached tol {tol:g}")


def tune_rtol(solve, ref0: np.ndarray, tol: float) -> tuple[float, list[dict], bool]:
    """Loosest rtol of RTOLS reaching ``tol`` on sample 0; else the loosest within 1.2x of the
    best error seen once the error stops improving (returns ``reached=False``)."""
    tried = []
    for rtol in RTOLS:
        started = time.perf_counter()
        u, info = solve(rtol)
        err = float(rel_l2(u[None], ref0[None])[0])
        tried.append({"rtol": rtol, "rel_l2": err, "seconds": time.perf_counter() - started,
                      **info})
        if err <= tol:
            return rtol, tried, True
        errors = [t["rel_l2"] for t in tried]
        if len(errors) >= 3 and errors[-1] > 0.8 * errors[-3]:  # two rungs, < 20% better: floor
            break
    best = min(t["rel_l2"] for t in tried)
    rtol = next(t["rtol"] for t in tried if t["rel_l2"] <= 1.2 * best)
    return rtol, tried, False


def info_of(sol) -> dict:
    if not sol.success:
        raise RuntimeError(f"solve_ivp failed: {sol.message}")
    return {"nfev": int(sol.nfev), "njev": int(sol.njev), "nlu": int(sol.nlu)}


# ----------------------------------------------------------------------------- baselines

class BurgersFD:
    """u_t = -(u^2/2)_x + nu u_xx by second-order central differences, periodic; BDF with a
    sparse periodic tridiagonal Jacobian pattern (scipy estimates the Jacobian by differences)."""

    def __init__(self, n: int, nu: float, length: float = 1.0):
        self.n, self.nu, self.dx = n, nu, length / n
        i = np.arange(n)
        rows = np.r_[i, i, i]
        cols = np.r_[i, (i + 1) % n, (i - 1) % n]
        self.sparsity = sparse.csc_matrix((np.ones(3 * n), (rows, cols)), shape=(n, n))

    def rhs(self, t, u):
        up, um = np.roll(u, -1), np.roll(u, 1)
        return -(up * up - um * um) / (4 * self.dx) + self.nu * (up - 2 * u + um) / self.dx**2

    def solve(self, u0: np.ndarray, t_final: float, rtol: float):
        sol = solve_ivp(self.rhs, (0.0, t_final), u0, method="BDF", t_eval=[t_final],
                        rtol=rtol, atol=1e-3 * rtol, jac_sparsity=self.sparsity)
        return sol.y[:, -1], info_of(sol)


class BurgersSpectral:
    """The same de-aliased pseudo-spectral right-hand side as scidl's, with numpy FFTs."""

    def __init__(self, n: int, nu: float, length: float = 1.0):
        k_int = np.fft.rfftfreq(n, 1.0 / n)
        self.k = 2 * np.pi / length * k_int
        self.ik = 1j * self.k * (k_int != n // 2)  # odd derivative: no Nyquist mode
        self.mask = k_int < n / 3
        self.nu, self.n = nu, n

    def rhs(self, t, u):
        v = np.fft.rfft(u)
        ux = np.fft.irfft(self.ik * v, self.n)
        nonlinear = np.fft.rfft(-u * ux) * self.mask
        return np.fft.irfft(nonlinear - self.nu * self.k**2 * v, self.n)

    def probe_rk45(self, u0: np.ndarray, steps: int, rtol: float = 1e-6) -> dict:
        """RK45 over an initial interval of about ``steps`` stability-limited steps; its step
        count and time extrapolated linearly to T = 1."""
        h_stable = 3.3 / (self.nu * self.k.max() ** 2)  # RK45's real-axis stability ~ 3.3
        t_probe = steps * h_stable
        started = time.perf_counter()
        sol = solve_ivp(self.rhs, (0.0, t_probe), u0, method="RK45", rtol=rtol,
                        atol=1e-3 * rtol)
        seconds = time.perf_counter() - started
        taken = len(sol.t) - 1
        return {"rtol": rtol, "t_probe": t_probe, "steps": taken, "nfev": int(sol.nfev),
                "seconds": seconds, "steps_to_T1_estimate": taken / t_probe,
                "seconds_per_sample_estimate": seconds / t_probe,
                "hours_1200_estimate": seconds / t_probe * N_DATASET / 3600}


class NavierStokesSpectral:
    """scidl's NavierStokes2D (forcing 'fno') written with numpy FFTs: w_t = -(u.grad) w +
    nu Laplacian w + f, (u, v) = (psi_y, -psi_x), Laplacian psi = -w; the nonlinear term and the
    forcing are de-aliased by the 2/3 rule as in scidl.numerics.simulate."""

    def __init__(self, n: int, nu: float, amplitude: float = 0.1, length: float = 1.0):
        kx_int = np.fft.fftfreq(n, 1.0 / n)[:, None]
        ky_int = np.fft.rfftfreq(n, 1.0 / n)[None, :]
        kx, ky = 2 * np.pi / length * kx_int, 2 * np.pi / length * ky_int
        nyquist = (np.abs(kx_int) != n // 2) & (np.abs(ky_int) != n // 2)
        self.ikx, self.iky = 1j * kx * nyquist, 1j * ky * nyquist
        self.k2 = kx**2 + ky**2
        self.inv = np.where(self.k2 == 0, 0.0, 1.0 / np.where(self.k2 == 0, 1.0, self.k2))
        self.mask = (np.abs(kx_int) < n / 3) & (np.abs(ky_int) < n / 3)
        x = np.arange(n) * (length / n)
        X, Y = np.meshgrid(x, x, indexing="ij")
        phase = 2 * np.pi * (X + Y)
        self.f_hat = np.fft.rfft2(amplitude * (np.sin(phase) + np.cos(phase)))
        self.n, self.nu = n, nu

    def rhs(self, t, y):
        s = (self.n, self.n)
        w_hat = np.fft.rfft2(y.reshape(s))
        psi_hat = w_hat * self.inv
        u = np.fft.irfft2(self.iky * psi_hat, s)
        v = np.fft.irfft2(-self.ikx * psi_hat, s)
        wx = np.fft.irfft2(self.ikx * w_hat, s)
        wy = np.fft.irfft2(self.iky * w_hat, s)
        rhs_hat = -self.nu * self.k2 * w_hat + self.mask * (np.fft.rfft2(-(u * wx + v * wy))
                                                            + self.f_hat)
        return np.fft.irfft2(rhs_hat, s).ravel()

    def solve(self, w0: np.ndarray, t_final: float, rtol: float):
        sol = solve_ivp(self.rhs, (0.0, t_final), w0.ravel(), method="RK45", t_eval=[t_final],
                        rtol=rtol, atol=1e-3 * rtol)
        return sol.y[:, -1].reshape(w0.shape), info_of(sol)


# ----------------------------------------------------------------------------- one problem

def benchmark(name: str, recipe: TrajectoryRecipe, baseline, baseline_name: str, args,
              dt_ref: float, spatial_check: bool, rk45_probe=None) -> dict:
    print(f"\n== {name}", flush=True)
    grid = recipe.solver_grid()
    started_all = time.perf_counter()
    u0 = recipe.initial_states(0, args.batch)
    n_ref = min(args.ref_samples, args.batch)
    u0_ref = u0[:n_ref]

    # 1. fine reference and its own errors
    seconds_ref, ref = timed(lambda: scidl_final(recipe, u0_ref, dt_ref), 1)
    ref_time_err = rel_l2(scidl_final(recipe, u0_ref, 2 * dt_ref), ref).max()
    print(f"reference: ETDRK4 dt = {dt_ref:g} on {n_ref} samples ({seconds_ref:.1f} s); "
          f"vs dt = {2 * dt_ref:g}: {ref_time_err:.1e}", flush=True)
    spatial = None
    if spatial_check:
        fine = tuple(2 * n for n in grid.shape)
        started = time.perf_counter()
        u_fine = scidl_final(recipe, u0[:1], dt_ref, points=fine[0])
        spatial = {"fine_shape": list(fine),
                   "rel_l2_vs_reference_sample0": float(rel_l2(u_fine, ref[:1])[0]),
                   "seconds": time.perf_counter() - started}
        print(f"spatial check: {'x'.join(map(str, fine))} vs "
              f"{'x'.join(map(str, grid.shape))} on sample 0: "
              f"{spatial['rel_l2_vs_reference_sample0']:.1e}", flush=True)

    # 2. scidl: dt for the tolerance, then the batch timing
    dt, dt_tried = pick_dt(recipe, u0_ref, ref, args.tol)
    if dt < 8 * dt_ref:
        print(f"warning: chosen dt {dt:g} < 8 dt_ref; the reference is less than 8x finer")
    steps = round(recipe.t_final / dt)
    seconds_scidl, u_scidl = timed(lambda: scidl_final(recipe, u0, dt), args.repeats)
    err_scidl = rel_l2(u_scidl[:n_ref], ref)
    per_sample_scidl = seconds_scidl / args.batch
    print(f"scidl ETDRK4: dt = {dt:g} ({steps} steps), batch of {args.batch}: "
          f"{seconds_scidl:.2f} s = {per_sample_scidl:.4f} s/sample; rel L2 max "
          f"{err_scidl.max():.1e}", flush=True)

    # 2b. scidl on the calibrated compute grid (what scidl.data does by default): the grid from
    # scidl.data.calibrate, the step from the same ladder against the same reference
    started = time.perf_counter()
    default = calibrate(dataclasses.replace(recipe, tolerance=args.tol), args.batch)
    calibration_seconds = time.perf_counter() - started
    points = default.compute_resolution
    while True:  # the grid's own error is calibrated to tol; double it if grid + step miss tol
        try:
            dt_c, dt_c_tried = pick_dt(recipe, u0_ref, ref, args.tol, points)
            break
        except RuntimeError:
            if points >= grid.shape[0]:
                raise
            points *= 2
    seconds_c, u_c = timed(lambda: scidl_final(recipe, u0, dt_c, points), args.repeats)
    err_c = rel_l2(u_c[:n_ref], ref)
    per_sample_c = seconds_c / args.batch
    err_default = rel_l2(scidl_final(recipe, u0_ref, default.dt, default.compute_resolution), ref)
    print(f"scidl ETDRK4 on the calibrated grid: {points} points (calibrated "
          f"{default.compute_resolution}, {calibration_seconds:.1f} s), dt = {dt_c:g}: "
          f"{seconds_c:.2f} s = {per_sample_c:.4f} s/sample; rel L2 max {err_c.max():.1e}. "
          f"Recipe default (dt {default.dt:g}, {default.compute_resolution} points): rel L2 max "
          f"{err_default.max():.1e}", flush=True)

    # 3. baseline: rtol for the tolerance on sample 0, then timings one sample at a time
    u0_np = u0.numpy()
    rtol, rtol_tried, reached = tune_rtol(
        lambda r: baseline.solve(u0_np[0], recipe.t_final, r), ref[0], args.tol)
    n_base = min(args.samples, n_ref)
    rows = []
    for i in range(n_base):
        sec, (u_b, info) = timed(lambda i=i: baseline.solve(u0_np[i], recipe.t_final, rtol),
                                 args.repeats if n_base * args.repeats <= 9 else 1)
        rows.append({"sample": i, "seconds": sec,
                     "rel_l2": float(rel_l2(u_b[None], ref[i : i + 1])[0]), **info})
    per_sample_base = float(np.mean([r["seconds"] for r in rows]))
    err_base = np.array([r["rel_l2"] for r in rows])
    ratio = per_sample_base / per_sample_scidl
    ratio_c = per_sample_base / per_sample_c
    print(f"{baseline_name}: rtol = {rtol:g} ({'meets' if reached else 'cannot meet'} tol "
          f"{args.tol:g}), {per_sample_base:.3f} s/sample over {n_base}; rel L2 max "
          f"{err_base.max():.1e}; ratio {ratio:.1f}x on the same grid, {ratio_c:.1f}x on the "
          f"calibrated grid", flush=True)

    probe = None
    if rk45_probe is not None:
        probe = rk45_probe.probe_rk45(u0_np[0], args.probe_steps)
        print(f"solve_ivp RK45, spectral RHS: {probe['steps']} steps in t <= "
              f"{probe['t_probe']:.2e} ({probe['seconds']:.1f} s) -> about "
              f"{probe['steps_to_T1_estimate']:.1e} steps and "
              f"{probe['seconds_per_sample_estimate'] / 3600:.2f} h per sample to T = 1 "
              f"(extrapolated)", flush=True)

    return {
        "name": name,
        "recipe": recipe.to_dict(),
        "grid": list(grid.shape),
        "t_final": recipe.t_final,
        "batch": args.batch,
        "reference": {"solver": "scidl ETDRK4 float64", "dt": dt_ref, "samples": n_ref,
                      "seconds": seconds_ref,
                      "time_error_vs_2dt_max_rel_l2": float(ref_time_err),
                      "spatial_check": spatial},
        "scidl": {"solver": "scidl.numerics.simulate, ETDRK4, 2/3 de-aliasing, float64, batched",
                  "dt": dt, "steps": steps, "dt_search": dt_tried,
                  "batch_seconds": seconds_scidl, "seconds_per_sample": per_sample_scidl,
                  "rel_l2": err_scidl.tolist(), "rel_l2_max": float(err_scidl.max()),
                  "hours_1200_extrapolated": per_sample_scidl * N_DATASET / 3600},
        "scidl_calibrated_grid": {
            "solver": "as scidl, solved on a coarser grid and resampled spectrally in and out",
            "calibrated_compute_resolution": default.compute_resolution,
            "compute_resolution": points, "dt": dt_c, "steps": round(recipe.t_final / dt_c),
            "dt_search": dt_c_tried, "batch_seconds": seconds_c,
            "seconds_per_sample": per_sample_c, "rel_l2": err_c.tolist(),
            "rel_l2_max": float(err_c.max()),
            "hours_1200_extrapolated": per_sample_c * N_DATASET / 3600},
        "recipe_default": {"dt": default.dt, "compute_resolution": default.compute_resolution,
                           "steps": math.ceil(recipe.t_final / default.dt - 1e-9),
                           "calibration_seconds": calibration_seconds,
                           "rel_l2_max": float(err_default.max())},
        "baseline": {"solver": baseline_name, "rtol": rtol, "atol": 1e-3 * rtol,
                     "meets_tol": reached, "rtol_search_sample0": rtol_tried,
                     "samples": rows, "seconds_per_sample": per_sample_base,
                     "rel_l2_max": float(err_base.max()),
                     "hours_1200_extrapolated": per_sample_base * N_DATASET / 3600},
        "rk45_spectral_probe": probe,
        "ratio_baseline_over_scidl": ratio,
        "ratio_baseline_over_scidl_calibrated_grid": ratio_c,
        "target_10x_met": bool(max(ratio, ratio_c) >= 10),
        "seconds_total": time.perf_counter() - started_all,
    }


def full_generation(recipe: TrajectoryRecipe, dt: float, points: int, batch: int) -> dict:
    """Really write 1,200 samples with write_trajectories (to a temporary folder) and time it,
    solved with step ``dt`` on ``points`` points per dimension."""
    recipe = dataclasses.replace(recipe, dt=dt, compute_resolution=points, chunk_size=batch)
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        with torch.inference_mode():
            paths = write_trajectories(recipe, N_DATASET, Path(folder) / "data.h5", resume=False)
        seconds = time.perf_counter() - started
        size = sum(p.stat().st_size for p in paths)
    print(f"full generation: {N_DATASET} samples in {seconds:.1f} s ({size / 1e6:.0f} MB)",
          flush=True)
    return {"samples": N_DATASET, "seconds": seconds, "dt": dt, "compute_resolution": points,
            "chunk_size": batch,
            "n_times": recipe.n_times, "resolution": recipe.resolution, "bytes": size}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run (~1-2 min): Burgers at 2,048 points, small batches")
    parser.add_argument("--full", action="store_true",
                        help="also write 1,200 samples of each set with write_trajectories")
    parser.add_argument("--batch", type=int, help="scidl batch (default 64; quick 8)")
    parser.add_argument("--samples", type=int, help="baseline samples timed (default 3; quick 1)")
    parser.add_argument("--ref-samples", type=int, help="reference samples (default 4; quick 2)")
    parser.add_argument("--tol", type=float, default=1e-6, help="relative L2 target at T")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--repeats", type=int, help="timing repeats, best taken (default 3)")
    parser.add_argument("--probe-steps", type=int, default=400,
                        help="RK45 steps of the spectral Burgers probe")
    parser.add_argument("--only", nargs="*", help="problem names: burgers-0.1 burgers-1e-3 ns")
    parser.add_argument("--out", help="result file (default benchmarks/results/solvers.json)")
    args = parser.parse_args()
    quick = args.quick
    args.batch = args.batch or (8 if quick else 64)
    args.samples = args.samples or (1 if quick else 3)
    args.ref_samples = args.ref_samples or (2 if quick else 4)
    args.repeats = args.repeats or (1 if quick else 3)
    if quick:
        args.probe_steps = min(args.probe_steps, 100)
    out = Path(args.out or HERE / "results" / ("solvers_quick.json" if quick else "solvers.json"))
    torch.set_num_threads(args.threads)
    n = 2048 if quick else 8192
    load_before = os.getloadavg()
    started = time.perf_counter()

    problems = {
        "burgers-0.1": ("Burgers nu = 0.1, FNO paper text GRF (sigma 25, tau 5, gamma 2)",
                        {"nu": 0.1, "setting": "fno-paper"}),
        "burgers-1e-3": ("Burgers nu = 1e-3, FNO repository GRF (sigma 49, tau 7, gamma 2.5)",
                         {"nu": 1e-3, "setting": "fno-repository"}),
    }
    results = []
    for key, (title, params) in problems.items():
        if args.only and key not in args.only:
            continue
        recipe = TrajectoryRecipe.build("burgers", params, resolution=n, solver_resolution=n,
                                        n_times=2, chunk_size=args.batch)
        nu = params["nu"]
        row = benchmark(title, recipe, BurgersFD(n, nu),
                        "solve_ivp BDF, 2nd-order central FD, sparse jac_sparsity", args,
                        dt_ref=1e-3 if quick else 2.5e-4, spatial_check=True,
                        rk45_probe=BurgersSpectral(n, nu))
        row["key"] = key
        if args.full:
            row["full_generation"] = full_generation(recipe, row["scidl_calibrated_grid"]["dt"],
                                                    row["scidl_calibrated_grid"]["compute_resolution"],
                                                    args.batch)
        results.append(row)
    if not args.only or "ns" in args.only:
        recipe = TrajectoryRecipe.build("navier_stokes", {}, resolution=64, solver_resolution=64,
                                        chunk_size=args.batch)
        pde = recipe.pde()
        row = benchmark("Navier-Stokes 2D nu = 1e-3, 64 x 64, FNO forcing and GRF, T = 10",
                        recipe, NavierStokesSpectral(64, pde.nu, pde.amplitude),
                        "solve_ivp RK45, numpy pseudo-spectral RHS (same discretisation)",
                        args, dt_ref=2e-2 if quick else 5e-3, spatial_check=not quick)
        row["key"] = "ns"
        if args.full:
            row["full_generation"] = full_generation(recipe, row["scidl_calibrated_grid"]["dt"],
                                                    row["scidl_calibrated_grid"]["compute_resolution"],
                                                    args.batch)
        results.append(row)

    print(f"\n{'problem':<14} {'grid':>6} {'dt':>9} {'scidl s/smp':>12} {'err':>8} "
          f"{'scipy s/smp':>12} {'rtol':>7} {'err':>8} {'ratio':>7}")
    for r in results:
        b = r["baseline"]
        for label, s, ratio in (("same", r["scidl"], r["ratio_baseline_over_scidl"]),
                                ("calib", r["scidl_calibrated_grid"],
                                 r["ratio_baseline_over_scidl_calibrated_grid"])):
            points = s.get("compute_resolution", r["grid"][0])
            print(f"{r['key'] + ' ' + label:<14} {points:>6} {s['dt']:>9.3g} "
                  f"{s['seconds_per_sample']:>12.4f} {s['rel_l2_max']:>8.1e} "
                  f"{b['seconds_per_sample']:>12.3f} {b['rtol']:>7.0e} {b['rel_l2_max']:>8.1e} "
                  f"{ratio:>6.1f}x")

    result = {
        "benchmark": "solvers",
        "mode": "quick" if quick else "default",
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "tolerance_rel_l2": args.tol,
        "samples_in_dataset": N_DATASET,
        "note": ("seconds per sample are measured; hours for 1,200 samples are seconds per "
                 "sample x 1,200 (extrapolated) unless full_generation is present; ratio = "
                 "baseline s/sample / scidl s/sample, measured in this one process run"),
        "problems": results,
        "machine": machine_info(load_average_before=load_before,
                                load_average_after=os.getloadavg()),
        "seconds": time.perf_counter() - started,
        "date": utc_now(),
    }
    print(f"wrote {write_result(out, result)} ({result['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
