"""Elliptic solves (Poisson, Darcy) and the Neumann random fields behind the Darcy coefficients.

Checks: manufactured solutions with fitted convergence orders (2 for finite differences,
exponential for the periodic FFT solve), the residuals the PDE classes state, adjoint gradients
against central finite differences, one factorisation per sample, the discrete maximum
principle, symmetries and monotonicity on the FNO paper's thresholded coefficients, and the
covariance of the cosine-series Gaussian random field mode by mode.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.fft
import torch

import scidl.numerics.elliptic as elliptic
from scidl.errors import ShapeError
from scidl.numerics.derivatives import AutogradDerivatives, SpectralDerivatives
from scidl.numerics.elliptic import (
    face_coefficients,
    solve_darcy,
    solve_poisson_dirichlet,
    solve_poisson_periodic,
)
from scidl.numerics.grids import PeriodicGrid
from scidl.numerics.random_fields import NeumannGaussianRandomField
from scidl.pdes.darcy import Darcy, threshold_coefficient
from scidl.pdes.poisson import Poisson

PI = math.pi


def fitted_order(sizes: list[int], errors: list[float]) -> float:
    """Slope of log(error) against log(h), h = 1 / (s - 1)."""
    h = [1.0 / (s - 1) for s in sizes]
    return float(np.polyfit(np.log(h), np.log(errors), 1)[0])


def nodes(s: int) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.linspace(0.0, 1.0, s, dtype=torch.float64)
    return tuple(torch.meshgrid(x, x, indexing="ij"))


# ---------------------------------------------------------------------------- periodic Poisson


def test_periodic_poisson_is_exact_for_trigonometric_polynomials():
    grid = PeriodicGrid((16, 12), (1.0, 2.0))
    x, y = grid.meshgrid()
    u = torch.sin(2 * PI * x) * torch.cos(PI * y) + 0.2 * torch.cos(6 * PI * x + 3 * PI * y)
    f = (4 * PI**2 + PI**2) * torch.sin(2 * PI * x) * torch.cos(PI * y)
    f = f + 0.2 * (36 * PI**2 + 9 * PI**2) * torch.cos(6 * PI * x + 3 * PI * y)
    solved = solve_poisson_periodic(torch.stack([f, 2 * f + 5.0]), grid)  # a mean is dropped
    assert float((solved[0] - u).abs().max()) < 1e-13
    assert float((solved[1] - 2 * u).abs().max()) < 1e-13


def test_periodic_poisson_converges_exponentially_for_an_analytic_solution():
    # u = exp(g), g = sin 2 pi x + cos 2 pi y / 2, -Laplacian u = -exp(g) (|grad g|^2 + Lap g)
    errors = []
    for n in (8, 12, 16, 20):
        grid = PeriodicGrid((n, n))
        x, y = grid.meshgrid()
        g = torch.sin(2 * PI * x) + 0.5 * torch.cos(2 * PI * y)
        grad2 = (2 * PI * torch.cos(2 * PI * x)) ** 2 + (PI * torch.sin(2 * PI * y)) ** 2
        laplacian_g = -4 * PI**2 * torch.sin(2 * PI * x) - 2 * PI**2 * torch.cos(2 * PI * y)
        u = torch.exp(g)
        f = -u * (grad2 + laplacian_g)
        errors.append(float((solve_poisson_periodic(f, grid) - (u - u.mean())).abs().max()))
    # measured: 2.4e-3, 6.2e-6, 1.4e-8, 2.3e-11 -- every 4 more points gain ~2.6 digits, a
    # geometric (exponential) rate; an algebraic rate would slow down as n grows
    assert errors[-1] < 1e-10
    assert all(later < 1e-2 * earlier for earlier, later in zip(errors[:-1], errors[1:]))
    d = SpectralDerivatives(grid)
    assert float(Poisson(f - f.mean()).residual(solve_poisson_periodic(f, grid), d).abs().max()) \
        < 1e-9 * float(f.abs().max())


# ---------------------------------------------------------------------- Dirichlet Poisson, Darcy


def test_dirichlet_poisson_converges_with_second_order():
    sizes, errors = [17, 33, 65, 129], []
    for s in sizes:
        x, y = nodes(s)
        u = torch.sin(PI * x) * torch.sin(2 * PI * y) * torch.exp(x - y)  # not an eigenfunction
        d = AutogradDerivatives({"x": x.flatten().requires_grad_(), "y": y.flatten()
                                 .requires_grad_()})
        xs, ys = d.coordinate("x"), d.coordinate("y")
        exact = torch.sin(PI * xs) * torch.sin(2 * PI * ys) * torch.exp(xs - ys)
        f = Poisson(0.0).residual(exact, d).detach().reshape(s, s)  # f = -Laplacian(u)
        errors.append(float((solve_poisson_dirichlet(f) - u).abs().max()))
    # measured: 1.2e-2, 3.0e-3, 7.5e-4, 1.9e-4; fitted order 2.00
    assert abs(fitted_order(sizes, errors) - 2) < 0.1


def manufactured_darcy(s: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(a, f, u)`` at the nodes for a smooth ``a`` and ``u`` vanishing on the boundary, with
    ``f = -div(a grad u)`` computed by autograd through :class:`Darcy`'s own residual."""
    x, y = nodes(s)
    d = AutogradDerivatives({"x": x.flatten().requires_grad_(), "y": y.flatten().requires_grad_()})

    def coefficient(x, y):
        return torch.exp(0.6 * torch.sin(2 * PI * x) * torch.cos(PI * y)) + 0.5 * x

    def solution(x, y):
        return torch.sin(PI * x) * torch.sin(PI * y) * (1 + x * y**2)

    u = solution(d.coordinate("x"), d.coordinate("y"))
    f = Darcy(coefficient, 0.0).residual(u, d).detach().reshape(s, s)
    return coefficient(x, y), f, solution(x, y)


