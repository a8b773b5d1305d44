"""Reference datasets from scidl's own solvers."""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Callable

import torch

import scidl
from scidl.data.hdf5 import FieldDataset
from scidl.numerics import GaussianRandomField, PeriodicGrid, simulate
from scidl.pdes import TimeDependentPDE


def generate_trajectories(
    pde: TimeDependentPDE,
    *,
    n: int,
    resolution: int,
    initial_condition: GaussianRandomField,
    t_final: float = 1.0,
    n_times: int = 11,
    solver_resolution: int | None = None,
    dt: float | None = None,
    cfl: float = 1.0,
    length: float = 1.0,
    seed: int = 0,
    batch_size: int = 256,
    progress: Callable[[int], None] | None = None,
) -> FieldDataset:
    """Solve ``pde`` from ``n`` random initial conditions and subsample the result.

    Following the FNO paper's recipe, samples are drawn and solved on a fine grid of
    ``solver_resolution`` points and subsampled to ``resolution`` points.

    Args:
        pde: a 1D time-dependent PDE (e.g. ``Burgers(nu=0.1)``).
        n: number of trajectories.
        resolution: points of the saved grid; must divide ``solver_resolution``.
        initial_condition: the Gaussian random field the initial states are drawn from.
        t_final, n_times: save ``n_times`` equally spaced times in ``[0, t_final]``.
        solver_resolution: points of the solver's grid (default ``max(resolution, 1024)``).
        dt: solver step; default ``cfl * dx / max|u0|`` (an advective CFL condition), at most
            the save interval.
        seed: seed of the initial conditions; the same seed gives the same dataset.
        batch_size: trajectories solved at once.
        progress: called with the number of trajectories finished after each batch.

    Returns:
        A :class:`FieldDataset` with ``u`` of shape ``[n, n_times, resolution]`` (float32) and
        metadata describing how it was made.
    """
    solver_resolution = solver_resolution or max(resolution, 1024)
    if solver_resolution % resolution:
        raise ValueError(
            f"resolution {resolution} must divide the solver resolution {solver_resolution}"
        )
    grid = PeriodicGrid(solver_resolution, length)
    generator = torch.Generator().manual_seed(seed)
    u0 = initial_condition.sample(n, grid, generator=generator)
    t = torch.linspace(0.0, t_final, n_times, dtype=torch.float64)
    if dt is None:
        dx = length / solver_resolution
        dt = min(cfl * dx / float(u0.abs().max().clamp_min(1e-12)), t_final / max(n_times - 1, 1))
    stride = solver_resolution // resolution
    chunks = []
    for start in range(0, n, batch_size):
        trajectory = simulate(pde, u0[start : start + batch_size], t, grid=grid, dt=dt)
        chunks.append(trajectory[..., ::stride].to(torch.float32))
        if progress is not None:
            progress(min(start + batch_size, n))
    x = grid.coordinates()[0][::stride]
    attrs = {
        "equation": pde.name,
        "parameters": pde.parameters(),
        "domain_length": length,
        "boundary": "periodic",
        "resolution": resolution,
        "solver": "pseudo-spectral, ETDRK4 (Kassam-Trefethen), 2/3 de-aliasing",
        "solver_resolution": solver_resolution,
        "dt": dt,
        "steps_per_save": math.ceil(t_final / max(n_times - 1, 1) / dt - 1e-9),
        "initial_condition": {
            "kind": "gaussian_random_field",
            "sigma": initial_condition.sigma,
            "tau": initial_condition.tau,
            "gamma": initial_condition.gamma,
            "zero_mean": initial_condition.zero_mean,
        },
        "seed": seed,
        "scidl_version": scidl.__version__,
        "torch_version": torch.__version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    return FieldDataset(u=torch.cat(chunks), t=t.to(torch.float32), x=x.to(torch.float32),
                        attrs=attrs)
