"""Incompressible Navier-Stokes in two dimensions, vorticity / stream-function form."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from scidl.numerics.derivatives import Derivatives
from scidl.pdes.base import TimeDependentPDE

_FORCINGS = ("fno", "none")


@dataclass(frozen=True)
class NavierStokes2D(TimeDependentPDE):
    """``w_t = -(u . grad) w + nu Laplacian(w) + f`` for the vorticity ``w`` on a periodic box.

    The velocity comes from the stream function: ``Laplacian(psi) = -w``, ``u = psi_y``,
    ``v = -psi_x``, so ``w = v_x - u_y`` and ``div(u, v) = 0``. This is the setting of the FNO paper
    (Li et al., ICLR 2021, section 5.3) on the unit torus ``[0, 1)^2``.

    Fields are scalars ``[B, *S]`` or ``[B, 1, *S]`` on a 2D grid. The stream function needs an
    inverse Laplacian, so ``d`` must provide ``inverse_laplacian`` (e.g.
    :class:`~scidl.numerics.SpectralDerivatives`); the velocity has zero mean.

    Args:
        nu: kinematic viscosity (> 0); the FNO paper uses 1e-3, 1e-4 and 1e-5.
        forcing: ``"fno"`` for the paper's ``f = A (sin 2 pi (x + y) + cos 2 pi (x + y))`` (its
            wavenumbers assume a box of side 1), or ``"none"`` for decaying flow.
        amplitude: ``A`` of the ``"fno"`` forcing; the paper uses 0.1.
    """

    nu: float = 1e-3
    forcing: str = "fno"
    amplitude: float = 0.1
    name = "navier_stokes"

    def __post_init__(self):
        if not self.nu > 0:
            raise ValueError(f"NavierStokes2D needs a positive viscosity nu, got {self.nu}")
        if self.forcing not in _FORCINGS:
            raise ValueError(f"forcing must be one of {list(_FORCINGS)}, got {self.forcing!r}")

    def velocity(self, w: torch.Tensor, d: Derivatives) -> tuple[torch.Tensor, torch.Tensor]:
        """The divergence-free velocity ``(u, v) = (psi_y, -psi_x)``, ``Laplacian(psi) = -w``."""
        psi = -d.inverse_laplacian(w)
        return d.y(psi), -d.x(psi)

    def force(self, d: Derivatives, like: torch.Tensor) -> torch.Tensor | float:
        """The forcing ``f`` where the fields live (dtype and device of ``like``)."""
        if self.forcing == "none":
            return 0.0
        phase = 2 * math.pi * (d.coordinate("x") + d.coordinate("y"))
        return (self.amplitude * (torch.sin(phase) + torch.cos(phase))).to(like)

    def rhs(self, w: torch.Tensor, d: Derivatives) -> torch.Tensor:
        # the derivatives of w first, while d still holds its transform
        w_x, w_y, diffusion = d.x(w), d.y(w), d.laplacian(w)
        u, v = self.velocity(w, d)
        return -(u * w_x + v * w_y) + self.nu * diffusion + self.force(d, w)
