"""Two-dimensional Navier-Stokes (vorticity form) against exact solutions and conservation laws.

Exact checks: the Taylor-Green vortex; any vorticity on one Fourier shell ``|k| = const`` (the
advection term then cancels, though each of its products is non-zero); the steady state of the
FNO paper's forcing, which is itself on one shell; the right-hand side of a two-shell field
against a hand computation (the only check here that sees the sign of advection). Then the
energy balance ``dE/dt = -2 nu Z`` and enstrophy decay of unforced flow, fourth-order time
convergence of ETDRK4, and a short run of the FNO paper's recipe.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from scidl.numerics.derivatives import SpectralDerivatives
from scidl.numerics.grids import PeriodicGrid
from scidl.numerics.random_fields import GaussianRandomField, RandomSineSeries
from scidl.numerics.simulate import simulate
from scidl.pdes.navier_stokes import NavierStokes2D

TWO_PI = 2 * math.pi


def relative_max_error(approx: torch.Tensor, exact: torch.Tensor) -> float:
    return float((approx - exact).abs().max() / exact.abs().max())


def fitted_order(dts: list[float], errors: list[float]) -> float:
    return float(np.polyfit(np.log(dts), np.log(errors), 1)[0])


def fno_forcing(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return 0.1 * (torch.sin(TWO_PI * (x + y)) + torch.cos(TWO_PI * (x + y)))


@pytest.mark.parametrize("mode, length", [(1, TWO_PI), (2, 1.0), (3, 1.0)])
def test_taylor_green_vortex_decays_exactly(mode, length):
    # w = 2 k cos(kx) cos(ky) e^{-2 nu k^2 t}: the stream function cos cos / k is proportional to
    # w, so advection vanishes and only viscosity acts.
    nu = 0.01
    grid = PeriodicGrid((32, 32), (length, length))
    x, y = grid.meshgrid()
    k = TWO_PI * mode / length
    w0 = 2 * k * torch.cos(k * x) * torch.cos(k * y)
    times = [0.0, 0.3, 1.0]
    trajectory = simulate(NavierStokes2D(nu, "none"), w0[None, None], times, grid=grid, dt=0.05)
    assert trajectory.shape == (1, 3, 1, 32, 32)
    for w, t in zip(trajectory[0, :, 0], times, strict=True):
        assert relative_max_error(w, w0 * math.exp(-2 * nu * k**2 * t)) < 1e-12


def test_taylor_green_velocity_is_the_classical_one():
    grid = PeriodicGrid((16, 16), (TWO_PI, TWO_PI))
    x, y = grid.meshgrid()
    u, v = NavierStokes2D(0.1).velocity(2 * torch.cos(x) * torch.cos(y), SpectralDerivatives(grid))
    # psi = cos x cos y: u = psi_y = -cos x sin y, v = -psi_x = sin x cos y
    assert float((u + torch.cos(x) * torch.sin(y)).abs().max()) < 1e-13
    assert float((v - torch.sin(x) * torch.cos(y)).abs().max()) < 1e-13


def shell_field(seed: int, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """A random combination of every mode with ``m_x^2 + m_y^2 = 25`` on the unit torus."""
    generator = torch.Generator().manual_seed(seed)
    field = torch.zeros_like(x)
    for mx, my in [(5, 0), (0, 5), (3, 4), (4, 3), (3, -4), (4, -3)]:
        a, b = torch.randn(2, generator=generator, dtype=torch.float64)
        phase = TWO_PI * (mx * x + my * y)
        field = field + a * torch.cos(phase) + b * torch.sin(phase)
    return field


def test_vorticity_on_one_shell_decays_exactly_despite_nonzero_advective_products():
    nu, grid = 2e-3, PeriodicGrid((32, 32))
    x, y = grid.meshgrid()
    w0 = torch.stack([shell_field(seed, x, y) for seed in (1, 2)])
    d = SpectralDerivatives(grid)
    u, _ = NavierStokes2D(nu).velocity(w0, d)
    assert float((u * d.x(w0)).abs().max()) > 1.0  # the products do not vanish on their own
    times = [0.0, 0.5, 1.0]
    trajectory = simulate(NavierStokes2D(nu, "none"), w0, times, grid=grid, dt=0.02)
    for j, t in enumerate(times):
        exact = w0 * math.exp(-nu * TWO_PI**2 * 25 * t)
        assert relative_max_error(trajectory[:, j], exact) < 1e-11


def test_fno_forcing_has_the_exact_steady_state_and_perturbations_on_its_shell_decay():
    # f = 0.1 (sin 2 pi (x + y) + cos 2 pi (x + y)) lies on the shell |k|^2 = 8 pi^2, so
    # w* = f / (8 pi^2 nu) is steady; adding any field g on the same shell, w = w* + g e^{-8 pi^2
    # nu t} stays exact because the advection of a one-shell field vanishes.
    nu, grid = 1e-2, PeriodicGrid((32, 32))
    x, y = grid.meshgrid()
    steady = fno_forcing(x, y) / (8 * math.pi**2 * nu)
    perturbation = torch.cos(TWO_PI * (x - y)) + 0.3 * torch.sin(TWO_PI * (x + y) + 0.4)
    times = [0.0, 0.5, 2.0]
    pde = NavierStokes2D(nu)
    trajectory = simulate(pde, torch.stack([steady, steady + perturbation]), times, grid=grid,
                          dt=0.05)
    for j, t in enumerate(times):
        assert relative_max_error(trajectory[0, j], steady) < 1e-12
        exact = steady + perturbation * math.exp(-8 * math.pi**2 * nu * t)
        assert relative_max_error(trajectory[1, j], exact) < 1e-12
    assert float(pde.rhs(steady, SpectralDerivatives(grid)).abs().max()) < 1e-12


def test_rhs_of_a_two_shell_field_matches_the_hand_computation():
    # w = cos 2 pi x + cos 4 pi y: psi = cos 2 pi x / (4 pi^2) + cos 4 pi y / (16 pi^2),
    # u = psi_y = -sin 4 pi y / (4 pi), v = -psi_x = sin 2 pi x / (2 pi), and
    # u w_x + v w_y = sin(2 pi x) sin(4 pi y) (1/2 - 2).
    nu, grid = 0.01, PeriodicGrid((16, 16))
    x, y = grid.meshgrid()
    w = torch.cos(TWO_PI * x) + torch.cos(2 * TWO_PI * y)
    advection = -1.5 * torch.sin(TWO_PI * x) * torch.sin(2 * TWO_PI * y)
    diffusion = -(TWO_PI**2) * torch.cos(TWO_PI * x) - 4 * TWO_PI**2 * torch.cos(2 * TWO_PI * y)
    expected = -advection + nu * diffusion + fno_forcing(x, y)
    rhs = NavierStokes2D(nu).rhs(w[None, None], SpectralDerivatives(grid))
    assert rhs.shape == (1, 1, 16, 16)
    assert float((rhs[0, 0] - expected).abs().max()) < 1e-12


def band_limited_vorticity(grid: PeriodicGrid, n: int, seed: int) -> torch.Tensor:
    """A GRF sample with only the modes the 2/3 rule keeps, so the solver is a Galerkin method
    and conserves the quadratic invariants of the advection term exactly."""
    w = GaussianRandomField(7**1.5, 7.0, 2.5).sample(n, grid, seed=seed)
    w_hat = torch.fft.rfftn(w, dim=(-2, -1)) * grid.dealias_mask()
    return torch.fft.irfftn(w_hat, s=grid.shape, dim=(-2, -1))


def test_unforced_flow_satisfies_the_energy_balance_and_enstrophy_decays():
    # E = 1/2 int |u|^2, Z = 1/2 int w^2: dE/dt = -2 nu Z and dZ/dt = -nu int |grad w|^2 <= 0.
    nu, grid = 5e-3, PeriodicGrid((32, 32))
    w0 = band_limited_vorticity(grid, 2, seed=3)
    pde = NavierStokes2D(nu, "none")
    times = torch.linspace(0.0, 1.0, 81, dtype=torch.float64)
    trajectory = simulate(pde, w0, times, grid=grid, dt=0.005)
    d = SpectralDerivatives(grid)
    cell = 1.0 / math.prod(grid.shape)
    u, v = pde.velocity(trajectory, d)
    energy = 0.5 * (u**2 + v**2).sum((-2, -1)) * cell  # [B, T]
    enstrophy = 0.5 * (trajectory**2).sum((-2, -1)) * cell
    # Simpson's rule on 80 intervals; measured |balance - 1| = 2e-8 and 4e-8 (3e-7 and 6e-7 on
    # 40 intervals: the quadrature, not the solver, sets it)
    weights = torch.ones(81, dtype=torch.float64)
    weights[1:-1:2], weights[2:-1:2] = 4.0, 2.0
    integral = (enstrophy * weights).sum(-1) * (1.0 / 80) / 3
    balance = (energy[:, -1] - energy[:, 0]) / (-2 * nu * integral)
    assert float((balance - 1).abs().max()) < 1e-6
    assert float((energy[:, -1] / energy[:, 0]).max()) < 0.7  # it did dissipate (0.61, 0.63)
    assert bool((enstrophy[:, 1:] < enstrophy[:, :-1]).all())
    assert bool((energy[:, 1:] < energy[:, :-1]).all())


def test_etdrk4_converges_with_fourth_order_on_forced_navier_stokes():
    # FNO setting at 64^2 (nu = 1e-3, forcing), repository-scaled GRF initial vorticity.
    # Measured errors for dt = 0.05 ... 0.00625: 6.2e-7, 3.6e-8, 2.2e-9, 1.4e-10; slope 4.05.
    grid = PeriodicGrid((64, 64))
    w0 = GaussianRandomField(7**1.5, 7.0, 2.5).sample(1, grid, seed=0)
    pde, end = NavierStokes2D(1e-3), 0.2
    reference = simulate(pde, w0, [0.0, end], grid=grid, dt=0.05 / 64)[:, -1]
    dts = [0.05 / 2**j for j in range(4)]
    errors = [
        relative_max_error(simulate(pde, w0, [0.0, end], grid=grid, dt=dt)[:, -1], reference)
        for dt in dts
    ]
    assert errors[-1] > 1e-13
    assert abs(fitted_order(dts, errors) - 4) < 0.3


def test_fno_recipe_runs_stays_finite_and_keeps_zero_mean_vorticity():
    grid = PeriodicGrid((64, 64))
    w0 = GaussianRandomField.fno_navier_stokes().sample(2, grid, seed=1, dtype=torch.float32)
    times = [0.0, 0.5, 1.0]
    trajectory = simulate(NavierStokes2D(1e-3), w0[:, None], times, grid=grid, dt=1e-2)
    assert trajectory.shape == (2, 3, 1, 64, 64) and trajectory.dtype == torch.float32
    assert torch.isfinite(trajectory).all()
    scale = float(trajectory.abs().max())
    assert float(trajectory.mean((-2, -1)).abs().max()) < 1e-6 * scale
    # the forcing drives the flow: the (1, 1) shell grows from the initial condition
    assert float((trajectory[:, -1] - trajectory[:, 0]).abs().max()) > 1e-2


def test_navier_stokes_parameters_and_validation():
    assert NavierStokes2D(1e-4).parameters() == {"nu": 1e-4, "forcing": "fno", "amplitude": 0.1}
    with pytest.raises(ValueError, match="viscosity"):
        NavierStokes2D(0.0)
    with pytest.raises(ValueError, match="forcing"):
        NavierStokes2D(1e-3, "kolmogorov")
    grid = PeriodicGrid((8, 8))
    symbol = NavierStokes2D(0.02).linear_symbol(grid)
    k2 = sum(k**2 for k in grid.wavenumbers())
    assert float((symbol + 0.02 * k2).abs().max()) < 1e-12 * float(0.02 * k2.max())


# ------------------------------------------- PDEBench-style random sums of sines (1D and 2D)


def nonzero_modes(field: torch.Tensor, grid: PeriodicGrid) -> torch.Tensor:
    """Integer wave vectors ``[M, ndim]`` of the non-negligible coefficients of one field, in the
    full ``fftn`` layout (so ``k`` and ``-k`` both appear)."""
    coefficients = torch.fft.fftn(field, dim=tuple(range(-grid.ndim, 0)))
    where = torch.nonzero(coefficients.abs() > 1e-9 * math.prod(grid.shape))
    sizes = torch.tensor(grid.shape)
    return torch.where(where > sizes // 2, where - sizes, where)


@pytest.mark.parametrize("shape, length", [(64, 1.0), ((32, 24), (1.0, 2.0))])
def test_random_sines_are_trigonometric_polynomials_of_the_stated_degree(shape, length):
    grid = PeriodicGrid(shape, length)
    series = RandomSineSeries(n_terms=3, max_wavenumber=4)
    samples = series.sample(50, grid, seed=0)
    assert samples.shape == (50, *grid.shape) and samples.dtype == torch.float64
    for field in samples:
        modes = nonzero_modes(field, grid)
        assert 2 <= len(modes) <= 2 * 3  # k and -k of at most three terms
        assert int(modes.abs().max()) <= 4
        assert not (modes == 0).all(-1).any()  # no constant part
    assert float(samples.abs().max()) <= 3.0  # |sum of three sines with A <= 1|
    # every wavenumber component, both signs in 2D, is drawn
    seen = torch.cat([nonzero_modes(field, grid) for field in samples])
    assert set(seen[:, -1].abs().tolist()) >= {1, 2, 3, 4}
    if grid.ndim == 2:
        assert (seen[:, 0] * seen[:, 1] < 0).any() and (seen[:, 0] * seen[:, 1] > 0).any()


def test_one_sine_of_unit_amplitude_has_mean_square_one_half():
    grid = PeriodicGrid((16, 16))
    samples = RandomSineSeries(1, 3, amplitude=(1.0, 1.0)).sample(20, grid, seed=1)
    mean_square = samples.pow(2).mean((-2, -1))
    assert float((mean_square - 0.5).abs().max()) < 1e-14


def test_random_sines_have_the_expected_mean_square():
    # independent uniform phases make the cross terms average out: E mean(u^2) = n E[A^2] / 2,
    # E[A^2] = 1/3 for A ~ U(0, 1)
    grid, n_samples = PeriodicGrid(32), 4000
    samples = RandomSineSeries(n_terms=2, max_wavenumber=5).sample(n_samples, grid, seed=2)
    mean_square = samples.pow(2).mean(-1)
    standard_error = float(mean_square.std()) / math.sqrt(n_samples)
    assert abs(float(mean_square.mean()) - 2 / 6) < 5 * standard_error


def test_random_sines_are_seeded_and_validated():
    grid = PeriodicGrid(32)
    series = RandomSineSeries()
    first = series.sample(4, grid, seed=7)
    assert torch.equal(first, series.sample(4, grid, seed=7))
    assert torch.equal(first, series.sample(4, grid, generator=torch.Generator().manual_seed(7)))
    assert (first - series.sample(4, grid, seed=8)).abs().max() > 0.1
    assert series.sample(4, grid, seed=7, dtype=torch.float32).dtype == torch.float32
    with pytest.raises(ValueError, match="n_terms"):
        RandomSineSeries(n_terms=0)
    with pytest.raises(ValueError, match="amplitude"):
        RandomSineSeries(amplitude=(1.0, 0.5))
