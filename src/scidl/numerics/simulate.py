"""Method-of-lines pseudo-spectral solver for ``u_t = rhs(u, d)`` on a periodic grid."""

from __future__ import annotations

import math
from typing import Protocol

import torch

from scidl.errors import DivergenceError, ShapeError
from scidl.numerics.derivatives import Derivatives, SpectralDerivatives
from scidl.numerics.etdrk4 import ETDRK4
from scidl.numerics.grids import PeriodicGrid
from scidl.numerics.steppers import BlockSymbol, SemilinearStepper, apply_linear


class _PDE(Protocol):
    # An optional ``channels`` attribute (default 1) marks a system of coupled fields.
    def rhs(self, u: torch.Tensor, d: Derivatives) -> torch.Tensor: ...

    def linear_symbol(self, grid: PeriodicGrid, dtype: torch.dtype, device,
                      derivatives: Derivatives | None = None) -> torch.Tensor: ...


def simulate(
    pde: _PDE,
    u0: torch.Tensor,
    t: torch.Tensor | list[float],
    *,
    grid: PeriodicGrid,
    dt: float,
    stepper: SemilinearStepper | None = None,
    dealias: bool = True,
    derivatives: Derivatives | None = None,
) -> torch.Tensor:
    """Solve ``u_t = pde.rhs(u, d)`` from ``u0`` and return the solution at the times ``t``.

    The state is advanced in Fourier space, ``v' = L v + N(v)``, where ``L`` is the PDE's linear
    Fourier symbol and ``N(v) = F[rhs(u)] - L v`` is evaluated pseudo-spectrally. With
    ``dealias=True`` the nonlinear term is truncated by the 2/3 rule, which removes aliasing of
    quadratic nonlinearities exactly. A system of ``C = pde.channels > 1`` coupled fields (e.g.
    the wave equation as ``[u, u_t]``) has a ``[C, C, *K]`` block symbol, which the stepper
    applies as a matrix per mode. Every operation is a torch op, so the result is
    differentiable with respect to ``u0`` and to any tensor the PDE holds.

    Args:
        pde: a :class:`~scidl.pdes.TimeDependentPDE`.
        u0: initial fields ``[*grid.shape]``, ``[B, *grid.shape]`` or ``[B, C, *grid.shape]``;
            for a system, ``[C, *grid.shape]`` or ``[B, C, *grid.shape]`` with ``C = pde.channels``.
        t: increasing output times ``[T]``; ``t[0]`` is the time of ``u0``.
        grid: the periodic grid ``u0`` lives on.
        dt: largest internal step; each output interval is split into equal steps no larger.
        stepper: time stepper, default :class:`ETDRK4` (exact in the stiff linear part).
        dealias: apply the 2/3 rule to the nonlinear term.
        derivatives: the ``d`` handed to ``rhs`` (default :class:`SpectralDerivatives`); e.g.
            ``FiniteDifferenceDerivatives(grid, order=4)`` for a finite-difference method of
            lines. The state still advances in Fourier space, where the finite-difference
            operators are diagonal, so the stiff linear part stays exact for ETDRK4.

    Returns:
        Trajectory ``[B, T, ...]`` (or ``[T, ...]`` for an unbatched ``u0``), same dtype and
        device as ``u0``.
    """
    stepper = ETDRK4() if stepper is None else stepper
    t = torch.as_tensor(t, dtype=torch.float64).flatten()
    channels = int(getattr(pde, "channels", 1))
    _check_inputs(u0, t, grid, dt, channels)
    dims = tuple(range(-grid.ndim, 0))
    spectral = SpectralDerivatives(grid)
    d = spectral if derivatives is None else derivatives
    linear = pde.linear_symbol(grid, u0.dtype, u0.device, derivatives=d)
    if channels > 1:
        linear = BlockSymbol(linear)
    mask = grid.dealias_mask(u0.device) if dealias else None

    def nonlinear(v: torch.Tensor) -> torch.Tensor:
        u = spectral.inverse(v)
        if d is spectral:
            d.remember(u, v)
        n_hat = torch.fft.rfftn(pde.rhs(u, d), dim=dims) - apply_linear(linear, v)
        return n_hat * mask if mask is not None else n_hat

    v = torch.fft.rfftn(u0, dim=dims)
    states = [u0]
    steps: dict[int, object] = {}
    for interval in (t[1:] - t[:-1]).tolist():
        n_sub = max(1, math.ceil(interval / dt - 1e-9))
        h = interval / n_sub
        key = round(h * 1e12)
        if key not in steps:
            steps[key] = stepper.prepare(linear, h, nonlinear)
        for _ in range(n_sub):
            v = steps[key](v)
        states.append(spectral.inverse(v))
        if not torch.isfinite(states[-1]).all():
            raise DivergenceError(
                f"the solution became non-finite by t={float(t[len(states) - 1]):g}; "
                f"reduce dt (now {dt:g}) or check the initial condition"
            )
    time_dim = 0 if u0.ndim == grid.ndim + (channels > 1) else 1
    return torch.stack(states, dim=time_dim)


def _check_inputs(u0: torch.Tensor, t: torch.Tensor, grid: PeriodicGrid, dt: float,
                  channels: int) -> None:
    if u0.ndim < grid.ndim or tuple(u0.shape[-grid.ndim :]) != grid.shape:
        raise ShapeError(
            f"u0 must have shape [B, {', '.join(map(str, grid.shape))}] (the grid's shape last), "
            f"got {tuple(u0.shape)}"
        )
    if u0.ndim > grid.ndim + 2:
        raise ShapeError(f"u0 may have at most two leading dims [B, C], got {tuple(u0.shape)}")
    if channels > 1 and (u0.ndim == grid.ndim or u0.shape[-grid.ndim - 1] != channels):
        raise ShapeError(
            f"this PDE is a system of {channels} fields, so u0 must be [B, {channels}, *grid] "
            f"or [{channels}, *grid], got {tuple(u0.shape)}"
        )
    if not torch.isfinite(u0).all():
        raise ValueError("u0 contains NaN or infinite values")
    if t.numel() < 1 or (t.numel() > 1 and not bool((t[1:] > t[:-1]).all())):
        raise ValueError("t must be a non-empty, strictly increasing sequence of times")
    if not dt > 0:
        raise ValueError(f"dt must be positive, got {dt}")
