"""Poisson's equation."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from scidl.numerics.derivatives import Derivatives
from scidl.pdes.steady import Field, SteadyPDE, evaluate_field


@dataclass(frozen=True, eq=False)
class Poisson(SteadyPDE):
    """``-Laplacian(u) = f`` in any dimension; residual ``-Laplacian(u) - f``.

    Solved by :func:`scidl.numerics.elliptic.solve_poisson_periodic` (FFT, periodic box) and
    :func:`scidl.numerics.elliptic.solve_poisson_dirichlet` (finite differences, zero Dirichlet
    data on a square).

    Args:
        source: ``f``, a constant, a tensor broadcastable against ``u`` or a function of the
            coordinates ``f(x, y)``.
    """

    source: Field = 1.0
    name = "poisson"

    def residual(self, u: torch.Tensor, d: Derivatives) -> torch.Tensor:
        return -d.laplacian(u) - evaluate_field(self.source, d, u)
