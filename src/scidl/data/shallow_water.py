"""Shallow-water data: balanced random initial states, trajectories, one-step training pairs.

* :func:`balanced_initial_condition` -- geostrophically balanced ``(h, u, v)`` from a random
  stream function with a peaked spectrum (the usual start of geostrophic-turbulence runs);
* :func:`shallow_water_trajectories` -- solve :class:`~scidl.pdes.ShallowWater2D` from such states
  with :func:`scidl.numerics.simulate`;
* :class:`OneStepForecast` -- a training objective for :func:`scidl.train.train` that teaches a
  model the increment ``u(t + dt) - u(t)`` of any trajectory data ``[N, T, C, *S]`` (residual
  one-step training, the standard recipe of autoregressive emulators).
"""

from __future__ import annotations

import torch
from torch import nn

from scidl.errors import ShapeError
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


class OneStepForecast:
    """Objective for :func:`scidl.train.train`: learn one step of trajectories ``[N, T, C, *S]``.

    Pairs are ``(u[n, t], u[n, t + 1])`` for every trajectory and time. Fields are standardised
    per channel (``(u - mean_c) / std_c`` over the training data); with ``residual=True`` the
    model predicts the standardised increment ``(u(t+1) - u(t)) / increment_std_c`` and
    :meth:`step` adds it back, so an untrained (zero-output) model is persistence. Batches are
    drawn with replacement from ``(seed, step)``, split across ranks, so runs are reproducible.
    The loss is the mean squared error of the (standardised) target.

    Args:
        trajectories: ``[N, T, C, *S]`` with ``T >= 2``.
        batch_size: global batch size.
        residual: learn the increment (default) or the next state itself.
        seed, device: as in :class:`scidl.train.FieldRegression`.
    """

    def __init__(self, trajectories: torch.Tensor, *, batch_size: int = 16,
                 residual: bool = True, seed: int = 0, device: torch.device | str = "cpu"):
        if trajectories.ndim < 4 or trajectories.shape[1] < 2:
            raise ShapeError(f"trajectories must be [N, T, C, *S] with T >= 2, got "
                             f"{tuple(trajectories.shape)}")
        self.data = trajectories
        self.batch_size, self.residual, self.seed = batch_size, residual, seed
        self.device = torch.device(device)
        dims = [0, 1, *range(3, trajectories.ndim)]
        shape = (1, -1, *[1] * (trajectories.ndim - 3))
        self.mean = trajectories.mean(dim=dims).reshape(shape).to(self.device)
        self.std = trajectories.std(dim=dims).clamp_min(1e-12).reshape(shape).to(self.device)
        increments = trajectories[:, 1:] - trajectories[:, :-1]
        self.increment_std = increments.std(dim=dims).clamp_min(1e-12).reshape(shape).to(
            self.device)
        self.pairs = trajectories.shape[0] * (trajectories.shape[1] - 1)

    def batch(self, step: int, rank: int = 0, world_size: int = 1):
        if self.batch_size % world_size:
            raise ValueError(f"batch_size {self.batch_size} must be divisible by the "
                             f"{world_size} processes")
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        index = torch.randint(0, self.pairs, (self.batch_size,), generator=generator)
        index = index[rank::world_size]
        n, t = index // (self.data.shape[1] - 1), index % (self.data.shape[1] - 1)
        return self.data[n, t].to(self.device), self.data[n, t + 1].to(self.device)

    def target(self, now: torch.Tensor, later: torch.Tensor) -> torch.Tensor:
        """What the model is trained to output for the pair ``(now, later)``."""
        if self.residual:
            return (later - now) / self.increment_std.to(now)
        return (later - self.mean.to(now)) / self.std.to(now)

    def step(self, model: nn.Module, u: torch.Tensor) -> torch.Tensor:
        """One forecast step ``u(t) -> u(t + dt)`` in physical units, ``[B, C, *S]``."""
        out = model((u - self.mean.to(u)) / self.std.to(u))
        if self.residual:
            return u + out * self.increment_std.to(u)
        return self.mean.to(u) + out * self.std.to(u)

    def loss(self, model: nn.Module, batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        now, later = batch
        prediction = model((now - self.mean) / self.std)
        return (prediction - self.target(now, later)).square().mean(), {}


__all__ = [
    "OneStepForecast",
    "balanced_initial_condition",
    "balanced_state",
    "random_streamfunction",
    "shallow_water_trajectories",
]
