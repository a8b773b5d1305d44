"""Rollout (forecast) evaluation against lead time: skill, correlation, spectra, drift.

Conventions (shared by every function here):

* Forecasts and references are ``[N, T, *S]``: ``N`` trajectories (initial conditions), ``T``
  lead times, ``S`` spatial dimensions (``[N, T, X]`` in 1D, ``[N, T, X, Y]`` in 2D).
  ``forecast[:, k]`` is the state at time ``(k + 1) dt``: lead index 0 is one step ahead, the
  initial condition itself is not part of the rollout.
* Ensembles are ``[M, N, T, *S]``: ``M`` members along the first dimension, as ``samples`` in
  :mod:`scidl.metrics.probabilistic`.
* Functions ``*_by_lead`` return one value per lead time ``[T]``, averaged over trajectories and
  space (see each docstring for the order of averaging and square roots); :func:`pearson_by_lead`
  keeps ``[N, T]``.
* Optional area ``weights`` broadcast to ``S`` (torch rules, aligned on the right: for
  ``S = [lat, lon]`` pass ``[n_lat, 1]``) and are normalised to mean 1 over ``S``, so uniform
  weights change nothing. :func:`latitude_weights` gives ``cos(latitude)`` weights.
* Everything follows the dtype and device of the inputs (float64 works end to end) and is
  differentiable where the metric is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from scidl.errors import ShapeError
from scidl.metrics.probabilistic import crps_ensemble


def _check_rollout(name: str, x: torch.Tensor, min_ndim: int) -> None:
    if x.ndim < min_ndim:
        dims = "[N, T, *S]" if min_ndim <= 2 else "[N, T, *S] with at least one spatial dim"
        raise ShapeError(f"{name} has shape {tuple(x.shape)}, expected {dims}")


def _check_pair(forecast: torch.Tensor, reference: torch.Tensor, min_ndim: int) -> None:
    _check_rollout("forecast", forecast, min_ndim)
    if forecast.shape != reference.shape:
        raise ShapeError(f"reference has shape {tuple(reference.shape)} but forecast has "
                         f"{tuple(forecast.shape)}; they must match")


def _check_ensemble(ensemble: torch.Tensor, reference: torch.Tensor, minimum: int) -> None:
    _check_rollout("reference", reference, 2)
    if ensemble.ndim != reference.ndim + 1 or ensemble.shape[1:] != reference.shape:
        raise ShapeError(f"ensemble has shape {tuple(ensemble.shape)}, expected [M, "
                         f"{', '.join(map(str, reference.shape))}] for reference of shape "
                         f"{tuple(reference.shape)}")
    if ensemble.shape[0] < minimum:
        raise ShapeError(f"this score needs at least {minimum} ensemble members, "
                         f"got M = {ensemble.shape[0]}")


def _normalised_weights(weights: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor | None:
    """``weights`` broadcast to the spatial shape ``S = like.shape[2:]``, scaled to mean 1."""
    if weights is None:
        return None
    spatial = like.shape[2:]
    weights = weights.to(dtype=like.dtype, device=like.device)
    try:
        full = torch.broadcast_to(weights, spatial)
    except RuntimeError as exc:
        raise ShapeError(f"weights has shape {tuple(weights.shape)}, which does not broadcast "
                         f"to the spatial shape {tuple(spatial)}") from exc
    if bool((full < 0).any()):
        raise ValueError("weights must be non-negative; got negative values")
    total = full.mean()
    if not bool(total > 0):
        raise ValueError("weights must have a positive mean; got all zeros")
    return full / total


def _spatial_mean(x: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """``[N, T, *S]`` -> ``[N, T]``: (weighted) mean over ``S``; weights have mean 1."""
    if weights is not None:
        x = x * weights
    return x.reshape(x.shape[0], x.shape[1], -1).mean(dim=2)


def _correlation(num: torch.Tensor, ss_a: torch.Tensor, ss_b: torch.Tensor) -> torch.Tensor:
    """``num / sqrt(ss_a ss_b)`` where the product is positive, 0 where it is 0 (undefined
    correlation), NaN where it is NaN; gradients stay finite at the undefined points."""
    prod = ss_a * ss_b
    ok = prod > 0
    den = torch.where(ok, prod, torch.ones_like(prod)).sqrt()
    rho = torch.where(ok, num / den, torch.zeros_like(num))
    return torch.where(torch.isnan(prod), prod, rho)


# ---- point-forecast skill ------------------------------------------------------------------

def latitude_weights(lat_degrees: torch.Tensor) -> torch.Tensor:
    """Area weights of a regular latitude grid, ``w_i = cos(lat_i) / mean_j cos(lat_j)``
    (Rasp et al. 2020, WeatherBench, eq. 2): proportional to the area of a cell on the sphere,
    normalised to mean 1. Values at the poles (``cos = 0``, tiny negative by rounding) are
    clamped to 0.

    Shapes:
        ``lat_degrees``: ``[n_lat]`` -> ``[n_lat]``; to weight ``S = [lat, lon]`` pass
        ``latitude_weights(lat)[:, None]``.
    """
    if lat_degrees.ndim != 1:
        raise ShapeError(f"lat_degrees has shape {tuple(lat_degrees.shape)}, expected [n_lat]")
    if not lat_degrees.is_floating_point():
        lat_degrees = lat_degrees.to(torch.get_default_dtype())
    w = torch.cos(torch.deg2rad(lat_degrees)).clamp_min(0.0)
    if not bool(w.sum() > 0):
        raise ValueError("latitude_weights needs at least one latitude off the poles")
    return w / w.mean()


def rmse_by_lead(forecast: torch.Tensor, reference: torch.Tensor,
                 weights: torch.Tensor | None = None) -> torch.Tensor:
    """Root mean squared error at each lead time, averaged over trajectories and (weighted)
    space before the square root (the WeatherBench 2 convention, Rasp et al. 2024):

    ``RMSE(t) = sqrt( (1/N) sum_n mean_S[ w (f_{n,t} - y_{n,t})^2 ] )``,

    with ``w`` normalised to mean 1 (uniform weights equal no weights).

    Shapes:
        ``forecast, reference``: ``[N, T, *S]``; ``weights``: broadcastable to ``S`` ->
        ``[T]``.
    """
    _check_pair(forecast, reference, 2)
    w = _normalised_weights(weights, forecast)
    mse = _spatial_mean((forecast - reference).square(), w)
    return mse.mean(dim=0).sqrt()


def pearson_by_lead(forecast: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Pearson correlation over space of each trajectory at each lead time:

    ``rho_{n,t} = sum_x (f - fbar)(y - ybar) / sqrt( sum_x (f - fbar)^2 sum_x (y - ybar)^2 )``,

    with ``fbar, ybar`` the spatial means of ``f_{n,t}``, ``y_{n,t}``. Invariant to adding a
    constant to, or scaling by a positive factor, either field. Convention: where either field
    is spatially constant (zero variance) the correlation is undefined and returned as 0 (no
    skill); a non-finite forecast gives NaN.

    Shapes:
        ``forecast, reference``: ``[N, T, *S]`` (at least one spatial dim) -> ``[N, T]``.
    """
    _check_pair(forecast, reference, 3)
    f = forecast.reshape(forecast.shape[0], forecast.shape[1], -1)
    y = reference.reshape(f.shape)
    fa = f - f.mean(dim=2, keepdim=True)
    ya = y - y.mean(dim=2, keepdim=True)
    return _correlation((fa * ya).sum(dim=2), fa.square().sum(dim=2), ya.square().sum(dim=2))


