"""Gaussian random fields on periodic boxes, for random initial conditions and coefficients."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from scidl.numerics.grids import PeriodicGrid


@dataclass(frozen=True)
class GaussianRandomField:
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

    sigma: float
    tau: float
    gamma: float
    zero_mean: bool = True

    def __post_init__(self):
        if self.sigma <= 0 or self.tau < 0 or self.gamma <= 0:
            raise ValueError(
                f"GaussianRandomField needs sigma > 0, tau >= 0, gamma > 0; got sigma={self.sigma},"
                f" tau={self.tau}, gamma={self.gamma}"
            )

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
