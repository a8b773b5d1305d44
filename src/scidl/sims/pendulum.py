"""The simple and the double pendulum (planar, rigid massless rods, point masses)."""

from __future__ import annotations

import torch

from scidl.sims.base import DynamicalSystem, MechanicalSystem, register_constant


class Pendulum(MechanicalSystem):
    """A point mass on a rod: ``theta'' = -(g / l) sin theta``.

    A mechanical system in the angle ``theta`` (from the downward vertical) with inertia
    ``m l^2`` and potential ``V = m g l (1 - cos theta)``, so the energy
    ``m l^2 theta'^2 / 2 + V`` is conserved.

    Args:
        length, gravity, mass: ``l``, ``g``, ``m``; ``nn.Parameter`` s when ``learnable``.

    Shapes:
        q = theta, v = theta': ``[..., 1]``; y: ``[..., 2]``.
    """

    def __init__(self, length: float | torch.Tensor = 1.0, gravity: float | torch.Tensor = 9.81,
                 mass: float | torch.Tensor = 1.0, *, learnable: bool = True):
        super().__init__()
        register_constant(self, "length", length, learnable)
        register_constant(self, "gravity", gravity, learnable)
        register_constant(self, "mass", mass, learnable)

    @property
    def config_shape(self) -> tuple[int, ...]:
        return (1,)

    def coordinate_masses(self, like: torch.Tensor) -> torch.Tensor:
        return (self.mass.to(like) * self.length.to(like).square()).reshape(1)

    def potential(self, q: torch.Tensor) -> torch.Tensor:
        self.check_positions(q)
        m, g, length = (c.to(q) for c in (self.mass, self.gravity, self.length))
        return (m * g * length * (1 - torch.cos(q))).sum(-1)

    def acceleration(self, q: torch.Tensor) -> torch.Tensor:
        self.check_positions(q)
        return -(self.gravity.to(q) / self.length.to(q)) * torch.sin(q)


class DoublePendulum(DynamicalSystem):
    """Two point masses on two rods, from the Euler-Lagrange equations.

    With ``D = theta1 - theta2`` the Lagrangian
    ``L = (m1 + m2) l1^2 w1^2 / 2 + m2 l2^2 w2^2 / 2 + m2 l1 l2 w1 w2 cos D
    + (m1 + m2) g l1 cos theta1 + m2 g l2 cos theta2`` gives ``M(theta) w' = r`` with
    ``M = [[(m1 + m2) l1^2, m2 l1 l2 cos D], [m2 l1 l2 cos D, m2 l2^2]]``,
    ``r1 = -m2 l1 l2 w2^2 sin D - (m1 + m2) g l1 sin theta1``,
    ``r2 = m2 l1 l2 w1^2 sin D - m2 g l2 sin theta2``, solved here by Cramer's rule (Goldstein,
    "Classical Mechanics", 3rd ed., Sec. 1.6). The mass matrix depends on the angles, so this is
    not a separable :class:`MechanicalSystem`; integrate it with
    :func:`scidl.numerics.odeint.odeint`. The energy ``T + V`` is conserved.

    Args:
        m1, m2, l1, l2, g: masses, rod lengths, gravity; ``nn.Parameter`` s when ``learnable``.

    Shapes:
        y: ``[..., 4]`` = ``(theta1, theta2, w1, w2)``, angles from the downward vertical;
        forward returns ``[..., 4]``, energy ``[...]``.
    """

    def __init__(self, m1: float | torch.Tensor = 1.0, m2: float | torch.Tensor = 1.0,
                 l1: float | torch.Tensor = 1.0, l2: float | torch.Tensor = 1.0,
                 g: float | torch.Tensor = 9.81, *, learnable: bool = True):
        super().__init__()
        for name, value in (("m1", m1), ("m2", m2), ("l1", l1), ("l2", l2), ("g", g)):
            register_constant(self, name, value, learnable)

    @property
    def state_dim(self) -> int:
        return 4

    def _constants(self, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(c.to(y) for c in (self.m1, self.m2, self.l1, self.l2, self.g))

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.check_state(y)
        m1, m2, l1, l2, g = self._constants(y)
        theta1, theta2, w1, w2 = y.unbind(-1)
        delta = theta1 - theta2
        a = (m1 + m2) * l1**2
        b = m2 * l1 * l2 * torch.cos(delta)
        c = m2 * l2**2
        r1 = -m2 * l1 * l2 * w2**2 * torch.sin(delta) - (m1 + m2) * g * l1 * torch.sin(theta1)
        r2 = m2 * l1 * l2 * w1**2 * torch.sin(delta) - m2 * g * l2 * torch.sin(theta2)
        det = a * c - b**2
        return torch.stack([w1, w2, (c * r1 - b * r2) / det, (a * r2 - b * r1) / det], dim=-1)

    def energy(self, y: torch.Tensor) -> torch.Tensor:
        """Kinetic plus potential energy ``[...]`` (zero potential at the pivot's height)."""
        self.check_state(y)
        m1, m2, l1, l2, g = self._constants(y)
        theta1, theta2, w1, w2 = y.unbind(-1)
        kinetic = (0.5 * (m1 + m2) * l1**2 * w1**2 + 0.5 * m2 * l2**2 * w2**2
                   + m2 * l1 * l2 * w1 * w2 * torch.cos(theta1 - theta2))
        potential = -(m1 + m2) * g * l1 * torch.cos(theta1) - m2 * g * l2 * torch.cos(theta2)
        return kinetic + potential
