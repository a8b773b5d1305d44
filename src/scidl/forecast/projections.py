"""Conservation projections for autoregressive rollouts: keep linear invariants exact.

A learned one-step model does not conserve mass (or any other linear invariant) by itself, and over
hundreds of steps its small per-step errors add up to a drift. A linear invariant that is the
spatial mean of a channel -- the mass ``mean h`` of the shallow-water equations, the zero mean of
a vorticity or of a pressure anomaly -- is restored after every step by the orthogonal (L2)
projection onto ``{u : mean_S u_c = target_c}``, which is the uniform shift
``u_c <- u_c - mean_S u_c + target_c`` of each chosen channel (it changes no other mode). The
mean and the shift are computed in float64 and cast back, so the projected field's mean equals the
target to round-off: exactly (``~1e-16`` relative) in float64 and within the rounding of one
float32 cast (``~1e-8`` relative for an ``O(1)`` mean) in float32, at every step, with no drift.

Everything is a callable ``u -> u`` that is differentiable (training through rollouts works)
and acts on ``[..., C, *S]`` fields, the spatial dims ``S`` being ``dims`` and the channel dim
the one just before them (the ``[B, C, *S]`` and ``[B, T, C, *S]`` layouts of scidl).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from scidl.errors import ShapeError


def _spatial_dims(u: torch.Tensor, dims: Sequence[int]) -> tuple[int, ...]:
    dims = tuple(int(d) for d in dims)
    if not dims:
        raise ShapeError("dims must name at least one spatial dim")
    if any(not -u.ndim <= d < u.ndim for d in dims):
        raise ShapeError(f"dims {dims} are out of range for a field of shape {tuple(u.shape)}")
    normal = tuple(sorted(d % u.ndim for d in dims))
    if len(set(normal)) != len(normal) or normal != tuple(range(normal[0], normal[-1] + 1)):
        raise ShapeError(f"dims {dims} must be distinct, adjacent spatial dims")
    if normal[0] == 0:
        raise ShapeError(f"a field of shape {tuple(u.shape)} has no channel dim before the "
                         f"spatial dims {dims}; expected [..., C, *S]")
    return normal


def _channel_index(u: torch.Tensor, channel_dim: int,
                   channels: int | Sequence[int] | None) -> torch.Tensor | None:
    if channels is None:
        return None
    channels = [channels] if isinstance(channels, int) else list(channels)
    size = u.shape[channel_dim]
    if not channels or any(not -size <= c < size for c in channels):
        raise ShapeError(f"channels {channels} are out of range for {size} channels "
                         f"(field of shape {tuple(u.shape)})")
    return torch.tensor([c % size for c in channels], device=u.device)


def spatial_mean(u: torch.Tensor, dims: Sequence[int] = (-2, -1),
                 channels: int | Sequence[int] | None = None) -> torch.Tensor:
    """The float64 mean over the spatial ``dims`` of the chosen ``channels`` (all if None):
    ``[*lead, C, *S] -> [*lead, k]`` for ``k`` channels."""
    spatial = _spatial_dims(u, dims)
    index = _channel_index(u, spatial[0] - 1, channels)
    selected = u if index is None else u.index_select(spatial[0] - 1, index)
    return selected.to(torch.float64).mean(dim=spatial)


def project_mean(u: torch.Tensor, mean: torch.Tensor | float, dims: Sequence[int] = (-2, -1),
                 channels: int | Sequence[int] | None = None) -> torch.Tensor:
    """``u`` with the spatial mean of each chosen channel set to ``mean`` by a uniform shift.

    Args:
        u: fields ``[*lead, C, *S]``; the channel dim is the one just before ``dims``.
        mean: the target, a number or a tensor broadcastable to ``[*lead, k]`` (``k`` chosen
            channels), e.g. ``[k]`` for one target per channel or ``[B, k]`` per sample.
        dims: the spatial dims (adjacent), default the last two.
        channels: channel indices to project (an int, a sequence, or None for all).

    Returns:
        A new tensor like ``u`` (same dtype, device and shape); the other channels are
        untouched. The shift is computed in float64.
    """
    if not u.is_floating_point():
        raise TypeError(f"project_mean needs a real floating-point field, got {u.dtype}")
    spatial = _spatial_dims(u, dims)
    channel_dim = spatial[0] - 1
    index = _channel_index(u, channel_dim, channels)
    selected = u if index is None else u.index_select(channel_dim, index)
    wide = selected.to(torch.float64)
    current = wide.mean(dim=spatial, keepdim=True)
    target = torch.as_tensor(mean, dtype=torch.float64, device=u.device)
    reduced = current.shape[: channel_dim + 1]
    try:
        target = torch.broadcast_to(target, reduced)
    except RuntimeError as exc:
        raise ShapeError(f"mean has shape {tuple(target.shape)}, which does not broadcast to "
                         f"{tuple(reduced)} ([*lead, k] for k projected channels)") from exc
    target = target.reshape(*reduced, *[1] * len(spatial))
    projected = (wide - current + target).to(u.dtype)
    return projected if index is None else u.index_copy(channel_dim, index, projected)


class MeanProjection:
    """Callable ``u -> u`` that keeps the spatial mean of chosen channels at a target; apply it
    after every step of a rollout.

    Args:
        target: the means to keep, as ``mean`` of :func:`project_mean` (a number, ``[k]`` or
            ``[B, k]``); :meth:`from_state` takes them from an initial state instead.
        channels: the channels to project (an int, a sequence, or None for all).
        dims: the spatial dims (default the last two).

    Examples: mass of the shallow-water state ``(h, u, v)``:
    ``MeanProjection.from_state(u0, channels=0)``; zero-mean vorticity: ``MeanProjection(0.0)``.
    """

    def __init__(self, target: torch.Tensor | float, channels: int | Sequence[int] | None = 0,
                 dims: Sequence[int] = (-2, -1)):
        self.target = torch.as_tensor(target, dtype=torch.float64)
        if not bool(torch.isfinite(self.target).all()):
            raise ValueError("MeanProjection's target contains NaN or infinite values")
        self.channels = channels
        self.dims = tuple(dims)

    @classmethod
    def from_state(cls, u0: torch.Tensor, channels: int | Sequence[int] | None = 0,
                   dims: Sequence[int] = (-2, -1)) -> MeanProjection:
        """Keep the means that ``u0 [B, C, *S]`` has (one target per sample and channel)."""
        return cls(spatial_mean(u0.detach(), dims, channels), channels, dims)

    def __call__(self, u: torch.Tensor) -> torch.Tensor:
        return project_mean(u, self.target.to(u.device), self.dims, self.channels)

    def __repr__(self) -> str:
        return (f"MeanProjection(target shape {tuple(self.target.shape)}, "
                f"channels={self.channels}, dims={self.dims})")


def conserved_mass(u: torch.Tensor, channel: int = 0, dims: Sequence[int] = (-2, -1),
                   area: float = 1.0) -> torch.Tensor:
    """Mass of one channel, the integral ``area * mean_S u_channel`` over a domain of total
    ``area`` (default 1: the spatial mean), in float64: ``[*lead, C, *S] -> [*lead]``. For a
    rollout ``[B, T, C, X, Y]`` this is the series ``[B, T]`` that
    :func:`scidl.metrics.forecast.invariant_drift` turns into a relative drift."""
    return area * spatial_mean(u, dims, channel).squeeze(-1)


__all__ = ["MeanProjection", "conserved_mass", "project_mean", "spatial_mean"]
