"""Central finite-difference derivatives on a periodic grid.

The same interface as :class:`~scidl.numerics.derivatives.SpectralDerivatives`, so a PDE's
``rhs`` runs unchanged on either: handy to compare discretisations, to check a surrogate with a
low-order stencil, or to mimic the finite-difference solvers that produced a published dataset.
"""

from __future__ import annotations

from fractions import Fraction
from functools import cache

import torch

from scidl.errors import ShapeError
from scidl.numerics.derivatives import Derivatives
from scidl.numerics.grids import PeriodicGrid

_SPATIAL = ("x", "y", "z")


@cache
def central_difference_weights(derivative: int, accuracy: int) -> tuple[Fraction, ...]:
    """Exact weights ``w_{-r..r}`` of the central stencil ``u^(m)(x) ~ sum_j w_j u(x + j h) / h^m``.

    The stencil has the fewest points, ``2 r + 1`` with ``r = (m + 1) // 2 - 1 + p // 2``, whose
    Taylor expansion reproduces the ``m``-th derivative with error ``O(h^p)``; the weights solve
    the moment conditions ``sum_j w_j j^q / q! = [q == m]``, ``q = 0..2r``, in rational
    arithmetic (Fornberg 1988, Math. Comp. 51, 699 tabulates the same numbers).

    Args:
        derivative: order ``m >= 1`` of the derivative.
        accuracy: even order of accuracy ``p >= 2``.
    """
    if derivative < 1 or accuracy < 2 or accuracy % 2:
        raise ValueError(
            f"need a derivative order >= 1 and an even accuracy >= 2, got {derivative}, {accuracy}"
        )
    radius = (derivative + 1) // 2 - 1 + accuracy // 2
    offsets = range(-radius, radius + 1)
    size = len(offsets)
    factorial = [Fraction(1)]
    for q in range(1, size):
        factorial.append(factorial[-1] * q)
    # augmented moment matrix [A | b], solved by Gauss-Jordan elimination in exact arithmetic
    rows = [[Fraction(j) ** q / factorial[q] for j in offsets] + [Fraction(q == derivative)]
            for q in range(size)]
    for col in range(size):
        pivot = next(r for r in range(col, size) if rows[r][col] != 0)
        rows[col], rows[pivot] = rows[pivot], rows[col]
        rows[col] = [value / rows[col][col] for value in rows[col]]
        for r in range(size):
            if r != col and rows[r][col] != 0:
                rows[r] = [a - rows[r][col] * b for a, b in zip(rows[r], rows[col])]
    return tuple(row[-1] for row in rows)


class FiniteDifferenceDerivatives(Derivatives):
    """Central finite-difference derivatives of fields on a :class:`PeriodicGrid`.

    Args:
        grid: the periodic grid (1 to 3 dimensions).
        order: even order of accuracy of every stencil (2 or 4 are usual; any even ``p >= 2``).

    ``u`` has the grid's spatial dims last, ``[..., N_1, ..., N_d]``, with any leading batch or
    channel dims. Mixed derivatives apply the 1D stencils one dimension after another; periodic
    wrap-around is done by ``torch.roll``, so everything is batched and differentiable.
    """

    def __init__(self, grid: PeriodicGrid, order: int = 2):
        if isinstance(order, bool) or not isinstance(order, int) or order < 2 or order % 2:
            raise ValueError(f"finite-difference order must be an even integer >= 2, got {order}")
        self.grid = grid
        self.order = order
        self.spatial_dims = _SPATIAL[: grid.ndim]

    def derivative(self, u: torch.Tensor, **orders: int) -> torch.Tensor:
        orders = self._check_orders(orders, self.spatial_dims)
        if tuple(u.shape[-self.grid.ndim :]) != self.grid.shape:
            raise ShapeError(
                f"field must end with the grid shape {self.grid.shape}, got {tuple(u.shape)}"
            )
        for name, m in orders.items():
            axis = self.spatial_dims.index(name)
            u = self._along(u, m, axis - self.grid.ndim, self.grid.spacing[axis])
        return u

    def _along(self, u: torch.Tensor, m: int, dim: int, h: float) -> torch.Tensor:
        weights = central_difference_weights(m, self.order)
        radius = len(weights) // 2
        total = None
        for offset, weight in zip(range(-radius, radius + 1), weights):
            if weight == 0:
                continue
            # roll by -offset brings u(x + offset h) to x
            term = float(weight) * torch.roll(u, -offset, dims=dim)
            total = term if total is None else total + term
        return total / h**m

    def coordinate(self, name: str) -> torch.Tensor:
        """Grid coordinate field of shape ``grid.shape`` (float64; promote as needed)."""
        if name not in self.spatial_dims:
            raise ValueError(f"no coordinate {name!r}; this grid has {list(self.spatial_dims)}")
        return self.grid.meshgrid()[self.spatial_dims.index(name)]
