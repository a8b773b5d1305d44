"""Adaptive Dormand-Prince 5(4) with error control (Dormand & Prince, J. Comput. Appl. Math. 6,
1980; Hairer, Norsett & Wanner I, Sec. II.4-II.5 and their code DOPRI5).

The fifth-order solution is propagated (local extrapolation); the embedded fourth-order one only
estimates the local error. Steps land exactly on every requested output time, so outputs carry no
interpolation error. The step sizes are plain floats chosen from detached error estimates, so
backpropagation differentiates the discrete scheme along the step sequence actually taken
(discretise-then-optimise); :func:`~scidl.numerics.butcher.odeint_fixed` on the returned
``step_times`` replays that sequence.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from scidl.errors import DivergenceError, ScidlError
from scidl.numerics.butcher import ButcherTableau, VectorField, rk_step, with_tensor_time

#: Dormand & Prince (1980), Table 2 (RK5(4)7M); first same as last.
DOPRI5 = ButcherTableau(
    "Dormand-Prince 5(4)",
    c=(0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1, 1),
    a=(
        (1 / 5,),
        (3 / 40, 9 / 40),
        (44 / 45, -56 / 15, 32 / 9),
        (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
        (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
        (35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84),
    ),
    b=(35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0),
    order=5,
    b_hat=(5179 / 57600, 0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40),
    embedded_order=4,
)


class StepLimitError(ScidlError):
    """An adaptive solver used up its ``max_steps`` before reaching the last output time."""


@dataclass(frozen=True)
class StepSizeController:
    """PI step-size control, ``h_new = h * safety * err^(-alpha) * err_previous^beta``.

    ``err`` is the scaled RMS error of the step (accept when ``err <= 1``), ``q`` the order of
    the error estimate (``min(order, embedded_order) + 1``) and ``alpha = 1/q - 0.75 beta``
    (Gustafsson, ACM TOMS 17, 1991; the form and defaults of Hairer's DOPRI5 code).
    ``beta = 0`` is the standard (integral) controller ``h_new = h * safety * err^(-1/q)``.
    The factor is clipped to ``[min_factor, max_factor]``, and to at most 1 right after a
    rejection.
    """

    safety: float = 0.9
    beta: float = 0.04
    min_factor: float = 0.2
    max_factor: float = 10.0

    def factor(self, error: float, previous_error: float, q: int, *, grow: bool = True) -> float:
        """The ratio ``h_new / h`` after a step with scaled error ``error``."""
        if not math.isfinite(error):
            return self.min_factor
        if error == 0:
            return self.max_factor if grow else 1.0
        alpha = 1 / q - 0.75 * self.beta
        factor = self.safety * error ** (-alpha) * previous_error**self.beta
        return min(max(factor, self.min_factor), self.max_factor if grow else 1.0)


@dataclass(frozen=True)
class AdaptiveSolution:
    """What :func:`odeint_adaptive` returns.

    Attributes:
        ys: the solution at the requested times ``[T, *y0.shape]``.
        step_times: every accepted step's end, with ``t[0]`` first ``[n_accepted + 1]``
            (float64); replay it with :func:`~scidl.numerics.butcher.odeint_fixed`.
        n_accepted, n_rejected: step counts.
        n_evaluations: calls of ``f``, the initial step-size guess included.
    """

    ys: torch.Tensor
    step_times: torch.Tensor
    n_accepted: int
    n_rejected: int
    n_evaluations: int


def odeint_adaptive(
    f: VectorField,
    y0: torch.Tensor,
    t: torch.Tensor | Sequence[float],
    *,
    rtol: float = 1e-6,
    atol: float = 1e-8,
    first_step: float | None = None,
    max_steps: int = 100_000,
    tableau: ButcherTableau = DOPRI5,
    controller: StepSizeController | None = None,
) -> AdaptiveSolution:
    """Solve ``y' = f(t, y)`` from ``y(t[0]) = y0`` with error control; the solution at ``t``.

    A step is accepted when the RMS over all elements of
    ``error / (atol + rtol * max(|y|, |y_new|))`` is at most 1, so a batch shares one step
    sequence, set by its hardest member. Steps are shortened to land exactly on each ``t[i]``.

    Args:
        f: ``f(t, y) -> dy/dt``, ``t`` a 0-dim tensor of ``y0``'s real dtype.
        y0: initial state, any shape, real or complex.
        t: increasing output times ``[T]``; ``t[0]`` is the time of ``y0``.
        rtol, atol: relative and absolute tolerance of the local error.
        first_step: initial step size; default: the estimate of Hairer, Norsett & Wanner I,
            Sec. II.4.
        max_steps: most steps (accepted and rejected) before :class:`StepLimitError`.
        tableau: an embedded explicit RK pair, default :data:`DOPRI5`.
        controller: step-size control, default :class:`StepSizeController()` (PI).

    Returns:
        An :class:`AdaptiveSolution`; its ``ys`` has shape ``[T, *y0.shape]``.

    Raises:
        StepLimitError: ``max_steps`` steps did not reach ``t[-1]``.
        DivergenceError: the step size underflowed (the solution blows up or is very stiff).
    """
    times = torch.as_tensor(t, dtype=torch.float64).flatten().tolist()
    if not times or any(b <= a for a, b in zip(times, times[1:])):
        raise ValueError("t must be a non-empty, strictly increasing sequence of times")
    if tableau.b_hat is None:
        raise ValueError(f"{tableau.name} has no embedded method to estimate the error")
    if not (rtol >= 0 and atol >= 0 and rtol + atol > 0):
        raise ValueError(f"need rtol, atol >= 0, not both 0; got rtol={rtol}, atol={atol}")
    if first_step is not None and not first_step > 0:
        raise ValueError(f"first_step must be positive, got {first_step}")
    controller = StepSizeController() if controller is None else controller
    q = min(tableau.order, tableau.embedded_order) + 1
    evaluations = 0
    rhs_with_time = with_tensor_time(f, y0)

    def rhs(time: float, y: torch.Tensor) -> torch.Tensor:
        nonlocal evaluations
        evaluations += 1
        return rhs_with_time(time, y)

    now, y = times[0], y0
    k1 = rhs(now, y)
    h = first_step if first_step is not None else _initial_step(rhs, now, y, k1, tableau.order,
                                                                rtol, atol)
    outputs, step_times = [y0], [now]
    accepted = rejected = 0
    previous_error, just_rejected = 1e-4, False  # DOPRI5's initial "facold"
    for target in times[1:]:
        while now < target:
            if accepted + rejected >= max_steps:
                raise StepLimitError(
                    f"odeint_adaptive took max_steps={max_steps} steps and reached only t={now:g} "
                    f"of {times[-1]:g}; raise max_steps, loosen rtol/atol, or use a stiff solver"
                )
            if h <= 16 * math.ulp(max(abs(now), abs(target))):
                raise DivergenceError(
                    f"odeint_adaptive: the step size underflowed to {h:.3g} at t={now:g}; the "
                    "solution may blow up there, or the problem is too stiff for an explicit method"
                )
            landing = now + 1.01 * h >= target  # as DOPRI5: no sliver of a step left over
            step = target - now if landing else h
            y_new, error, stages = rk_step(rhs, now, y, step, tableau, k1)
            err = _error_norm(error, y, y_new, rtol, atol)
            ok = err <= 1.0  # False for NaN
            factor = controller.factor(err, previous_error, q, grow=ok and not just_rejected)
            if ok:
                now, y = (target if landing else now + step), y_new
                k1 = stages[-1] if tableau.fsal else rhs(now, y)
                step_times.append(now)
                accepted += 1
                previous_error = max(err, 1e-4)
                # a step cut short to land on `target` says nothing against the longer proposal
                h = max(step * factor, h) if landing else step * factor
            else:
                rejected += 1
                h = step * factor
            just_rejected = not ok
        outputs.append(y)
    return AdaptiveSolution(
        ys=torch.stack(outputs),
        step_times=torch.tensor(step_times, dtype=torch.float64),
        n_accepted=accepted,
        n_rejected=rejected,
        n_evaluations=evaluations,
    )


def _error_norm(error: torch.Tensor, y: torch.Tensor, y_new: torch.Tensor, rtol: float,
                atol: float) -> float:
    """Scaled RMS norm of the local error estimate (Hairer, Norsett & Wanner I, Sec. II.4)."""
    with torch.no_grad():
        scale = atol + rtol * torch.maximum(y.abs(), y_new.abs())
        return float(torch.sqrt(torch.mean((error.abs() / scale) ** 2)))


def _initial_step(rhs, t0: float, y0: torch.Tensor, f0: torch.Tensor, order: int, rtol: float,
                  atol: float) -> float:
    """Starting step size of Hairer, Norsett & Wanner I, Sec. II.4 ("Starting step size")."""
    with torch.no_grad():
        scale = atol + rtol * y0.abs()

        def norm(x: torch.Tensor) -> float:
            return float(torch.sqrt(torch.mean((x.abs() / scale) ** 2)))

        d0, d1 = norm(y0), norm(f0)
        h0 = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
        f1 = rhs(t0 + h0, y0 + h0 * f0)
        d2 = norm(f1 - f0) / h0
        if max(d1, d2) <= 1e-15:
            h1 = max(1e-6, h0 * 1e-3)
        else:
            h1 = (0.01 / max(d1, d2)) ** (1 / (order + 1))
        return min(100 * h0, h1)
