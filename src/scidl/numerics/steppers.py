"""The contract of a time stepper for semilinear systems ``v' = L v + N(v)``.

``v`` is the state in Fourier space, ``L`` a diagonal linear operator (a Fourier symbol) and ``N``
the rest. A stepper is a small frozen object; ``prepare(L, h)`` precomputes what it needs for the
step size ``h`` and returns the step function ``v -> v(t + h)``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

import torch

Nonlinear = Callable[[torch.Tensor], torch.Tensor]
Step = Callable[[torch.Tensor], torch.Tensor]


class SemilinearStepper(ABC):
    """Base of the steppers that :func:`scidl.numerics.simulate` accepts."""

    #: order of accuracy, checked by the convergence tests
    order: int

    @abstractmethod
    def prepare(self, linear: torch.Tensor, h: float, nonlinear: Nonlinear) -> Step:
        """Return ``step(v) -> v(t + h)`` for ``v' = linear * v + nonlinear(v)``."""
