"""Reference datasets from scidl's own solvers, in memory or written chunk by chunk to HDF5."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
import os
from collections.abc import Callable
from pathlib import Path

import h5py
import torch

import scidl
from scidl.data.hdf5 import FieldDataset, checksum, encode_attribute
from scidl.data.recipes import TrajectoryRecipe
from scidl.numerics import simulate

Progress = Callable[[int], None]


def resolve_dt(recipe: TrajectoryRecipe, n: int) -> TrajectoryRecipe:
    """Fix the solver step: the recipe's ``dt``, else ``cfl * dx / max|u0|`` over the first
    chunk's initial states (an advective CFL condition), at most the save interval."""
    if recipe.dt is not None:
        return recipe
    u0 = recipe.initial_states(0, min(recipe.chunk_size, n))
    dx = recipe.length / recipe.solver_resolution
    interval = recipe.t_final / max(recipe.n_times - 1, 1)
    dt = min(recipe.cfl * dx / float(u0.abs().max().clamp_min(1e-12)), interval)
    return dataclasses.replace(recipe, dt=dt)


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


def _chunks(recipe: TrajectoryRecipe, n: int):
    for chunk in range(math.ceil(n / recipe.chunk_size)):
        start = chunk * recipe.chunk_size
        yield chunk, start, min(recipe.chunk_size, n - start)


def generate_trajectories(recipe: TrajectoryRecipe, n: int,
                          progress: Progress | None = None) -> FieldDataset:
    """Solve ``n`` trajectories of ``recipe`` in memory (the numbers of
    :func:`write_trajectories`).

    Returns:
        A :class:`FieldDataset` with ``u`` of shape ``[n, n_times, *S]`` (float32).
    """
    recipe = resolve_dt(recipe, n)
    parts = []
    for chunk, start, size in _chunks(recipe, n):
        parts.append(solve_chunk(recipe, chunk, size, recipe.resolution))
        if progress is not None:
            progress(start + size)
    grid = recipe.solver_grid()
    stride = recipe.solver_resolution // recipe.resolution
    attrs = metadata(recipe, n, recipe.resolution)
    attrs["created"] = _now()
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
    resolutions = [recipe.resolution] + [recipe.resolution // f for f in subsample if f > 1]
    if any(recipe.resolution % f for f in subsample if f > 1):
        raise ValueError(f"subsample factors {subsample} must divide {recipe.resolution}")
    paths = [path] + [path.with_name(f"{path.stem}_r{r}{path.suffix}") for r in resolutions[1:]]
    files = [_open_partial(p, recipe, n, r, resume) for p, r in zip(paths, resolutions)]
    try:
        done = min(int(f.attrs["completed"]) for f in files)
        for chunk, start, size in _chunks(recipe, n):
            if start + size <= done:
                continue
            fine = solve_chunk(recipe, chunk, size, recipe.resolution)
            for f, resolution in zip(files, resolutions):
                stride = recipe.resolution // resolution
                index = (..., *(slice(None, None, stride),) * (fine.ndim - 2))
                f["u"][start : start + size] = fine[index].numpy()
                f.attrs["completed"] = start + size
                f.flush()
            if progress is not None:
                progress(start + size)
        for f in files:
            f.attrs["checksum_sha256"] = checksum(f)
            f.attrs["created"] = _now()
            del f.attrs["completed"]
    finally:
        for f in files:
            f.close()
    for p in paths:
        os.replace(_partial(p), p)
    return paths


def _partial(path: Path) -> Path:
    return path.with_name(path.name + ".partial")


def _open_partial(path: Path, recipe: TrajectoryRecipe, n: int, resolution: int,
                  resume: bool) -> h5py.File:
    partial = _partial(path)
    attrs = metadata(recipe, n, resolution)
    if resume and partial.exists():
        f = h5py.File(partial, "a")
        stored = f.attrs.get("recipe")
        if stored is not None and json.loads(stored) == attrs["recipe"] and f["u"].shape[0] == n:
            return f
        f.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    f = h5py.File(partial, "w")
    grid = recipe.solver_grid()
    stride = recipe.solver_resolution // resolution
    shape = (n, recipe.n_times) + (resolution,) * grid.ndim
    f.create_dataset("u", shape=shape, dtype="float32",
                     chunks=(min(recipe.chunk_size, n), *shape[1:]))
    f.create_dataset("t", data=recipe.times().to(torch.float32).numpy())
    f.create_dataset("x", data=grid.coordinates()[0][::stride].to(torch.float32).numpy())
    for key, value in attrs.items():
        f.attrs[key] = encode_attribute(value)
    f.attrs["completed"] = 0
    return f


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
