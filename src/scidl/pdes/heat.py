"""Heat (diffusion) equation."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from scidl.numerics.derivatives import Derivatives
from scidl.pdes.base import TimeDependentPDE


@dataclass(frozen=True)
class Heat(TimeDependentPDE):
    """``u_t = nu Laplacian(u)`` (heat / diffusion equation, any dimension)."""

    nu: float = 0.01
    name = "heat"

    def __post_init__(self):
        if not self.nu > 0:
            raise ValueError(f"Heat needs a positive diffusivity nu, got {self.nu}")

    def rhs(self, u: torch.Tensor, d: Derivatives) -> torch.Tensor:
        return self.nu * d.laplacian(u)
