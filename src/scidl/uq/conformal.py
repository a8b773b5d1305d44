"""Split conformal prediction: distribution-free intervals around any model's predictions.

Given a held-out calibration set whose items are exchangeable with the test items, the
interval built from the ``ceil((n + 1)(1 - alpha))``-th smallest of ``n`` calibration
nonconformity scores covers a new target with probability at least ``1 - alpha``, whatever
the model and the data distribution (Vovk et al. 2005; Lei et al. 2018, "Distribution-free
predictive inference for regression", thm. 2.2; Angelopoulos & Bates 2023, "A gentle
introduction to conformal prediction", sec. 1). For continuous scores the coverage is also
at most ``1 - alpha + 1 / (n + 1)``.

Two wrappers, both ``calibrate(prediction, y)`` then ``predict(prediction) -> Prediction``:

* :class:`SplitConformal` scores ``|y - mean|`` (or ``|y - mean| / std``) around a point or
  Gaussian prediction;
* :class:`ConformalizedQuantileRegression` scores how far ``y`` falls outside a predicted
  quantile band (Romano, Patterson & Candes 2019, eq. 6), which keeps the band's adaptivity.

Fields (items of shape ``[C, *S]``) are calibrated pointwise by default: every output location
gets its own quantile from its ``n`` scores, which are exchangeable across items, so the
guarantee holds at every location separately.
"""

from __future__ import annotations

import math

import torch

from scidl.errors import ShapeError
from scidl.uq.prediction import Prediction

SCORES = ("absolute", "normalized")


def _check_coverage(coverage: float) -> None:
    if not 0.0 < coverage < 1.0:
        raise ValueError(f"coverage must be inside (0, 1), got {coverage}")


def conformal_rank(n: int, coverage: float) -> int:
    """The rank ``k = ceil((n + 1) * coverage)`` (1-based) of the calibration score that is the
    conformal quantile; raises ValueError when ``k > n`` (the interval would be infinite)."""
    _check_coverage(coverage)
    # the small tolerance keeps e.g. (19 + 1) * 0.9 = 18.000000000000004 at rank 18
    k = math.ceil((n + 1) * coverage - 1e-9)
    if k > n:
        needed = math.ceil(coverage / (1.0 - coverage) - 1e-9)
        raise ValueError(f"{n} calibration items are too few for coverage {coverage}: the "
                         f"conformal quantile would be infinite; need at least {needed}")
    return max(k, 1)


def conformal_quantile(scores: torch.Tensor, coverage: float) -> torch.Tensor:
    """The finite-sample conformal quantile of ``scores`` along dim 0: the ``k``-th smallest,
    ``k = ceil((n + 1) * coverage)``.

    Shapes:
        scores ``[n, *shape]`` -> ``[*shape]``.
    """
    if scores.ndim == 0 or scores.shape[0] == 0:
        raise ShapeError(f"scores must have shape [n, *shape] with n >= 1, got "
                         f"{tuple(scores.shape)}")
    if not bool(torch.isfinite(scores).all()):
        raise ValueError("calibration scores contain NaN or inf (check the predictions, the "
                         "targets, and that std > 0 for normalized scores)")
    k = conformal_rank(scores.shape[0], coverage)
    return torch.kthvalue(scores, k, dim=0).values


def _levels(coverage: float, like: torch.Tensor) -> torch.Tensor:
    # float64 whatever the data's dtype, so that ``interval(coverage)`` finds these levels
    # exactly (0.05 rounded to float32 lies outside [0.05, 0.95] by more than its tolerance)
    alpha = 1.0 - coverage
    return torch.tensor([alpha / 2, 1 - alpha / 2], dtype=torch.float64, device=like.device)


def _check_targets(prediction: Prediction, y: torch.Tensor) -> torch.Tensor:
    y = torch.as_tensor(y, dtype=prediction.mean.dtype, device=prediction.mean.device)
    if y.shape != prediction.mean.shape:
        raise ShapeError(f"targets have shape {tuple(y.shape)}, the prediction's mean has "
                         f"{tuple(prediction.mean.shape)}; they must match")
    return y


def _reduce(scores: torch.Tensor, coverage: float, pointwise: bool) -> torch.Tensor:
    """Pointwise: one quantile per location ``[*shape]``; pooled: one over all scores ``[]``."""
    return conformal_quantile(scores if pointwise else scores.reshape(-1), coverage)


