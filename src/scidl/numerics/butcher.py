"""Explicit Runge-Kutta methods given by their Butcher tableau.

A method is its tableau: ``c`` (nodes), ``a`` (strictly lower-triangular coefficients), ``b``
(weights) and, for embedded pairs, ``b_hat`` (the weights of the lower-order solution used to
estimate the local error). The tableau checks its own consistency when it is built: the row sums
of ``a`` equal ``c`` and ``b`` (``b_hat``) satisfy every order condition up to the claimed order,
one per rooted tree (Butcher, "Numerical Methods for Ordinary Differential Equations", 3rd ed.,
2016, Sec. 31; Hairer, Norsett & Wanner I, Sec. II.2). Solvers built on it:
:func:`odeint_fixed` here, :func:`scidl.numerics.dopri5.odeint_adaptive`, and
:class:`ButcherStepper` for :func:`scidl.numerics.simulate`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from scidl.numerics.steppers import Linear, Nonlinear, SemilinearStepper, Step, apply_linear

#: ``f(t, y) -> dy/dt``; ``t`` is a 0-dim tensor of ``y``'s real dtype.
VectorField = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

# A rooted tree is the sorted tuple of its children's subtrees; the single node is ``()``.
_Tree = tuple


@dataclass(frozen=True)
class ButcherTableau:
    """An explicit (embedded) Runge-Kutta method with ``s`` stages.

    Args:
        name: for messages.
        c: nodes ``[s]``, ``c[0] = 0``.
        a: ragged lower triangle: ``a[i]`` holds the ``i + 1`` coefficients of stage ``i + 1``.
        b: weights ``[s]`` of the solution, of order ``order``.
        order: the order that ``b`` is checked to reach.
        b_hat: weights ``[s]`` of the embedded solution, of order ``embedded_order``, or None.
        embedded_order: the order that ``b_hat`` is checked to reach.

    Raises:
        ValueError: a shape is wrong, the method is not explicit, a row sum differs from its
            node, or an order condition fails (the message names the tree).
    """

    name: str
    c: tuple[float, ...]
    a: tuple[tuple[float, ...], ...]
    b: tuple[float, ...]
    order: int
    b_hat: tuple[float, ...] | None = None
    embedded_order: int | None = None

    def __post_init__(self):
        for field in ("c", "b", "b_hat"):
            if getattr(self, field) is not None:
                object.__setattr__(self, field, tuple(float(x) for x in getattr(self, field)))
        object.__setattr__(self, "a", tuple(tuple(float(x) for x in row) for row in self.a))
        self._check_shapes()
        matrix = self.matrix()
        scale = 1e-12 * max(1.0, float(np.abs(matrix).max()))
        for i, row_sum in enumerate(matrix.sum(axis=1)):
            if abs(row_sum - self.c[i]) > scale:
                raise ValueError(f"{self.name}: row {i} of a sums to {row_sum:.17g}, "
                                 f"but c[{i}] = {self.c[i]:.17g}")
        _check_order_conditions(self.name, "b", matrix, np.array(self.b), self.order)
        if self.b_hat is not None:
            _check_order_conditions(self.name, "b_hat", matrix, np.array(self.b_hat),
                                    self.embedded_order)

    def _check_shapes(self) -> None:
        s = len(self.c)
        if s < 1 or len(self.b) != s or self.c[0] != 0:
            raise ValueError(f"{self.name}: need c[0] = 0 and len(b) = len(c), got c={self.c}, "
                             f"b={self.b}")
        if [len(row) for row in self.a] != list(range(1, s)):
            raise ValueError(f"{self.name}: a must be explicit, rows of lengths 1..{s - 1} "
                             f"(strictly lower triangle), got {[len(row) for row in self.a]}")
        if (self.b_hat is None) != (self.embedded_order is None):
            raise ValueError(f"{self.name}: give both b_hat and embedded_order, or neither")
        if self.b_hat is not None and len(self.b_hat) != s:
            raise ValueError(f"{self.name}: b_hat needs {s} weights, got {len(self.b_hat)}")
        if self.order < 1:
            raise ValueError(f"{self.name}: order must be >= 1, got {self.order}")

    @property
    def stages(self) -> int:
        return len(self.c)

    @property
    def fsal(self) -> bool:
        """First same as last: the last stage is ``f(t + h, y_new)``, the next step's first."""
        return (self.stages > 1 and self.c[-1] == 1.0 and self.a[-1] == self.b[:-1]
                and self.b[-1] == 0.0)

    @property
    def b_error(self) -> tuple[float, ...] | None:
        """``b - b_hat``: ``h sum_i (b - b_hat)_i k_i`` estimates the local error."""
        if self.b_hat is None:
            return None
        return tuple(x - y for x, y in zip(self.b, self.b_hat, strict=True))

    def matrix(self) -> np.ndarray:
        """The full ``[s, s]`` coefficient matrix ``a``."""
        matrix = np.zeros((self.stages, self.stages))
        for i, row in enumerate(self.a, start=1):
            matrix[i, :i] = row
        return matrix

    def embedded(self) -> ButcherTableau:
        """The embedded method (weights ``b_hat``) as a tableau of its own."""
        if self.b_hat is None:
            raise ValueError(f"{self.name} has no embedded method")
        return ButcherTableau(f"{self.name} (embedded)", self.c, self.a, self.b_hat,
                              self.embedded_order)


