"""The Lorenz (1963) system, the classic chaotic flow."""

from __future__ import annotations

import torch

from scidl.sims.base import DynamicalSystem, register_constant


class Lorenz63(DynamicalSystem):
    """``x' = sigma (y - x)``, ``y' = x (rho - z) - y``, ``z' = x y - beta z``.

    Lorenz, "Deterministic nonperiodic flow", J. Atmos. Sci. 20 (1963), Eq. (25)-(27), with his
    parameters ``sigma = 10``, ``rho = 28``, ``beta = 8/3`` as defaults. Chaotic: the largest
    Lyapunov exponent is about 0.906, so gradients through a rollout grow like ``e^{0.9 t}`` and
    are only meaningful over short horizons. Dissipative (volume contracts at rate
    ``sigma + 1 + beta``): no conserved energy.

    Args:
        sigma, rho, beta: the constants; ``nn.Parameter`` s when ``learnable``, else buffers.

    Shapes:
        y: ``[..., 3]`` = ``(x, y, z)``; forward returns ``[..., 3]``.
    """

    def __init__(self, sigma: float | torch.Tensor = 10.0, rho: float | torch.Tensor = 28.0,
                 beta: float | torch.Tensor = 8 / 3, *, learnable: bool = True):
        super().__init__()
        register_constant(self, "sigma", sigma, learnable)
        register_constant(self, "rho", rho, learnable)
        register_constant(self, "beta", beta, learnable)

    @property
    def state_dim(self) -> int:
        return 3

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.check_state(y)
        sigma, rho, beta = (c.to(y) for c in (self.sigma, self.rho, self.beta))
        x, u, z = y.unbind(-1)
        return torch.stack([sigma * (u - x), x * (rho - z) - u, x * u - beta * z], dim=-1)
