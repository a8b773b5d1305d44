"""Darcy-flow datasets, the FNO paper's recipe: thresholded-GRF coefficients and their solutions.

``-div(a grad u) = f`` on the unit square, ``u = 0`` on the boundary; ``a = psi(mu)`` with
``mu ~ N(0, (-Laplacian + 9 I)^-2)`` under zero Neumann conditions and ``psi`` mapping ``mu >= 0``
to ``high`` (12) and the rest to ``low`` (3; the FNO repository's code uses 4 in places). Solved
on ``solver_resolution`` nodes (421 in the paper) by finite differences and subsampled.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

import torch

import scidl
from scidl.data.chunked import FileLayout, Progress, write_chunked
from scidl.data.recipes import chunk_generator
from scidl.numerics import NeumannGaussianRandomField, solve_darcy
from scidl.pdes import threshold_coefficient


@dataclass(frozen=True)
class DarcyRecipe:
    """One Darcy dataset, fully specified."""

    resolution: int = 85
    solver_resolution: int = 421
    high: float = 12.0
    low: float = 3.0
    source: float = 1.0
    average: str = "arithmetic"
    seed: int = 0
    chunk_size: int = 16

    def __post_init__(self):
        if (self.solver_resolution - 1) % (self.resolution - 1):
            raise ValueError(
                f"resolution {self.resolution} must subsample the solver's {self.solver_resolution}"
                " nodes: (solver_resolution - 1) must be a multiple of (resolution - 1)"
            )
        if not (self.high > 0 and self.low > 0):
            raise ValueError("the coefficient values high and low must be positive")

    @property
    def stride(self) -> int:
        return self.stride_for(self.resolution)

    def stride_for(self, resolution: int) -> int:
        """Node stride from the solver grid to ``resolution`` nodes (an error unless exact)."""
        if resolution < 2 or (self.solver_resolution - 1) % (resolution - 1):
            raise ValueError(f"resolution {resolution} does not subsample the solver's "
                             f"{self.solver_resolution} nodes")
        return (self.solver_resolution - 1) // (resolution - 1)

    def solve_chunk(self, chunk: int, n: int,
                    resolutions: tuple[int, ...] | None = None) -> list[tuple[torch.Tensor,
                                                                          torch.Tensor]]:
        """Coefficients ``a`` and solutions ``u``, ``[n, s, s]`` float32, one pair per saved
        grid of ``resolutions`` (default: just ``resolution``), all from one solve."""
        mu = NeumannGaussianRandomField.fno_darcy().sample(
            n, (self.solver_resolution,) * 2, generator=chunk_generator(self.seed, chunk))
        a = threshold_coefficient(mu, self.high, self.low)
        u = solve_darcy(a, torch.full_like(a, self.source), average=self.average)
        pairs = []
        for s in resolutions or (self.resolution,):
            step = self.stride_for(s)
            index = (slice(None), slice(None, None, step), slice(None, None, step))
            pairs.append((a[index].to(torch.float32), u[index].to(torch.float32)))
        return pairs

    def metadata(self, n: int) -> dict:
        return {
            "equation": "darcy",
            "parameters": {"high": self.high, "low": self.low, "source": self.source},
            "boundary": "dirichlet (u = 0)",
            "resolution": self.resolution,
            "n": n,
            "solver": f"finite differences, conservative 5-point, {self.average} face average, "
                      "SuperLU",
            "solver_resolution": self.solver_resolution,
            "initial_condition": {"kind": "thresholded neumann grf", "sigma": 1.0, "tau": 3.0,
                                  "gamma": 2.0},
            "seed": self.seed,
            "recipe": {"family": "darcy", **dataclasses.asdict(self)},
            "scidl_version": scidl.__version__,
            "torch_version": str(torch.__version__),
        }


def write_darcy(recipe: DarcyRecipe, n: int, path: str | os.PathLike, *, resume: bool = True,
                progress: Progress | None = None,
                also: tuple[int, ...] = ()) -> list[Path]:
    """Solve ``n`` Darcy problems chunk by chunk into an HDF5 file (arrays ``a``, ``u``: the
    coefficient and the solution, ``[n, s, s]``; ``x``: node coordinates). Resumable.

    ``also`` lists further node counts that subsample the solver grid (141 and 85 of 421): each
    is written from the same solves to ``PATH_r{s}.h5``, as the FNO paper's sets are.
    """
    path = Path(path)
    resolutions = (recipe.resolution, *(s for s in also if s != recipe.resolution))
    layouts = []
    for s in resolutions:
        recipe.stride_for(s)
        target = path if s == recipe.resolution else path.with_name(f"{path.stem}_r{s}.h5")
        meta = recipe.metadata(n)
        meta["resolution"] = s
        layouts.append(FileLayout(target, meta,
                                  per_sample={"a": (n, s, s), "u": (n, s, s)},
                                  fixed={"x": torch.linspace(0.0, 1.0, s).numpy()
                                         .astype("float32")}))

    def produce(chunk: int, start: int, size: int) -> list[dict]:
        pairs = recipe.solve_chunk(chunk, size, resolutions)
        return [{"a": a.numpy(), "u": u.numpy()} for a, u in pairs]

    return write_chunked(layouts, n, recipe.chunk_size, produce, resume=resume,
                         progress=progress)
