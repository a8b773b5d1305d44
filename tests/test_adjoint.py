"""The continuous adjoint of an adaptive DOPRI5 solve (scidl.numerics.adjoint).

Gradients are checked against central finite differences, against backpropagation through
:func:`odeint_adaptive`, and against exact solutions of ``y' = k y``.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from scidl.errors import DivergenceError, ScidlError, ShapeError
from scidl.numerics.adjoint import AdjointInputError, AdjointStats, odeint_adjoint
from scidl.numerics.dopri5 import odeint_adaptive

TIGHT = {"rtol": 1e-10, "atol": 1e-12}
HORIZON = 30.0  # dopri5 takes about 1,000 steps over it at TIGHT tolerances


class DrivenPendulum(nn.Module):
    """``theta'' = -omega^2 sin(theta) - gamma theta' + drive cos(t)``; ``y = (theta, theta')``.

    Damped enough not to be chaotic (weaker damping and a stronger drive are: then central
    differences need ``eps`` below 1e-7 to converge).

    The constants may be tensors of shape ``[M, 1]`` to solve ``M`` perturbed copies at once.
    """

    def __init__(self, omega=1.3, gamma=0.3, drive=0.3, dtype=torch.float64):
        super().__init__()
        for name, value in (("omega", omega), ("gamma", gamma), ("drive", drive)):
            setattr(self, name, nn.Parameter(torch.as_tensor(value, dtype=dtype)))

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        theta, speed = y.unbind(-1)
        accel = -self.omega**2 * torch.sin(theta) - self.gamma * speed + self.drive * torch.cos(t)
        return torch.stack([speed, accel], dim=-1)


class Growth(nn.Module):
    """``y' = k y``: ``y(T) = y0 e^{kT}``, ``d y(T)/d y0 = e^{kT}``, ``d y(T)/dk = T y(T)``."""

    def __init__(self, k: float, dtype=torch.float64):
        super().__init__()
        self.k = nn.Parameter(torch.tensor(k, dtype=dtype))

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.k * y


def pendulum_loss(ys: torch.Tensor) -> torch.Tensor:
    """A loss on several output times (3 of the 7), weighted differently."""
    weights = torch.tensor([0.0, 1.0, 0.0, 0.5, 0.0, 0.0, 2.0], dtype=ys.dtype)
    return (weights[:, None, None] * torch.cos(ys) * ys).sum()


Y0 = ((1.0, 0.0), (-0.5, 1.0))
TIMES = torch.linspace(0.0, HORIZON, 7, dtype=torch.float64)


def relative_error(value: torch.Tensor, reference: torch.Tensor) -> float:
    return float((value - reference).norm() / reference.norm())


@pytest.fixture(scope="module")
def adjoint_gradients():
    """``(dL/dy0, [dL/domega, dL/dgamma, dL/ddrive], stats)`` from the adjoint, float64."""
    system = DrivenPendulum()
    y0 = torch.tensor(Y0, dtype=torch.float64, requires_grad=True)
    stats = AdjointStats()
    ys = odeint_adjoint(system, y0, TIMES, **TIGHT, stats=stats)
    grads = torch.autograd.grad(pendulum_loss(ys), [y0, *system.parameters()])
    return grads[0], list(grads[1:]), stats


