"""The contract of a time stepper for semilinear systems ``v' = L v + N(v)``.

``v`` is the state in Fourier space, ``L`` a linear operator that acts mode by mode and ``N`` the
rest. For a scalar field ``L`` is diagonal, a Fourier symbol ``L(k)`` (a tensor in the rfftn
layout); for a system of ``C`` coupled channels it is a :class:`BlockSymbol`, a ``C x C`` matrix
``L_ij(k)`` per mode. A stepper is a small frozen object; ``prepare(L, h, N)`` precomputes what it
needs for the step size ``h`` and returns the step function ``v -> v(t + h)``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import torch

from scidl.errors import ShapeError

Nonlinear = Callable[[torch.Tensor], torch.Tensor]
Step = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class BlockSymbol:
    """The Fourier symbol of a linear operator that couples ``C`` channels mode by mode.

    ``(L v)_i(k) = sum_j L_ij(k) v_j(k)``: for the wave equation as the system ``[u, v]``,
    ``L(k) = [[0, 1], [-c^2 k^2, 0]]``.

    Shapes:
        ``matrix [C, C, *K]`` (``K`` the rfftn shape of the grid); it acts on ``v [..., C, *K]``.
    """

    matrix: torch.Tensor

    def __post_init__(self):
        shape = tuple(self.matrix.shape)
        if len(shape) < 3 or shape[0] != shape[1]:
            raise ShapeError(f"a block symbol must have shape [C, C, *K], got {shape}")

    @property
    def channels(self) -> int:
        return self.matrix.shape[0]

    def apply(self, v: torch.Tensor) -> torch.Tensor:
        """``L v`` for ``v [..., C, *K]``."""
        mode_dims = self.matrix.ndim - 2
        return (self.matrix * v.unsqueeze(-mode_dims - 2)).sum(-mode_dims - 1)


Linear = torch.Tensor | BlockSymbol


def apply_linear(linear: Linear, v: torch.Tensor) -> torch.Tensor:
    """``L v`` for a diagonal symbol (a tensor) or a :class:`BlockSymbol`."""
    return linear.apply(v) if isinstance(linear, BlockSymbol) else linear * v


class SemilinearStepper(ABC):
    """Base of the steppers that :func:`scidl.numerics.simulate` accepts."""

    #: order of accuracy, checked by the convergence tests
    order: int

    @abstractmethod
    def prepare(self, linear: Linear, h: float, nonlinear: Nonlinear) -> Step:
        """Return ``step(v) -> v(t + h)`` for ``v' = linear v + nonlinear(v)``.

        ``linear`` is a diagonal Fourier symbol (a tensor broadcastable against ``v``) or a
        :class:`BlockSymbol` coupling channels; :func:`apply_linear` applies either.
        """