def acc_by_lead(forecast: torch.Tensor, reference: torch.Tensor, climatology: torch.Tensor,
                weights: torch.Tensor | None = None) -> torch.Tensor:
    """Anomaly correlation coefficient at each lead time (Rasp et al. 2020, WeatherBench,
    eq. 3): with anomalies ``f' = f - c``, ``y' = y - c`` w.r.t. the climatology ``c``,

    ``ACC_{n,t} = sum_x w f' y' / sqrt( sum_x w f'^2  sum_x w y'^2 )``,  ``ACC(t) = mean_n
    ACC_{n,t}``,

    uncentred (the spatial mean of the anomalies is not removed) and area weighted. A perfect
    forecast scores 1; the climatology itself (``f' = 0``) has undefined ACC, returned as 0
    (no skill), and so is any ``(n, t)`` where either anomaly vanishes everywhere.

    Shapes:
        ``forecast, reference``: ``[N, T, *S]``; ``climatology``: broadcastable to
        ``[N, T, *S]`` (e.g. ``S``, ``[T, *S]``); ``weights``: broadcastable to ``S`` -> ``[T]``.
    """
    _check_pair(forecast, reference, 3)
    try:
        clim = torch.broadcast_to(climatology.to(forecast), forecast.shape)
    except RuntimeError as exc:
        raise ShapeError(f"climatology has shape {tuple(climatology.shape)}, which does not "
                         f"broadcast to {tuple(forecast.shape)}") from exc
    w = _normalised_weights(weights, forecast)
    fa, ya = forecast - clim, reference - clim
    acc = _correlation(_spatial_mean(fa * ya, w), _spatial_mean(fa.square(), w),
                       _spatial_mean(ya.square(), w))
    return acc.mean(dim=0)


