"""Networks of space-time coordinates for PINNs."""

from __future__ import annotations

import math

import torch
from torch import nn


class SpaceTimeNetwork(nn.Module):
    """Wrap a network ``body`` of ``(x, t)`` so it sees well-scaled features.

    ``t`` is mapped from ``[0, t_final]`` to ``[-1, 1]``. ``x`` is mapped from
    ``[x_min, x_max]`` to ``[-1, 1]``, or, with ``periodic=True``, replaced by the features
    ``(cos 2 pi k x / L, sin 2 pi k x / L)``, ``k = 1..periodic_modes``, which makes every output
    exactly ``L``-periodic in ``x`` (a hard periodic boundary condition).

    Shapes:
        ``x [P, 1], t [P, 1] -> u [P, 1]``; ``body`` maps ``[P, in_features] -> [P, 1]`` with
        ``in_features = self.in_features``.
    """

    def __init__(self, body: nn.Module, x_min: float, x_max: float, t_final: float,
                 periodic: bool = False, periodic_modes: int = 1):
        super().__init__()
        self.body = body
        self.x_min, self.x_max, self.t_final = x_min, x_max, t_final
        self.periodic, self.periodic_modes = periodic, periodic_modes

    @staticmethod
    def features_for(periodic: bool, periodic_modes: int = 1) -> int:
        """Input size the body must accept."""
        return 2 * periodic_modes + 1 if periodic else 2

    @property
    def in_features(self) -> int:
        return self.features_for(self.periodic, self.periodic_modes)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        tau = 2 * t / self.t_final - 1
        if self.periodic:
            k = torch.arange(1, self.periodic_modes + 1, dtype=x.dtype, device=x.device)
            phase = 2 * math.pi * k * (x - self.x_min) / (self.x_max - self.x_min)
            features = [torch.cos(phase), torch.sin(phase), tau]
        else:
            features = [2 * (x - self.x_min) / (self.x_max - self.x_min) - 1, tau]
        return self.body(torch.cat(features, dim=-1))
