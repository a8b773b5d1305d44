"""Gravitating point masses, and initial states of Kepler orbits."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from scidl.sims.base import MechanicalSystem, as_constant, register_constant


class NBody(MechanicalSystem):
    """Newtonian gravity with Plummer softening.

    ``V = -G sum_{i<j} m_i m_j / sqrt(r_ij^2 + eps^2)`` and
    ``a_i = -G sum_j m_j (x_i - x_j) / (r_ij^2 + eps^2)^{3/2}`` (Plummer softening: Aarseth,
    "Gravitational N-Body Simulations", 2003, Sec. 2.2). ``eps = 0`` is exact gravity; then
    no two bodies may coincide. Forces are pairwise and central: momentum and angular momentum
    are conserved, and the energy by the exact flow.

    Args:
        masses: ``[N]``.
        G: gravitational constant.
        softening: Plummer length ``eps``.
        dim: spatial dimension (2 or 3 for most uses).
        learnable: masses, G and softening are ``nn.Parameter`` s (else buffers).

    Shapes:
        q, v: ``[..., N, dim]``; potential ``[...]``.
    """

    def __init__(self, masses: torch.Tensor, G: float | torch.Tensor = 1.0,
                 softening: float | torch.Tensor = 0.0, dim: int = 3, *, learnable: bool = True):
        super().__init__()
        register_constant(self, "masses", as_constant(masses).reshape(-1), learnable)
        register_constant(self, "G", G, learnable)
        register_constant(self, "softening", softening, learnable)
        self.dim = dim

    @property
    def config_shape(self) -> tuple[int, ...]:
        return (self.masses.shape[0], self.dim)

    def _pairs(self, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x_i - x_j [..., N, N, dim]`` and ``(r_ij^2 + eps^2)^(-1/2) [..., N, N]``, 0 at i=j."""
        self.check_positions(q)
        d = q.unsqueeze(-2) - q.unsqueeze(-3)
        eye = torch.eye(q.shape[-2], dtype=q.dtype, device=q.device)
        # the diagonal gets 1 before the power, then 0: finite values and gradients
        r2 = d.square().sum(-1) + self.softening.to(q).square() + eye
        return d, torch.rsqrt(r2) * (1 - eye)

    def potential(self, q: torch.Tensor) -> torch.Tensor:
        _, inv_r = self._pairs(q)
        m = self.masses.to(q)
        return -0.5 * self.G.to(q) * (m.unsqueeze(-1) * m * inv_r).sum((-2, -1))

    def acceleration(self, q: torch.Tensor) -> torch.Tensor:
        d, inv_r = self._pairs(q)
        weights = self.G.to(q) * self.masses.to(q) * inv_r**3  # [..., i, j]: G m_j / r^3
        return -(weights.unsqueeze(-1) * d).sum(-2)


@dataclass(frozen=True)
class KeplerOrbit:
    """Initial state of a two-body Kepler orbit, its period and energy.

    Attributes:
        positions, velocities: ``[2, dim]``, centre of mass at rest at the origin.
        masses: ``[2]``. G: the gravitational constant.
        period: ``2 pi sqrt(a^3 / (G (m1 + m2)))``. energy: ``-G m1 m2 / (2 a)``.
    """

    positions: torch.Tensor
    velocities: torch.Tensor
    masses: torch.Tensor
    G: float
    period: float
    energy: float

    def system(self, **kwargs) -> NBody:
        """The :class:`NBody` system of this orbit."""
        return NBody(self.masses, G=self.G, dim=self.positions.shape[-1], **kwargs)


def kepler_orbit(eccentricity: float, semi_major_axis: float = 1.0,
                 masses: tuple[float, float] = (1.0, 1.0), G: float = 1.0, dim: int = 2, *,
                 dtype: torch.dtype = torch.float64, device=None) -> KeplerOrbit:
    """Two bodies at pericentre of an orbit with eccentricity ``0 <= e < 1``.

    The separation is ``a (1 - e)`` along x and the relative speed at pericentre
    ``sqrt(G M (1 + e) / (a (1 - e)))`` along y (vis-viva; Murray & Dermott, "Solar System
    Dynamics", 1999, Sec. 2.5), ``M = m1 + m2``, split so that the centre of mass is at rest.
    """
    if not 0 <= eccentricity < 1:
        raise ValueError(f"eccentricity must be in [0, 1), got {eccentricity}")
    if dim < 2:
        raise ValueError(f"an orbit needs dim >= 2, got {dim}")
    m1, m2 = masses
    total = m1 + m2
    separation = semi_major_axis * (1 - eccentricity)
    speed = math.sqrt(G * total * (1 + eccentricity) / separation)
    shares = torch.tensor([-m2 / total, m1 / total], dtype=dtype, device=device)
    positions = torch.zeros(2, dim, dtype=dtype, device=device)
    velocities = torch.zeros(2, dim, dtype=dtype, device=device)
    positions[:, 0] = shares * separation
    velocities[:, 1] = shares * speed
    return KeplerOrbit(
        positions=positions,
        velocities=velocities,
        masses=torch.tensor([m1, m2], dtype=dtype, device=device),
        G=G,
        period=2 * math.pi * math.sqrt(semi_major_axis**3 / (G * total)),
        energy=-G * m1 * m2 / (2 * semi_major_axis),
    )
