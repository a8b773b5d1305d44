"""Fourier neural operator in 1D (Li et al., "Fourier Neural Operator for Parametric Partial
Differential Equations", ICLR 2021): the one-dimensional case of :class:`scidl.models.FNO`."""

from __future__ import annotations

from scidl.models.fno_nd import FNO, Factorization, SpectralConv


class SpectralConv1d(SpectralConv):
    """``v -> F^-1(R . F(v))`` with learned complex weights ``R`` on the lowest ``modes`` modes.

    The weights are stored as real tensors ``[in, out, modes, 2]``, so ``model.double()`` moves
    them to complex128 like every other parameter.

    Shapes:
        input ``[B, in_channels, N]`` -> output ``[B, out_channels, N]``, any ``N >= 2 * modes``.
    """

    def __init__(self, in_channels: int, out_channels: int, modes: int,
                 factorization: Factorization = "dense", rank: int = 16):
        super().__init__(in_channels, out_channels, modes, 1, factorization=factorization,
                         rank=rank)


class FNO1d(FNO):
    """FNO for 1D periodic fields: lift, ``layers`` Fourier layers, project.

    Each Fourier layer is ``sigma(K v + W v)`` with ``K`` a spectral convolution and ``W`` a
    pointwise linear map; the last layer has no activation. With ``grid_channel=True`` the
    coordinate ``x in [0, 1)`` is appended to the input channels (as in the paper). The model is
    resolution invariant: it can be evaluated on any grid with at least ``2 * modes`` points.

    Args:
        in_channels, out_channels: channels of the input and output fields.
        modes: Fourier modes kept per layer.
        width: channels of the hidden representation.
        layers: number of Fourier layers.
        grid_channel: append the coordinate as an input channel.
        padding, projection, factorization, rank: as for :class:`scidl.models.FNO`.

    Shapes:
        input ``[B, in_channels, N]`` -> output ``[B, out_channels, N]``.
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 1, modes: int = 16,
                 width: int = 64, layers: int = 4, grid_channel: bool = True,
                 padding: int | float = 0,
                 projection: int | None = None, factorization: Factorization = "dense",
                 rank: int = 16):
        super().__init__(ndim=1, in_channels=in_channels, out_channels=out_channels,
                         modes=modes, width=width, layers=layers, grid_channels=grid_channel,
                         padding=padding, projection=projection, factorization=factorization,
                         rank=rank)
        self.grid_channel = grid_channel
