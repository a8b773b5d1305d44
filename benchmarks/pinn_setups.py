"""The problems behind ``benchmarks/pinn_problems.py`` (and its tests): exact solutions,
references and the ``PINNProblem`` of each variant."""

from __future__ import annotations

import math

import numpy as np
import torch

from scidl.data.pinn_reference import load_scattered_reference
from scidl.pdes import AllenCahn, Heat, Poisson, Wave
from scidl.pinn import (
    Balancing,
    DirichletBC,
    HardConstraint,
    InitialCondition,
    Interval,
    PINNProblem,
    Polygon,
    Rectangle,
    Refinement,
    SpaceTime,
    TimeDomain,
)

PI = math.pi

K1, K2, A2 = 2, 8, 0.1  # u = sin(K1 pi x) sin(K1 pi y) + A2 sin(K2 pi x) sin(K2 pi y)


def poisson_exact(x, y):
    return (torch.sin(K1 * PI * x) * torch.sin(K1 * PI * y)
            + A2 * torch.sin(K2 * PI * x) * torch.sin(K2 * PI * y))


def poisson_source(x, y):
    return (2 * (K1 * PI) ** 2 * torch.sin(K1 * PI * x) * torch.sin(K1 * PI * y)
            + A2 * 2 * (K2 * PI) ** 2 * torch.sin(K2 * PI * x) * torch.sin(K2 * PI * y))


def poisson_setup(variant: str, collocation: int, n_bc: int = 512, seed: int = 0,
                  dtype=torch.float32, derivatives: str = "forward"):
    geometry = Rectangle([0, 0], [1, 1])
    pde = Poisson(source=poisson_source)
    conditions, constraint = [], None
    if variant == "soft":
        conditions = [DirichletBC(n=n_bc, value=lambda X: poisson_exact(X[:, 0], X[:, 1]),
                                  method="sobol", weight=100.0)]
    else:  # the Dirichlet data are zero: u = distance * N
        constraint = HardConstraint(None, lambda X: geometry.distance(X[:, :2]))
    problem = PINNProblem(pde, geometry, conditions, collocation=collocation, method="sobol",
                          seed=seed, dtype=dtype, derivatives=derivatives)
    return problem, constraint


LSHAPE = [[0, 0], [1, 0], [1, -1], [-1, -1], [-1, 1], [0, 1]]  # DeepXDE's Poisson_Lshape


def lshape_rfunction(X):
    x, y = X[:, 0], X[:, 1]
    r = torch.sqrt(x * x + y * y + 1e-30)
    return (1 - x * x) * (1 - y * y) * (r - x - y)


def lshape_setup(variant: str, collocation: int, n_bc: int = 512, seed: int = 0,
                 dtype=torch.float32, derivatives: str = "forward"):
    geometry = Polygon(LSHAPE)
    conditions, constraint = [], None
    if variant == "soft":
        conditions = [DirichletBC(n=n_bc, value=0.0, method="sobol", weight=100.0)]
    elif variant == "hard-distance":
        constraint = HardConstraint(None, lambda X: geometry.distance(X[:, :2]))
    else:
        constraint = HardConstraint(None, lshape_rfunction)
    problem = PINNProblem(Poisson(source=1.0), geometry, conditions, collocation=collocation,
                          method="sobol", seed=seed, dtype=dtype, derivatives=derivatives)
    return problem, constraint


def lshape_reference():
    """DeepXDE's ``Poisson_Lshape.npz`` (from ``$SCIDL_DATA/pinn``), NaN points dropped."""
    return load_scattered_reference("poisson_lshape")


def lshape_finite_differences(X: torch.Tensor, n: int = 321) -> torch.Tensor:
    """``-Laplacian u = 1``, ``u = 0`` on the L-shape by the 5-point scheme on an ``n x n`` grid
    of ``[-1, 1]^2`` (``h = 2 / (n - 1)``), interpolated (bilinear) to the points ``X``: an
    independent check of the DeepXDE reference (the maximum at ``n = 81, 161, 321`` is 0.14910,
    0.14929, 0.14937)."""
    import scipy.sparse as sp
    import scipy.sparse.linalg as sla

    h = 2 / (n - 1)
    g = np.linspace(-1, 1, n)
    xx, yy = np.meshgrid(g, g, indexing="ij")
    eps = 1e-12
    inside = (~((xx >= -eps) & (yy >= -eps)) & (np.abs(xx) < 1 - eps) & (np.abs(yy) < 1 - eps))
    ids = -np.ones((n, n), dtype=np.int64)
    ids[inside] = np.arange(inside.sum())
    I, J = np.nonzero(inside)
    k = ids[I, J]
    rows, cols, vals = [k], [k], [np.full(len(k), 4 / h**2)]
    for di, dj in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        m = ids[I + di, J + dj]
        ok = m >= 0
        rows.append(k[ok])
        cols.append(m[ok])
        vals.append(np.full(int(ok.sum()), -1 / h**2))
    A = sp.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                      shape=(len(k), len(k)))
    U = np.zeros((n, n))
    U[inside] = sla.spsolve(A, np.ones(len(k)))
    from scipy.interpolate import RegularGridInterpolator

    return torch.as_tensor(RegularGridInterpolator((g, g), U)(X.numpy()))


