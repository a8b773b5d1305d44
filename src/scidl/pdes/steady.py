"""The contract of a steady PDE: a residual over derivative operators, zero at the solution."""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import ClassVar

import torch

from scidl.numerics.derivatives import Derivatives

#: a given field: a constant, a tensor broadcastable against ``u``, or a function of the
#: coordinates ``(x, y, ...)`` (evaluated through ``d.coordinate``, so it serves every ``d``)
Field = float | torch.Tensor | Callable[..., torch.Tensor]


def evaluate_field(value: Field, d: Derivatives, like: torch.Tensor) -> torch.Tensor | float:
    """``value`` where ``d``'s fields live, with the dtype and device of ``like``."""
    if callable(value):
        coords = [d.coordinate(name) for name in d.spatial_dims]
        return torch.as_tensor(value(*coords)).to(like)
    if isinstance(value, torch.Tensor):
        return value.to(like)
    return float(value)


class SteadyPDE(ABC):
    """``residual(u, d) = 0`` for a field ``u`` and derivative operator ``d``.

    Subclasses are frozen dataclasses whose fields are the parameters (numbers, or the given
    fields of the problem such as a source or a coefficient, see :data:`Field`), and they
    implement only :meth:`residual`. A PINN loss, a physics-informed operator loss or a check of
    a surrogate hand it their ``d``; reference solvers live in :mod:`scidl.numerics.elliptic`.
    """

    #: short name used in configs, datasets and the CLI
    name: ClassVar[str]

    @abstractmethod
    def residual(self, u: torch.Tensor, d: Derivatives) -> torch.Tensor:
        """The residual ``R(u)``, zero at the solution, with the shape of ``u``."""

    def parameters(self) -> dict[str, object]:
        """The parameters, for metadata and configs."""
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}
