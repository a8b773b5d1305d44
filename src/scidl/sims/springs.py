"""Particles joined by Hookean springs."""

from __future__ import annotations

import torch

from scidl.errors import ShapeError
from scidl.sims.base import MechanicalSystem, as_constant, register_constant


class SpringNetwork(MechanicalSystem):
    """Point masses joined by Hookean springs, ``V = sum_e k_e (|x_i - x_j| - L_e)^2 / 2``.

    The force on ``i`` from spring ``e = (i, j)`` is ``-k_e (1 - L_e / r) (x_i - x_j)`` and the
    opposite on ``j``, so total momentum is conserved; with ``L_e = 0`` this is the NRI "springs"
    interaction (Kipf et al., ICML 2018). Two particles joined by a spring must not coincide
    (``r = 0``) unless its rest length is 0 in the analytic force.

    Args:
        edges: ``[E, 2]`` integer particle indices of each spring.
        stiffness: ``k`` ``[E]`` (or a number for all springs).
        rest_length: ``L`` ``[E]`` (or a number).
        masses: ``[N]`` (or a number, with ``n_particles``); default 1.
        dim: spatial dimension.
        n_particles: ``N`` when ``masses`` is a number; default ``edges.max() + 1``.
        learnable: stiffness, rest lengths and masses are ``nn.Parameter`` s (else buffers).

    Shapes:
        q, v: ``[..., N, dim]``; potential ``[...]``.
    """

    def __init__(self, edges: torch.Tensor, stiffness: float | torch.Tensor = 1.0,
                 rest_length: float | torch.Tensor = 1.0, masses: float | torch.Tensor = 1.0,
                 dim: int = 2, *, n_particles: int | None = None, learnable: bool = True):
        super().__init__()
        edges = torch.as_tensor(edges, dtype=torch.long)
        if edges.ndim != 2 or edges.shape[1] != 2:
            raise ShapeError(f"edges must have shape [E, 2], got {tuple(edges.shape)}")
        masses = as_constant(masses)
        if masses.ndim == 0:
            count = n_particles if n_particles is not None else int(edges.max()) + 1
            masses = masses.expand(count)
        if masses.ndim != 1 or (edges.numel() and int(edges.max()) >= masses.shape[0]):
            raise ShapeError(f"masses must have shape [N] with N > every index in edges, got "
                             f"{tuple(masses.shape)} for indices up to {int(edges.max())}")
        n_edges = edges.shape[0]
        stiffness = as_constant(stiffness).expand(n_edges)
        rest_length = as_constant(rest_length).expand(n_edges)
        self.register_buffer("edges", edges)
        register_constant(self, "stiffness", stiffness, learnable)
        register_constant(self, "rest_length", rest_length, learnable)
        register_constant(self, "masses", masses, learnable)
        self.dim = dim

    @property
    def config_shape(self) -> tuple[int, ...]:
        return (self.masses.shape[0], self.dim)

    def _separations(self, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x_i - x_j [..., E, dim]`` and ``|x_i - x_j| [..., E]``."""
        self.check_positions(q)
        d = q[..., self.edges[:, 0], :] - q[..., self.edges[:, 1], :]
        return d, torch.linalg.vector_norm(d, dim=-1)

    def potential(self, q: torch.Tensor) -> torch.Tensor:
        _, r = self._separations(q)
        stretch = r - self.rest_length.to(q)
        return 0.5 * (self.stiffness.to(q) * stretch.square()).sum(-1)

    def acceleration(self, q: torch.Tensor) -> torch.Tensor:
        d, r = self._separations(q)
        rest = self.rest_length.to(q)
        # L / r, finite (value and gradient) for zero-rest-length springs at r = 0
        ratio = rest / torch.where(rest == 0, torch.ones_like(r), r)
        force = -(self.stiffness.to(q) * (1 - ratio)).unsqueeze(-1) * d  # on particle i
        net = torch.zeros_like(q).index_add(-2, self.edges[:, 0], force)
        net = net.index_add(-2, self.edges[:, 1], -force)
        return net / self.coordinate_masses(q)
