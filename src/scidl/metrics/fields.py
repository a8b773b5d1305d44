"""Errors of predicted fields, each named and defined once. Fields are ``[B, ...]``: one value per
sample."""

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


def relative_h1(prediction: torch.Tensor, target: torch.Tensor, ndim: int = 1,
                length: float | tuple[float, ...] = 1.0) -> torch.Tensor:
    """``|prediction - target|_H1 / |target|_H1`` per sample, for periodic fields on uniform
    grids over the last ``ndim`` dims.

    The Sobolev norm is computed spectrally, ``|f|_H1^2 = sum_k (1 + |k|^2) |f_k|^2`` with
    ``k = 2 pi n / L`` (the H1 loss of Li et al. 2021 and neuraloperator, there with ``L = 2 pi``),
    so errors in gradients weigh in; without derivatives it is the L2 ratio.

    Shapes:
        ``[B, *C, *S]`` and the same -> ``[B]``; ``len(S) = ndim``.
    """
    if prediction.shape != target.shape:
        raise ValueError(
            f"prediction {tuple(prediction.shape)} and target {tuple(target.shape)} differ in shape"
        )
    sizes = prediction.shape[-ndim:]
    lengths = (length,) * ndim if isinstance(length, (int, float)) else tuple(length)
    dims = tuple(range(-ndim, 0))
    k2 = torch.zeros((), dtype=prediction.real.dtype, device=prediction.device)
    for axis, (n, side) in enumerate(zip(sizes, lengths)):
        freq = (torch.fft.rfftfreq(n, side / n) if axis == ndim - 1
                else torch.fft.fftfreq(n, side / n)).to(prediction.device, k2.dtype)
        k = (2 * torch.pi * freq).reshape((-1,) + (1,) * (ndim - 1 - axis))
        k2 = k2 + k.square()
    # rfft keeps k >= 0 of the last axis: the others count twice, except k = 0 and Nyquist
    last = sizes[-1]
    weight = torch.full((last // 2 + 1,), 2.0, dtype=k2.dtype, device=k2.device)
    weight[0] = 1.0
    if last % 2 == 0:
        weight[-1] = 1.0

    def norm(f: torch.Tensor) -> torch.Tensor:
        f_hat = torch.fft.rfftn(f, dim=dims)
        return ((1 + k2) * weight * f_hat.abs().square()).flatten(1).sum(1).sqrt()

    return norm(prediction - target) / norm(target).clamp_min(torch.finfo(target.dtype).tiny)
