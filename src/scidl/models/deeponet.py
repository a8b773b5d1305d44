"""Deep operator networks (Lu et al., "Learning nonlinear operators via DeepONet", Nature Machine
Intelligence 3, 2021) and the POD-DeepONet (Lu et al., "A comprehensive and fair comparison of
two neural operators", CMAME 393, 2022).

``G(u)(y) = sum_k b_k(u) t_k(y) + b_0``: a branch network reads the input function at fixed sensor
points, a trunk network (or, for POD-DeepONet, the leading POD modes of the training outputs)
gives a basis over query points ``y``; the operator is queried at arbitrary points.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from scidl._fitted import FittedBuffersModule
from scidl._shapes import check_ndim, check_size
from scidl.errors import ShapeError
from scidl.models.mlp import ACTIVATIONS, MLP


class DeepONet(nn.Module):
    """Unstacked DeepONet: one branch MLP with ``basis`` outputs, one trunk MLP, a bias.

    Args:
        sensors: number of sensor values of the input function (its grid points, flattened).
        coordinates: dimension of a query point ``y``.
        basis: number of basis functions ``p``.
        width, hidden_layers, activation: of both MLPs.

    Shapes:
        u: ``[B, sensors]``; y: ``[P, coordinates]`` (the same points for every sample) or
        ``[B, P, coordinates]``; returns ``[B, P]``.
    """

    def __init__(self, sensors: int, coordinates: int, basis: int = 64, width: int = 128,
                 hidden_layers: int = 3, activation: str = "gelu"):
        super().__init__()
        self.sensors, self.coordinates = sensors, coordinates
        self.branch = MLP(sensors, basis, width, hidden_layers, activation)
        self.trunk = MLP(coordinates, basis, width, hidden_layers, activation)
        # the trunk's last layer is followed by the activation too (Lu et al. 2021, Sec. 2)
        self.trunk_activation = ACTIVATIONS[activation]()
        self.bias = nn.Parameter(torch.zeros(()))

    def forward(self, u: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        check_ndim(u, (2,), "DeepONet input function", "[B, sensors]")
        check_size(u, 1, self.sensors, "DeepONet input function", "sensor values")
        check_ndim(y, (2, 3), "DeepONet query points", "[P, coordinates] or [B, P, coordinates]")
        check_size(y, -1, self.coordinates, "DeepONet query points", "coordinates")
        b = self.branch(u)  # [B, p]
        t = self.trunk_activation(self.trunk(y.reshape(-1, self.coordinates)))
        if y.ndim == 2:
            return b @ t.T + self.bias  # [B, P]
        t = t.reshape(*y.shape[:-1], -1)  # [B, P, p]
        return torch.einsum("bk,bpk->bp", b, t) + self.bias


class PODDeepONet(FittedBuffersModule):
    """DeepONet whose trunk is the mean and leading POD modes of the training outputs.

    The basis is computed once (:meth:`fit_basis`) from training targets on a fixed output
    grid, so predictions live on that grid: ``G(u) = mean + sum_k b_k(u) phi_k``.

    Args:
        sensors: number of sensor values of the input function.
        modes: number of POD modes kept.
        width, hidden_layers, activation: of the branch MLP.

    Shapes:
        u: ``[B, sensors]``; targets for :meth:`fit_basis`: ``[N, P]``; returns ``[B, P]``.
    """

    fitted_buffers = ("mean", "basis")

    def __init__(self, sensors: int, modes: int = 32, width: int = 128, hidden_layers: int = 3,
                 activation: str = "gelu"):
        super().__init__()
        self.sensors, self.modes = sensors, modes
        self.branch = MLP(sensors, modes, width, hidden_layers, activation)
        self.register_buffer("mean", torch.zeros(0))
        self.register_buffer("basis", torch.zeros(0, modes))

    @torch.no_grad()
    def fit_basis(self, targets: torch.Tensor) -> torch.Tensor:
        """Set the mean and the leading ``modes`` POD modes (scaled to unit RMS over the grid)
        of ``targets [N, P]``; returns the fraction of the variance they capture."""
        check_ndim(targets, (2,), "POD-DeepONet training targets", "[N, P]")
        if targets.shape[0] < self.modes:
            raise ValueError(f"need at least {self.modes} training targets for {self.modes} POD "
                             f"modes, got {targets.shape[0]}")
        mean = targets.mean(0)
        _, s, vh = torch.linalg.svd(targets - mean, full_matrices=False)
        points = targets.shape[1]
        self.mean = mean
        self.basis = vh[: self.modes].T * points**0.5  # [P, modes], unit RMS columns
        return (s[: self.modes].square().sum() / s.square().sum().clamp_min(1e-300))


    def forward(self, u: torch.Tensor) -> torch.Tensor:
        check_ndim(u, (2,), "POD-DeepONet input function", "[B, sensors]")
        check_size(u, 1, self.sensors, "POD-DeepONet input function", "sensor values")
        if self.mean.numel() == 0:
            raise RuntimeError("POD-DeepONet has no basis yet: call fit_basis(train_targets)")
        return self.mean + self.branch(u) @ self.basis.T / self.basis.shape[0] ** 0.5


def _grid_points(shape: tuple[int, ...], periodic: bool, dtype, device) -> torch.Tensor:
    """Coordinates of a unit grid ``shape``, ``[prod(shape), len(shape)]``: ``i / n`` on a
    periodic grid, the nodes ``i / (n - 1)`` (both ends included) otherwise."""
    axes = [torch.arange(n, dtype=dtype, device=device) / n if periodic
            else torch.linspace(0.0, 1.0, n, dtype=dtype, device=device) for n in shape]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, len(shape))


def _sensor_values(u: torch.Tensor, grid: tuple[int, ...], periodic: bool,
                   name: str) -> torch.Tensor:
    """``[B, C, *S]`` fields read at the sensor grid (every k-th point of a finer grid)."""
    check_ndim(u, (2 + len(grid),), f"{name} input", "[B, C, *S]")
    index = []
    for n, m in zip(u.shape[2:], grid):
        nested = n % m == 0 if periodic else (m > 1 and (n - 1) % (m - 1) == 0)
        if not nested:
            raise ShapeError(f"{name} reads its input on a grid of {grid} points; a grid of "
                             f"{tuple(u.shape[2:])} does not contain it")
        index.append(slice(None, None, n // m if periodic else (n - 1) // (m - 1)))
    return u[(Ellipsis, *index)].reshape(u.shape[0], -1)


class GridDeepONet(nn.Module):
    """A :class:`DeepONet` between gridded fields: ``[B, C, *S] -> [B, 1, *S]``.

    The branch reads the input on the training grid ``grid`` (a finer grid that contains it is
    subsampled); the trunk is queried at the points of the output's grid, which takes the
    input's shape, so the model predicts on any finer grid (unit coordinates: ``i / n`` on
    ``periodic`` grids, nodes ``i / (n - 1)`` otherwise).
    """

    def __init__(self, in_channels: int, grid: tuple[int, ...], basis: int = 64,
                 width: int = 128, hidden_layers: int = 3, activation: str = "gelu",
                 periodic: bool = True):
        super().__init__()
        self.grid, self.periodic = tuple(grid), periodic
        sensors = in_channels * math.prod(self.grid)
        self.net = DeepONet(sensors, len(self.grid), basis, width, hidden_layers, activation)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        sensors = _sensor_values(u, self.grid, self.periodic, "GridDeepONet")
        y = _grid_points(tuple(u.shape[2:]), self.periodic, u.dtype, u.device)
        return self.net(sensors, y).reshape(u.shape[0], 1, *u.shape[2:])


class GridPODDeepONet(nn.Module):
    """A :class:`PODDeepONet` between gridded fields on the training grid:
    ``[B, C, *S] -> [B, 1, *S]``; :meth:`fit_basis` takes targets ``[N, 1, *S]``."""

    def __init__(self, in_channels: int, grid: tuple[int, ...], modes: int = 32,
                 width: int = 128, hidden_layers: int = 3, activation: str = "gelu"):
        super().__init__()
        self.grid = tuple(grid)
        self.net = PODDeepONet(in_channels * math.prod(self.grid), modes, width, hidden_layers,
                               activation)

    def fit_basis(self, targets: torch.Tensor) -> torch.Tensor:
        return self.net.fit_basis(targets.reshape(targets.shape[0], -1))

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        if tuple(u.shape[2:]) != self.grid:
            raise ShapeError(f"POD-DeepONet predicts on its training grid {self.grid}, not on "
                             f"{tuple(u.shape[2:])}")
        return self.net(u.reshape(u.shape[0], -1)).reshape(u.shape[0], 1, *self.grid)
