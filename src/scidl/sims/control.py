"""Optimal control through differentiable simulation: the pendulum swing-up.

:func:`swing_up` finds a bounded, piecewise-constant torque that brings a pendulum from hanging
at rest to upright at rest, by single shooting through an RK4 rollout (the optimiser and rollout
helpers of :mod:`scidl.sims.inverse`).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch

from scidl.sims.inverse import OptimisationLog, minimise, rollout
from scidl.sims.pendulum import Pendulum


@dataclass(frozen=True)
class SwingUp:
    """Result of :func:`swing_up`.

    Attributes:
        controls: torques ``[n_controls]``, each held over one interval, ``|u| <= max_torque``.
        times ``[F]`` and states ``[F, 2]`` (angle, rate): the controlled trajectory.
        angle_error: final ``theta - pi`` wrapped to ``(-pi, pi]``. rate_error: final theta'.
        log: losses and stopping reason.
    """

    controls: torch.Tensor
    times: torch.Tensor
    states: torch.Tensor
    angle_error: float
    rate_error: float
    log: OptimisationLog


def swing_up(pendulum: Pendulum, horizon: float, n_controls: int, *,
             max_torque: float, effort_weight: float = 1e-3, steps: int = 100,
             optimizer: str = "lbfgs", lr: float | None = None, step_size: float = 0.02,
             method: str = "rk4", frames_per_control: int = 4,
             initial_controls: torch.Tensor | None = None, seed: int = 0) -> SwingUp:
    """A piecewise-constant torque ``u(t)`` taking a pendulum from rest hanging down
    (``theta = theta' = 0``) to rest upright (``theta = pi``) at ``t = horizon``.

    Direct single shooting (Betts, "Practical Methods for Optimal Control", 2010, Sec. 3.5):
    ``u_k = max_torque tanh(w_k)`` (the bound holds by construction) on ``n_controls`` equal
    intervals; ``theta'' = a(theta) + u / (m l^2)``. Minimises
    ``(theta(T) - pi)^2 + theta'(T)^2 / omega^2 + effort_weight mean(u^2) / max_torque^2``
    with ``omega^2 = g / l`` the small-oscillation frequency squared (scale of the rate). Below
    ``max_torque = m g l`` the pendulum must be pumped over several swings; start the weights
    from ``initial_controls`` or a seeded small random draw (at exactly zero torque the
    gradient of a symmetric problem could vanish).

    Shapes:
        the pendulum's state is ``[2]`` = (theta, theta'); initial_controls: ``[n_controls]``.
    """
    pendulum = copy.deepcopy(pendulum).requires_grad_(False)  # the torque alone is optimised
    dtype = pendulum.mass.dtype
    if initial_controls is None:
        generator = torch.Generator().manual_seed(seed)
        weights = 0.1 * torch.randn(n_controls, generator=generator, dtype=dtype)
    else:
        bounded = (initial_controls / max_torque).clamp(-0.999, 0.999).to(dtype)
        weights = torch.atanh(bounded)
    weights.requires_grad_(True)
    y0 = torch.zeros(2, dtype=dtype)
    edges = torch.linspace(0, horizon, n_controls + 1, dtype=torch.float64)
    inertia = pendulum.coordinate_masses(y0)
    omega2 = float(pendulum.gravity / pendulum.length)

    def simulate(frames: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        controls = max_torque * torch.tanh(weights)
        state, times, states = y0, [edges[:1]], [y0[None]]
        for k in range(n_controls):
            torque = pendulum.pack(torch.zeros_like(y0[:1]), controls[k:k + 1] / inertia)

            def field(t: torch.Tensor, y: torch.Tensor, torque=torque) -> torch.Tensor:
                return pendulum(t, y) + torque

            window = torch.linspace(float(edges[k]), float(edges[k + 1]), frames + 1,
                                    dtype=edges.dtype)
            path = rollout(field, state, window, method, step_size)
            state = path[-1]
            times.append(window[1:])
            states.append(path[1:])
        return controls, torch.cat(times), torch.cat(states)

    def loss_fn() -> torch.Tensor:
        controls, _, states = simulate(1)
        theta, rate = states[-1]
        return ((theta - math.pi).square() + rate.square() / omega2
                + effort_weight * controls.square().mean() / max_torque**2)

    log = minimise(loss_fn, [weights], optimizer=optimizer, steps=steps, lr=lr,
                   name="swing_up")
    with torch.no_grad():
        controls, times, states = simulate(frames_per_control)
    error = states[-1, 0] - math.pi
    angle = float(torch.atan2(torch.sin(error), torch.cos(error)))
    return SwingUp(controls, times, states, angle, float(states[-1, 1]), log)
