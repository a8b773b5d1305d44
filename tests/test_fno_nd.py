"""The n-dimensional FNO: spectral convolution against analytic results, resolution invariance,
translation equivariance, gradients."""

from __future__ import annotations

import math

import pytest
import torch

from scidl.errors import ShapeError
from scidl.models.fno_nd import FNO, SpectralConv


def _plane_wave(shape: tuple[int, ...], k: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    axes = [torch.arange(n, dtype=torch.float64) / n for n in shape]
    coords = torch.meshgrid(*axes, indexing="ij")
    phase = 2 * math.pi * sum(ki * xi for ki, xi in zip(k, coords))
    return torch.cos(phase), phase


@pytest.mark.parametrize(("shape", "k", "index"), [
    ((16, 12), (3, 2), (3, 2)),          # positive first frequency
    ((16, 12), (-2, 1), (2 * 4 - 2, 1)),  # negative first frequency: the second corner block
    ((12, 10, 12), (1, -3, 2), (1, 2 * 4 - 3, 2)),
])
def test_one_fourier_mode_is_multiplied_by_its_weight(shape, k, index):
    conv = SpectralConv(1, 1, 4, ndim=len(shape)).double()
    u, phase = _plane_wave(shape, k)
    weight = torch.view_as_complex(conv.weight.detach())[(0, 0, *index)]
    expected = weight.real * torch.cos(phase) - weight.imag * torch.sin(phase)
    out = conv(u[None, None])[0, 0]
    assert torch.allclose(out, expected, atol=1e-12)
    # a mode above the kept ones is removed entirely
    high, _ = _plane_wave(shape, (5,) + k[1:])
    assert float(conv(high[None, None]).detach().abs().max()) < 1e-12


def test_fno_gives_the_same_values_at_two_resolutions_of_a_smooth_input():
    torch.manual_seed(0)
    model = FNO(ndim=2, modes=4, width=8, layers=1, grid_channels=False).double()
    coarse, _ = _plane_wave((16, 16), (1, 2))
    fine, _ = _plane_wave((48, 48), (1, 2))
    out_coarse = model(coarse[None, None])
    out_fine = model(fine[None, None])
    assert torch.allclose(out_fine[..., ::3, ::3], out_coarse, atol=1e-10)


@pytest.mark.parametrize("ndim", [2, 3])
def test_fno_without_grid_channels_commutes_with_periodic_shifts(ndim):
    torch.manual_seed(1)
    model = FNO(ndim=ndim, in_channels=2, out_channels=3, modes=3, width=6, layers=2,
                grid_channels=False).double()
    u = torch.randn(2, 2, *(8,) * ndim, dtype=torch.float64)
    shifts, dims = (3, -2, 1)[:ndim], tuple(range(2, 2 + ndim))
    shifted = model(torch.roll(u, shifts, dims))
    assert shifted.shape == (2, 3, *(8,) * ndim)
    assert torch.allclose(shifted, torch.roll(model(u), shifts, dims), atol=1e-12)


def test_fno_gradients_match_finite_differences():
    torch.manual_seed(2)
    model = FNO(ndim=2, modes=2, width=3, layers=1).double()
    u = torch.randn(1, 1, 6, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: model(x), (u,))
    weight = model.spectral[0].weight

    def through_weight(w):
        with torch.no_grad():
            weight.copy_(w)
            return model(u.detach())

    # the spectral weights receive the gradient a finite difference predicts
    loss = model(u.detach()).square().sum()
    (grad,) = torch.autograd.grad(loss, weight)
    eps = 1e-6
    direction = torch.randn_like(weight)
    base = weight.detach().clone()
    plus = through_weight(base + eps * direction).square().sum()
    minus = through_weight(base - eps * direction).square().sum()
    through_weight(base)
    assert abs(float((plus - minus) / (2 * eps)) - float((grad * direction).sum())) < 1e-6


def test_fno_rejects_bad_inputs_with_the_shape_in_the_message():
    model = FNO(ndim=2, modes=4, width=4, layers=1)
    with pytest.raises(ShapeError, match=r"\[B, C, N1, N2\]"):
        model(torch.zeros(1, 1, 16))
    with pytest.raises(ShapeError, match="channels"):
        model(torch.zeros(1, 2, 16, 16))
    with pytest.raises(ValueError, match="resolves fewer"):
        model(torch.zeros(1, 1, 6, 16))


def test_padding_runs_the_fourier_layers_on_a_zero_extended_field():
    torch.manual_seed(3)
    padded = FNO(ndim=2, modes=3, width=5, layers=2, grid_channels=False, padding=4).double()
    plain = FNO(ndim=2, modes=3, width=5, layers=2, grid_channels=False).double()
    plain.load_state_dict(padded.state_dict())
    u = torch.randn(2, 1, 12, 10, dtype=torch.float64)
    out = padded(u)
    assert out.shape == (2, 1, 12, 10)
    # the same layers by hand: lift, pad with zeros, Fourier layers, crop, project
    v = plain._channels_last(plain.lift, u)
    v = torch.nn.functional.pad(v, (0, 4, 0, 4))
    for i, (spectral, pointwise) in enumerate(zip(plain.spectral, plain.pointwise)):
        v = spectral(v) + plain._channels_last(pointwise, v)
        if i == 0:
            v = torch.nn.functional.gelu(v)
    expected = plain._channels_last(plain.project, v[..., :12, :10])
    assert torch.allclose(out, expected, atol=1e-12)
    # and it is no longer periodic: a shift does not commute with it
    assert not torch.allclose(padded(torch.roll(u, 3, 2)), torch.roll(out, 3, 2), atol=1e-6)


@pytest.mark.parametrize("shape", [(16,), (15,), (12, 10), (9, 11), (8, 6, 10)])
def test_truncated_transforms_equal_rfftn_on_the_kept_modes(shape):
    from scidl.models.fno_nd import _kept, truncated_irfftn, truncated_rfftn

    torch.manual_seed(4)
    modes = tuple(min(3, n // 2) for n in shape)
    v = torch.randn(2, *shape, 3, dtype=torch.float64)
    full = torch.fft.rfftn(v, dim=tuple(range(1, 1 + len(shape))))
    index = [_kept(n, m, axis == len(shape) - 1)
             for axis, (n, m) in enumerate(zip(full.shape[1:-1], modes))]
    expected = full[(slice(None), *torch.meshgrid(*index, indexing="ij"))]
    got = truncated_rfftn(v, modes)
    assert torch.allclose(got, expected, atol=1e-12)
    # the inverse is irfftn of the spectrum that is zero outside the kept modes
    zeroed = torch.zeros_like(full)
    zeroed[(slice(None), *torch.meshgrid(*index, indexing="ij"))] = expected
    back = torch.fft.irfftn(zeroed, s=shape, dim=tuple(range(1, 1 + len(shape))))
    assert torch.allclose(truncated_irfftn(got, shape, modes), back, atol=1e-12)


@pytest.mark.parametrize("factorization", ["cp", "tucker"])
def test_factorised_spectral_weights_act_as_their_reconstructed_dense_weight(factorization):
    torch.manual_seed(5)
    conv = SpectralConv(8, 6, (4, 3), ndim=2, factorization=factorization, rank=3).double()
    dense = SpectralConv(8, 6, (4, 3), ndim=2).double()
    with torch.no_grad():
        dense.weight.copy_(torch.view_as_real(conv.full_weight()))
    v = torch.randn(2, 8, 10, 9, dtype=torch.float64)
    assert torch.allclose(conv(v), dense(v), atol=1e-12)
    assert sum(p.numel() for p in conv.parameters()) < dense.weight.numel() / 4
    # the reconstructed weight has the dense initialisation's order of magnitude
    with torch.no_grad():
        ratio = float(conv.full_weight().abs().std()
                      / torch.view_as_complex(dense.weight).abs().std())
    assert 0.1 < ratio < 10
    # and the whole model trains through the factors
    model = FNO(ndim=2, modes=3, width=4, layers=1, factorization=factorization, rank=2).double()
    model(torch.randn(1, 1, 8, 8, dtype=torch.float64)).square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_fractional_padding_pads_the_same_share_of_the_domain_at_every_resolution():
    torch.manual_seed(6)
    model = FNO(ndim=1, modes=3, width=5, layers=2, grid_channels=False,
                padding=0.25).double()
    coarse, _ = _plane_wave((16,), (1,))
    fine, _ = _plane_wave((64,), (1,))
    # 4 of 16 and 16 of 64 points: the same padded domain, so a smooth input gives the same
    # function (up to the pointwise layers' resolution of the padding edge)
    with torch.no_grad():
        out_coarse, out_fine = model(coarse[None, None]), model(fine[None, None])
    points = FNO(ndim=1, modes=3, width=5, layers=2, grid_channels=False, padding=4).double()
    points.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert torch.allclose(points(coarse[None, None]), out_coarse, atol=1e-12)
        fixed_error = float((points(fine[None, None])[..., ::4] - out_coarse).abs().max())
    fraction_error = float((out_fine[..., ::4] - out_coarse).abs().max())
    assert fraction_error < 0.5 * fixed_error
    with pytest.raises(ValueError, match="fraction"):
        FNO(ndim=1, padding=1.5)
