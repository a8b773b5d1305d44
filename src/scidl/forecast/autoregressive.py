"""Autoregressive training of one-step field models on trajectories, for the one training loop.

:class:`AutoregressiveObjective` implements the objective protocol of
:func:`scidl.train.train` (``batch(step, rank, world_size)`` and ``loss(model, batch)``) over
trajectories ``[N, T, C, *S]``, with the training schemes used for long-horizon stability:

* ``"one-step"`` (teacher forcing): ``u_n -> u_{n+1}``, MSE;
* ``"unrolled"``: ``k`` model steps from ``u_n``, back-propagating through all of them, the MSE
  averaged over the ``k`` predicted states (``k = 1`` is one-step);
* ``"pushforward"`` (Brandstetter, Worrall & Welling 2022, "Message passing neural PDE
  solvers", sec. 2.3): ``k - 1`` steps without gradient, then one step with gradient, the MSE
  of that last state only; the model learns to correct the distribution shift of its own
  outputs at the cost of one extra forward pass per unrolled step. With
  ``random_unroll=True`` the number of gradient-free steps is drawn from ``0 .. k - 1`` at every
  batch (as in their code), mixing one-step and pushforward batches.

Options shared with :func:`scidl.forecast.rollout`: ``residual`` (the model predicts the
increment, ``u_{n+1} = u_n + delta_scale * model(u_n)``), ``dt`` (time-step conditioning by a
constant input channel) and ``projection`` (a callable ``u -> u`` after every step). Training
only: ``noise_std``, Gaussian noise added to the input state (Sanchez-Gonzalez et al. 2020;
Stachenfeld et al. 2022), and the symmetry ``augment``-ations. Everything random in a batch is
drawn from ``(seed, step)``, so runs are reproducible and resume bit-for-bit.
"""

from __future__ import annotations

import torch
from torch import nn

from scidl.errors import ShapeError
from scidl.forecast.rollout import Projection, step
from scidl.numerics.symmetries import GalileanBoost

MODES = ("one-step", "unrolled", "pushforward")
AUGMENTATIONS = ("shift", "odd_reflect")


