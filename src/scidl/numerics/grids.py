"""Uniform periodic grids: coordinates, Fourier wavenumbers and the 2/3 de-aliasing mask."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


def _as_tuple(value, ndim: int, name: str) -> tuple:
    if isinstance(value, (int, float)):
        return (value,) * ndim
    value = tuple(value)
    if len(value) != ndim:
        raise ValueError(f"{name} must have {ndim} entries, got {len(value)}")
    return value


@dataclass(frozen=True)
class PeriodicGrid:
    """A uniform grid on the periodic box ``[0, L_1) x ... x [0, L_d)``.

    Args:
        shape: points per dimension, an int for 1D or a tuple ``(N_1, ..., N_d)``.
        length: box side(s) ``L``; default 1 (the unit interval of the FNO paper).

    Fields on this grid have the spatial dims last: ``[..., N_1, ..., N_d]``.
    Dimension names are ``x, y, z`` in that order.
    """

    shape: tuple[int, ...]
    length: tuple[float, ...]

    def __init__(self, shape: int | tuple[int, ...], length: float | tuple[float, ...] = 1.0):
        shape = (shape,) if isinstance(shape, int) else tuple(int(n) for n in shape)
        if not 1 <= len(shape) <= 3 or any(n < 2 for n in shape):
            raise ValueError(f"grid shape must be 1 to 3 sizes of at least 2, got {shape}")
        length = tuple(float(v) for v in _as_tuple(length, len(shape), "length"))
        if any(v <= 0 for v in length):
            raise ValueError(f"grid length must be positive, got {length}")
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "length", length)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def spacing(self) -> tuple[float, ...]:
        return tuple(L / n for L, n in zip(self.length, self.shape))

    def coordinates(self, dtype: torch.dtype = torch.float64, device=None) -> list[torch.Tensor]:
        """1D coordinate vectors ``x_j = j L / N``, one per dimension."""
        return [
            torch.arange(n, dtype=dtype, device=device) * (L / n)
            for n, L in zip(self.shape, self.length)
        ]

    def meshgrid(self, dtype: torch.dtype = torch.float64, device=None) -> list[torch.Tensor]:
        """Coordinate fields of shape ``self.shape`` (``indexing='ij'``)."""
        return list(torch.meshgrid(*self.coordinates(dtype, device), indexing="ij"))

    def wavenumbers(self, dtype: torch.dtype = torch.float64, device=None) -> list[torch.Tensor]:
        """Angular wavenumbers ``2 pi k / L`` laid out for ``torch.fft.rfftn`` over the grid.

        Returns one tensor per dimension, broadcastable to the rfft shape
        ``(N_1, ..., N_{d-1}, N_d // 2 + 1)``.
        """
        ks = []
        for axis, (n, L) in enumerate(zip(self.shape, self.length)):
            if axis == self.ndim - 1:
                k = torch.fft.rfftfreq(n, d=1.0 / n, dtype=dtype, device=device)
            else:
                k = torch.fft.fftfreq(n, d=1.0 / n, dtype=dtype, device=device)
            view = [1] * self.ndim
            view[axis] = -1
            ks.append((2 * math.pi / L) * k.reshape(view))
        return ks

    def integer_wavenumbers(self, device=None) -> list[torch.Tensor]:
        """Integer mode numbers in the rfftn layout (same broadcasting as :meth:`wavenumbers`)."""
        return [
            k * (L / (2 * math.pi))
            for k, L in zip(self.wavenumbers(torch.float64, device), self.length)
        ]

    def dealias_mask(self, device=None) -> torch.Tensor:
        """Orszag's 2/3 rule: keep modes with ``|k_i| < N_i / 3`` in every dimension.

        For quadratic nonlinearities the retained modes are then free of aliasing errors
        (Orszag 1971, J. Atmos. Sci. 28, 1074).
        """
        mask = torch.ones((), dtype=torch.bool, device=device)
        for k, n in zip(self.integer_wavenumbers(device), self.shape):
            mask = mask & (k.abs().round() < n / 3)
        return mask

    def nyquist_mask(self, device=None) -> torch.Tensor:
        """False on the Nyquist mode of each even-sized dimension, True elsewhere.

        Odd derivatives of the Nyquist mode are not representable on the grid, so spectral
        first derivatives set it to zero.
        """
        mask = torch.ones((), dtype=torch.bool, device=device)
        for k, n in zip(self.integer_wavenumbers(device), self.shape):
            if n % 2 == 0:
                mask = mask & (k.abs().round() != n // 2)
        return mask
