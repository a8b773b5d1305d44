"""DeepONet and POD-DeepONet: the operator form, point queries, learning the antiderivative."""

from __future__ import annotations

import math

import pytest
import torch

from scidl.errors import ShapeError
from scidl.models.deeponet import DeepONet, PODDeepONet
from scidl.numerics import GaussianRandomField, PeriodicGrid


def test_deeponet_is_a_dot_product_of_branch_and_trunk():
    torch.manual_seed(0)
    model = DeepONet(sensors=10, coordinates=2, basis=7, width=16, hidden_layers=2).double()
    u = torch.randn(3, 10, dtype=torch.float64)
    y = torch.rand(5, 2, dtype=torch.float64)
    out = model(u, y)
    expected = model.branch(u) @ model.trunk_activation(model.trunk(y)).T + model.bias
    assert out.shape == (3, 5) and torch.allclose(out, expected)
    # per-sample query points give the same values as shared ones
    per_sample = model(u, y.expand(3, 5, 2))
    assert torch.allclose(per_sample, out, atol=1e-14)
    with pytest.raises(ShapeError, match="sensor values"):
        model(torch.zeros(3, 9), y)
    with pytest.raises(ShapeError, match="coordinates"):
        model(u, torch.zeros(5, 3))


def test_deeponet_learns_the_antiderivative_operator():
    # the classic example of Lu et al. (2021): G(u)(y) = int_0^y u(s) ds, from GRF inputs
    torch.manual_seed(0)
    grid = PeriodicGrid(64, 1.0)
    field = GaussianRandomField(sigma=1.0, tau=3.0, gamma=2.0)
    u = field.sample(600, grid, seed=1).float()
    u = u / u.std()  # unit-size inputs (the integral is then of order 0.1)
    # cumulative trapezoid on the periodic grid, read at the grid points
    integral = torch.cumsum(u, dim=1) / 64 - u / 128 - u[:, :1] / 128
    y = grid.coordinates()[0][:, None].float()
    train_u, test_u = u[:500], u[500:]
    train_g, test_g = integral[:500], integral[500:]
    model = DeepONet(sensors=64, coordinates=1, basis=32, width=64, hidden_layers=2,
                     activation="relu")
    optimiser = torch.optim.Adam(model.parameters(), lr=2e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, 1200)
    for step in range(1200):
        batch = torch.randint(0, 500, (50,), generator=torch.Generator().manual_seed(step))
        loss = (model(train_u[batch], y) - train_g[batch]).square().mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
    with torch.no_grad():
        error = (model(test_u, y) - test_g).norm(dim=1) / test_g.norm(dim=1)
    assert float(error.median()) < 0.1


def test_pod_deeponet_basis_spans_low_rank_targets_exactly():
    torch.manual_seed(0)
    x = torch.linspace(0, 1, 50, dtype=torch.float64)
    modes = torch.stack([torch.sin(math.pi * k * x) for k in (1, 2, 3)])  # [3, 50]
    targets = 2.0 + torch.randn(40, 3, dtype=torch.float64) @ modes
    model = PODDeepONet(sensors=4, modes=3, width=8, hidden_layers=1).double()
    captured = model.fit_basis(targets)
    assert float(captured) == pytest.approx(1.0, abs=1e-12)
    basis = model.basis  # [50, 3], orthogonal with unit RMS
    assert torch.allclose(basis.T @ basis / 50, torch.eye(3, dtype=torch.float64), atol=1e-12)
    coefficients = (targets - model.mean) @ basis / 50**0.5
    rebuilt = model.mean + coefficients @ basis.T / 50**0.5
    assert torch.allclose(rebuilt, targets, atol=1e-10)
    out = model(torch.randn(6, 4, dtype=torch.float64))
    assert out.shape == (6, 50)
    # a checkpoint restores the basis into a fresh model
    fresh = PODDeepONet(sensors=4, modes=3, width=8, hidden_layers=1).double()
    fresh.load_state_dict(model.state_dict())
    u = torch.randn(2, 4, dtype=torch.float64)
    assert torch.equal(fresh(u), model(u))
    with pytest.raises(RuntimeError, match="fit_basis"):
        PODDeepONet(sensors=4, modes=3)(torch.zeros(1, 4))


@pytest.mark.parametrize("periodic", [True, False])
def test_grid_deeponet_reads_its_sensors_from_finer_grids_and_queries_any_grid(periodic):
    from scidl.models.deeponet import GridDeepONet

    torch.manual_seed(0)
    coarse, fine = (8, 32) if periodic else (9, 33)
    model = GridDeepONet(1, (coarse,), basis=6, width=16, hidden_layers=1,
                         periodic=periodic).double()
    axis = (torch.arange(fine) / fine if periodic else torch.linspace(0, 1, fine)).double()
    u_fine = torch.sin(2 * torch.pi * axis)[None, None]
    stride = fine // coarse if periodic else (fine - 1) // (coarse - 1)
    u_coarse = u_fine[..., ::stride]
    out_fine, out_coarse = model(u_fine), model(u_coarse)
    assert out_fine.shape == (1, 1, fine) and out_coarse.shape == (1, 1, coarse)
    # the same function at the shared points: the fine query contains the coarse one
    assert torch.allclose(out_fine[..., ::stride], out_coarse, atol=1e-12)
    with pytest.raises(ValueError, match="does not contain"):
        model(u_fine[..., :fine - 3])


def test_grid_pod_deeponet_fits_its_basis_on_grids_and_refuses_other_grids():
    from scidl.models.deeponet import GridPODDeepONet

    torch.manual_seed(1)
    targets = torch.randn(20, 1, 6, 5, dtype=torch.float64)
    model = GridPODDeepONet(2, (6, 5), modes=4, width=8).double()
    model.fit_basis(targets)
    assert model(torch.randn(3, 2, 6, 5, dtype=torch.float64)).shape == (3, 1, 6, 5)
    with pytest.raises(ValueError, match="training grid"):
        model(torch.randn(3, 2, 12, 10, dtype=torch.float64))