def test_adjoint_matches_central_finite_differences_over_1000_steps(adjoint_gradients):
    """All 7 central differences (4 entries of y0, 3 constants; +-eps) in one batched forward
    solve: the perturbed copies share one step sequence, so the quotient differentiates a smooth
    function (no step count flips between +eps and -eps)."""
    grad_y0, grad_params, stats = adjoint_gradients
    assert stats.forward_steps >= 900 and stats.backward_steps >= 900
    assert stats.backward_evaluations > 6 * stats.backward_steps
    eps = 1e-5
    base_y0 = torch.tensor(Y0, dtype=torch.float64)
    base_params = torch.tensor([1.3, 0.3, 0.3], dtype=torch.float64)
    directions = 4 + 3
    y0s = base_y0.repeat(2 * directions, 1, 1)  # [14, 2, 2]
    params = base_params.repeat(2 * directions, 1)  # [14, 3]
    for d in range(directions):
        for sign, row in ((1, 2 * d), (-1, 2 * d + 1)):
            if d < 4:
                y0s[row].view(-1)[d] += sign * eps
            else:
                params[row, d - 4] += sign * eps
    batched = DrivenPendulum(*(params[:, i:i + 1] for i in range(3)))
    with torch.no_grad():
        ys = odeint_adaptive(batched, y0s, TIMES, **TIGHT).ys  # [7, 14, 2, 2]
        losses = torch.stack([pendulum_loss(ys[:, m]) for m in range(2 * directions)])
    quotients = (losses[0::2] - losses[1::2]) / (2 * eps)
    assert relative_error(grad_y0.flatten(), quotients[:4]) < 1e-6
    for i, grad in enumerate(grad_params):
        assert abs(float(grad) - float(quotients[4 + i])) < 1e-6 * abs(float(quotients[4 + i]))


def test_adjoint_matches_backprop_through_the_solver(adjoint_gradients):
    grad_y0, grad_params, _ = adjoint_gradients
    system = DrivenPendulum()
    y0 = torch.tensor(Y0, dtype=torch.float64, requires_grad=True)
    ys = odeint_adaptive(system, y0, TIMES, **TIGHT).ys
    reference = torch.autograd.grad(pendulum_loss(ys), [y0, *system.parameters()])
    assert relative_error(grad_y0, reference[0]) < 1e-6
    assert relative_error(torch.stack(grad_params), torch.stack(reference[1:])) < 1e-6


def test_forward_values_are_those_of_odeint_adaptive():
    system = DrivenPendulum()
    y0 = torch.tensor(Y0, dtype=torch.float64)
    expected = odeint_adaptive(system, y0, TIMES[:3], rtol=1e-6, atol=1e-8).ys
    assert torch.equal(odeint_adjoint(system, y0, TIMES[:3], rtol=1e-6, atol=1e-8), expected)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_exponential_growth_matches_the_exact_gradient(dtype):
    """``|a|`` grows by ``e^{kT} ~ 1e13``, so the adjoint is renormalised along the way."""
    k, horizon = 1.0, 30.0
    system = Growth(k, dtype)
    y0 = torch.tensor([0.5, -2.0], dtype=dtype, requires_grad=True)
    t = torch.tensor([0.0, 10.0, horizon], dtype=dtype)
    ys = odeint_adjoint(system, y0, t, rtol=1e-9 if dtype == torch.float64 else 1e-6, atol=0.0)
    grad_y0, grad_k = torch.autograd.grad(ys[-1].sum(), [y0, system.k])
    growth = math.exp(k * horizon)
    tol = 1e-7 if dtype == torch.float64 else 1e-4
    assert grad_y0.dtype == dtype and torch.isfinite(grad_y0).all()
    assert torch.allclose(grad_y0, torch.full_like(grad_y0, growth), rtol=tol, atol=0)
    assert abs(float(grad_k) / (horizon * growth * -1.5) - 1) < tol


def test_float32_gradients_are_finite_and_close_to_float64():
    grads = {}
    for dtype in (torch.float32, torch.float64):
        system = DrivenPendulum(dtype=dtype)
        y0 = torch.tensor(Y0, dtype=dtype, requires_grad=True)
        t = torch.linspace(0.0, 5.0, 7, dtype=dtype)
        ys = odeint_adjoint(system, y0, t, rtol=1e-6, atol=1e-7)
        grads[dtype] = torch.autograd.grad(pendulum_loss(ys), [y0, *system.parameters()])
    for low, high in zip(grads[torch.float32], grads[torch.float64]):
        assert low.dtype == torch.float32 and torch.isfinite(low).all()
        assert relative_error(low.double(), high) < 1e-4