def high_correlation_time(forecast: torch.Tensor, reference: torch.Tensor, dt: float,
                          threshold: float = 0.8) -> torch.Tensor:
    """Time a rollout stays highly correlated with the reference (Lippe et al. 2023,
    PDE-Refiner, §4.1): with ``rho_{n,k}`` from :func:`pearson_by_lead` and
    ``forecast[:, k]`` the state at time ``(k + 1) dt``,

    ``t_n = dt * min{ k : rho_{n,k} < threshold }``,  and ``T dt`` if no such ``k``,

    i.e. the last time ``k dt`` up to which every state is correlated above ``threshold``
    (``0`` if already the first step is not; ``T dt``, the whole horizon, if it never drops; the
    true crossing lies in ``(t_n, t_n + dt]``). A NaN correlation (a blown-up rollout) counts as
    below the threshold.

    Shapes:
        ``forecast, reference``: ``[N, T, *S]`` -> ``[N]`` (in the dtype of ``forecast``).
    """
    rho = pearson_by_lead(forecast, reference)
    below = ~(rho >= threshold)  # NaN -> below
    n_lead = rho.shape[1]
    lead = torch.arange(n_lead, device=rho.device).expand_as(rho)
    first = torch.where(below, lead, torch.full_like(lead, n_lead)).min(dim=1).values
    return first.to(forecast.dtype) * dt


# ---- spectra -------------------------------------------------------------------------------

