"""Derivative operators: the ``d`` that a PDE's right-hand side is written against.

A PDE states its physics once, e.g. ``-u * d.x(u) + nu * d.xx(u)``; which numerical method computes
the derivatives is decided by the ``d`` it is handed (see DESIGN.md):

* :class:`SpectralDerivatives` -- FFT derivatives of gridded fields on a periodic box
  (solvers, physics-informed operator losses, residual checks of any surrogate);
* :class:`AutogradDerivatives` -- exact derivatives of a network at collocation points (PINNs).

Every operator exposes the same names: ``x, xx, xxx, xxxx, y, yy, z, zz, t`` (where it has time),
``laplacian`` and the general ``derivative(u, x=1, y=2)``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch

from scidl.errors import ShapeError
from scidl.numerics.grids import PeriodicGrid

_SPATIAL = ("x", "y", "z")


def _version(u: torch.Tensor) -> int | None:
    """In-place version counter of ``u`` (inference tensors have none)."""
    return None if u.is_inference() else u._version


class Derivatives(ABC):
    """The contract shared by every derivative operator."""

    #: names of the spatial dimensions this operator differentiates along, in order
    spatial_dims: tuple[str, ...]

    @abstractmethod
    def derivative(self, u: torch.Tensor, **orders: int) -> torch.Tensor:
        """Mixed partial derivative, e.g. ``derivative(u, x=2)`` or ``derivative(u, x=1, y=1)``."""

    def x(self, u: torch.Tensor) -> torch.Tensor:
        return self.derivative(u, x=1)

    def xx(self, u: torch.Tensor) -> torch.Tensor:
        return self.derivative(u, x=2)

    def xxx(self, u: torch.Tensor) -> torch.Tensor:
        return self.derivative(u, x=3)

    def xxxx(self, u: torch.Tensor) -> torch.Tensor:
        return self.derivative(u, x=4)

    def y(self, u: torch.Tensor) -> torch.Tensor:
        return self.derivative(u, y=1)

    def yy(self, u: torch.Tensor) -> torch.Tensor:
        return self.derivative(u, y=2)

    def z(self, u: torch.Tensor) -> torch.Tensor:
        return self.derivative(u, z=1)

    def zz(self, u: torch.Tensor) -> torch.Tensor:
        return self.derivative(u, z=2)

    def t(self, u: torch.Tensor) -> torch.Tensor:
        return self.derivative(u, t=1)

    def laplacian(self, u: torch.Tensor) -> torch.Tensor:
        """Sum of the unmixed second derivatives over the spatial dimensions."""
        return sum(self.derivative(u, **{name: 2}) for name in self.spatial_dims)

    @abstractmethod
    def coordinate(self, name: str) -> torch.Tensor:
        """The coordinate ``name`` where fields live, broadcastable against them.

        Lets a PDE state space-dependent terms (forcing, coefficients) once for every ``d``.
        """

    def _check_orders(self, orders: dict[str, int], allowed: tuple[str, ...]) -> dict[str, int]:
        unknown = set(orders) - set(allowed)
        if unknown:
            raise ValueError(
                f"{type(self).__name__} has no dimension {sorted(unknown)}; "
                f"it differentiates along {list(allowed)}"
            )
        if any(int(n) < 0 for n in orders.values()):
            raise ValueError(f"derivative orders must be non-negative, got {orders}")
        return {name: int(n) for name, n in orders.items() if int(n) > 0}


class SpectralDerivatives(Derivatives):
    """Fourier-spectral derivatives of fields on a :class:`PeriodicGrid`.

    ``u`` has the grid's spatial dims last, ``[..., N_1, ..., N_d]``, and any leading batch or
    channel dims. Exact (to round-off) for trigonometric polynomials resolved by the grid. Odd
    derivatives zero the Nyquist mode, whose derivative is not representable on the grid.

    The transform of the most recent input is reused, so ``d.x(u)`` and ``d.xx(u)`` on the same
    tensor cost one forward FFT between them.
    """

    def __init__(self, grid: PeriodicGrid):
        self.grid = grid
        self.spatial_dims = _SPATIAL[: grid.ndim]
        self._fft_dims = tuple(range(-grid.ndim, 0))
        self._cache: tuple[torch.Tensor, int | None, torch.Tensor] | None = None
        self._symbols: dict[tuple, torch.Tensor] = {}

    def transform(self, u: torch.Tensor) -> torch.Tensor:
        """``rfftn`` over the spatial dims, cached for the last tensor seen."""
        if tuple(u.shape[-self.grid.ndim :]) != self.grid.shape:
            raise ShapeError(
                f"field must end with the grid shape {self.grid.shape}, got {tuple(u.shape)}"
            )
        if self._cache is not None and self._cache[0] is u and self._cache[1] == _version(u):
            return self._cache[2]
        u_hat = torch.fft.rfftn(u, dim=self._fft_dims)
        self._cache = (u, _version(u), u_hat)
        return u_hat

    def remember(self, u: torch.Tensor, u_hat: torch.Tensor) -> None:
        """Record that ``u_hat`` is the transform of ``u`` (saves an FFT when the caller has it)."""
        self._cache = (u, _version(u), u_hat)

    def inverse(self, u_hat: torch.Tensor) -> torch.Tensor:
        return torch.fft.irfftn(u_hat, s=self.grid.shape, dim=self._fft_dims)

    def symbol(self, orders: dict[str, int], dtype: torch.dtype, device) -> torch.Tensor:
        """The Fourier multiplier ``prod_j (i k_j)^{n_j}`` in the rfftn layout (cached: a solver
        asks for the same few multipliers at every stage of every step)."""
        key = (tuple(sorted(orders.items())), dtype, str(device))
        if key not in self._symbols:
            self._symbols[key] = self._make_symbol(orders, dtype, device)
        return self._symbols[key]

    def _make_symbol(self, orders: dict[str, int], dtype: torch.dtype, device) -> torch.Tensor:
        ks = dict(zip(self.spatial_dims, self.grid.wavenumbers(dtype, device)))
        modes = self.grid.integer_wavenumbers(device)
        multiplier = torch.ones((), dtype=dtype, device=device) + 0j
        for name, n in orders.items():
            multiplier = multiplier * (1j * ks[name]) ** n
            axis = self.spatial_dims.index(name)
            size = self.grid.shape[axis]
            if n % 2 == 1 and size % 2 == 0:
                # only the Nyquist mode of the dimension being differentiated is ambiguous
                multiplier = multiplier * (modes[axis].abs().round() != size // 2)
        return multiplier

    def derivative(self, u: torch.Tensor, **orders: int) -> torch.Tensor:
        orders = self._check_orders(orders, self.spatial_dims)
        if not orders:
            return u
        u_hat = self.transform(u)
        return self.inverse(u_hat * self.symbol(orders, u.real.dtype, u.device))

    def coordinate(self, name: str) -> torch.Tensor:
        """Grid coordinate field of shape ``grid.shape`` (float64; promote as needed)."""
        if name not in self.spatial_dims:
            raise ValueError(f"no coordinate {name!r}; this grid has {list(self.spatial_dims)}")
        return self.grid.meshgrid()[self.spatial_dims.index(name)]

    def inverse_laplacian(self, u: torch.Tensor) -> torch.Tensor:
        """The zero-mean ``psi`` with ``laplacian(psi) = u - mean(u)`` (periodic Poisson solve)."""
        key = ("inverse_laplacian", u.real.dtype, str(u.device))
        if key not in self._symbols:
            k2 = sum(k**2 for k in self.grid.wavenumbers(u.real.dtype, u.device))
            self._symbols[key] = torch.where(k2 == 0, torch.zeros_like(k2),
                                             -1.0 / torch.where(k2 == 0, 1.0, k2))
        return self.inverse(self.transform(u) * self._symbols[key])


class AutogradDerivatives(Derivatives):
    """Exact derivatives of a pointwise network output with respect to its input coordinates.

    Args:
        coords: named coordinate tensors, each ``[P]`` or ``[P, 1]`` with ``requires_grad=True``,
            from which ``u`` was computed point by point (e.g. ``{"x": x, "t": t}``).

    ``u`` is ``[P]`` or ``[P, 1]``: one value per point. Intermediate derivatives are cached, so
    ``d.x(u)`` followed by ``d.xx(u)`` runs one backward pass for the first derivative, not two.
    """

    def __init__(self, coords: dict[str, torch.Tensor]):
        for name, value in coords.items():
            if name not in _SPATIAL + ("t",):
                raise ValueError(f"coordinate names must be among x, y, z, t; got {name!r}")
            if not value.requires_grad:
                raise ValueError(f"coordinate {name!r} must have requires_grad=True")
        self.coords = coords
        self.spatial_dims = tuple(n for n in _SPATIAL if n in coords)
        self._cache: dict[tuple[int, str], tuple[torch.Tensor, torch.Tensor]] = {}

    def _first(self, u: torch.Tensor, name: str) -> torch.Tensor:
        key = (id(u), name)
        hit = self._cache.get(key)
        if hit is not None and hit[0] is u:
            return hit[1]
        if not u.requires_grad:  # constant in every coordinate (e.g. d/dx of 3 x)
            return torch.zeros_like(u)
        (grad,) = torch.autograd.grad(
            u, self.coords[name], grad_outputs=torch.ones_like(u), create_graph=True,
            allow_unused=True,
        )
        if grad is None:  # u does not depend on this coordinate
            grad = torch.zeros_like(self.coords[name])
        grad = grad.reshape(u.shape)
        self._cache[key] = (u, grad)
        return grad

    def coordinate(self, name: str) -> torch.Tensor:
        """The collocation coordinate ``name`` (``[P]`` or ``[P, 1]``, as given)."""
        if name not in self.coords:
            raise ValueError(f"no coordinate {name!r}; the points have {list(self.coords)}")
        return self.coords[name]

    def derivative(self, u: torch.Tensor, **orders: int) -> torch.Tensor:
        orders = self._check_orders(orders, tuple(self.coords))
        for name, n in orders.items():
            for _ in range(n):
                u = self._first(u, name)
        return u
