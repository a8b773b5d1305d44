"""Scores of probabilistic predictions: proper scoring rules, intervals and ensembles.

Conventions (shared by every function here):

* ``y`` is ``[N, *shape]``: ``N`` items, each a scalar (``shape = []``) or a field. Every score
  is computed pointwise, so a field simply contributes ``prod(shape)`` values.
* Element-wise scores (NLL, CRPS, quantile score, interval coverage and width) take
  ``reduction``: ``"mean"`` (default, like ``torch.nn`` losses) averages over every element to a
  scalar ``[]``; ``"item"`` averages over ``shape`` only, one value per item ``[N]``; ``"none"``
  keeps ``[N, *shape]``. :func:`reduce_items` applies the same rule to any element-wise tensor.
* Ensembles are ``samples`` ``[S, N, *shape]``: ``S`` members along the first dimension.
* Everything follows the dtype and device of the inputs (float64 works end to end) and is
  differentiable where the score is (NLL, CRPS, quantile score, width, sharpness).

Calibration (PIT, reliability curves, rank histograms) and :func:`summarize` live in
:mod:`scidl.metrics.calibration`.
"""

from __future__ import annotations

import math
from typing import Literal

import torch

from scidl.errors import ShapeError

Reduction = Literal["mean", "item", "none"]

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def reduce_items(values: torch.Tensor, reduction: Reduction = "mean") -> torch.Tensor:
    """Reduce an element-wise score ``[N, *shape]``: ``"mean"`` -> ``[]`` (mean over all
    elements), ``"item"`` -> ``[N]`` (mean over ``shape``), ``"none"`` -> unchanged."""
    if reduction == "none":
        return values
    if reduction == "mean":
        return values.mean()
    if reduction == "item":
        if values.ndim == 0:
            raise ShapeError("reduction='item' needs a leading item dimension N, got a scalar")
        return values.reshape(values.shape[0], -1).mean(dim=1)
    raise ValueError(f"reduction must be 'mean', 'item' or 'none', got {reduction!r}")


def _check_same_shape(**tensors: torch.Tensor) -> None:
    (first_name, first), *rest = tensors.items()
    for name, tensor in rest:
        if tensor.shape != first.shape:
            raise ShapeError(f"{name} has shape {tuple(tensor.shape)} but {first_name} has "
                             f"{tuple(first.shape)}; they must match")


def _check_samples(samples: torch.Tensor, y: torch.Tensor, minimum: int = 1) -> None:
    if samples.ndim != y.ndim + 1 or samples.shape[1:] != y.shape:
        raise ShapeError(f"samples has shape {tuple(samples.shape)}, expected [S, "
                         f"{', '.join(map(str, y.shape))}] for y of shape {tuple(y.shape)}")
    if samples.shape[0] < minimum:
        raise ShapeError(f"this score needs at least {minimum} ensemble members, "
                         f"got S = {samples.shape[0]}")


def _check_std(std: torch.Tensor) -> None:
    if bool((std < 0).any()):
        raise ValueError("std must be non-negative; got negative values")


# ---- Gaussian predictions ------------------------------------------------------------------

def gaussian_nll(mean: torch.Tensor, std: torch.Tensor, y: torch.Tensor,
                 reduction: Reduction = "mean") -> torch.Tensor:
    """Negative log-likelihood of ``y`` under ``N(mean, std^2)``, constant included:

    ``NLL = 0.5 log(2 pi) + log(std) + (y - mean)^2 / (2 std^2)``  (in nats).

    Unlike ``torch.nn.functional.gaussian_nll_loss`` nothing is clamped or dropped, so values
    compare across papers; ``std = 0`` gives ``inf``.

    Shapes:
        ``mean, std, y``: ``[N, *shape]`` -> see ``reduction`` in the module docstring.
    """
    _check_same_shape(mean=mean, std=std, y=y)
    _check_std(std)
    nll = _LOG_SQRT_2PI + std.log() + 0.5 * ((y - mean) / std).square()
    return reduce_items(nll, reduction)


