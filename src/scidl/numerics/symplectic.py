"""Symplectic integrators for separable mechanical systems ``q'' = a(q)`` in position-velocity form.

For ``H(q, p) = p^T M^-1 p / 2 + V(q)`` with ``a(q) = -M^-1 grad V(q)`` these splitting methods
are symplectic, so at a fixed step they conserve a modified energy ``H + O(h^p)`` over
exponentially long times: the energy error stays bounded instead of drifting as it does for
Runge-Kutta methods (Hairer, Lubich & Wanner, "Geometric Numerical Integration", 2nd ed., 2006,
Sec. I.1, VI.3 and IX.8; Verlet, Phys. Rev. 159, 1967). Each step costs one evaluation of ``a``.

* :func:`symplectic_euler` (first order): kick then drift,
  ``v_{n+1} = v_n + h a(q_n)``, ``q_{n+1} = q_n + h v_{n+1}`` (HLW Sec. I.1.2; the scheme of
  the NRI / EGNN particle simulators).
* :func:`leapfrog` (second order, position Verlet, "drift-kick-drift"):
  ``q' = q_n + h/2 v_n``, ``v_{n+1} = v_n + h a(q')``, ``q_{n+1} = q' + h/2 v_{n+1}``.
* :func:`velocity_verlet` (second order, "kick-drift-kick"):
  ``v' = v_n + h/2 a(q_n)``, ``q_{n+1} = q_n + h v'``, ``v_{n+1} = v' + h/2 a(q_{n+1})``; the
  acceleration at ``q_{n+1}`` is carried to the next step.

All follow :func:`scidl.numerics.odeint.odeint` for output times and step splitting (each output
interval in ``ceil(interval / step_size)`` equal steps), are differentiable by backpropagation,
and take ``checkpoint_every`` for gradient checkpointing. ``a`` must not depend on ``t`` or ``v``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from scidl.errors import ShapeError
from scidl.numerics.odeint import FIXED_STEP_METHODS, _rollout, odeint

#: ``a(q) -> q''`` with the shape of ``q``.
Acceleration = Callable[[torch.Tensor], torch.Tensor]
Times = torch.Tensor | Sequence[float]


def symplectic_euler(acceleration: Acceleration, q0: torch.Tensor, v0: torch.Tensor, t: Times,
                     step_size: float, *, checkpoint_every: int | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """First-order symplectic Euler (kick, then drift) for ``q'' = acceleration(q)``.

    Shapes:
        q0, v0: ``[*S]``; t: ``[T]``; returns positions and velocities ``[T, *S]`` each.
    """
    _check_pair(q0, v0)

    def step(_t: float, h: float, state: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        q, v = state
        v = v + h * acceleration(q)
        return q + h * v, v

    return _rollout(step, (q0, v0), t, step_size, checkpoint_every)


def leapfrog(acceleration: Acceleration, q0: torch.Tensor, v0: torch.Tensor, t: Times,
             step_size: float, *, checkpoint_every: int | None = None
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """Second-order leapfrog / position Verlet (drift-kick-drift) for ``q'' = acceleration(q)``.

    Shapes:
        q0, v0: ``[*S]``; t: ``[T]``; returns positions and velocities ``[T, *S]`` each.
    """
    _check_pair(q0, v0)

    def step(_t: float, h: float, state: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        q, v = state
        q = q + (h / 2) * v
        v = v + h * acceleration(q)
        return q + (h / 2) * v, v

    return _rollout(step, (q0, v0), t, step_size, checkpoint_every)


def velocity_verlet(acceleration: Acceleration, q0: torch.Tensor, v0: torch.Tensor, t: Times,
                    step_size: float, *, checkpoint_every: int | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Second-order velocity Verlet (kick-drift-kick) for ``q'' = acceleration(q)``.

    One evaluation of ``acceleration`` per step (plus one at the start): the acceleration at
    the new positions is kept for the next step's first kick.

    Shapes:
        q0, v0: ``[*S]``; t: ``[T]``; returns positions and velocities ``[T, *S]`` each.
    """
    _check_pair(q0, v0)

    def step(_t: float, h: float, state: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        q, v, a = state
        v = v + (h / 2) * a
        q = q + h * v
        a = acceleration(q)
        return q, v + (h / 2) * a, a

    return _rollout(step, (q0, v0, acceleration(q0)), t, step_size, checkpoint_every,
                    n_outputs=2)


SYMPLECTIC_METHODS = {
    "symplectic_euler": symplectic_euler,
    "leapfrog": leapfrog,
    "verlet": velocity_verlet,
    "velocity_verlet": velocity_verlet,
}


def integrate_second_order(acceleration: Acceleration, q0: torch.Tensor, v0: torch.Tensor,
                           t: Times, step_size: float, *, method: str = "verlet",
                           checkpoint_every: int | None = None
                           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Integrate ``q'' = acceleration(q)`` with a symplectic or a Runge-Kutta method by name.

    ``method`` is ``"symplectic_euler"``, ``"leapfrog"``, ``"verlet"`` (= ``"velocity_verlet"``)
    or a fixed-step :func:`~scidl.numerics.odeint.odeint` method (``"euler"``, ``"midpoint"``,
    ``"rk4"``) applied to the first-order system ``y = (q, v)``, ``y' = (v, a(q))``, so that
    methods can be compared at the same step.

    Shapes:
        q0, v0: ``[*S]``; t: ``[T]``; returns positions and velocities ``[T, *S]`` each.

    Raises:
        ValueError: an unknown ``method``.
    """
    if method in SYMPLECTIC_METHODS:
        return SYMPLECTIC_METHODS[method](acceleration, q0, v0, t, step_size,
                                          checkpoint_every=checkpoint_every)
    if method not in FIXED_STEP_METHODS:
        known = sorted(SYMPLECTIC_METHODS) + sorted(FIXED_STEP_METHODS)
        raise ValueError(f"unknown second-order method {method!r}; expected one of {known}")
    _check_pair(q0, v0)

    def first_order(_t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.stack([y[1], acceleration(y[0])])

    y = odeint(first_order, torch.stack([q0, v0]), t, method=method, step_size=step_size,
               checkpoint_every=checkpoint_every)
    return y[:, 0], y[:, 1]


def _check_pair(q0: torch.Tensor, v0: torch.Tensor) -> None:
    if q0.shape != v0.shape:
        raise ShapeError(f"q0 and v0 must have the same shape, got {tuple(q0.shape)} and "
                         f"{tuple(v0.shape)}")
