"""Calibration of probabilistic predictions: PIT, reliability curves, rank histograms, and
:func:`summarize`, the one dictionary of scores that run reports and benchmarks record.

Shapes follow :mod:`scidl.metrics.probabilistic`: ``y`` is ``[N, *shape]``, ensembles are
``[S, N, *shape]``, and a field contributes every one of its points.

Functions taking a prediction accept any object with the attributes of
:class:`scidl.uq.Prediction` (``mean``, ``std``, ``samples``, ``quantiles``, ``levels``,
``quantile(level)``, ``interval(coverage)``); ``scidl.uq`` is not imported here, so the
metrics layer stays below every model and method.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

import torch

from scidl.errors import ShapeError
from scidl.metrics.probabilistic import (
    _check_samples,
    crps_ensemble,
    crps_gaussian,
    gaussian_nll,
    interval_coverage,
    interval_width,
    quantile_score,
    sharpness,
    spread_skill_ratio,
)

if TYPE_CHECKING:
    from scidl.uq.prediction import Prediction

DEFAULT_LEVELS = tuple(j / 20 for j in range(1, 20))  # 0.05, 0.10, ..., 0.95


class CalibrationCurve(NamedTuple):
    """Result of :func:`calibration_error`: the scalar ``error`` ``[]`` and the reliability
    curve, expected ``levels`` ``[J]`` against ``observed`` frequencies ``[J]``."""

    error: torch.Tensor
    levels: torch.Tensor
    observed: torch.Tensor


def _check_prediction(prediction, y: torch.Tensor) -> None:
    if not hasattr(prediction, "mean") or not hasattr(prediction, "quantile"):
        raise TypeError(f"expected a scidl.uq.Prediction, got {type(prediction).__name__}")
    if prediction.mean.shape != y.shape:
        raise ShapeError(f"prediction.mean has shape {tuple(prediction.mean.shape)} but y has "
                         f"{tuple(y.shape)}; they must match")


def _uniform(shape, generator: torch.Generator | None, like: torch.Tensor) -> torch.Tensor:
    """``U(0, 1)`` draws from ``generator`` (on its own device), moved to ``like``'s."""
    device = generator.device if generator is not None else like.device
    dtype = like.dtype if like.is_floating_point() else torch.float64
    return torch.rand(shape, generator=generator, device=device, dtype=dtype).to(like.device)


def _ranks(samples: torch.Tensor, y: torch.Tensor,
           generator: torch.Generator | None) -> torch.Tensor:
    """Rank ``r`` in ``{0..S}`` of ``y`` among the members, ``#{x_i < y}`` plus a uniform
    integer in ``{0..#{x_i = y}}``: ties are broken at random, so a rank is uniform whenever
    ``y`` and the members are exchangeable, even for discrete values."""
    below = (samples < y.unsqueeze(0)).sum(dim=0)
    ties = (samples == y.unsqueeze(0)).sum(dim=0)
    u = _uniform(y.shape, generator, samples)
    return below + (u * (ties + 1)).floor().long().clamp_max(ties)


