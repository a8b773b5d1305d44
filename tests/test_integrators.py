"""Butcher tableaus, fixed-step and adaptive Runge-Kutta, and the Crank-Nicolson-Heun IMEX step.

Checks: tableaus verify their order conditions and reject broken ones; fitted convergence orders
of fixed steps (Dormand-Prince 5 and its embedded 4, RK4, Bogacki-Shampine 3, and the same
tableaus as semilinear steppers in ``simulate``); adaptive Dormand-Prince: error proportional to
the tolerance, step counts ~ tol^(-1/5), exact landing on output times, complex and float32
states, a batched stiff-ish Burgers problem against ETDRK4, gradients against finite differences,
clear failures; Crank-Nicolson-Heun: order 2 on Burgers and unconditional stability on heat.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from scidl.errors import DivergenceError
from scidl.numerics import ETDRK4, RK4, PeriodicGrid, SpectralDerivatives, simulate
from scidl.numerics.butcher import (
    BOGACKI_SHAMPINE,
    CLASSIC_RK4,
    ButcherStepper,
    ButcherTableau,
    odeint_fixed,
    rooted_trees,
)
from scidl.numerics.dopri5 import (
    DOPRI5,
    StepLimitError,
    StepSizeController,
    odeint_adaptive,
)
from scidl.numerics.imex import CrankNicolsonHeun
from scidl.pdes import Burgers, Heat
from scidl.pdes.wave import Wave

TWO_PI = 2 * math.pi


def fitted_order(dts, errors) -> float:
    """Slope of log(error) against log(dt), by least squares."""
    return float(np.polyfit(np.log(dts), np.log(errors), 1)[0])


def relative_max_error(approx: torch.Tensor, exact: torch.Tensor) -> float:
    return float((approx - exact).abs().max() / exact.abs().max())


# ---------------------------------------------------------------------- ODEs with exact solutions


def forced_decay(t, y):
    """``y' = -y + sin t``: ``y = (sin t - cos t) / 2 + (y0 + 1/2) e^-t``."""
    return -y + torch.sin(t)


def forced_decay_exact(y0: torch.Tensor, t: float) -> torch.Tensor:
    return (math.sin(t) - math.cos(t)) / 2 + (y0 + 0.5) * math.exp(-t)


def phase_rotation(t, y):
    """``y' = i |y|^2 y`` (complex, nonlinear): ``|y|`` is conserved, so
    ``y = y0 exp(i |y0|^2 t)``."""
    return 1j * y.abs() ** 2 * y


def phase_rotation_exact(y0: torch.Tensor, t: float) -> torch.Tensor:
    return y0 * torch.exp(1j * y0.abs() ** 2 * t)


COMPLEX_Y0 = torch.tensor([1.0 + 0.5j, 0.3 - 0.8j, 1.2j], dtype=torch.complex128)
OMEGA = 2.0
OSCILLATOR = torch.tensor([[0.0, 1.0], [-OMEGA**2, 0.0]], dtype=torch.float64)


def oscillator(t, y):
    """``p' = q, q' = -omega^2 p`` for a batch ``y = [B, 2]``."""
    return y @ OSCILLATOR.T


def oscillator_exact(y0: torch.Tensor, t: float) -> torch.Tensor:
    p, q = y0[:, 0], y0[:, 1]
    cos, sin = math.cos(OMEGA * t), math.sin(OMEGA * t)
    return torch.stack([p * cos + q / OMEGA * sin, -OMEGA * p * sin + q * cos], dim=-1)


def van_der_pol(t, y):
    p, q = y[..., 0], y[..., 1]
    return torch.stack([q, (1 - p**2) * q - p], dim=-1)


# ----------------------------------------------------------------------------------- tableaus


