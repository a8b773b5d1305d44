"""Probabilistic metrics against closed forms, numerical integrals, scipy and statistical laws
(unbiasedness, uniform PIT and ranks for calibrated predictors), plus the old field metrics.

Seeds are fixed; goodness-of-fit tests of calibrated predictors ask p > 1e-3, so a correct
implementation fails by chance once in a thousand seeds while a wrong formula gives p ~ 0.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

import scidl.metrics
from scidl.errors import ShapeError
from scidl.metrics import (
    calibration_error,
    crps_ensemble,
    crps_gaussian,
    gaussian_nll,
    interval_coverage,
    interval_width,
    pit,
    pit_calibration_error,
    quantile_score,
    rank_histogram,
    reduce_items,
    sharpness,
    spread_skill_ratio,
    summarize,
)
from scidl.report import uq_plots
from scidl.uq import Prediction

F64 = torch.float64


def gaussian_problem(n: int, seed: int, shape: tuple[int, ...] = ()):
    """Predicted ``N(mu, sigma)`` per element and ``y`` drawn from it: calibrated by design."""
    g = torch.Generator().manual_seed(seed)
    mu = torch.randn((n, *shape), generator=g, dtype=F64) * 2.0
    sigma = 0.3 + torch.rand((n, *shape), generator=g, dtype=F64) * 1.5
    y = mu + sigma * torch.randn((n, *shape), generator=g, dtype=F64)
    return mu, sigma, y, g


# ---- the field metrics moved into the package keep working ---------------------------------

def test_field_metrics_import_and_values_unchanged():
    from scidl.metrics import fields, max_abs_error, relative_h1, relative_l2, rmse

    assert relative_l2 is fields.relative_l2 and relative_h1 is fields.relative_h1
    target = torch.tensor([[3.0, 4.0], [1.0, 0.0]], dtype=F64)
    prediction = target + torch.tensor([[0.3, -0.4], [0.0, 2.0]], dtype=F64)
    torch.testing.assert_close(relative_l2(prediction, target), torch.tensor([0.1, 2.0], dtype=F64))
    torch.testing.assert_close(rmse(prediction, target),
                               torch.tensor([math.sqrt(0.125), math.sqrt(2.0)], dtype=F64))
    torch.testing.assert_close(max_abs_error(prediction, target),
                               torch.tensor([0.4, 2.0], dtype=F64))
    # |sin(x) + eps sin(3x)|: H1 weighs the error's mode k = 3 by (1 + 9) against (1 + 1)
    x = torch.arange(64, dtype=F64) * 2 * math.pi / 64
    u = torch.sin(x)[None]
    v = u + 0.01 * torch.sin(3 * x)[None]
    expected = 0.01 * math.sqrt(10.0 / 2.0)
    torch.testing.assert_close(relative_h1(v, u, ndim=1, length=2 * math.pi),
                               torch.tensor([expected], dtype=F64))
    with pytest.raises(ValueError, match="differ in shape"):
        relative_l2(prediction, target[:1])


# ---- Gaussian NLL and CRPS -----------------------------------------------------------------

def test_gaussian_nll_matches_scipy_and_reductions():
    mu, sigma, y, _ = gaussian_problem(50, 0, shape=(3,))
    nll = gaussian_nll(mu, sigma, y, reduction="none")
    expected = -stats.norm.logpdf(y.numpy(), loc=mu.numpy(), scale=sigma.numpy())
    np.testing.assert_allclose(nll.numpy(), expected, rtol=1e-12)
    torch.testing.assert_close(gaussian_nll(mu, sigma, y), nll.mean())
    torch.testing.assert_close(gaussian_nll(mu, sigma, y, reduction="item"), nll.mean(dim=1))
    assert gaussian_nll(mu.float(), sigma.float(), y.float()).dtype == torch.float32
    with pytest.raises(ShapeError, match="std has shape"):
        gaussian_nll(mu, sigma[:, :2], y)
    with pytest.raises(ValueError, match="non-negative"):
        gaussian_nll(mu, -sigma, y)
    with pytest.raises(ValueError, match="reduction"):
        reduce_items(nll, "sum")


@pytest.mark.parametrize("mu, sigma, y", [(0.0, 1.0, 0.0), (1.5, 0.4, 0.2), (-2.0, 3.0, 4.5)])
def test_crps_gaussian_matches_integral_of_squared_cdf_difference(mu, sigma, y):
    """CRPS(F, y) = int (F(z) - 1{z >= y})^2 dz, integrated numerically with scipy."""
    cdf = stats.norm(mu, sigma).cdf
    below = integrate.quad(lambda z: cdf(z) ** 2, -np.inf, y, epsabs=1e-13)[0]
    above = integrate.quad(lambda z: (1 - cdf(z)) ** 2, y, np.inf, epsabs=1e-13)[0]
    t = torch.tensor([mu], dtype=F64), torch.tensor([sigma], dtype=F64)
    crps = crps_gaussian(*t, torch.tensor([y], dtype=F64))
    assert float(crps) == pytest.approx(below + above, rel=1e-8, abs=1e-12)
    if (mu, sigma, y) == (0.0, 1.0, 0.0):  # published value (sqrt(2) - 1) / sqrt(pi)
        assert float(crps) == pytest.approx((math.sqrt(2) - 1) / math.sqrt(math.pi), rel=1e-14)


def test_crps_gaussian_tends_to_absolute_error_as_std_vanishes():
    mu, _, y, _ = gaussian_problem(20, 1)
    crps = crps_gaussian(mu, torch.full_like(mu, 1e-9), y, reduction="none")
    torch.testing.assert_close(crps, (y - mu).abs(), atol=1e-8, rtol=0)


def test_scores_are_differentiable_in_float64():
    mu, sigma, y, g = gaussian_problem(4, 2)
    mu, sigma = mu.requires_grad_(), sigma.requires_grad_()
    assert torch.autograd.gradcheck(lambda m, s: gaussian_nll(m, s, y, "none"), (mu, sigma))
    assert torch.autograd.gradcheck(lambda m, s: crps_gaussian(m, s, y, "none"), (mu, sigma))
    samples = torch.randn(5, 4, generator=g, dtype=F64).requires_grad_()
    for fair in (True, False):
        assert torch.autograd.gradcheck(
            lambda x, fair=fair: crps_ensemble(x, y, fair, "none"), (samples,))
    # the CRPS gradient in the mean is -(2 Phi(z) - 1) (Gneiting & Raftery 2007)
    crps_gaussian(mu, sigma, y, "none").sum().backward()
    z = (y - mu.detach()) / sigma.detach()
    torch.testing.assert_close(mu.grad, -(2 * torch.special.ndtr(z) - 1))


# ---- ensemble CRPS -------------------------------------------------------------------------

@pytest.mark.parametrize("members", [1, 2, 3, 7, 16])
def test_crps_ensemble_sorted_formula_matches_pairwise(members):
    g = torch.Generator().manual_seed(members)
    samples = torch.randn(members, 30, 2, generator=g, dtype=F64).round(decimals=1)  # ties
    y = torch.randn(30, 2, generator=g, dtype=F64)
    for fair in ((True, False) if members > 1 else (False,)):
        fast = crps_ensemble(samples, y, fair, "none", method="sorted")
        slow = crps_ensemble(samples, y, fair, "none", method="pairwise")
        torch.testing.assert_close(fast, slow, rtol=1e-12, atol=1e-12)
    if members == 1:  # a one-member ensemble is a point forecast: CRPS = |x - y|
        torch.testing.assert_close(crps_ensemble(samples, y, fair=False, reduction="none"),
                                   (samples[0] - y).abs())
        with pytest.raises(ShapeError, match="at least 2"):
            crps_ensemble(samples, y, fair=True)


def test_crps_of_a_large_ensemble_converges_to_the_gaussian_closed_form():
    mu, sigma, y, g = gaussian_problem(40, 3)
    samples = mu + sigma * torch.randn(4000, 40, generator=g, dtype=F64)
    exact = crps_gaussian(mu, sigma, y, "none")
    for fair in (True, False):
        estimate = crps_ensemble(samples, y, fair, "none")
        torch.testing.assert_close(estimate, exact, rtol=0.03, atol=0.01 * float(sigma.max()))


def test_fair_crps_is_unbiased_and_standard_crps_biased_by_sigma_over_s_sqrt_pi():
    """For fixed y, E over ensembles x_1..x_S ~ N(mu, sigma) of the fair CRPS equals
    CRPS(N(mu, sigma), y); the standard score adds E|X - X'| / (2S) = sigma / (S sqrt(pi))."""
    g = torch.Generator().manual_seed(4)
    members, ensembles, mu, sigma = 4, 100_000, 0.5, 1.3
    for y_value in (0.5, 2.0, -1.7):
        y = torch.full((ensembles,), y_value, dtype=F64)
        samples = mu + sigma * torch.randn(members, ensembles, generator=g, dtype=F64)
        exact = float(crps_gaussian(torch.full_like(y, mu), torch.full_like(y, sigma), y))
        fair = crps_ensemble(samples, y, fair=True, reduction="none")
        standard = crps_ensemble(samples, y, fair=False, reduction="none")
        error_bar = 4 * float(fair.std()) / math.sqrt(ensembles)
        assert abs(float(fair.mean()) - exact) < error_bar
        bias = sigma / (members * math.sqrt(math.pi))
        assert abs(float(standard.mean()) - exact - bias) < error_bar
        assert bias > 10 * error_bar  # the test can tell the two apart


