"""Axis-aligned domains: boxes, rectangles, intervals and the time interval."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from scidl.pinn.geometry.base import (
    _DTYPE,
    Geometry,
    _spatial_names,
)


class Box(Geometry):
    """Axis-aligned box ``[lo_0, hi_0] x ... x [lo_{d-1}, hi_{d-1}]``, any ``d >= 1``.

    ``distance`` is the product of the interval factors ``(x-a)(b-x)/((b-a)/2)^2`` (1 at the
    centre). Boundary samples are spread over the faces in proportion to their area.
    """

    def __init__(self, lo: Sequence[float], hi: Sequence[float]):
        lo_t = torch.as_tensor(np.asarray(lo, dtype=np.float64).reshape(-1))
        hi_t = torch.as_tensor(np.asarray(hi, dtype=np.float64).reshape(-1))
        if lo_t.numel() == 0 or lo_t.shape != hi_t.shape:
            raise ValueError(f"lo and hi must be nonempty and of equal length, got {lo}, {hi}")
        if not bool(torch.all(torch.isfinite(lo_t)) and torch.all(torch.isfinite(hi_t))):
            raise ValueError("lo and hi must be finite")
        if not bool(torch.all(lo_t < hi_t)):
            raise ValueError(f"lo < hi required in every dimension, got lo={lo}, hi={hi}")
        self.lo, self.hi = lo_t, hi_t
        self.dim = lo_t.numel()
        self.names = _spatial_names(self.dim)
        self._boundary_udim = self.dim - 1

    def bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.lo.clone(), self.hi.clone()

    def inside(self, points) -> torch.Tensor:
        p = self._as_points(points).detach()
        lo, hi, tol = self._const(self.lo, p), self._const(self.hi, p), self._tol(p.dtype)
        return torch.all((p >= lo - tol) & (p <= hi + tol), dim=1)

    def _face_gaps(self, p: torch.Tensor) -> torch.Tensor:
        """``[P, 2*dim]`` distances to the planes lo_0, hi_0, lo_1, hi_1, ..."""
        lo, hi = self._const(self.lo, p), self._const(self.hi, p)
        return torch.stack([(p - lo).abs(), (hi - p).abs()], dim=2).reshape(len(p), -1)

    def on_boundary(self, points, tol: float = 1e-6) -> torch.Tensor:
        p = self._as_points(points).detach()
        lo, hi = self._const(self.lo, p), self._const(self.hi, p)
        near = torch.all((p >= lo - tol) & (p <= hi + tol), dim=1)
        return near & (self._face_gaps(p).min(dim=1).values <= tol)

    def boundary_normal(self, points) -> torch.Tensor:
        """Outward normal ``[P, dim]`` of the nearest face.

        At edges and corners, where several faces are equally near, the face of the lowest
        dimension index is used (``lo`` before ``hi``).
        """
        p = self._as_points(points).detach()
        face = self._face_gaps(p).argmin(dim=1)
        k, side = face // 2, face % 2
        normal = torch.zeros_like(p)
        normal[torch.arange(len(p)), k] = (2 * side - 1).to(p.dtype)
        return normal

    def distance(self, points) -> torch.Tensor:
        p = self._as_points(points)
        lo, hi = self._const(self.lo, p), self._const(self.hi, p)
        half = (hi - lo) / 2
        return torch.prod((p - lo) * (hi - p) / half**2, dim=1)

    def measure(self) -> float:
        return float(torch.prod(self.hi - self.lo))

    def _map_interior(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.lo + (self.hi - self.lo) * u
        return x, torch.ones(len(u), dtype=torch.bool)

    def _faces(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Face areas ``[2*dim]`` (order lo_0, hi_0, lo_1, ...) and their cumulative starts."""
        ext = self.hi - self.lo
        areas = torch.stack([torch.prod(torch.cat([ext[:k], ext[k + 1 :]]))
                             for k in range(self.dim)]).repeat_interleave(2)
        starts = torch.cat([areas.new_zeros(1), torch.cumsum(areas, 0)[:-1]])
        return areas, starts

    def _map_boundary(self, u: torch.Tensor) -> torch.Tensor:
        if self.dim == 1:  # boundary {a, b}: alternate a, b, a, ...
            odd = (torch.arange(len(u)) % 2 == 1)[:, None]
            return torch.where(odd, self.hi, self.lo).reshape(len(u), 1)
        # The first unit coordinate picks a face in proportion to its area and, rescaled
        # within the face's slot, gives the first in-face coordinate; the rest give the others.
        areas, starts = self._faces()
        s = u[:, 0] * areas.sum()
        face = (torch.searchsorted(starts, s, right=True) - 1).clamp(0, 2 * self.dim - 1)
        local = ((s - starts[face]) / areas[face]).clamp(0.0, 1.0)
        coords = torch.cat([local[:, None], u[:, 1:]], dim=1)  # [k, dim - 1] in-face coords
        k, side = face // 2, face % 2
        x = torch.empty(len(u), self.dim, dtype=_DTYPE)
        for kk in range(self.dim):
            rows = k == kk
            free = [j for j in range(self.dim) if j != kk]
            for c, j in enumerate(free):
                x[rows, j] = self.lo[j] + (self.hi[j] - self.lo[j]) * coords[rows, c]
            x[rows, kk] = torch.where(side[rows] == 1, self.hi[kk], self.lo[kk])
        return x


class Rectangle(Box):
    """Axis-aligned rectangle ``[lo_x, hi_x] x [lo_y, hi_y]``.

    Boundary samples follow the perimeter in arc length, driven by a 1-D sequence.
    """

    def __init__(self, lo: Sequence[float], hi: Sequence[float]):
        if len(lo) != 2 or len(hi) != 2:
            raise ValueError(f"Rectangle needs 2-D lo and hi, got {lo}, {hi}")
        super().__init__(lo, hi)


class Interval(Box):
    """Interval ``[a, b]``; its boundary is ``{a, b}``.

    ``sample_boundary(n)`` alternates ``a, b, a, b, ...`` (an extra point at ``a`` for odd
    ``n``); method and seed are validated but do not change it.
    """

    def __init__(self, a: float, b: float):
        if not a < b:
            raise ValueError(f"Interval needs a < b, got a={a}, b={b}")
        super().__init__([a], [b])
        self.a, self.b = float(a), float(b)


# --------------------------------------------------------------------------------------------
# Disk
# --------------------------------------------------------------------------------------------

class TimeDomain(Interval):
    """Time interval ``[t0, t1]`` (an :class:`Interval` named ``"t"``)."""

    def __init__(self, t0: float, t1: float):
        if not t0 < t1:
            raise ValueError(f"TimeDomain needs t0 < t1, got t0={t0}, t1={t1}")
        super().__init__(t0, t1)
        self.t0, self.t1 = float(t0), float(t1)
        self.names = ("t",)


