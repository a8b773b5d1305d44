"""Korteweg-de Vries equation."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from scidl.numerics.derivatives import Derivatives
from scidl.pdes.base import TimeDependentPDE


@dataclass(frozen=True)
class KdV(TimeDependentPDE):
    """``u_t = -6 u u_x - u_xxx`` (Korteweg-de Vries equation, 1D, in its standard scaling).

    Solitons ``u = (c / 2) sech^2(sqrt(c) / 2 (x - c t - x_0))`` travel at speed ``c`` without
    change of shape; ``int u``, ``int u^2`` and ``int (u^3 - u_x^2 / 2)`` are conserved
    (Drazin & Johnson, "Solitons: an introduction", CUP 1989, ch. 1 and 5). The dispersive term
    is the stiff linear part (symbol ``i k^3``), integrated exactly by ETDRK4
    (Kassam & Trefethen 2005, sec. 6).
    """

    name = "kdv"

    def rhs(self, u: torch.Tensor, d: Derivatives) -> torch.Tensor:
        return -6 * u * d.x(u) - d.xxx(u)
