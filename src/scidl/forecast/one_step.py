"""One-step training on channel-standardised fields: :class:`OneStepForecast`.

Unlike :class:`~scidl.forecast.AutoregressiveObjective` (raw fields, unrolling and pushforward),
it standardises every channel over the training data, which suits systems whose channels have
different units and scales (the shallow-water ``(h, u, v)``).
"""

from __future__ import annotations

import torch
from torch import nn

from scidl.errors import ShapeError


class OneStepForecast:
    """Objective for :func:`scidl.train.train`: learn one step of trajectories ``[N, T, C, *S]``.

    Pairs are ``(u[n, t], u[n, t + 1])`` for every trajectory and time. Fields are standardised
    per channel (``(u - mean_c) / std_c`` over the training data); with ``residual=True`` the
    model predicts the standardised increment ``(u(t+1) - u(t)) / increment_std_c`` and
    :meth:`step` adds it back, so an untrained (zero-output) model is persistence. Batches are
    drawn with replacement from ``(seed, step)``, split across ranks, so runs are reproducible.
    The loss is the mean squared error of the (standardised) target.

    Args:
        trajectories: ``[N, T, C, *S]`` with ``T >= 2``.
        batch_size: global batch size.
        residual: learn the increment (default) or the next state itself.
        seed, device: as in :class:`scidl.train.FieldRegression`.
    """

    def __init__(self, trajectories: torch.Tensor, *, batch_size: int = 16,
                 residual: bool = True, seed: int = 0, device: torch.device | str = "cpu"):
        if trajectories.ndim < 4 or trajectories.shape[1] < 2:
            raise ShapeError(f"trajectories must be [N, T, C, *S] with T >= 2, got "
                             f"{tuple(trajectories.shape)}")
        self.data = trajectories
        self.batch_size, self.residual, self.seed = batch_size, residual, seed
        self.device = torch.device(device)
        dims = [0, 1, *range(3, trajectories.ndim)]
        shape = (1, -1, *[1] * (trajectories.ndim - 3))
        self.mean = trajectories.mean(dim=dims).reshape(shape).to(self.device)
        self.std = trajectories.std(dim=dims).clamp_min(1e-12).reshape(shape).to(self.device)
        increments = trajectories[:, 1:] - trajectories[:, :-1]
        self.increment_std = increments.std(dim=dims).clamp_min(1e-12).reshape(shape).to(
            self.device)
        self.pairs = trajectories.shape[0] * (trajectories.shape[1] - 1)

    def batch(self, step: int, rank: int = 0, world_size: int = 1):
        if self.batch_size % world_size:
            raise ValueError(f"batch_size {self.batch_size} must be divisible by the "
                             f"{world_size} processes")
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        index = torch.randint(0, self.pairs, (self.batch_size,), generator=generator)
        index = index[rank::world_size]
        n, t = index // (self.data.shape[1] - 1), index % (self.data.shape[1] - 1)
        return self.data[n, t].to(self.device), self.data[n, t + 1].to(self.device)

    def target(self, now: torch.Tensor, later: torch.Tensor) -> torch.Tensor:
        """What the model is trained to output for the pair ``(now, later)``."""
        if self.residual:
            return (later - now) / self.increment_std.to(now)
        return (later - self.mean.to(now)) / self.std.to(now)

    def step(self, model: nn.Module, u: torch.Tensor) -> torch.Tensor:
        """One forecast step ``u(t) -> u(t + dt)`` in physical units, ``[B, C, *S]``."""
        out = model((u - self.mean.to(u)) / self.std.to(u))
        if self.residual:
            return u + out * self.increment_std.to(u)
        return self.mean.to(u) + out * self.std.to(u)

    def loss(self, model: nn.Module, batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        now, later = batch
        prediction = model((now - self.mean) / self.std)
        return (prediction - self.target(now, later)).square().mean(), {}
