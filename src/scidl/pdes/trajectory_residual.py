"""The residual of a PDE on gridded trajectories: the physics loss of physics-informed neural
operators (PINO; Li et al., "Physics-Informed Neural Operator for Learning Partial Differential
Equations", 2021) and a consistency check of any surrogate's predicted fields.

The PDE states its physics once, ``rhs(u, d)``; here ``d`` is spectral in space, and the time
derivative of the trajectory is a central finite difference of the saved frames.
"""

from __future__ import annotations

import torch

from scidl.errors import ShapeError
from scidl.numerics.derivatives import SpectralDerivatives
from scidl.numerics.finite_differences import central_difference_weights
from scidl.numerics.grids import PeriodicGrid


def trajectory_residual(pde, u: torch.Tensor, dt: float, grid: PeriodicGrid, *,
                        accuracy: int = 4) -> torch.Tensor:
    """``u_t - rhs(u)`` at the interior frames of trajectories saved every ``dt``.

    ``u_t`` is the central difference of order ``accuracy`` along the time dim (Fornberg
    weights), so the first and last ``accuracy / 2`` frames have no residual; ``rhs`` is the
    PDE's own right-hand side with spectral derivatives. On an exact solution the residual is
    ``O(dt^accuracy)``.

    Shapes:
        u: ``[B, T, *grid.shape]`` (scalar fields) or ``[B, T, C, *grid.shape]`` (a system);
        returns ``[B, T - accuracy, ...]``.
    """
    return _residual_and_time_derivative(pde, u, dt, grid, accuracy)[0]


def residual_loss(pde, u: torch.Tensor, dt: float, grid: PeriodicGrid, *,
                  accuracy: int = 4) -> torch.Tensor:
    """Mean squared :func:`trajectory_residual` relative to the mean squared time derivative,
    per sample: ``~0`` on reference data, ``O(1)`` for a field that breaks the
    physics.

    Shapes:
        u: as :func:`trajectory_residual`; returns ``[B]``.
    """
    residual, u_t = _residual_and_time_derivative(pde, u, dt, grid, accuracy)
    scale = u_t.flatten(1).square().mean(1).clamp_min(torch.finfo(u.dtype).tiny)
    return residual.flatten(1).square().mean(1) / scale


def _residual_and_time_derivative(pde, u: torch.Tensor, dt: float, grid: PeriodicGrid,
                                  accuracy: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(u_t - rhs(u), u_t)`` at the interior frames."""
    if u.ndim < grid.ndim + 2 or tuple(u.shape[-grid.ndim:]) != grid.shape:
        raise ShapeError(f"trajectories must be [B, T, ..., {', '.join(map(str, grid.shape))}],"
                         f" got {tuple(u.shape)}")
    u_t, radius = _time_derivative(u, dt, accuracy)
    rhs = pde.rhs(u[:, radius: u.shape[1] - radius], SpectralDerivatives(grid))
    return u_t - rhs, u_t


def _time_derivative(u: torch.Tensor, dt: float, accuracy: int) -> tuple[torch.Tensor, int]:
    """Central difference of ``u [B, T, ...]`` along dim 1 at the interior frames, and the
    number of frames it leaves out at each end."""
    weights = [float(w) for w in central_difference_weights(1, accuracy)]
    radius = len(weights) // 2
    frames = u.shape[1]
    if frames < 2 * radius + 1:
        raise ShapeError(f"a time derivative of accuracy {accuracy} needs at least "
                         f"{2 * radius + 1} frames, got {frames}")
    interior = frames - 2 * radius
    u_t = sum(w * u[:, j: j + interior] for j, w in enumerate(weights) if w != 0) / dt
    return u_t, radius
