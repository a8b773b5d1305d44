"""Steady Darcy flow, the FNO paper's elliptic benchmark."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from scidl.numerics.derivatives import Derivatives
from scidl.pdes.steady import Field, SteadyPDE, evaluate_field


@dataclass(frozen=True, eq=False)
class Darcy(SteadyPDE):
    """``-div(a grad u) = f``; residual ``-sum_j d_j (a d_j u) - f`` (any dimension).

    The FNO paper (Li et al., ICLR 2021) solves it on ``(0, 1)^2`` with ``u = 0`` on the
    boundary, ``f = 1`` and ``a`` from :func:`threshold_coefficient`; the reference solver is
    :func:`scidl.numerics.elliptic.solve_darcy`.

    Args:
        coefficient: the permeability ``a > 0`` (constant, tensor or function of coordinates).
        source: ``f`` (same kinds).
    """

    coefficient: Field = 1.0
    source: Field = 1.0
    name = "darcy"

    def residual(self, u: torch.Tensor, d: Derivatives) -> torch.Tensor:
        a = evaluate_field(self.coefficient, d, u)
        divergence = sum(
            d.derivative(a * d.derivative(u, **{dim: 1}), **{dim: 1}) for dim in d.spatial_dims
        )
        return -divergence - evaluate_field(self.source, d, u)


def threshold_coefficient(mu: torch.Tensor, high: float = 12.0, low: float = 3.0) -> torch.Tensor:
    """The FNO paper's ``a = psi(mu)``: ``high`` where ``mu >= 0``, ``low`` elsewhere.

    The paper's text uses 12 and 3; its repository's ``gen_darcy.m`` uses 12 and 4.
    """
    return torch.where(mu >= 0, torch.full_like(mu, high), torch.full_like(mu, low))
