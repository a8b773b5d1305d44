"""Three-dimensional periodic problems: the same PDE classes and solver as in 1D and 2D."""

from __future__ import annotations

import math

import pytest
import torch

from scidl.numerics import GaussianRandomField, PeriodicGrid, SpectralDerivatives, simulate
from scidl.pdes import make_pde


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_heat_modes_decay_exactly_in_three_dimensions(dtype):
    grid = PeriodicGrid((16, 12, 8), (1.0, 2.0, 0.5))
    x, y, z = grid.meshgrid()
    k = (2 * math.pi * 3, 2 * math.pi * 2 / 2.0, 2 * math.pi * 1 / 0.5)
    u0 = (torch.sin(k[0] * x) * torch.cos(k[1] * y) * torch.sin(k[2] * z + 0.3)).to(dtype)
    nu, t_final = 0.01, 0.5
    out = simulate(make_pde("heat", nu=nu), u0[None], [0.0, t_final], grid=grid, dt=0.1)
    assert out.shape == (1, 2, 16, 12, 8) and out.dtype == dtype
    exact = u0 * math.exp(-nu * sum(ki**2 for ki in k) * t_final)
    tolerance = 1e-12 if dtype == torch.float64 else 1e-6
    assert float((out[0, -1] - exact).abs().max()) < tolerance


def test_three_dimensional_random_fields_are_smooth_and_solvable():
    grid = PeriodicGrid((16, 16, 16), 1.0)
    field = GaussianRandomField(sigma=1.0, tau=3.0, gamma=2.5)
    u0 = field.sample(2, grid, seed=0)
    assert u0.shape == (2, 16, 16, 16) and torch.isfinite(u0).all()
    # zero mean, and the spectrum decays: the top third of the modes holds little energy
    d = SpectralDerivatives(grid)
    energy = d.transform(u0).abs() ** 2
    k2 = sum(k**2 for k in grid.wavenumbers(torch.float64, None))
    assert float(energy[..., 0, 0, 0].max()) < 1e-20
    high = (k2 > (2 * math.pi * 5) ** 2)
    assert float((energy * high).sum() / energy.sum()) < 0.05
    # the heat equation's L2 norm decays monotonically, the mean stays zero
    out = simulate(make_pde("heat", nu=0.01), u0, torch.linspace(0, 1, 5), grid=grid, dt=0.05)
    norms = out.flatten(2).norm(dim=-1)
    assert bool((norms[:, 1:] < norms[:, :-1]).all())
    assert float(out.mean(dim=(-3, -2, -1)).abs().max()) < 1e-12