def rooted_trees(order: int) -> list[_Tree]:
    """All rooted trees with ``order`` nodes (1, 1, 2, 4, 9, 20, ... of them)."""
    trees: dict[int, list[_Tree]] = {1: [()]}
    for n in range(2, order + 1):
        trees[n] = sorted({tuple(sorted(forest)) for forest in _forests(n - 1, trees)})
    return trees[order]


def _forests(total: int, trees: dict[int, list[_Tree]]) -> Iterator[tuple[_Tree, ...]]:
    if total == 0:
        yield ()
        return
    for k in range(1, total + 1):
        for tree in trees[k]:
            for rest in _forests(total - k, trees):
                yield (tree, *rest)


def _tree_order(tree: _Tree) -> int:
    return 1 + sum(_tree_order(child) for child in tree)


def _tree_density(tree: _Tree) -> int:
    """``gamma(t)``: the order condition reads ``b . Phi(t) = 1 / gamma(t)``."""
    return _tree_order(tree) * math.prod(_tree_density(child) for child in tree)


def _elementary_weights(tree: _Tree, matrix: np.ndarray) -> np.ndarray:
    """``Phi_i(t) = prod_children (a Phi(child))_i`` (the single node gives ones)."""
    weights = np.ones(matrix.shape[0])
    for child in tree:
        weights = weights * (matrix @ _elementary_weights(child, matrix))
    return weights


def _check_order_conditions(name: str, field: str, matrix: np.ndarray, weights: np.ndarray,
                            order: int) -> None:
    for n in range(1, order + 1):
        for tree in rooted_trees(n):
            value = float(weights @ _elementary_weights(tree, matrix))
            expected = 1.0 / _tree_density(tree)
            if abs(value - expected) > 1e-12 * max(1.0, float(np.abs(weights).sum())):
                raise ValueError(
                    f"{name}: {field} fails the order-{n} condition for the tree "
                    f"{_tree_text(tree)}: sum = {value:.17g}, expected 1/{_tree_density(tree)}"
                )


def _tree_text(tree: _Tree) -> str:
    return "[" + "".join(_tree_text(child) for child in tree) + "]"


def rk_step(f: VectorField, t: float, y: torch.Tensor, h: float, tableau: ButcherTableau,
            k1: torch.Tensor | None = None
            ) -> tuple[torch.Tensor, torch.Tensor | None, list[torch.Tensor]]:
    """One explicit RK step: ``(y(t + h), local error estimate or None, stages)``.

    ``k1 = f(t, y)`` may be passed in (first same as last); ``f`` is called with float ``t``.
    """
    stages = [f(t, y) if k1 is None else k1]
    for node, row in zip(tableau.c[1:], tableau.a):
        stages.append(f(t + node * h, y + h * _combine(row, stages)))
    y_new = y + h * _combine(tableau.b, stages)
    b_error = tableau.b_error
    error = None if b_error is None else h * _combine(b_error, stages)
    return y_new, error, stages