@pytest.mark.parametrize("average", ["arithmetic", "harmonic"])
def test_darcy_converges_with_second_order_for_a_smooth_coefficient(average):
    sizes, errors = [17, 33, 65, 129], []
    for s in sizes:
        a, f, u = manufactured_darcy(s)
        errors.append(float((solve_darcy(a, f, average=average) - u).abs().max()))
    # measured: arithmetic 3.9e-3 ... 6.2e-5, harmonic 4.5e-3 ... 7.1e-5; fitted orders 2.00
    assert abs(fitted_order(sizes, errors) - 2) < 0.1


def test_darcy_residual_matches_the_hand_computation():
    # u = sin 2 pi x, a = 2 + cos 2 pi x: (a u_x)_x = a_x u_x + a u_xx
    grid = PeriodicGrid((16, 8))
    x, _ = grid.meshgrid()
    u, a = torch.sin(2 * PI * x), 2 + torch.cos(2 * PI * x)
    flux_divergence = (-2 * PI * torch.sin(2 * PI * x)) * (2 * PI * torch.cos(2 * PI * x))
    flux_divergence = flux_divergence + a * (-4 * PI**2 * torch.sin(2 * PI * x))
    residual = Darcy(a, 1.5).residual(u, SpectralDerivatives(grid))
    assert float((residual - (-flux_divergence - 1.5)).abs().max()) < 1e-11


