"""Fourier neural operators on periodic grids of any dimension (Li et al., "Fourier Neural
Operator for Parametric Partial Differential Equations", ICLR 2021): 1D fields, 2D fields, and
3D fields or 2D space plus time (the paper's FNO-3D).

The spectral convolution keeps, along every dimension but the last, the ``modes`` lowest
positive and the ``modes`` lowest negative frequencies (the corners of the spectrum, as the
paper's ``weights1 .. weights4``), and the ``modes`` lowest non-negative ones along the last
(the ``rfftn`` half-spectrum); one complex weight per kept mode and channel pair, or a low-rank
(CP) or Tucker factorisation of that weight tensor.

Layout and speed: hidden fields are kept channels-last, ``[B, *S, C]``, so the pointwise maps are
single matrix products, and the truncated Fourier transforms are products with the few rows of
the DFT matrix that the kept modes need (``2m`` rows per axis instead of a full FFT followed by a
slice). Both are dense GEMMs, which is what CPUs and GPUs run fastest; the values are those of
``rfftn``/``irfftn`` (the tests compare them).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from scidl._shapes import check_ndim, check_size
from scidl.errors import ShapeError

Factorization = Literal["dense", "cp", "tucker"]


def _kept(size: int, modes: int, half: bool) -> torch.Tensor:
    """Indices of the kept frequencies of one axis of length ``size`` of the (r)fft."""
    if half:
        return torch.arange(modes)
    return torch.cat([torch.arange(modes), torch.arange(size - modes, size)])


_BASES: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}


def _phase(size: int, modes: int, half: bool) -> torch.Tensor:
    """``2 pi k x / N`` for kept frequencies ``k`` (rows) and grid points ``x`` (columns), exact
    in the integer product ``k x mod N`` before scaling."""
    k = _kept(size, modes, half).to(torch.int64)
    x = torch.arange(size, dtype=torch.int64)
    return (2 * math.pi / size) * torch.remainder(k[:, None] * x[None, :], size).double()


def _basis(size: int, modes: int, half: bool, dtype: torch.dtype, device: torch.device):
    """The forward and inverse truncated DFT matrices of one axis (cached).

    ``half`` (the last axis, real data): forward ``[2m, N]`` real, rows ``cos`` then ``-sin``, so
    that ``F @ v`` stacks the real and imaginary parts of ``rfft(v)[:m]``; inverse ``[N, 2m]`` real,
    so that ``G @ [re; im]`` equals ``irfft`` of the half-spectrum that is zero beyond ``m``.
    Otherwise (a complex axis): forward ``[2m, N]`` and inverse ``[N, 2m]`` complex, the rows and
    columns of the DFT and inverse DFT for the kept frequencies.
    """
    key = (size, modes, half, dtype, device)
    if key not in _BASES:
        phase = _phase(size, modes, half)  # [K, N]
        if half:
            forward = torch.cat([torch.cos(phase), -torch.sin(phase)])
            k = _kept(size, modes, True)
            weight = torch.full((modes,), 2.0, dtype=torch.float64)
            weight[k == 0] = 1.0
            if size % 2 == 0:
                weight[k == size // 2] = 1.0
            inverse = torch.cat([torch.cos(phase) * weight[:, None],
                                 -torch.sin(phase) * weight[:, None]]).T / size
            real = dtype if not dtype.is_complex else torch.empty((), dtype=dtype).real.dtype
            _BASES[key] = (forward.to(device, real), inverse.contiguous().to(device, real))
        else:
            complex_dtype = dtype if dtype.is_complex else torch.complex(
                torch.empty((), dtype=dtype), torch.empty((), dtype=dtype)).dtype
            forward = torch.polar(torch.ones_like(phase), -phase)
            inverse = torch.polar(torch.ones_like(phase), phase).T / size
            _BASES[key] = (forward.to(device, complex_dtype),
                           inverse.contiguous().to(device, complex_dtype))
    return _BASES[key]


def _check_modes(sizes, modes) -> None:
    for axis, (n, m) in enumerate(zip(sizes, modes)):
        last = axis == len(modes) - 1
        if (n // 2 + 1 if last else n // 2) < m:
            raise ShapeError(f"a grid of {n} points along axis {axis} resolves fewer than "
                             f"the {m} modes of this layer")


def truncated_rfftn(v: torch.Tensor, modes: tuple[int, ...]) -> torch.Tensor:
    """The kept modes of ``rfftn`` over the spatial axes of a channels-last ``[B, *S, C]``
    field: ``[B, 2m_1, ..., 2m_{d-1}, m_d, C]`` complex, ordered as :func:`_kept`."""
    ndim = len(modes)
    sizes = v.shape[1:1 + ndim]
    _check_modes(sizes, modes)
    forward, _ = _basis(sizes[-1], modes[-1], True, v.dtype, v.device)
    stacked = torch.matmul(forward, v)  # the last spatial axis is dim -2: [..., 2m, C]
    m = modes[-1]
    out = torch.complex(stacked[..., :m, :], stacked[..., m:, :])
    for axis in range(ndim - 1):
        dim = 1 + axis
        forward, _ = _basis(sizes[axis], modes[axis], False, out.dtype, v.device)
        out = torch.matmul(forward, out.movedim(dim, -2)).movedim(-2, dim)
    return out


def truncated_irfftn(w: torch.Tensor, sizes: tuple[int, ...],
                     modes: tuple[int, ...]) -> torch.Tensor:
    """The inverse of :func:`truncated_rfftn`: ``irfftn`` of a spectrum that is zero outside
    the kept modes, back onto a channels-last grid ``[B, *sizes, C]`` (real)."""
    ndim = len(modes)
    for axis in range(ndim - 1):
        dim = 1 + axis
        _, inverse = _basis(sizes[axis], modes[axis], False, w.dtype, w.device)
        w = torch.matmul(inverse, w.movedim(dim, -2)).movedim(-2, dim)
    _, inverse = _basis(sizes[-1], modes[-1], True, w.real.dtype, w.device)
    return torch.matmul(inverse, torch.cat([w.real, w.imag], dim=-2))


class SpectralConv(nn.Module):
    """``v -> F^-1(R . F(v))`` over the last ``ndim`` dims, learned on the lowest modes.

    Args:
        in_channels, out_channels: channels of the input and output fields.
        modes: kept modes per axis (one number, or one per axis).
        ndim: spatial dimensions.
        factorization: ``"dense"`` (one complex weight per mode and channel pair, the paper),
            ``"cp"`` (a rank-``rank`` canonical polyadic sum of outer products of one factor per
            axis of the weight tensor) or ``"tucker"`` (a core of size ``rank`` along every
            axis and a factor matrix per axis): far fewer parameters for wide models.
        rank: the rank of a factorised weight.

    Dense weights are stored as real tensors ``[in, out, 2m, ..., 2m, m, 2]`` (``ndim - 1``
    axes of ``2m``), factors as real tensors with a trailing axis of 2 (real and imaginary
    parts), so ``model.double()`` moves them to complex128 with every other parameter.

    Shapes:
        input ``[B, in_channels, *S]`` -> output ``[B, out_channels, *S]``; every axis needs at
        least ``2 * modes`` points (the last: ``2 * modes - 1``). :meth:`channels_last` takes
        and returns ``[B, *S, C]`` instead (the layout :class:`FNO` uses inside).
    """

    def __init__(self, in_channels: int, out_channels: int, modes: int | tuple[int, ...],
                 ndim: int, factorization: Factorization = "dense", rank: int = 16):
        super().__init__()
        modes = (modes,) * ndim if isinstance(modes, int) else tuple(modes)
        if len(modes) != ndim or min(modes) < 1:
            raise ValueError(f"need {ndim} positive mode counts, got {modes}")
        if factorization not in ("dense", "cp", "tucker"):
            raise ValueError(f"factorization must be 'dense', 'cp' or 'tucker', got "
                             f"{factorization!r}")
        if rank < 1:
            raise ValueError(f"rank must be positive, got {rank}")
        self.in_channels, self.out_channels, self.modes, self.ndim = (in_channels, out_channels,
                                                                       modes, ndim)
        self.factorization, self.rank = factorization, rank
        shape = [in_channels, out_channels] + [2 * m for m in modes[:-1]] + [modes[-1]]
        scale = 1.0 / (in_channels * out_channels)
        if factorization == "dense":
            self.weight = nn.Parameter(scale * torch.rand(*shape, 2))
        elif factorization == "cp":
            # Each factor's entries are ~ scale^(1/d) so that the product has the dense scale.
            per = scale ** (1.0 / len(shape)) / rank ** (0.5 / len(shape))
            self.factors = nn.ParameterList(
                nn.Parameter(per * torch.randn(n, rank, 2)) for n in shape)
        else:
            ranks = [min(rank, n) for n in shape]
            # orthonormal factors: the core's scale sets the reconstructed weight's scale
            core_scale = scale * math.prod(math.sqrt(n / r) for n, r in zip(shape, ranks))
            core_scale /= math.sqrt(math.prod(ranks))
            self.core = nn.Parameter(core_scale * torch.randn(*ranks, 2))
            self.factors = nn.ParameterList(
                nn.Parameter(torch.linalg.qr(torch.randn(n, r))[0][..., None]
                             * torch.tensor([1.0, 0.0])) for n, r in zip(shape, ranks))

    def full_weight(self) -> torch.Tensor:
        """The complex weight tensor ``[in, out, 2m, ..., m]`` (reconstructed if factorised)."""
        if self.factorization == "dense":
            return torch.view_as_complex(self.weight)
        factors = [torch.view_as_complex(f) for f in self.factors]
        letters = "abcdefgh"[:len(factors)]
        if self.factorization == "cp":
            spec = ",".join(f"{c}r" for c in letters) + "->" + letters
            return torch.einsum(spec, *factors)
        core_letters = "ABCDEFGH"[:len(factors)]
        spec = (core_letters + "," + ",".join(f"{c}{C}" for c, C in zip(letters, core_letters))
                + "->" + letters)
        return torch.einsum(spec, torch.view_as_complex(self.core), *factors)

    def channels_last(self, v: torch.Tensor) -> torch.Tensor:
        """``[B, *S, in]`` -> ``[B, *S, out]``."""
        sizes = tuple(v.shape[1:1 + self.ndim])
        v_hat = truncated_rfftn(v, self.modes)  # [B, *K, in]
        weight = self.full_weight()  # [in, out, *K]
        batch, kept = v_hat.shape[0], v_hat.shape[1:-1]
        # one small complex matrix product per kept mode: [K, B, in] @ [K, in, out]
        mixed = torch.bmm(v_hat.reshape(batch, -1, self.in_channels).transpose(0, 1),
                          weight.reshape(self.in_channels, self.out_channels, -1)
                          .permute(2, 0, 1))
        mixed = mixed.transpose(0, 1).reshape(batch, *kept, self.out_channels)
        return truncated_irfftn(mixed, sizes, self.modes)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        return self.channels_last(v.movedim(1, -1)).movedim(-1, 1)


class FNO(nn.Module):
    """FNO for periodic fields on ``ndim``-dimensional grids: lift, Fourier layers, project.

    Each Fourier layer is ``gelu(K v + W v)`` with ``K`` a :class:`SpectralConv` and ``W`` a
    pointwise linear map (no activation after the last). With ``grid_channels=True`` the
    coordinates in ``[0, 1)`` are appended to the input channels, as in the paper. Resolution
    invariant: it evaluates on any grid that resolves its modes.

    Args:
        ndim: spatial dimensions (1 for ``[B, C, N]``, 2 for ``[B, C, X, Y]``, 3 for
            ``[B, C, X, Y, T]``).
        in_channels, out_channels: channels of the input and output fields.
        modes: Fourier modes kept per axis and layer (one number, or one per axis).
        width, layers: channels of the hidden representation; number of Fourier layers.
        grid_channels: append the coordinates as input channels.
        padding: zeros appended to every axis (or one value per axis) after lifting and
            cropped before projecting (the paper's padding for non-periodic problems such as
            Darcy flow, or the time axis of FNO-3D): the Fourier layers then see a periodic
            extension instead of wrapping the field around. An int is a number of points; a
            float in ``(0, 1)`` is a fraction of the axis (``round(f * n)`` points), which
            keeps the padded domain the same at every resolution, as zero-shot evaluation on
            finer grids needs.
        projection: hidden channels of the two-layer pointwise projection (default
            ``2 * width``; the paper uses 128).
        factorization, rank: the spectral weights' factorisation (see :class:`SpectralConv`).

    Shapes:
        input ``[B, in_channels, *S]`` -> output ``[B, out_channels, *S]``, ``len(S) = ndim``.
    """

    def __init__(self, ndim: int = 2, in_channels: int = 1, out_channels: int = 1,
                 modes: int | tuple[int, ...] = 12, width: int = 32, layers: int = 4,
                 grid_channels: bool = True,
                 padding: int | float | tuple[int | float, ...] = 0,
                 projection: int | None = None, factorization: Factorization = "dense",
                 rank: int = 16):
        super().__init__()
        pads = (padding,) * ndim if isinstance(padding, (int, float)) else tuple(padding)
        if ndim < 1 or len(pads) != ndim or min(pads) < 0 or any(
                isinstance(p, float) and p >= 1 for p in pads):
            raise ValueError(f"need ndim >= 1 and one padding per axis, points >= 0 or a "
                             f"fraction in [0, 1), got {ndim} and {padding}")
        self.padding = pads
        self.ndim, self.in_channels, self.grid_channels = ndim, in_channels, grid_channels
        lift_in = in_channels + (ndim if grid_channels else 0)
        self.lift = nn.Linear(lift_in, width)
        self.spectral = nn.ModuleList(
            SpectralConv(width, width, modes, ndim, factorization=factorization, rank=rank)
            for _ in range(layers))
        self.pointwise = nn.ModuleList(nn.Linear(width, width) for _ in range(layers))
        hidden = projection or 2 * width
        self.project = nn.Sequential(nn.Linear(width, hidden), nn.GELU(),
                                     nn.Linear(hidden, out_channels))

    def _channels_last(self, layer: nn.Module, v: torch.Tensor) -> torch.Tensor:
        """A pointwise layer applied over the channel dim of ``[B, C, *S]``."""
        return layer(v.movedim(1, -1)).movedim(-1, 1)

    def _inputs(self, u: torch.Tensor) -> torch.Tensor:
        """Checked input with the coordinate channels, channels-last ``[B, *S, C]``."""
        layout = "[B, C, " + ", ".join(f"N{i + 1}" for i in range(self.ndim)) + "]"
        check_ndim(u, (self.ndim + 2,), f"FNO ({self.ndim}D) input", layout)
        check_size(u, 1, self.in_channels, f"FNO ({self.ndim}D) input", "channels")
        u = u.movedim(1, -1)
        if self.grid_channels:
            axes = [torch.arange(n, dtype=u.dtype, device=u.device) / n
                    for n in u.shape[1:-1]]
            coords = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)
            u = torch.cat([u, coords.expand(u.shape[0], *coords.shape)], dim=-1)
        return u

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        sizes = u.shape[2:]
        v = self.lift(self._inputs(u))  # [B, *S, width]
        pads = [round(p * n) if isinstance(p, float) else p
                for p, n in zip(self.padding, sizes)]
        if any(pads):
            # F.pad lists the last axis first: channels, then the spatial axes backwards
            spec = [0, 0] + [q for p in reversed(pads) for q in (0, p)]
            v = nn.functional.pad(v, spec)
        for i, (spectral, pointwise) in enumerate(zip(self.spectral, self.pointwise)):
            v = spectral.channels_last(v) + pointwise(v)
            if i < len(self.spectral) - 1:
                v = nn.functional.gelu(v)
        if any(pads):
            v = v[(slice(None), *(slice(0, n) for n in sizes))]
        return self.project(v).movedim(-1, 1)
