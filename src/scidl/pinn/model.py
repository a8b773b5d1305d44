"""What a PINN trains and how: the trained state (:class:`PINN`), unknown parameters of an
inverse problem (:class:`Unknown`), adaptive refinement (:class:`Refinement`), adaptive
resampling (:class:`AdaptiveSampling`) and loss balancing (:class:`Balancing`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Unknown:
    """An unknown PDE parameter learned with the network (an inverse problem).

    Args:
        initial: the starting guess.
        positive: learn ``log(value)`` so the value stays positive (viscosities, diffusivities).
    """

    initial: float
    positive: bool = True

    def raw(self) -> float:
        if self.positive and not self.initial > 0:
            raise ValueError(f"a positive unknown needs a positive initial guess, got "
                             f"{self.initial}")
        return math.log(self.initial) if self.positive else float(self.initial)


@dataclass(frozen=True)
class Refinement:
    """Residual-based adaptive refinement (RAR; Lu et al., SIAM Review 63, 2021): every
    ``every`` steps, evaluate the residual at ``candidates`` random points and add the ``add``
    with the largest residual to the collocation set, until ``until`` steps."""

    every: int = 1000
    candidates: int = 10000
    add: int = 100
    until: int | None = None


@dataclass(frozen=True)
class AdaptiveSampling:
    """Residual-based adaptive distribution (RAD; Wu, Zhu, Tan, Kartha & Lu, Comput. Methods
    Appl. Mech. Engrg. 403, 2023): at step ``start`` and every ``every`` steps after it (the
    first draw at ``every`` when ``start`` is 0), until ``until``, the collocation points are
    redrawn from ``candidates`` uniform random points with probability proportional to
    ``|r|^k / mean(|r|^k) + c`` (``r`` the residual). The number of points stays the same; ``k``
    sharpens the focus on large residuals (a shock), ``c`` keeps a share of the points spread
    over the whole domain. Wu et al. draw only from a network pretrained on uniform points
    (``start`` after an Adam + L-BFGS pretraining), then train each draw with Adam and L-BFGS
    (``every`` = the length of such a round): a residual that is large where the solution is
    still wrong draws the points away from what training needs."""

    every: int = 1000
    candidates: int = 100000
    k: float = 1.0
    c: float = 1.0
    until: int | None = None
    start: int = 0


@dataclass(frozen=True)
class Balancing:
    """Gradient-norm loss balancing (Wang, Teng & Perdikaris, SIAM J. Sci. Comput. 43, 2021,
    "learning rate annealing"): every ``every`` steps each condition's weight moves towards
    ``max |grad L_residual| / mean |grad L_condition|`` with factor ``alpha``, until ``until``
    steps (set it to the end of the Adam stage: L-BFGS needs a fixed objective)."""

    every: int = 100
    alpha: float = 0.1
    until: int | None = None
    #: upper bound of a weight (None: unbounded, as in the paper); a cap keeps a condition
    #: whose gradients vanish from starving the residual
    max_weight: float | None = None


class PINN(nn.Module):
    """The trained state of a PINN: ``net`` plus unknowns, loss weights, refinement points and
    adaptively sampled collocation points.

    ``forward(X [P, D]) -> u [P, C]``.
    """

    def __init__(self, net: nn.Module, unknowns: dict[str, Unknown] | None = None,
                 n_terms: int = 0, dim: int = 1):
        super().__init__()
        self.net = net
        self.unknown_specs = dict(unknowns or {})
        self.unknowns = nn.ParameterDict({
            name: nn.Parameter(torch.tensor(spec.raw(), dtype=torch.float64))
            for name, spec in self.unknown_specs.items()
        })
        self.register_buffer("term_weights", torch.ones(max(n_terms, 1), dtype=torch.float64))
        self.register_buffer("added_points", torch.zeros(0, dim, dtype=torch.float64))
        #: the collocation points drawn by adaptive sampling (empty: the problem's own draw)
        self.register_buffer("sampled_points", torch.zeros(0, dim, dtype=torch.float64))

    def forward(self, X: torch.Tensor | None, evaluate=None):
        """``net(X)``; or, with ``evaluate``, ``evaluate(self)``: how the objective runs its loss
        through this module's ``forward``, so that a DistributedDataParallel wrapper sees the
        computation and synchronises the gradients of the jets' backward pass."""
        if evaluate is not None:
            return evaluate(self)
        return self.net(X)

    def unknown_values(self) -> dict[str, torch.Tensor]:
        """The current unknown parameters (tensors in the graph, for the PDE)."""
        return {name: (torch.exp(raw) if self.unknown_specs[name].positive else raw)
                for name, raw in self.unknowns.items()}

    def estimates(self) -> dict[str, float]:
        return {k: float(v.detach()) for k, v in self.unknown_values().items()}

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # refinement grows a point set and adaptive sampling fills one: take the checkpoint's
        # sizes
        for name in ("added_points", "sampled_points"):
            if prefix + name in state_dict:
                setattr(self, name, torch.empty_like(state_dict[prefix + name]))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
