"""Shallow-water data: balanced random initial states and trajectories.

* :func:`balanced_initial_condition` -- geostrophically balanced ``(h, u, v)`` from a random
  stream function with a peaked spectrum (the usual start of geostrophic-turbulence runs);
* :func:`shallow_water_trajectories` -- solve :class:`~scidl.pdes.ShallowWater2D` from such states
  with :func:`scidl.numerics.simulate`;

Their one-step training objective is :class:`scidl.forecast.OneStepForecast`.
"""

from __future__ import annotations

import torch

from scidl.numerics.grids import PeriodicGrid
from scidl.numerics.simulate import simulate
from scidl.pdes.shallow_water import ShallowWater2D


def random_streamfunction(grid: PeriodicGrid, batch: int, *, peak: float = 6.0,
                          width: float = 2.0, seed: int = 0,
                          dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Random stream functions ``[batch, X, Y]`` with Gaussian random phases and the isotropic
    spectrum ``|psi_hat(k)|^2 ~ exp(-(|k| - peak)^2 / (2 width^2)) / |k|`` in integer
    wavenumbers ``|k|`` (energy concentrated near ``peak``), zero mean, and normalised so that
    the rms velocity ``|grad psi|`` of every sample is 1. The modes the solver's 2/3 rule drops
    are left out, so the field is exactly representable by the de-aliased solver."""
    if len(grid.shape) != 2:
        raise ValueError(f"random_streamfunction needs a 2D grid, got shape {grid.shape}")
    generator = torch.Generator().manual_seed(seed)
    kx, ky = grid.integer_wavenumbers()
    kmag = (kx**2 + ky**2).sqrt()
    amplitude = torch.exp(-((kmag - peak) ** 2) / (4 * width**2)) / kmag.clamp_min(1.0).sqrt()
    amplitude = amplitude * (kmag > 0) * grid.dealias_mask()
    shape = (batch, *amplitude.shape)
    noise = torch.complex(torch.randn(shape, generator=generator, dtype=torch.float64),
                          torch.randn(shape, generator=generator, dtype=torch.float64))
    psi = torch.fft.irfftn(noise * amplitude, s=grid.shape, dim=(-2, -1))
    k1, k2 = grid.wavenumbers()
    psi_hat = torch.fft.rfftn(psi, dim=(-2, -1))
    speed_x = torch.fft.irfftn(1j * k1 * psi_hat, s=grid.shape, dim=(-2, -1))
    speed_y = torch.fft.irfftn(1j * k2 * psi_hat, s=grid.shape, dim=(-2, -1))
    rms = (speed_x**2 + speed_y**2).mean(dim=(-2, -1), keepdim=True).sqrt()
    return (psi / rms).to(dtype)


def balanced_state(psi: torch.Tensor, pde: ShallowWater2D, grid: PeriodicGrid) -> torch.Tensor:
    """The geostrophically balanced state of the stream function ``psi [..., X, Y]``:
    ``u = -psi_y``, ``v = psi_x``, ``h = H + f psi / g`` (so ``f v = g h_x``, ``f u = -g h_y``);
    returns ``[..., 3, X, Y]``. Mass: ``mean h = H`` when ``psi`` has zero mean."""
    k1, k2 = grid.wavenumbers(psi.dtype, psi.device)
    psi_hat = torch.fft.rfftn(psi, dim=(-2, -1))
    psi_x = torch.fft.irfftn(1j * k1 * psi_hat, s=grid.shape, dim=(-2, -1))
    psi_y = torch.fft.irfftn(1j * k2 * psi_hat, s=grid.shape, dim=(-2, -1))
    h = pde.H + pde.f * psi / pde.g
    return torch.stack([h, -psi_y, psi_x], dim=-3)


def balanced_initial_condition(pde: ShallowWater2D, grid: PeriodicGrid, batch: int, *,
                               speed: float = 0.1, peak: float = 6.0, width: float = 2.0,
                               seed: int = 0, dtype: torch.dtype = torch.float64
                               ) -> torch.Tensor:
    """``batch`` random geostrophically balanced states ``[batch, 3, X, Y]`` (``h, u, v``):
    :func:`random_streamfunction` scaled to the rms speed ``speed`` and put in balance by
    :func:`balanced_state`. The mean depth is exactly ``pde.H``. The Rossby number is about
    ``speed * peak / (f L)`` for a box of side ``L``; keep ``speed`` well below the gravity-wave
    speed ``sqrt(g H)`` (and ``f psi / g`` below ``H``) so the depth stays positive."""
    if not speed > 0:
        raise ValueError(f"speed must be positive, got {speed}")
    psi = speed * random_streamfunction(grid, batch, peak=peak, width=width, seed=seed)
    state = balanced_state(psi, pde, grid)
    if bool((state[:, 0] <= 0).any()):
        raise ValueError(f"speed {speed} gives a non-positive depth somewhere; lower it or "
                         "raise H")
    return state.to(dtype)


def shallow_water_trajectories(pde: ShallowWater2D, grid: PeriodicGrid, n: int, *,
                               steps: int, dt_out: float, dt: float | None = None,
                               speed: float = 0.1, peak: float = 6.0, spin_up: float = 0.0,
                               seed: int = 0, dtype: torch.dtype = torch.float64
                               ) -> torch.Tensor:
    """``n`` trajectories ``[n, steps + 1, 3, X, Y]`` at the times ``k dt_out``, started from
    :func:`balanced_initial_condition` and, after an optional ``spin_up`` (time discarded so the
    flow forgets its synthetic start), solved with ETDRK4 (internal step ``dt``, default
    ``dt_out``) in float64 and returned in ``dtype``."""
    if steps < 1 or not dt_out > 0:
        raise ValueError(f"need steps >= 1 and dt_out > 0, got {steps} and {dt_out}")
    u0 = balanced_initial_condition(pde, grid, n, speed=speed, peak=peak, seed=seed)
    dt = dt_out if dt is None else dt
    if spin_up > 0:
        u0 = simulate(pde, u0, [0.0, spin_up], grid=grid, dt=dt)[:, -1]
    times = torch.arange(steps + 1, dtype=torch.float64) * dt_out
    return simulate(pde, u0, times, grid=grid, dt=dt).to(dtype)


__all__ = [
    "balanced_initial_condition",
    "balanced_state",
    "random_streamfunction",
    "shallow_water_trajectories",
]
