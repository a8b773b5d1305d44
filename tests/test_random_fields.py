"""Gaussian random fields: the sampled covariance must be the stated one, mode by mode.

The field is ``u = sum_k sqrt(lambda_k) Z_k e_k`` with ``e_k = exp(i k.x) / sqrt(V)`` orthonormal in
``L^2`` of a box of volume ``V``, so its coefficient ``c_k = <u, e_k> = sqrt(V) / N * DFT(u)_k``
has ``E|c_k|^2 = lambda_k``, and the pointwise variance is ``sum_k lambda_k / V`` over every mode
the grid resolves. The statistical tolerances below are five standard errors of the estimators.
"""

from __future__ import annotations

import math

import pytest
import torch

from scidl.numerics import GaussianRandomField, PeriodicGrid

TWO_PI = 2 * math.pi


def full_eigenvalues(sigma, tau, gamma, grid, zero_mean=True) -> torch.Tensor:
    """``sigma^2 (|k|^2 + tau^2)^(-gamma)`` on the full ``fftn`` layout, written independently of
    the library (``k_j = 2 pi m_j / L_j`` with ``m_j`` from ``fftfreq``)."""
    axes = [TWO_PI / L * torch.fft.fftfreq(n, 1.0 / n).double() for n, L in
            zip(grid.shape, grid.length, strict=True)]
    k2 = sum(k**2 for k in torch.meshgrid(*axes, indexing="ij"))
    lam = sigma**2 * (k2 + tau**2) ** (-gamma)
    if zero_mean:
        lam[(0,) * grid.ndim] = 0.0
    return lam


def basis_coefficients(samples: torch.Tensor, grid: PeriodicGrid) -> torch.Tensor:
    """``c_k = <u, e_k>`` in the ``rfftn`` layout, for samples ``[S, *grid.shape]``."""
    dims = tuple(range(-grid.ndim, 0))
    scale = math.sqrt(math.prod(grid.length)) / math.prod(grid.shape)
    return torch.fft.rfftn(samples, dim=dims) * scale


@pytest.mark.parametrize("length", [1.0, TWO_PI])
@pytest.mark.parametrize("sigma, tau, gamma", [(25.0, 5.0, 2.0), (1.0, 1.0, 1.5)])
def test_eigenvalues_follow_the_stated_formula(length, sigma, tau, gamma):
    grid = PeriodicGrid(20, length)
    lam = GaussianRandomField(sigma, tau, gamma).eigenvalues(grid)
    k = TWO_PI * torch.arange(11, dtype=torch.float64) / length
    expected = sigma**2 * (k**2 + tau**2) ** (-gamma)
    expected[0] = 0.0
    assert torch.allclose(lam, expected, rtol=1e-13, atol=0)
    with_mean = GaussianRandomField(sigma, tau, gamma, zero_mean=False).eigenvalues(grid)
    assert with_mean[0] == pytest.approx(sigma**2 * tau ** (-2 * gamma), rel=1e-13)