def test_quantile_score_on_dense_levels_approximates_crps():
    mu, sigma, y, _ = gaussian_problem(200, 5)
    levels = (torch.arange(200, dtype=F64) + 0.5) / 200
    z = math.sqrt(2.0) * torch.special.erfinv(2 * levels - 1)
    quantiles = mu + sigma * z.reshape(-1, 1)
    approx = 2 * quantile_score(quantiles, levels, y, "none")
    torch.testing.assert_close(approx, crps_gaussian(mu, sigma, y, "none"), rtol=0.02, atol=2e-3)


# ---- intervals, calibration, sharpness -----------------------------------------------------

def test_interval_coverage_and_width_by_hand():
    lower = torch.tensor([[0.0, 1.0], [-1.0, 2.0]])
    upper = torch.tensor([[1.0, 3.0], [1.0, 2.5]])
    y = torch.tensor([[1.0, 0.0], [0.5, 3.0]])  # in (end included), out, in, out
    assert float(interval_coverage(lower, upper, y)) == 0.5
    torch.testing.assert_close(interval_coverage(lower, upper, y, "item"), torch.tensor([.5, .5]))
    torch.testing.assert_close(interval_width(lower, upper, "item"), torch.tensor([1.5, 1.25]))


def test_calibrated_predictor_scores_near_zero_and_overconfident_one_clearly_worse():
    mu, sigma, y, _ = gaussian_problem(20_000, 6)
    calibrated, overconfident = Prediction(mean=mu, std=sigma), Prediction(mean=mu, std=sigma / 3)
    good, bad = calibration_error(calibrated, y), calibration_error(overconfident, y)
    assert float(good.error) < 1e-3
    assert float(bad.error) > 0.02 and float(bad.error) > 100 * float(good.error)
    torch.testing.assert_close(good.observed, good.levels, atol=0.015, rtol=0)
    assert abs(float(interval_coverage(*calibrated.interval(0.9), y)) - 0.9) < 0.01
    # the central 90% interval of N(mu, sigma/3) covers P(|Z| <= 1.645/3) = 41.7%
    assert float(interval_coverage(*overconfident.interval(0.9), y)) == pytest.approx(0.417,
                                                                                      abs=0.01)
    # the PIT form gives the same curve for Gaussians, in one pass
    via_pit = pit_calibration_error(pit(calibrated, y))
    torch.testing.assert_close(via_pit.observed, good.observed, atol=2 / y.numel(), rtol=0)
    assert stats.kstest(pit(calibrated, y).numpy(), "uniform").pvalue > 1e-3
    # a quantile function works as well as a Prediction
    by_fn = calibration_error(calibrated.quantile, y)
    torch.testing.assert_close(by_fn.error, good.error)
    assert float(sharpness(sigma / 3)) == pytest.approx(float(sharpness(sigma)) / 3)
    assert float(sharpness(sigma)) == pytest.approx(float(sigma.square().mean().sqrt()))


