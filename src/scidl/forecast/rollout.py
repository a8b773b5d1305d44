"""Autoregressive rollouts of learned (or any) one-step field models, and their scores by lead.

A *one-step model* maps a state ``[B, C, *S]`` to the next state, possibly through the options
shared with training (:class:`~scidl.forecast.autoregressive.AutoregressiveObjective`):

* ``residual=True``: the model predicts the increment, ``u_{n+1} = u_n + delta_scale * model(u_n)``
  (``delta_scale`` undoes a normalisation of the increment, which is usually small);
* ``dt``: time-step conditioning, a constant extra input channel holding ``dt`` (a float, or a
  ``[B]`` tensor of per-sample steps); the model then has ``C + 1`` input channels;
* ``projection``: any callable ``u -> u`` applied after every step (e.g. a conservation
  projection that restores the mean mass).

:func:`step` is that map, :class:`Forecaster` wraps a model with it as an ``nn.Module``, and
:func:`rollout` iterates it under ``torch.no_grad`` from initial states, recording conserved
quantities along the way. :func:`evaluate_rollout` scores a rollout against a reference with
:mod:`scidl.metrics.forecast`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch
from torch import nn

from scidl.errors import ShapeError
from scidl.metrics.forecast import (
    acc_by_lead,
    energy_spectrum,
    high_correlation_time,
    invariant_drift,
    pearson_by_lead,
    rmse_by_lead,
    spectrum_error_by_lead,
)

Projection = Callable[[torch.Tensor], torch.Tensor]
Invariant = Callable[[torch.Tensor], torch.Tensor]


def _dt_channel(u: torch.Tensor, dt: float | torch.Tensor) -> torch.Tensor:
    """A constant channel ``[B, 1, *S]`` holding ``dt`` (per sample if ``dt`` is ``[B]``)."""
    shape = (u.shape[0], 1, *u.shape[2:])
    if isinstance(dt, torch.Tensor):
        dt = dt.to(dtype=u.dtype, device=u.device)
        if dt.ndim == 0:
            return dt.expand(shape)
        if dt.shape != (u.shape[0],):
            raise ShapeError(f"dt has shape {tuple(dt.shape)}, expected a scalar or "
                             f"[B] = [{u.shape[0]}]")
        return dt.reshape(-1, *([1] * (u.ndim - 1))).expand(shape)
    return u.new_full(shape, float(dt))


def step(model: nn.Module, u: torch.Tensor, *, residual: bool = False,
         dt: float | torch.Tensor | None = None, delta_scale: float = 1.0,
         projection: Projection | None = None) -> torch.Tensor:
    """One step of a one-step model: ``u_n [B, C, *S] -> u_{n+1} [B, C, *S]``.

    ``model`` sees ``u`` (with a constant ``dt`` channel appended when ``dt`` is given) and
    returns ``C`` channels: the next state, or with ``residual=True`` the increment divided by
    ``delta_scale``. ``projection`` is then applied to the new state.
    """
    if u.ndim < 3:
        raise ShapeError(f"the state has shape {tuple(u.shape)}, expected [B, C, *S]")
    inputs = u if dt is None else torch.cat([u, _dt_channel(u, dt)], dim=1)
    out = model(inputs)
    if out.shape != u.shape:
        raise ShapeError(f"the model maps a state of shape {tuple(inputs.shape)} to "
                         f"{tuple(out.shape)}; a one-step model must return {tuple(u.shape)}")
    nxt = u + delta_scale * out if residual else out
    return projection(nxt) if projection is not None else nxt


class Forecaster(nn.Module):
    """A one-step model with its stepping options, as a module: ``forward(u) = step(...)``.

    Train either the bare model through :class:`AutoregressiveObjective` with the same options,
    or this wrapper with the objective's defaults (``residual=False``, no ``dt``); the
    forecasts are the same.

    Shapes:
        ``forward``: ``[B, C, *S] -> [B, C, *S]``; :meth:`rollout`: see :func:`rollout`.
    """

    def __init__(self, model: nn.Module, *, residual: bool = False,
                 dt: float | torch.Tensor | None = None, delta_scale: float = 1.0,
                 projection: Projection | None = None):
        super().__init__()
        self.model = model
        self.residual, self.dt, self.delta_scale = residual, dt, float(delta_scale)
        self.projection = projection

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return step(self.model, u, residual=self.residual, dt=self.dt,
                    delta_scale=self.delta_scale, projection=self.projection)

    def rollout(self, u0: torch.Tensor, steps: int, **kwargs) -> RolloutResult:
        """:func:`rollout` of the wrapped model with this forecaster's options."""
        return rollout(self.model, u0, steps, residual=self.residual, dt=self.dt,
                       delta_scale=self.delta_scale, projection=self.projection, **kwargs)