@pytest.mark.parametrize("length", [1.0, TWO_PI])
def test_each_fourier_mode_has_the_theoretical_variance_1d(length):
    sigma, tau, gamma = 3.0, 2.0, 1.5
    n, n_samples = 64, 4000
    grid = PeriodicGrid(n, length)
    field = GaussianRandomField(sigma, tau, gamma)
    samples = field.sample(n_samples, grid, seed=11)
    assert samples.shape == (n_samples, n) and samples.dtype == torch.float64
    coeffs = basis_coefficients(samples, grid)
    lam = full_eigenvalues(sigma, tau, gamma, grid)[: n // 2 + 1]
    tolerance = 5 * math.sqrt(2 / n_samples)  # 5 standard errors of a chi^2 variance estimate

    # zero mean: the constant mode is absent from every sample
    assert coeffs[:, 0].abs().max() < 1e-12 * coeffs.abs().max()
    # interior modes: real and imaginary parts are independent N(0, lambda_k / 2)
    interior = coeffs[:, 1 : n // 2]
    half = lam[1 : n // 2] / 2
    assert ((interior.real**2).mean(0) / half - 1).abs().max() < tolerance
    assert ((interior.imag**2).mean(0) / half - 1).abs().max() < tolerance
    assert ((interior.real * interior.imag).mean(0) / half).abs().max() < 5 / math.sqrt(n_samples)
    # the Nyquist mode of an even grid is real, N(0, lambda_{N/2})
    assert coeffs[:, n // 2].imag.abs().max() < 1e-12 * coeffs.abs().max()
    assert abs(float((coeffs[:, n // 2].real ** 2).mean() / lam[n // 2]) - 1) < tolerance


def test_fourier_modes_are_uncorrelated():
    n, n_samples = 32, 4000
    grid = PeriodicGrid(n)
    samples = GaussianRandomField(1.0, 3.0, 2.0).sample(n_samples, grid, seed=5)
    coeffs = basis_coefficients(samples, grid)[:, 1 : n // 2]
    features = torch.cat([coeffs.real, coeffs.imag], dim=1)
    features = features / features.std(dim=0)
    correlation = features.T @ features / n_samples
    off_diagonal = correlation - torch.diag(torch.diag(correlation))
    # 930 off-diagonal entries, each ~ N(0, 1/S): their maximum is about 4 standard errors
    assert off_diagonal.abs().max() < 5.5 / math.sqrt(n_samples)


@pytest.mark.parametrize("length", [1.0, TWO_PI])
def test_pointwise_variance_is_the_sum_of_eigenvalues_over_the_volume(length):
    sigma, tau, gamma = 2.0, 1.0, 1.5
    n, n_samples = 64, 4000
    grid = PeriodicGrid(n, length)
    samples = GaussianRandomField(sigma, tau, gamma).sample(n_samples, grid, seed=3)
    lam = full_eigenvalues(sigma, tau, gamma, grid)
    expected = float(lam.sum()) / length
    # Parseval: the spatial mean of u^2 is sum_k |c_k|^2 / L, a weighted sum of chi^2 variables
    # (two per complex pair, lambda_k / 2 each, one for the Nyquist mode)
    standard_error = math.sqrt(float((2 * lam**2).sum()) / n_samples) / length
    estimate = float((samples**2).mean())
    assert abs(estimate - expected) < 5 * standard_error
    assert standard_error < 0.05 * expected  # the check is sharp
    # stationarity: the same variance at every grid point
    per_point = (samples**2).mean(0)
    assert ((per_point / expected - 1).abs().max()) < 5 * math.sqrt(2 / n_samples)
    # zero mean at every point
    assert (samples.mean(0).abs() / math.sqrt(expected)).max() < 5 / math.sqrt(n_samples)


def test_constant_mode_is_included_when_zero_mean_is_false():
    sigma, tau, gamma = 1.0, 0.5, 1.0
    n, n_samples = 16, 4000
    grid = PeriodicGrid(n, 2.0)
    samples = GaussianRandomField(sigma, tau, gamma, zero_mean=False).sample(
        n_samples, grid, seed=4
    )
    mean_coefficient = basis_coefficients(samples, grid)[:, 0]
    lam0 = sigma**2 * tau ** (-2 * gamma)
    assert mean_coefficient.imag.abs().max() < 1e-12
    variance = float((mean_coefficient.real**2).mean())
    assert abs(variance / lam0 - 1) < 5 * math.sqrt(2 / n_samples)


def test_two_dimensional_fields_have_the_theoretical_spectrum():
    sigma, tau, gamma = 1.0, 2.0, 2.0
    shape, lengths = (16, 12), (1.0, 2.0)
    n_samples = 3000
    grid = PeriodicGrid(shape, lengths)
    field = GaussianRandomField(sigma, tau, gamma)
    samples = field.sample(n_samples, grid, seed=9)
    assert samples.shape == (n_samples, *shape)
    lam_full = full_eigenvalues(sigma, tau, gamma, grid)
    lam = lam_full[:, : shape[1] // 2 + 1]
    assert torch.allclose(field.eigenvalues(grid), lam, rtol=1e-13, atol=0)
    power = (basis_coefficients(samples, grid).abs() ** 2).mean(0)
    nonzero = lam > 0
    # each mode's normalised power is a mean of Exp(1) (complex) or chi^2_1 (real) variables;
    # sqrt(2 / S) is the larger of their standard errors
    assert ((power[nonzero] / lam[nonzero]) - 1).abs().max() < 5 * math.sqrt(2 / n_samples)
    assert power[0, 0] < 1e-20
    volume = math.prod(lengths)
    expected = float(lam_full.sum()) / volume
    standard_error = math.sqrt(float((2 * lam_full**2).sum()) / n_samples) / volume
    assert abs(float((samples**2).mean()) - expected) < 5 * standard_error


def test_same_seed_same_samples_and_different_seeds_differ():
    grid = PeriodicGrid(32)
    field = GaussianRandomField.fno_burgers("paper")
    first = field.sample(4, grid, seed=7)
    assert torch.equal(first, field.sample(4, grid, seed=7))
    generator = torch.Generator().manual_seed(7)
    assert torch.equal(first, field.sample(4, grid, generator=generator))
    other = field.sample(4, grid, seed=8)
    assert (first - other).abs().max() > 0.1 * first.abs().max()
    # the samples of one draw are independent, not copies
    assert (first[0] - first[1]).abs().max() > 0.1 * first.abs().max()
    single = field.sample(4, grid, seed=7, dtype=torch.float32)
    assert single.dtype == torch.float32
    assert torch.allclose(single.double(), first, rtol=1e-6, atol=1e-6 * float(first.abs().max()))


def test_fno_burgers_settings():
    paper = GaussianRandomField.fno_burgers("paper")
    assert (paper.sigma, paper.tau, paper.gamma, paper.zero_mean) == (25.0, 5.0, 2.0, True)
    assert GaussianRandomField.fno_burgers() == paper
    repository = GaussianRandomField.fno_burgers("repository")
    assert (repository.sigma, repository.tau, repository.gamma) == (49.0, 7.0, 2.5)
    with pytest.raises(ValueError, match="setting"):
        GaussianRandomField.fno_burgers("code")


@pytest.mark.parametrize("sigma, tau, gamma", [(0.0, 1.0, 1.0), (1.0, -1.0, 1.0), (1.0, 1.0, 0.0)])
def test_invalid_parameters_are_rejected(sigma, tau, gamma):
    with pytest.raises(ValueError, match="sigma > 0"):
        GaussianRandomField(sigma, tau, gamma)
