"""Initial, boundary and data conditions of a PINN, enforced softly as loss terms.

Each condition owns its points (drawn from the domain once, or redrawn every
``resample_every`` steps) and states a residual that is zero when it holds; the loss term is the
residual's mean square times the condition's weight. Hard enforcement (an output transform that
satisfies a condition exactly) is :class:`scidl.pinn.network.HardConstraint`.

Values are functions of the points ``X [M, D]`` (columns in the domain's ``names`` order, time
last) returning ``[M]``, ``[M, 1]`` or ``[M, C]``, or constants.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

Value = float | Callable[[torch.Tensor], torch.Tensor]


def evaluate(value: Value, X: torch.Tensor, channels: int) -> torch.Tensor:
    """``value`` at the points ``X [M, D]`` as ``[M, channels]`` (or ``[M, 1]``)."""
    if callable(value):
        out = torch.as_tensor(value(X)).to(X)
        out = out[:, None] if out.ndim == 1 else out
        if out.ndim != 2 or out.shape[0] != X.shape[0] or out.shape[1] not in (1, channels):
            raise ValueError(
                f"a condition's value must return [M], [M, 1] or [M, {channels}] for M = "
                f"{X.shape[0]} points, got {tuple(out.shape)}"
            )
        return out
    return torch.full((X.shape[0], 1), float(value), dtype=X.dtype, device=X.device)


@dataclass
class Condition:
    """Base: a named soft condition with ``n`` points of the given sampling ``method``."""

    n: int = 256
    weight: float = 1.0
    method: str = "uniform"
    name: str = ""
    #: which output channels the condition constrains (default all)
    channels: tuple[int, ...] | None = None

    #: what the condition needs at its points: "value" or "gradient"
    needs = "value"

    def sample(self, domain, seed: int) -> torch.Tensor:
        raise NotImplementedError

    def residual(self, X: torch.Tensor, u: torch.Tensor, grad: torch.Tensor | None,
                 domain) -> torch.Tensor:
        """Zero where the condition holds; ``u [M, C]``, ``grad [M, C, D]`` when needed."""
        raise NotImplementedError

    def _select(self, u: torch.Tensor) -> torch.Tensor:
        return u if self.channels is None else u[:, list(self.channels)]


@dataclass
class InitialCondition(Condition):
    """``u(x, t0) = value(X)`` on a space-time domain (``X`` has ``t = t0`` in its last column).
    A two-channel first-order system (the wave equation's displacement and velocity) takes a
    ``[M, 2]`` value."""

    value: Value = 0.0
    name: str = "initial"

    def sample(self, domain, seed):
        return domain.sample_initial(self.n, method=self.method, seed=seed)

    def residual(self, X, u, grad, domain):
        u = self._select(u)
        return u - evaluate(self.value, X, u.shape[1])


@dataclass
class DirichletBC(Condition):
    """``u = value(X)`` on the (spatial) boundary, or on the part where ``where(X)`` is True."""

    value: Value = 0.0
    where: Callable[[torch.Tensor], torch.Tensor] | None = None
    name: str = "dirichlet"

    def sample(self, domain, seed):
        return _boundary_points(domain, self.n, self.method, seed, self.where)

    def residual(self, X, u, grad, domain):
        u = self._select(u)
        return u - evaluate(self.value, X, u.shape[1])


@dataclass
class NeumannBC(Condition):
    """``n . grad_x u = value(X)`` on the (spatial) boundary with outward normal ``n``."""

    value: Value = 0.0
    where: Callable[[torch.Tensor], torch.Tensor] | None = None
    name: str = "neumann"
    needs = "gradient"

    def sample(self, domain, seed):
        return _boundary_points(domain, self.n, self.method, seed, self.where)

    def residual(self, X, u, grad, domain):
        geometry = getattr(domain, "geometry", domain)
        d = geometry.dim
        normal = geometry.boundary_normal(X[:, :d].detach().double()).to(X)  # [M, d]
        flux = (grad[:, :, :d] * normal[:, None, :]).sum(-1)  # [M, C]
        flux = self._select(flux)
        return flux - evaluate(self.value, X, flux.shape[1])


@dataclass
class PeriodicBC(Condition):
    """``u`` (and, with ``derivative=True``, ``du/dx_i``) equal on the two faces
    ``x_i = lo_i`` and ``x_i = hi_i`` of a box-shaped domain along coordinate ``dim``."""

    dim: int = 0
    derivative: bool = True
    name: str = "periodic"

    @property
    def needs(self):  # type: ignore[override]
        return "gradient" if self.derivative else "value"

    def sample(self, domain, seed):
        points = domain.sample_interior(self.n, method=self.method, seed=seed)
        lo, hi = (b.to(points) for b in domain.bounds())
        left, right = points.clone(), points.clone()
        left[:, self.dim], right[:, self.dim] = lo[self.dim], hi[self.dim]
        return torch.cat([left, right])

    def residual(self, X, u, grad, domain):
        half = X.shape[0] // 2
        u = self._select(u)
        parts = [u[:half] - u[half:]]
        if self.derivative:
            g = self._select(grad[:, :, self.dim])
            parts.append(g[:half] - g[half:])
        return torch.cat(parts, dim=-1)


@dataclass
class Observations(Condition):
    """Data: ``u(points) = values`` at given points (measurements, for inverse problems).

    Args:
        points: ``[M, D]``.
        values: ``[M]`` or ``[M, C]`` (of the constrained channels).
    """

    points: torch.Tensor | None = None
    values: torch.Tensor | None = None
    name: str = "data"

    def __post_init__(self):
        if self.points is None or self.values is None:
            raise ValueError("Observations need points [M, D] and values [M] or [M, C]")
        values = self.values[:, None] if self.values.ndim == 1 else self.values
        if self.points.ndim != 2 or values.shape[0] != self.points.shape[0]:
            raise ValueError(
                f"Observations need points [M, D] and values [M, C] with the same M, got "
                f"{tuple(self.points.shape)} and {tuple(self.values.shape)}"
            )
        self.values = values
        self.n = self.points.shape[0]

    def sample(self, domain, seed):
        # the values ride along as extra columns, so that sharding keeps them with their points
        return torch.cat([self.points, self.values.to(self.points)], 1).to(torch.float64)

    def residual(self, X, u, grad, domain):
        return self._select(u) - X[:, -self.values.shape[1]:].to(u)


def _boundary_points(domain, n: int, method: str, seed: int, where) -> torch.Tensor:
    if where is None:
        return domain.sample_boundary(n, method=method, seed=seed)
    kept, draw = [], 0
    while sum(len(k) for k in kept) < n:
        points = domain.sample_boundary(2 * n, method=method, seed=seed + 7919 * draw)
        kept.append(points[torch.as_tensor(where(points), dtype=torch.bool)])
        draw += 1
        if draw > 50:
            raise ValueError("the `where` filter of a boundary condition selects (almost) no "
                             "boundary points")
    return torch.cat(kept)[:n]
