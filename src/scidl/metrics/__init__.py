"""Metrics, each named and defined once.

* :mod:`scidl.metrics.fields`: errors of point predictions of fields, one value per sample
  (``relative_l2``, ``rmse``, ``max_abs_error``, ``relative_h1``).
* :mod:`scidl.metrics.probabilistic`: proper scores of predictive distributions (Gaussian NLL,
  CRPS of Gaussians and ensembles, quantile score), intervals, sharpness, spread-skill.
* :mod:`scidl.metrics.calibration`: PIT, reliability curves, rank histograms and
  :func:`summarize`, the dictionary of probabilistic scores that reports record.
* :mod:`scidl.metrics.forecast`: rollout scores against lead time (RMSE, ACC, Pearson
  correlation and high-correlation time, energy spectra, invariant drift, ensemble CRPS and
  spread-skill).
"""

from scidl.metrics.calibration import (
    DEFAULT_LEVELS,
    CalibrationCurve,
    calibration_error,
    pit,
    pit_calibration_error,
    rank_histogram,
    summarize,
)
from scidl.metrics.fields import max_abs_error, relative_h1, relative_l2, rmse
from scidl.metrics.forecast import (
    acc_by_lead,
    crps_by_lead,
    energy_spectrum,
    high_correlation_time,
    invariant_drift,
    latitude_weights,
    pearson_by_lead,
    rmse_by_lead,
    spectrum_error_by_lead,
    spread_skill_by_lead,
)
from scidl.metrics.probabilistic import (
    Reduction,
    crps_ensemble,
    crps_gaussian,
    gaussian_nll,
    interval_coverage,
    interval_width,
    quantile_score,
    reduce_items,
    sharpness,
    spread_skill_ratio,
)

__all__ = [
    "DEFAULT_LEVELS",
    "CalibrationCurve",
    "Reduction",
    "calibration_error",
    "crps_ensemble",
    "crps_gaussian",
    "gaussian_nll",
    "interval_coverage",
    "interval_width",
    "max_abs_error",
    "pit",
    "pit_calibration_error",
    "quantile_score",
    "rank_histogram",
    "reduce_items",
    "relative_h1",
    "relative_l2",
    "rmse",
    "sharpness",
    "spread_skill_ratio",
    "summarize",
    "acc_by_lead",
    "crps_by_lead",
    "energy_spectrum",
    "high_correlation_time",
    "invariant_drift",
    "latitude_weights",
    "pearson_by_lead",
    "rmse_by_lead",
    "spectrum_error_by_lead",
    "spread_skill_by_lead",
]
