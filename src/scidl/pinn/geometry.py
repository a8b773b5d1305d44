"""Domains and collocation-point sampling for physics-informed neural networks.

Points are float64 tensors of shape ``[P, dim]`` whose columns are the spatial coordinates
``x, y, z`` in order; for a :class:`SpaceTime` domain the last column is ``t``.

Every geometry maps points of the unit cube onto itself (interior) or its boundary, so the
quasi-Monte-Carlo structure of Sobol' and Latin-hypercube samples is carried into the domain.
Sampling methods are

* ``"uniform"``: pseudo-random, from a seeded :class:`torch.Generator`;
* ``"sobol"``: scrambled Sobol' sequence (:class:`scipy.stats.qmc.Sobol`), drawn in powers of
  two and truncated, so the first ``n`` points of one sequence are returned;
* ``"lhs"``: Latin hypercube (:class:`scipy.stats.qmc.LatinHypercube`).

The same ``seed`` always gives the same points.
"""

from __future__ import annotations

import inspect
import math
from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np
import torch
from scipy.stats import qmc

__all__ = [
    "SAMPLING_METHODS",
    "Box",
    "Disk",
    "Geometry",
    "Interval",
    "Polygon",
    "Rectangle",
    "SpaceTime",
    "TimeDomain",
]

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
class TimeDomain(Interval):
    """Time interval ``[t0, t1]`` (an :class:`Interval` named ``"t"``)."""

    def __init__(self, t0: float, t1: float):
        if not t0 < t1:
            raise ValueError(f"TimeDomain needs t0 < t1, got t0={t0}, t1={t1}")
        super().__init__(t0, t1)
        self.t0, self.t1 = float(t0), float(t1)
        self.names = ("t",)


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
