"""Gaussian random fields on periodic boxes, for random initial conditions and coefficients."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from scidl.numerics.grids import PeriodicGrid


@dataclass(frozen=True)
class _MaternCovariance:
    """Parameters of ``sigma^2 (-Laplacian + tau^2 I)^(-gamma)``, shared by the samplers."""

    sigma: float
    tau: float
    gamma: float
    zero_mean: bool = True

    def __post_init__(self):
        if self.sigma <= 0 or self.tau < 0 or self.gamma <= 0:
            raise ValueError(
                f"{type(self).__name__} needs sigma > 0, tau >= 0, gamma > 0; got "
                f"sigma={self.sigma}, tau={self.tau}, gamma={self.gamma}"
            )


@dataclass(frozen=True)
class GaussianRandomField(_MaternCovariance):
    """Samples of ``N(0, sigma^2 (-Laplacian + tau^2 I)^(-gamma))`` on a periodic box.

    The field is the Karhunen-Loeve expansion ``u = sum_k sqrt(lambda_k) Z_k e_k`` over the
    Fourier modes resolved by the grid, with
    ``lambda_k = sigma^2 (|2 pi k / L|^2 + tau^2)^(-gamma)``,
    ``e_k`` orthonormal in ``L^2`` and ``Z_k`` standard Gaussians. As in the generator of the FNO
    paper's repository (``GRF1.m``), the constant mode is left out by default, so samples have
    zero mean; set ``zero_mean=False`` to include it.

    Args:
        sigma: amplitude (the covariance is scaled by ``sigma^2``).
        tau: inverse length scale.
        gamma: smoothness exponent (larger is smoother).
    """

    @classmethod
    def fno_burgers(cls, setting: str = "paper") -> GaussianRandomField:
        """The FNO paper's Burgers initial conditions (Li et al., ICLR 2021).

        ``"paper"``: the text's ``N(0, 625 (-Laplacian + 25 I)^-2)``;
        ``"repository"``: its code's ``gamma=2.5, tau=7, sigma=49`` (see PROTOCOLS.md).
        """
        settings = {"paper": cls(25.0, 5.0, 2.0), "repository": cls(49.0, 7.0, 2.5)}
        if setting not in settings:
            raise ValueError(f"setting must be one of {sorted(settings)}, got {setting!r}")
        return settings[setting]

    @classmethod
    def fno_navier_stokes(cls, setting: str = "paper") -> GaussianRandomField:
        """The FNO paper's Navier-Stokes initial vorticity (Li et al., ICLR 2021).

        ``"paper"``: the text's ``N(0, 7^(3/2) (-Laplacian + 49 I)^-2.5)``;
        ``"repository"``: its code (``GaussianRF(2, s, alpha=2.5, tau=7)``), which scales the
        square roots of the eigenvalues by ``7^(3/2)``, i.e. the covariance by ``7^3``.
        """
        settings = {"paper": cls(7.0**0.75, 7.0, 2.5), "repository": cls(7.0**1.5, 7.0, 2.5)}
        if setting not in settings:
            raise ValueError(f"setting must be one of {sorted(settings)}, got {setting!r}")
        return settings[setting]

    def eigenvalues(self, grid: PeriodicGrid, dtype: torch.dtype = torch.float64,
                    device=None) -> torch.Tensor:
        """Covariance eigenvalues ``lambda_k`` in the rfftn layout of ``grid``."""
        k2 = sum(k**2 for k in grid.wavenumbers(dtype, device))
        lam = self.sigma**2 * (k2 + self.tau**2) ** (-self.gamma)
        if self.zero_mean:
            lam = torch.where(k2 == 0, torch.zeros_like(lam), lam)
        return lam

    def sample(
        self,
        n: int,
        grid: PeriodicGrid,
        *,
        seed: int | None = None,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float64,
        device=None,
    ) -> torch.Tensor:
        """Draw ``n`` independent samples.

        Returns:
            ``[n, *grid.shape]`` real tensor.
        """
        if generator is None:
            generator = torch.Generator(device="cpu")
            generator.manual_seed(0 if seed is None else seed)
        # White noise at the grid points has DFT coefficients with E|W_k|^2 = N, which gives the
        # Hermitian symmetry of a real field for free; rescale them to sqrt(lambda_k) Z_k.
        noise = torch.randn((n, *grid.shape), generator=generator, dtype=torch.float64)
        dims = tuple(range(-grid.ndim, 0))
        n_points = math.prod(grid.shape)
        volume = math.prod(grid.length)
        scale = torch.sqrt(self.eigenvalues(grid) * n_points / volume)
        field = torch.fft.irfftn(torch.fft.rfftn(noise, dim=dims) * scale, s=grid.shape, dim=dims)
        return field.to(dtype=dtype, device=device)


def _node_shape(shape: int | tuple[int, ...]) -> tuple[int, ...]:
    shape = (shape,) if isinstance(shape, int) else tuple(int(n) for n in shape)
    if not 1 <= len(shape) <= 3 or any(n < 2 for n in shape):
        raise ValueError(f"shape must be 1 to 3 sizes of at least 2, got {shape}")
    return shape


def _seeded(seed: int | None, generator: torch.Generator | None) -> torch.Generator:
    if generator is not None:
        return generator
    return torch.Generator(device="cpu").manual_seed(0 if seed is None else seed)


@dataclass(frozen=True)
class NeumannGaussianRandomField(_MaternCovariance):
    """Samples of ``N(0, sigma^2 (-Laplacian + tau^2 I)^(-gamma))`` on the box ``[0, L_1] x ...``
    with zero Neumann conditions on the Laplacian, as for the FNO paper's Darcy coefficients.

    The Karhunen-Loeve expansion ``u = sum_k sqrt(lambda_k) Z_k e_k`` runs over the cosine
    eigenfunctions ``e_k(x) = prod_j c_j cos(pi k_j x_j / L_j)`` (``c_j = 1/sqrt(L_j)`` for
    ``k_j = 0``, ``sqrt(2/L_j)`` otherwise; orthonormal in ``L^2``) with
    ``lambda_k = sigma^2 (sum_j (pi k_j / L_j)^2 + tau^2)^(-gamma)`` and ``k_j = 0 .. n_j - 1``.
    Samples are evaluated at the nodes ``x_i = i L / (n - 1)``, boundary included (the FNO
    repository's ``GRF.m`` evaluates the same series by an inverse DCT at cell centres). The
    constant mode is left out by default, as in ``GRF.m``.
    """

    @classmethod
    def fno_darcy(cls, setting: str = "paper") -> NeumannGaussianRandomField:
        """The FNO paper's Darcy field ``mu`` (Li et al., ICLR 2021).

        ``"paper"``: the text's ``N(0, (-Laplacian + 9 I)^-2)``; ``"repository"``: ``GRF.m`` with
        ``alpha=2, tau=3``, which scales the covariance by ``tau^(2 alpha - 2) = 9``. The
        thresholded coefficient ``a = psi(mu)`` depends only on the sign, so both give the same
        coefficients in law.
        """
        settings = {"paper": cls(1.0, 3.0, 2.0), "repository": cls(3.0, 3.0, 2.0)}
        if setting not in settings:
            raise ValueError(f"setting must be one of {sorted(settings)}, got {setting!r}")
        return settings[setting]

    def eigenvalues(self, shape: int | tuple[int, ...], length: float | tuple[float, ...] = 1.0,
                    dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """Covariance eigenvalues ``lambda_k``, ``[n_1, ..., n_d]`` indexed by ``k``."""
        shape = _node_shape(shape)
        lengths = (length,) * len(shape) if isinstance(length, (int, float)) else tuple(length)
        axes = [math.pi / L * torch.arange(n, dtype=dtype) for n, L in zip(shape, lengths)]
        k2 = sum(k**2 for k in torch.meshgrid(*axes, indexing="ij"))
        lam = self.sigma**2 * (k2 + self.tau**2) ** (-self.gamma)
        if self.zero_mean:
            lam[(0,) * len(shape)] = 0.0
        return lam

    @staticmethod
    def basis(n: int, length: float = 1.0) -> torch.Tensor:
        """``[n, n]`` matrix of the 1D eigenfunctions at the nodes: ``B[i, k] = e_k(x_i)``."""
        x = torch.arange(n, dtype=torch.float64) * (length / (n - 1))
        k = torch.arange(n, dtype=torch.float64)
        scale = torch.full((n,), math.sqrt(2 / length), dtype=torch.float64)
        scale[0] = math.sqrt(1 / length)
        return torch.cos(math.pi * x[:, None] * k[None, :] / length) * scale

    def sample(self, n: int, shape: int | tuple[int, ...], *,
               length: float | tuple[float, ...] = 1.0, seed: int | None = None,
               generator: torch.Generator | None = None, dtype: torch.dtype = torch.float64,
               device=None) -> torch.Tensor:
        """Draw ``n`` independent samples at the nodes of a grid of ``shape`` points.

        Returns:
            ``[n, *shape]`` real tensor.
        """
        shape = _node_shape(shape)
        lengths = (length,) * len(shape) if isinstance(length, (int, float)) else tuple(length)
        noise = torch.randn((n, *shape), generator=_seeded(seed, generator), dtype=torch.float64)
        field = noise * self.eigenvalues(shape, lengths).sqrt()
        for axis, (size, side) in enumerate(zip(shape, lengths), start=1):
            # contract the mode index of this axis with the basis: sum_k B[i, k] c[..., k, ...]
            field = torch.movedim(
                torch.tensordot(field, self.basis(size, side), dims=([axis], [1])), -1, axis
            )
        return field.to(dtype=dtype, device=device)


@dataclass(frozen=True)
class RandomSineSeries:
    """Random smooth periodic fields ``u(x) = sum_i A_i sin(2 pi k_i . (x / L) + phi_i)``.

    The initial conditions of PDEBench (Takamoto et al., NeurIPS 2022, ``init_multi``): each of
    the ``n_terms`` integer wave vectors ``k_i`` has components uniform on
    ``{-max_wavenumber, ..., max_wavenumber}`` (redrawn if all zero; in 1D this is PDEBench's
    ``|k| in {1, ..., k_max}``, the sign being absorbed by the uniform phase),
    ``A_i ~ U(amplitude)`` and ``phi_i ~ U[0, 2 pi)``, all independent.
    """

    n_terms: int = 2
    max_wavenumber: int = 4
    amplitude: tuple[float, float] = (0.0, 1.0)

    def __post_init__(self):
        low, high = self.amplitude
        if self.n_terms < 1 or self.max_wavenumber < 1 or not low <= high:
            raise ValueError(
                f"RandomSineSeries needs n_terms >= 1, max_wavenumber >= 1 and amplitude "
                f"(low, high) with low <= high; got n_terms={self.n_terms}, "
                f"max_wavenumber={self.max_wavenumber}, amplitude={self.amplitude}"
            )

    def sample(self, n: int, grid: PeriodicGrid, *, seed: int | None = None,
               generator: torch.Generator | None = None, dtype: torch.dtype = torch.float64,
               device=None) -> torch.Tensor:
        """Draw ``n`` independent fields on ``grid``.

        Returns:
            ``[n, *grid.shape]`` real tensor.
        """
        generator = _seeded(seed, generator)
        k_max, terms = self.max_wavenumber, (n, self.n_terms)
        k = torch.randint(-k_max, k_max + 1, (*terms, grid.ndim), generator=generator)
        zero = (k == 0).all(-1)
        while zero.any():
            k[zero] = torch.randint(-k_max, k_max + 1, (int(zero.sum()), grid.ndim),
                                    generator=generator)
            zero = (k == 0).all(-1)
        low, high = self.amplitude
        amplitude = low + (high - low) * torch.rand(terms, generator=generator, dtype=torch.float64)
        phase = 2 * math.pi * torch.rand(terms, generator=generator, dtype=torch.float64)
        coords = [x / L for x, L in zip(grid.meshgrid(), grid.length)]  # each [*grid.shape]
        view = (n, *([1] * grid.ndim))
        field = torch.zeros((n, *grid.shape), dtype=torch.float64)
        for i in range(self.n_terms):
            angle = phase[:, i].reshape(view) + 2 * math.pi * sum(
                k[:, i, j].double().reshape(view) * x for j, x in enumerate(coords)
            )
            field = field + amplitude[:, i].reshape(view) * torch.sin(angle)
        return field.to(dtype=dtype, device=device)
