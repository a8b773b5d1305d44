"""Viscous Burgers' equation."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from scidl.numerics.derivatives import Derivatives
from scidl.pdes.base import TimeDependentPDE


@dataclass(frozen=True)
class Burgers(TimeDependentPDE):
    """``u_t = -u u_x + nu u_xx`` (viscous Burgers' equation, 1D).

    Args:
        nu: kinematic viscosity (> 0). The FNO paper's text uses 0.1 on the unit interval, its
            repository 1e-3; Raissi et al. use 0.01/pi on [-1, 1].
    """

    nu: float = 0.01
    name = "burgers"

    def __post_init__(self):
        if not self.nu > 0:
            raise ValueError(f"Burgers needs a positive viscosity nu, got {self.nu}")

    def rhs(self, u: torch.Tensor, d: Derivatives) -> torch.Tensor:
        return -u * d.x(u) + self.nu * d.xx(u)
