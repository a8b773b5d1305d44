"""The PDE residual of gridded trajectories (the PINO physics loss): ~0 on reference data,
converging with the frame spacing, and large for the wrong physics."""

from __future__ import annotations

import math

import pytest
import torch

from scidl.errors import ShapeError
from scidl.numerics import GaussianRandomField, PeriodicGrid, simulate
from scidl.pdes import Burgers, make_pde
from scidl.pdes.trajectory_residual import residual_loss, trajectory_residual

GRID = PeriodicGrid(128, 1.0)


def _reference(frames: int) -> tuple[torch.Tensor, float]:
    u0 = GaussianRandomField.fno_burgers().sample(2, GRID, seed=0)
    t = torch.linspace(0.2, 1.0, frames, dtype=torch.float64)
    times = torch.cat([torch.zeros(1, dtype=torch.float64), t])
    return simulate(Burgers(nu=0.1), u0, times, grid=GRID, dt=1e-3)[:, 1:], float(t[1] - t[0])


def test_residual_of_reference_data_vanishes_at_fourth_order():
    losses = []
    for frames in (21, 41):
        u, dt = _reference(frames)
        losses.append(float(residual_loss(Burgers(nu=0.1), u, dt, GRID).max()))
    assert losses[0] < 1e-7 and losses[1] < 1e-9
    # the loss is a squared residual: fourth order means about 2^8 per halving of dt
    assert losses[0] / losses[1] > 2**6
    # the wrong viscosity is O(1) wrong
    u, dt = _reference(41)
    assert float(residual_loss(Burgers(nu=0.12), u, dt, GRID).min()) > 1e-2


def test_residual_of_a_two_dimensional_exact_solution():
    # heat equation: u = exp(-nu |k|^2 t) sin(2 pi x) cos(4 pi y) exactly
    grid = PeriodicGrid((16, 16), 1.0)
    x, y = grid.meshgrid()
    nu, dt = 0.01, 0.01
    t = torch.arange(9, dtype=torch.float64) * dt
    decay = torch.exp(-nu * (4 * math.pi**2 * 5) * t)
    u = (decay[:, None, None] * torch.sin(2 * math.pi * x) * torch.cos(4 * math.pi * y))[None]
    residual = trajectory_residual(make_pde("heat", nu=nu), u, dt, grid, accuracy=6)
    assert residual.shape == (1, 3, 16, 16)
    assert float(residual.abs().max()) < 1e-9


def test_residual_rejects_short_or_misshaped_trajectories():
    u, dt = _reference(21)
    with pytest.raises(ShapeError, match="frames"):
        trajectory_residual(Burgers(nu=0.1), u[:, :4], dt, GRID)
    with pytest.raises(ShapeError, match="128"):
        trajectory_residual(Burgers(nu=0.1), u[..., :64], dt, GRID)
