"""Space-time products: a spatial geometry times a time interval."""

from __future__ import annotations

import torch

from scidl.pinn.geometry.base import (
    Geometry,
    _check_method,
    _check_n,
    _UnitSampler,
)
from scidl.pinn.geometry.boxes import TimeDomain


class SpaceTime:
    """Product of a spatial :class:`Geometry` and a :class:`TimeDomain`.

    Points are ``[P, dim]`` with ``dim = geometry.dim + 1``; the last column is ``t``.
    QMC methods are applied jointly over the product (space and time from one sequence).
    """

    def __init__(self, geometry: Geometry, time: TimeDomain):
        if not isinstance(geometry, Geometry):
            raise ValueError(f"geometry must be a Geometry, got {type(geometry).__name__}")
        if not isinstance(time, TimeDomain):
            raise ValueError(f"time must be a TimeDomain, got {type(time).__name__}")
        self.geometry, self.time = geometry, time
        self.dim = geometry.dim + 1
        self.names = geometry.names + ("t",)

    _as_points = Geometry._as_points

    def _t_of(self, u: torch.Tensor) -> torch.Tensor:
        return self.time.t0 + (self.time.t1 - self.time.t0) * u

    def bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Bounding box ``(lo [dim], hi [dim])``, time last."""
        lo, hi = self.geometry.bounds()
        return (torch.cat([lo, lo.new_tensor([self.time.t0])]),
                torch.cat([hi, hi.new_tensor([self.time.t1])]))

    def measure(self) -> float:
        """Spatial measure times the duration."""
        return self.geometry.measure() * (self.time.t1 - self.time.t0)

    def _t_ok(self, t: torch.Tensor, tol: float) -> torch.Tensor:
        return (t >= self.time.t0 - tol) & (t <= self.time.t1 + tol)

    def inside(self, points) -> torch.Tensor:
        """``[P, dim] -> bool [P]``: spatially inside and ``t0 <= t <= t1`` (closed)."""
        p = self._as_points(points).detach()
        return self.geometry.inside(p[:, :-1]) & self._t_ok(p[:, -1], self.time._tol(p.dtype))

    def on_boundary(self, points, tol: float = 1e-6) -> torch.Tensor:
        """``[P, dim] -> bool [P]``: on the spatial boundary with ``t`` in ``[t0, t1]``."""
        p = self._as_points(points).detach()
        return self.geometry.on_boundary(p[:, :-1], tol) & self._t_ok(p[:, -1], tol)

    def on_initial(self, points, tol: float = 1e-6) -> torch.Tensor:
        """``[P, dim] -> bool [P]``: ``|t - t0| <= tol`` and spatially inside."""
        p = self._as_points(points).detach()
        return ((p[:, -1] - self.time.t0).abs() <= tol) & self.geometry.inside(p[:, :-1])

    def sample_interior(self, n: int, method: str = "uniform", seed: int = 0) -> torch.Tensor:
        """``n`` space-time points, ``[n, dim]``; space and time drawn jointly."""
        _check_method(method)
        pts = self.geometry._sample_mapped(n, 1, method, seed)
        return torch.cat([pts[:, :-1], self._t_of(pts[:, -1:])], dim=1)

    def sample_initial(self, n: int, method: str = "uniform", seed: int = 0) -> torch.Tensor:
        """``n`` points at ``t = t0``, ``[n, dim]``; space from ``geometry.sample_interior``."""
        x = self.geometry.sample_interior(n, method, seed)
        return torch.cat([x, x.new_full((len(x), 1), self.time.t0)], dim=1)

    def sample_boundary(self, n: int, method: str = "uniform", seed: int = 0) -> torch.Tensor:
        """``n`` points of spatial boundary x ``[t0, t1]``, ``[n, dim]``, drawn jointly."""
        n = _check_n(n)
        k = self.geometry._boundary_udim
        u = _UnitSampler(k + 1, method, seed).draw(n)
        x = self.geometry._map_boundary(u[:, :k])
        return torch.cat([x, self._t_of(u[:, k:])], dim=1)
