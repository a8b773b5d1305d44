"""Probabilistic forecasts from deterministic one-step models: ensembles of rollouts.

* :func:`perturbed_ensemble`: one model rolled out from ``M`` perturbed copies of each initial
  condition (initial-condition uncertainty, as in operational ensemble weather prediction);
* :func:`multi_model_ensemble`: ``M`` models (different seeds or training schemes) rolled out
  from the same initial conditions (model uncertainty; the deep-ensemble idea applied to
  rollouts), optionally combined with perturbations;
* :func:`ensemble_scores`: CRPS and spread-skill ratio per lead time
  (:func:`scidl.metrics.crps_by_lead`, :func:`scidl.metrics.spread_skill_by_lead`), the RMSE of
  the ensemble mean and the mean spread.

Ensembles are ``[M, B, T, C, *S]``: members first, then the rollouts' layout.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from scidl.errors import ShapeError
from scidl.forecast.rollout import rollout
from scidl.metrics.forecast import crps_by_lead, rmse_by_lead, spread_skill_by_lead

Perturbation = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def gaussian_perturbation(std: float, smoothing: int | None = None) -> Perturbation:
    """A perturbation ``u -> u + eps``: white Gaussian noise of standard deviation ``std``, or
    with ``smoothing = m`` noise restricted to the ``m`` lowest Fourier modes of every spatial
    axis (of the last axis, for 2D and 3D the lowest modes of every axis) and rescaled to
    pointwise standard deviation ``std`` (smooth perturbations that the dynamics does not damp
    at once)."""
    if std < 0:
        raise ValueError(f"std must be non-negative, got {std}")

    def perturb(u: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        noise = torch.randn(u.shape, generator=generator, dtype=u.dtype).to(u.device)
        if smoothing is not None:
            dims = tuple(range(2, u.ndim))
            coeff = torch.fft.rfftn(noise, dim=dims)
            mask = torch.ones(coeff.shape[2:], dtype=torch.bool, device=u.device)
            for i, d in enumerate(dims):
                n = u.shape[d]
                k = (torch.fft.rfftfreq(n, 1.0 / n) if i == len(dims) - 1
                     else torch.fft.fftfreq(n, 1.0 / n)).abs()
                view = [1] * len(dims)
                view[i] = -1
                mask = mask & (k <= smoothing).reshape(view).to(u.device)
            mask[(0,) * len(dims)] = False  # keep the mean (a conserved quantity) unperturbed
            noise = torch.fft.irfftn(coeff * mask, s=u.shape[2:], dim=dims)
            rms = noise.reshape(noise.shape[0], -1).square().mean(dim=1).sqrt()
            noise = noise / rms.clamp_min(1e-30).reshape(-1, *[1] * (u.ndim - 1))
        return u + std * noise

    return perturb


def _check_u0(u0: torch.Tensor) -> None:
    if u0.ndim < 3:
        raise ShapeError(f"u0 has shape {tuple(u0.shape)}, expected [B, C, *S]")


def perturbed_ensemble(model: nn.Module, u0: torch.Tensor, steps: int, members: int, *,
                       perturbation: Perturbation | float, seed: int = 0,
                       perturb_first: bool = True, **rollout_kwargs) -> torch.Tensor:
    """Roll out ``model`` from ``members`` perturbed copies of each initial state.

    Args:
        model: one-step model.
        u0: initial states ``[B, C, *S]``.
        steps: rollout length.
        members: ensemble size ``M``.
        perturbation: a callable ``(u0, generator) -> perturbed u0`` or a float, the standard
            deviation of white Gaussian noise (:func:`gaussian_perturbation`).
        seed: seed of the perturbations (member ``i`` uses ``seed * 1_000_003 + i``).
        perturb_first: with ``False`` member 0 is the unperturbed control forecast.
        **rollout_kwargs: passed to :func:`scidl.forecast.rollout` (``residual``, ``dt``,
            ``projection``, ``delta_scale``, ``batch_size``, ``store_every``, ...).

    Returns:
        ``[M, B, T, C, *S]`` member trajectories.
    """
    _check_u0(u0)
    if members < 1:
        raise ValueError(f"members must be positive, got {members}")
    perturb = (gaussian_perturbation(perturbation) if isinstance(perturbation, (int, float))
               else perturbation)
    out = []
    for i in range(members):
        g = torch.Generator().manual_seed(seed * 1_000_003 + i)
        start = u0 if (i == 0 and not perturb_first) else perturb(u0, g)
        out.append(rollout(model, start, steps, **rollout_kwargs).trajectory)
    return torch.stack(out)


def multi_model_ensemble(models: Sequence[nn.Module], u0: torch.Tensor, steps: int, *,
                         perturbation: Perturbation | float | None = None, seed: int = 0,
                         **rollout_kwargs) -> torch.Tensor:
    """Roll out every model of ``models`` from ``u0`` (each from its own perturbation of
    ``u0`` when ``perturbation`` is given): ``[M, B, T, C, *S]`` with ``M = len(models)``.
    Shared stepping options go in ``rollout_kwargs`` (see :func:`perturbed_ensemble`)."""
    _check_u0(u0)
    if not models:
        raise ValueError("multi_model_ensemble needs at least one model")
    perturb = (gaussian_perturbation(perturbation) if isinstance(perturbation, (int, float))
               else perturbation)
    out = []
    for i, model in enumerate(models):
        start = u0
        if perturb is not None:
            start = perturb(u0, torch.Generator().manual_seed(seed * 1_000_003 + i))
        out.append(rollout(model, start, steps, **rollout_kwargs).trajectory)
    return torch.stack(out)


def ensemble_scores(ensemble: torch.Tensor, reference: torch.Tensor,
                    channel: int | None = None, fair: bool = True) -> dict[str, torch.Tensor]:
    """Probabilistic scores of an ensemble forecast at every lead time.

    Args:
        ensemble: ``[M, N, T, C, *S]``.
        reference: ``[N, T, C, *S]``.
        channel: the channel to score (needed when ``C > 1``).
        fair: the fair (unbiased) ensemble CRPS.

    Returns:
        ``crps`` ``[T]``, ``spread_skill`` ``[T]`` (1 when calibrated, < 1 over-confident),
        ``rmse_mean`` ``[T]`` (RMSE of the ensemble mean), ``spread`` ``[T]`` (root mean member
        variance) and ``rmse_members`` ``[T]`` (mean RMSE of the single members).
    """
    if ensemble.ndim < 5 or ensemble.shape[1:] != reference.shape:
        raise ShapeError(f"ensemble has shape {tuple(ensemble.shape)}, expected [M, "
                         f"{', '.join(map(str, reference.shape))}] (reference [N, T, C, *S])")
    if channel is None:
        if reference.shape[2] != 1:
            raise ShapeError(f"the fields have {reference.shape[2]} channels; pick one with "
                             "channel=")
        channel = 0
    ens, ref = ensemble[:, :, :, channel], reference[:, :, channel]
    n_lead = ref.shape[1]
    spread = ens.var(dim=0).transpose(0, 1).reshape(n_lead, -1).mean(dim=1).sqrt()
    return {
        "crps": crps_by_lead(ens, ref, fair=fair),
        "spread_skill": spread_skill_by_lead(ens, ref),
        "rmse_mean": rmse_by_lead(ens.mean(dim=0), ref),
        "spread": spread,
        "rmse_members": torch.stack([rmse_by_lead(e, ref) for e in ens]).mean(dim=0),
    }


__all__ = ["ensemble_scores", "gaussian_perturbation", "multi_model_ensemble",
           "perturbed_ensemble"]
