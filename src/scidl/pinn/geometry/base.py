"""The base of every domain: point checks, tolerances and unit-cube sampling."""

from __future__ import annotations

import inspect
import math
from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np
import torch
from scipy.stats import qmc

SAMPLING_METHODS = ("uniform", "sobol", "lhs")
_REL_TOL = 1e-9
_DTYPE = torch.float64


# --------------------------------------------------------------------------------------------
# Unit-cube samplers
# --------------------------------------------------------------------------------------------
def _check_method(method: str) -> None:
    if method not in SAMPLING_METHODS:
        raise ValueError(
            f"unknown sampling method {method!r}; valid methods are {', '.join(SAMPLING_METHODS)}"
        )


def _check_n(n: int) -> int:
    if isinstance(n, bool) or int(n) != n or n < 0:
        raise ValueError(f"number of points must be a nonnegative integer, got {n!r}")
    return int(n)


def _qmc_engine(cls, d: int, seed: int):
    # SciPy >= 1.15 renamed ``seed`` to ``rng``; support both.
    if "rng" in inspect.signature(cls).parameters:
        return cls(d, scramble=True, rng=seed)
    return cls(d, scramble=True, seed=seed)


class _UnitSampler:
    """Deterministic stream of points of ``[0, 1)^d``; ``draw(k)`` returns the next ``[k, d]``."""

    def __init__(self, d: int, method: str, seed: int):
        _check_method(method)
        self.d, self.method = d, method
        if d == 0:
            return
        if method == "uniform":
            self._gen = torch.Generator().manual_seed(int(seed))
        elif method == "sobol":
            self._engine = _qmc_engine(qmc.Sobol, d, int(seed))
            self._generated = 0
            self._buffer = np.empty((0, d))
        else:
            self._engine = _qmc_engine(qmc.LatinHypercube, d, int(seed))

    def draw(self, k: int) -> torch.Tensor:
        if self.d == 0 or k == 0:
            return torch.zeros(k, self.d, dtype=_DTYPE)
        if self.method == "uniform":
            return torch.rand(k, self.d, generator=self._gen, dtype=_DTYPE)
        if self.method == "lhs":
            return torch.as_tensor(self._engine.random(k), dtype=_DTYPE)
        # Sobol': keep the total number generated a power of two (balance properties, and no
        # SciPy warning), buffer the surplus and hand it out in sequence order.
        while len(self._buffer) < k:
            need = k - len(self._buffer)
            m = self._generated if self._generated else 1 << max(need - 1, 0).bit_length()
            while m < need:  # doubling keeps the running total a power of two
                m += self._generated + m
            self._buffer = np.concatenate([self._buffer, self._engine.random(m)])
            self._generated += m
        out, self._buffer = self._buffer[:k], self._buffer[k:]
        return torch.as_tensor(out, dtype=_DTYPE)


def _spatial_names(dim: int) -> tuple[str, ...]:
    return ("x", "y", "z")[:dim] if dim <= 3 else tuple(f"x{i + 1}" for i in range(dim))


def _safe_norm(v: torch.Tensor) -> torch.Tensor:
    """Euclidean norm over the last axis whose gradient at 0 is 0 instead of NaN."""
    sq = (v * v).sum(-1)
    pos = sq > 0
    return torch.where(pos, torch.sqrt(torch.where(pos, sq, torch.ones_like(sq))), sq)


