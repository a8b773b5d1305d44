"""Heteroscedastic Gaussian outputs: a network predicts a mean and a variance per target.

:class:`GaussianHead` turns any model whose output has ``2 C`` channels along dim 1 into a
model returning ``(mean, variance)``, each with ``C`` channels, the variance made positive by a
softplus plus a floor (Nix & Weigend 1994; Lakshminarayanan et al. 2017).
Tabular models output ``[N, 2]`` for one target (``[N, 2 C]`` for ``C``); field models output
``[N, 2 C, *S]``, so every pixel gets its own variance.

Losses (each the mean over all elements, so a batch of fields and a batch of rows are treated
alike):

* :func:`gaussian_nll_loss` -- the Gaussian negative log-likelihood, including the
  ``log(2 pi) / 2`` constant, so that it is exactly ``-Normal(mean, var**0.5).log_prob(y)``.
* :func:`beta_nll_loss` -- Seitzer et al., "On the Pitfalls of Heteroscedastic Uncertainty
  Estimation with Probabilistic Neural Networks", ICLR 2022: the per-element NLL weighted
  by ``stop_grad(var) ** beta``. ``beta = 0`` is the NLL; ``beta = 1`` gives the mean the
  gradient of the mean squared error.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from scidl.errors import ShapeError
from scidl.uq.prediction import Prediction

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def split_mean_variance(output: torch.Tensor, min_std: float = 1e-6, dim: int = 1
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """Split raw network output into a mean and a positive variance.

    The first half of the channels along ``dim`` is the mean, the second half the raw
    variance; ``variance = softplus(raw) + min_std**2``.

    Shapes:
        ``output [N, 2 C, *S]`` -> ``mean, variance [N, C, *S]`` (``dim = 1``).
    """
    channels = output.shape[dim]
    if channels % 2:
        raise ShapeError(f"a Gaussian head needs an even number of output channels along dim "
                         f"{dim} (C means, then C raw variances), got shape "
                         f"{tuple(output.shape)}")
    mean, raw = output.split(channels // 2, dim=dim)
    return mean, nn.functional.softplus(raw) + min_std**2


class GaussianHead(nn.Module):
    """Wrap ``model`` so that it returns ``(mean, variance)``.

    Args:
        model: any module whose output has ``2 C`` channels along dim 1.
        min_std: floor of the predicted standard deviation (the variance is
            ``softplus(raw) + min_std**2``); Lakshminarayanan et al. use a variance floor of
            ``1e-6``, i.e. ``min_std = 1e-3``.

    Shapes:
        input: whatever ``model`` takes; output ``[N, 2 C, *S]`` of ``model`` ->
        ``mean [N, C, *S]``, ``variance [N, C, *S]``.
    """

    def __init__(self, model: nn.Module, min_std: float = 1e-6):
        super().__init__()
        if min_std < 0:
            raise ValueError(f"min_std must be >= 0, got {min_std}")
        self.model = model
        self.min_std = float(min_std)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return split_mean_variance(self.model(x), self.min_std)

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> Prediction:
        """The predictive Gaussian: ``mean``, ``std`` (all aleatoric) ``[N, C, *S]``."""
        mean, variance = self(x)
        std = variance.sqrt()
        return Prediction(mean=mean, std=std, aleatoric_std=std)


def _check_same_shape(mean: torch.Tensor, variance: torch.Tensor, target: torch.Tensor) -> None:
    if not mean.shape == variance.shape == target.shape:
        raise ShapeError(f"mean {tuple(mean.shape)}, variance {tuple(variance.shape)} and "
                         f"target {tuple(target.shape)} must have the same shape")


def _elementwise_nll(mean: torch.Tensor, variance: torch.Tensor,
                     target: torch.Tensor) -> torch.Tensor:
    """``-log N(target; mean, variance)`` per element."""
    return 0.5 * (variance.log() + (target - mean).pow(2) / variance) + _HALF_LOG_2PI


def gaussian_nll_loss(mean: torch.Tensor, variance: torch.Tensor,
                      target: torch.Tensor) -> torch.Tensor:
    """Mean Gaussian negative log-likelihood
    ``(log(2 pi var) + (y - mu)^2 / var) / 2`` over all elements.

    Shapes:
        ``mean, variance, target`` all ``[N, *shape]`` -> scalar.
    """
    _check_same_shape(mean, variance, target)
    return _elementwise_nll(mean, variance, target).mean()


def beta_nll_loss(mean: torch.Tensor, variance: torch.Tensor, target: torch.Tensor,
                  beta: float = 0.5) -> torch.Tensor:
    """beta-NLL (Seitzer et al. 2022): the per-element Gaussian NLL weighted by
    ``stop_grad(variance) ** beta``, averaged over all elements. ``beta = 0`` is
    :func:`gaussian_nll_loss`.

    Shapes:
        ``mean, variance, target`` all ``[N, *shape]`` -> scalar.
    """
    _check_same_shape(mean, variance, target)
    if beta < 0:
        raise ValueError(f"beta must be >= 0, got {beta}")
    weight = variance.detach().pow(beta)
    return (weight * _elementwise_nll(mean, variance, target)).mean()
