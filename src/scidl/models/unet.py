"""Convolutional baselines for the operator tables: a U-Net (Ronneberger, Fischer & Brox 2015,
as the FNO paper's and PDEBench's baseline) and a plain residual CNN, in 1, 2 or 3 dimensions.

Both use circular padding, since the benchmark fields are periodic; unlike an FNO they are tied to
the grid spacing they were trained at (no resolution invariance).
"""

from __future__ import annotations

import torch
from torch import nn

from scidl._shapes import check_ndim, check_size

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_POOL = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}


def _check_input(model: nn.Module, u: torch.Tensor) -> None:
    name = f"{type(model).__name__} ({model.ndim}D) input"
    check_ndim(u, (model.ndim + 2,), name, "[B, C, *S]")
    check_size(u, 1, model.in_channels, name, "channels")


def _check_ndim(ndim: int) -> None:
    if ndim not in _CONV:
        raise ValueError(f"ndim must be 1, 2 or 3, got {ndim}")


def _block(ndim: int, channels_in: int, channels_out: int) -> nn.Sequential:
    """Two 3-point (per axis) periodic convolutions with group norm and GELU."""
    conv = _CONV[ndim]
    return nn.Sequential(
        conv(channels_in, channels_out, 3, padding=1, padding_mode="circular"),
        nn.GroupNorm(1, channels_out), nn.GELU(),
        conv(channels_out, channels_out, 3, padding=1, padding_mode="circular"),
        nn.GroupNorm(1, channels_out), nn.GELU(),
    )


class UNet(nn.Module):
    """U-Net with ``levels`` downsamplings (average pooling by 2) and skip connections.

    Args:
        ndim: spatial dimensions (1, 2 or 3).
        in_channels, out_channels: channels of the input and output fields.
        width: channels at the finest level (doubled at every level down).
        levels: number of downsamplings; every axis must be divisible by ``2^levels``.

    Shapes:
        input ``[B, in_channels, *S]`` -> output ``[B, out_channels, *S]``.
    """

    def __init__(self, ndim: int = 1, in_channels: int = 1, out_channels: int = 1,
                 width: int = 32, levels: int = 3):
        super().__init__()
        _check_ndim(ndim)
        self.ndim, self.in_channels, self.levels = ndim, in_channels, levels
        widths = [width * 2**i for i in range(levels + 1)]
        self.down = nn.ModuleList([_block(ndim, in_channels, widths[0])] + [
            _block(ndim, widths[i], widths[i + 1]) for i in range(levels)])
        self.pool = _POOL[ndim](2)
        self.up = nn.ModuleList(nn.Upsample(scale_factor=2, mode="nearest")
                                for _ in range(levels))
        self.merge = nn.ModuleList(_block(ndim, widths[i + 1] + widths[i], widths[i])
                                   for i in reversed(range(levels)))
        self.out = _CONV[ndim](widths[0], out_channels, 1)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        _check_input(self, u)
        factor = 2**self.levels
        if any(n % factor for n in u.shape[2:]):
            raise ValueError(f"every grid axis must be divisible by 2^levels = {factor}, got "
                             f"{tuple(u.shape[2:])}")
        skips = []
        v = u
        for i, block in enumerate(self.down):
            v = block(v if i == 0 else self.pool(v))
            skips.append(v)
        v = skips.pop()
        for up, merge in zip(self.up, self.merge):
            v = merge(torch.cat([up(v), skips.pop()], dim=1))
        return self.out(v)


class ResNetCNN(nn.Module):
    """A plain residual CNN: lift, ``blocks`` residual pairs of periodic convolutions, project.

    Shapes:
        input ``[B, in_channels, *S]`` -> output ``[B, out_channels, *S]``.
    """

    def __init__(self, ndim: int = 1, in_channels: int = 1, out_channels: int = 1,
                 width: int = 64, blocks: int = 4):
        super().__init__()
        _check_ndim(ndim)
        conv = _CONV[ndim]
        self.ndim, self.in_channels = ndim, in_channels
        self.lift = conv(in_channels, width, 1)
        self.blocks = nn.ModuleList(_block(ndim, width, width) for _ in range(blocks))
        self.out = conv(width, out_channels, 1)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        _check_input(self, u)
        v = self.lift(u)
        for block in self.blocks:
            v = v + block(v)
        return self.out(v)
