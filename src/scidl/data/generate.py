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
from scidl.numerics import simulate


def resolve_dt(recipe: TrajectoryRecipe, n: int, probes: int = 4) -> TrajectoryRecipe:
    """Fix the solver step: the recipe's ``dt``, else the largest ``interval / 2^k`` that is
    accurate to ``dt_tolerance``.

    The step is calibrated by step halving on the first ``probes`` initial states of chunk 0:
    it is accepted when the saved states change by at most ``dt_tolerance`` (relative L2, worst
    sample and time) on halving it, which bounds its own error by about the same for a
    fourth-order stepper. An advective CFL bound would be far too strict for ETDRK4, which
    integrates the stiff linear part exactly (e.g. 18,000 instead of 320 steps for the FNO
    paper's Burgers set at 8,192 points; see BENCHMARKS.md).
    """
    if recipe.dt is not None:
        return recipe
    u0 = recipe.initial_states(0, min(probes, n))
    grid, pde, times = recipe.solver_grid(), recipe.pde(), recipe.times()
    interval = recipe.t_final / max(recipe.n_times - 1, 1)

    def solve(dt: float) -> torch.Tensor | None:
        try:
            return simulate(pde, u0, times, grid=grid, dt=dt)
        except DivergenceError:
            return None

    dt, coarse = interval, solve(interval)
    for _ in range(30):
        fine = solve(dt / 2)
        if coarse is not None and fine is not None:
            change = (coarse - fine).flatten(2).norm(dim=-1) / fine.flatten(2).norm(dim=-1)
            if float(change.nan_to_num(0.0).max()) <= recipe.dt_tolerance:
                return dataclasses.replace(recipe, dt=dt)
        dt, coarse = dt / 2, fine
    raise DivergenceError(
        f"no step down to {dt:.3g} reaches the tolerance {recipe.dt_tolerance:g}; pass dt"
    )


def solve_chunk(recipe: TrajectoryRecipe, chunk: int, n: int, resolution: int) -> torch.Tensor:
    """Trajectories ``[n, T, *S]`` (float32) of one chunk, subsampled to ``resolution``."""
    grid = recipe.solver_grid()
    u0 = recipe.initial_states(chunk, n)
    trajectory = simulate(recipe.pde(), u0, recipe.times(), grid=grid, dt=recipe.dt)
    stride = recipe.solver_resolution // resolution
    index = (..., *(slice(None, None, stride),) * grid.ndim)
    return trajectory[index].to(torch.float32).contiguous()


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
    recipe = resolve_dt(recipe, n)
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
    recipe = resolve_dt(recipe, n)
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
