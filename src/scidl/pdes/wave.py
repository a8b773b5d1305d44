"""The wave equation, as a first-order system in time."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from scidl.errors import ShapeError
from scidl.numerics.derivatives import Derivatives
from scidl.pdes.base import TimeDependentPDE


@dataclass(frozen=True)
class Wave(TimeDependentPDE):
    """``u_tt = c^2 Laplacian(u)``, solved as ``u_t = v, v_t = c^2 Laplacian(u)`` (any dimension).

    The state has two channels, displacement and velocity: ``[B, 2, *S]`` on a grid. The energy
    ``int (v^2 + c^2 |grad u|^2) / 2`` is conserved, and in 1D every solution is d'Alembert's
    ``u = (f(x - c t) + f(x + c t)) / 2 + (1 / 2c) int_{x - ct}^{x + ct} g`` for
    ``u_0 = f, v_0 = g`` (Evans, "Partial Differential Equations", sec. 2.4). The linear part is
    the block symbol ``[[0, 1], [-c^2 |k|^2, 0]]``, which ETDRK4 integrates exactly.

    Args:
        c: wave speed (> 0).
    """

    c: float = 1.0
    name = "wave"
    channels = 2

    def __post_init__(self):
        if not self.c > 0:
            raise ValueError(f"Wave needs a positive speed c, got {self.c}")

    def rhs(self, u: torch.Tensor, d: Derivatives) -> torch.Tensor:
        axis = -1 - len(d.spatial_dims)  # channels come just before the spatial dims
        if u.ndim < -axis or u.shape[axis] != 2:
            raise ShapeError(
                f"Wave fields are [B, 2, *spatial] (displacement, velocity), got {tuple(u.shape)}"
            )
        displacement, velocity = u.unbind(axis)
        return torch.stack([velocity, self.c**2 * d.laplacian(displacement)], dim=axis)
