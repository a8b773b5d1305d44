"""Physics-informed loss for a 1D time-dependent PDE: residual, initial and boundary terms."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from scidl.numerics.derivatives import AutogradDerivatives
from scidl.pdes.base import TimeDependentPDE


@dataclass(frozen=True)
class LossWeights:
    """Weights of the loss terms ``w_r |r|^2 + w_ic |u - u0|^2 + w_bc |boundary|^2``."""

    residual: float = 1.0
    initial: float = 1.0
    boundary: float = 1.0


class PINNProblem:
    """``u_t = pde.rhs(u, d)`` on ``[x_min, x_max] x [0, t_final]`` as a training objective.

    The residual is the PDE's own :meth:`~scidl.pdes.TimeDependentPDE.residual` evaluated with
    :class:`~scidl.numerics.AutogradDerivatives` -- the same ``rhs`` the spectral solver uses.

    Args:
        pde: the equation.
        x_min, x_max, t_final: the space-time box.
        initial_points: ``[M]`` positions where the initial state is known.
        initial_values: ``[M]`` the initial state there.
        boundary: ``periodic`` (``u`` and ``u_x`` agree at both ends) or ``none`` (e.g. when the
            network is periodic by construction).
        n_collocation: residual points per step (uniform in the box, redrawn every
            ``resample_every`` steps from the seed).
        n_boundary: boundary times per step.
        weights: loss weights.
        seed: seed of the point sampling.
        device: where points are created.
    """

    def __init__(self, pde: TimeDependentPDE, *, x_min: float, x_max: float, t_final: float,
                 initial_points: torch.Tensor, initial_values: torch.Tensor,
                 boundary: str = "periodic", n_collocation: int = 4096, n_boundary: int = 256,
                 resample_every: int = 1, weights: LossWeights | None = None, seed: int = 0,
                 device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32):
        if boundary not in ("periodic", "none"):
            raise ValueError(f"boundary must be 'periodic' or 'none', got {boundary!r}")
        if initial_points.shape != initial_values.shape or initial_points.ndim != 1:
            raise ValueError("initial_points and initial_values must both have shape [M]")
        self.pde, self.boundary = pde, boundary
        self.x_min, self.x_max, self.t_final = x_min, x_max, t_final
        self.n_collocation, self.n_boundary = n_collocation, n_boundary
        self.resample_every, self.seed = max(1, resample_every), seed
        self.weights = weights or LossWeights()
        self.device, self.dtype = torch.device(device), dtype
        self.initial_points = initial_points.to(self.device, dtype).reshape(-1, 1)
        self.initial_values = initial_values.to(self.device, dtype).reshape(-1, 1)

    def batch(self, step: int, rank: int = 0, world_size: int = 1) -> dict[str, torch.Tensor]:
        """Collocation and boundary points for ``step``; each rank takes every ``world_size``-th."""
        draw = step // self.resample_every
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + draw)
        unit = torch.rand(self.n_collocation, 2, generator=generator, dtype=torch.float64)
        x = self.x_min + (self.x_max - self.x_min) * unit[:, :1]
        t = self.t_final * unit[:, 1:]
        t_boundary = self.t_final * torch.rand(self.n_boundary, 1, generator=generator,
                                               dtype=torch.float64)
        shard = slice(rank, None, world_size)
        to = {"device": self.device, "dtype": self.dtype}
        return {
            "x": x[shard].to(**to), "t": t[shard].to(**to),
            "t_boundary": t_boundary[shard].to(**to),
            "x0": self.initial_points[shard], "u0": self.initial_values[shard],
        }

    def residual(self, model: nn.Module, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """PDE residual ``u_t - rhs(u)`` of ``model`` at the points ``(x, t)``, ``[P, 1]``."""
        x = x.detach().requires_grad_(True)
        t = t.detach().requires_grad_(True)
        u = model(x, t)
        return self.pde.residual(u, AutogradDerivatives({"x": x, "t": t}))

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor]):
        residual = self.residual(model, batch["x"], batch["t"]).pow(2).mean()
        initial = (model(batch["x0"], torch.zeros_like(batch["x0"])) - batch["u0"]).pow(2).mean()
        terms = {"residual": residual, "initial": initial}
        total = self.weights.residual * residual + self.weights.initial * initial
        if self.boundary == "periodic":
            tb = batch["t_boundary"]
            left = torch.full_like(tb, self.x_min).requires_grad_(True)
            right = torch.full_like(tb, self.x_max).requires_grad_(True)
            u_left, u_right = model(left, tb), model(right, tb)
            d_left = AutogradDerivatives({"x": left}).x(u_left)
            d_right = AutogradDerivatives({"x": right}).x(u_right)
            boundary = (u_left - u_right).pow(2).mean() + (d_left - d_right).pow(2).mean()
            terms["boundary"] = boundary
            total = total + self.weights.boundary * boundary
        return total, {k: v.detach() for k, v in terms.items()}

    @torch.no_grad()
    def predict(self, model: nn.Module, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Network values on the grid ``t [T] x x [N]`` -> ``[T, N]``."""
        tt, xx = torch.meshgrid(t.to(self.device, self.dtype), x.to(self.device, self.dtype),
                                indexing="ij")
        return model(xx.reshape(-1, 1), tt.reshape(-1, 1)).reshape(tt.shape)
