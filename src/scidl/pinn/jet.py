"""Forward-mode (Taylor-mode) derivatives of coordinate networks, up to second order.

A PINN needs ``u``, ``u_x``, ``u_t``, ``u_xx``... at every collocation point. Reverse mode gets them
by calling ``autograd.grad`` once per derivative, each call building a graph that training must
then differentiate again (double backward). For a network made of linear layers and smooth
activations there is a cheaper way: push the derivatives forward through the layers with the chain
rule, alongside the values,

    z = W a + b          ->  z_i = W a_i,            z_ij = W a_ij
    a = f(z)             ->  a_i = f'(z) z_i,         a_ij = f'(z) z_ij + f''(z) z_i z_j

so one forward pass yields every derivative, as ordinary tensors, and training needs only one
ordinary backward pass. The whole computation is also plain tensor code that ``torch.compile``
fuses (it cannot compile double backward), which is where most of the speed comes from on a CPU;
``benchmarks/pinn_derivatives.py`` measures the variants.

:class:`Jet` holds a value and its derivatives; :func:`jet_forward` pushes a jet through a module
(``nn.Linear``, ``nn.Sequential``, the activations in :data:`ACTIVATION_DERIVATIVES`, or any module
with a ``jet`` method); :class:`JetDerivatives` is the derivative operator a PDE's ``rhs`` is
evaluated with, serving the precomputed derivatives.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from torch import nn

from scidl.numerics.derivatives import AutogradDerivatives, Derivatives


class JetUnsupported(TypeError):
    """A module or an order the forward-mode path cannot differentiate."""


def pair(a: int, b: int) -> tuple[int, int]:
    return (a, b) if a <= b else (b, a)


@dataclass
class Jet:
    """Values ``[P, k]`` with first derivatives ``d1[i]`` and second derivatives ``d2[(i, j)]``
    (``i <= j``) along input coordinates ``i, j``, all ``[P, k]``."""

    value: torch.Tensor
    d1: dict[int, torch.Tensor] = field(default_factory=dict)
    d2: dict[tuple[int, int], torch.Tensor] = field(default_factory=dict)

    @classmethod
    def identity(cls, x: torch.Tensor, first: Iterable[int],
                 second: Iterable[tuple[int, int]] = ()) -> Jet:
        """The jet of the coordinates ``x [P, D]`` themselves: ``d1[i] = e_i``, ``d2 = 0``."""
        first = sorted(set(first) | {i for ij in second for i in ij})
        d1 = {}
        for i in first:
            e = torch.zeros(x.shape[-1], dtype=x.dtype, device=x.device)
            e[i] = 1.0
            d1[i] = e.expand_as(x)
        d2 = {pair(*ij): torch.zeros((), dtype=x.dtype, device=x.device).expand_as(x)
              for ij in second}
        return cls(x, d1, d2)

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor], value_fn=None) -> Jet:
        """Apply a linear map ``fn`` to every derivative (and ``value_fn or fn`` to the value)."""
        return Jet((value_fn or fn)(self.value), {i: fn(v) for i, v in self.d1.items()},
                   {ij: fn(v) for ij, v in self.d2.items()})

    def apply(self, f0: torch.Tensor, f1: torch.Tensor, f2: torch.Tensor) -> Jet:
        """Chain rule for an elementwise function with values ``f0, f1 = f', f2 = f''`` at
        ``self.value``."""
        d2 = {(i, j): f1 * v + f2 * self.d1[i] * self.d1[j] for (i, j), v in self.d2.items()}
        return Jet(f0, {i: f1 * v for i, v in self.d1.items()}, d2)

    def __add__(self, other):
        if isinstance(other, Jet):
            return Jet(self.value + other.value, _merge(self.d1, other.d1),
                       _merge(self.d2, other.d2))
        return Jet(self.value + other, dict(self.d1), dict(self.d2))

    __radd__ = __add__

    def __neg__(self):
        return self.map(torch.neg)

    def __sub__(self, other):
        return self + (-other)

    def __rsub__(self, other):
        return (-self) + other

    def __mul__(self, other):
        if not isinstance(other, Jet):
            return self.map(lambda v: v * other)
        a, b = self, other
        d1 = {i: a.d1.get(i, 0) * b.value + a.value * b.d1.get(i, 0)
              for i in set(a.d1) | set(b.d1)}
        d2 = {}
        for i, j in set(a.d2) | set(b.d2):
            term = a.d2.get((i, j), 0) * b.value + a.value * b.d2.get((i, j), 0)
            term = term + a.d1.get(i, 0) * b.d1.get(j, 0) + a.d1.get(j, 0) * b.d1.get(i, 0)
            d2[(i, j)] = term
        return Jet(a.value * b.value, d1, d2)

    __rmul__ = __mul__

    def __getitem__(self, index) -> Jet:
        return self.map(lambda v: v[index])

    @staticmethod
    def cat(jets: list[Jet], dim: int = -1) -> Jet:
        """Concatenate jets along the feature dimension."""
        first = set().union(*(j.d1 for j in jets))
        second = set().union(*(j.d2 for j in jets))

        def part(j: Jet, source: dict, key):
            v = source.get(key)
            return torch.zeros_like(j.value) if v is None else v.expand_as(j.value)

        return Jet(torch.cat([j.value for j in jets], dim),
                   {i: torch.cat([part(j, j.d1, i) for j in jets], dim) for i in first},
                   {ij: torch.cat([part(j, j.d2, ij) for j in jets], dim) for ij in second})


def _merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for key, value in b.items():
        out[key] = out[key] + value if key in out else value
    return out


# ------------------------------------------------------------------------- elementwise functions

def _tanh(z):
    s = torch.tanh(z)
    ds = 1 - s * s
    return s, ds, -2 * s * ds


def _sigmoid(z):
    s = torch.sigmoid(z)
    ds = s * (1 - s)
    return s, ds, ds * (1 - 2 * s)


def _silu(z):
    s = torch.sigmoid(z)
    return z * s, s * (1 + z * (1 - s)), s * (1 - s) * (2 + z * (1 - 2 * s))


def _gelu(z):
    cdf = 0.5 * (1 + torch.erf(z / math.sqrt(2)))
    pdf = torch.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    return z * cdf, cdf + z * pdf, pdf * (2 - z * z)


def _softplus(z):
    s = torch.sigmoid(z)
    return nn.functional.softplus(z), s, s * (1 - s)


def _sin(z):
    s = torch.sin(z)
    return s, torch.cos(z), -s


def _cos(z):
    c = torch.cos(z)
    return c, -torch.sin(z), -c


def _relu(z):
    step = (z > 0).to(z.dtype)
    return torch.relu(z), step, torch.zeros_like(z)


#: elementwise functions and ``z -> (f, f', f'')``
ELEMENTWISE = {"tanh": _tanh, "sigmoid": _sigmoid, "silu": _silu, "gelu": _gelu,
               "softplus": _softplus, "sin": _sin, "cos": _cos, "relu": _relu}

#: activation modules the forward-mode path knows
ACTIVATION_DERIVATIVES: dict[type, Callable] = {
    nn.Tanh: _tanh, nn.Sigmoid: _sigmoid, nn.SiLU: _silu, nn.Softplus: _softplus,
    nn.ReLU: _relu,
}


def elementwise(jet: Jet, name: str) -> Jet:
    """``f(jet)`` for ``f`` one of :data:`ELEMENTWISE`."""
    return jet.apply(*ELEMENTWISE[name](jet.value))


def jet_forward(module: nn.Module, jet: Jet) -> Jet:
    """Push ``jet`` through ``module``.

    Raises:
        JetUnsupported: ``module`` is none of the known kinds and has no ``jet`` method.
    """
    if hasattr(module, "jet"):
        return module.jet(jet)
    if isinstance(module, nn.Linear):
        return jet.map(lambda v: v @ module.weight.t(),
                       lambda v: nn.functional.linear(v, module.weight, module.bias))
    if isinstance(module, nn.Sequential):
        for child in module:
            jet = jet_forward(child, jet)
        return jet
    if isinstance(module, nn.GELU) and module.approximate == "none":
        return jet.apply(*_gelu(jet.value))
    rule = ACTIVATION_DERIVATIVES.get(type(module))
    if rule is None:
        raise JetUnsupported(
            f"forward-mode derivatives do not know {type(module).__name__}; give it a "
            "`jet(self, jet)` method or use derivatives='autograd'"
        )
    return jet.apply(*rule(jet.value))


def function_jet(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                 first: Iterable[int], second: Iterable[tuple[int, int]]) -> Jet:
    """The jet of a parameter-free function of the coordinates ``fn(x [P, D]) -> [P, k]``, by
    reverse-mode autograd (``k`` small: one backward pass per output column and order).

    The result is detached: it is a constant of training (a hard-constraint factor, a given
    forcing), so the forward-mode path stays free of double backward.
    """
    first = sorted(set(first) | {i for ij in second for i in ij})
    with torch.enable_grad():
        xg = x.detach().requires_grad_(True)
        y = fn(xg)
        if y.ndim == 1:
            y = y[:, None]
        columns = range(y.shape[-1])
        d1 = {i: [] for i in first}
        d2 = {pair(*ij): [] for ij in second}
        for c in columns:
            if not y.requires_grad:
                for i in first:
                    d1[i].append(torch.zeros_like(y[:, c]))
                for ij in d2:
                    d2[ij].append(torch.zeros_like(y[:, c]))
                continue
            (grad,) = torch.autograd.grad(y[:, c].sum(), xg, create_graph=bool(d2),
                                          allow_unused=True)
            grad = torch.zeros_like(xg) if grad is None else grad
            for i in first:
                d1[i].append(grad[:, i])
            for i, j in d2:
                if grad.requires_grad:
                    (g2,) = torch.autograd.grad(grad[:, i].sum(), xg, retain_graph=True,
                                                allow_unused=True)
                    d2[(i, j)].append(torch.zeros_like(xg[:, 0]) if g2 is None else g2[:, j])
                else:
                    d2[(i, j)].append(torch.zeros_like(xg[:, 0]))
    stack = lambda parts: torch.stack(parts, -1).detach()  # noqa: E731
    return Jet(y.detach(), {i: stack(v) for i, v in d1.items()},
               {ij: stack(v) for ij, v in d2.items()})


# ------------------------------------------------------------------- the derivative operator

def _key(t: torch.Tensor):
    return t.untyped_storage().data_ptr()


class RecordingDerivatives(Derivatives):
    """Answers every derivative with zeros and records the orders asked for: run a PDE's
    ``rhs`` through it once to learn which derivatives its residual needs."""

    def __init__(self, names: tuple[str, ...], coords: dict[str, torch.Tensor]):
        self.spatial_dims = tuple(n for n in names if n != "t")
        self._coords = coords
        self.requested: set[tuple[str, ...]] = set()

    def derivative(self, u, **orders):
        orders = self._check_orders(orders, tuple(self._coords))
        key = tuple(sorted(n for name, k in orders.items() for n in [name] * k))
        if key:
            self.requested.add(key)
        return torch.zeros_like(u)

    def coordinate(self, name):
        return self._coords[name]


class JetDerivatives(Derivatives):
    """Derivatives of a network output ``u`` (and of any view of it, e.g. one channel) served
    from its precomputed jet; anything else (``d.x(u**2)``, third derivatives) falls back to
    reverse-mode autograd when the coordinates require grad, and fails clearly otherwise.

    Args:
        names: coordinate names, in the column order of the jet (e.g. ``("x", "t")``).
        coords: the coordinates, each ``[P, 1]`` (or laid out as the fields are).
        fields: ``(u, {orders: derivative})`` pairs, ``orders`` a sorted tuple of names such
            as ``("x", "x")``; each derivative has the layout of ``u``.
    """

    def __init__(self, names: tuple[str, ...], coords: dict[str, torch.Tensor],
                 fields: list[tuple[torch.Tensor, dict[tuple[str, ...], torch.Tensor]]]):
        self.names = names
        self.spatial_dims = tuple(n for n in names if n != "t")
        self.coords = coords
        self._fields = [(u, table) for u, table in fields]
        self._fallback = None

    def coordinate(self, name):
        if name not in self.coords:
            raise ValueError(f"no coordinate {name!r}; the points have {list(self.coords)}")
        return self.coords[name]

    def _lookup(self, u: torch.Tensor, key: tuple[str, ...]) -> torch.Tensor | None:
        for base, table in self._fields:
            if u is base:
                return table.get(key)
            if _key(u) != _key(base) or u.dtype != base.dtype:
                continue
            derivative = table.get(key)
            if derivative is None:
                return None
            # u is a view of base (a channel, a slice): take the same view of the derivative
            offset = u.storage_offset() - base.storage_offset() + derivative.storage_offset()
            return derivative.as_strided(u.shape, u.stride(), offset)
        return None

    def derivative(self, u, **orders):
        orders = self._check_orders(orders, tuple(self.coords))
        key = tuple(sorted(n for name, k in orders.items() for n in [name] * k))
        if not key:
            return u
        found = self._lookup(u, key)
        if found is not None:
            return found
        if all(c.requires_grad for c in self.coords.values()):
            if self._fallback is None:
                self._fallback = AutogradDerivatives(self.coords)
            return self._fallback.derivative(u, **orders)
        raise JetUnsupported(
            f"the forward-mode derivatives do not have d{key} of this tensor (only derivatives "
            "up to second order of the network output itself); use derivatives='autograd'"
        )