@dataclass
class RolloutResult:
    """What :func:`rollout` returns.

    Attributes:
        trajectory: ``[B, T_kept, C, *S]``, the stored states (``trajectory[:, j]`` is the state
            after ``steps_kept[j]`` steps; by default every step ``1 .. steps``; the initial
            state is not included, as in :mod:`scidl.metrics.forecast`).
        steps_kept: ``[T_kept]`` step numbers of the stored states.
        invariants: name -> ``[B, steps + 1]`` series of each monitored quantity, column 0 the
            initial state, column ``n`` after ``n`` steps (every step, stored or not).
        first_nonfinite: ``[B]`` the first step at which each rollout became non-finite, or -1.
    """

    trajectory: torch.Tensor
    steps_kept: torch.Tensor
    invariants: dict[str, torch.Tensor] = field(default_factory=dict)
    first_nonfinite: torch.Tensor | None = None

    @property
    def finite(self) -> bool:
        """Whether every rollout stayed finite for all its steps."""
        return bool((self.first_nonfinite < 0).all())

    def drift(self, name: str) -> torch.Tensor:
        """Relative drift ``[B, steps + 1]`` of a monitored invariant from its initial value
        (:func:`scidl.metrics.invariant_drift`)."""
        return invariant_drift(self.invariants[name])


