"""odeint and the symplectic integrators: convergence orders, exactness, gradients.

Checks: fitted orders (slope of log error against log dt, within 0.3 of theory) of euler (1),
midpoint (2), rk4 (4), symplectic Euler (1), leapfrog (2) and velocity Verlet (2) on the
harmonic oscillator and on a circular Kepler orbit; odeint's dopri5 against exact solutions;
outputs landing on the requested times; checkpointed gradients equal plain backprop (float64,
1e-12) for odeint rk4 and Verlet, and checkpointing keeps only the segment inputs; gradients
through 1,000-step rollouts w.r.t. the initial state and a physical parameter (spring stiffness,
pendulum length, Lorenz rho) against central finite differences (1e-6 relative), with and
without checkpointing; clear errors.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from scidl.errors import ShapeError
from scidl.numerics.odeint import odeint
from scidl.numerics.symplectic import (
    integrate_second_order,
    leapfrog,
    symplectic_euler,
    velocity_verlet,
)
from scidl.sims import Lorenz63, Pendulum, SpringNetwork, kepler_orbit

F64 = torch.float64


def fitted_order(dts, errors) -> float:
    """Slope of log(error) against log(dt), by least squares."""
    return float(np.polyfit(np.log(dts), np.log(errors), 1)[0])


def oscillator(q: torch.Tensor) -> torch.Tensor:
    """``q'' = -q``: from ``(1, 0)``, ``q = cos t``, ``v = -sin t``."""
    return -q


def oscillator_error(method: str, h: float, end: float = 1.0) -> float:
    q0, v0 = torch.ones(1, dtype=F64), torch.zeros(1, dtype=F64)
    q, v = integrate_second_order(oscillator, q0, v0, [0.0, end], h, method=method)
    return max(abs(float(q[-1, 0]) - math.cos(end)), abs(float(v[-1, 0]) + math.sin(end)))


ORDERS = {"euler": 1, "symplectic_euler": 1, "midpoint": 2, "leapfrog": 2, "verlet": 2,
          "rk4": 4}
DTS = {1: [1 / 40, 1 / 80, 1 / 160, 1 / 320], 2: [1 / 10, 1 / 20, 1 / 40, 1 / 80],
       4: [1 / 5, 1 / 10, 1 / 20, 1 / 40]}


@pytest.mark.parametrize("method", sorted(ORDERS))
def test_order_on_harmonic_oscillator(method):
    dts = DTS[ORDERS[method]]
    errors = [oscillator_error(method, h) for h in dts]
    assert abs(fitted_order(dts, errors) - ORDERS[method]) < 0.3, errors


@pytest.mark.parametrize("method", ["symplectic_euler", "leapfrog", "verlet", "rk4"])
def test_order_on_circular_kepler_orbit(method):
    """Two equal masses on a circle rotate rigidly at ``2 pi / period``."""
    orbit = kepler_orbit(0.0, dim=2)
    system = orbit.system()
    end = orbit.period / 4
    angle = 2 * math.pi * end / orbit.period
    rotation = torch.tensor([[math.cos(angle), -math.sin(angle)],
                             [math.sin(angle), math.cos(angle)]], dtype=F64)
    exact_q, exact_v = orbit.positions @ rotation.T, orbit.velocities @ rotation.T
    steps = {1: [200, 400, 800, 1600], 2: [25, 50, 100, 200], 4: [10, 20, 40, 80]}
    per_quarter = steps[ORDERS[method]]
    errors = []
    for n in per_quarter:
        with torch.no_grad():
            q, v = integrate_second_order(system.acceleration, orbit.positions,
                                          orbit.velocities, [0.0, end], end / n, method=method)
        errors.append(max(float((q[-1] - exact_q).abs().max()),
                          float((v[-1] - exact_v).abs().max())))
    dts = [end / n for n in per_quarter]
    assert abs(fitted_order(dts, errors) - ORDERS[method]) < 0.3, errors


def test_dopri5_matches_exact_solutions():
    # y' = A y with a rotation-plus-decay A: y(t) = e^{-t/10} R(t) y0
    def f(t, y):
        return torch.stack([-0.1 * y[..., 0] - y[..., 1], y[..., 0] - 0.1 * y[..., 1]], -1)

    y0 = torch.tensor([[1.0, 0.0], [0.3, -2.0]], dtype=F64)
    t = torch.linspace(0, 10, 6, dtype=F64)
    y = odeint(f, y0, t, rtol=1e-10, atol=1e-12)
    decay = torch.exp(-t / 10)[:, None]
    cos, sin = torch.cos(t)[:, None], torch.sin(t)[:, None]
    exact = torch.stack([decay * (cos * y0[:, 0] - sin * y0[:, 1]),
                         decay * (sin * y0[:, 0] + cos * y0[:, 1])], dim=-1)
    assert y.shape == (6, 2, 2)
    assert float((y - exact).abs().max()) < 1e-8
    # a time-dependent field gets t as a 0-dim tensor: y' = cos t, y = sin t
    y = odeint(lambda t, y: torch.cos(t).expand_as(y), torch.zeros(3, dtype=F64),
               [0.0, 1.0, 2.5], rtol=1e-10, atol=1e-12)
    assert float((y[:, 0] - torch.sin(torch.tensor([0.0, 1.0, 2.5], dtype=F64))).abs().max()) \
        < 1e-9


def test_fixed_step_outputs_land_on_times():
    """``y' = 1`` is integrated exactly by every method: outputs equal ``t``, the number of
    steps per interval is ``ceil(interval / step_size)``."""
    calls = []

    def f(t, y):
        calls.append(float(t))
        return torch.ones_like(y)

    t = [0.0, 0.25, 1.0, 3.1]
    y = odeint(f, torch.zeros((), dtype=F64), t, method="euler", step_size=0.1)
    assert torch.allclose(y, torch.tensor(t, dtype=F64), atol=1e-14)
    assert len(calls) == 3 + 8 + 21
    q, _ = leapfrog(lambda q: torch.zeros_like(q), torch.zeros(1, dtype=F64),
                    torch.ones(1, dtype=F64), t, 0.1)
    assert torch.allclose(q[:, 0], torch.tensor(t, dtype=F64), atol=1e-14)


def test_velocity_verlet_evaluates_acceleration_once_per_step():
    calls = []

    def acceleration(q):
        calls.append(1)
        return -q

    velocity_verlet(acceleration, torch.ones(2, dtype=F64), torch.zeros(2, dtype=F64),
                    [0.0, 1.0], 0.01)
    assert len(calls) == 100 + 1


def spring_triangle(dtype=F64) -> SpringNetwork:
    edges = torch.tensor([[0, 1], [1, 2], [2, 0], [2, 3]])
    return SpringNetwork(edges, stiffness=torch.tensor([1.0, 2.0, 1.5, 0.7], dtype=dtype),
                         rest_length=torch.tensor([1.0, 1.0, 1.2, 0.8], dtype=dtype),
                         masses=torch.tensor([1.0, 2.0, 1.0, 0.5], dtype=dtype), dim=2)


def spring_state(dtype=F64) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    q0 = torch.tensor([[0.0, 0.0], [1.1, 0.0], [0.5, 0.9], [0.6, 1.8]], dtype=dtype)
    v0 = 0.3 * torch.randn(4, 2, generator=generator, dtype=dtype)
    return q0 + 0.05 * torch.randn(4, 2, generator=generator, dtype=dtype), v0


def test_checkpointed_gradients_equal_backprop_rk4():
    system = Lorenz63()
    y0 = torch.tensor([1.0, 2.0, 20.0], dtype=F64, requires_grad=True)
    t = torch.linspace(0, 0.5, 6, dtype=F64)
    grads = []
    for every in (None, 1, 7, 16):
        y = odeint(system, y0, t, method="rk4", step_size=1e-2, checkpoint_every=every)
        loss = (y**2).sum()
        grads.append(torch.autograd.grad(loss, [y0, *system.parameters()]))
    for other in grads[1:]:
        for a, b in zip(grads[0], other):
            assert float((a - b).abs().max()) <= 1e-12 * max(1.0, float(a.abs().max()))


def test_checkpointed_gradients_equal_backprop_verlet():
    system = spring_triangle()
    q0, v0 = (x.requires_grad_(True) for x in spring_state())
    t = torch.linspace(0, 3, 4, dtype=F64)
    grads = []
    for every in (None, 1, 10, 37):
        q, v = velocity_verlet(system.acceleration, q0, v0, t, 0.01, checkpoint_every=every)
        loss = (q**3).sum() + system.kinetic(v).sum()
        grads.append(torch.autograd.grad(loss, [q0, v0, *system.parameters()]))
    for other in grads[1:]:
        for a, b in zip(grads[0], other):
            assert float((a - b).abs().max()) <= 1e-12 * max(1.0, float(a.abs().max()))


def test_checkpointing_saves_only_segment_inputs():
    """1,000 RK4 steps of a 100-dim state: plain backprop saves >= 1,000 states for the backward
    pass, ``checkpoint_every=32`` only the 32 segment inputs (each segment is recomputed)."""
    def saved_elements(every):
        count = [0]

        def pack(tensor):
            count[0] += tensor.numel()
            return tensor

        y0 = torch.randn(100, dtype=F64, requires_grad=True)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            odeint(lambda t, y: -y * torch.sin(y), y0, [0.0, 1.0], method="rk4", step_size=1e-3,
                   checkpoint_every=every)
        return count[0]

    assert saved_elements(None) >= 1000 * 100
    assert saved_elements(32) <= 32 * 100


def central_difference(loss, value: torch.Tensor, direction: torch.Tensor, eps: float) -> float:
    with torch.no_grad():
        return (float(loss(value + eps * direction)) - float(loss(value - eps * direction))) \
            / (2 * eps)


def relative_error(a: float, b: float) -> float:
    return abs(a - b) / abs(b)


@pytest.mark.parametrize("every", [None, 32])
def test_spring_rollout_gradients_match_finite_differences(every):
    """1,000 velocity-Verlet steps; derivatives w.r.t. q0 (a direction) and a stiffness."""
    q0, v0 = spring_state()
    weights = torch.randn(4, 2, generator=torch.Generator().manual_seed(1), dtype=F64)

    def loss_of(q_init, stiffness):
        system = spring_triangle()
        with torch.no_grad():
            system.stiffness.copy_(stiffness)
        q, v = velocity_verlet(system.acceleration, q_init, v0, [0.0, 10.0], 0.01,
                               checkpoint_every=every)
        return (weights * q[-1]).sum() + system.kinetic(v[-1]), system

    stiffness = spring_triangle().stiffness.detach().clone()
    q_leaf = q0.clone().requires_grad_(True)
    loss, system = loss_of(q_leaf, stiffness)
    grad_q, grad_k = torch.autograd.grad(loss, [q_leaf, system.stiffness])
    direction = torch.randn(4, 2, generator=torch.Generator().manual_seed(2), dtype=F64)
    fd_q = central_difference(lambda q: loss_of(q, stiffness)[0], q0, direction, 1e-6)
    unit = torch.zeros(4, dtype=F64)
    unit[1] = 1.0
    fd_k = central_difference(lambda k: loss_of(q0, k)[0], stiffness, unit, 1e-6)
    assert relative_error(float((grad_q * direction).sum()), fd_q) < 1e-6
    assert relative_error(float(grad_k[1]), fd_k) < 1e-6


@pytest.mark.parametrize("every", [None, 32])
def test_pendulum_and_lorenz_rollout_gradients_match_finite_differences(every):
    """1,000 RK4 steps through odeint; derivatives w.r.t. y0 and length / rho."""
    cases = [
        (lambda value: Pendulum(length=value), "length", 1.3,
         torch.tensor([1.2, 0.4], dtype=F64), 5.0),
        (lambda value: Lorenz63(rho=value), "rho", 28.0,
         torch.tensor([1.0, 2.0, 20.0], dtype=F64), 1.0),
    ]
    for make, name, value, y0, end in cases:
        def loss_of(y_init, parameter, make=make, end=end):
            system = make(parameter)
            y = odeint(system, y_init, [0.0, end], method="rk4", step_size=end / 1000,
                       checkpoint_every=every)
            return (y[-1] ** 2).sum() + y[-1, 0], system

        y_leaf = y0.clone().requires_grad_(True)
        loss, system = loss_of(y_leaf, value)
        parameter = getattr(system, name)
        grad_y, grad_p = torch.autograd.grad(loss, [y_leaf, parameter])
        direction = torch.linspace(-1, 1, y0.numel(), dtype=F64) + 0.3
        fd_y = central_difference(lambda y, f=loss_of, p=value: f(y, p)[0], y0, direction, 1e-6)
        scale = 1e-6 * value
        with torch.no_grad():
            fd_p = (float(loss_of(y0, value + scale)[0])
                    - float(loss_of(y0, value - scale)[0])) / (2 * scale)
        assert relative_error(float((grad_y * direction).sum()), fd_y) < 1e-6
        assert relative_error(float(grad_p), fd_p) < 1e-6


def test_symplectic_euler_is_the_kick_drift_scheme():
    q, v = symplectic_euler(oscillator, torch.ones(1, dtype=F64), torch.zeros(1, dtype=F64),
                            [0.0, 0.1], 0.1)
    # v1 = v0 + h a(q0) = -0.1, q1 = q0 + h v1 = 0.99
    assert float(v[-1, 0]) == pytest.approx(-0.1, abs=1e-15)
    assert float(q[-1, 0]) == pytest.approx(0.99, abs=1e-15)


def test_clear_errors():
    y0 = torch.zeros(2)
    with pytest.raises(ValueError, match="unknown ODE method"):
        odeint(lambda t, y: y, y0, [0.0, 1.0], method="rk5")
    with pytest.raises(ValueError, match="step_size"):
        odeint(lambda t, y: y, y0, [0.0, 1.0], method="rk4")
    with pytest.raises(ValueError, match="checkpoint_every"):
        odeint(lambda t, y: y, y0, [0.0, 1.0], checkpoint_every=4)
    with pytest.raises(ValueError, match="increasing"):
        odeint(lambda t, y: y, y0, [1.0, 0.0], method="rk4", step_size=0.1)
    with pytest.raises(ValueError, match="unknown second-order method"):
        integrate_second_order(oscillator, y0, y0, [0.0, 1.0], 0.1, method="yoshida")
    with pytest.raises(ShapeError, match="same shape"):
        leapfrog(oscillator, y0, torch.zeros(3), [0.0, 1.0], 0.1)
