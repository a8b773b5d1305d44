"""Metrics, each named and defined once. Fields are ``[B, ...]``: one value per sample."""

from __future__ import annotations

import torch


def relative_l2(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``||prediction - target||_2 / ||target||_2`` per sample.

    Shapes:
        ``[B, *]`` and ``[B, *]`` -> ``[B]``.
    """
    if prediction.shape != target.shape:
        raise ValueError(
            f"prediction {tuple(prediction.shape)} and target {tuple(target.shape)} differ in shape"
        )
    diff = (prediction - target).flatten(1).norm(dim=1)
    return diff / target.flatten(1).norm(dim=1).clamp_min(torch.finfo(target.dtype).tiny)


def rmse(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Root-mean-square error per sample, ``[B, *] -> [B]``."""
    return (prediction - target).flatten(1).pow(2).mean(dim=1).sqrt()


def max_abs_error(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Largest pointwise error per sample, ``[B, *] -> [B]``."""
    return (prediction - target).flatten(1).abs().amax(dim=1)