@torch.no_grad()
def rollout(model: nn.Module, u0: torch.Tensor, steps: int, *, residual: bool = False,
            dt: float | torch.Tensor | None = None, delta_scale: float = 1.0,
            projection: Projection | None = None,
            monitor: Mapping[str, Invariant] | None = None, store_every: int = 1,
            keep_last: int | None = None, store_device: torch.device | str | None = None,
            batch_size: int | None = None) -> RolloutResult:
    """Iterate a one-step model ``steps`` times from ``u0`` without gradients.

    The model is put in eval mode for the rollout (and back afterwards), so dropout, noise
    layers and batch statistics behave as at evaluation; no input noise is ever added here.

    Args:
        model: one-step model (see :func:`step` for ``residual``, ``dt``, ``delta_scale`` and
            ``projection``).
        u0: initial states ``[B, C, *S]``.
        steps: number of steps.
        monitor: name -> invariant ``q(u) -> [B]`` evaluated on every state (e.g.
            :func:`mean_value`, :func:`mean_square`).
        store_every: keep every ``store_every``-th state (memory: ``steps / store_every``
            states); the invariants are still recorded at every step.
        keep_last: keep only the last ``keep_last`` stored states (for long stability runs).
        store_device: where stored states go (e.g. ``"cpu"`` for GPU rollouts).
        batch_size: roll out at most this many initial states at a time.

    Returns:
        :class:`RolloutResult`.
    """
    if u0.ndim < 3:
        raise ShapeError(f"u0 has shape {tuple(u0.shape)}, expected [B, C, *S]")
    if steps < 1 or store_every < 1 or (keep_last is not None and keep_last < 1):
        raise ValueError(f"steps, store_every and keep_last must be positive, got {steps}, "
                         f"{store_every}, {keep_last}")
    if batch_size is not None and batch_size < u0.shape[0]:
        parts = [rollout(model, u0[i:i + batch_size], steps, residual=residual,
                         dt=dt[i:i + batch_size] if _per_sample(dt) else dt,
                         delta_scale=delta_scale, projection=projection, monitor=monitor,
                         store_every=store_every, keep_last=keep_last,
                         store_device=store_device)
                 for i in range(0, u0.shape[0], batch_size)]
        return RolloutResult(
            trajectory=torch.cat([p.trajectory for p in parts]), steps_kept=parts[0].steps_kept,
            invariants={k: torch.cat([p.invariants[k] for p in parts])
                        for k in parts[0].invariants},
            first_nonfinite=torch.cat([p.first_nonfinite for p in parts]))
    monitor = dict(monitor or {})
    was_training = model.training
    model.eval()
    try:
        u = u0
        series = {name: [q(u).reshape(u.shape[0])] for name, q in monitor.items()}
        first_bad = torch.full((u.shape[0],), -1, dtype=torch.long, device=u.device)
        stored, kept = [], []
        for n in range(1, steps + 1):
            u = step(model, u, residual=residual, dt=dt, delta_scale=delta_scale,
                     projection=projection)
            bad = ~torch.isfinite(u.reshape(u.shape[0], -1)).all(dim=1)
            first_bad = torch.where(bad & (first_bad < 0), torch.full_like(first_bad, n),
                                    first_bad)
            for name, q in monitor.items():
                series[name].append(q(u).reshape(u.shape[0]))
            if n % store_every == 0:
                stored.append(u if store_device is None else u.to(store_device))
                kept.append(n)
                if keep_last is not None and len(stored) > keep_last:
                    stored.pop(0)
                    kept.pop(0)
    finally:
        model.train(was_training)
    trajectory = (torch.stack(stored, dim=1) if stored
                  else u0.new_zeros((u0.shape[0], 0, *u0.shape[1:])))
    return RolloutResult(trajectory=trajectory, steps_kept=torch.tensor(kept, dtype=torch.long),
                         invariants={k: torch.stack(v, dim=1) for k, v in series.items()},
                         first_nonfinite=first_bad.cpu())


def _per_sample(dt) -> bool:
    return isinstance(dt, torch.Tensor) and dt.ndim == 1


# ---- invariants ------------------------------------------------------------------------------

def mean_value(u: torch.Tensor) -> torch.Tensor:
    """Spatial mean of every channel summed, ``[B, C, *S] -> [B]`` (mass; the mean of ``u`` is
    conserved by Kuramoto-Sivashinsky, Burgers and KdV on periodic domains, the mean vorticity
    by 2D Navier-Stokes)."""
    return u.reshape(u.shape[0], u.shape[1], -1).mean(dim=2).sum(dim=1)


def mean_square(u: torch.Tensor) -> torch.Tensor:
    """Spatial mean of ``u^2`` summed over channels, ``[B, C, *S] -> [B]`` (energy, or
    enstrophy for a vorticity field)."""
    return u.reshape(u.shape[0], u.shape[1], -1).square().mean(dim=2).sum(dim=1)


# ---- scores ----------------------------------------------------------------------------------

def _fields(x: torch.Tensor, channel: int | None, name: str) -> torch.Tensor:
    """``[N, T, C, *S] -> [N, T, *S]`` (one channel)."""
    if x.ndim < 4:
        raise ShapeError(f"{name} has shape {tuple(x.shape)}, expected [N, T, C, *S]")
    if channel is None:
        if x.shape[2] != 1:
            raise ShapeError(f"{name} has {x.shape[2]} channels; pick one with channel=")
        channel = 0
    return x[:, :, channel]