NU = 0.05


def heat_exact(X):
    x, t = X[:, 0], X[:, 1]
    return (torch.sin(PI * x) * torch.exp(-NU * PI**2 * t)
            + 0.5 * torch.sin(3 * PI * x) * torch.exp(-9 * NU * PI**2 * t))


def heat_setup(variant: str, collocation: int, seed: int = 0, dtype=torch.float32,
               derivatives: str = "forward"):
    domain = SpaceTime(Interval(0, 1), TimeDomain(0, 1))
    conditions, constraint = [], None
    if variant == "soft":
        conditions = [InitialCondition(n=512, value=heat_exact, method="sobol", weight=10.0),
                      DirichletBC(n=512, value=0.0, method="sobol", weight=10.0)]
    else:
        constraint = HardConstraint(heat_offset,  # u(x, 0) exact, zero on x = 0, 1
                                    lambda X: X[:, 1] * X[:, 0] * (1 - X[:, 0]))
    problem = PINNProblem(Heat(NU), domain, conditions, collocation=collocation, method="sobol",
                          seed=seed, dtype=dtype, derivatives=derivatives)
    return problem, constraint


def heat_offset(X):
    x = X[:, 0]
    return torch.sin(PI * x) + 0.5 * torch.sin(3 * PI * x)


C = 2.0
WAVE_UNITS = 4 * PI


def wave_exact(X):
    """``[P, 2]``: displacement and velocity of PINNacle's Wave1d-C solution."""
    x, t = X[:, 0], X[:, 1]
    u = torch.sin(PI * x) * torch.cos(2 * PI * t) + 0.5 * torch.sin(4 * PI * x) * torch.cos(
        8 * PI * t)
    v = (-2 * PI * torch.sin(PI * x) * torch.sin(2 * PI * t)
         - 4 * PI * torch.sin(4 * PI * x) * torch.sin(8 * PI * t))
    return torch.stack([u, v], 1)


def wave_initial(X):
    x = X[:, 0]
    u0 = torch.sin(PI * x) + 0.5 * torch.sin(4 * PI * x)
    return torch.stack([u0, torch.zeros_like(u0)], 1)


def wave_setup(variant: str, collocation: int, seed: int = 0, dtype=torch.float32,
               derivatives: str = "forward"):
    """Wave1d-C; a ``-nondim`` variant works in the units ``x' = L x, t' = L t`` with
    ``L = 4 pi`` (the same equation, ``u_t't' = c^2 u_x'x'``, on ``[0, L]^2``), where the velocity
    ``v' = v / L`` and ``c^2 u_x'x'`` are O(1) instead of O(10) and O(300)."""
    L = WAVE_UNITS if variant.endswith("-nondim") else 1.0
    domain = SpaceTime(Interval(0, L), TimeDomain(0, L))

    def initial(X):
        return wave_initial(X / L)

    conditions, constraint = [], None
    if variant.startswith("soft"):
        conditions = [InitialCondition(n=512, value=initial, method="sobol", weight=10.0),
                      DirichletBC(n=512, value=0.0, method="sobol", weight=10.0)]
    else:
        constraint = HardConstraint(initial, lambda X: (X[:, 1] / L) * (X[:, 0] / L)
                                    * (1 - X[:, 0] / L))
    # "-weighted": original units, the velocity equation weighted down by 1 / (4 pi) inside the
    # residual term instead of rescaling the coordinates
    weights = [1.0, 1.0 / WAVE_UNITS] if variant.endswith("-weighted") else None
    problem = PINNProblem(Wave(C), domain, conditions, collocation=collocation, method="sobol",
                          seed=seed, dtype=dtype, derivatives=derivatives,
                          channel_weights=weights)
    return problem, constraint, L


def ac_u0(X):
    x = X[:, 0]
    return x * x * torch.cos(PI * x)


def allen_cahn_setup(hard: bool, collocation: int, rar: Refinement | None = None,
                     balancing: Balancing | None = None, seed: int = 0, dtype=torch.float32,
                     derivatives: str = "forward"):
    domain = SpaceTime(Interval(-1, 1), TimeDomain(0, 1))
    conditions, constraint = [], None
    if hard:
        constraint = HardConstraint(ac_u0, lambda X: X[:, 1] * (1 - X[:, 0] ** 2))
    else:
        conditions = [InitialCondition(n=512, value=ac_u0, method="sobol"),
                      DirichletBC(n=256, value=-1.0, method="sobol")]
    problem = PINNProblem(AllenCahn(1e-3, 5.0), domain, conditions, collocation=collocation,
                          method="sobol", refinement=rar, balancing=balancing, seed=seed,
                          dtype=dtype, derivatives=derivatives)
    return problem, constraint


