"""Derivative operators and periodic grids, checked against exact derivatives.

Spectral derivatives must be exact to round-off on trigonometric polynomials the grid resolves;
autograd derivatives must match closed forms, and the two must agree on a smooth periodic network.
"""

from __future__ import annotations

import math

import pytest
import torch

from scidl.errors import ShapeError
from scidl.numerics import AutogradDerivatives, PeriodicGrid, SpectralDerivatives

TWO_PI = 2 * math.pi


def relative_max_error(approx: torch.Tensor, exact: torch.Tensor) -> float:
    return float((approx - exact).abs().max() / exact.abs().max())


def plane_wave(coords, modes, amplitude, lengths, orders=None):
    """``Re(A exp(i k.x))`` with ``k_j = 2 pi m_j / L_j`` and, given ``orders``, its exact
    mixed derivative ``Re(A prod_j (i k_j)^{n_j} exp(i k.x))``."""
    ks = [TWO_PI * m / L for m, L in zip(modes, lengths, strict=True)]
    phase = sum(k * x for k, x in zip(ks, coords, strict=True))
    factor = complex(amplitude)
    for k, n in zip(ks, orders or [0] * len(ks), strict=True):
        factor *= (1j * k) ** n
    return (factor * torch.exp(1j * phase)).real


# ------------------------------------------------------------------------------------- grids


