"""Fourth-order exponential time differencing Runge-Kutta (Cox & Matthews 2002).

The phi-function coefficients are evaluated by the contour-integral method of Kassam & Trefethen,
"Fourth-order time-stepping for stiff PDEs", SIAM J. Sci. Comput. 26 (2005), which avoids the
cancellation of the closed forms for small ``h L``. The linear part is integrated exactly, so stiff
diffusion (``L = -nu k^2``) costs nothing in step size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from scidl.numerics.steppers import Nonlinear, SemilinearStepper, Step


@dataclass(frozen=True)
class ETDRK4(SemilinearStepper):
    """ETDRK4 with ``contour_points`` points on a unit circle around each ``h L``."""

    contour_points: int = 32
    order = 4

    def coefficients(self, linear: torch.Tensor, h: float) -> tuple[torch.Tensor, ...]:
        """``(E, E2, Q, f1, f2, f3)`` of Kassam & Trefethen (2005), eq. (2.5), in complex128."""
        hL = (h * linear.to(torch.complex128)).unsqueeze(-1)
        j = torch.arange(1, self.contour_points + 1, dtype=torch.float64, device=linear.device)
        roots = torch.exp(2j * math.pi * (j - 0.5) / self.contour_points)
        z = hL + roots  # full circle, so complex symbols (e.g. advection) work too
        ez = torch.exp(z)
        Q = h * torch.mean((torch.exp(z / 2) - 1) / z, dim=-1)
        f1 = h * torch.mean((-4 - z + ez * (4 - 3 * z + z**2)) / z**3, dim=-1)
        f2 = h * torch.mean((2 + z + ez * (z - 2)) / z**3, dim=-1)
        f3 = h * torch.mean((-4 - 3 * z - z**2 + ez * (4 - z)) / z**3, dim=-1)
        hL = hL.squeeze(-1)
        return torch.exp(hL), torch.exp(hL / 2), Q, f1, f2, f3

    def prepare(self, linear: torch.Tensor, h: float, nonlinear: Nonlinear) -> Step:
        dtype = linear.dtype
        E, E2, Q, f1, f2, f3 = (c.to(dtype) for c in self.coefficients(linear, h))

        def step(v: torch.Tensor) -> torch.Tensor:
            Nv = nonlinear(v)
            a = E2 * v + Q * Nv
            Na = nonlinear(a)
            b = E2 * v + Q * Na
            Nb = nonlinear(b)
            c = E2 * a + Q * (2 * Nb - Nv)
            Nc = nonlinear(c)
            return E * v + f1 * Nv + 2 * f2 * (Na + Nb) + f3 * Nc

        return step