def crps_gaussian(mean: torch.Tensor, std: torch.Tensor, y: torch.Tensor,
                  reduction: Reduction = "mean") -> torch.Tensor:
    """Continuous ranked probability score of ``N(mean, std^2)`` at ``y``, in closed form
    (Gneiting & Raftery 2007, eq. 21; Gneiting et al. 2005):

    ``CRPS = std [ z (2 Phi(z) - 1) + 2 phi(z) - 1 / sqrt(pi) ]``,  ``z = (y - mean) / std``,

    where ``CRPS(F, y) = int (F(t) - 1{t >= y})^2 dt``; it has the units of ``y`` and tends to
    ``|y - mean|`` as ``std -> 0``.

    Shapes:
        ``mean, std, y``: ``[N, *shape]`` -> see ``reduction``.
    """
    _check_same_shape(mean=mean, std=std, y=y)
    _check_std(std)
    z = (y - mean) / std
    pdf = torch.exp(-0.5 * z.square() - _LOG_SQRT_2PI)
    crps = std * (z * (2.0 * torch.special.ndtr(z) - 1.0) + 2.0 * pdf - 1.0 / math.sqrt(math.pi))
    return reduce_items(crps, reduction)


# ---- ensembles -----------------------------------------------------------------------------

def _mean_abs_pair_difference_sorted(samples: torch.Tensor) -> torch.Tensor:
    """``sum_{i,j} |x_i - x_j|`` over ordered pairs in ``O(S log S)``: with the members sorted,
    ``x_(1) <= ... <= x_(S)``, it equals ``2 sum_k (2k - S - 1) x_(k)``."""
    s = samples.shape[0]
    ordered = samples.sort(dim=0).values
    k = torch.arange(1, s + 1, dtype=samples.dtype, device=samples.device)
    weights = (2.0 * k - s - 1.0).reshape((s,) + (1,) * (samples.ndim - 1))
    return 2.0 * (weights * ordered).sum(dim=0)


def _mean_abs_pair_difference_pairwise(samples: torch.Tensor) -> torch.Tensor:
    """The same sum by brute force, ``O(S^2)`` memory: the reference for small ``S``."""
    return (samples.unsqueeze(0) - samples.unsqueeze(1)).abs().sum(dim=(0, 1))


def crps_ensemble(samples: torch.Tensor, y: torch.Tensor, fair: bool = True,
                  reduction: Reduction = "mean",
                  method: Literal["sorted", "pairwise"] = "sorted") -> torch.Tensor:
    """CRPS of an ensemble ``x_1..x_S`` at ``y`` (Gneiting & Raftery 2007, eq. 20):

    ``CRPS = (1/S) sum_i |x_i - y| - 1/(2 S D) sum_{i,j} |x_i - x_j|``,

    with ``D = S`` for the standard score of the empirical distribution (``fair=False``) and
    ``D = S - 1`` for the fair score (Ferro 2014; Zamo & Naveau 2018), whose expectation over
    ensembles drawn from ``F`` equals ``CRPS(F, y)`` for every ``S``; the standard score exceeds
    it on average by ``E|X - X'| / (2S)`` (``std / (S sqrt(pi))`` for a Gaussian ``F``).

    ``method="sorted"`` evaluates the pair sum in ``O(S log S)`` after sorting the members;
    ``"pairwise"`` uses ``O(S^2)`` memory and is kept as the reference.

    Shapes:
        ``samples``: ``[S, N, *shape]``; ``y``: ``[N, *shape]`` -> see ``reduction``.
    """
    _check_samples(samples, y, minimum=2 if fair else 1)
    s = samples.shape[0]
    accuracy = (samples - y.unsqueeze(0)).abs().mean(dim=0)
    if method == "sorted":
        spread = _mean_abs_pair_difference_sorted(samples)
    elif method == "pairwise":
        spread = _mean_abs_pair_difference_pairwise(samples)
    else:
        raise ValueError(f"method must be 'sorted' or 'pairwise', got {method!r}")
    crps = accuracy - spread / (2.0 * s * (s - 1 if fair else s))
    return reduce_items(crps, reduction)


