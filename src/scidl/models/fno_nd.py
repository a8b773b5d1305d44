"""Fourier neural operators on periodic grids of any dimension (Li et al., "Fourier Neural
Operator for Parametric Partial Differential Equations", ICLR 2021): 2D fields, and 3D fields or
2D space plus time (the paper's FNO-3D).

The spectral convolution keeps, along every dimension but the last, the ``modes`` lowest
positive and the ``modes`` lowest negative frequencies (the corners of the spectrum, as the
paper's ``weights1 .. weights4``), and the ``modes`` lowest non-negative ones along the last
(the ``rfftn`` half-spectrum); one complex weight per kept mode and channel pair.
"""

from __future__ import annotations

import torch
from torch import nn

from scidl._shapes import check_ndim, check_size


def _kept(size: int, modes: int, half: bool) -> torch.Tensor:
    """Indices of the kept frequencies of one axis of length ``size`` of the (r)fft."""
    if half:
        return torch.arange(modes)
    return torch.cat([torch.arange(modes), torch.arange(size - modes, size)])


class SpectralConv(nn.Module):
    """``v -> F^-1(R . F(v))`` over the last ``ndim`` dims, learned on the lowest modes.

    Weights are stored as real tensors ``[in, out, 2m, ..., 2m, m, 2]`` (``ndim - 1`` axes of
    ``2m``), so ``model.double()`` moves them to complex128 with every other parameter.

    Shapes:
        input ``[B, in_channels, *S]`` -> output ``[B, out_channels, *S]``; every axis needs at
        least ``2 * modes`` points (the last: ``2 * modes - 1``).
    """

    def __init__(self, in_channels: int, out_channels: int, modes: int | tuple[int, ...],
                 ndim: int):
        super().__init__()
        modes = (modes,) * ndim if isinstance(modes, int) else tuple(modes)
        if len(modes) != ndim or min(modes) < 1:
            raise ValueError(f"need {ndim} positive mode counts, got {modes}")
        self.in_channels, self.out_channels, self.modes, self.ndim = (in_channels, out_channels,
                                                                       modes, ndim)
        shape = [2 * m for m in modes[:-1]] + [modes[-1]]
        scale = 1.0 / (in_channels * out_channels)
        self.weight = nn.Parameter(scale * torch.rand(in_channels, out_channels, *shape, 2))

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        sizes = v.shape[-self.ndim:]
        for axis, (n, m) in enumerate(zip(sizes, self.modes)):
            last = axis == self.ndim - 1
            if (n // 2 + 1 if last else n // 2) < m:
                raise ValueError(f"a grid of {n} points along axis {axis} resolves fewer than "
                                 f"the {m} modes of this layer")
        dims = tuple(range(-self.ndim, 0))
        v_hat = torch.fft.rfftn(v, dim=dims)
        index = [_kept(n, m, axis == self.ndim - 1).to(v.device)
                 for axis, (n, m) in enumerate(zip(v_hat.shape[-self.ndim:], self.modes))]
        grid = torch.meshgrid(*index, indexing="ij")
        block = v_hat[(..., *grid)]  # [B, in, 2m, ..., m]
        weight = torch.view_as_complex(self.weight)
        mixed = torch.einsum("bi...,io...->bo...", block, weight)
        out = v_hat.new_zeros((v.shape[0], self.out_channels, *v_hat.shape[-self.ndim:]))
        out[(..., *grid)] = mixed
        return torch.fft.irfftn(out, s=sizes, dim=dims)


class FNO(nn.Module):
    """FNO for periodic fields on ``ndim``-dimensional grids: lift, Fourier layers, project.

    Each Fourier layer is ``gelu(K v + W v)`` with ``K`` a :class:`SpectralConv` and ``W`` a
    pointwise linear map (no activation after the last). With ``grid_channels=True`` the
    coordinates in ``[0, 1)`` are appended to the input channels, as in the paper. Resolution
    invariant: it evaluates on any grid that resolves its modes.

    Args:
        ndim: spatial dimensions (2 for ``[B, C, X, Y]``, 3 for ``[B, C, X, Y, T]``).
        in_channels, out_channels: channels of the input and output fields.
        modes: Fourier modes kept per axis and layer (one number, or one per axis).
        width, layers: channels of the hidden representation; number of Fourier layers.
        grid_channels: append the coordinates as input channels.
        padding: points of zeros appended to every axis after lifting and cropped before
            projecting (the paper's padding for non-periodic problems such as Darcy flow): the
            Fourier layers then see a periodic extension instead of wrapping the field around.

    Shapes:
        input ``[B, in_channels, *S]`` -> output ``[B, out_channels, *S]``, ``len(S) = ndim``.
    """

    def __init__(self, ndim: int = 2, in_channels: int = 1, out_channels: int = 1,
                 modes: int | tuple[int, ...] = 12, width: int = 32, layers: int = 4,
                 grid_channels: bool = True, padding: int = 0):
        super().__init__()
        if ndim < 1 or padding < 0:
            raise ValueError(f"need ndim >= 1 and padding >= 0, got {ndim} and {padding}")
        self.padding = padding
        self.ndim, self.in_channels, self.grid_channels = ndim, in_channels, grid_channels
        lift_in = in_channels + (ndim if grid_channels else 0)
        self.lift = nn.Linear(lift_in, width)
        self.spectral = nn.ModuleList(SpectralConv(width, width, modes, ndim)
                                      for _ in range(layers))
        self.pointwise = nn.ModuleList(nn.Linear(width, width) for _ in range(layers))
        self.project = nn.Sequential(nn.Linear(width, 2 * width), nn.GELU(),
                                     nn.Linear(2 * width, out_channels))

    def _channels_last(self, layer: nn.Module, v: torch.Tensor) -> torch.Tensor:
        """A pointwise layer applied over the channel dim of ``[B, C, *S]``."""
        return layer(v.movedim(1, -1)).movedim(-1, 1)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        layout = "[B, C, " + ", ".join(f"N{i + 1}" for i in range(self.ndim)) + "]"
        check_ndim(u, (self.ndim + 2,), f"FNO ({self.ndim}D) input", layout)
        check_size(u, 1, self.in_channels, f"FNO ({self.ndim}D) input", "channels")
        if self.grid_channels:
            axes = [torch.arange(n, dtype=u.dtype, device=u.device) / n
                    for n in u.shape[2:]]
            coords = torch.stack(torch.meshgrid(*axes, indexing="ij"))
            u = torch.cat([u, coords.expand(u.shape[0], *coords.shape)], dim=1)
        v = self._channels_last(self.lift, u)
        if self.padding:
            v = nn.functional.pad(v, (0, self.padding) * self.ndim)
        for i, (spectral, pointwise) in enumerate(zip(self.spectral, self.pointwise)):
            v = spectral(v) + self._channels_last(pointwise, v)
            if i < len(self.spectral) - 1:
                v = nn.functional.gelu(v)
        if self.padding:
            v = v[(..., *(slice(0, n) for n in u.shape[2:]))]
        return self._channels_last(self.project, v)
