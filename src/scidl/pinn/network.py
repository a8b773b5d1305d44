"""Networks of space-time coordinates for PINNs: input features, a body, hard constraints."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from scidl.models.mlp import FourierFeatures
from scidl.pinn.jet import Jet, elementwise, function_jet, jet_forward


class CoordinateFeatures(nn.Module):
    """Well-scaled inputs for a coordinate network.

    Every coordinate ``X[:, i]`` is mapped from ``[lo_i, hi_i]`` to ``[-1, 1]``; a coordinate
    listed in ``periodic`` (column -> period ``L``) is replaced by ``cos, sin(2 pi k X_i / L)``,
    ``k = 1..periodic_modes``, which makes the network exactly periodic in it (a hard periodic
    boundary condition). With ``fourier_features > 0`` the result goes through random Fourier
    features of scale ``fourier_sigma`` (:class:`~scidl.models.mlp.FourierFeatures`).

    Shapes:
        ``X [P, D] -> [P, out_features]``.
    """

    def __init__(self, lo: Sequence[float], hi: Sequence[float],
                 periodic: dict[int, float] | None = None, periodic_modes: int = 1,
                 fourier_features: int = 0, fourier_sigma: float = 1.0, seed: int = 0):
        super().__init__()
        lo_t = torch.as_tensor(lo, dtype=torch.float64)
        hi_t = torch.as_tensor(hi, dtype=torch.float64)
        if lo_t.shape != hi_t.shape or lo_t.ndim != 1 or not bool((hi_t > lo_t).all()):
            raise ValueError(f"need lo < hi per coordinate, got lo={list(lo)}, hi={list(hi)}")
        self.register_buffer("lo", lo_t)
        self.register_buffer("hi", hi_t)
        self.periodic = {int(k): float(v) for k, v in (periodic or {}).items()}
        self.periodic_modes = int(periodic_modes)
        self.plain = [i for i in range(len(lo_t)) if i not in self.periodic]
        base = len(self.plain) + 2 * self.periodic_modes * len(self.periodic)
        self.fourier = (FourierFeatures(base, fourier_features, fourier_sigma, seed)
                        if fourier_features > 0 else None)
        self.out_features = self.fourier.out_features if self.fourier is not None else base

    def _scale(self, dtype):
        lo, hi = self.lo.to(dtype), self.hi.to(dtype)
        return lo, 2.0 / (hi - lo)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.jet(Jet(X)).value

    def jet(self, jet: Jet) -> Jet:
        lo, scale = self._scale(jet.value.dtype)
        parts = []
        if self.plain:
            idx = self.plain
            parts.append(jet[:, idx].map(lambda v: v * scale[idx],
                                         lambda v: (v - lo[idx]) * scale[idx] - 1))
        for i, period in self.periodic.items():
            k = torch.arange(1, self.periodic_modes + 1, dtype=jet.value.dtype,
                             device=jet.value.device) * (2 * math.pi / period)
            phase = jet[:, [i] * self.periodic_modes].map(
                lambda v, k=k: v * k, lambda v, k=k, i=i: (v - lo[i]) * k)
            parts += [elementwise(phase, "cos"), elementwise(phase, "sin")]
        out = Jet.cat(parts) if len(parts) > 1 else parts[0]
        return jet_forward(self.fourier, out) if self.fourier is not None else out


class HardConstraint(nn.Module):
    """Output transform ``u = offset(X) + factor(X) * N(X)`` that satisfies conditions exactly.

    ``factor`` vanishes where the condition holds and ``offset`` takes the prescribed values
    there, e.g. for Burgers on ``[-1, 1] x [0, 1]`` with ``u(x, 0) = -sin(pi x)`` and
    ``u(+-1, t) = 0``: ``offset = -sin(pi x)``, ``factor = t (1 - x^2)``. Both are
    parameter-free functions of ``X [P, D]`` returning ``[P, C]`` or ``[P, 1]``.
    """

    def __init__(self, offset: Callable[[torch.Tensor], torch.Tensor] | None,
                 factor: Callable[[torch.Tensor], torch.Tensor]):
        super().__init__()
        self.offset, self.factor = offset, factor

    def forward(self, X: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        u = _column(self.factor(X)) * n
        return u + _column(self.offset(X)) if self.offset is not None else u


def _column(v: torch.Tensor) -> torch.Tensor:
    return v[:, None] if v.ndim == 1 else v


class FieldNetwork(nn.Module):
    """``u(X) = constraint(X, body(features(X)))``: the network a PINN trains.

    Args:
        body: maps ``[P, features.out_features] -> [P, C]`` (an MLP, SIREN...).
        features: input map (default: identity).
        constraint: optional :class:`HardConstraint`.

    :meth:`jet` gives values and derivatives by forward mode (:mod:`scidl.pinn.jet`) when the body
    is made of linear layers and known activations.
    """

    def __init__(self, body: nn.Module, features: nn.Module | None = None,
                 constraint: HardConstraint | None = None):
        super().__init__()
        self.body, self.features, self.constraint = body, features, constraint

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        n = self.body(self.features(X) if self.features is not None else X)
        return self.constraint(X, n) if self.constraint is not None else n

    def jet(self, X: torch.Tensor, first=(), second=(), constraint_jets=None) -> Jet:
        """Values ``[P, C]`` and derivatives along the columns ``first`` and pairs ``second``.

        ``constraint_jets`` are the precomputed :meth:`constraint_jets` for ``X`` (they do not
        depend on the weights; precomputing keeps autograd out of a compiled region).
        """
        j = Jet.identity(X, first, second)
        j = jet_forward(self.features, j) if self.features is not None else j
        n = jet_forward(self.body, j)
        if self.constraint is None:
            return n
        factor, offset = (constraint_jets if constraint_jets is not None
                          else self.constraint_jets(X, first, second))
        u = factor * n
        return u + offset if offset is not None else u

    def constraint_jets(self, X: torch.Tensor, first=(), second=()):
        """Jets of the hard constraint's ``factor`` and ``offset`` at ``X`` (or ``None``)."""
        if self.constraint is None:
            return None
        first = sorted(set(first) | {i for ij in second for i in ij})
        c = self.constraint
        factor = function_jet(lambda x: _column(c.factor(x)), X, first, second)
        offset = (function_jet(lambda x: _column(c.offset(x)), X, first, second)
                  if c.offset is not None else None)
        return factor, offset
