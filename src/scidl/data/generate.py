"""Reference datasets from scidl's own solvers, in memory or written chunk by chunk to HDF5."""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

import torch

import scidl
from scidl.data.chunked import FileLayout, Progress, chunks, now, write_chunked
from scidl.data.hdf5 import FieldDataset
from scidl.data.recipes import TrajectoryRecipe
from scidl.errors import DivergenceError
from scidl.numerics import fourier_resample, simulate


def _relative_change(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest relative L2 difference over samples and saved times of ``[B, T, *S]`` states."""
    change = (a - b).flatten(2).norm(dim=-1) / b.flatten(2).norm(dim=-1)
    return float(change.nan_to_num(0.0).max())


class _Probes:
    """The first initial states of a recipe, solved on demand at a step and a grid and kept
    (calibration asks for the same solve more than once)."""

    def __init__(self, recipe: TrajectoryRecipe, n: int, probes: int):
        self.recipe = recipe
        self.u0 = recipe.initial_states(0, min(probes, n))
        self._solved: dict[tuple[float, int], torch.Tensor | None] = {}

    def solve(self, dt: float, resolution: int) -> torch.Tensor | None:
        """Trajectories ``[B, T, *S]`` solved on ``resolution`` points, resampled onto the
        solver grid; None if the solve blew up."""
        key = (dt, resolution)
        if key not in self._solved:
            recipe = self.recipe
            grid = dataclasses.replace(recipe, compute_resolution=resolution).compute_grid()
            try:
                out = simulate(recipe.pde(), fourier_resample(self.u0, grid.shape),
                               recipe.times(), grid=grid, dt=dt)
                self._solved[key] = fourier_resample(out, recipe.solver_grid().shape)
            except DivergenceError:
                self._solved[key] = None
        return self._solved[key]

    def halving_step(self, resolution: int, start: float) -> float:
        """The largest ``start / 2^k`` whose states change by at most the tolerance when it is
        halved."""
        dt = start
        for _ in range(30):
            coarse, fine = self.solve(dt, resolution), self.solve(dt / 2, resolution)
            if coarse is not None and fine is not None \
                    and _relative_change(coarse, fine) <= self.recipe.tolerance:
                return dt
            dt /= 2
        raise DivergenceError(
            f"no step down to {dt:.3g} reaches the tolerance {self.recipe.tolerance:g} on "
            f"{resolution} points; pass dt"
        )


def resolve_dt(recipe: TrajectoryRecipe, n: int, probes: int = 4) -> TrajectoryRecipe:
    """Fix the solver step: the recipe's ``dt``, else the largest ``interval / 2^k`` that is
    accurate to ``tolerance`` on the compute grid (the solver grid while that is open).

    The step is calibrated by step halving on the first ``probes`` initial states of chunk 0:
    it is accepted when the saved states change by at most ``tolerance`` (relative L2, worst
    sample and time) on halving it, which bounds its own error by about the same for a
    fourth-order stepper. An advective CFL bound would be far too strict for ETDRK4, which
    integrates the stiff linear part exactly (e.g. 18,000 instead of 320 steps for the FNO
    paper's Burgers set at 8,192 points; see BENCHMARKS.md).
    """
    if recipe.dt is not None:
        return recipe
    interval = recipe.t_final / max(recipe.n_times - 1, 1)
    dt = _Probes(recipe, n, probes).halving_step(recipe.compute_grid().shape[0], interval)
    return dataclasses.replace(recipe, dt=dt)


def calibrate(recipe: TrajectoryRecipe, n: int, probes: int = 4) -> TrajectoryRecipe:
    """The recipe with its step and compute grid fixed, each calibrated to ``tolerance`` on the
    first ``probes`` initial states of chunk 0 where the recipe leaves it open.

    The compute grid is the coarsest ``solver_resolution / 2^k`` (at least 16 points) whose
    saved states, at its own calibrated step (:func:`resolve_dt`'s rule), change by at most
    ``tolerance`` (relative L2, worst probe and saved time after the first) when the grid is
    doubled; the search goes upward from the coarsest, so the full solver grid is only solved
    on if nothing coarser is accurate. Spectral accuracy makes this pay: the FNO paper's
    Burgers set with nu = 0.1, drawn and saved at 8,192 points, is solved to 1e-6 on 64 (see
    BENCHMARKS.md). A recipe that fixes both is returned as it is.
    """
    if recipe.compute_resolution is not None or recipe.n_times < 2:
        fixed = dataclasses.replace(recipe, compute_resolution=recipe.compute_grid().shape[0])
        return resolve_dt(fixed, n, probes)
    probe = _Probes(recipe, n, probes)
    grids = [recipe.solver_resolution]
    while grids[-1] % 2 == 0 and grids[-1] // 2 >= 16:
        grids.append(grids[-1] // 2)
    grids.reverse()
    interval = recipe.t_final / max(recipe.n_times - 1, 1)
    start = interval
    for points, finer in zip(grids, grids[1:] + [None]):
        # A finer grid rarely allows a much larger step than the last one: start the halving
        # at 4x it (still interval / 2^k), which saves most of the coarse solves.
        try:
            step = recipe.dt or probe.halving_step(points, start)
        except DivergenceError:  # too coarse to be solved at all: try the next grid
            if finer is None:
                raise
            continue
        start = min(interval, 4 * step)
        if finer is None:  # the solver grid itself
            break
        coarse, fine = probe.solve(step, points), probe.solve(step, finer)
        if coarse is not None and fine is not None \
                and _relative_change(coarse[:, 1:], fine[:, 1:]) <= recipe.tolerance:
            break
    return dataclasses.replace(recipe, dt=step, compute_resolution=points)


def solve_chunk(recipe: TrajectoryRecipe, chunk: int, n: int, resolution: int) -> torch.Tensor:
    """Trajectories ``[n, T, *S]`` (float32) of one chunk on ``resolution`` points.

    The equation is solved on the compute grid; the states are read off at the saved points
    (by the trigonometric interpolant where the compute grid is coarser than the saved one),
    and the first state is the drawn initial state itself.
    """
    recipe = calibrate(recipe, n)
    grid = recipe.compute_grid()
    u0 = recipe.initial_states(chunk, n)
    trajectory = simulate(recipe.pde(), fourier_resample(u0, grid.shape), recipe.times(),
                          grid=grid, dt=recipe.dt)
    trajectory = _at_resolution(trajectory, resolution, grid.ndim)
    trajectory[:, 0] = _at_resolution(u0, resolution, grid.ndim)
    return trajectory.to(torch.float32).contiguous()


def _at_resolution(u: torch.Tensor, resolution: int, ndim: int) -> torch.Tensor:
    """Fields ``[..., *S]`` at ``resolution`` points per dimension: the grid points themselves
    where ``resolution`` divides ``S``, else the trigonometric interpolant there."""
    size = u.shape[-1]
    if size % resolution == 0:
        return u[(..., *(slice(None, None, size // resolution),) * ndim)]
    return fourier_resample(u, (resolution,) * ndim)


def metadata(recipe: TrajectoryRecipe, n: int, resolution: int) -> dict:
    """Attributes that make a file self-describing."""
    steps = math.ceil(recipe.t_final / max(recipe.n_times - 1, 1) / recipe.dt - 1e-9)
    return {
        "equation": recipe.pde().name,
        "parameters": recipe.pde().parameters(),
        "domain_length": recipe.length,
        "boundary": "periodic",
        "resolution": resolution,
        "n": n,
        "solver": "pseudo-spectral, ETDRK4 (Kassam-Trefethen), 2/3 de-aliasing, float64",
        "solver_resolution": recipe.solver_resolution,
        "compute_resolution": recipe.compute_grid().shape[0],
        "tolerance": recipe.tolerance,
        "dt": recipe.dt,
        "steps_per_save": steps,
        "initial_condition": {"kind": recipe.initial_condition, **recipe.initial_parameters},
        "seed": recipe.seed,
        "recipe": recipe.to_dict(),
        "scidl_version": scidl.__version__,
        "torch_version": str(torch.__version__),
    }


def generate_trajectories(recipe: TrajectoryRecipe, n: int,
                          progress: Progress | None = None) -> FieldDataset:
    """Solve ``n`` trajectories of ``recipe`` in memory (the numbers of
    :func:`write_trajectories`).

    Returns:
        A :class:`FieldDataset` with ``u`` of shape ``[n, n_times, *S]`` (float32).
    """
    recipe = calibrate(recipe, n)
    parts = []
    for chunk, start, size in chunks(n, recipe.chunk_size):
        parts.append(solve_chunk(recipe, chunk, size, recipe.resolution))
        if progress is not None:
            progress(start + size)
    grid = recipe.solver_grid()
    stride = recipe.solver_resolution // recipe.resolution
    attrs = metadata(recipe, n, recipe.resolution)
    attrs["created"] = now()
    return FieldDataset(u=torch.cat(parts), t=recipe.times().to(torch.float32),
                        x=grid.coordinates()[0][::stride].to(torch.float32), attrs=attrs)


def write_trajectories(recipe: TrajectoryRecipe, n: int, path: str | os.PathLike, *,
                       subsample: tuple[int, ...] = (), resume: bool = True,
                       progress: Progress | None = None) -> list[Path]:
    """Solve ``n`` trajectories chunk by chunk into HDF5 file(s); resumable after a crash.

    Each chunk is written and flushed as soon as it is solved into ``PATH.partial`` (one per
    resolution); an interrupted call leaves them behind and the next call with the same recipe
    continues after the last finished chunk. When all chunks are done, a SHA-256 checksum of
    the arrays is stored and the files are renamed into place.

    Args:
        subsample: extra coarsening factors; factor ``f`` also writes resolution
            ``resolution / f`` to ``PATH`` with ``_r{resolution/f}`` before the suffix, from the
            same fine solve (as the FNO paper does).
    Returns:
        The paths written, finest first.
    """
    recipe = calibrate(recipe, n)
    path = Path(path)
    if any(recipe.resolution % f for f in subsample if f > 1):
        raise ValueError(f"subsample factors {subsample} must divide {recipe.resolution}")
    resolutions = [recipe.resolution] + [recipe.resolution // f for f in subsample if f > 1]
    paths = [path] + [path.with_name(f"{path.stem}_r{r}{path.suffix}") for r in resolutions[1:]]
    grid = recipe.solver_grid()
    layouts = [
        FileLayout(p, metadata(recipe, n, r),
                   per_sample={"u": (n, recipe.n_times) + (r,) * grid.ndim},
                   fixed={"t": recipe.times().to(torch.float32).numpy(),
                          "x": grid.coordinates()[0][:: recipe.solver_resolution // r]
                          .to(torch.float32).numpy()})
        for p, r in zip(paths, resolutions)
    ]

    def produce(chunk: int, start: int, size: int) -> list[dict]:
        fine = solve_chunk(recipe, chunk, size, recipe.resolution)
        out = []
        for resolution in resolutions:
            stride = recipe.resolution // resolution
            out.append({"u": fine[(..., *(slice(None, None, stride),) * grid.ndim)].numpy()})
        return out

    return write_chunked(layouts, n, recipe.chunk_size, produce, resume=resume,
                         progress=progress)
