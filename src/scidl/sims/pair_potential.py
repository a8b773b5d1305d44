"""Particles with a smooth short-range repulsive pair potential in a box with soft walls.

The data source of the learned particle simulator (:mod:`scidl.geometric.gns`): interactions
are local (zero beyond ``sigma``), so a radius graph with cutoff ``>= sigma`` sees every force,
and the energy is known, so a learned rollout's energy drift can be measured.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from scidl.errors import ShapeError
from scidl.sims.base import MechanicalSystem, as_constant, register_constant


class SoftSpheres(MechanicalSystem):
    """Point masses with the pair potential ``phi(r) = eps (1 - r^2 / sigma^2)^3`` for
    ``r < sigma`` (0 beyond) inside the box ``[0, L_1] x ... x [0, L_dim]`` with soft walls.

    ``phi`` is bounded (``eps`` at ``r = 0``) and twice continuously differentiable, also at the
    cutoff, so velocity Verlet keeps its second order. Each wall is the cubic
    ``V_w = k u^3 / 3`` of the penetration depth ``u = max(0, x - L)`` (or ``max(0, -x)``),
    also C^2. Total energy ``T + sum_{i<j} phi(r_ij) + sum V_w`` is conserved; momentum is
    not (the walls push).

    Args:
        n_particles: ``N``.
        box: side lengths ``[dim]`` (or one number for a square box).
        epsilon: ``eps``, the pair energy at full overlap.
        sigma: ``sigma``, the interaction range (cutoff).
        wall_stiffness: ``k``.
        masses: ``[N]`` or a number.
        dim: spatial dimension.
        learnable: constants are ``nn.Parameter`` s (else buffers).

    Shapes:
        q, v: ``[..., N, dim]``; potential ``[...]``; :attr:`bounds` ``[dim, 2]`` (low, high).
    """

    def __init__(self, n_particles: int, box: float | Sequence[float] | torch.Tensor = 6.0,
                 epsilon: float = 1.0, sigma: float = 1.0, wall_stiffness: float = 100.0,
                 masses: float | torch.Tensor = 1.0, dim: int = 2, *, learnable: bool = False):
        super().__init__()
        box = as_constant(box)
        if box.ndim == 0:
            box = box.expand(dim)
        if tuple(box.shape) != (dim,):
            raise ShapeError(f"box must have shape [{dim}] (or be a number), got "
                             f"{tuple(box.shape)}")
        masses = as_constant(masses)
        if masses.ndim == 0:
            masses = masses.expand(n_particles)
        if tuple(masses.shape) != (n_particles,):
            raise ShapeError(f"masses must have shape [{n_particles}], got {tuple(masses.shape)}")
        register_constant(self, "masses", masses, learnable)
        register_constant(self, "epsilon", epsilon, learnable)
        register_constant(self, "sigma", sigma, learnable)
        register_constant(self, "wall_stiffness", wall_stiffness, learnable)
        register_constant(self, "box", box, False)
        self.dim = dim

    @property
    def config_shape(self) -> tuple[int, ...]:
        return (self.masses.shape[0], self.dim)

    @property
    def bounds(self) -> torch.Tensor:
        """``[dim, 2]``: lower (0) and upper (``box``) wall of every axis."""
        return torch.stack([torch.zeros_like(self.box), self.box], dim=-1)

    def _pairs(self, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``x_i - x_j [..., N, N, dim]``, ``s = r^2 / sigma^2`` and the mask of interacting
        pairs (``s < 1``, ``i != j``) ``[..., N, N]``."""
        self.check_positions(q)
        d = q.unsqueeze(-2) - q.unsqueeze(-3)
        s = d.square().sum(-1) / self.sigma.to(q) ** 2
        eye = torch.eye(q.shape[-2], dtype=torch.bool, device=q.device)
        return d, s, (s < 1) & ~eye

    def _penetration(self, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Depth into the lower and the upper walls, ``[..., N, dim]`` each."""
        box = self.box.to(q)
        return torch.relu(-q), torch.relu(q - box)

    def potential(self, q: torch.Tensor) -> torch.Tensor:
        _, s, mask = self._pairs(q)
        pair = torch.where(mask, (1 - s).clamp(min=0) ** 3, torch.zeros_like(s))
        low, high = self._penetration(q)
        walls = (low**3 + high**3).sum((-2, -1))
        return (0.5 * self.epsilon.to(q) * pair.sum((-2, -1))
                + self.wall_stiffness.to(q) / 3 * walls)

    def acceleration(self, q: torch.Tensor) -> torch.Tensor:
        d, s, mask = self._pairs(q)
        # -d phi / d x_i = 6 eps (1 - s)^2 (x_i - x_j) / sigma^2
        weight = torch.where(mask, (1 - s).clamp(min=0) ** 2, torch.zeros_like(s))
        coefficient = 6 * self.epsilon.to(q) / self.sigma.to(q) ** 2
        force = coefficient * (weight.unsqueeze(-1) * d).sum(-2)
        low, high = self._penetration(q)
        force = force + self.wall_stiffness.to(q) * (low.square() - high.square())
        return force / self.coordinate_masses(q)


def soft_sphere_state(system: SoftSpheres, temperature: float, generator: torch.Generator,
                      jitter: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """A start state: particles on the cells of a square grid filling the box (random cells
    when there are more cells than particles), displaced by ``jitter`` cell sizes (Gaussian),
    and Gaussian velocities of variance ``temperature / m`` per component with the mean
    removed.

    Returns:
        ``(q0, v0)``, ``[N, dim]`` each, float64.
    """
    n, dim = system.config_shape
    per_side = math.ceil(n ** (1 / dim) - 1e-9)
    box = system.box.detach().to(torch.float64)
    axes = [(torch.arange(per_side, dtype=torch.float64) + 0.5) for _ in range(dim)]
    cells = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, dim)
    cells = cells[torch.randperm(cells.shape[0], generator=generator)[:n]]
    spacing = box / per_side
    q0 = (cells + jitter * torch.randn(n, dim, generator=generator, dtype=torch.float64)) * spacing
    masses = system.masses.detach().to(torch.float64).unsqueeze(-1)
    v0 = torch.randn(n, dim, generator=generator, dtype=torch.float64) * (temperature
                                                                          / masses).sqrt()
    return q0, v0 - v0.mean(0)