def evaluate_rollout(forecast: torch.Tensor, reference: torch.Tensor, dt: float, *,
                     climatology: torch.Tensor | None = None,
                     weights: torch.Tensor | None = None, threshold: float = 0.8,
                     channel: int | None = None,
                     initial_invariants: Mapping[str, torch.Tensor] | None = None,
                     invariants: Mapping[str, torch.Tensor] | None = None) -> dict:
    """Scores of a rollout against lead time, from :mod:`scidl.metrics.forecast`.

    Args:
        forecast, reference: ``[N, T, C, *S]``; ``forecast[:, k]`` is the state at ``(k+1) dt``.
        dt: time between consecutive leads.
        climatology: for the ACC, broadcastable to ``[N, T, *S]`` (e.g. the mean state ``S``);
            without it the ACC is left out.
        weights: area weights of the spatial grid (see :func:`scidl.metrics.rmse_by_lead`).
        threshold: correlation threshold of the high-correlation time.
        channel: which channel to score (needed when ``C > 1``).
        invariants: name -> ``[N, T + 1]`` series (as :attr:`RolloutResult.invariants`, column 0
            the initial state); their relative drift is reported.

    Returns:
        A dict of tensors: ``lead_time`` ``[T]``, ``rmse`` ``[T]``, ``pearson`` ``[T]`` (mean
        over trajectories), ``acc`` ``[T]`` (with ``climatology``), ``spectrum_error`` ``[T]``,
        ``high_correlation_time`` ``[N]`` and its mean ``high_correlation_time_mean``, and
        ``drift/NAME`` ``[T + 1]`` (mean over trajectories; the largest in ``max_drift/NAME``).
    """
    f = _fields(forecast, channel, "forecast")
    y = _fields(reference, channel, "reference")
    if f.shape != y.shape:
        raise ShapeError(f"forecast {tuple(forecast.shape)} and reference "
                         f"{tuple(reference.shape)} must have the same shape")
    n_lead = f.shape[1]
    out: dict[str, torch.Tensor] = {
        "lead_time": dt * torch.arange(1, n_lead + 1, dtype=f.dtype),
        "rmse": rmse_by_lead(f, y, weights),
        "pearson": pearson_by_lead(f, y).mean(dim=0),
        "spectrum_error": spectrum_error_by_lead(f, y),
    }
    if climatology is not None:
        out["acc"] = acc_by_lead(f, y, climatology, weights)
    hct = high_correlation_time(f, y, dt, threshold)
    out["high_correlation_time"] = hct
    out["high_correlation_time_mean"] = hct.mean()
    for name, series in (invariants or {}).items():
        drift = invariant_drift(series)
        out[f"drift/{name}"] = drift.mean(dim=0)
        out[f"max_drift/{name}"] = drift.max()
    return out


def mean_spectrum(trajectory: torch.Tensor, channel: int | None = None) -> torch.Tensor:
    """Energy spectrum :func:`scidl.metrics.energy_spectrum` averaged over trajectories and
    times, ``[N, T, C, *S] -> [K]``: the climatological spectrum of a (statistically
    stationary) rollout or reference."""
    u = _fields(trajectory, channel, "trajectory")
    dims = tuple(range(2, u.ndim))
    spectrum = energy_spectrum(u, dims)
    return spectrum.reshape(-1, spectrum.shape[-1]).mean(dim=0)


def spectrum_relative_error(model_spectrum: torch.Tensor,
                            reference_spectrum: torch.Tensor) -> float:
    """``sum_K |E_m - E_ref| / sum_K E_ref``, the relative L1 error of two spectra ``[K]`` (as
    :func:`scidl.metrics.spectrum_error_by_lead`, for time-averaged spectra)."""
    if model_spectrum.shape != reference_spectrum.shape:
        raise ShapeError(f"spectra of shapes {tuple(model_spectrum.shape)} and "
                         f"{tuple(reference_spectrum.shape)} cannot be compared")
    return float((model_spectrum - reference_spectrum).abs().sum() / reference_spectrum.sum())


__all__ = ["Forecaster", "RolloutResult", "evaluate_rollout", "mean_spectrum", "mean_square",
           "mean_value", "rollout", "spectrum_relative_error", "step"]
