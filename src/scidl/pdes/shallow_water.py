"""Rotating shallow-water equations on a doubly periodic f-plane (geostrophic turbulence)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from scidl.errors import ShapeError
from scidl.numerics.derivatives import Derivatives
from scidl.numerics.grids import PeriodicGrid
from scidl.pdes.base import TimeDependentPDE

_DISSIPATION = ("biharmonic", "laplacian")


@dataclass(frozen=True)
class ShallowWater2D(TimeDependentPDE):
    """The rotating shallow-water equations in flux form for the total depth ``h``:

    ``h_t = -(d/dx (h u) + d/dy (h v))``,
    ``u_t = -(u u_x + v u_y) + f v - g h_x + D(u)``,
    ``v_t = -(u v_x + v v_y) - f u - g h_y + D(v)``,

    on a doubly periodic box (Vallis, "Atmospheric and Oceanic Fluid Dynamics", 2nd ed., sec.
    3.1-3.2). ``D`` is an optional scale-selective dissipation applied to every channel,
    ``-nu Laplacian^2`` (``"biharmonic"``, the hyperviscosity of geostrophic-turbulence runs) or
    ``nu Laplacian``; it keeps a long pseudo-spectral run stable at the grid scale. Because the
    depth equation is a divergence (and ``D(h)`` is a Laplacian), the total mass ``int h`` is
    conserved exactly by the spectral solver (the zero mode of a spectral derivative is 0). With
    ``nu = 0`` the energy ``int (h |u|^2 / 2 + g (h - H)^2 / 2)`` is conserved too, and any
    geostrophically balanced single Fourier mode (``u = -psi_y``, ``v = psi_x``,
    ``h = H + f psi / g``, ``psi = A sin(k x + l y)``) is an exact steady state.

    Fields are ``[B, 3, *S]`` (or ``[3, *S]``) on a 2D grid with channels ``(h, u, v)``: total
    depth and the two velocity components. Each term is written with ``d.x`` / ``d.y`` only, so
    the same statement serves the spectral solver, finite differences and physics losses; with
    autograd derivatives at points pass ``[3, P, 1]`` (each channel computed from the ``[P]``
    coordinates).

    Args:
        g: gravitational acceleration (> 0).
        f: Coriolis parameter (rotation); ``f = 0`` is the non-rotating system.
        H: mean depth (> 0). The physics does not depend on it (``h`` is the total depth); it
            is the rest state ``(H, 0, 0)`` about which :meth:`linear_symbol` linearises, so the
            exponential integrator treats the gravity waves (speed ``sqrt(g H)``) exactly.
        nu: dissipation coefficient (>= 0).
        dissipation: ``"biharmonic"`` (``-nu Laplacian^2``) or ``"laplacian"`` (``nu
            Laplacian``).
    """

    g: float = 1.0
    f: float = 1.0
    H: float = 1.0
    nu: float = 0.0
    dissipation: str = "biharmonic"
    name = "shallow_water"
    channels = 3

    def __post_init__(self):
        if not self.g > 0:
            raise ValueError(f"ShallowWater2D needs a positive gravity g, got {self.g}")
        if not self.H > 0:
            raise ValueError(f"ShallowWater2D needs a positive mean depth H, got {self.H}")
        if not self.nu >= 0:
            raise ValueError(f"ShallowWater2D needs a non-negative nu, got {self.nu}")
        if self.dissipation not in _DISSIPATION:
            raise ValueError(f"dissipation must be one of {list(_DISSIPATION)}, "
                             f"got {self.dissipation!r}")

    @property
    def wave_speed(self) -> float:
        """Speed ``sqrt(g H)`` of the gravity waves about the rest state."""
        return (self.g * self.H) ** 0.5

    @property
    def deformation_radius(self) -> float:
        """Rossby radius of deformation ``sqrt(g H) / |f|`` (infinite without rotation)."""
        return self.wave_speed / abs(self.f) if self.f else float("inf")

    def _damping(self, q: torch.Tensor, d: Derivatives) -> torch.Tensor:
        if self.dissipation == "laplacian":
            return self.nu * d.laplacian(q)
        # -nu (d_xxxx + 2 d_xxyy + d_yyyy): a spectral d reuses one transform of q for all three
        return -self.nu * (d.derivative(q, x=4) + 2 * d.derivative(q, x=2, y=2)
                           + d.derivative(q, y=4))

    def rhs(self, u: torch.Tensor, d: Derivatives) -> torch.Tensor:
        if len(d.spatial_dims) != 2:
            raise ShapeError(f"ShallowWater2D lives on a 2D grid; d differentiates along "
                             f"{list(d.spatial_dims)}")
        axis = -3  # channels come just before the two spatial dims
        if u.ndim < 3 or u.shape[axis] != 3:
            raise ShapeError(f"ShallowWater2D fields are [B, 3, X, Y] (h, u, v), "
                             f"got {tuple(u.shape)}")
        h, vx, vy = u.unbind(axis)
        h_t = -(d.x(h * vx) + d.y(h * vy))
        h_x, h_y = d.x(h), d.y(h)
        u_x, u_y = d.x(vx), d.y(vx)
        v_x, v_y = d.x(vy), d.y(vy)
        u_t = -(vx * u_x + vy * u_y) + self.f * vy - self.g * h_x
        v_t = -(vx * v_x + vy * v_y) - self.f * vx - self.g * h_y
        if self.nu:  # channel by channel, so that pointwise (autograd) derivatives work too
            h_t = h_t + self._damping(h, d)
            u_t = u_t + self._damping(vx, d)
            v_t = v_t + self._damping(vy, d)
        return torch.stack([h_t, u_t, v_t], dim=axis)

    def linear_symbol(self, grid: PeriodicGrid, dtype: torch.dtype = torch.float64,
                      device=None, derivatives: Derivatives | None = None) -> torch.Tensor:
        """The ``[3, 3, *K]`` block symbol of ``rhs`` linearised about the rest state
        ``(H, 0, 0)`` (not about ``u = 0``, where the depth vanishes and the gravity waves with
        it): derived from :meth:`rhs` by the base class's impulse responses, shifted to the rest
        state. The solver puts the remainder ``rhs(u) - L u`` in the explicit part, so this
        choice affects only which terms are integrated exactly (here: gravity waves, Coriolis
        and dissipation), not the equations solved."""
        return TimeDependentPDE.linear_symbol(_AboutRest(self), grid, dtype, device,
                                              derivatives)

    def energy(self, u: torch.Tensor, grid: PeriodicGrid) -> torch.Tensor:
        """Total energy ``int (h (u^2 + v^2) / 2 + g (h - H)^2 / 2) dx dy``: ``[B, 3, X, Y] ->
        [B]`` (``[3, X, Y] -> []``). Kinetic plus available potential energy; the constant
        ``g H^2 / 2`` per area is left out, since mass is conserved."""
        h, vx, vy = u.unbind(-3)
        density = 0.5 * h * (vx**2 + vy**2) + 0.5 * self.g * (h - self.H) ** 2
        area = grid.length[0] * grid.length[1]
        return density.mean(dim=(-2, -1)) * area

    def mass(self, u: torch.Tensor, grid: PeriodicGrid) -> torch.Tensor:
        """Total mass (volume) ``int h dx dy``: ``[B, 3, X, Y] -> [B]``."""
        return u.select(-3, 0).mean(dim=(-2, -1)) * (grid.length[0] * grid.length[1])


@dataclass(frozen=True)
class _AboutRest(TimeDependentPDE):
    """``delta -> rhs(rest + delta)``, so that the base class linearises about the rest state."""

    pde: ShallowWater2D
    channels = 3
    name = "shallow_water_about_rest"

    def rhs(self, u: torch.Tensor, d: Derivatives) -> torch.Tensor:
        rest = torch.zeros(3, 1, 1, dtype=u.dtype, device=u.device)
        rest[0] = self.pde.H
        return self.pde.rhs(u + rest, d)

    def _has_trainable_parameters(self) -> bool:
        return self.pde._has_trainable_parameters()

    def parameters(self) -> dict[str, float]:
        return dataclasses.asdict(self.pde)