def test_calibration_of_quantile_predictions_uses_their_levels():
    mu, sigma, y, _ = gaussian_problem(5000, 7, shape=(2, 2))  # fields: every point counts
    levels = torch.tensor([0.1, 0.25, 0.5, 0.75, 0.9], dtype=F64)
    z = math.sqrt(2.0) * torch.special.erfinv(2 * levels - 1)
    prediction = Prediction(mean=mu, quantiles=mu + sigma * z.reshape(-1, 1, 1, 1), levels=levels)
    curve = calibration_error(prediction, y)
    torch.testing.assert_close(curve.levels, levels)
    assert float(curve.error) < 1e-3


# ---- ensembles: spread-skill, ranks, PIT ---------------------------------------------------

def ensemble_problem(members: int, n: int, seed: int, member_scale: float = 1.0):
    mu, sigma, y, g = gaussian_problem(n, seed)
    samples = mu + member_scale * sigma * torch.randn(members, n, generator=g, dtype=F64)
    return samples, y, g


def test_spread_skill_ratio_is_one_for_exchangeable_ensembles():
    samples, y, _ = ensemble_problem(5, 40_000, 8)
    ratio = float(spread_skill_ratio(samples, y))
    assert ratio == pytest.approx(1.0, abs=0.02)
    # without the (S+1)/S correction a calibrated 5-member ensemble would read sqrt(5/6)
    assert ratio * math.sqrt(5 / 6) < 0.94
    narrow, y_narrow, _ = ensemble_problem(5, 40_000, 9, member_scale=0.5)
    assert float(spread_skill_ratio(narrow, y_narrow)) == pytest.approx(0.5 * math.sqrt(
        (1 + 1 / 5) / (1 + 0.25 / 5)), rel=0.03)