def _combine(coefficients: Sequence[float], stages: list[torch.Tensor]) -> torch.Tensor:
    terms = [coefficient * k for coefficient, k in zip(coefficients, stages) if coefficient != 0]
    return sum(terms[1:], terms[0]) if terms else torch.zeros_like(stages[0])


def with_tensor_time(f: VectorField, y0: torch.Tensor) -> Callable:
    """``f`` called with a float time, which it receives as a 0-dim tensor like ``y0.real``."""
    def g(t: float, y: torch.Tensor) -> torch.Tensor:
        return f(torch.tensor(t, dtype=y0.real.dtype, device=y0.device), y)
    return g


def odeint_fixed(f: VectorField, y0: torch.Tensor, t: torch.Tensor | Sequence[float],
                 *, tableau: ButcherTableau) -> torch.Tensor:
    """Integrate ``y' = f(t, y)`` with one step of ``tableau`` per interval of ``t``.

    Differentiable by backpropagation through the steps. Replaying the ``step_times`` of an
    :func:`~scidl.numerics.dopri5.odeint_adaptive` solution gives its numbers with the step
    sequence held fixed.

    Shapes:
        y0: any shape, real or complex. t: ``[T]`` increasing. Returns ``[T, *y0.shape]``.
    """
    times = torch.as_tensor(t, dtype=torch.float64).flatten().tolist()
    if not times or any(b <= a for a, b in zip(times, times[1:])):
        raise ValueError("t must be a non-empty, strictly increasing sequence of times")
    rhs = with_tensor_time(f, y0)
    states = [y0]
    for start, end in zip(times, times[1:]):
        states.append(rk_step(rhs, start, states[-1], end - start, tableau)[0])
    return torch.stack(states)


@dataclass(frozen=True)
class ButcherStepper(SemilinearStepper):
    """Any explicit RK method for ``v' = L v + N(v)``, taken as one explicit system.

    ``ButcherStepper(CLASSIC_RK4)`` is :class:`~scidl.numerics.RK4`. Explicit, so only for
    non-stiff problems: ``h L`` (its eigenvalues, for a block symbol) must lie in the method's
    stability region (down to about -2.8 for RK4 and -3.3 for DOPRI5 on the real axis).
    """

    tableau: ButcherTableau

    @property
    def order(self) -> int:
        return self.tableau.order

    def prepare(self, linear: Linear, h: float, nonlinear: Nonlinear) -> Step:
        def f(_t: float, v: torch.Tensor) -> torch.Tensor:
            return apply_linear(linear, v) + nonlinear(v)

        def step(v: torch.Tensor) -> torch.Tensor:
            return rk_step(f, 0.0, v, h, self.tableau)[0]

        return step


#: The classical fourth-order method of Kutta (1901).
CLASSIC_RK4 = ButcherTableau(
    "RK4", c=(0, 1 / 2, 1 / 2, 1), a=((1 / 2,), (0, 1 / 2), (0, 0, 1)),
    b=(1 / 6, 1 / 3, 1 / 3, 1 / 6), order=4,
)

#: Bogacki & Shampine, Appl. Math. Lett. 2 (1989): 3(2) pair, first same as last.
BOGACKI_SHAMPINE = ButcherTableau(
    "Bogacki-Shampine 3(2)", c=(0, 1 / 2, 3 / 4, 1),
    a=((1 / 2,), (0, 3 / 4), (2 / 9, 1 / 3, 4 / 9)),
    b=(2 / 9, 1 / 3, 4 / 9, 0), order=3,
    b_hat=(7 / 24, 1 / 4, 1 / 3, 1 / 8), embedded_order=2,
)