def test_gradient_beyond_the_float32_range_raises_a_clear_error():
    system = Growth(1.0, torch.float32)
    y0 = torch.tensor([1e-20], dtype=torch.float32, requires_grad=True)
    ys = odeint_adjoint(system, y0, torch.tensor([0.0, 100.0]), rtol=1e-5, atol=0.0)
    with pytest.raises(DivergenceError, match=r"y0 reaches 2.69e\+43"):
        ys[-1].sum().backward()  # e^100 > 3.4e38; dL/dk = 100 y(T) fits, but y0's does not


def test_unused_parameter_gets_zero_gradient_and_frozen_ones_none():
    system = DrivenPendulum()
    system.unused = nn.Parameter(torch.ones(3, dtype=torch.float64))
    system.gamma.requires_grad_(False)
    y0 = torch.tensor(Y0, dtype=torch.float64)  # no gradient wanted for y0
    ys = odeint_adjoint(system, y0, TIMES[:2], rtol=1e-6, atol=1e-8)
    pendulum_loss(torch.cat([ys, ys[-1:].expand(5, -1, -1)])).backward()
    assert torch.equal(system.unused.grad, torch.zeros(3, dtype=torch.float64))
    assert system.gamma.grad is None and system.omega.grad.abs() > 0


def test_explicit_adjoint_params_for_a_plain_function():
    rate = torch.tensor(-0.7, dtype=torch.float64, requires_grad=True)
    y0 = torch.tensor([2.0], dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0.0, 1.5], dtype=torch.float64)
    ys = odeint_adjoint(lambda _t, y: rate * y, y0, t, rtol=1e-10, atol=1e-12,
                        adjoint_params=(rate,))
    ys[-1].sum().backward()
    assert math.isclose(float(y0.grad), math.exp(-0.7 * 1.5), rel_tol=1e-8)
    assert math.isclose(float(rate.grad), 1.5 * 2.0 * math.exp(-0.7 * 1.5), rel_tol=1e-8)
    with pytest.raises(AdjointInputError, match="adjoint_params"):
        odeint_adjoint(lambda _t, y: rate * y, y0, t)


@pytest.mark.parametrize("t, error, match", [
    ([0.0, 1.0, 1.0], AdjointInputError, "strictly increasing"),
    ([1.0, 0.0], AdjointInputError, "strictly increasing"),
    ([0.0, float("nan")], AdjointInputError, "finite"),
    ([[0.0, 1.0]], ShapeError, r"\[T\]"),
    ([], ShapeError, "non-empty"),
])
def test_bad_times_raise(t, error, match):
    with pytest.raises(error, match=match):
        odeint_adjoint(Growth(1.0), torch.ones(2, dtype=torch.float64), t)


def test_bad_arguments_raise():
    system, y0 = Growth(1.0), torch.ones(2, dtype=torch.float64)
    t = torch.tensor([0.0, 1.0], dtype=torch.float64)
    with pytest.raises(AdjointInputError, match="t.detach"):
        odeint_adjoint(system, y0, t.clone().requires_grad_())
    with pytest.raises(AdjointInputError, match="rtol"):
        odeint_adjoint(system, y0, t, rtol=-1.0)
    with pytest.raises(AdjointInputError, match="adjoint_rtol"):
        odeint_adjoint(system, y0, t, adjoint_rtol=0.0, adjoint_atol=0.0)
    with pytest.raises(AdjointInputError, match="real floating-point"):
        odeint_adjoint(system, torch.ones(2, dtype=torch.int64), t)
    with pytest.raises(AdjointInputError, match="non-finite"):
        odeint_adjoint(system, torch.tensor([1.0, math.inf], dtype=torch.float64), t)
    with pytest.raises(ScidlError, match="max_steps"):
        odeint_adjoint(system, y0, t, max_steps=0)