# --------------------------------------------------------------------------------------------
# Geometry base class
# --------------------------------------------------------------------------------------------
class Geometry(ABC):
    """A closed spatial domain of dimension ``dim`` with coordinate names ``names``.

    Subclasses implement the membership tests and two maps from the unit cube: ``_map_interior``
    (``[k, dim]`` unit points to domain points plus an acceptance mask, for rejection sampling)
    and ``_map_boundary`` (``[k, _boundary_udim]`` unit points to boundary points).
    """

    dim: int
    names: tuple[str, ...]
    _boundary_udim: int

    # ---- helpers -------------------------------------------------------------------------
    def _tol(self, dtype: torch.dtype = _DTYPE) -> float:
        """Absolute membership tolerance: ``1e-9`` (float64; ``~1e-6`` for float32 points)
        times the bounding-box diagonal."""
        lo, hi = self.bounds()
        rel = max(_REL_TOL, 8 * torch.finfo(dtype).eps)
        return rel * float(torch.linalg.vector_norm(hi - lo))

    def _as_points(self, points) -> torch.Tensor:
        if not isinstance(points, torch.Tensor):
            points = torch.as_tensor(np.asarray(points, dtype=np.float64))
        if points.ndim != 2 or points.shape[1] != self.dim:
            raise ValueError(
                f"points must have shape [P, dim] = [P, {self.dim}], got {tuple(points.shape)}"
            )
        if not points.is_floating_point():
            points = points.to(_DTYPE)
        return points

    @staticmethod
    def _const(value, like: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(value, dtype=like.dtype, device=like.device)

    # ---- abstract interface --------------------------------------------------------------
    @abstractmethod
    def bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Bounding box ``(lo [dim], hi [dim])``, float64."""

    @abstractmethod
    def inside(self, points) -> torch.Tensor:
        """``[P, dim] -> bool [P]``: membership of the closed domain (boundary included).

        A tolerance of ``1e-9`` times the bounding-box diagonal absorbs round-off (``~1e-6``
        times it for float32 points).
        """

    @abstractmethod
    def on_boundary(self, points, tol: float = 1e-6) -> torch.Tensor:
        """``[P, dim] -> bool [P]``: points within (absolute) distance ``tol`` of the boundary
        and not farther than ``tol`` outside the domain."""

    @abstractmethod
    def boundary_normal(self, points) -> torch.Tensor:
        """``[P, dim] -> [P, dim]``: outward unit normal at boundary points."""

    @abstractmethod
    def distance(self, points) -> torch.Tensor:
        """``[P, dim] -> [P]``: function that is 0 on the boundary and > 0 inside.

        Meant for hard Dirichlet constraints ``u = g + distance * N``; differentiable with
        autograd, computed in the dtype of ``points``. Values outside the domain are
        unspecified.
        """

    def smooth_distance(self, points) -> torch.Tensor:
        """A smooth function of the points ``[P]``, zero on the boundary, positive inside: the
        factor of a hard Dirichlet constraint ``u = g + phi N`` for second-order equations
        (whose residual needs ``phi`` twice differentiable). The same as :meth:`distance`
        where that is already smooth (box, disk)."""
        return self.distance(points)

    @abstractmethod
    def measure(self) -> float:
        """Length, area or volume."""

    @abstractmethod
    def _map_interior(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Unit points ``[k, dim]`` -> (domain points ``[k, dim]``, accepted ``bool [k]``)."""

    @abstractmethod
    def _map_boundary(self, u: torch.Tensor) -> torch.Tensor:
        """Unit points ``[k, _boundary_udim]`` -> boundary points ``[k, dim]``."""

    # ---- sampling ------------------------------------------------------------------------
    def _sample_mapped(self, n: int, extra: int, method: str, seed: int) -> torch.Tensor:
        """``n`` interior points plus ``extra`` unit columns drawn jointly, ``[n, dim + extra]``.

        Rejected rows are dropped whole, so the extra columns stay paired with the accepted
        spatial points; draws continue in sequence order until ``n`` rows are accepted.
        """
        n = _check_n(n)
        sampler = _UnitSampler(self.dim + extra, method, seed)
        rows: list[torch.Tensor] = []
        got = 0
        rate = None
        while got < n:
            # first batch: exactly n (keeps LHS strata intact when nothing is rejected)
            k = n if rate is None else max(int(math.ceil((n - got) / rate * 1.1)) + 8, 16)
            u = sampler.draw(k)
            x, ok = self._map_interior(u[:, : self.dim])
            accepted = torch.cat([x, u[:, self.dim :]], dim=1)[ok]
            rows.append(accepted)
            got += len(accepted)
            rate = max(float(ok.double().mean()), 1e-3)
        if not rows:
            return torch.zeros(0, self.dim + extra, dtype=_DTYPE)
        return torch.cat(rows)[:n]

    def sample_interior(self, n: int, method: str = "uniform", seed: int = 0) -> torch.Tensor:
        """``n`` points of the domain, ``[n, dim]`` float64.

        Parameters
        ----------
        n : int
            Number of points.
        method : {"uniform", "sobol", "lhs"}
            Point set on the unit cube mapped onto the domain.
        seed : int
            Seed; the same seed gives the same points.
        """
        _check_method(method)
        return self._sample_mapped(n, 0, method, seed)

    def sample_boundary(self, n: int, method: str = "uniform", seed: int = 0) -> torch.Tensor:
        """``n`` points of the boundary, ``[n, dim]`` float64, uniform in arc length/area.

        Parameters are as in :meth:`sample_interior`.
        """
        n = _check_n(n)
        u = _UnitSampler(self._boundary_udim, method, seed).draw(n)
        return self._map_boundary(u)

    def grid(self, n_per_dim: int | Sequence[int]) -> torch.Tensor:
        """Regular grid of the bounding box filtered by :meth:`inside`, ``[M, dim]``.

        Parameters
        ----------
        n_per_dim : int or sequence of int
            Number of grid points (>= 2, endpoints included) per dimension.
        """
        counts = [n_per_dim] * self.dim if isinstance(n_per_dim, int) else list(n_per_dim)
        if len(counts) != self.dim or any(int(c) != c or c < 2 for c in counts):
            raise ValueError(f"n_per_dim must be an int >= 2 or {self.dim} such ints")
        lo, hi = self.bounds()
        axes = [torch.linspace(float(lo[i]), float(hi[i]), int(c), dtype=_DTYPE)
                for i, c in enumerate(counts)]
        pts = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, self.dim)
        return pts[self.inside(pts)]


# --------------------------------------------------------------------------------------------
# Boxes
# --------------------------------------------------------------------------------------------
