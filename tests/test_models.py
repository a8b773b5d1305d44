"""Models against their mathematics: the spectral convolution against an explicit DFT, resolution
consistency, gradients against finite differences, translation equivariance of the FNO, the
Xavier initialisation of the MLP, input validation and the model registry.
"""

from __future__ import annotations

import math

import pytest
import torch

from scidl.errors import ShapeError
from scidl.models import MLP, FNO1d, SpectralConv1d, build_model, count_parameters

TWO_PI = 2 * math.pi



def band_limited(batch: int, channels: int, n: int, max_mode: int, seed: int = 0,
                 dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Random real trigonometric polynomials of degree ``max_mode`` sampled at ``x_j = j / n``,
    ``[batch, channels, n]``; the same ``seed`` gives the same functions at any ``n``."""
    gen = torch.Generator().manual_seed(seed)
    coefficients = torch.randn(batch, channels, max_mode + 1, 2, dtype=torch.float64,
                               generator=gen)
    x = torch.arange(n, dtype=torch.float64) / n
    m = torch.arange(max_mode + 1, dtype=torch.float64)[:, None]
    cos, sin = torch.cos(TWO_PI * m * x), torch.sin(TWO_PI * m * x)  # [modes, n]
    values = coefficients[..., 0] @ cos + coefficients[..., 1] @ sin
    return values.to(dtype)


def reference_spectral_conv(layer: SpectralConv1d, v: torch.Tensor) -> torch.Tensor:
    """``F^-1(R . F(v))`` written with an explicit DFT matrix and the real inverse sum.

    ``v_hat_k = sum_j v_j exp(-2 pi i k j / N)`` for the kept modes ``k < modes``; the output is
    ``u_j = (1/N) Re[w_0 + 2 sum_{k>=1} w_k exp(2 pi i k j / N)]`` with ``w = R v_hat`` -- a real
    field whose spectrum is ``w`` on ``k < modes`` (and its conjugate mirror), zero elsewhere.
    """
    n = v.shape[-1]
    k = torch.arange(layer.modes[0], dtype=torch.float64)[:, None]
    j = torch.arange(n, dtype=torch.float64)[None, :]
    dft = torch.exp(-2j * math.pi * k * j / n)  # [modes, N]
    v_hat = torch.einsum("bij,kj->bik", v.to(torch.complex128), dft)
    weight = torch.complex(layer.weight[..., 0], layer.weight[..., 1]).to(torch.complex128)
    w = torch.einsum("bik,iok->bok", v_hat, weight)
    multiplicity = torch.full((layer.modes[0],), 2.0, dtype=torch.float64)
    multiplicity[0] = 1.0
    inverse = torch.exp(2j * math.pi * k * j / n).T * multiplicity  # [N, modes]
    return torch.einsum("bok,jk->boj", w, inverse.to(torch.complex128)).real / n


# ------------------------------------------------------------------------------ SpectralConv1d


@pytest.mark.parametrize("n", [16, 17, 24])
def test_spectral_conv_matches_an_explicit_dft(n):
    torch.manual_seed(0)
    layer = SpectralConv1d(3, 2, modes=5).double()
    with torch.no_grad():  # nonzero imaginary parts everywhere, including the constant mode
        layer.weight.normal_()
    v = torch.randn(4, 3, n, dtype=torch.float64)
    with torch.no_grad():
        out = layer(v)
        reference = reference_spectral_conv(layer, v)
    assert out.shape == (4, 2, n) and out.dtype == torch.float64
    assert float((out - reference).abs().max()) < 1e-12
    # it is a convolution: modes >= `modes` are removed, the kept ones are multiplied by R
    spectrum = torch.fft.rfft(out)
    assert float(spectrum[..., 5:].abs().max()) < 1e-12


@torch.no_grad()
def test_spectral_conv_is_the_same_function_at_every_resolution():
    # A band-limited input (degree 7 < N/2) is the same function on 16 and on 32 points; the
    # layer keeps 5 modes of it, so its output must agree at the shared points x_j = j/16.
    torch.manual_seed(1)
    layer = SpectralConv1d(2, 3, modes=5).double()
    with torch.no_grad():
        layer.weight.normal_()
    coarse = layer(band_limited(3, 2, 16, max_mode=7, seed=4))
    fine = layer(band_limited(3, 2, 32, max_mode=7, seed=4))
    assert float((fine[..., ::2] - coarse).abs().max()) < 1e-12
    assert float(coarse.abs().max()) > 0.1  # not trivially zero
    # and the fine output is the band-limited interpolant of the coarse one
    interpolated = torch.fft.irfft(torch.fft.rfft(coarse), n=32) * 2
    assert float((fine - interpolated).abs().max()) < 1e-12


@torch.no_grad()
def test_spectral_conv_keeps_the_nyquist_mode_consistently_and_rejects_smaller_grids():
    # With 10 points and 6 modes the top kept mode, 5, is the Nyquist mode, where irfft keeps
    # only the real part. That is still exact in the sense of sampling: the coarse output equals
    # the output on a finer grid at the shared points (the coarse grid just cannot tell
    # cos(10 pi x + phase) from its samples).
    torch.manual_seed(9)
    layer = SpectralConv1d(1, 2, modes=6).double()
    with torch.no_grad():
        layer.weight.normal_()

    def field(n):
        x = torch.arange(n, dtype=torch.float64) / n
        smooth = band_limited(1, 1, n, max_mode=4, seed=3)
        return smooth + 0.8 * torch.cos(10 * math.pi * x)

    coarse, fine = layer(field(10)), layer(field(20))
    assert float((fine[..., ::2] - coarse).abs().max()) < 1e-12
    assert layer(torch.randn(1, 1, 12, dtype=torch.float64)).shape == (1, 2, 12)
    # fewer than `modes` Fourier modes on the grid: refused, naming both numbers
    for n in (9, 8, 4):
        with pytest.raises(ValueError, match=f"{n} points.*6 modes"):
            layer(torch.randn(1, 1, n, dtype=torch.float64))


def test_spectral_conv_gradients_pass_gradcheck():
    torch.manual_seed(2)
    layer = SpectralConv1d(2, 3, modes=3).double()
    v = torch.randn(2, 2, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(layer, (v,))

    def as_function_of_weight(weight):
        return torch.func.functional_call(layer, {"weight": weight}, (v.detach(),))

    weight = layer.weight.detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(as_function_of_weight, (weight,))


def test_spectral_conv_follows_the_input_dtype():
    layer = SpectralConv1d(1, 1, modes=2)
    assert layer(torch.randn(1, 1, 8)).dtype == torch.float32
    assert layer.double()(torch.randn(1, 1, 8, dtype=torch.float64)).dtype == torch.float64


# ------------------------------------------------------------------------------------- FNO1d


def test_fno_gradients_pass_gradcheck_for_input_and_all_parameters():
    torch.manual_seed(3)
    model = FNO1d(in_channels=2, out_channels=1, modes=3, width=4, layers=2).double()
    u = torch.randn(2, 2, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(model, (u,))

    names = [name for name, _ in model.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_(True) for p in model.parameters())

    def as_function_of_parameters(*values):
        values_by_name = dict(zip(names, values, strict=True))
        return torch.func.functional_call(model, values_by_name, (u.detach(),))

    assert torch.autograd.gradcheck(as_function_of_parameters, params)


@torch.no_grad()
def test_fno_runs_at_any_resolution_and_in_float64():
    torch.manual_seed(4)
    model = FNO1d(in_channels=1, out_channels=2, modes=4, width=8, layers=2)
    for n in (8, 16, 33, 64):
        out = model(torch.randn(3, 1, n))
        assert out.shape == (3, 2, n) and out.dtype == torch.float32
    model64 = model.double()
    u = torch.randn(2, 1, 32, dtype=torch.float64)
    out64 = model64(u)
    assert out64.dtype == torch.float64
    # float32 and float64 evaluate the same function, to single precision
    out32 = model64.float()(u.float())
    assert float((out32.double() - out64).abs().max()) < 1e-4 * float(out64.abs().max())


@torch.no_grad()
def test_one_layer_fno_gives_the_same_values_on_a_finer_grid():
    # Pointwise maps (lift, W, GELU, projection) commute with sampling, and the one spectral
    # layer sees lift(u), which is band-limited when u is; so without the (non band-limited)
    # coordinate channel, a one-layer FNO's outputs on 16 and 48 points agree where the grids
    # share points.
    torch.manual_seed(5)
    model = FNO1d(modes=4, width=6, layers=1, grid_channel=False).double()
    coarse = model(band_limited(2, 1, 16, max_mode=6, seed=7))
    fine = model(band_limited(2, 1, 48, max_mode=6, seed=7))
    assert float((fine[..., ::3] - coarse).abs().max()) < 1e-12


def test_fno_rejects_bad_inputs_with_the_shape_in_the_message():
    model = FNO1d(in_channels=2, modes=4, width=8, layers=1)
    with pytest.raises(ShapeError, match=r"\(2, 16\)"):
        model(torch.randn(2, 16))
    with pytest.raises(ShapeError, match=r"\(1, 1, 2, 16\)"):
        model(torch.randn(1, 1, 2, 16))
    with pytest.raises(ShapeError, match=r"2 channels.*\(3, 1, 16\)"):
        model(torch.randn(3, 1, 16))
    with pytest.raises(ValueError, match="5 points.*4 modes"):
        model(torch.randn(1, 2, 5))  # an rfft of 5 points has only 3 modes


@pytest.mark.parametrize("dtype, tolerance", [(torch.float32, 1e-5), (torch.float64, 1e-12)])
@torch.no_grad()
def test_fno_without_grid_channel_is_translation_equivariant(dtype, tolerance):
    torch.manual_seed(6)
    model = FNO1d(in_channels=1, out_channels=1, modes=6, width=8, layers=3,
                  grid_channel=False).to(dtype)
    u = torch.randn(2, 1, 32, dtype=dtype)
    out = model(u)
    scale = float(out.abs().max())
    for shift in (1, 5, 16, -3):
        shifted = model(torch.roll(u, shift, dims=-1))
        assert float((shifted - torch.roll(out, shift, dims=-1)).abs().max()) < tolerance * scale

    torch.manual_seed(6)
    with_grid = FNO1d(in_channels=1, out_channels=1, modes=6, width=8, layers=3,
                      grid_channel=True).to(dtype)
    out = with_grid(u)
    difference = with_grid(torch.roll(u, 5, dims=-1)) - torch.roll(out, 5, dims=-1)
    # the coordinate channel breaks the symmetry, by far more than round-off
    assert float(difference.abs().max()) > 1e-3 * float(out.abs().max())


def test_fno_parameters_follow_the_architecture():
    model = FNO1d(in_channels=2, out_channels=3, modes=5, width=7, layers=2)
    lift = (2 + 1) * 7 + 7
    fourier_layer = 7 * 7 * 5 * 2 + 7 * 7 + 7
    project = 7 * 14 + 14 + 14 * 3 + 3
    assert count_parameters(model) == lift + 2 * fourier_layer + project
    assert count_parameters(FNO1d(grid_channel=False, modes=5, width=7, layers=2,
                                  in_channels=2, out_channels=3)) == count_parameters(model) - 7


# --------------------------------------------------------------------------------------- MLP


def test_mlp_is_xavier_initialised():
    torch.manual_seed(7)
    model = MLP(64, 32, width=256, hidden_layers=3)
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (64, 256), (256, 256), (256, 256), (256, 32)
    ]
    for layer in linears:
        expected_std = math.sqrt(2.0 / (layer.in_features + layer.out_features))
        weight = layer.weight.detach()
        assert abs(float(weight.std()) / expected_std - 1) < 0.05
        assert abs(float(weight.mean())) < 0.05 * expected_std
        assert torch.equal(layer.bias.detach(), torch.zeros_like(layer.bias))
    # Glorot's point: the signal neither explodes nor vanishes through the tanh layers
    with torch.no_grad():
        out = model(torch.randn(2048, 64))
    assert 0.1 < float(out.std()) < 2.0


def test_mlp_activations_and_errors():
    x = torch.randn(5, 3)
    for name in ("tanh", "gelu", "silu", "relu"):
        assert MLP(3, 2, width=4, hidden_layers=2, activation=name)(x).shape == (5, 2)
    relu = MLP(3, 1, width=4, hidden_layers=1, activation="relu")
    hidden = relu.net[1](relu.net[0](x)).detach()
    assert float(hidden.min()) >= 0.0  # the named activation is the one used
    with pytest.raises(ValueError, match=r"activation must be one of.*'sine'"):
        MLP(3, 1, activation="sine")
    model = MLP(3, 1, width=4, hidden_layers=1)
    with pytest.raises(ShapeError, match=r"\(5, 2\)"):
        model(torch.randn(5, 2))
    with pytest.raises(ShapeError, match=r"\(3,\)"):
        model(torch.randn(3))


def test_mlp_computes_the_composition_of_its_layers():
    torch.manual_seed(8)
    model = MLP(2, 1, width=3, hidden_layers=2).double()
    x = torch.randn(4, 2, dtype=torch.float64)
    a, b, c = (m for m in model.net if isinstance(m, torch.nn.Linear))
    expected = torch.tanh(torch.tanh(x @ a.weight.T + a.bias) @ b.weight.T + b.bias)
    expected = expected @ c.weight.T + c.bias
    assert torch.allclose(model(x), expected, rtol=0, atol=1e-14)


# ---------------------------------------------------------------------------------- registry


def test_build_model_resolves_names_and_rejects_unknown_ones():
    fno = build_model("fno1d", modes=3, width=5, layers=1)
    assert isinstance(fno, FNO1d) and fno.spectral[0].modes == (3,) and len(fno.spectral) == 1
    mlp = build_model("mlp", in_features=2, out_features=1, width=4, hidden_layers=1)
    assert isinstance(mlp, MLP)
    with pytest.raises(ValueError, match=r"unknown model 'transformer'.*'fno1d'.*'mlp'.*'unet'"):
        build_model("transformer")
