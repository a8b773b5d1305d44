"""The plain-torch reference FNO of the neuraloperator comparison: the classic ~70-line FNO1d
of Li et al.'s repository (``fourier_1d.py``), written as it is there (Conv1d 1x1, torch.fft)."""

from __future__ import annotations

import torch
from torch import nn


class PlainSpectralConv1d(nn.Module):
    """The classic FNO1d spectral layer: rfft, complex weights on the first ``modes``, irfft."""

    def __init__(self, width: int, modes: int):
        super().__init__()
        self.modes = modes
        scale = 1 / (width * width)
        self.weight = nn.Parameter(scale * torch.rand(width, width, modes, dtype=torch.cfloat))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_ft = torch.fft.rfft(x)
        out_ft = torch.zeros(x.shape[0], self.weight.shape[1], x.shape[-1] // 2 + 1,
                             dtype=torch.cfloat, device=x.device)
        out_ft[:, :, :self.modes] = torch.einsum("bix,iox->box", x_ft[:, :, :self.modes],
                                                 self.weight)
        return torch.fft.irfft(out_ft, n=x.shape[-1])


class PlainFNO1d(nn.Module):
    """The ~70-line FNO1d of Li et al.'s repository (``fourier_1d.py``): lift the input and the
    grid to ``width`` channels, 4 layers ``gelu(K v + W v)`` with ``W`` a 1x1 ``Conv1d``, project
    through 128 channels. The reference for what plain torch costs."""

    def __init__(self, modes: int = 16, width: int = 64, layers: int = 4):
        super().__init__()
        self.lift = nn.Linear(2, width)
        self.spectral = nn.ModuleList(PlainSpectralConv1d(width, modes) for _ in range(layers))
        self.pointwise = nn.ModuleList(nn.Conv1d(width, width, 1) for _ in range(layers))
        self.fc1, self.fc2 = nn.Linear(width, 128), nn.Linear(128, 1)

    def forward(self, u: torch.Tensor) -> torch.Tensor:  # [B, 1, N] -> [B, 1, N]
        grid = torch.linspace(0, 1, u.shape[-1], device=u.device).expand(u.shape[0], 1, -1)
        v = self.lift(torch.cat([u, grid], dim=1).transpose(1, 2)).transpose(1, 2)
        for i, (spectral, pointwise) in enumerate(zip(self.spectral, self.pointwise)):
            v = spectral(v) + pointwise(v)
            if i < len(self.spectral) - 1:
                v = nn.functional.gelu(v)
        v = nn.functional.gelu(self.fc1(v.transpose(1, 2)))
        return self.fc2(v).transpose(1, 2)