def test_tableaus_state_their_orders_and_first_same_as_last():
    assert [len(rooted_trees(n)) for n in range(1, 7)] == [1, 1, 2, 4, 9, 20]  # OEIS A000081
    assert (DOPRI5.stages, DOPRI5.order, DOPRI5.embedded_order) == (7, 5, 4)
    assert DOPRI5.fsal and BOGACKI_SHAMPINE.fsal and not CLASSIC_RK4.fsal
    embedded = DOPRI5.embedded()
    assert embedded.order == 4 and embedded.b == DOPRI5.b_hat and embedded.b_hat is None
    with pytest.raises(ValueError, match="no embedded method"):
        CLASSIC_RK4.embedded()


def perturbed(values, index, delta=1e-3):
    return tuple(v + delta if i == index else v for i, v in enumerate(values))


@pytest.mark.parametrize("change, message", [
    # b still sums to one but misses the order-2 condition b . c = 1/2
    ({"b": (1 / 6 + 1e-3, 1 / 3 - 2e-3, 1 / 3 + 1e-3, 1 / 6)},
     r"order-2 condition for the tree \[\[\]\]"),
    ({"b": perturbed(CLASSIC_RK4.b, 0)}, "order-1 condition"),
    ({"c": perturbed(CLASSIC_RK4.c, 2)}, r"row 2 of a sums to"),
    ({"order": 5}, "order-5 condition"),  # RK4 claimed of order five
    ({"a": ((1 / 2,), (0, 1 / 2), (0, 0, 1, 0))}, "explicit"),
    ({"b": CLASSIC_RK4.b[:3]}, "len"),
    ({"b_hat": CLASSIC_RK4.b}, "both b_hat and embedded_order"),
])
def test_a_broken_tableau_is_rejected_on_construction(change, message):
    fields = {"name": "broken", "c": CLASSIC_RK4.c, "a": CLASSIC_RK4.a, "b": CLASSIC_RK4.b,
              "order": 4, **change}
    with pytest.raises(ValueError, match=message):
        ButcherTableau(**fields)


def test_a_wrong_embedded_order_or_coefficient_is_rejected():
    fields = {"name": "dopri", "c": DOPRI5.c, "a": DOPRI5.a, "b": DOPRI5.b, "order": 5}
    with pytest.raises(ValueError, match="b_hat fails the order-5 condition"):
        ButcherTableau(**fields, b_hat=DOPRI5.b_hat, embedded_order=5)
    a = list(DOPRI5.a)
    a[3] = (a[3][0] + 1e-4, a[3][1] - 1e-4, a[3][2], a[3][3])  # row sum kept, a typo
    with pytest.raises(ValueError, match="b fails the order-3 condition"):
        ButcherTableau(**{**fields, "a": tuple(a)})


# --------------------------------------------------------------------------- fixed-step orders


@pytest.mark.parametrize("tableau, order", [
    (DOPRI5, 5), (DOPRI5.embedded(), 4), (CLASSIC_RK4, 4), (BOGACKI_SHAMPINE, 3),
])
def test_fixed_steps_converge_with_the_order_of_the_tableau(tableau, order):
    # Measured slopes: 5.00, 4.05, 3.99, 2.91.
    end, steps = 2.0, [16, 32, 64, 128]
    errors = []
    for n in steps:
        grid = torch.linspace(0.0, end, n + 1, dtype=torch.float64)
        y = odeint_fixed(phase_rotation, COMPLEX_Y0, grid, tableau=tableau)
        assert y.shape == (n + 1, 3) and y.dtype == torch.complex128
        errors.append(float((y[-1] - phase_rotation_exact(COMPLEX_Y0, end)).abs().max()))
    assert errors[-1] > 1e-13
    assert abs(fitted_order([end / n for n in steps], errors) - order) < 0.3


def test_fixed_step_dopri5_and_its_embedded_method_on_a_forced_linear_ode():
    # Measured slopes: 5.26 and 4.12.
    y0, end, steps = torch.tensor([1.0], dtype=torch.float64), 2.0, [16, 32, 64, 128]
    for tableau, order in ((DOPRI5, 5), (DOPRI5.embedded(), 4)):
        errors = [
            float((odeint_fixed(forced_decay, y0, torch.linspace(0.0, end, n + 1),
                                tableau=tableau)[-1] - forced_decay_exact(y0, end)).abs())
            for n in steps
        ]
        assert abs(fitted_order([end / n for n in steps], errors) - order) < 0.3