def energy_spectrum(u: torch.Tensor, dims: int | Sequence[int] = -1) -> torch.Tensor:
    """Isotropic (shell-summed) energy spectrum over the spatial dimensions ``dims`` of a
    periodic, real field on a uniform grid. With ``u_hat = rfftn(u) / prod(n)`` the Fourier
    coefficients and integer wavenumbers ``k`` (units of the fundamental ``2 pi / L``),

    ``E(K) = sum_{ k : round(|k|) = K } |u_hat(k)|^2``,  ``K = 0 .. round(max |k|)``,

    summing over the full (two-sided) set of modes, so the rfft half is counted twice except
    the columns ``k_last = 0`` and the Nyquist column. Parseval: ``sum_K E(K) = mean_x u^2``
    (no factor 1/2). In 1D this is ``E(0) = |u_hat_0|^2``, ``E(K) = 2 |u_hat_K|^2`` and
    ``K = 0 .. n // 2``; in 2D the shells beyond ``min(n) // 2`` are only partly filled (the
    corners of the square of modes) but are kept so that Parseval holds exactly.

    Shapes:
        ``u``: ``[..., *spatial]`` with the spatial dims at ``dims`` (any positions) ->
        ``[..., K]``: the remaining dims in order, the shells last.
    """
    if not u.is_floating_point():
        raise TypeError(f"energy_spectrum needs a real floating-point field, got {u.dtype}")
    dims = [dims] if isinstance(dims, int) else list(dims)
    if not dims:
        raise ShapeError("energy_spectrum needs at least one spatial dim")
    dims = [d % u.ndim if -u.ndim <= d < u.ndim else d for d in dims]
    if any(not 0 <= d < u.ndim for d in dims) or len(set(dims)) != len(dims):
        raise ShapeError(f"dims {dims} are not distinct dims of a tensor of shape "
                         f"{tuple(u.shape)}")
    rest = [d for d in range(u.ndim) if d not in dims]
    u = u.permute(rest + dims)
    batch = u.shape[:len(rest)]
    sizes = u.shape[len(rest):]
    n_total = math.prod(sizes)
    coeff = torch.fft.rfftn(u, dim=tuple(range(len(rest), u.ndim))) / n_total
    power = coeff.real.square() + coeff.imag.square()

    # Integer wavenumbers of the rfft grid and the multiplicity of each stored mode.
    k2 = torch.zeros((), dtype=u.dtype, device=u.device)
    for i, n in enumerate(sizes):
        if i == len(sizes) - 1:
            k = torch.fft.rfftfreq(n, d=1.0 / n, dtype=u.dtype, device=u.device)
        else:
            k = torch.fft.fftfreq(n, d=1.0 / n, dtype=u.dtype, device=u.device)
        shape = [1] * len(sizes)
        shape[i] = -1
        k2 = k2 + k.reshape(shape).square()
    n_last = sizes[-1]
    mult = torch.full((n_last // 2 + 1,), 2.0, dtype=u.dtype, device=u.device)
    mult[0] = 1.0
    if n_last % 2 == 0:
        mult[-1] = 1.0
    shell = k2.sqrt().round().long().expand(power.shape[len(rest):]).reshape(-1)
    weighted = (power * mult).reshape(*batch, -1)
    n_shells = int(shell.max()) + 1
    flat = weighted.reshape(-1, weighted.shape[-1])
    spectrum = torch.zeros(flat.shape[0], n_shells, dtype=u.dtype, device=u.device)
    spectrum = spectrum.index_add(1, shell, flat)
    return spectrum.reshape(*batch, n_shells)


def spectrum_error_by_lead(forecast: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Relative L1 error of the energy spectrum at each lead time: with ``E`` from
    :func:`energy_spectrum` over all spatial dims ``S``,

    ``err(t) = (1/N) sum_n  sum_K |E_f(K) - E_y(K)| / sum_K E_y(K)``,

    a number in ``[0, inf)``; 0 for a forecast with the reference's spectrum (phase errors are
    invisible to it: pair it with :func:`rmse_by_lead` or :func:`pearson_by_lead`). Where the
    reference has no energy at all the term is 0 if the forecast has none either, else inf.

    Shapes:
        ``forecast, reference``: ``[N, T, *S]`` (at least one spatial dim) -> ``[T]``.
    """
    _check_pair(forecast, reference, 3)
    dims = tuple(range(2, forecast.ndim))
    e_f = energy_spectrum(forecast, dims)
    e_y = energy_spectrum(reference, dims)
    num = (e_f - e_y).abs().sum(dim=-1)
    den = e_y.sum(dim=-1)
    ratio = torch.where(den > 0, num / torch.where(den > 0, den, torch.ones_like(den)),
                        torch.where(num > 0, torch.full_like(num, math.inf),
                                    torch.zeros_like(num)))
    return ratio.mean(dim=0)


# ---- invariants ----------------------------------------------------------------------------

def invariant_drift(series: torch.Tensor, initial: torch.Tensor | None = None) -> torch.Tensor:
    """Relative drift of a conserved quantity (mass, energy, ...) along each rollout:

    ``drift_{n,t} = |q_{n,t} - q_n(0)| / |q_n(0)|``,

    with ``q_n(0) = initial[n]`` when given (the invariant of the initial condition, which is
    not part of the rollout), else ``series[n, 0]`` (so ``drift[:, 0] = 0``). ``q(0) = 0`` gives
    ``inf`` (or NaN where the drift is 0 too): use an absolute drift for invariants near 0.

    Shapes:
        ``series``: ``[N, T]``; ``initial``: ``[N]`` or None -> ``[N, T]``.
    """
    if series.ndim != 2:
        raise ShapeError(f"series has shape {tuple(series.shape)}, expected [N, T]")
    if initial is None:
        q0 = series[:, :1]
    else:
        if initial.shape != series.shape[:1]:
            raise ShapeError(f"initial has shape {tuple(initial.shape)}, expected "
                             f"[{series.shape[0]}]")
        q0 = initial.to(series).unsqueeze(1)
    return (series - q0).abs() / q0.abs()


# ---- ensembles -----------------------------------------------------------------------------

def crps_by_lead(ensemble: torch.Tensor, reference: torch.Tensor,
                 fair: bool = True) -> torch.Tensor:
    """Ensemble CRPS at each lead time: :func:`scidl.metrics.crps_ensemble` (fair by default,
    Ferro 2014) element-wise, averaged over trajectories and space,

    ``CRPS(t) = mean_{n, x} [ (1/M) sum_i |x_i - y| - sum_{i,j} |x_i - x_j| / (2 M (M - 1)) ]``.

    A degenerate ensemble (all members equal) scores its mean absolute error.

    Shapes:
        ``ensemble``: ``[M, N, T, *S]`` (``M >= 2`` if ``fair``); ``reference``: ``[N, T, *S]``
        -> ``[T]``.
    """
    _check_ensemble(ensemble, reference, 2 if fair else 1)
    crps = crps_ensemble(ensemble, reference, fair=fair, reduction="none")
    return crps.transpose(0, 1).reshape(reference.shape[1], -1).mean(dim=1)


def spread_skill_by_lead(ensemble: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Spread-skill ratio at each lead time, :func:`scidl.metrics.spread_skill_ratio` applied to
    each lead separately (Fortin et al. 2014, eq. 9):

    ``SSR(t) = sqrt((M + 1) / M) sqrt(mean_{n,x} s^2) / sqrt(mean_{n,x} (xbar - y)^2)``,

    ``s^2`` the unbiased member variance. 1 for an ensemble exchangeable with the truth, < 1
    under-dispersed (over-confident), > 1 over-dispersed.

    Shapes:
        ``ensemble``: ``[M, N, T, *S]`` (``M >= 2``); ``reference``: ``[N, T, *S]`` -> ``[T]``.
    """
    _check_ensemble(ensemble, reference, 2)
    m = ensemble.shape[0]
    n_lead = reference.shape[1]
    var = ensemble.var(dim=0, unbiased=True).transpose(0, 1).reshape(n_lead, -1).mean(dim=1)
    err = (ensemble.mean(dim=0) - reference).square().transpose(0, 1).reshape(n_lead, -1)
    return math.sqrt((m + 1) / m) * var.sqrt() / err.mean(dim=1).sqrt()
