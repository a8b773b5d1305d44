"""Split conformal prediction, CQR and last-layer Laplace, checked against their mathematics:
order statistics, the finite-sample coverage k / (n + 1), and closed-form Bayesian linear
regression."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from scidl.errors import ShapeError
from scidl.models.fno_nd import FNO
from scidl.models.mlp import MLP
from scidl.uq.conformal import (
    ConformalizedQuantileRegression,
    SplitConformal,
    conformal_quantile,
    conformal_rank,
)
from scidl.uq.laplace import LastLayerLaplace
from scidl.uq.prediction import Prediction, normal_quantile
from scidl.uq.quantile import QuantileRegressor, fit_quantile_regressor, pinball_loss


def covered(prediction: Prediction, y: torch.Tensor) -> torch.Tensor:
    """0/1 per element: is ``y`` inside the stored interval ``[quantiles[0], quantiles[-1]]``?"""
    return ((y >= prediction.quantiles[0]) & (y <= prediction.quantiles[-1])).double()


def regression_data(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Heteroscedastic, heavy-tailed targets and inputs ``x ~ U(-2, 2)``: both ``[n]``."""
    x = 4 * torch.rand(n, generator=generator, dtype=torch.float64) - 2
    noise = torch.distributions.StudentT(3.0).sample((n,)).double()
    return x, torch.sin(2 * x) + (0.2 + 0.5 * x.abs()) * noise


def biased_point_model(x: torch.Tensor) -> Prediction:
    return Prediction(mean=torch.sin(2 * x) + 0.3, std=0.2 + 0.5 * x.abs())


# ---- the conformal quantile -------------------------------------------------------------------

def test_conformal_quantile_is_the_hand_computed_order_statistic():
    scores = torch.tensor([7.0, 3.0, 19.0, 1.0, 12.0, 5.0, 16.0, 2.0, 9.0, 14.0,
                           4.0, 18.0, 6.0, 11.0, 8.0, 15.0, 10.0, 13.0, 17.0])  # 1..19, shuffled
    # n = 19, coverage 0.9: k = ceil(20 * 0.9) = 18 -> the 18th smallest score, 18
    assert conformal_rank(19, 0.9) == 18
    assert float(conformal_quantile(scores, 0.9)) == 18.0
    assert float(conformal_quantile(scores, 0.5)) == 10.0  # k = ceil(10) = 10
    assert conformal_rank(99, 0.9) == 90 and conformal_rank(9, 0.9) == 9
    assert float(conformal_quantile(scores[:9], 0.9)) == 19.0  # k = n: the largest score
    with pytest.raises(ValueError, match="too few .* need at least 9"):
        conformal_quantile(scores[:8], 0.9)
    # pointwise: one order statistic per column
    columns = torch.stack([scores, -scores], dim=1)
    assert torch.equal(conformal_quantile(columns, 0.9), torch.tensor([18.0, -2.0]))


def test_split_conformal_interval_is_mean_plus_minus_quantile():
    mean, std = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1.0, 2.0, 0.5])
    y = torch.arange(1.0, 20.0)  # residuals 1..19 around mean 0
    calibration = Prediction(mean=torch.zeros(19), std=torch.full((19,), 2.0))
    absolute = SplitConformal(0.9).calibrate(calibration, y)
    out = absolute.predict(Prediction(mean=mean, std=std))
    assert torch.allclose(out.levels, torch.tensor([0.05, 0.95], dtype=torch.float64))
    assert torch.equal(out.quantiles, torch.stack([mean - 18, mean + 18]))
    assert torch.equal(out.mean, mean) and torch.equal(out.std, std)
    lower, upper = out.interval(0.9)
    assert torch.equal(upper - lower, torch.full((3,), 36.0))
    normalized = SplitConformal(0.9, score="normalized").calibrate(calibration, y)
    assert float(normalized.quantile_) == 9.0  # the 18th smallest of |y| / 2
    assert torch.equal(normalized.predict(Prediction(mean=mean, std=std)).quantiles[1],
                       mean + 9 * std)
    with pytest.raises(ValueError, match="needs a Prediction with std"):
        SplitConformal(score="normalized").calibrate(Prediction(mean=torch.zeros(19)), y)
    with pytest.raises(ShapeError):
        absolute.calibrate(calibration, y[:5])
    with pytest.raises(RuntimeError, match="before calibrate"):
        SplitConformal().predict(calibration)