def nonstiff_burgers_setup():
    grid = PeriodicGrid(32)
    (x,) = grid.meshgrid()
    return grid, torch.sin(TWO_PI * x) + 0.5 * torch.cos(2 * TWO_PI * x + 0.3)


def test_butcher_stepper_with_the_classic_tableau_is_rk4():
    grid, u0 = nonstiff_burgers_setup()
    kwargs = {"grid": grid, "dt": 1e-3}
    by_tableau = simulate(Burgers(0.01), u0, [0.0, 0.1], stepper=ButcherStepper(CLASSIC_RK4),
                          **kwargs)
    by_hand = simulate(Burgers(0.01), u0, [0.0, 0.1], stepper=RK4(), **kwargs)
    assert float((by_tableau - by_hand).abs().max()) < 1e-14
    waves = torch.stack([u0, 0 * u0])  # coupled channels: a block symbol
    by_tableau = simulate(Wave(1.0), waves, [0.0, 0.1], stepper=ButcherStepper(CLASSIC_RK4),
                          **kwargs)
    by_hand = simulate(Wave(1.0), waves, [0.0, 0.1], stepper=RK4(), **kwargs)
    assert float((by_tableau - by_hand).abs().max()) < 1e-14
    assert ButcherStepper(DOPRI5).order == 5


@pytest.mark.parametrize("tableau", [DOPRI5, BOGACKI_SHAMPINE])
def test_butcher_stepper_converges_with_its_order_in_simulate(tableau):
    # Nonstiff Burgers as in test_simulate (h nu k_max^2 <= 1). Measured: 5.08, 3.14.
    grid, u0 = nonstiff_burgers_setup()
    pde, end = Burgers(0.01), 0.1
    reference = simulate(pde, u0, [0.0, end], grid=grid, dt=1e-4)[-1]
    dts = [0.01 / 2**j for j in range(4)]
    errors = [
        relative_max_error(simulate(pde, u0, [0.0, end], grid=grid, dt=dt,
                                    stepper=ButcherStepper(tableau))[-1], reference)
        for dt in dts
    ]
    assert errors[-1] > 1e-12
    assert abs(fitted_order(dts, errors) - tableau.order) < 0.3


# ------------------------------------------------------------------------------ adaptive DOPRI5


@pytest.mark.parametrize("controller", [StepSizeController(), StepSizeController(beta=0.0)])
def test_adaptive_error_follows_the_tolerance_and_steps_grow_like_its_fifth_root(controller):
    # Measured error / tol: PI 7.7 .. 10.6, 32 .. 500 steps, slope -0.199; standard (beta = 0)
    # 8.8 .. 14.1, 30 .. 471 steps, slope -0.200.
    y0 = torch.tensor([[1.0, 0.0], [0.3, 0.5]], dtype=torch.float64)
    end = 10.0
    tolerances = [10.0**-k for k in range(4, 11)]
    errors, steps = [], []
    for tol in tolerances:
        solution = odeint_adaptive(oscillator, y0, [0.0, end], rtol=tol, atol=tol,
                                   controller=controller)
        assert solution.ys.shape == (2, 2, 2)
        errors.append(float((solution.ys[-1] - oscillator_exact(y0, end)).abs().max()))
        steps.append(solution.n_accepted)
        # FSAL: one evaluation at t0, one for the starting-step guess, six per step after
        attempts = solution.n_accepted + solution.n_rejected
        assert solution.n_evaluations == 2 + 6 * attempts
        assert len(solution.step_times) == solution.n_accepted + 1
    assert all(error <= 30 * tol for error, tol in zip(errors, tolerances))
    assert all(later < earlier for earlier, later in zip(errors, errors[1:]))
    assert abs(fitted_order(tolerances, steps) + 1 / 5) < 0.04


