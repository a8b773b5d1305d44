"""Fourth-order exponential time differencing Runge-Kutta (Cox & Matthews 2002).

For a diagonal symbol the phi-function coefficients are evaluated by the contour-integral method
of Kassam & Trefethen, "Fourth-order time-stepping for stiff PDEs", SIAM J. Sci. Comput. 26
(2005), which avoids the cancellation of the closed forms for small ``h L``. For channels coupled
by a :class:`~scidl.numerics.steppers.BlockSymbol` they are matrix functions, read off one
exponential of an augmented block matrix (Sidje 1998; Al-Mohy & Higham 2011), which is exact for
defective matrices too (the wave equation's ``[[0, 1], [0, 0]]`` at ``k = 0``). The linear part
is integrated exactly, so stiff diffusion (``L = -nu k^2``) or fast waves cost nothing in step
size.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass

import torch

from scidl.numerics.steppers import BlockSymbol, Linear, Nonlinear, SemilinearStepper, Step


@dataclass(frozen=True)
class ETDRK4(SemilinearStepper):
    """ETDRK4 with ``contour_points`` points on a unit circle around each ``h L``.

    (The contour is used for diagonal symbols; block symbols use a matrix exponential.)
    """

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

    def matrix_coefficients(self, linear: torch.Tensor, h: float) -> tuple[torch.Tensor, ...]:
        """The same six coefficients for a block symbol ``[C, C, *K]``, as ``[C, C, *K]`` matrices.

        With ``phi_0 = exp``, ``phi_{p+1}(z) = (phi_p(z) - 1/p!) / z``, the Cox-Matthews weights
        are ``Q = h/2 phi_1(hL/2)``, ``f1 = h (phi_1 - 3 phi_2 + 4 phi_3)``,
        ``f2 = h (phi_2 - 2 phi_3)``, ``f3 = h (4 phi_3 - phi_2)`` at ``hL``; the ``phi_p(A)``
        are the top row of ``exp([[A, I, 0, 0], [0, 0, I, 0], [0, 0, 0, I], [0, 0, 0, 0]])``.
        """
        A = torch.movedim(h * linear.to(torch.complex128), (0, 1), (-2, -1))  # [*K, C, C]
        phi = _phi_functions(A, 3)
        half = _phi_functions(A / 2, 1)
        coefficients = (
            phi[0],
            half[0],
            h / 2 * half[1],
            h * (phi[1] - 3 * phi[2] + 4 * phi[3]),
            h * (phi[2] - 2 * phi[3]),
            h * (4 * phi[3] - phi[2]),
        )
        return tuple(torch.movedim(c, (-2, -1), (0, 1)) for c in coefficients)

    def prepare(self, linear: Linear, h: float, nonlinear: Nonlinear) -> Step:
        if isinstance(linear, BlockSymbol):
            dtype = linear.matrix.dtype
            coefficients = self.matrix_coefficients(linear.matrix, h)
            E, E2, Q, f1, f2, f3 = (BlockSymbol(c.to(dtype)) for c in coefficients)
            times = BlockSymbol.apply
        else:
            dtype = linear.dtype
            E, E2, Q, f1, f2, f3 = (c.to(dtype) for c in self.coefficients(linear, h))
            times = operator.mul

        def step(v: torch.Tensor) -> torch.Tensor:
            Nv = nonlinear(v)
            a = times(E2, v) + times(Q, Nv)
            Na = nonlinear(a)
            b = times(E2, v) + times(Q, Na)
            Nb = nonlinear(b)
            c = times(E2, a) + times(Q, 2 * Nb - Nv)
            Nc = nonlinear(c)
            return times(E, v) + times(f1, Nv) + times(f2, 2 * (Na + Nb)) + times(f3, Nc)

        return step


def _phi_functions(A: torch.Tensor, p: int) -> list[torch.Tensor]:
    """``[phi_0(A), ..., phi_p(A)]`` for a batch of square matrices ``A [..., C, C]``."""
    C = A.shape[-1]
    size = C * (p + 1)
    augmented = torch.nn.functional.pad(A, (0, size - C, 0, size - C))
    shift = torch.diag(torch.ones(size - C, dtype=A.dtype, device=A.device), C)  # the I blocks
    exponential = torch.linalg.matrix_exp(augmented + shift)
    return [exponential[..., :C, q * C : (q + 1) * C] for q in range(p + 1)]
