"""Crank-Nicolson for the linear part, Heun for the nonlinear part: a second-order IMEX step.

This is the scheme of the Navier-Stokes generator of the FNO paper (Li et al., "Fourier neural
operator for parametric partial differential equations", ICLR 2021, code ``ns_2d.py``): the
linear part, which acts mode by mode, is treated by the trapezoidal rule, implicitly, which is a
division by ``1 - h L / 2`` (a ``C x C`` solve per mode for a block symbol); the nonlinear part by
Heun's predictor-corrector, explicitly:

    predictor   (1 - h L/2) v~      = (1 + h L/2) v + h N(v)
    corrector   (1 - h L/2) v(t+h)  = (1 + h L/2) v + h/2 (N(v) + N(v~))

Both halves are second order, so the step is. The linear part alone is A-stable, not L-stable:
its amplification ``(1 + z/2) / (1 - z/2)`` has modulus below 1 for every ``Re z < 0`` and
exactly 1 on the imaginary axis (waves keep their energy), but tends to ``-1`` as
``z -> -inf``, so stiff modes decay slowly and alternate in sign at large steps. The explicit
nonlinear part keeps its CFL-type step limit.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from scidl.numerics.steppers import (
    BlockSymbol,
    Linear,
    Nonlinear,
    SemilinearStepper,
    Step,
    apply_linear,
)


@dataclass(frozen=True)
class CrankNicolsonHeun(SemilinearStepper):
    """Second-order IMEX step: Crank-Nicolson for ``L``, Heun for ``N`` (two ``N`` per step)."""

    order = 2

    def prepare(self, linear: Linear, h: float, nonlinear: Nonlinear) -> Step:
        propagator, solve = _crank_nicolson(linear, h)

        def step(v: torch.Tensor) -> torch.Tensor:
            Nv = nonlinear(v)
            linear_part = apply_linear(propagator, v)
            predicted = linear_part + h * apply_linear(solve, Nv)
            return linear_part + 0.5 * h * apply_linear(solve, Nv + nonlinear(predicted))

        return step


def _crank_nicolson(linear: Linear, h: float) -> tuple[Linear, Linear]:
    """``(R, S)`` with ``S = (1 - h L/2)^-1`` and ``R = S (1 + h L/2)``, per mode.

    ``1 - h L/2`` is invertible whenever ``L`` has no eigenvalue ``2/h``, in particular for
    every dissipative or conservative (``Re L <= 0``) operator.
    """
    if not isinstance(linear, BlockSymbol):
        solve = 1 / (1 - 0.5 * h * linear)
        return solve * (1 + 0.5 * h * linear), solve
    A = torch.movedim(linear.matrix, (0, 1), (-2, -1))  # [*K, C, C]
    identity = torch.eye(linear.channels, dtype=A.dtype, device=A.device)
    solve = torch.linalg.inv(identity - 0.5 * h * A)
    propagator = solve @ (identity + 0.5 * h * A)
    return tuple(BlockSymbol(torch.movedim(m, (-2, -1), (0, 1))) for m in (propagator, solve))
