"""Curved and polygonal domains: disks and simple polygons."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from scidl.pinn.geometry.base import (
    Geometry,
    _safe_norm,
)


class Disk(Geometry):
    """Closed disk of centre ``center`` (2-D) and radius ``radius``.

    Interior samples use the area-preserving map ``r = R sqrt(u1), theta = 2 pi u2`` of the
    unit square, boundary samples ``theta = 2 pi u``. ``distance`` is ``(R^2 - |x-c|^2)/R^2``.
    """

    def __init__(self, center: Sequence[float], radius: float):
        c = torch.as_tensor(np.asarray(center, dtype=np.float64).reshape(-1))
        if c.numel() != 2:
            raise ValueError(f"Disk needs a 2-D center, got {center}")
        if not radius > 0 or not math.isfinite(radius):
            raise ValueError(f"Disk needs a finite radius > 0, got {radius}")
        self.center, self.radius = c, float(radius)
        self.dim, self.names, self._boundary_udim = 2, ("x", "y"), 1

    def bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.center - self.radius, self.center + self.radius

    def _r(self, p: torch.Tensor) -> torch.Tensor:
        return _safe_norm(p - self._const(self.center, p))

    def inside(self, points) -> torch.Tensor:
        p = self._as_points(points).detach()
        return self._r(p) <= self.radius + self._tol(p.dtype)

    def on_boundary(self, points, tol: float = 1e-6) -> torch.Tensor:
        p = self._as_points(points).detach()
        return (self._r(p) - self.radius).abs() <= tol

    def boundary_normal(self, points) -> torch.Tensor:
        """``(x - c) / |x - c|``; the zero vector at the centre."""
        p = self._as_points(points).detach()
        d = p - self._const(self.center, p)
        r = self._r(p)[:, None]
        return torch.where(r > 0, d / torch.where(r > 0, r, torch.ones_like(r)), 0.0)

    def distance(self, points) -> torch.Tensor:
        p = self._as_points(points)
        d = p - self._const(self.center, p)
        return (self.radius**2 - (d * d).sum(1)) / self.radius**2

    def measure(self) -> float:
        return math.pi * self.radius**2

    def _map_interior(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r = self.radius * torch.sqrt(u[:, 0])
        th = 2 * math.pi * u[:, 1]
        x = self.center + torch.stack([r * torch.cos(th), r * torch.sin(th)], dim=1)
        return x, torch.ones(len(u), dtype=torch.bool)

    def _map_boundary(self, u: torch.Tensor) -> torch.Tensor:
        th = 2 * math.pi * u[:, 0]
        return self.center + self.radius * torch.stack([torch.cos(th), torch.sin(th)], dim=1)


# --------------------------------------------------------------------------------------------
# Polygon
# --------------------------------------------------------------------------------------------
def _segments_cross(p1, p2, q1, q2, eps: float) -> bool:
    """Closed segments p1p2 and q1q2 intersect (including touching)."""

    def orient(a, b, c):
        v = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
        return 0 if abs(v) <= eps else (1 if v > 0 else -1)

    def on_seg(a, b, c):  # c on segment ab, given collinear
        return min(a[0], b[0]) <= c[0] <= max(a[0], b[0]) and min(a[1], b[1]) <= c[1] <= max(
            a[1], b[1]
        )

    o1, o2, o3, o4 = orient(p1, p2, q1), orient(p1, p2, q2), orient(q1, q2, p1), orient(q1, q2, p2)
    if o1 != o2 and o3 != o4:
        return True
    return (
        (o1 == 0 and on_seg(p1, p2, q1))
        or (o2 == 0 and on_seg(p1, p2, q2))
        or (o3 == 0 and on_seg(q1, q2, p1))
        or (o4 == 0 and on_seg(q1, q2, p2))
    )


class Polygon(Geometry):
    """Simple (non-self-intersecting, possibly non-convex) polygon.

    Vertices are given in order, in either orientation (stored counter-clockwise); a closing
    vertex equal to the first is dropped. Interior samples are drawn by rejection from the
    bounding box (deterministic: the unit sequence is continued until ``n`` are accepted),
    boundary samples by arc length along the perimeter.

    ``distance`` is the exact Euclidean distance to the boundary (min over edges of the
    point-segment distance): 0 on the boundary, > 0 inside, in length units, continuous but not
    smooth on the medial axis (and with zero gradient exactly on the boundary).
    """

    def __init__(self, vertices: Sequence[Sequence[float]]):
        v = np.asarray(vertices, dtype=np.float64)
        if v.ndim != 2 or v.shape[1] != 2:
            raise ValueError(f"vertices must have shape [V, 2], got {v.shape}")
        if len(v) > 1 and np.array_equal(v[0], v[-1]):
            v = v[:-1]
        if len(v) < 3:
            raise ValueError(f"Polygon needs at least 3 vertices, got {len(v)}")
        if not np.all(np.isfinite(v)):
            raise ValueError("vertices must be finite")
        edges = np.roll(v, -1, axis=0) - v
        if np.any(np.linalg.norm(edges, axis=1) == 0):
            raise ValueError("Polygon has repeated consecutive vertices (zero-length edge)")
        m = len(v)
        eps = 1e-14 * float(np.ptp(v, axis=0).max()) ** 2
        for i in range(m):
            for j in range(i + 2, m):
                if i == 0 and j == m - 1:
                    continue  # adjacent through the closing edge
                if _segments_cross(v[i], v[(i + 1) % m], v[j], v[(j + 1) % m], eps):
                    raise ValueError(f"Polygon is not simple: edges {i} and {j} intersect")
        signed_area = 0.5 * float(np.sum(v[:, 0] * np.roll(v[:, 1], -1)
                                         - np.roll(v[:, 0], -1) * v[:, 1]))
        if abs(signed_area) <= eps:
            raise ValueError("Polygon has zero area")
        if signed_area < 0:
            v = v[::-1].copy()
        self.vertices = torch.as_tensor(v)
        self._area = abs(signed_area)
        self.dim, self.names, self._boundary_udim = 2, ("x", "y"), 1
        a = self.vertices
        b = torch.roll(a, -1, dims=0)
        self._edge = b - a
        self._length = torch.linalg.vector_norm(self._edge, dim=1)
        # outward normal of a counter-clockwise edge (dx, dy) is (dy, -dx) / length
        self._normal = torch.stack([self._edge[:, 1], -self._edge[:, 0]], 1) / self._length[:, None]
        self._cum = torch.cat([self._length.new_zeros(1), torch.cumsum(self._length, 0)])

    def bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.vertices.min(0).values, self.vertices.max(0).values

    def _edge_distances(self, p: torch.Tensor) -> torch.Tensor:
        """``[P, E]`` point-segment distances (autograd-safe)."""
        a = self._const(self.vertices, p)[None]  # [1, E, 2]
        e = self._const(self._edge, p)[None]
        rel = p[:, None, :] - a  # [P, E, 2]
        t = ((rel * e).sum(-1) / (e * e).sum(-1)).clamp(0.0, 1.0)
        return _safe_norm(rel - t[..., None] * e)

    def _crossing_inside(self, p: torch.Tensor) -> torch.Tensor:
        a = self._const(self.vertices, p)
        b = torch.roll(a, -1, dims=0)
        px, py = p[:, :1], p[:, 1:]
        x1, y1, x2, y2 = a[:, 0], a[:, 1], b[:, 0], b[:, 1]
        straddle = (y1 > py) != (y2 > py)  # [P, E]
        dy = torch.where(straddle, y2 - y1, torch.ones_like(y2 - y1))
        x_cross = x1 + (py - y1) * (x2 - x1) / dy
        crossings = (straddle & (px < x_cross)).sum(1)
        return crossings % 2 == 1

    def inside(self, points) -> torch.Tensor:
        p = self._as_points(points).detach()
        near = self._edge_distances(p).min(1).values <= self._tol(p.dtype)
        return self._crossing_inside(p) | near

    def on_boundary(self, points, tol: float = 1e-6) -> torch.Tensor:
        p = self._as_points(points).detach()
        return self._edge_distances(p).min(1).values <= tol

    def boundary_normal(self, points) -> torch.Tensor:
        """Outward unit normal ``[P, 2]`` of the nearest edge.

        At a vertex, where two edges are equally near, the normal of the edge with the lower
        index (in counter-clockwise order) is returned.
        """
        p = self._as_points(points).detach()
        idx = self._edge_distances(p).argmin(1)
        return self._const(self._normal, p)[idx]

    def distance(self, points) -> torch.Tensor:
        p = self._as_points(points)
        return self._edge_distances(p).min(1).values

    def smooth_distance(self, points, m: int = 1) -> torch.Tensor:
        """Approximate distance function of Sukumar & Srivastava (Comput. Methods Appl. Mech.
        Eng. 389, 2022): each edge's trimmed, normalised distance ``phi_i`` (smooth, zero on the
        edge only) joined by ``(sum phi_i^-m)^(-1/m)``. Unlike :meth:`distance`, it has no kinks
        on the medial axis, so a hard constraint built on it keeps the PDE residual smooth."""
        p = self._as_points(points)
        a = self._const(self.vertices, p)
        e = self._const(self._edge, p)
        length = self._const(self._length, p)
        rel = p[:, None, :] - a[None]  # [P, E, 2]
        f = (rel[..., 0] * e[None, :, 1] - rel[..., 1] * e[None, :, 0]) / length
        centre = a + e / 2
        t = ((length / 2) ** 2 - (p[:, None, :] - centre[None]).pow(2).sum(-1)) / length
        phi = torch.sqrt(f * f + ((torch.sqrt(t * t + f.pow(4)) - t) / 2) ** 2)
        tiny = torch.finfo(p.dtype).tiny ** 0.5
        return phi.clamp_min(tiny).pow(-m).sum(1).pow(-1.0 / m)

    def measure(self) -> float:
        return self._area

    def _map_interior(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lo, hi = self.bounds()
        x = lo + (hi - lo) * u
        return x, self.inside(x)

    def _map_boundary(self, u: torch.Tensor) -> torch.Tensor:
        s = u[:, 0] * self._cum[-1]
        i = (torch.searchsorted(self._cum, s, right=True) - 1).clamp(0, len(self._length) - 1)
        t = ((s - self._cum[i]) / self._length[i]).clamp(0.0, 1.0)
        return self.vertices[i] + t[:, None] * self._edge[i]


# --------------------------------------------------------------------------------------------
# Time and space-time
# --------------------------------------------------------------------------------------------
