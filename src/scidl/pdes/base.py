"""The contract every time-dependent PDE fills in: a right-hand side over derivative operators."""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from typing import ClassVar

import torch

from scidl.numerics.derivatives import Derivatives, SpectralDerivatives
from scidl.numerics.grids import PeriodicGrid


class TimeDependentPDE(ABC):
    """``u_t = rhs(u, d)`` for a field ``u`` and derivative operator ``d``.

    Subclasses are frozen dataclasses whose fields are the physical parameters, and they implement
    only :meth:`rhs`. Everything else -- the classical solver, a PINN's residual loss, a
    physics-informed operator loss, a consistency check of a surrogate -- is derived from it by
    handing it a different ``d`` (see DESIGN.md).
    """

    #: short name used in configs, datasets and the CLI
    name: ClassVar[str]

    @abstractmethod
    def rhs(self, u: torch.Tensor, d: Derivatives) -> torch.Tensor:
        """The right-hand side ``F(u)`` of ``u_t = F(u)``, with the shape of ``u``."""

    def residual(self, u: torch.Tensor, d: Derivatives) -> torch.Tensor:
        """``u_t - rhs(u, d)``; needs a ``d`` that has time (e.g. autograd at points)."""
        return d.t(u) - self.rhs(u, d)

    def parameters(self) -> dict[str, float]:
        """The physical parameters, for metadata and configs."""
        return dataclasses.asdict(self)

    def linear_symbol(self, grid: PeriodicGrid, dtype: torch.dtype = torch.float64,
                      device=None) -> torch.Tensor:
        """The Fourier symbol ``L(k)`` of the linear part of ``rhs`` at ``u = 0``, rfftn layout.

        Exponential integrators treat ``L`` exactly and the rest, ``rhs(u) - L u``, explicitly.
        The symbol is derived from :meth:`rhs` itself by differentiating it at ``u = 0`` against
        a unit impulse, so the physics stays written once. The linear part must be
        translation invariant (constant coefficients); this is verified on a random probe, and a
        PDE whose linear part is not must override this method.
        """
        d = SpectralDerivatives(grid)
        generator = torch.Generator(device="cpu").manual_seed(0)
        impulse = torch.zeros(grid.shape, dtype=torch.float64)
        impulse[(0,) * grid.ndim] = 1.0
        probe = torch.randn(grid.shape, dtype=torch.float64, generator=generator)
        cotangents = torch.stack([impulse, probe]).to(device)
        # Reverse mode gives J^T w; for a real translation-invariant J the transpose has the
        # conjugate symbol, so one backward pass yields L(k) and a consistency check.
        # the symbol is needed under no_grad / inference_mode too (data generation, evaluation)
        with torch.inference_mode(False), torch.enable_grad():
            zero = torch.zeros_like(cotangents, requires_grad=True)
            (response,) = torch.autograd.grad(self.rhs(zero, d), zero, grad_outputs=cotangents,
                                              allow_unused=True)
        response = torch.zeros_like(cotangents) if response is None else response
        dims = tuple(range(-grid.ndim, 0))
        symbol = torch.fft.rfftn(response[0], dim=dims).conj()  # the impulse's transform is 1
        predicted = d.inverse(symbol.conj() * torch.fft.rfftn(cotangents[1], dim=dims))
        scale = response[1].abs().max().clamp_min(1.0)
        if not torch.allclose(predicted, response[1], rtol=0.0, atol=1e-9 * float(scale)):
            raise NotImplementedError(
                f"{type(self).__name__}: the linear part of rhs is not translation invariant; "
                "override linear_symbol to use exponential integrators"
            )
        return symbol.to(torch.complex128 if dtype == torch.float64 else torch.complex64)