class AutoregressiveObjective:
    """Train a one-step model on windows of trajectories (see the module docstring).

    Args:
        trajectories: ``[N, T, C, *S]`` training trajectories at a fixed time step.
        batch_size: windows per global batch (split across ranks; divisible by their number).
        mode: ``"one-step"``, ``"unrolled"`` or ``"pushforward"``.
        unroll: ``k``, the model steps per window (ignored for ``"one-step"``); needs
            ``T >= k + 1``.
        random_unroll: pushforward only: draw the number of steps from ``1 .. k`` per batch.
        noise_std: standard deviation of the Gaussian noise added to the window's first
            state (absolute units of the field); training only.
        residual, delta_scale, dt, projection: see :func:`scidl.forecast.rollout.step`; ``dt``
            is a float, or a ``[N]`` tensor of per-trajectory steps.
        augment: ``"shift"`` (a random periodic translation of each window) and/or
            ``"odd_reflect"`` (``u(x) -> -u(-x)`` at random, a symmetry of Burgers, KdV and
            Kuramoto-Sivashinsky in 1D); exact symmetries only.
        galilean: random Galilean boosts ``u_j(x - a c j dt) + c`` of each window (a
            :class:`scidl.numerics.GalileanBoost` whose ``elapsed`` is the frame step), for 1D
            scalar fields of Burgers-type equations; applied after ``augment``.
        seed: seed of the window sampling, noise and augmentation.
        device: where batches are sent.

    The loss is the MSE of the predicted states, divided by ``delta_scale**2`` with
    ``residual=True`` (i.e. the MSE of the normalised increment, of order 1); its terms log
    the raw ``mse`` and, for ``"unrolled"``, the MSE of the first and last steps.
    """

    def __init__(self, trajectories: torch.Tensor, *, batch_size: int, mode: str = "one-step",
                 unroll: int = 1, random_unroll: bool = False, noise_std: float = 0.0,
                 residual: bool = False, delta_scale: float = 1.0,
                 dt: float | torch.Tensor | None = None, projection: Projection | None = None,
                 augment: tuple[str, ...] = (), galilean: GalileanBoost | None = None,
                 seed: int = 0,
                 device: torch.device | str = "cpu"):
        if trajectories.ndim < 4:
            raise ShapeError(f"trajectories have shape {tuple(trajectories.shape)}, expected "
                             "[N, T, C, *S]")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        unroll = 1 if mode == "one-step" else int(unroll)
        if unroll < 1:
            raise ValueError(f"unroll must be at least 1, got {unroll}")
        if trajectories.shape[1] < unroll + 1:
            raise ShapeError(f"trajectories have {trajectories.shape[1]} time levels; unroll = "
                             f"{unroll} needs at least {unroll + 1}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if noise_std < 0 or delta_scale <= 0:
            raise ValueError(f"need noise_std >= 0 and delta_scale > 0, got {noise_std} and "
                             f"{delta_scale}")
        unknown = set(augment) - set(AUGMENTATIONS)
        if unknown:
            raise ValueError(f"unknown augmentation(s) {sorted(unknown)}; use {AUGMENTATIONS}")
        if galilean is not None and (trajectories.ndim != 4 or trajectories.shape[2] != 1):
            raise ShapeError("the Galilean boost is for scalar 1D fields [N, T, 1, X], got "
                             f"{tuple(trajectories.shape)}")
        if isinstance(dt, torch.Tensor) and dt.ndim == 1 and dt.shape[0] != trajectories.shape[0]:
            raise ShapeError(f"dt has shape {tuple(dt.shape)}, expected a float or "
                             f"[N] = [{trajectories.shape[0]}]")
        self.trajectories = trajectories
        self.batch_size, self.mode, self.unroll = batch_size, mode, unroll
        self.random_unroll = random_unroll and mode == "pushforward"
        self.noise_std, self.residual, self.delta_scale = float(noise_std), residual, delta_scale
        self.dt, self.projection, self.augment = dt, projection, tuple(augment)
        self.galilean = galilean
        self.seed, self.device = seed, torch.device(device)
        self.spatial_ndim = trajectories.ndim - 3

    # ---- batches -----------------------------------------------------------------------------

    def batch(self, step: int, rank: int = 0, world_size: int = 1) -> dict:
        """This rank's share of the global batch of ``step``: a dict with ``window``
        ``[b, k + 1, C, *S]``, ``noise`` ``[b, C, *S]`` (or None), ``dt`` (or None) and
        ``unroll`` (the number of model steps for this batch)."""
        if self.batch_size % world_size:
            raise ValueError(f"batch_size {self.batch_size} must be divisible by the "
                             f"{world_size} processes")
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        n, t = self.trajectories.shape[:2]
        k = self.unroll
        which = torch.randint(0, n, (self.batch_size,), generator=g)
        start = torch.randint(0, t - k, (self.batch_size,), generator=g)
        unroll = int(torch.randint(1, k + 1, (1,), generator=g)) if self.random_unroll else k
        noise = (self.noise_std * torch.randn(self.batch_size, *self.trajectories.shape[2:],
                                              generator=g, dtype=self.trajectories.dtype)
                 if self.noise_std > 0 else None)
        mine = slice(rank, None, world_size)
        which, start = which[mine], start[mine]
        offsets = torch.arange(k + 1)
        window = self.trajectories[which[:, None], start[:, None] + offsets[None, :]]
        if self.augment or self.galilean is not None:
            window = self._augmented(window, step, rank, world_size)
        dt = self.dt
        if isinstance(dt, torch.Tensor) and dt.ndim == 1:
            dt = dt[which].to(self.device)
        return {"window": window.to(self.device),
                "noise": noise[mine].to(self.device) if noise is not None else None,
                "dt": dt, "unroll": unroll}

    def _augmented(self, window: torch.Tensor, step: int, rank: int,
                   world_size: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + 7919 * step + 1)
        mine = slice(rank, None, world_size)
        dims = tuple(range(-self.spatial_ndim, 0))
        if "shift" in self.augment:
            shifts = torch.stack([torch.randint(0, window.shape[d], (self.batch_size,),
                                                generator=g) for d in dims], dim=1)[mine]
            window = torch.stack([torch.roll(w, [int(s) for s in shift], dims)
                                  for w, shift in zip(window, shifts)])
        if "odd_reflect" in self.augment:
            flip = (torch.rand(self.batch_size, generator=g) < 0.5)[mine]
            flip = flip.view(-1, *[1] * (window.ndim - 1))
            reflected = -torch.roll(window.flip(dims), [1] * len(dims), dims)
            window = torch.where(flip, reflected, window)
        if self.galilean is not None:
            speeds = self.galilean.speeds(self.batch_size, window.shape[-1], g)[mine]
            window = self.galilean(window, speeds)
        return window

    # ---- loss --------------------------------------------------------------------------------

    def _step(self, model: nn.Module, u: torch.Tensor, dt) -> torch.Tensor:
        return step(model, u, residual=self.residual, dt=dt, delta_scale=self.delta_scale,
                    projection=self.projection)

    def loss(self, model: nn.Module, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        window, noise, dt, k = batch["window"], batch["noise"], batch["dt"], batch["unroll"]
        u = window[:, 0]
        if noise is not None:
            u = u + noise
        scale = self.delta_scale ** 2 if self.residual else 1.0
        if self.mode == "pushforward":
            if k > 1:
                with torch.no_grad():
                    for _ in range(k - 1):
                        u = self._step(model, u, dt)
                u = u.detach()
            mse = (self._step(model, u, dt) - window[:, k]).square().mean()
            return mse / scale, {"mse": mse.detach()}
        errors = []
        for j in range(1, k + 1):
            u = self._step(model, u, dt)
            errors.append((u - window[:, j]).square().mean())
        mse = torch.stack(errors).mean()
        terms = {"mse": mse.detach()}
        if k > 1:
            terms.update(mse_first=errors[0].detach(), mse_last=errors[-1].detach())
        return mse / scale, terms


def increment_scale(trajectories: torch.Tensor) -> float:
    """Root mean square of the one-step increments ``u_{n+1} - u_n`` of ``[N, T, C, *S]``
    trajectories: a ``delta_scale`` that makes a residual model's target of order 1."""
    if trajectories.ndim < 3 or trajectories.shape[1] < 2:
        raise ShapeError(f"trajectories have shape {tuple(trajectories.shape)}, expected "
                         "[N, T, ...] with T >= 2")
    return float((trajectories[:, 1:] - trajectories[:, :-1]).square().mean().sqrt())


__all__ = ["AUGMENTATIONS", "MODES", "AutoregressiveObjective", "increment_scale"]
