"""Kuramoto-Sivashinsky equation."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from scidl.numerics.derivatives import Derivatives
from scidl.pdes.base import TimeDependentPDE


@dataclass(frozen=True)
class KuramotoSivashinsky(TimeDependentPDE):
    """``u_t = -u u_x - u_xx - u_xxxx`` (Kuramoto-Sivashinsky equation, 1D).

    Long waves grow (``-u_xx``), short ones decay (``-u_xxxx``), and the nonlinear term moves
    energy between them; on a periodic domain of length ``L = 22`` the dynamics is chaotic
    (Cvitanovic, Davidchack & Siminos, SIAM J. Appl. Dyn. Syst. 9, 2010), and on
    ``L = 32 pi`` it is the standard stiff test of Kassam & Trefethen (2005), sec. 6. The
    equation has no parameters; the domain length is the grid's.
    """

    name = "kuramoto_sivashinsky"

    def rhs(self, u: torch.Tensor, d: Derivatives) -> torch.Tensor:
        return -u * d.x(u) - d.xx(u) - d.xxxx(u)
