"""Objectives for the training loop that need no physics: supervised field regression."""

from __future__ import annotations

import torch
from torch import nn

from scidl.errors import ShapeError
from scidl.metrics import relative_h1, relative_l2
from scidl.numerics.symmetries import GalileanBoost

LOSSES = ("relative_l2", "mse", "relative_h1")
AUGMENTATIONS = ("shift", "reflect", "odd_reflect")


class FieldRegression:
    """Learn a map between fields from pairs ``inputs[i] -> targets[i]`` (operator learning).

    Every epoch is a fresh permutation drawn from ``(seed, epoch)`` and each global batch of
    ``batch_size`` samples is split evenly across ranks, so one process and ``torchrun`` with
    several see the same global batches and a resumed run sees the batches it would have seen.

    Args:
        inputs: ``[N, C_in, *S]`` input fields.
        targets: ``[N, C_out, *S]`` target fields.
        batch_size: global batch size (divisible by the number of ranks).
        loss: ``relative_l2`` (mean over the batch, as in the FNO paper), ``mse`` or
            ``relative_h1`` (the spectral Sobolev norm of :func:`scidl.metrics.relative_h1`
            over the last ``ndim`` dims: errors in gradients weigh in).
        seed: seed of the shuffling.
        device: where batches are sent.
        ndim: spatial dims of a field (for ``relative_h1``; default all after the channel).
        physics: an optional extra term ``physics(prediction) -> scalar`` added to the loss
            (e.g. the PINO residual) and logged as ``physics``.
        augment: symmetries of the map applied at random to each training pair (input and
            target alike), exact data augmentation for equations on periodic grids:
            ``shift`` (a random periodic translation), ``reflect`` (``u(x) -> u(-x)``) and
            ``odd_reflect`` (``u(x) -> -u(-x)``, a symmetry of Burgers, KdV and KS). Drawn
            from ``(seed, step)``, so runs stay reproducible.
        galilean: random Galilean boosts of each pair, ``u0 + c -> u_T(x - a c T) + c``
            (a :class:`scidl.numerics.GalileanBoost` whose ``elapsed`` is ``T``, the time from
            input to target), for single-channel 1D fields of Burgers-type equations; applied
            after ``augment``.
    """

    def __init__(self, inputs: torch.Tensor, targets: torch.Tensor, *, batch_size: int,
                 loss: str = "relative_l2", seed: int = 0, device: torch.device | str = "cpu",
                 ndim: int | None = None, physics=None, augment: tuple[str, ...] = (),
                 galilean: GalileanBoost | None = None):
        if inputs.shape[0] != targets.shape[0]:
            raise ShapeError(
                f"inputs {tuple(inputs.shape)} and targets {tuple(targets.shape)} must have the "
                "same number of samples"
            )
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        if not 1 <= batch_size <= inputs.shape[0]:
            raise ValueError(
                f"batch_size must be between 1 and {inputs.shape[0]}, got {batch_size}"
            )
        self.inputs, self.targets = inputs, targets
        self.batch_size, self.loss_name, self.seed = batch_size, loss, seed
        self.ndim = ndim if ndim is not None else targets.ndim - 2
        self.physics = physics
        unknown = set(augment) - set(AUGMENTATIONS)
        if unknown:
            raise ValueError(f"unknown augmentation(s) {sorted(unknown)}; use {AUGMENTATIONS}")
        if "reflect" in augment and "odd_reflect" in augment:
            raise ValueError("choose one of reflect and odd_reflect")
        self.augment = tuple(augment)
        if galilean is not None and not (inputs.ndim == targets.ndim == 3
                                         and inputs.shape[1] == targets.shape[1] == 1
                                         and inputs.shape[-1] == targets.shape[-1]):
            raise ShapeError("the Galilean boost needs single-channel 1D inputs and targets on "
                             f"one grid, got {tuple(inputs.shape)} and {tuple(targets.shape)}")
        self.galilean = galilean
        self.device = torch.device(device)
        self.steps_per_epoch = inputs.shape[0] // batch_size
        self._permutation: tuple[int, torch.Tensor] | None = None

    def _epoch_permutation(self, epoch: int) -> torch.Tensor:
        if self._permutation is None or self._permutation[0] != epoch:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._permutation = (epoch, torch.randperm(self.inputs.shape[0], generator=generator))
        return self._permutation[1]

    def batch(self, step: int, rank: int = 0, world_size: int = 1):
        if self.batch_size % world_size:
            raise ValueError(
                f"batch_size {self.batch_size} must be divisible by the {world_size} processes"
            )
        epoch, offset = divmod(step, self.steps_per_epoch)
        index = self._epoch_permutation(epoch)[offset * self.batch_size:
                                               (offset + 1) * self.batch_size]
        index = index[rank::world_size]
        x, y = self.inputs[index], self.targets[index]
        if self.augment or self.galilean is not None:
            x, y = self._augmented(x, y, step, index.shape[0])
        return x.to(self.device), y.to(self.device)

    def _augmented(self, x: torch.Tensor, y: torch.Tensor, step: int, n: int):
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + 7919 * step + 1)
        dims = tuple(range(-self.ndim, 0))
        if "shift" in self.augment:
            shifts = [torch.randint(0, x.shape[d], (n,), generator=generator) for d in dims]
            x = torch.stack([torch.roll(x[i], [int(s[i]) for s in shifts], dims)
                             for i in range(n)])
            y = torch.stack([torch.roll(y[i], [int(s[i]) for s in shifts], dims)
                             for i in range(n)])
        for kind, sign in (("reflect", 1.0), ("odd_reflect", -1.0)):
            if kind in self.augment:
                flip = (torch.rand(n, generator=generator) < 0.5).view(n, *[1] * (x.ndim - 1))
                # x -> -x on a periodic grid: index i -> (N - i) mod N
                x = torch.where(flip, sign * torch.roll(x.flip(dims), [1] * self.ndim, dims), x)
                y = torch.where(flip, sign * torch.roll(y.flip(dims), [1] * self.ndim, dims), y)
        if self.galilean is not None:
            speeds = self.galilean.speeds(n, x.shape[-1], generator)
            pair = self.galilean(torch.stack([x, y], dim=1), speeds)
            x, y = pair[:, 0], pair[:, 1]
        return x, y

    def loss(self, model: nn.Module, batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        x, y = batch
        prediction = model(x)
        if self.loss_name == "mse":
            data = (prediction - y).pow(2).mean()
        elif self.loss_name == "relative_h1":
            data = relative_h1(prediction, y, ndim=self.ndim).mean()
        else:
            data = relative_l2(prediction, y).mean()
        if self.physics is None:
            return data, {}
        physics = self.physics(prediction)
        return data + physics, {"data": data.detach(), "physics": physics.detach()}
