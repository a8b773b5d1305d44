"""Long-horizon forecasting with learned one-step models.

* :mod:`scidl.forecast.autoregressive`: :class:`AutoregressiveObjective`, one-step, unrolled
  and pushforward training with input noise, residual prediction and time-step conditioning,
  for :func:`scidl.train.train`;
* :mod:`scidl.forecast.rollout`: :func:`rollout` (no-grad, with monitored invariants and a
  projection hook), :class:`Forecaster`, :func:`evaluate_rollout` (scores by lead time);
* :mod:`scidl.forecast.ensemble`: perturbed-initial-condition and multi-model ensembles, CRPS
  and spread-skill by lead;
* :mod:`scidl.forecast.one_step`: :class:`OneStepForecast`, one-step training on
  channel-standardised fields;
* :mod:`scidl.forecast.stabilizers`: spectral normalisation of FNOs (per Fourier mode) and CNNs;
* :mod:`scidl.forecast.projections`: conservation projections (keep a channel's spatial mean,
  e.g. mass or zero-mean vorticity, exactly) and mass monitors;
* :mod:`scidl.forecast.plots`: figures (scores by lead, spectra, space-time, invariants).
"""

from scidl.forecast.autoregressive import MODES, AutoregressiveObjective, increment_scale
from scidl.forecast.ensemble import (
    ensemble_scores,
    gaussian_perturbation,
    multi_model_ensemble,
    perturbed_ensemble,
)
from scidl.forecast.one_step import OneStepForecast
from scidl.forecast.projections import (
    MeanProjection,
    conserved_mass,
    project_mean,
    spatial_mean,
)
from scidl.forecast.rollout import (
    Forecaster,
    RolloutResult,
    evaluate_rollout,
    mean_spectrum,
    mean_square,
    mean_value,
    rollout,
    spectrum_relative_error,
    step,
)
from scidl.forecast.stabilizers import (
    ModeSpectralNorm,
    apply_spectral_norm,
    layer_operator_norms,
    tighten_spectral_norm,
)

__all__ = [
    "MODES",
    "AutoregressiveObjective",
    "MeanProjection",
    "OneStepForecast",
    "conserved_mass",
    "project_mean",
    "spatial_mean",
    "Forecaster",
    "ModeSpectralNorm",
    "RolloutResult",
    "apply_spectral_norm",
    "ensemble_scores",
    "evaluate_rollout",
    "gaussian_perturbation",
    "increment_scale",
    "layer_operator_norms",
    "mean_spectrum",
    "mean_square",
    "mean_value",
    "multi_model_ensemble",
    "perturbed_ensemble",
    "rollout",
    "spectrum_relative_error",
    "step",
    "tighten_spectral_norm",
]