def test_rank_histogram_is_flat_for_exchangeable_members_and_u_shaped_when_underdispersed():
    samples, y, g = ensemble_problem(9, 20_000, 10)
    counts = rank_histogram(samples, y, generator=g)
    assert counts.shape == (10,) and int(counts.sum()) == 20_000
    assert stats.chisquare(counts.numpy()).pvalue > 1e-3
    narrow, y_narrow, g = ensemble_problem(9, 20_000, 11, member_scale=1 / 3)
    counts = rank_histogram(narrow, y_narrow, generator=g).double()
    assert stats.chisquare(counts.numpy()).pvalue < 1e-10
    middle = counts[1:-1].mean()
    assert counts[0] > 3 * middle and counts[-1] > 3 * middle


def test_rank_ties_are_broken_uniformly_and_reproducibly():
    samples = torch.zeros(4, 10_000, dtype=F64)
    y = torch.zeros(10_000, dtype=F64)
    counts = rank_histogram(samples, y, generator=torch.Generator().manual_seed(0))
    assert stats.chisquare(counts.numpy()).pvalue > 1e-3
    again = rank_histogram(samples, y, generator=torch.Generator().manual_seed(0))
    assert torch.equal(counts, again)


def test_randomized_pit_of_exchangeable_ensemble_is_uniform():
    samples, y, g = ensemble_problem(7, 20_000, 12)
    u = pit(Prediction(mean=samples.mean(0), samples=samples), y, generator=g)
    assert float(u.min()) > 0 and float(u.max()) < 1
    assert stats.kstest(u.numpy(), "uniform").pvalue > 1e-3
    assert float(pit_calibration_error(u).error) < 1e-3