@pytest.mark.parametrize("n", [99, 50])
def test_split_conformal_coverage_over_random_splits_is_k_over_n_plus_1(n):
    """E[coverage] = k / (n + 1) exactly for continuous scores (Lei et al. 2018, thm 2.2):
    0.9 for n = 99, 46/51 for n = 50; never below 1 - alpha."""
    generator = torch.Generator().manual_seed(n)
    torch.manual_seed(n)
    splits, m = 1000, 100
    x, y = regression_data(splits * (n + m), generator)
    x, y = x.reshape(splits, n + m), y.reshape(splits, n + m)
    coverages = []
    for xs, ys in zip(x, y):
        conformal = SplitConformal(0.9).calibrate(biased_point_model(xs[:n]), ys[:n])
        coverages.append(covered(conformal.predict(biased_point_model(xs[n:])), ys[n:]).mean())
    coverages = torch.stack(coverages)
    mean, standard_error = float(coverages.mean()), float(coverages.std()) / math.sqrt(splits)
    expected = conformal_rank(n, 0.9) / (n + 1)
    assert abs(mean - 0.9) < 0.01
    assert abs(mean - expected) < 3.5 * standard_error
    assert mean > 0.9 - 3.5 * standard_error


def test_normalized_scores_cover_both_noise_regimes_absolute_scores_do_not():
    generator = torch.Generator().manual_seed(1)
    torch.manual_seed(1)
    x, y = regression_data(40000, generator)
    calibration, test = slice(0, 2000), slice(2000, None)
    quiet = x[test].abs() < 0.5  # noise scale 0.2..0.45 versus up to 1.2

    def model(x: torch.Tensor) -> Prediction:  # the true mean and noise scale
        return Prediction(mean=torch.sin(2 * x), std=0.2 + 0.5 * x.abs())

    for score, expect_adaptive in (("normalized", True), ("absolute", False)):
        conformal = SplitConformal(0.9, score=score).calibrate(model(x[calibration]),
                                                               y[calibration])
        inside = covered(conformal.predict(model(x[test])), y[test])
        assert abs(float(inside.mean()) - 0.9) < 0.015
        gap = abs(float(inside[quiet].mean()) - float(inside[~quiet].mean()))
        assert (gap < 0.02) if expect_adaptive else (gap > 0.08)


def test_pointwise_field_conformal_covers_every_pixel():
    """Fields with a noise scale and a model bias that vary over the pixels: pointwise
    calibration covers each pixel at 90 %; pooling over pixels does not."""
    generator = torch.Generator().manual_seed(2)
    splits, n, m, size = 300, 99, 100, 10
    grid = torch.linspace(0, 1, size, dtype=torch.float64)
    scale = 0.1 + 2.0 * grid[:, None] * grid[None, :]  # [S, S], 0.1 .. 2.1
    bias = 0.3 * torch.sin(6 * grid)[:, None]
    truth = torch.randn(splits, n + m, 1, size, size, generator=generator, dtype=torch.float64)
    noise = torch.randn(truth.shape, generator=generator, dtype=torch.float64)
    y, mean = truth + scale * noise, truth + bias
    per_pixel = {True: torch.zeros(1, size, size, dtype=torch.float64),
                 False: torch.zeros(1, size, size, dtype=torch.float64)}
    for split in range(splits):
        calibration = Prediction(mean=mean[split, :n])
        test = Prediction(mean=mean[split, n:])
        for pointwise in (True, False):
            conformal = SplitConformal(0.9, pointwise=pointwise).calibrate(
                calibration, y[split, :n])
            assert conformal.quantile_.shape == ((1, size, size) if pointwise else ())
            per_pixel[pointwise] += covered(conformal.predict(test), y[split, n:]).mean(0)
    pointwise, pooled = per_pixel[True] / splits, per_pixel[False] / splits
    # per pixel: std of the coverage per split ~ 0.04, so the standard error is ~ 0.0025
    assert float((pointwise - 0.9).abs().max()) < 0.012
    assert abs(float(pointwise.mean()) - 0.9) < 0.003
    assert float((pooled - 0.9).abs().max()) > 0.08


# ---- conformalized quantile regression --------------------------------------------------------

