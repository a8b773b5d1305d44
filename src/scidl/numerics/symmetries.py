"""Lie point symmetries of PDEs on periodic grids, applied exactly to solution fields.

Used as data augmentation (Brandstetter, Welling & Worrall 2022, "Lie point symmetry data
augmentation for neural PDE solvers"): a transformed solution is another solution, so a model
can be trained on it as on fresh data from the solver. Which equations have a symmetry is not
declared by hand: :meth:`scidl.pdes.TimeDependentPDE.galilean_coefficient` derives it from the
right-hand side.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from scidl.errors import ShapeError


def galilean_boost(u: torch.Tensor, speed: torch.Tensor | float, elapsed: torch.Tensor | float,
                   length: float, coefficient: float = 1.0) -> torch.Tensor:
    """The Galilean boost ``u(x, t) -> u(x - a c t, t) + c`` of a periodic 1D scalar field.

    A symmetry of every equation ``u_t + a u u_x = L u`` with ``L`` linear, translation
    invariant and annihilating constants: Burgers and Kuramoto-Sivashinsky (``a = 1``), KdV in
    its standard scaling (``a = 6``).

    Args:
        u: fields ``[..., X]`` on a periodic grid of ``X`` points over ``length``.
        speed: ``c``, broadcastable against ``u[..., :1]`` (one speed per sample, say).
        elapsed: the time ``t`` of each field since the boost's origin, broadcastable likewise
            (``0`` for an initial state, ``frame_dt * j`` for frame ``j`` of a trajectory).
        length: the period of the domain.
        coefficient: ``a``, the coefficient of ``u u_x``.

    The translation by ``a c t`` is applied in Fourier space in float64: exact for fields
    resolved on the grid at any sub-grid distance, and exactly a ``torch.roll`` when it is a
    multiple of the spacing (use that for under-resolved fields such as shocks).
    """
    if u.ndim < 1 or u.shape[-1] < 2:
        raise ShapeError(f"u has shape {tuple(u.shape)}, expected [..., X] with X >= 2")
    if length <= 0:
        raise ValueError(f"length must be positive, got {length}")
    n = u.shape[-1]
    speed = torch.as_tensor(speed, dtype=torch.float64)
    shift = coefficient * speed * torch.as_tensor(elapsed, dtype=torch.float64)
    k = 2 * torch.pi * torch.fft.rfftfreq(n, d=length / n, dtype=torch.float64)
    spectrum = torch.fft.rfft(u.double(), dim=-1) * torch.exp(-1j * k * shift)
    return (torch.fft.irfft(spectrum, n=n, dim=-1) + speed).to(u.dtype)


@dataclass(frozen=True)
class GalileanBoost:
    """Random Galilean boosts as a training augmentation (see :func:`galilean_boost`).

    Args:
        max_speed: speeds ``c`` are drawn uniformly from ``[-max_speed, max_speed]``.
        elapsed: the time between consecutive fields of a training sample (the frame step of a
            trajectory window, or target time minus input time for an operator pair).
        length: the period of the domain.
        coefficient: ``a`` of the equation's ``u u_x`` term
            (:meth:`~scidl.pdes.TimeDependentPDE.galilean_coefficient`).
        on_grid: round each speed so that the shift per ``elapsed`` is a whole number of grid
            spacings: the boost is then an exact roll, right for fields with shocks that a
            spectral sub-grid shift would ring on.
    """

    max_speed: float
    elapsed: float
    length: float
    coefficient: float = 1.0
    on_grid: bool = False

    def __post_init__(self):
        if not (self.max_speed >= 0 and self.elapsed > 0 and self.length > 0):
            raise ValueError("GalileanBoost needs max_speed >= 0, elapsed > 0 and length > 0, "
                             f"got {self.max_speed}, {self.elapsed}, {self.length}")
        if self.coefficient == 0:
            raise ValueError("coefficient 0 makes the boost a constant shift; use a = 1 or more")

    def speeds(self, n: int, points: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` random speeds ``[n]`` (float64), on the grid's lattice if ``on_grid``."""
        c = (2 * torch.rand(n, generator=generator, dtype=torch.float64) - 1) * self.max_speed
        if self.on_grid:
            quantum = self.length / points / abs(self.coefficient * self.elapsed)
            c = torch.round(c / quantum) * quantum
        return c

    def __call__(self, u: torch.Tensor, speed: torch.Tensor) -> torch.Tensor:
        """Boost samples ``u [b, T, ..., X]`` (``T`` fields ``elapsed`` apart) by ``speed [b]``."""
        if u.ndim < 3:
            raise ShapeError(f"u has shape {tuple(u.shape)}, expected [b, T, ..., X]")
        tail = [1] * (u.ndim - 2)
        elapsed = self.elapsed * torch.arange(u.shape[1], dtype=torch.float64)
        return galilean_boost(u, speed.view(-1, 1, *tail), elapsed.view(1, -1, *tail),
                              self.length, self.coefficient)


__all__ = ["GalileanBoost", "galilean_boost"]
