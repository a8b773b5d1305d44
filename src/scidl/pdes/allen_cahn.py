"""Allen-Cahn equation (phase separation)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from scidl.numerics.derivatives import Derivatives
from scidl.pdes.base import TimeDependentPDE


@dataclass(frozen=True)
class AllenCahn(TimeDependentPDE):
    """``u_t = D Laplacian(u) + a (u - u^3)`` (Allen-Cahn equation, any dimension).

    The phases ``u = +-1`` are stable, ``u = 0`` unstable; sharp interfaces of width
    ``sqrt(2 D / a)`` (the stationary profile ``tanh(x sqrt(a / (2 D)))``) separate them and
    move only exponentially slowly in 1D (metastability; Carr & Pego, Comm. Pure Appl. Math.
    42, 1989). If ``|u_0| <= 1`` then ``|u| <= 1`` for all time (maximum principle).

    The defaults are DeepXDE's benchmark, ``u_t = 0.001 u_xx + 5 (u - u^3)`` on ``[-1, 1]``
    with ``u_0 = x^2 cos(pi x)`` (Lu et al., SIAM Review 63, 2021; its ``d = 0.001``).
    Raissi et al. (J. Comput. Phys. 378, 2019) use ``diffusivity=1e-4`` with periodic
    boundaries.

    Args:
        diffusivity: ``D > 0`` (DeepXDE's ``d``).
        reaction: ``a > 0``, the rate of the double-well reaction (5 in both benchmarks).
    """

    diffusivity: float = 1e-3
    reaction: float = 5.0
    name = "allen_cahn"

    def __post_init__(self):
        if not self.diffusivity > 0:
            raise ValueError(f"AllenCahn needs a positive diffusivity, got {self.diffusivity}")
        if not self.reaction > 0:
            raise ValueError(f"AllenCahn needs a positive reaction rate, got {self.reaction}")

    def rhs(self, u: torch.Tensor, d: Derivatives) -> torch.Tensor:
        return self.diffusivity * d.laplacian(u) + self.reaction * (u - u**3)
