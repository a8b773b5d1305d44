"""The Lotka-Volterra predator-prey model and its conserved quantity."""

from __future__ import annotations

import torch

from scidl.sims.base import DynamicalSystem, register_constant


class LotkaVolterra(DynamicalSystem):
    """``x' = alpha x - beta x y`` (prey), ``y' = delta x y - gamma y`` (predators).

    Lotka (1925), Volterra (1926). For positive populations the orbits are closed and
    ``V = delta x - gamma ln x + beta y - alpha ln y`` is conserved (``dV/dt = 0`` by direct
    substitution; Hairer, Lubich & Wanner, "Geometric Numerical Integration", Sec. I.1.1);
    :meth:`energy` returns it. Defaults: ``alpha = 2/3``, ``beta = 4/3``, ``gamma = delta = 1``.

    Args:
        alpha, beta, gamma, delta: positive rates; ``nn.Parameter`` s when ``learnable``.

    Shapes:
        y: ``[..., 2]`` = ``(x, y)``, positive; forward returns ``[..., 2]``, energy ``[...]``.
    """

    def __init__(self, alpha: float | torch.Tensor = 2 / 3, beta: float | torch.Tensor = 4 / 3,
                 gamma: float | torch.Tensor = 1.0, delta: float | torch.Tensor = 1.0, *,
                 learnable: bool = True):
        super().__init__()
        for name, value in (("alpha", alpha), ("beta", beta), ("gamma", gamma),
                            ("delta", delta)):
            register_constant(self, name, value, learnable)

    @property
    def state_dim(self) -> int:
        return 2

    def _rates(self, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(c.to(y) for c in (self.alpha, self.beta, self.gamma, self.delta))

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.check_state(y)
        alpha, beta, gamma, delta = self._rates(y)
        prey, predators = y.unbind(-1)
        return torch.stack([prey * (alpha - beta * predators),
                            predators * (delta * prey - gamma)], dim=-1)

    def energy(self, y: torch.Tensor) -> torch.Tensor:
        """The invariant ``delta x - gamma ln x + beta y - alpha ln y``, ``[...]``."""
        self.check_state(y)
        alpha, beta, gamma, delta = self._rates(y)
        prey, predators = y.unbind(-1)
        return (delta * prey - gamma * torch.log(prey)
                + beta * predators - alpha * torch.log(predators))
