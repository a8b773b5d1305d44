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
    #: fields per grid point; a system of ``C > 1`` coupled fields has ``u [B, C, *S]``
    channels: ClassVar[int] = 1

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
                      device=None, derivatives: Derivatives | None = None) -> torch.Tensor:
        """The Fourier symbol ``L(k)`` of the linear part of ``rhs`` at ``u = 0``, rfftn layout.

        Exponential integrators treat ``L`` exactly and the rest, ``rhs(u) - L u``, explicitly.
        The symbol is derived from :meth:`rhs` itself by differentiating it at ``u = 0`` against
        a unit impulse, so the physics stays written once. The linear part must be
        translation invariant (constant coefficients); this is verified on a random probe, and a
        PDE whose linear part is not must override this method.

        For a system (``channels = C > 1``) the symbol is the ``[C, C, *K]`` block
        ``L_ij(k)``, the response of output channel ``i`` to input channel ``j``; one impulse
        per output channel gives its rows. When a parameter of the PDE is a tensor that
        requires grad (and grad mode is on), the symbol keeps the graph to it, so solutions
        are differentiable with respect to that parameter.

        ``derivatives`` is the operator the solver will use (default spectral); any
        translation-invariant one works, e.g. finite differences, whose symbol then carries the
        stencil's modified wavenumbers.
        """
        d = SpectralDerivatives(grid) if derivatives is None else derivatives
        channels = self.channels
        field = (channels,) if channels > 1 else ()
        generator = torch.Generator(device="cpu").manual_seed(0)
        # probes [channels + 1, *field, *S]: an impulse in each channel, then a random field
        cotangents = torch.zeros((channels + 1, *field, *grid.shape), dtype=torch.float64)
        for i in range(channels):
            cotangents[(i, *((i,) if field else ()), *(0,) * grid.ndim)] = 1.0
        cotangents[-1] = torch.randn(field + grid.shape, dtype=torch.float64, generator=generator)
        cotangents = cotangents.to(device)
        keep_graph = torch.is_grad_enabled() and self._has_trainable_parameters()
        # Reverse mode gives J^T w; for a real translation-invariant J the transpose has the
        # conjugate symbol, so one backward pass yields L(k) and a consistency check.
        # the symbol is needed under no_grad / inference_mode too (data generation, evaluation)
        with torch.inference_mode(False), torch.enable_grad():
            zero = torch.zeros_like(cotangents, requires_grad=True)
            (response,) = torch.autograd.grad(self.rhs(zero, d), zero, grad_outputs=cotangents,
                                              allow_unused=True, create_graph=keep_graph)
        response = torch.zeros_like(cotangents) if response is None else response
        dims = tuple(range(-grid.ndim, 0))
        symbol = torch.fft.rfftn(response[:channels], dim=dims).conj()  # impulses' transform: 1
        probe_hat = torch.fft.rfftn(cotangents[-1], dim=dims)
        if field:  # (J^T w)_j = sum_i conj(L_ij) w_i
            predicted_hat = (symbol.conj() * probe_hat.unsqueeze(1)).sum(0)
        else:
            symbol = symbol[0]
            predicted_hat = symbol.conj() * probe_hat
        predicted = torch.fft.irfftn(predicted_hat, s=grid.shape, dim=dims)
        predicted, observed = predicted.detach(), response[-1].detach()
        scale = observed.abs().max().clamp_min(1.0)
        if not torch.allclose(predicted, observed, rtol=0.0, atol=1e-9 * float(scale)):
            raise NotImplementedError(
                f"{type(self).__name__}: the linear part of rhs is not translation invariant; "
                "override linear_symbol to use exponential integrators"
            )
        return symbol.to(torch.complex128 if dtype == torch.float64 else torch.complex64)

    def galilean_coefficient(self) -> float | None:
        """The ``a`` for which ``u(x, t) -> u(x - a c t, t) + c`` maps solutions to solutions,
        or None when the equation has no such Galilean symmetry.

        Derived from :meth:`rhs`, not declared: the boost is a symmetry exactly when
        ``rhs(u + c) = rhs(u) - a c u_x`` for every ``u`` and ``c`` (a translation-invariant
        ``rhs``). This is tested on a random smooth 1D probe with spectral derivatives for two
        values of ``c``; Burgers and Kuramoto-Sivashinsky give 1, KdV 6, the heat equation 0
        (adding a constant is then the whole symmetry), reaction-diffusion equations, systems
        and multi-dimensional equations None.
        """
        if self.channels != 1:
            return None
        grid = PeriodicGrid(64, 2 * torch.pi)
        d = SpectralDerivatives(grid)
        generator = torch.Generator().manual_seed(0)
        x = grid.coordinates()[0]
        coefficients = torch.randn(2, 4, 2, dtype=torch.float64, generator=generator)
        u = sum(coefficients[:, k - 1, :1] * torch.cos(k * x) + coefficients[:, k - 1, 1:]
                * torch.sin(k * x) for k in range(1, 5))
        with torch.no_grad():
            try:
                base = self.rhs(u, d)
                shifted = [self.rhs(u + c, d) - base for c in (1.0, -2.5)]
            except (IndexError, RuntimeError, ValueError, TypeError):
                return None  # not a 1D scalar equation
            ux = d.x(u)
        a = -float((shifted[0] * ux).sum() / (ux * ux).sum())
        scale = float(base.abs().max()) + abs(a) * float(ux.abs().max()) + 1.0
        for c, change in zip((1.0, -2.5), shifted):
            if float((change + a * c * ux).abs().max()) > 1e-9 * scale:
                return None
        return round(a, 10) + 0.0  # exact small integers; no -0.0

    def _has_trainable_parameters(self) -> bool:
        values = (
            [getattr(self, f.name) for f in dataclasses.fields(self)]
            if dataclasses.is_dataclass(self) else list(vars(self).values())
        )
        return any(isinstance(v, torch.Tensor) and v.requires_grad for v in values)