def test_cqr_corrects_a_miscalibrated_quantile_model():
    """Base band: too narrow (0.6 of the true half-width) and shifted; CQR restores 90 %
    on average over random splits and keeps the band's adaptivity."""
    generator = torch.Generator().manual_seed(3)
    splits, n, m = 400, 99, 100
    x = 4 * torch.rand(splits, n + m, generator=generator, dtype=torch.float64) - 2
    noise_scale = 0.2 + 0.5 * x.abs()
    y = torch.sin(2 * x) + noise_scale * torch.randn(x.shape, generator=generator,
                                                      dtype=torch.float64)
    z = float(normal_quantile(0.95))
    half = 0.6 * z * noise_scale
    centre = torch.sin(2 * x) + 0.1
    levels = torch.tensor([0.05, 0.5, 0.95], dtype=torch.float64)
    base = Prediction(mean=centre, quantiles=torch.stack([centre - half, centre, centre + half]),
                      levels=levels)
    base_coverage, coverages = [], []
    for split in range(splits):
        calibration = Prediction(mean=centre[split, :n], quantiles=base.quantiles[:, split, :n],
                                 levels=levels)
        cqr = ConformalizedQuantileRegression(0.9).calibrate(calibration, y[split, :n])
        test = Prediction(mean=centre[split, n:], quantiles=base.quantiles[:, split, n:],
                          levels=levels)
        out = cqr.predict(test)
        assert torch.allclose(out.quantiles[1] - out.quantiles[0],
                              2 * half[split, n:] + 2 * cqr.quantile_)
        coverages.append(float(covered(out, y[split, n:]).mean()))
        base_coverage.append(float(covered(test, y[split, n:]).mean()))
    assert np.mean(base_coverage) < 0.8
    assert abs(np.mean(coverages) - 0.9) < 0.01