def spread_skill_ratio(samples: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Ensemble spread over the RMSE of the ensemble mean (Fortin et al. 2014, eq. 9):

    ``SSR = sqrt((S + 1) / S) * sqrt(mean s^2) / sqrt(mean (xbar - y)^2)``,

    with ``s^2`` the unbiased member variance (``S - 1`` in the denominator) and the means over
    all elements. If ``y`` and the members are exchangeable draws of one distribution with
    variance ``sigma^2``, ``E[s^2] = sigma^2`` and ``E[(xbar - y)^2] = sigma^2 (S + 1) / S``
    (the error of ``y`` plus that of the finite-ensemble mean): the ``(S+1)/S`` factor makes
    ``SSR = 1`` for a calibrated ensemble of any size. ``SSR < 1``: under-dispersed
    (over-confident); ``SSR > 1``: over-dispersed.

    Shapes:
        ``samples``: ``[S, N, *shape]`` (``S >= 2``); ``y``: ``[N, *shape]`` -> ``[]``.
    """
    _check_samples(samples, y, minimum=2)
    s = samples.shape[0]
    spread = samples.var(dim=0, unbiased=True).mean().sqrt()
    skill = (samples.mean(dim=0) - y).square().mean().sqrt()
    return math.sqrt((s + 1) / s) * spread / skill


# ---- quantiles and intervals ---------------------------------------------------------------

def quantile_score(quantiles: torch.Tensor, levels: torch.Tensor, y: torch.Tensor,
                   reduction: Reduction = "mean") -> torch.Tensor:
    """Pinball (quantile) loss averaged over the levels ``p_j`` (Gneiting & Raftery 2007, §6):

    ``QS = mean_j (1{y <= q_j} - p_j) (q_j - y)``.

    ``CRPS = 2 int_0^1 QS_p dp``, so ``2 QS`` approximates the CRPS for dense, evenly spaced
    levels: the CRPS of predictions that hold quantiles only.

    Shapes:
        ``quantiles``: ``[Q, N, *shape]``; ``levels``: ``[Q]``; ``y``: ``[N, *shape]`` -> see
        ``reduction``.
    """
    _check_samples(quantiles, y)
    if levels.ndim != 1 or levels.numel() != quantiles.shape[0]:
        raise ShapeError(f"levels has shape {tuple(levels.shape)}, expected "
                         f"[{quantiles.shape[0]}], one level per quantile")
    p = levels.to(quantiles).reshape((-1,) + (1,) * y.ndim)
    diff = quantiles - y.unsqueeze(0)
    score = ((diff >= 0).to(quantiles.dtype) - p) * diff
    return reduce_items(score.mean(dim=0), reduction)


def interval_coverage(lower: torch.Tensor, upper: torch.Tensor, y: torch.Tensor,
                      reduction: Reduction = "mean") -> torch.Tensor:
    """Fraction of ``y`` inside ``[lower, upper]`` (ends included): ``mean 1{lower <= y <=
    upper}``. With ``reduction="none"`` the 0/1 indicator per element (in ``y``'s dtype).

    Shapes:
        ``lower, upper, y``: ``[N, *shape]`` -> see ``reduction``.
    """
    _check_same_shape(lower=lower, upper=upper, y=y)
    inside = ((y >= lower) & (y <= upper)).to(y.dtype if y.is_floating_point()
                                               else torch.get_default_dtype())
    return reduce_items(inside, reduction)


def interval_width(lower: torch.Tensor, upper: torch.Tensor,
                   reduction: Reduction = "mean") -> torch.Tensor:
    """Width ``upper - lower`` of prediction intervals, in the units of ``y``.

    Shapes:
        ``lower, upper``: ``[N, *shape]`` -> see ``reduction``.
    """
    _check_same_shape(lower=lower, upper=upper)
    return reduce_items(upper - lower, reduction)


def sharpness(std: torch.Tensor) -> torch.Tensor:
    """Root mean predicted variance, ``sqrt(mean std^2)`` over all elements (Kuleshov et al.
    2018, §3.2): a property of the forecasts alone; smaller is sharper, and only meaningful
    next to a calibration measure.

    Shapes:
        ``std``: ``[N, *shape]`` -> ``[]``.
    """
    _check_std(std)
    return std.square().mean().sqrt()
