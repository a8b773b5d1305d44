"""Convolutional baselines: shapes in 1-3D, periodic shift equivariance, a learned smoothing."""

from __future__ import annotations

import pytest
import torch

from scidl.errors import ShapeError
from scidl.models.unet import ResNetCNN, UNet


@pytest.mark.parametrize("ndim", [1, 2, 3])
@pytest.mark.parametrize("kind", [UNet, ResNetCNN])
def test_convolutional_baselines_commute_with_shifts_by_the_coarsest_stride(kind, ndim):
    torch.manual_seed(0)
    model = kind(ndim=ndim, in_channels=2, out_channels=3, width=4).double().eval()
    u = torch.randn(2, 2, *(16,) * ndim, dtype=torch.float64)
    out = model(u)
    assert out.shape == (2, 3, *(16,) * ndim)
    # periodic padding: shifts by a multiple of the pooling stride 2^3 commute with the model
    dims = tuple(range(2, 2 + ndim))
    shifted = model(torch.roll(u, (8,) * ndim, dims))
    assert torch.allclose(shifted, torch.roll(out, (8,) * ndim, dims), atol=1e-12)


def test_unet_learns_a_periodic_smoothing_map():
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(1)
    u = torch.randn(64, 1, 32, generator=generator)
    target = (torch.roll(u, 1, -1) + u + torch.roll(u, -1, -1)) / 3
    model = UNet(ndim=1, width=8, levels=2)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(300):
        loss = (model(u) - target).square().mean() / target.square().mean()
        first = float(loss.detach()) if first is None else first
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert float(loss.detach()) < 0.05 < first


def test_unet_rejects_grids_it_cannot_pool():
    with pytest.raises(ValueError, match="divisible"):
        UNet(ndim=1, levels=3)(torch.zeros(1, 1, 20))
    with pytest.raises(ShapeError, match="channels"):
        UNet(ndim=2, levels=1)(torch.zeros(1, 2, 8, 8))