@pytest.mark.parametrize("n, length", [(16, 1.0), (15, TWO_PI), (8, 3.0)])
def test_grid_coordinates_and_wavenumbers_match_the_fft_conventions(n, length):
    grid = PeriodicGrid(n, length)
    (x,) = grid.coordinates()
    assert torch.allclose(x, torch.arange(n, dtype=torch.float64) * length / n, rtol=0, atol=1e-15)
    assert grid.spacing == pytest.approx((length / n,))
    (k,) = grid.wavenumbers()
    expected = TWO_PI / length * torch.arange(n // 2 + 1, dtype=torch.float64)
    assert torch.allclose(k, expected, rtol=1e-15, atol=0)
    (m,) = grid.integer_wavenumbers()
    assert torch.allclose(m, torch.arange(n // 2 + 1, dtype=torch.float64), atol=1e-12)


def test_2d_wavenumbers_use_fftfreq_then_rfftfreq():
    grid = PeriodicGrid((6, 8), (1.0, 2.0))
    kx, ky = grid.wavenumbers()
    assert kx.shape == (6, 1) and ky.shape == (1, 5)
    assert torch.allclose(kx.flatten(), TWO_PI * torch.tensor([0, 1, 2, -3, -2, -1.0]).double())
    assert torch.allclose(ky.flatten(), TWO_PI / 2 * torch.arange(5).double())


@pytest.mark.parametrize("n", [32, 33, 48])
def test_dealias_mask_keeps_exactly_the_modes_below_a_third_of_n(n):
    grid = PeriodicGrid(n)
    mask = grid.dealias_mask()
    kept = torch.arange(n // 2 + 1)[mask]
    assert kept.tolist() == [k for k in range(n // 2 + 1) if 3 * k < n]


def test_2d_dealias_and_nyquist_masks():
    grid = PeriodicGrid((12, 9))
    kx, ky = (k.round().long() for k in grid.integer_wavenumbers())
    mask = grid.dealias_mask()
    assert torch.equal(mask, (kx.abs() < 4) & (ky.abs() < 3))
    nyquist = grid.nyquist_mask()
    assert torch.equal(nyquist.expand(12, 5), (kx != -6).expand(12, 5))  # 9 is odd: no y Nyquist


@pytest.mark.parametrize("shape", [1, (4, 1), (2, 2, 2, 2), ()])
def test_grid_rejects_bad_shapes(shape):
    with pytest.raises(ValueError):
        PeriodicGrid(shape)


def test_grid_rejects_bad_lengths():
    with pytest.raises(ValueError):
        PeriodicGrid(8, 0.0)
    with pytest.raises(ValueError):
        PeriodicGrid((8, 8), (1.0, 2.0, 3.0))


# ----------------------------------------------------------------------- spectral derivatives


@pytest.mark.parametrize("length", [1.0, TWO_PI])
@pytest.mark.parametrize("n_points", [32, 33])
@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_spectral_derivative_of_sines_and_cosines_is_exact(length, n_points, order):
    grid = PeriodicGrid(n_points, length)
    d = SpectralDerivatives(grid)
    (x,) = grid.meshgrid()
    modes = [1, 2, 5, 11, 15]  # all below the Nyquist mode 16
    amplitudes = [1.0, 1j, 0.3 - 2j, 2.0, -0.5j]  # cos, sin and mixed phases
    waves = list(zip(modes, amplitudes, strict=True))
    u = torch.stack([plane_wave([x], [m], a, [length]) for m, a in waves])
    exact = torch.stack([plane_wave([x], [m], a, [length], [order]) for m, a in waves])
    named = {1: d.x, 2: d.xx, 3: d.xxx, 4: d.xxxx}[order]
    for result in (d.derivative(u, x=order), named(u)):
        assert result.dtype == torch.float64
        for row, exact_row in zip(result, exact, strict=True):
            assert relative_max_error(row, exact_row) < 1e-10


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_spectral_derivative_in_float32_is_accurate_to_single_precision(order):
    length = TWO_PI
    grid = PeriodicGrid(64, length)
    d = SpectralDerivatives(grid)
    (x,) = grid.meshgrid()
    u = plane_wave([x], [3], 1 - 0.5j, [length]) + plane_wave([x], [9], 0.25j, [length])
    exact = plane_wave([x], [3], 1 - 0.5j, [length], [order])
    exact = exact + plane_wave([x], [9], 0.25j, [length], [order])
    result = d.derivative(u.float(), x=order)
    assert result.dtype == torch.float32
    assert relative_max_error(result.double(), exact) < 1e-4


@pytest.mark.parametrize(
    "shape, lengths", [((32, 24), (1.0, TWO_PI)), ((12, 10, 16), (1.0, 2.0, TWO_PI))]
)
def test_spectral_mixed_derivatives_and_laplacian_in_2d_and_3d(shape, lengths):
    grid = PeriodicGrid(shape, lengths)
    d = SpectralDerivatives(grid)
    coords = grid.meshgrid()
    waves = [((3, -2, 1)[: grid.ndim], 1 - 1j), ((-5, 4, 7)[: grid.ndim], 0.5)]

    def field(orders=None):
        return sum(plane_wave(coords, m, a, lengths, orders) for m, a in waves)

    u = field()
    dims = d.spatial_dims
    cases = [{"x": 1, dims[1]: 1}, {"x": 2, dims[1]: 1}, {dims[-1]: 3}, {"x": 1, dims[-1]: 2}]
    for orders in cases:
        exact = field([orders.get(name, 0) for name in dims])
        assert relative_max_error(d.derivative(u, **orders), exact) < 1e-10
    laplacian = sum(field([2 if j == i else 0 for j in range(grid.ndim)]) for i in range(grid.ndim))
    assert relative_max_error(d.laplacian(u), laplacian) < 1e-10
    assert relative_max_error(d.y(u), field([0, 1, 0][: grid.ndim])) < 1e-10
    assert relative_max_error(d.yy(u), field([0, 2, 0][: grid.ndim])) < 1e-10
    if grid.ndim == 3:
        assert relative_max_error(d.zz(u), field([0, 0, 2])) < 1e-10


@pytest.mark.parametrize("length", [1.0, TWO_PI])
def test_nyquist_mode_has_zero_odd_derivatives_and_exact_even_ones(length):
    n = 16
    grid = PeriodicGrid(n, length)
    d = SpectralDerivatives(grid)
    (x,) = grid.meshgrid()
    k = (n / 2) * TWO_PI / length
    u = torch.cos(k * x)  # (-1)^j on the grid
    assert torch.allclose(u, torch.tensor([(-1.0) ** j for j in range(n)]).double(), atol=1e-12)
    assert d.x(u).abs().max() < 1e-12
    assert d.xxx(u).abs().max() < 1e-12
    assert relative_max_error(d.xx(u), -(k**2) * u) < 1e-12
    assert relative_max_error(d.xxxx(u), k**4 * u) < 1e-12


def test_nyquist_mode_in_2d_is_zeroed_only_by_odd_derivatives_along_its_own_dimension():
    grid = PeriodicGrid((8, 6))
    d = SpectralDerivatives(grid)
    x, y = grid.meshgrid()
    u = torch.cos(4 * TWO_PI * x) * torch.cos(TWO_PI * y)
    assert d.x(u).abs().max() < 1e-12
    # ...while its y-derivative is representable and must be kept
    expected_y = -TWO_PI * torch.cos(4 * TWO_PI * x) * torch.sin(TWO_PI * y)
    assert relative_max_error(d.y(u), expected_y) < 1e-12
    assert relative_max_error(d.derivative(u, y=3), TWO_PI**2 * -expected_y) < 1e-12


def test_spectral_derivative_of_a_constant_is_zero_and_order_zero_is_identity():
    grid = PeriodicGrid(10)
    d = SpectralDerivatives(grid)
    u = torch.full((3, 10), 2.5, dtype=torch.float64)
    assert d.x(u).abs().max() < 1e-14
    assert d.xx(u).abs().max() < 1e-12 * (TWO_PI * 5) ** 2  # round-off times k_max^2
    assert d.derivative(u) is u
    assert d.derivative(u, x=0) is u


def test_spectral_derivative_is_not_stale_after_an_in_place_update():
    # The forward FFT is cached per tensor; an in-place change must invalidate it.
    grid = PeriodicGrid(16)
    d = SpectralDerivatives(grid)
    (x,) = grid.meshgrid()
    u = torch.sin(TWO_PI * x)
    first = d.x(u)
    u.mul_(3.0)
    assert relative_max_error(d.x(u), 3 * first) < 1e-12


def test_spectral_derivative_is_linear_and_backpropagates():
    grid = PeriodicGrid(24, TWO_PI)
    d = SpectralDerivatives(grid)
    gen = torch.Generator().manual_seed(1)
    u = torch.randn(24, dtype=torch.float64, generator=gen, requires_grad=True)
    w = torch.randn(24, dtype=torch.float64, generator=gen)
    # <w, D2 u> = <D2 w, u>: the second derivative is self-adjoint on the grid.
    (grad,) = torch.autograd.grad((w * d.xx(u)).sum(), u)
    assert relative_max_error(grad, SpectralDerivatives(grid).xx(w)) < 1e-12


# ------------------------------------------------------------------------ autograd derivatives


@pytest.mark.parametrize("column", [False, True])
def test_autograd_derivatives_of_an_analytic_function(column):
    gen = torch.Generator().manual_seed(0)
    shape = (50, 1) if column else (50,)
    x = (TWO_PI * torch.rand(shape, dtype=torch.float64, generator=gen)).requires_grad_()
    t = torch.rand(shape, dtype=torch.float64, generator=gen).requires_grad_()
    d = AutogradDerivatives({"x": x, "t": t})
    u = torch.sin(x) * torch.exp(-t)
    xs, ts = x.detach(), t.detach()
    decay = torch.exp(-ts)
    assert torch.allclose(d.x(u), torch.cos(xs) * decay, rtol=0, atol=1e-12)
    assert torch.allclose(d.xx(u), -torch.sin(xs) * decay, rtol=0, atol=1e-12)
    assert torch.allclose(d.xxx(u), -torch.cos(xs) * decay, rtol=0, atol=1e-12)
    assert torch.allclose(d.xxxx(u), torch.sin(xs) * decay, rtol=0, atol=1e-12)
    assert torch.allclose(d.t(u), -torch.sin(xs) * decay, rtol=0, atol=1e-12)
    assert torch.allclose(d.derivative(u, x=1, t=1), -torch.cos(xs) * decay, rtol=0, atol=1e-12)
    assert torch.allclose(d.laplacian(u), -torch.sin(xs) * decay, rtol=0, atol=1e-12)
    assert d.x(u).shape == u.shape


def test_autograd_laplacian_in_two_dimensions():
    gen = torch.Generator().manual_seed(1)
    x, y = (torch.rand(40, dtype=torch.float64, generator=gen).requires_grad_() for _ in "xy")
    d = AutogradDerivatives({"x": x, "y": y})
    u = torch.sin(2 * x) * torch.cos(3 * y)
    assert d.spatial_dims == ("x", "y")
    assert torch.allclose(d.laplacian(u), -13 * u.detach(), rtol=0, atol=1e-12)
    expected_xy = -6 * torch.cos(2 * x.detach()) * torch.sin(3 * y.detach())
    assert torch.allclose(d.derivative(u, x=1, y=1), expected_xy, rtol=0, atol=1e-12)


def test_autograd_derivatives_of_polynomials_and_coordinate_free_terms_are_exact():
    # Derivatives that become constant (or vanish) must give exact zeros, not an autograd error:
    # a PINN ansatz may well be linear in a coordinate.
    gen = torch.Generator().manual_seed(2)
    x, t = (torch.rand(20, dtype=torch.float64, generator=gen).requires_grad_() for _ in "xt")
    d = AutogradDerivatives({"x": x, "t": t})
    linear = 3 * x + torch.sin(t)
    assert torch.allclose(d.x(linear), torch.full_like(linear, 3.0), rtol=0, atol=1e-14)
    assert d.xx(linear).abs().max() == 0
    assert d.derivative(linear, x=1, t=1).abs().max() == 0
    cubic = x**3
    assert torch.allclose(d.xxx(cubic), torch.full_like(cubic, 6.0), rtol=0, atol=1e-12)
    assert d.xxxx(cubic).abs().max() == 0
    space_only = torch.sin(x)
    assert d.t(space_only).abs().max() == 0
    assert d.derivative(space_only, t=2).abs().max() == 0


def test_autograd_cache_does_not_mix_up_different_fields():
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(30, dtype=torch.float64, generator=gen).requires_grad_()
    d = AutogradDerivatives({"x": x})
    first, second = torch.sin(x), torch.sin(2 * x)
    assert torch.allclose(d.x(first), torch.cos(x.detach()), atol=1e-14)
    assert torch.allclose(d.x(second), 2 * torch.cos(2 * x.detach()), atol=1e-14)
    assert torch.allclose(d.xx(first), -torch.sin(x.detach()), atol=1e-14)


def test_autograd_and_spectral_derivatives_agree_on_a_periodic_network():
    torch.manual_seed(0)
    network = torch.nn.Sequential(
        torch.nn.Linear(2, 32), torch.nn.Tanh(),
        torch.nn.Linear(32, 32), torch.nn.Tanh(),
        torch.nn.Linear(32, 1),
    ).double()
    grid = PeriodicGrid(128)
    (x,) = grid.coordinates()
    x = x.clone().requires_grad_()
    # Periodic features make the network a smooth (analytic) function on the circle [0, 1).
    u = network(torch.stack([torch.sin(TWO_PI * x), torch.cos(TWO_PI * x)], dim=-1)).squeeze(-1)
    autograd = AutogradDerivatives({"x": x})
    spectral = SpectralDerivatives(grid)
    field = u.detach()
    # Fourier coefficients decay exponentially, so 128 points leave only round-off (~1e-13).
    assert relative_max_error(spectral.x(field), autograd.x(u).detach()) < 1e-10
    assert relative_max_error(spectral.xx(field), autograd.xx(u).detach()) < 1e-10
    assert relative_max_error(spectral.xxx(field), autograd.xxx(u).detach()) < 1e-9
    assert autograd.xx(u).abs().max() > 1.0  # a nontrivial field, not a near-constant


# ------------------------------------------------------------------------------------ errors


def test_unknown_dimension_names_raise_value_error():
    grid = PeriodicGrid(8)
    d = SpectralDerivatives(grid)
    u = torch.zeros(8, dtype=torch.float64)
    for call in (lambda: d.derivative(u, y=1), lambda: d.y(u), lambda: d.t(u),
                 lambda: d.derivative(u, q=1)):
        with pytest.raises(ValueError, match="dimension"):
            call()
    with pytest.raises(ValueError):
        d.derivative(u, x=-1)
    x = torch.rand(5, dtype=torch.float64, requires_grad=True)
    auto = AutogradDerivatives({"x": x})
    with pytest.raises(ValueError, match="dimension"):
        auto.derivative(torch.sin(x), t=1)
    with pytest.raises(ValueError):
        AutogradDerivatives({"w": x})
    with pytest.raises(ValueError, match="requires_grad"):
        AutogradDerivatives({"x": x.detach()})


@pytest.mark.parametrize("grid_shape, field_shape", [(32, (31,)), (32, (32, 2)), ((8, 8), (8, 9))])
def test_field_of_the_wrong_shape_raises_shape_error(grid_shape, field_shape):
    d = SpectralDerivatives(PeriodicGrid(grid_shape))
    with pytest.raises(ShapeError, match="grid shape"):
        d.x(torch.zeros(field_shape, dtype=torch.float64))


def test_inverse_laplacian_solves_the_periodic_poisson_problem():
    grid = PeriodicGrid((32, 24), (1.0, 2.0))
    d = SpectralDerivatives(grid)
    x, y = d.coordinate("x"), d.coordinate("y")
    psi = torch.sin(2 * math.pi * x) * torch.cos(3 * math.pi * y) + torch.cos(4 * math.pi * x)
    rhs = d.laplacian(psi) + 5.0  # a mean that Poisson on a torus cannot match
    recovered = d.inverse_laplacian(rhs)
    assert torch.allclose(recovered, psi - psi.mean(), atol=1e-12)
    assert abs(float(recovered.mean())) < 1e-14


def test_coordinates_are_the_grid_points_or_the_collocation_points():
    grid = PeriodicGrid((8, 4), (2.0, 1.0))
    d = SpectralDerivatives(grid)
    assert torch.equal(d.coordinate("x")[:, 0], torch.arange(8, dtype=torch.float64) * 0.25)
    assert torch.equal(d.coordinate("y")[0], torch.arange(4, dtype=torch.float64) * 0.25)
    with pytest.raises(ValueError, match="'z'"):
        d.coordinate("z")
    x = torch.rand(5, 1, requires_grad=True)
    assert AutogradDerivatives({"x": x}).coordinate("x") is x
