"""Normalisers fitted on a training set, applied to inputs and outputs of a model.

``PointwiseNormalizer`` standardises each point (and channel) of a field with the mean and
standard deviation over the training samples, as the FNO paper's ``UnitGaussianNormalizer``;
``GlobalNormalizer`` uses one mean and one standard deviation for the whole set. Both are
``nn.Module`` s with buffers, so they are saved in checkpoints with the model.
"""

from __future__ import annotations

import torch

from scidl._fitted import FittedBuffersModule
from scidl.errors import ShapeError


class _Normalizer(FittedBuffersModule):
    """``encode(x) = (x - mean) / (std + eps)``, ``decode`` its inverse."""

    fitted_buffers = ("mean", "std")

    def __init__(self, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.register_buffer("mean", torch.zeros(0))
        self.register_buffer("std", torch.zeros(0))

    def _statistics(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    @torch.no_grad()
    def fit(self, x: torch.Tensor) -> _Normalizer:
        """Set the statistics from training samples ``x [N, ...]`` (N >= 2); returns self."""
        if x.ndim < 1 or x.shape[0] < 2:
            raise ShapeError(f"fit needs at least two samples along dim 0, got {tuple(x.shape)}")
        if not torch.isfinite(x).all():
            raise ValueError("the training samples contain NaN or infinite values")
        self.mean, self.std = self._statistics(x)
        return self

    def _check_fitted(self) -> None:
        if self.mean.numel() == 0:
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit(train_samples)")

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        self._check_fitted()
        return (x - self.mean) / (self.std + self.eps)

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        self._check_fitted()
        return x * (self.std + self.eps) + self.mean



class PointwiseNormalizer(_Normalizer):
    """Mean and standard deviation per point and channel over the training samples.

    Shapes:
        fit on ``[N, *F]``; encode / decode ``[B, *F]`` (statistics ``[*F]``).
    """

    def _statistics(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x.mean(0), x.std(0)


class GlobalNormalizer(_Normalizer):
    """One mean and one standard deviation over every value of the training samples.

    Shapes:
        fit on ``[N, ...]``; encode / decode any shape (statistics are scalars).
    """

    def _statistics(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x.mean(), x.std()
