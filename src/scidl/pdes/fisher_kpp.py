"""Fisher-KPP reaction-diffusion equation."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from scidl.numerics.derivatives import Derivatives
from scidl.pdes.base import TimeDependentPDE


@dataclass(frozen=True)
class FisherKPP(TimeDependentPDE):
    """``u_t = D Laplacian(u) + r u (1 - u)`` (Fisher 1937; Kolmogorov, Petrovsky & Piskunov 1937).

    A population ``u`` in ``[0, 1]`` invades the unstable state ``u = 0`` as a front whose
    speed, from localised initial data, tends to ``2 sqrt(D r)`` from below as
    ``2 sqrt(D r) - 3 sqrt(D / r) / (2 t)`` (Bramson 1983; van Saarloos, Phys. Rep. 386, 2003).

    Args:
        diffusivity: ``D > 0``.
        rate: growth rate ``r > 0``.
    """

    diffusivity: float = 1.0
    rate: float = 1.0
    name = "fisher_kpp"

    def __post_init__(self):
        if not self.diffusivity > 0:
            raise ValueError(f"FisherKPP needs a positive diffusivity, got {self.diffusivity}")
        if not self.rate > 0:
            raise ValueError(f"FisherKPP needs a positive growth rate, got {self.rate}")

    def rhs(self, u: torch.Tensor, d: Derivatives) -> torch.Tensor:
        return self.diffusivity * d.laplacian(u) + self.rate * u * (1 - u)