def test_pinball_loss_values_and_minimiser():
    y = torch.tensor([0.0, 1.0])
    quantiles = torch.tensor([[1.0, 1.0], [0.0, 0.0]])  # level 0.25 at 1, level 0.75 at 0
    # rho_0.25: u = -1 -> 0.75, u = 0 -> 0; rho_0.75: u = 0 -> 0, u = 1 -> 0.75
    assert float(pinball_loss(quantiles, y, torch.tensor([0.25, 0.75]))) == pytest.approx(0.375)
    samples = torch.randn(2001, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    grid = torch.linspace(-3, 3, 6001, dtype=torch.float64)
    losses = torch.stack([pinball_loss(c.expand(1, 2001), samples, torch.tensor([0.8]))
                          for c in grid])
    assert float(grid[losses.argmin()]) == pytest.approx(float(samples.quantile(0.8)), abs=2e-3)


def test_quantile_regressor_never_crosses_and_cqr_runs_end_to_end():
    torch.manual_seed(0)
    levels = [0.05, 0.5, 0.95]
    untrained = QuantileRegressor(3, levels, width=16)
    q = untrained(torch.randn(500, 3) * 10)
    assert q.shape == (3, 500) and bool((q.diff(dim=0) > 0).all())
    generator = torch.Generator().manual_seed(4)
    x, y = regression_data(3000, generator)
    x = x[:, None]
    model = fit_quantile_regressor(x[:1000], y[:1000], levels, epochs=40, batch_size=100, lr=3e-3)
    calibration, test = model.predict(x[1000:1500]), model.predict(x[1500:])
    assert torch.equal(calibration.mean, calibration.quantiles[1])  # the median
    cqr = ConformalizedQuantileRegression(0.9).calibrate(calibration, y[1000:1500])
    out = cqr.predict(test)
    assert abs(float(covered(out, y[1500:]).mean()) - 0.9) < 0.03
    # the band adapts: wider where the noise is larger (|x| > 1.5 versus |x| < 0.5)
    width = out.quantiles[1] - out.quantiles[0]
    assert float(width[x[1500:, 0].abs() > 1.5].mean()) > 1.5 * float(
        width[x[1500:, 0].abs() < 0.5].mean())


# ---- last-layer Laplace -----------------------------------------------------------------------

def feature_model(outputs: int = 2) -> nn.Sequential:
    torch.manual_seed(5)
    return nn.Sequential(nn.Linear(2, 12), nn.Tanh(), nn.Linear(12, outputs)).double()


def features(model: nn.Sequential, x: torch.Tensor) -> np.ndarray:
    """Frozen features with the bias column, ``[N, 13]``."""
    with torch.no_grad():
        phi = model[1](model[0](x)).numpy()
    return np.hstack([phi, np.ones((phi.shape[0], 1))])


def ridge(phi: np.ndarray, y: np.ndarray, lam: float, sigma: np.ndarray) -> np.ndarray:
    """Posterior mean weights ``[K, P]`` of Bayesian linear regression per output."""
    p = phi.shape[1]
    return np.stack([np.linalg.solve(phi.T @ phi / s**2 + lam * np.eye(p), phi.T @ y[:, k] / s**2)
                     for k, s in enumerate(sigma)])


def set_last_layer(model: nn.Sequential, weights: np.ndarray) -> None:
    with torch.no_grad():
        model[-1].weight.copy_(torch.from_numpy(weights[:, :-1]))
        model[-1].bias.copy_(torch.from_numpy(weights[:, -1]))


def laplace_data():
    generator = torch.Generator().manual_seed(6)
    x = torch.randn(150, 2, generator=generator, dtype=torch.float64)
    y = torch.stack([torch.sin(x[:, 0]) + x[:, 1], x[:, 0] * x[:, 1]], dim=1)
    return x, y + 0.2 * torch.randn(y.shape, generator=generator, dtype=torch.float64)


def test_laplace_predictive_equals_bayesian_linear_regression():
    model, (x, y) = feature_model(), laplace_data()
    sigma, lam = np.array([0.3, 0.5]), 2.0
    x_test = 3 * torch.randn(40, 2, dtype=torch.float64)
    laplace = LastLayerLaplace(model, prior_precision=lam, noise_std=torch.tensor(sigma))
    prediction = laplace.fit(x, y, batch_size=64).predict(x_test, batch_size=16)
    phi, phi_test = features(model, x), features(model, x_test)
    for k, s in enumerate(sigma):
        precision = phi.T @ phi / s**2 + lam * np.eye(phi.shape[1])
        epistemic = np.einsum("ip,pi->i", phi_test, np.linalg.solve(precision, phi_test.T))
        np.testing.assert_allclose(prediction.epistemic_std[:, k].numpy() ** 2, epistemic,
                                   rtol=1e-9)
        np.testing.assert_allclose(prediction.std[:, k].numpy() ** 2, epistemic + s**2,
                                   rtol=1e-9)
        np.testing.assert_allclose(prediction.aleatoric_std[:, k].numpy(), s, rtol=1e-12)
        np.testing.assert_allclose(laplace.posterior_covariance[k].numpy(),
                                   np.linalg.inv(precision), rtol=1e-8, atol=1e-12)
    with torch.no_grad():
        assert torch.equal(prediction.mean, model(x_test))
    # without a given noise: sigma_k^2 is the mean squared training residual
    estimated = LastLayerLaplace(model, prior_precision=lam).fit(x, y)
    with torch.no_grad():
        residual = (y - model(x)).numpy()
    np.testing.assert_allclose(estimated.noise_std.numpy() ** 2, (residual**2).mean(0),
                               rtol=1e-12)


def blr_log_evidence(phi, y, lam, sigma) -> float:
    """``sum_k log N(y_k; 0, sigma_k^2 I + Phi Phi^T / lambda)``: closed form."""
    total = 0.0
    for k, s in enumerate(sigma):
        cov = s**2 * np.eye(phi.shape[0]) + phi @ phi.T / lam
        _, logdet = np.linalg.slogdet(cov)
        total += -0.5 * (y[:, k] @ np.linalg.solve(cov, y[:, k]) + logdet
                         + phi.shape[0] * np.log(2 * np.pi))
    return total


def laplace_log_evidence(phi, y, weights, lam, sigma) -> float:
    """``log p(y | w*) + log p(w*) - 1/2 log det(H / 2 pi)`` with numpy, per output."""
    total, p = 0.0, phi.shape[1]
    for k, s in enumerate(sigma):
        residual = y[:, k] - phi @ weights[k]
        log_lik = -0.5 * (residual @ residual / s**2 + len(y) * np.log(2 * np.pi * s**2))
        log_prior = -0.5 * (lam * weights[k] @ weights[k] - p * np.log(lam / (2 * np.pi)))
        _, logdet = np.linalg.slogdet((phi.T @ phi / s**2 + lam * np.eye(p)) / (2 * np.pi))
        total += log_lik + log_prior - 0.5 * logdet
    return total


def test_laplace_marginal_likelihood_and_its_optimum():
    model, (x, y) = feature_model(), laplace_data()
    sigma, lam0 = np.array([0.25, 0.4]), 3.0
    phi, targets = features(model, x), y.numpy()
    weights = ridge(phi, targets, lam0, sigma)
    set_last_layer(model, weights)
    laplace = LastLayerLaplace(model, noise_std=torch.tensor(sigma)).fit(x, y)
    # at the ridge weights for lambda_0 the Laplace evidence is the exact BLR evidence
    assert laplace.log_marginal_likelihood(lam0) == pytest.approx(
        blr_log_evidence(phi, targets, lam0, sigma), rel=1e-10)
    # the optimised lambda is the maximum of a brute-force grid of the numpy objective
    log_grid = np.linspace(np.log(1e-4), np.log(1e4), 4001)
    values = [laplace_log_evidence(phi, targets, weights, np.exp(s), sigma) for s in log_grid]
    best = int(np.argmax(values))
    assert 0 < best < len(log_grid) - 1
    spacing = log_grid[1] - log_grid[0]
    assert abs(np.log(laplace.prior_precision) - log_grid[best]) <= spacing
    assert laplace.log_marginal_likelihood() >= values[best] - 1e-9
    assert laplace.log_marginal_likelihood(np.exp(log_grid[best])) == pytest.approx(
        values[best], rel=1e-10)


def test_laplace_epistemic_std_grows_away_from_the_data():
    torch.manual_seed(7)
    model = MLP(1, 1, width=32, hidden_layers=2, activation="relu").double()
    x = torch.rand(200, 1, dtype=torch.float64) * 2 - 1
    y = torch.sin(3 * x) + 0.1 * torch.randn(x.shape, dtype=torch.float64)
    with torch.no_grad():
        phi = torch.cat([model.net[:-1](x), torch.ones(200, 1, dtype=torch.float64)], 1).numpy()
    set_last_layer(model.net, ridge(phi, y.numpy(), 1.0, np.array([0.1])))
    laplace = LastLayerLaplace(model).fit(x, y)
    assert laplace.last_layer is model.net[-1]
    prediction = laplace.predict(torch.tensor([[0.0], [1.5], [3.0], [6.0]], dtype=torch.float64))
    epistemic = prediction.epistemic_std[:, 0]
    assert bool((epistemic.diff() > 0).all()) and float(epistemic[-1]) > 5 * float(epistemic[0])
    assert torch.allclose(prediction.aleatoric_std, laplace.noise_std.expand(4, 1).to(y))


def test_laplace_on_a_field_model_traces_the_output_layout():
    """FNO: the last Linear acts per pixel channels-last and the output is moved to
    channels-first; each pixel's variance is phi(pixel)^T Sigma_c phi(pixel)."""
    torch.manual_seed(8)
    model = FNO(ndim=1, in_channels=1, out_channels=2, modes=4, width=6, layers=1).double()
    x = torch.randn(12, 1, 16, dtype=torch.float64)
    y = model(x).detach() + 0.1 * torch.randn(12, 2, 16, dtype=torch.float64)
    laplace = LastLayerLaplace(model).fit(x, y, batch_size=5)
    assert laplace.n_observations == 12 * 16
    prediction = laplace.predict(x[:3])
    captured = []
    handle = model.project[-1].register_forward_hook(lambda m, i, o: captured.append(i[0]))
    with torch.no_grad():
        model(x[:3])
    handle.remove()
    phi = torch.cat([captured[0], torch.ones(3, 16, 1, dtype=torch.float64)], -1)  # [3, 16, P]
    expected = torch.einsum("bsp,cpq,bsq->bcs", phi, laplace.posterior_covariance, phi)
    assert torch.allclose(prediction.epistemic_std ** 2, expected, rtol=1e-9)
    assert prediction.mean.shape == (3, 2, 16)
    with pytest.raises(ValueError, match="not its last nn.Linear's output"):
        LastLayerLaplace(nn.Sequential(nn.Linear(3, 2), nn.Softplus())).fit(
            torch.randn(4, 3), torch.randn(4, 2))