def test_adaptive_steps_land_exactly_on_the_output_times_without_loss_of_accuracy():
    times = torch.linspace(0.0, 4.0, 41, dtype=torch.float64)  # 10 outputs per unit time
    y0 = torch.tensor([0.7], dtype=torch.float64)
    solution = odeint_adaptive(forced_decay, y0, times, rtol=1e-9, atol=1e-9)
    assert solution.ys.shape == (41, 1)
    assert torch.equal(solution.ys[0], y0)
    assert set(times.tolist()) <= set(solution.step_times.tolist())
    exact = torch.stack([forced_decay_exact(y0, float(t)) for t in times])
    assert float((solution.ys - exact).abs().max()) < 1e-8
    # sparse outputs take fewer, longer steps than dense ones
    sparse = odeint_adaptive(forced_decay, y0, [0.0, 4.0], rtol=1e-9, atol=1e-9)
    assert sparse.n_accepted < solution.n_accepted


@pytest.mark.parametrize("dtype, tol, bound", [(torch.complex128, 1e-9, 1e-7),
                                               (torch.complex64, 1e-5, 1e-3)])
def test_adaptive_complex_states_in_single_and_double_precision(dtype, tol, bound):
    y0 = COMPLEX_Y0.to(dtype)
    solution = odeint_adaptive(phase_rotation, y0, [0.0, 2.5, 5.0], rtol=tol, atol=tol)
    assert solution.ys.dtype == dtype and solution.ys.shape == (3, 3)
    exact = phase_rotation_exact(COMPLEX_Y0, 5.0)
    assert float((solution.ys[-1].to(torch.complex128) - exact).abs().max()) < bound


@pytest.fixture(scope="module")
def stiff_burgers():
    """Burgers, nu = 0.1, N = 64 on the unit interval (``h nu k_max^2 = 4043 h``), a batch of 3,
    with an ETDRK4 reference (its error at dt = 2.5e-4 is ~1e-12)."""
    grid = PeriodicGrid(64)
    (x,) = grid.meshgrid()
    u0 = torch.stack([torch.sin(TWO_PI * x) + 0.5 * torch.cos(2 * TWO_PI * x + 0.3),
                      0.5 * torch.sin(3 * TWO_PI * x), -torch.cos(TWO_PI * x)])
    times = [0.0, 0.05, 0.1]
    reference = simulate(Burgers(0.1), u0, times, grid=grid, dt=2.5e-4, stepper=ETDRK4())
    return grid, u0, times, reference


def test_adaptive_solves_batched_stiff_burgers_in_fourier_space(stiff_burgers):
    # v' = L v + N(v) with the PDE's own symbol and simulate's de-aliased nonlinear term. The
    # explicit step is stability-bound (|h L| <= 3.3, ~120 steps); the controller finds that.
    grid, u0, times, reference = stiff_burgers
    pde = Burgers(0.1)
    d, linear, mask = SpectralDerivatives(grid), pde.linear_symbol(grid), grid.dealias_mask()

    def f(t, v):
        u = d.inverse(v)
        d.remember(u, v)
        return linear * v + (torch.fft.rfft(pde.rhs(u, d)) - linear * v) * mask

    solution = odeint_adaptive(f, torch.fft.rfft(u0), times, rtol=1e-8, atol=1e-8)
    trajectory = torch.fft.irfft(solution.ys, n=64).transpose(0, 1)  # [B, T, N]
    assert relative_max_error(trajectory, reference) < 1e-8  # measured 1.7e-10
    assert 80 < solution.n_accepted < 200 and solution.n_rejected < 20


def gradient_problem():
    y0 = torch.tensor([[2.0, 0.0], [0.5, -1.0], [-1.0, 1.5]], dtype=torch.float64)
    generator = torch.Generator().manual_seed(0)
    weights = torch.rand(3, 2, dtype=torch.float64, generator=generator)
    direction = torch.randn(3, 2, dtype=torch.float64, generator=generator)
    return y0, weights, direction


