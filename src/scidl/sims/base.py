"""The contract of a differentiable simulated system: a vector field, and for mechanics a potential.

* :class:`DynamicalSystem`: ``forward(t, y) -> dy/dt`` for a state ``y [..., state_dim]``
  batched over any leading dims, so any system can be handed to
  :func:`scidl.numerics.odeint.odeint`; ``energy(y)`` where an invariant exists.
* :class:`MechanicalSystem`: Newtonian ``q'' = a(q) = -M^-1 grad V(q)`` with a diagonal mass
  matrix, positions ``q [..., *config_shape]`` and velocities of the same shape. Subclasses state
  the potential ``V`` (physics written once); the acceleration follows from it by autograd, and
  a subclass may override it with the analytic form for speed (the tests check the two agree).
  ``acceleration`` feeds the symplectic integrators of :mod:`scidl.numerics.symplectic`;
  ``pack``/``unpack`` give the first-order view ``y = (q, v)`` used by ``forward``.

Physical constants are registered with :func:`register_constant`: an ``nn.Parameter`` (gradients
flow to it) or, with ``learnable=False``, a buffer. Python numbers are stored in float64 and
every constant is cast to the dtype of the state it meets, so float32 and float64 states both
work with the same module and finite-difference checks in float64 see exact constants.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from scidl.errors import ShapeError


def as_constant(value: float | Sequence[float] | torch.Tensor) -> torch.Tensor:
    """A floating tensor: numbers and sequences become float64; floating tensors keep their
    dtype, integer ones become float64."""
    if not isinstance(value, torch.Tensor):
        return torch.as_tensor(value, dtype=torch.float64)
    return value if value.is_floating_point() else value.to(torch.float64)


def register_constant(module: nn.Module, name: str,
                      value: float | Sequence[float] | torch.Tensor, learnable: bool) -> None:
    """Register ``value`` on ``module`` as a parameter (``learnable``) or a buffer.

    Converted by :func:`as_constant`, then copied, so an optimiser never modifies the caller's
    tensor.
    """
    tensor = as_constant(value).detach().clone()
    if learnable:
        module.register_parameter(name, nn.Parameter(tensor))
    else:
        module.register_buffer(name, tensor)


class DynamicalSystem(nn.Module):
    """``dy/dt = forward(t, y)`` for a state ``y [..., state_dim]``.

    Shapes:
        t: 0-dim tensor (ignored by autonomous systems). y: ``[..., state_dim]``.
        forward returns ``[..., state_dim]``; energy returns ``[...]``.
    """

    @property
    def state_dim(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} does not define state_dim")

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not define its vector field")

    def energy(self, y: torch.Tensor) -> torch.Tensor:
        """A conserved quantity ``[...]`` of the flow, where the system has one."""
        raise NotImplementedError(f"{type(self).__name__} has no known invariant")

    def check_state(self, y: torch.Tensor) -> None:
        """Raise :class:`~scidl.errors.ShapeError` unless ``y`` is ``[..., state_dim]``."""
        if y.ndim < 1 or y.shape[-1] != self.state_dim:
            raise ShapeError(f"{type(self).__name__} state must have shape "
                             f"[..., {self.state_dim}], got {tuple(y.shape)}")


class MechanicalSystem(DynamicalSystem):
    """Newtonian mechanics ``q'' = -M^-1 grad V(q)`` with a diagonal mass matrix.

    Subclasses define :attr:`config_shape`, :meth:`potential` and the masses (through
    :meth:`coordinate_masses`, by default a registered ``masses [N]`` indexing the first
    configuration dim), and may override :meth:`acceleration` analytically.

    Shapes:
        q, v: ``[..., *config_shape]``. potential, kinetic, energy_qv: ``[...]``.
        y (first-order view): ``[..., 2 * prod(config_shape)]``, positions first.
    """

    @property
    def config_shape(self) -> tuple[int, ...]:
        raise NotImplementedError(f"{type(self).__name__} does not define config_shape")

    @property
    def state_dim(self) -> int:
        return 2 * math.prod(self.config_shape)

    def potential(self, q: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not define its potential")

    def coordinate_masses(self, like: torch.Tensor) -> torch.Tensor:
        """Masses broadcastable to ``[..., *config_shape]``, in ``like``'s dtype and device."""
        masses = self.masses.to(like)
        return masses.reshape(masses.shape + (1,) * (len(self.config_shape) - masses.ndim))

    def acceleration(self, q: torch.Tensor) -> torch.Tensor:
        """``-grad V(q) / m`` by autograd, keeping the graph (differentiable in ``q`` and in the
        parameters). Not available under ``torch.inference_mode``."""
        self.check_positions(q)
        with torch.enable_grad():
            leaf = q if q.requires_grad else q.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(self.potential(leaf).sum(), leaf, create_graph=True)
        return -grad / self.coordinate_masses(q)

    def kinetic(self, v: torch.Tensor) -> torch.Tensor:
        """``sum m v^2 / 2`` over the configuration dims, ``[...]``."""
        dims = tuple(range(-len(self.config_shape), 0))
        return 0.5 * (self.coordinate_masses(v) * v.square()).sum(dim=dims)

    def energy_qv(self, q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Total energy ``T(v) + V(q)``, ``[...]``."""
        return self.kinetic(v) + self.potential(q)

    def energy(self, y: torch.Tensor) -> torch.Tensor:
        return self.energy_qv(*self.unpack(y))

    def pack(self, q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """``(q, v) -> y [..., 2 * prod(config_shape)]``."""
        self.check_positions(q)
        self.check_positions(v)
        k = len(self.config_shape)
        return torch.cat([q.flatten(-k), v.flatten(-k)], dim=-1)

    def unpack(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``y [..., 2 * prod(config_shape)] -> (q, v)``, each ``[..., *config_shape]``."""
        self.check_state(y)
        q, v = y.chunk(2, dim=-1)
        shape = y.shape[:-1] + self.config_shape
        return q.reshape(shape), v.reshape(shape)

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        q, v = self.unpack(y)
        return self.pack(v, self.acceleration(q))

    def check_positions(self, q: torch.Tensor) -> None:
        """Raise :class:`~scidl.errors.ShapeError` unless ``q`` is ``[..., *config_shape]``."""
        k = len(self.config_shape)
        if q.ndim < k or tuple(q.shape[q.ndim - k:]) != self.config_shape:
            layout = ", ".join(str(n) for n in self.config_shape)
            raise ShapeError(f"{type(self).__name__} positions and velocities must have shape "
                             f"[..., {layout}], got {tuple(q.shape)}")
