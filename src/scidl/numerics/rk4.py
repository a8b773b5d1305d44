"""Classical fourth-order Runge-Kutta, applied to ``v' = L v + N(v)`` as one explicit system."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from scidl.numerics.steppers import Linear, Nonlinear, SemilinearStepper, Step, apply_linear


@dataclass(frozen=True)
class RK4(SemilinearStepper):
    """Explicit RK4. Only for non-stiff problems: its step is limited by ``|h L| < 2.8``
    (``L`` over the eigenvalues of the symbol for coupled systems)."""

    order = 4

    def prepare(self, linear: Linear, h: float, nonlinear: Nonlinear) -> Step:
        def f(v: torch.Tensor) -> torch.Tensor:
            return apply_linear(linear, v) + nonlinear(v)

        def step(v: torch.Tensor) -> torch.Tensor:
            k1 = f(v)
            k2 = f(v + 0.5 * h * k1)
            k3 = f(v + 0.5 * h * k2)
            k4 = f(v + h * k3)
            return v + (h / 6) * (k1 + 2 * k2 + 2 * k3 + k4)

        return step