def test_gradient_through_adaptive_steps_matches_finite_differences_on_the_same_steps():
    # The step sizes are floats chosen from detached error estimates, so backpropagation gives
    # the derivative of the scheme along the step sequence it took. Replaying that sequence
    # with odeint_fixed makes the finite differences see the same scheme. Measured: 1.3e-9.
    y0, weights, direction = gradient_problem()
    start = y0.clone().requires_grad_()
    solution = odeint_adaptive(van_der_pol, start, [0.0, 1.0, 3.0])  # default rtol 1e-6
    (gradient,) = torch.autograd.grad((weights * solution.ys[-1] ** 2).sum(), start)

    def replayed_loss(y):
        return (weights * odeint_fixed(van_der_pol, y, solution.step_times,
                                       tableau=DOPRI5)[-1] ** 2).sum()

    eps = 1e-6
    with torch.no_grad():
        # the same numbers up to rounding ((t + h) - t is not h in floating point)
        replayed = odeint_fixed(van_der_pol, y0, solution.step_times, tableau=DOPRI5)[-1]
        assert float((replayed - solution.ys[-1]).abs().max()) < 1e-13
        plus, minus = replayed_loss(y0 + eps * direction), replayed_loss(y0 - eps * direction)
    finite_difference = float((plus - minus) / (2 * eps))
    directional = float((gradient * direction).sum())
    assert abs(directional - finite_difference) < 1e-6 * abs(finite_difference)


def test_gradient_matches_finite_differences_of_the_adaptive_solver_at_tight_tolerance():
    # Perturbing y0 moves every step size by O(eps); backpropagation ignores dh/dy0 (see above),
    # which changes the loss by O(tol) relative: measured 5e-3, 9e-6, 1e-7, 2e-9 at
    # tol = 1e-4, 1e-6, 1e-8, 1e-10. At 1e-10 the accept/reject pattern is identical and the
    # omitted term is far below the 1e-6 asked for.
    y0, weights, direction = gradient_problem()
    tol = 1e-10

    def solve(y):
        return odeint_adaptive(van_der_pol, y, [0.0, 1.0, 3.0], rtol=tol, atol=tol)

    start = y0.clone().requires_grad_()
    solution = solve(start)
    (gradient,) = torch.autograd.grad((weights * solution.ys[-1] ** 2).sum(), start)
    eps = 1e-6
    with torch.no_grad():
        plus, minus = solve(y0 + eps * direction), solve(y0 - eps * direction)
    for other in (plus, minus):
        assert (other.n_accepted, other.n_rejected) == (solution.n_accepted, solution.n_rejected)
    finite_difference = float(((weights * plus.ys[-1] ** 2).sum()
                               - (weights * minus.ys[-1] ** 2).sum()) / (2 * eps))
    directional = float((gradient * direction).sum())
    assert abs(directional - finite_difference) < 1e-6 * abs(finite_difference)


