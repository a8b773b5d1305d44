"""A point projectile under uniform gravity, with optional quadratic air drag."""

from __future__ import annotations

import torch

from scidl.sims.base import MechanicalSystem, register_constant


class Projectile(MechanicalSystem):
    """``x'' = g_vec - (c / m) |x'| x'`` with ``g_vec = (0, ..., 0, -g)``.

    Gravity derives from ``V = m g x_last`` (the last coordinate points up). Quadratic drag
    ``F = -c |v| v`` (``c = rho C_d A / 2``; Taylor, "Classical Mechanics", 2005, Sec. 2.4)
    depends on the velocity, so it is added in :meth:`forward`, the first-order field that
    :func:`scidl.numerics.odeint.odeint` integrates; :meth:`acceleration` is gravity alone and
    feeds the symplectic integrators only when ``drag = 0``.

    Args:
        gravity: ``g``. drag: ``c``. mass: ``m``; ``nn.Parameter`` s when ``learnable``.
        dim: spatial dimension (the last axis is vertical).

    Shapes:
        q, v: ``[..., dim]``; y: ``[..., 2 dim]``.
    """

    def __init__(self, gravity: float | torch.Tensor = 9.81, drag: float | torch.Tensor = 0.0,
                 mass: float | torch.Tensor = 1.0, dim: int = 2, *, learnable: bool = True):
        super().__init__()
        register_constant(self, "gravity", gravity, learnable)
        register_constant(self, "drag", drag, learnable)
        register_constant(self, "masses", torch.as_tensor(mass, dtype=torch.float64).reshape(1),
                          learnable)
        self.dim = dim

    @property
    def config_shape(self) -> tuple[int, ...]:
        return (self.dim,)

    def potential(self, q: torch.Tensor) -> torch.Tensor:
        self.check_positions(q)
        return self.masses.to(q)[0] * self.gravity.to(q) * q[..., -1]

    def acceleration(self, q: torch.Tensor) -> torch.Tensor:
        self.check_positions(q)
        down = torch.zeros(self.dim, dtype=q.dtype, device=q.device)
        down[-1] = -1.0
        return (self.gravity.to(q) * down).expand_as(q)

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        q, v = self.unpack(y)
        speed = torch.linalg.vector_norm(v, dim=-1, keepdim=True)
        drag = (self.drag.to(v) / self.masses.to(v)[0]) * speed * v
        return self.pack(v, self.acceleration(q) - drag)
