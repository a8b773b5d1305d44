"""Evaluating gridded periodic fields between grid points."""

from __future__ import annotations

import math

import torch

from scidl.numerics.grids import PeriodicGrid


def fourier_interpolate(u: torch.Tensor, x: torch.Tensor, grid: PeriodicGrid) -> torch.Tensor:
    """The trigonometric interpolant of 1D periodic fields evaluated at arbitrary points.

    ``u(x) = sum_k c_k exp(2 pi i k x / L)`` over the modes the grid resolves, with the Nyquist
    mode taken as a cosine so that the interpolant is real and reproduces ``u`` exactly at the
    grid points ``x_j = j L / N``. Spectrally accurate for smooth fields.

    Shapes:
        ``u [..., N]`` and ``x [P]`` (measured from the grid's first point) -> ``[..., P]``.
    """
    if grid.ndim != 1 or u.shape[-1] != grid.shape[0]:
        raise ValueError(f"u must be [..., {grid.shape}] on a 1D grid, got {tuple(u.shape)}")
    n, length = grid.shape[0], grid.length[0]
    coefficients = torch.fft.rfft(u, dim=-1) / n
    k = torch.arange(coefficients.shape[-1], dtype=u.dtype, device=u.device)
    weight = torch.full_like(k, 2.0)
    weight[0] = 1.0
    if n % 2 == 0:
        weight[-1] = 1.0
    x = torch.as_tensor(x, dtype=u.dtype, device=u.device).reshape(-1)
    phase = torch.exp(1j * (2 * math.pi / length) * torch.outer(x, k))
    return ((coefficients * weight) @ phase.T).real
