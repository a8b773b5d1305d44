"""Central finite-difference derivatives on periodic grids: exact stencils, fitted convergence
orders against autograd-exact derivatives, mixed derivatives in 2D and 3D, and the shared
``Derivatives`` interface (a PDE's rhs runs unchanged on them)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from scidl.errors import ShapeError
from scidl.numerics.derivatives import AutogradDerivatives, Derivatives, SpectralDerivatives
from scidl.numerics.finite_differences import (
    FiniteDifferenceDerivatives,
    central_difference_weights,
)
from scidl.numerics.grids import PeriodicGrid
from scidl.pdes.kuramoto_sivashinsky import KuramotoSivashinsky

TWO_PI = 2 * math.pi


def fitted_order(sizes: list[int], errors: list[float]) -> float:
    """Slope of log(error) against log(h), h = L / N."""
    return float(np.polyfit(-np.log(sizes), np.log(errors), 1)[0])


def exact_derivatives(x: torch.Tensor, max_order: int) -> list[torch.Tensor]:
    """``f = exp(sin(x)) + 0.3 cos(2x)`` and its first ``max_order`` derivatives, exact to
    round-off by nested autograd (a smooth periodic function that is not a trig polynomial)."""
    x = x.clone().requires_grad_()
    u = torch.exp(torch.sin(x)) + 0.3 * torch.cos(2 * x)
    d = AutogradDerivatives({"x": x})
    return [d.derivative(u, x=m).detach() for m in range(max_order + 1)]


@pytest.mark.parametrize("accuracy", [2, 4])
@pytest.mark.parametrize("derivative", [1, 2, 3, 4])
def test_convergence_order_on_a_smooth_periodic_function(derivative, accuracy):
    # Measured slopes (m = 1..4): order 2 -> 1.98, 1.99, 1.97, 1.98; order 4 -> 3.97, 3.98,
    # 3.95, 3.95. (Starting at N = 16 gives 3.81..3.91: still pre-asymptotic there.)
    sizes = [32, 64, 128, 256]
    errors = []
    for n in sizes:
        grid = PeriodicGrid(n, TWO_PI)
        (x,) = grid.meshgrid()
        values = exact_derivatives(x, derivative)
        approx = FiniteDifferenceDerivatives(grid, accuracy).derivative(values[0], x=derivative)
        errors.append(float((approx - values[derivative]).abs().max()))
    assert abs(fitted_order(sizes, errors) - accuracy) < 0.3
    assert errors[-1] < errors[0] / 2 ** (accuracy * 3 - 1)


def test_stencils_are_the_classical_tables():
    # Fornberg (1988), Table 1 -- central differences of accuracy 2 and 4
    F = Fraction
    assert central_difference_weights(1, 2) == (F(-1, 2), 0, F(1, 2))
    assert central_difference_weights(1, 4) == (F(1, 12), F(-2, 3), 0, F(2, 3), F(-1, 12))
    assert central_difference_weights(2, 4) == (F(-1, 12), F(4, 3), F(-5, 2), F(4, 3), F(-1, 12))
    assert central_difference_weights(3, 2) == (F(-1, 2), 1, 0, -1, F(1, 2))
    assert central_difference_weights(4, 4) == (
        F(-1, 6), 2, F(-13, 2), F(28, 3), F(-13, 2), 2, F(-1, 6)
    )
    # any even accuracy: 6th-order second derivative
    assert central_difference_weights(2, 6)[3] == F(-49, 18)
    with pytest.raises(ValueError, match="even accuracy"):
        central_difference_weights(2, 3)


def test_modified_wavenumber_of_the_second_order_first_derivative():
    # On sin(k x) the 3-point stencil gives sin(k h) / h * cos(k x) exactly (von Neumann analysis).
    n, length, mode = 40, 3.0, 7
    grid = PeriodicGrid(n, length)
    (x,) = grid.meshgrid()
    k, h = TWO_PI * mode / length, length / n
    derivative = FiniteDifferenceDerivatives(grid, 2).x(torch.sin(k * x))
    expected = math.sin(k * h) / h * torch.cos(k * x)
    assert float((derivative - expected).abs().max()) < 1e-12 * k


def test_mixed_derivatives_and_laplacian_in_two_and_three_dimensions():
    # u = sin(x) cos(2 y) exp(sin(z)): errors shrink by 2^4 per halving of h at order 4
    errors = []
    for n in (16, 32):
        grid = PeriodicGrid((n, n, n), (TWO_PI,) * 3)
        x, y, z = grid.meshgrid()
        u = torch.sin(x) * torch.cos(2 * y) * torch.exp(torch.sin(z))
        d = FiniteDifferenceDerivatives(grid, 4)
        mixed = d.derivative(u, x=1, y=1)
        exact_mixed = -2 * torch.cos(x) * torch.sin(2 * y) * torch.exp(torch.sin(z))
        ezz = (torch.cos(z) ** 2 - torch.sin(z)) * torch.exp(torch.sin(z))
        exact_laplacian = -5 * u + torch.sin(x) * torch.cos(2 * y) * ezz
        errors.append((float((mixed - exact_mixed).abs().max()),
                       float((d.laplacian(u) - exact_laplacian).abs().max())))
    for coarse, fine in zip(*errors, strict=True):
        assert 2**3.7 < coarse / fine < 2**4.3
    grid2 = PeriodicGrid((32, 24), (1.0, 2.0))
    x, y = grid2.meshgrid()
    u = torch.sin(TWO_PI * x) * torch.cos(math.pi * y)
    d2 = FiniteDifferenceDerivatives(grid2, 4)
    assert torch.allclose(d2.y(d2.x(u)), d2.derivative(u, x=1, y=1), rtol=0, atol=1e-12)
    assert torch.equal(d2.coordinate("y"), y)


def test_same_interface_as_spectral_derivatives_and_a_pde_rhs_runs_on_both():
    # Kuramoto-Sivashinsky's rhs (with u_xxxx) on FD derivatives converges to the spectral one,
    # by 2^p per halving of h. Measured errors at N = 64 / 128: order 2: 1.8e-3 / 4.6e-4,
    # order 4: 1.5e-5 / 9.4e-7, order 6: 1.3e-7 / 2.0e-9.
    pde = KuramotoSivashinsky()
    errors = {}
    for n in (64, 128):
        grid = PeriodicGrid(n, 22.0)
        (x,) = grid.meshgrid()
        u = (torch.cos(TWO_PI * x / 22) * (1 + torch.sin(TWO_PI * x / 22)))[None]
        spectral = pde.rhs(u, SpectralDerivatives(grid))
        for order in (2, 4, 6):
            d = FiniteDifferenceDerivatives(grid, order=order)
            assert isinstance(d, Derivatives) and d.spatial_dims == ("x",)
            errors[n, order] = float((pde.rhs(u, d) - spectral).abs().max())
    for order in (2, 4, 6):
        assert abs(math.log2(errors[64, order] / errors[128, order]) - order) < 0.3
    assert errors[128, 6] < 1e-8

def test_batched_float32_and_differentiable():
    grid = PeriodicGrid(32)
    (x,) = grid.meshgrid()
    u = torch.stack([torch.sin(TWO_PI * x), torch.cos(4 * TWO_PI * x)])[:, None].float()
    d = FiniteDifferenceDerivatives(grid, 2)
    out = d.xx(u)
    assert out.shape == (2, 1, 32) and out.dtype == torch.float32
    # the stencil is linear: its gradient is the transposed (here: same, symmetric) stencil
    v = u.clone().requires_grad_()
    (grad,) = torch.autograd.grad((d.xx(v) * u).sum(), v)
    assert torch.allclose(grad, d.xx(u), rtol=1e-5, atol=1e-3)


def test_invalid_arguments():
    grid = PeriodicGrid(16)
    for order in (0, 3, 2.0, True):
        with pytest.raises(ValueError, match="even integer"):
            FiniteDifferenceDerivatives(grid, order)
    d = FiniteDifferenceDerivatives(grid)
    with pytest.raises(ShapeError, match="grid shape"):
        d.x(torch.zeros(15, dtype=torch.float64))
    with pytest.raises(ValueError, match="no dimension"):
        d.y(torch.zeros(16, dtype=torch.float64))
    u = torch.ones(16, dtype=torch.float64)
    assert d.derivative(u) is u


def test_simulate_with_finite_differences_decays_modes_at_their_modified_wavenumber():
    # The FD Laplacian's symbol is -(2 - 2 cos(k h)) / h^2 (2nd order); ETDRK4 integrates it
    # exactly, so each mode decays at that rate, not at the spectral rate k^2.
    from scidl.numerics import ETDRK4, PeriodicGrid, simulate
    from scidl.pdes import Heat

    grid, nu = PeriodicGrid(32), 0.001
    x = grid.coordinates()[0]
    h = 1.0 / 32
    u0 = torch.sin(2 * math.pi * 5 * x)
    d = FiniteDifferenceDerivatives(grid, order=2)
    out = simulate(Heat(nu), u0, [0.0, 1.0], grid=grid, dt=0.25, stepper=ETDRK4(),
                   derivatives=d)
    k = 2 * math.pi * 5
    rate = nu * (2 - 2 * math.cos(k * h)) / h**2
    assert torch.allclose(out[-1], math.exp(-rate) * u0, atol=1e-12)
    assert not torch.allclose(out[-1], math.exp(-nu * k**2) * u0, atol=1e-4)


@pytest.mark.parametrize("order", [2, 4])
def test_finite_difference_method_of_lines_converges_at_its_order(order):
    from scidl.numerics import PeriodicGrid, simulate
    from scidl.pdes import Burgers

    def solve(n, fd):
        grid = PeriodicGrid(n)
        x = grid.coordinates()[0]
        u0 = 0.5 * torch.sin(2 * math.pi * x) + 0.2 * torch.cos(4 * math.pi * x)
        d = FiniteDifferenceDerivatives(grid, order=order) if fd else None
        return simulate(Burgers(0.05), u0, [0.0, 0.3], grid=grid, dt=1e-3, derivatives=d,
                        dealias=not fd)[-1]

    reference = solve(256, fd=False)
    sizes = [32, 64, 128]
    errors = [float((solve(n, fd=True) - reference[:: 256 // n]).abs().max()) for n in sizes]
    slope = -np.polyfit(np.log(sizes), np.log(errors), 1)[0]
    assert abs(slope - order) < 0.3, (errors, slope)