def test_adaptive_failures_are_reported_clearly():
    y0 = torch.tensor([1.0], dtype=torch.float64)
    with pytest.raises(StepLimitError, match="max_steps=5"):
        odeint_adaptive(forced_decay, y0, [0.0, 100.0], max_steps=5)
    with pytest.raises(DivergenceError, match="step size underflowed"):
        odeint_adaptive(lambda t, y: y**2, y0, [0.0, 2.0])  # y = 1 / (1 - t) blows up at t = 1
    with pytest.raises(ValueError, match="strictly increasing"):
        odeint_adaptive(forced_decay, y0, [0.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="no embedded method"):
        odeint_adaptive(forced_decay, y0, [0.0, 1.0], tableau=CLASSIC_RK4)
    with pytest.raises(ValueError, match="first_step must be positive"):
        odeint_adaptive(forced_decay, y0, [0.0, 1.0], first_step=0.0)
    with pytest.raises(ValueError, match="rtol"):
        odeint_adaptive(forced_decay, y0, [0.0, 1.0], rtol=0.0, atol=0.0)


# ------------------------------------------------------------------------ Crank-Nicolson-Heun


def test_crank_nicolson_heun_converges_with_second_order_on_stiff_burgers(stiff_burgers):
    # Measured slope 1.96 (errors 1.7e-4 .. 2.9e-6); the CFL limit of the explicit advection
    # is far above these steps, and the stiff diffusion costs nothing in step size.
    grid, u0, times, reference = stiff_burgers
    dts = [4e-3 / 2**j for j in range(4)]
    errors = [
        relative_max_error(simulate(Burgers(0.1), u0, times, grid=grid, dt=dt,
                                    stepper=CrankNicolsonHeun()), reference)
        for dt in dts
    ]
    assert abs(fitted_order(dts, errors) - CrankNicolsonHeun.order) < 0.3


def test_crank_nicolson_is_unconditionally_stable_on_heat():
    # h nu k_max^2 = 4e4, where RK4 diverges at once; Crank-Nicolson multiplies each mode by
    # (1 + z/2) / (1 - z/2), |.| < 1 for z = h L < 0, so every mode decays (and stiff ones
    # alternate in sign, the price of A- but not L-stability).
    nu, dt, steps = 0.1, 10.0, 20
    grid = PeriodicGrid(64)
    (x,) = grid.meshgrid()
    u0 = 0.3 + torch.sin(TWO_PI * x) + 0.5 * torch.cos(20 * TWO_PI * x) + 0.1 * torch.sin(
        31 * TWO_PI * x)
    times = [dt * n for n in range(steps + 1)]
    trajectory = simulate(Heat(nu), u0, times, grid=grid, dt=dt, stepper=CrankNicolsonHeun())
    assert torch.isfinite(trajectory).all()
    z = dt * Heat(nu).linear_symbol(grid)
    factor = (1 + z / 2) / (1 - z / 2)
    assert float(factor[1:].abs().max()) < 1
    for n, u in enumerate(trajectory):
        expected = torch.fft.irfft(factor**n * torch.fft.rfft(u0), n=64)
        # (the explicit part N = F[rhs] - L v is round-off, amplified by h = 10)
        assert float((u - expected).abs().max()) < 1e-10
    fluctuation = (trajectory - 0.3).norm(dim=-1)
    assert bool((fluctuation[1:] < fluctuation[:-1]).all())
    assert torch.allclose(trajectory.mean(dim=-1), torch.full((steps + 1,), 0.3,
                                                              dtype=torch.float64))
    with pytest.raises(DivergenceError):
        simulate(Heat(nu), u0, times, grid=grid, dt=dt, stepper=RK4())


def test_crank_nicolson_keeps_the_energy_of_waves_with_a_block_symbol():
    # u_tt = c^2 u_xx as [u, u_t]: per mode L = [[0, 1], [-c^2 k^2, 0]], eigenvalues +-i c k, on
    # which (1 + z/2) / (1 - z/2) is a rotation, so int (u_t^2 + c^2 u_x^2) is kept exactly
    # even at c k_max h = 100, where explicit methods blow up.
    c, dt, steps = 1.0, 0.5, 20
    grid = PeriodicGrid(64)
    (x,) = grid.meshgrid()
    d = SpectralDerivatives(grid)
    u0 = torch.stack([torch.exp(-100 * (x - 0.5) ** 2), 0.3 * torch.sin(4 * TWO_PI * x)])
    times = [dt * n for n in range(steps + 1)]
    trajectory = simulate(Wave(c), u0, times, grid=grid, dt=dt, stepper=CrankNicolsonHeun())
    assert trajectory.shape == (steps + 1, 2, 64) and torch.isfinite(trajectory).all()
    energy = (trajectory[:, 1] ** 2 + c**2 * d.x(trajectory[:, 0]) ** 2).mean(dim=-1)
    assert float((energy / energy[0] - 1).abs().max()) < 1e-12
    assert float((trajectory[-1] - u0).abs().max()) > 0.1  # it did move