# ---- summarize and shape errors ------------------------------------------------------------

def test_summarize_collects_consistent_scores_for_every_kind_of_prediction():
    samples, y, _ = ensemble_problem(8, 3000, 13)
    mu, sigma = samples.mean(0), samples.std(0)
    gaussian = summarize(Prediction(mean=mu, std=sigma), y)
    assert set(gaussian) == {"rmse", "nll", "crps", "coverage", "nominal_coverage", "width",
                             "calibration_error", "sharpness"}
    assert gaussian["nll"] == pytest.approx(float(gaussian_nll(mu, sigma, y)))
    assert gaussian["crps"] == pytest.approx(float(crps_gaussian(mu, sigma, y)))
    assert gaussian["rmse"] == pytest.approx(float((mu - y).square().mean().sqrt()))
    assert gaussian["width"] == pytest.approx(2 * 1.6448536 * float(sigma.mean()), rel=1e-6)
    ensemble = summarize(Prediction.from_samples(samples), y, coverage=0.8)
    assert ensemble["nominal_coverage"] == 0.8
    assert ensemble["crps_ensemble"] == pytest.approx(float(crps_ensemble(samples, y)))
    assert ensemble["spread_skill"] == pytest.approx(float(spread_skill_ratio(samples, y)))
    levels = torch.tensor([0.05, 0.5, 0.95], dtype=F64)
    quantiles = Prediction(mean=mu, quantiles=torch.stack([mu - sigma, mu, mu + sigma]),
                           levels=levels)
    scores = summarize(quantiles, y)
    assert "quantile_score" in scores and "nll" not in scores and "coverage" in scores
    assert set(summarize(Prediction(mean=mu), y)) == {"rmse"}
    assert all(isinstance(v, float) for v in ensemble.values())


def test_shape_errors_name_the_shapes():
    samples, y, _ = ensemble_problem(3, 10, 14)
    with pytest.raises(ShapeError, match=r"samples has shape \(3, 10\), expected \[S, 9\]"):
        crps_ensemble(samples, y[:9])
    with pytest.raises(ShapeError, match="prediction.mean has shape"):
        summarize(Prediction(mean=y), y[:5])


# ---- figures -------------------------------------------------------------------------------

def test_plots_write_png_files_for_fields(tmp_path):
    g = torch.Generator().manual_seed(15)
    mu = torch.randn(50, 3, 4, generator=g, dtype=F64)
    sigma = 0.5 + torch.rand(50, 3, 4, generator=g, dtype=F64)
    samples = mu + sigma * torch.randn(6, 50, 3, 4, generator=g, dtype=F64)
    y = mu + sigma * torch.randn(50, 3, 4, generator=g, dtype=F64)
    prediction = Prediction.from_samples(samples)
    levels = torch.tensor([0.1, 0.5, 0.9], dtype=F64)
    quantile_only = Prediction(mean=mu, quantiles=torch.stack([mu - sigma, mu, mu + sigma]),
                               levels=levels)
    paths = [
        uq_plots.reliability_diagram(prediction, y, tmp_path / "reliability.png"),
        uq_plots.coverage_plot(prediction, y, tmp_path / "coverage.png"),
        uq_plots.coverage_plot(quantile_only, y, tmp_path / "sub" / "coverage_quantiles.png"),
        uq_plots.error_vs_std_plot(prediction, y, tmp_path / "error_std.png"),
        uq_plots.rank_histogram_plot(samples, y, tmp_path / "ranks.png", generator=g),
    ]
    for path in paths:
        assert path.is_file() and path.stat().st_size > 1000
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="needs a Prediction with std"):
        uq_plots.error_vs_std_plot(quantile_only, y, tmp_path / "x.png")


def test_package_exports_everything_it_documents():
    for name in scidl.metrics.__all__:
        assert hasattr(scidl.metrics, name), name
