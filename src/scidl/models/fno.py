"""Fourier neural operator in 1D (Li et al., "Fourier Neural Operator for Parametric Partial
Differential Equations", ICLR 2021)."""

from __future__ import annotations

import torch
from torch import nn

from scidl._shapes import check_ndim, check_size


class SpectralConv1d(nn.Module):
    """``v -> F^-1(R . F(v))`` with learned complex weights ``R`` on the lowest ``modes`` modes.

    The weights are stored as real tensors ``[in, out, modes, 2]``, so ``model.double()`` moves
    them to complex128 like every other parameter.

    Shapes:
        input ``[B, in_channels, N]`` -> output ``[B, out_channels, N]``, any ``N >= 2 * modes``.
    """

    def __init__(self, in_channels: int, out_channels: int, modes: int):
        super().__init__()
        self.in_channels, self.out_channels, self.modes = in_channels, out_channels, modes
        scale = 1.0 / (in_channels * out_channels)
        self.weight = nn.Parameter(scale * torch.rand(in_channels, out_channels, modes, 2))

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        n = v.shape[-1]
        if n // 2 + 1 < self.modes:
            raise ValueError(f"a grid of {n} points resolves fewer than the {self.modes} modes")
        v_hat = torch.fft.rfft(v, dim=-1)
        out = torch.zeros(
            v.shape[0], self.out_channels, n // 2 + 1, dtype=v_hat.dtype, device=v.device
        )
        weight = torch.view_as_complex(self.weight)
        out[..., : self.modes] = torch.einsum("bim,iom->bom", v_hat[..., : self.modes], weight)
        return torch.fft.irfft(out, n=n, dim=-1)


class FNO1d(nn.Module):
    """FNO for 1D periodic fields: lift, ``layers`` Fourier layers, project.

    Each Fourier layer is ``sigma(K v + W v)`` with ``K`` a :class:`SpectralConv1d` and ``W`` a
    pointwise linear map; the last layer has no activation. With ``grid_channel=True`` the
    coordinate ``x in [0, 1)`` is appended to the input channels (as in the paper). The model is
    resolution invariant: it can be evaluated on any grid with at least ``2 * modes`` points.

    Args:
        in_channels, out_channels: channels of the input and output fields.
        modes: Fourier modes kept per layer.
        width: channels of the hidden representation.
        layers: number of Fourier layers.
        grid_channel: append the coordinate as an input channel.

    Shapes:
        input ``[B, in_channels, N]`` -> output ``[B, out_channels, N]``.
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 1, modes: int = 16,
                 width: int = 64, layers: int = 4, grid_channel: bool = True):
        super().__init__()
        self.in_channels, self.grid_channel = in_channels, grid_channel
        self.lift = nn.Conv1d(in_channels + int(grid_channel), width, 1)
        self.spectral = nn.ModuleList(SpectralConv1d(width, width, modes) for _ in range(layers))
        self.pointwise = nn.ModuleList(nn.Conv1d(width, width, 1) for _ in range(layers))
        self.project = nn.Sequential(
            nn.Conv1d(width, 2 * width, 1), nn.GELU(), nn.Conv1d(2 * width, out_channels, 1)
        )

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        check_ndim(u, (3,), "FNO1d input", "[B, C, N]")
        check_size(u, 1, self.in_channels, "FNO1d input", "channels")
        if self.grid_channel:
            n = u.shape[-1]
            x = torch.arange(n, dtype=u.dtype, device=u.device) / n
            u = torch.cat([u, x.expand(u.shape[0], 1, n)], dim=1)
        v = self.lift(u)
        for i, (spectral, pointwise) in enumerate(zip(self.spectral, self.pointwise)):
            v = spectral(v) + pointwise(v)
            if i < len(self.spectral) - 1:
                v = nn.functional.gelu(v)
        return self.project(v)