def rank_histogram(samples: torch.Tensor, y: torch.Tensor,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Talagrand (verification rank) histogram (Hamill 2001): counts of the rank of ``y``
    among the ``S`` members, ties broken at random with ``generator``. Flat for an
    exchangeable ensemble; U-shaped when under-dispersed, dome-shaped when over-dispersed,
    sloped when biased.

    Shapes:
        ``samples``: ``[S, N, *shape]``; ``y``: ``[N, *shape]`` -> ``[S + 1]`` int64 counts
        summing to ``y.numel()``.
    """
    _check_samples(samples, y)
    ranks = _ranks(samples, y, generator)
    return torch.bincount(ranks.flatten(), minlength=samples.shape[0] + 1)


def pit(prediction: Prediction, y: torch.Tensor,
        generator: torch.Generator | None = None) -> torch.Tensor:
    """Probability integral transform ``u = F(y)`` (Dawid 1984; Gneiting et al. 2007):
    uniform on ``(0, 1)`` exactly when ``y`` is drawn from the predictive ``F``.

    * Gaussian (``prediction.std`` set): ``u = Phi((y - mean) / std)``.
    * Samples only: the randomized PIT ``u = (r + V) / (S + 1)`` with ``r`` the rank of ``y``
      among the members (ties broken at random) and ``V ~ U(0, 1)``, both from ``generator``;
      uniform when ``y`` and the members are exchangeable.

    Quantile-only predictions have no PIT outside their stored levels: use
    :func:`calibration_error`, which needs quantiles only.

    Shapes:
        ``y``: ``[N, *shape]`` -> ``[N, *shape]``.
    """
    _check_prediction(prediction, y)
    if prediction.std is not None:
        return torch.special.ndtr((y - prediction.mean) / prediction.std)
    if prediction.samples is not None:
        samples = prediction.samples
        r = _ranks(samples, y, generator).to(samples.dtype)
        return (r + _uniform(y.shape, generator, samples)) / (samples.shape[0] + 1)
    raise ValueError("pit needs a Prediction with std or samples; this one holds "
                     + ("quantiles only" if prediction.quantiles is not None else "a mean only"))


def _levels_tensor(levels, like: torch.Tensor) -> torch.Tensor:
    dtype = like.dtype if like.is_floating_point() else torch.float64
    levels = torch.as_tensor(levels, dtype=dtype, device=like.device).flatten()
    if levels.numel() == 0 or not bool(((levels > 0) & (levels < 1)).all()):
        raise ValueError("calibration levels must be a non-empty list inside (0, 1)")
    return levels


def pit_calibration_error(pit_values: torch.Tensor,
                          levels=DEFAULT_LEVELS) -> CalibrationCurve:
    """:func:`calibration_error` from PIT values: ``observed_j = mean 1{u <= p_j}``. For a
    Gaussian prediction ``u <= p`` exactly when ``y <= q_p``, so this equals the quantile
    form (one pass instead of one per level); for an ensemble it scores the randomized PIT.

    Shapes:
        ``pit_values``: any -> ``error []``, ``levels, observed [J]``.
    """
    p = _levels_tensor(levels, pit_values)
    u = pit_values.flatten().unsqueeze(0)
    observed = (u <= p.unsqueeze(1)).to(p.dtype).mean(dim=1)
    return CalibrationCurve((p - observed).square().mean(), p, observed)


def calibration_error(prediction_or_quantile_fn: Prediction | Callable[[float], torch.Tensor],
                      y: torch.Tensor, levels=None) -> CalibrationCurve:
    """Regression calibration error of Kuleshov et al. (2018, eq. 9, unit weights):

    ``observed_j = mean 1{y <= q_{p_j}}``,  ``error = mean_j (p_j - observed_j)^2``,

    over all elements of ``y``; ``q_p`` is the predictive ``p``-quantile. A calibrated
    predictor has ``observed_j -> p_j`` (``error`` of order ``p(1-p)/y.numel()``); plotting
    ``observed`` against ``levels`` gives the reliability diagram.

    Args:
        prediction_or_quantile_fn: a ``Prediction`` (its ``quantile(p)``: stored quantiles,
            else Gaussian, else sample quantiles) or a function ``p -> q_p`` ``[N, *shape]``.
        y: ``[N, *shape]`` observations.
        levels: the ``p_j`` in ``(0, 1)``; by default the prediction's stored quantile
            levels if it has them, else ``0.05, 0.10, ..., 0.95``.

    Returns:
        ``CalibrationCurve(error [], levels [J], observed [J])``.
    """
    source = prediction_or_quantile_fn
    if callable(source) and not hasattr(source, "quantile"):
        quantile_fn = source
    else:
        _check_prediction(source, y)
        quantile_fn = source.quantile
        if levels is None and source.quantiles is not None:
            levels = source.levels
    p = _levels_tensor(DEFAULT_LEVELS if levels is None else levels, y)
    observed = []
    for level in p.tolist():
        q = quantile_fn(level)
        if q.shape != y.shape:
            raise ShapeError(f"the {level:g}-quantile has shape {tuple(q.shape)} but y has "
                             f"{tuple(y.shape)}")
        observed.append((y <= q).to(p.dtype).mean())
    observed = torch.stack(observed)
    return CalibrationCurve((p - observed).square().mean(), p, observed)


def summarize(prediction: Prediction, y: torch.Tensor, coverage: float = 0.9) -> dict[str, float]:
    """Every probabilistic score of ``prediction`` against ``y`` ``[N, *shape]``, as floats
    averaged over all elements (what run reports and benchmarks record):

    * ``rmse``: of ``prediction.mean``.
    * ``nll``, ``crps``: Gaussian NLL and closed-form CRPS, if ``std`` is set.
    * ``crps_ensemble``: fair ensemble CRPS of the members, if ``samples`` (``S >= 2``).
    * ``quantile_score``: pinball loss over the stored levels, if ``quantiles`` are set
      (``2 * quantile_score`` approximates the CRPS).
    * ``coverage``, ``width``: empirical coverage and mean width of the central ``coverage``
      interval (``prediction.interval``), plus ``nominal_coverage``.
    * ``calibration_error``: :func:`calibration_error` at its default levels.
    * ``sharpness``: root mean predicted variance, if ``std`` is set.
    * ``spread_skill``: :func:`spread_skill_ratio`, if ``samples`` (``S >= 2``).

    Scores that cannot be derived (a mean-only prediction has no interval) are left out.
    """
    _check_prediction(prediction, y)
    with torch.no_grad():
        out = {"rmse": float((prediction.mean - y).square().mean().sqrt())}
        if prediction.std is not None:
            out["nll"] = float(gaussian_nll(prediction.mean, prediction.std, y))
            out["crps"] = float(crps_gaussian(prediction.mean, prediction.std, y))
        samples = prediction.samples
        has_ensemble = samples is not None and samples.shape[0] >= 2
        if has_ensemble:
            out["crps_ensemble"] = float(crps_ensemble(samples, y, fair=True))
        if prediction.quantiles is not None:
            out["quantile_score"] = float(quantile_score(prediction.quantiles,
                                                         prediction.levels, y))
        if prediction.std is None and prediction.quantiles is None and samples is None:
            return out
        lower, upper = prediction.interval(coverage)
        out["coverage"] = float(interval_coverage(lower, upper, y))
        out["nominal_coverage"] = float(coverage)
        out["width"] = float(interval_width(lower, upper))
        out["calibration_error"] = float(calibration_error(prediction, y).error)
        if prediction.std is not None:
            out["sharpness"] = float(sharpness(prediction.std))
        if has_ensemble:
            out["spread_skill"] = float(spread_skill_ratio(samples, y))
    return out
