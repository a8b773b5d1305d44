"""Quantile regression: the pinball loss and a small non-crossing quantile MLP.

The base model of conformalized quantile regression (Romano, Patterson & Candes 2019): an MLP
with ``Q`` outputs trained with the pinball loss at ``Q`` levels. The outputs are made
monotone in the level by construction (the lowest quantile plus cumulative softplus
increments), so predicted quantiles never cross.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from scidl.errors import DivergenceError, ShapeError
from scidl.metrics import quantile_score
from scidl.models.mlp import MLP
from scidl.uq.prediction import Prediction


def pinball_loss(quantiles: torch.Tensor, y: torch.Tensor, levels: torch.Tensor
                 ) -> torch.Tensor:
    """Pinball loss ``mean_{j, i} rho_{p_j}(y_i - q_{j,i})``, ``rho_p(u) = max(p u, (p - 1) u)``
    (Koenker & Bassett 1978): minimised in expectation by the true ``p_j``-quantiles. The
    training-loss form (target before levels) of :func:`scidl.metrics.quantile_score`.

    Shapes:
        quantiles ``[Q, N, *shape]``; y ``[N, *shape]``; levels ``[Q]`` -> ``[]``.
    """
    levels = torch.as_tensor(levels, dtype=quantiles.dtype, device=quantiles.device)
    return quantile_score(quantiles, levels, y)


class QuantileRegressor(nn.Module):
    """An MLP that predicts ``Q`` quantiles of a scalar target, non-crossing by construction:
    ``q_1 = f_1(x)``, ``q_j = q_{j-1} + softplus(f_j(x))``.

    Inputs and targets are standardised with the buffers ``x_shift, x_scale, y_shift,
    y_scale`` (set by :func:`fit_quantile_regressor`), so the outputs are in target units.

    Args:
        in_features: input features ``d``.
        levels: ``Q`` ascending quantile levels in (0, 1).
        width, hidden_layers, activation: the :class:`scidl.models.mlp.MLP` body.

    Shapes:
        input ``[N, d]`` -> quantiles ``[Q, N]``.
    """

    def __init__(self, in_features: int, levels: Sequence[float] | torch.Tensor,
                 width: int = 64, hidden_layers: int = 2, activation: str = "relu"):
        super().__init__()
        levels = torch.as_tensor(levels, dtype=torch.float64).reshape(-1)
        if levels.numel() < 1 or bool((levels <= 0).any() | (levels >= 1).any()) or bool(
                (levels.diff() <= 0).any()):
            raise ValueError(f"levels must be ascending inside (0, 1), got {levels.tolist()}")
        # a tuple, not a buffer: ``.to(float32)`` must not round the levels (0.05 in float32
        # would no longer be the level ``interval(0.9)`` asks for)
        self.levels = tuple(levels.tolist())
        self.body = MLP(in_features, levels.numel(), width, hidden_layers, activation)
        self.register_buffer("x_shift", torch.zeros(in_features))
        self.register_buffer("x_scale", torch.ones(in_features))
        self.register_buffer("y_shift", torch.zeros(()))
        self.register_buffer("y_scale", torch.ones(()))

    def set_standardization(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Standardise by the mean and std of training inputs ``[N, d]`` and targets ``[N]``."""
        std_x = x.std(0)
        self.x_shift.copy_(x.mean(0))
        self.x_scale.copy_(torch.where(std_x > 0, std_x, torch.ones_like(std_x)))
        self.y_shift.copy_(y.mean())
        self.y_scale.copy_(y.std() if float(y.std()) > 0 else torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raw = self.body((x - self.x_shift) / self.x_scale)  # [N, Q]
        steps = nn.functional.softplus(raw[:, 1:])
        q = torch.cat([raw[:, :1], raw[:, :1] + steps.cumsum(dim=1)], dim=1)
        return (q * self.y_scale + self.y_shift).T

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> Prediction:
        """Quantiles ``[Q, N]`` as a Prediction; its mean is the median (interpolated between
        levels), or the middle of the outer quantiles if 0.5 lies outside the levels."""
        q = self(x)
        levels = torch.tensor(self.levels, dtype=torch.float64, device=q.device)
        outer = Prediction(mean=0.5 * (q[0] + q[-1]), quantiles=q, levels=levels)
        if float(levels[0]) <= 0.5 <= float(levels[-1]):
            return Prediction(mean=outer.quantile(0.5), quantiles=q, levels=levels)
        return outer


def fit_quantile_regressor(x: torch.Tensor, y: torch.Tensor,
                           levels: Sequence[float] | torch.Tensor,
                           model: QuantileRegressor | None = None, *, epochs: int = 200,
                           batch_size: int = 64, lr: float = 1e-3, weight_decay: float = 0.0,
                           seed: int = 0) -> QuantileRegressor:
    """Train a :class:`QuantileRegressor` with the pinball loss (Adam, mini-batches).

    Args:
        x, y: training inputs ``[N, d]`` and scalar targets ``[N]``; the model follows
            ``x``'s dtype and device.
        levels: quantile levels (ignored when ``model`` is given: it carries its own).
        model: the network to train (default ``QuantileRegressor(d, levels)``); its
            standardisation is set from ``x`` and ``y``.
        epochs, batch_size, lr, weight_decay: optimisation; ``seed`` fixes the initialisation
            and batch order.

    Raises:
        DivergenceError: the loss became non-finite.
    """
    if x.ndim != 2 or y.shape != x.shape[:1]:
        raise ShapeError(f"fit_quantile_regressor needs x [N, d] and y [N], got "
                         f"{tuple(x.shape)} and {tuple(y.shape)}")
    generator = torch.Generator().manual_seed(seed)
    if model is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = QuantileRegressor(x.shape[1], levels)
    model = model.to(dtype=x.dtype, device=x.device)
    model.set_standardization(x, y)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(x.shape[0], generator=generator).to(x.device)
        for batch in order.split(batch_size):
            # the loss in standardised units, so lr and weight decay do not depend on y's scale
            loss = pinball_loss(model(x[batch]) / model.y_scale, y[batch] / model.y_scale,
                                model.levels)
            if not torch.isfinite(loss):
                raise DivergenceError(f"quantile regression loss became {float(loss)} at epoch "
                                      f"{epoch}; try a smaller lr")
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    return model
