"""Calibrated uncertainty for any scidl model: every method returns a :class:`Prediction`
(docs/uq.md)."""

from scidl.uq.conformal import ConformalizedQuantileRegression, SplitConformal
from scidl.uq.dropout import DropoutMLP, MCDropout, fit_mc_dropout, mc_dropout_grid_search
from scidl.uq.ensemble import DeepEnsemble, VectorizedEnsemble, fit_ensemble, train_members
from scidl.uq.heads import GaussianHead, beta_nll_loss, gaussian_nll_loss
from scidl.uq.laplace import LastLayerLaplace
from scidl.uq.parallel import (
    RayUnavailableError,
    conformal_runs,
    run_tasks,
    sweep,
    train_ensemble_members,
)
from scidl.uq.prediction import Prediction, normal_quantile
from scidl.uq.quantile import QuantileRegressor, fit_quantile_regressor, pinball_loss

__all__ = [
    "ConformalizedQuantileRegression",
    "DeepEnsemble",
    "DropoutMLP",
    "GaussianHead",
    "LastLayerLaplace",
    "MCDropout",
    "Prediction",
    "QuantileRegressor",
    "RayUnavailableError",
    "SplitConformal",
    "VectorizedEnsemble",
    "beta_nll_loss",
    "conformal_runs",
    "fit_ensemble",
    "fit_mc_dropout",
    "fit_quantile_regressor",
    "gaussian_nll_loss",
    "mc_dropout_grid_search",
    "normal_quantile",
    "pinball_loss",
    "run_tasks",
    "sweep",
    "train_ensemble_members",
    "train_members",
]
