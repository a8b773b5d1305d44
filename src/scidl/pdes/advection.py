"""Linear advection (transport) in 1D."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from scidl.numerics.derivatives import Derivatives
from scidl.pdes.base import TimeDependentPDE


@dataclass(frozen=True)
class Advection(TimeDependentPDE):
    """``u_t = -c u_x``: every profile travels unchanged at speed ``c``, ``u(x, t) = u_0(x - c t)``.

    The simplest hyperbolic PDE and the first of APEBench's linear families (Koehler et al.,
    "APEBench", NeurIPS 2024). Its Fourier symbol ``-i c k`` is purely imaginary, so
    exponential integrators advance it exactly.

    Args:
        c: advection speed (any finite real; a 0-dim tensor with ``requires_grad`` makes the
            solution differentiable with respect to it).
    """

    c: float = 1.0
    name = "advection"

    def __post_init__(self):
        if not bool(torch.isfinite(torch.as_tensor(self.c).detach())):
            raise ValueError(f"Advection needs a finite speed c, got {self.c}")

    def rhs(self, u: torch.Tensor, d: Derivatives) -> torch.Tensor:
        return -self.c * d.x(u)