def test_constant_coefficient_darcy_is_the_scaled_poisson_problem():
    f = torch.randn(2, 20, 20, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for average in ("arithmetic", "harmonic"):
        u = solve_darcy(torch.full_like(f, 4.0), f, average=average)
        assert torch.allclose(u, solve_poisson_dirichlet(f) / 4, rtol=0, atol=1e-14)
    assert (solve_poisson_dirichlet(f)[:, [0, -1], :] == 0).all()
    # a single field [s, s] and a square of another side
    single = solve_poisson_dirichlet(f[0], length=2.0)
    assert single.shape == (20, 20)
    assert torch.allclose(single, 4 * solve_poisson_dirichlet(f[0]), rtol=0, atol=1e-13)


def test_face_averages():
    a = torch.tensor([[1.0, 3.0], [2.0, 6.0]], dtype=torch.float64)
    a_x, a_y = face_coefficients(a, "arithmetic")
    assert torch.equal(a_x, torch.tensor([[1.5, 4.5]], dtype=torch.float64))
    assert torch.equal(a_y, torch.tensor([[2.0], [4.0]], dtype=torch.float64))
    h_x, h_y = face_coefficients(a, "harmonic")
    assert torch.allclose(h_x, torch.tensor([[4 / 3, 4.0]], dtype=torch.float64))
    assert torch.allclose(h_y, torch.tensor([[1.5], [3.0]], dtype=torch.float64))
    with pytest.raises(ValueError, match="average"):
        face_coefficients(a, "geometric")


# ------------------------------------------------------------------------------------ gradients


def random_problem(s: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    a = 1.0 + 2.0 * torch.rand(2, s, s, dtype=torch.float64, generator=generator)
    f = torch.randn(2, s, s, dtype=torch.float64, generator=generator)
    return a, f


@pytest.mark.parametrize("average", ["arithmetic", "harmonic"])
def test_darcy_gradients_match_central_finite_differences(average):
    a, f = random_problem(12, seed=1)
    generator = torch.Generator().manual_seed(2)
    weights = torch.randn(a.shape, dtype=torch.float64, generator=generator)

    def loss(a, f):
        u = solve_darcy(a, f, average=average)
        return (weights * u).sum() + (u**2).sum()

    a_leaf, f_leaf = a.clone().requires_grad_(), f.clone().requires_grad_()
    grad_a, grad_f = torch.autograd.grad(loss(a_leaf, f_leaf), (a_leaf, f_leaf))
    eps = 1e-6
    for trial in range(3):
        da = torch.randn(a.shape, dtype=torch.float64, generator=generator)
        df = torch.randn(f.shape, dtype=torch.float64, generator=generator)
        for analytic, plus, minus in (
            ((grad_a * da).sum(), loss(a + eps * da, f), loss(a - eps * da, f)),
            ((grad_f * df).sum(), loss(a, f + eps * df), loss(a, f - eps * df)),
        ):
            numeric = (plus - minus) / (2 * eps)
            assert abs(float(numeric - analytic)) < 1e-6 * abs(float(analytic)), trial
    # f on the boundary nodes does not enter the solution
    assert (grad_f[:, [0, -1], :] == 0).all() and (grad_f[:, :, [0, -1]] == 0).all()


def test_gradient_reuses_the_factorisation(monkeypatch):
    calls = []
    original = elliptic.spla.splu

    def counting_splu(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(elliptic.spla, "splu", counting_splu)
    a, f = random_problem(9, seed=3)
    a.requires_grad_()
    solve_darcy(a, f).sum().backward()
    assert len(calls) == 2  # one per sample, none in the backward pass
    assert torch.isfinite(a.grad).all() and a.grad.abs().max() > 0


def test_darcy_rejects_bad_input():
    a, f = random_problem(6, seed=4)
    with pytest.raises(ShapeError, match="same shape"):
        solve_darcy(a, f[0])
    with pytest.raises(ShapeError, match="same shape"):
        solve_darcy(a[:, :, :5], f[:, :, :5])
    with pytest.raises(ValueError, match="positive"):
        solve_darcy(a - 2.0, f)
    with pytest.raises(ValueError, match="finite"):
        solve_darcy(a, f * float("nan"))


# ------------------------------------------------------------------- FNO thresholded coefficients


def fno_coefficients(n: int, s: int, seed: int) -> torch.Tensor:
    mu = NeumannGaussianRandomField.fno_darcy().sample(n, (s, s), seed=seed)
    return threshold_coefficient(mu)


def test_fno_darcy_solutions_obey_the_maximum_principle_symmetries_and_monotonicity():
    s = 43  # the FNO paper's 421-node grid subsampled by 10
    a = fno_coefficients(3, s, seed=0)
    assert set(a.unique().tolist()) == {3.0, 12.0}
    assert 0.1 < float((a == 12).double().mean()) < 0.9
    ones = torch.ones_like(a)
    u = solve_darcy(a, ones)
    # zero Dirichlet data; f = 1 > 0 makes the M-matrix solution strictly positive inside
    assert (u[:, [0, -1], :] == 0).all() and (u[:, :, [0, -1]] == 0).all()
    assert float(u[:, 1:-1, 1:-1].min()) > 0
    # the scheme commutes with transposition and reflection of the square
    assert torch.allclose(solve_darcy(a.transpose(-2, -1), ones), u.transpose(-2, -1),
                          rtol=0, atol=1e-12 * float(u.max()))
    assert torch.allclose(solve_darcy(a.flip(-1), ones), u.flip(-1), rtol=0,
                          atol=1e-12 * float(u.max()))
    # the compliance int f u decreases with the coefficient, so it lies between a = 12 and a = 3
    compliance = u.sum((-2, -1))
    assert bool((compliance > solve_darcy(12 * ones, ones).sum((-2, -1))).all())
    assert bool((compliance < solve_darcy(3 * ones, ones).sum((-2, -1))).all())
    # linear in f, homogeneous of degree -1 in a
    assert torch.allclose(solve_darcy(2 * a, 3 * ones), 1.5 * u, rtol=1e-12, atol=0)


def test_fno_darcy_float32_input_gives_float32_output():
    a = fno_coefficients(1, 22, seed=5).float()
    u = solve_darcy(a, torch.ones_like(a))
    assert u.dtype == torch.float32
    reference = solve_darcy(a.double(), torch.ones_like(a).double())
    assert torch.allclose(u.double(), reference, rtol=1e-6, atol=0)


def test_threshold_coefficient():
    mu = torch.tensor([-1.0, 0.0, 2.0])
    assert threshold_coefficient(mu).tolist() == [3.0, 12.0, 12.0]
    assert threshold_coefficient(mu, 12.0, 4.0).tolist() == [4.0, 12.0, 12.0]


# ----------------------------------------------------------------- Neumann Gaussian random field


def cosine_coefficients(samples: torch.Tensor) -> torch.Tensor:
    """``c_k = <u, e_k>`` from nodal samples ``[S, n, m]``, by scipy's DCT-I.

    The trapezoidal rule on the nodes is exact for products of the cosines resolved by the grid:
    ``sum'' w_i e_k(x_i) e_l(x_i) = delta_kl`` except ``2`` for the highest mode. DCT-I gives
    ``y_k = 2 (n - 1) sum'' w_i u_i cos(pi k x_i)`` with ``h = 1 / (n - 1)``.
    """
    data = samples.numpy()
    for axis in (1, 2):
        n = data.shape[axis]
        data = scipy.fft.dct(data, type=1, axis=axis) / (2 * (n - 1))
        scale = np.full(n, math.sqrt(2))
        scale[0] = 1.0
        scale[-1] = math.sqrt(2) / 2  # e_{n-1} has discrete norm^2 2 on the nodes
        shape = [1, 1, 1]
        shape[axis] = n
        data = data * scale.reshape(shape)
    return torch.from_numpy(data)


def test_neumann_field_has_the_theoretical_spectrum_mode_by_mode():
    sigma, tau, gamma = 1.0, 3.0, 1.5
    shape, n_samples = (12, 9), 3000
    field = NeumannGaussianRandomField(sigma, tau, gamma)
    samples = field.sample(n_samples, shape, seed=7)
    assert samples.shape == (n_samples, *shape) and samples.dtype == torch.float64
    k1 = PI * torch.arange(12, dtype=torch.float64)[:, None]
    k2 = PI * torch.arange(9, dtype=torch.float64)[None, :]
    lam = sigma**2 * (k1**2 + k2**2 + tau**2) ** (-gamma)
    lam[0, 0] = 0.0
    assert torch.allclose(field.eigenvalues(shape), lam, rtol=1e-13, atol=0)
    coefficients = cosine_coefficients(samples)
    assert float(coefficients[:, 0, 0].abs().max()) < 1e-12  # zero mean
    power = (coefficients**2).mean(0)
    # each coefficient is N(0, lambda_k): its mean square has standard error sqrt(2 / S)
    assert float((power[lam > 0] / lam[lam > 0] - 1).abs().max()) < 5 * math.sqrt(2 / n_samples)
    # distinct modes are uncorrelated
    flat = (coefficients / lam.clamp_min(1e-300).sqrt()).reshape(n_samples, -1)[:, 1:20]
    correlation = flat.T @ flat / n_samples
    off_diagonal = correlation - torch.diag(torch.diag(correlation))
    assert float(off_diagonal.abs().max()) < 5.5 / math.sqrt(n_samples)


def test_neumann_field_is_even_at_the_walls_and_seeded():
    field = NeumannGaussianRandomField.fno_darcy("repository")
    assert (field.sigma, field.tau, field.gamma) == (3.0, 3.0, 2.0)
    first = field.sample(2, (30, 30), seed=1)
    assert torch.equal(first, field.sample(2, (30, 30), seed=1))
    assert (first - field.sample(2, (30, 30), seed=2)).abs().max() > 0.1 * first.abs().max()
    # the same draw in the paper's scaling: 1/3 of it, so the thresholded a is the same
    paper = NeumannGaussianRandomField.fno_darcy().sample(2, (30, 30), seed=1)
    assert torch.allclose(paper * 3, first, rtol=1e-12, atol=0)
    # zero normal derivative at both walls: for a smooth field (gamma = 4) a second-order
    # one-sided difference there is small against the slopes inside
    lines = NeumannGaussianRandomField(1.0, 3.0, 4.0).sample(4, 401, seed=3)
    h = 1 / 400
    walls = torch.stack([(-3 * lines[:, 0] + 4 * lines[:, 1] - lines[:, 2]) / (2 * h),
                         (3 * lines[:, -1] - 4 * lines[:, -2] + lines[:, -3]) / (2 * h)])
    interior = (lines[:, 2:] - lines[:, :-2]).abs().amax(-1) / (2 * h)
    assert float((walls.abs() / interior).max()) < 1e-3
    with pytest.raises(ValueError, match="sigma > 0"):
        NeumannGaussianRandomField(1.0, 1.0, 0.0)
    with pytest.raises(ValueError, match="setting"):
        NeumannGaussianRandomField.fno_darcy("code")
