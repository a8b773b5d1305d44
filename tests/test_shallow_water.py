"""Rotating shallow water (scidl.pdes.ShallowWater2D), its data helpers and the conservation
projections of scidl.forecast.projections."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from scidl.data.shallow_water import (
    balanced_initial_condition,
    balanced_state,
    shallow_water_trajectories,
)
from scidl.errors import ShapeError
from scidl.forecast import OneStepForecast
from scidl.forecast.projections import (
    MeanProjection,
    conserved_mass,
    project_mean,
    spatial_mean,
)
from scidl.numerics import AutogradDerivatives, PeriodicGrid, SpectralDerivatives, simulate
from scidl.pdes import PDES, ShallowWater2D, make_pde
from scidl.train import Stage, TrainOptions, train

GRID = PeriodicGrid((32, 32), 2 * math.pi)


def test_registered_and_validated():
    assert PDES["shallow_water"] is ShallowWater2D
    pde = make_pde("shallow_water", g=2.0, f=0.5, H=3.0)
    assert pde.channels == 3 and pde.wave_speed == pytest.approx(math.sqrt(6.0))
    assert pde.deformation_radius == pytest.approx(math.sqrt(6.0) / 0.5)
    with pytest.raises(ValueError, match="mean depth"):
        ShallowWater2D(H=0.0)
    with pytest.raises(ValueError, match="dissipation"):
        ShallowWater2D(dissipation="hyper")
    with pytest.raises(ShapeError, match=r"\[B, 3, X, Y\]"):
        pde.rhs(torch.zeros(1, 2, 32, 32, dtype=torch.float64), SpectralDerivatives(GRID))


def test_linear_symbol_is_the_rest_state_linearisation():
    """About (H, 0, 0): h_t = -H div(u), u_t = f v - g h_x, v_t = -f u - g h_y, -nu |k|^4."""
    pde = ShallowWater2D(g=2.0, f=0.7, H=1.5, nu=1e-3)
    symbol = pde.linear_symbol(GRID)
    kx, ky = GRID.wavenumbers()
    kx, ky = kx.expand(symbol.shape[2:]), ky.expand(symbol.shape[2:])
    nyq = GRID.nyquist_mask()  # odd derivatives drop the Nyquist mode (per axis)
    ikx = 1j * kx * (kx.abs() != 16)
    iky = 1j * ky * (ky.abs() != 16)
    damp = -1e-3 * (kx**2 + ky**2) ** 2
    expected = torch.zeros_like(symbol)
    expected[0, 0] = expected[1, 1] = expected[2, 2] = damp
    expected[0, 1], expected[0, 2] = -1.5 * ikx, -1.5 * iky
    expected[1, 0], expected[2, 0] = -2.0 * ikx, -2.0 * iky
    expected[1, 2], expected[2, 1] = 0.7, -0.7
    assert nyq.any()
    torch.testing.assert_close(symbol, expected, atol=1e-9, rtol=1e-9)


def test_solver_conserves_mass_over_a_long_solve():
    pde = ShallowWater2D(g=1.0, f=3.0, H=1.0, nu=1e-5)
    u0 = balanced_initial_condition(pde, GRID, 2, speed=0.2, seed=1)
    trajectory = simulate(pde, u0, torch.linspace(0, 60, 7), grid=GRID, dt=0.1)  # 600 steps
    assert torch.isfinite(trajectory).all()
    mass = pde.mass(trajectory, GRID)  # [B, T]
    drift = ((mass - mass[:, :1]).abs() / mass[:, :1]).max()
    assert drift < 1e-12
    # the flow did evolve (turbulence), so the conservation is not trivial
    assert (trajectory[:, -1] - u0).abs().max() > 1e-2


def test_energy_is_nearly_conserved_without_viscosity():
    pde = ShallowWater2D(g=1.0, f=3.0, H=1.0, nu=0.0)
    # a spectrum well inside the de-aliased band: the 2/3 rule's truncation of the cubic energy
    # flux is then negligible (a broad spectrum on 32^2 loses ~1e-4 in this time, ~1e-8 on 64^2)
    u0 = balanced_initial_condition(pde, GRID, 2, speed=0.1, peak=3.0, width=0.5, seed=2)
    trajectory = simulate(pde, u0, torch.linspace(0, 1.0, 5), grid=GRID, dt=0.02)
    energy = pde.energy(trajectory, GRID)
    assert ((energy - energy[:, :1]).abs() / energy[:, :1]).max() < 1e-6
    # with hyperviscosity, energy decays
    damped = ShallowWater2D(g=1.0, f=3.0, H=1.0, nu=1e-2)
    decayed = damped.energy(simulate(damped, u0, [0.0, 1.0], grid=GRID, dt=0.02), GRID)
    assert (decayed[:, -1] < decayed[:, 0]).all()


@pytest.mark.parametrize("wavevector", [(2, 0), (1, 3)])
def test_balanced_mode_is_steady(wavevector):
    k, l = wavevector
    pde = ShallowWater2D(g=1.0, f=2.0, H=1.0)
    x, y = GRID.meshgrid()
    psi = 0.05 * torch.sin(k * x + l * y)
    state = balanced_state(psi, pde, GRID)
    d = SpectralDerivatives(GRID)
    assert pde.rhs(state[None], d).abs().max() < 1e-13
    final = simulate(pde, state, [0.0, 10.0], grid=GRID, dt=0.05)[-1]
    assert (final - state).abs().max() < 1e-11
    # an unbalanced version of the same mode (no height anomaly) does evolve
    unbalanced = state.clone()
    unbalanced[0] = 1.0
    moved = simulate(pde, unbalanced, [0.0, 1.0], grid=GRID, dt=0.05)[-1]
    assert (moved - unbalanced).abs().max() > 1e-3


def test_uniform_flow_without_rotation_is_steady():
    pde = ShallowWater2D(g=1.0, f=0.0, H=1.0, nu=1e-3)
    state = torch.stack([torch.full((32, 32), 1.0), torch.full((32, 32), 0.3),
                         torch.full((32, 32), -0.2)]).double()
    final = simulate(pde, state, [0.0, 5.0], grid=GRID, dt=0.1)[-1]
    assert (final - state).abs().max() < 1e-13


def test_balanced_initial_condition():
    pde = ShallowWater2D(g=1.0, f=3.0, H=2.0)
    u0 = balanced_initial_condition(pde, GRID, 3, speed=0.2, seed=0)
    assert u0.shape == (3, 3, 32, 32) and u0.dtype == torch.float64
    torch.testing.assert_close(u0[:, 0].mean(dim=(-2, -1)), torch.full((3,), 2.0, dtype=u0.dtype))
    speed = (u0[:, 1] ** 2 + u0[:, 2] ** 2).mean(dim=(-2, -1)).sqrt()
    torch.testing.assert_close(speed, torch.full((3,), 0.2, dtype=u0.dtype))
    # geostrophic balance: f v = g h_x, f u = -g h_y
    d = SpectralDerivatives(GRID)
    h = u0[:, 0]
    torch.testing.assert_close(pde.f * u0[:, 2], pde.g * d.x(h))
    torch.testing.assert_close(pde.f * u0[:, 1], -pde.g * d.y(h))
    # seeded
    torch.testing.assert_close(u0, balanced_initial_condition(pde, GRID, 3, speed=0.2, seed=0))


def test_rhs_with_autograd_derivatives_matches_spectral():
    """The same rhs with autograd derivatives at points (the PINN path) as on the grid."""
    x, y = GRID.meshgrid()

    def fields(x, y):
        h = 1.0 + 0.1 * torch.sin(x) * torch.cos(2 * y)
        u = 0.2 * torch.cos(x + y)
        v = -0.1 * torch.sin(2 * x - y)
        return torch.stack([h, u, v], dim=0)

    for dissipation in ("laplacian", "biharmonic"):
        pde = ShallowWater2D(g=1.3, f=0.8, H=1.0, nu=1e-3, dissipation=dissipation)
        spectral = pde.rhs(fields(x, y)[None], SpectralDerivatives(GRID))[0]
        xs = x.flatten().clone().requires_grad_(True)
        ys = y.flatten().clone().requires_grad_(True)
        points = fields(xs, ys).unsqueeze(-1)  # [3, P, 1]: channels at dim -3
        auto = pde.rhs(points, AutogradDerivatives({"x": xs, "y": ys}))
        torch.testing.assert_close(spectral, auto.detach().reshape(3, 32, 32), atol=1e-10,
                                   rtol=1e-10)


def test_project_mean_exact_and_shapes():
    g = torch.Generator().manual_seed(0)
    u = torch.randn(4, 3, 16, 16, generator=g, dtype=torch.float32) + 5.0
    out = project_mean(u, 7.0, channels=0)
    assert out.dtype == torch.float32 and out.shape == u.shape
    assert torch.equal(out[:, 1:], u[:, 1:])
    assert (spatial_mean(out, channels=0) - 7.0).abs().max() < 1e-6
    # the projection is a uniform shift (the L2-nearest field with that mean)
    shift = out[:, 0] - u[:, 0]
    assert (shift - shift[:, :1, :1]).abs().max() < 1e-5
    # per-sample, per-channel targets; float64 exact
    u64 = u.double()
    target = torch.arange(8, dtype=torch.float64).reshape(4, 2)
    out64 = project_mean(u64, target, channels=[1, 2])
    assert (spatial_mean(out64, channels=[1, 2]) - target).abs().max() < 1e-14
    # trajectories [B, T, C, X, Y]
    traj = torch.randn(2, 5, 3, 8, 8, generator=g, dtype=torch.float64)
    assert spatial_mean(project_mean(traj, 0.0), channels=None).abs().max() < 1e-15
    assert conserved_mass(traj).shape == (2, 5)
    with pytest.raises(ShapeError, match="does not broadcast"):
        project_mean(u, torch.zeros(3), channels=[0, 1])
    with pytest.raises(ShapeError, match="out of range"):
        project_mean(u, 0.0, channels=3)
    # differentiable
    v = u.clone().requires_grad_(True)
    project_mean(v, 1.0, channels=0).square().sum().backward()
    assert torch.isfinite(v.grad).all()


def test_projection_keeps_mass_of_a_perturbing_model_over_500_steps():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, padding_mode="circular"), nn.Tanh(),
                          nn.Conv2d(8, 3, 3, padding=1, padding_mode="circular"))
    pde = ShallowWater2D(g=1.0, f=3.0, H=1.0)
    u0 = balanced_initial_condition(pde, GRID, 2, speed=0.2, seed=3).float()
    projection = MeanProjection.from_state(u0, channels=0)
    mass0 = conserved_mass(u0)

    def step(u):  # a model that perturbs the mass at every step, then relaxes to bounded values
        return u + 0.01 * model(u) - 0.01 * (u - u0)

    with torch.no_grad():
        u_free, u_proj = u0, u0
        worst_free = worst_proj = 0.0
        for _ in range(500):
            u_free, u_proj = step(u_free), projection(step(u_proj))
            worst_free = max(worst_free, float(((conserved_mass(u_free) - mass0) / mass0)
                                               .abs().max()))
            worst_proj = max(worst_proj, float(((conserved_mass(u_proj) - mass0) / mass0)
                                               .abs().max()))
    assert worst_free > 1e-4  # the model alone drifts
    assert worst_proj < 1e-6
    assert torch.isfinite(u_proj).all()


def test_one_step_objective_trains_through_the_loop():
    pde = ShallowWater2D(g=1.0, f=3.0, H=1.0, nu=1e-4)
    data = shallow_water_trajectories(pde, PeriodicGrid((16, 16), 2 * math.pi), 3, steps=4,
                                      dt_out=0.2, dt=0.1, speed=0.1, peak=3.0,
                                      dtype=torch.float32)
    assert data.shape == (3, 5, 3, 16, 16)
    objective = OneStepForecast(data, batch_size=4, seed=0)
    torch.manual_seed(0)
    model = nn.Conv2d(3, 3, 3, padding=1, padding_mode="circular")
    now, later = objective.batch(0)
    assert now.shape == (4, 3, 16, 16)
    # zero model = persistence
    zero = nn.Conv2d(3, 3, 1)
    nn.init.zeros_(zero.weight)
    nn.init.zeros_(zero.bias)
    torch.testing.assert_close(objective.step(zero, now), now)
    result = train(model, objective, [Stage(steps=60, lr=3e-2)],
                   options=TrainOptions(progress=False, log_every=10))
    assert result.history[-1]["loss"] < result.history[0]["loss"]