class SplitConformal:
    """Split conformal intervals ``mean -/+ q`` (absolute scores) or ``mean -/+ q * std``
    (normalized scores, Lei et al. 2018 sec. 5.2), ``q`` the conformal quantile of the
    calibration scores.

    Args:
        coverage: target coverage ``1 - alpha`` in (0, 1).
        score: ``"absolute"`` for ``|y - mean|`` or ``"normalized"`` for ``|y - mean| / std``
            (needs a prediction with ``std``; gives intervals that adapt to the predicted
            spread).
        pointwise: for items with a shape (fields ``[C, *S]``), one quantile per location
            (coverage holds at every location); False pools all locations' scores into one
            quantile (coverage then holds on average over locations only, and approximately,
            because scores at different locations of one item are not exchangeable).

    Shapes:
        calibration ``prediction.mean``, ``y``: ``[n, *shape]``; ``quantile_``: ``[*shape]``
        (pointwise) or ``[]``; ``predict`` keeps ``[N, *shape]`` and adds
        ``quantiles [2, N, *shape]`` at levels ``[alpha / 2, 1 - alpha / 2]``.
    """

    def __init__(self, coverage: float = 0.9, score: str = "absolute", pointwise: bool = True):
        if score not in SCORES:
            raise ValueError(f"score must be one of {SCORES}, got {score!r}")
        _check_coverage(coverage)
        self.coverage, self.score, self.pointwise = coverage, score, pointwise
        self.quantile_: torch.Tensor | None = None
        self.n_calibration = 0

    def _scale(self, prediction: Prediction) -> torch.Tensor | None:
        if self.score == "absolute":
            return None
        if prediction.std is None:
            raise ValueError("score='normalized' needs a Prediction with std; use "
                             "score='absolute' for point predictions")
        if not bool((prediction.std > 0).all()):
            raise ValueError("score='normalized' needs std > 0 everywhere; the prediction has "
                             f"{int((prediction.std <= 0).sum())} non-positive std value(s)")
        return prediction.std

    def scores(self, prediction: Prediction, y: torch.Tensor) -> torch.Tensor:
        """Nonconformity scores ``[n, *shape]`` of targets ``y`` ``[n, *shape]``."""
        residual = (_check_targets(prediction, y) - prediction.mean).abs()
        scale = self._scale(prediction)
        return residual if scale is None else residual / scale

    def calibrate(self, prediction: Prediction, y: torch.Tensor) -> SplitConformal:
        """Compute the conformal quantile from calibration predictions and targets ``[n,
        *shape]`` (held out from training); returns ``self``."""
        self.quantile_ = _reduce(self.scores(prediction, y), self.coverage, self.pointwise)
        self.n_calibration = len(prediction)
        return self

    def predict(self, prediction: Prediction) -> Prediction:
        """The conformal interval as a Prediction holding ``mean`` (and ``std``, if any) and
        the two quantiles ``[2, N, *shape]``."""
        if self.quantile_ is None:
            raise RuntimeError("SplitConformal.predict called before calibrate(prediction, y)")
        if self.pointwise and self.quantile_.shape != prediction.mean.shape[1:]:
            raise ShapeError(f"calibrated on items of shape {tuple(self.quantile_.shape)}, "
                             f"got predictions {tuple(prediction.mean.shape)}")
        half = self.quantile_.to(prediction.mean)
        scale = self._scale(prediction)
        if scale is not None:
            half = half * scale
        quantiles = torch.stack([prediction.mean - half, prediction.mean + half])
        return Prediction(mean=prediction.mean, std=prediction.std, quantiles=quantiles,
                          levels=_levels(self.coverage, prediction.mean))


class ConformalizedQuantileRegression:
    """Conformalized quantile regression, CQR (Romano, Patterson & Candes 2019).

    The base prediction supplies a band ``[lo, hi]`` = its central ``coverage`` interval
    (its stored quantiles at ``alpha / 2`` and ``1 - alpha / 2``, interpolated if need be, or
    a Gaussian interval). The scores ``E = max(lo - y, y - hi)`` (eq. 6) give the conformal
    quantile ``q``, and the calibrated band is ``[lo - q, hi + q]`` (eq. 7): widened where the
    base band under-covers, narrowed where it over-covers.

    Args:
        coverage: target coverage ``1 - alpha`` in (0, 1).
        pointwise: one ``q`` per output location for field items (see
            :class:`SplitConformal`).

    Shapes:
        as :class:`SplitConformal`.
    """

    def __init__(self, coverage: float = 0.9, pointwise: bool = True):
        _check_coverage(coverage)
        self.coverage, self.pointwise = coverage, pointwise
        self.quantile_: torch.Tensor | None = None
        self.n_calibration = 0

    def _band(self, prediction: Prediction) -> tuple[torch.Tensor, torch.Tensor]:
        try:
            return prediction.interval(self.coverage)
        except ValueError as error:
            raise ValueError(f"CQR needs the base prediction's {self.coverage} interval: "
                             f"{error}") from error

    def scores(self, prediction: Prediction, y: torch.Tensor) -> torch.Tensor:
        """CQR scores ``max(lo - y, y - hi)`` ``[n, *shape]`` (negative inside the band)."""
        y = _check_targets(prediction, y)
        lo, hi = self._band(prediction)
        return torch.maximum(lo - y, y - hi)

    def calibrate(self, prediction: Prediction, y: torch.Tensor
                  ) -> ConformalizedQuantileRegression:
        """Compute the conformal correction from calibration predictions and targets;
        returns ``self``."""
        self.quantile_ = _reduce(self.scores(prediction, y), self.coverage, self.pointwise)
        self.n_calibration = len(prediction)
        return self

    def predict(self, prediction: Prediction) -> Prediction:
        """The calibrated band ``[lo - q, hi + q]`` as quantiles ``[2, N, *shape]``; ``mean``
        (and ``std``, if any) are kept."""
        if self.quantile_ is None:
            raise RuntimeError("ConformalizedQuantileRegression.predict called before "
                               "calibrate(prediction, y)")
        if self.pointwise and self.quantile_.shape != prediction.mean.shape[1:]:
            raise ShapeError(f"calibrated on items of shape {tuple(self.quantile_.shape)}, "
                             f"got predictions {tuple(prediction.mean.shape)}")
        lo, hi = self._band(prediction)
        q = self.quantile_.to(prediction.mean)
        return Prediction(mean=prediction.mean, std=prediction.std,
                          quantiles=torch.stack([lo - q, hi + q]),
                          levels=_levels(self.coverage, prediction.mean))

