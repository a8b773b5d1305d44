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


def fourier_resample(u: torch.Tensor, shape: int | tuple[int, ...]) -> torch.Tensor:
    """Periodic fields resampled onto another uniform grid of the same box by their Fourier series.

    Refining (zero-padding the spectrum) evaluates the trigonometric interpolant, so the old grid
    points are reproduced exactly: the Nyquist mode of an even grid is split evenly between
    ``+N/2`` and ``-N/2`` (a cosine). Coarsening keeps the modes ``|k| < M/2`` and folds the
    pair ``+-M/2`` into the new Nyquist mode (the values those modes take at the coarse points),
    so refining and then coarsening returns the field exactly, and coarsening is exact for
    fields without modes above ``M/2``. Dimensions may be refined and coarsened at once.

    Shapes:
        ``u [..., *old]`` -> ``[..., *shape]``, with ``len(shape)`` trailing spatial dims.
    """
    shape = (int(shape),) if isinstance(shape, int) else tuple(int(n) for n in shape)
    ndim = len(shape)
    if u.ndim < ndim or min(shape) < 1:
        raise ValueError(f"cannot resample a field of shape {tuple(u.shape)} to {shape}")
    old = tuple(u.shape[-ndim:])
    if old == shape:
        return u
    dims = tuple(range(-ndim, 0))
    v = torch.fft.rfftn(u, dim=dims)
    for axis, (n, m) in enumerate(zip(old, shape)):
        v = _resample_modes(v, axis - ndim, n, m, half=axis == ndim - 1, others=ndim - 1)
    return torch.fft.irfftn(v, s=shape, dim=dims) * (math.prod(shape) / math.prod(old))


def _resample_modes(v: torch.Tensor, dim: int, n: int, m: int, *, half: bool,
                    others: int = 0) -> torch.Tensor:
    """The Fourier coefficients ``v`` of an ``n``-point axis moved onto an ``m``-point axis;
    ``half``: the axis holds only ``k >= 0`` (the last axis of an rfft), after ``others``
    full-spectrum spatial axes."""
    if n == m:
        return v
    v = v.movedim(dim, 0)
    size = m // 2 + 1 if half else m
    out = v.new_zeros((size, *v.shape[1:]))
    if m > n:  # refine: copy every mode, split the Nyquist mode of an even grid
        positive = n // 2 + 1
        out[:positive] = v[:positive]
        if not half:
            out[m - (n - positive):] = v[positive:]
        if n % 2 == 0:
            out[n // 2] = 0.5 * v[n // 2]
            if not half:
                out[m - n // 2] = 0.5 * v[n // 2]
    else:  # coarsen: keep |k| < m / 2, fold +-m/2 into the new Nyquist mode
        keep = (m - 1) // 2  # the largest |k| kept
        out[: keep + 1] = v[: keep + 1]
        if not half and keep > 0:
            out[m - keep:] = v[n - keep:]
        if m % 2 == 0:
            if half:  # the -m/2 coefficients: conjugates of +m/2 at the mirrored modes
                plane = v[m // 2]
                mirror = tuple(range(plane.ndim - others, plane.ndim))
                if mirror:
                    mirrored = torch.roll(torch.flip(plane, mirror), (1,) * others, mirror)
                else:
                    mirrored = plane
                out[m // 2] = plane + mirrored.conj()
            else:
                out[m // 2] = v[m // 2] + v[n - m // 2]
    return out.movedim(0, dim)
