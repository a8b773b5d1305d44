"""Elliptic solves: periodic Poisson by FFT, and ``-div(a grad u) = f`` with zero Dirichlet data by
finite differences and a sparse direct solve, differentiable through an adjoint.

The finite-difference problems live on an ``s x s`` grid of *nodes* ``x_i = i h``, ``h = L/(s-1)``,
boundary included, as in the FNO paper's Darcy data (Li et al., ICLR 2021; its ``solve_gwf.m``).
Fields are ``[B, s, s]`` or ``[s, s]``; ``u`` is returned on the same nodes, zero on the boundary.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

from scidl.errors import ShapeError
from scidl.numerics.derivatives import SpectralDerivatives
from scidl.numerics.grids import PeriodicGrid

_AVERAGES = ("arithmetic", "harmonic")


def solve_poisson_periodic(f: torch.Tensor, grid: PeriodicGrid) -> torch.Tensor:
    """The zero-mean ``u`` with ``-Laplacian(u) = f - mean(f)`` on a periodic grid, by FFT.

    Spectrally accurate: exact (to round-off) for trigonometric polynomials the grid resolves.

    Shapes:
        f: ``[..., *grid.shape]``; returns the same shape, dtype and device.
    """
    return -SpectralDerivatives(grid).inverse_laplacian(f)


def solve_poisson_dirichlet(f: torch.Tensor, *, length: float = 1.0) -> torch.Tensor:
    """``-Laplacian(u) = f`` on the square ``(0, L)^2``, ``u = 0`` on its boundary.

    Second-order 5-point finite differences on the nodes (see module docstring); the values of
    ``f`` on the boundary nodes are not used. Differentiable with respect to ``f``.

    Shapes:
        f: ``[B, s, s]`` or ``[s, s]``; returns the same shape.
    """
    return solve_darcy(torch.ones_like(f), f, length=length)


def face_coefficients(a: torch.Tensor, average: str = "arithmetic"
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """Coefficients on the faces between neighbouring nodes, from nodal values ``a [..., s, s]``.

    ``"arithmetic"``: ``(a_i + a_j) / 2``, as the FNO paper's ``solve_gwf.m``; ``"harmonic"``:
    ``2 a_i a_j / (a_i + a_j)``, the flux-continuous choice for piecewise-constant media.

    Returns:
        ``(a_x [..., s-1, s], a_y [..., s, s-1])``: faces between ``(i, j)`` and ``(i+1, j)``,
        and between ``(i, j)`` and ``(i, j+1)``.
    """
    if average not in _AVERAGES:
        raise ValueError(f"average must be one of {list(_AVERAGES)}, got {average!r}")
    pairs = ((a[..., :-1, :], a[..., 1:, :]), (a[..., :, :-1], a[..., :, 1:]))
    if average == "arithmetic":
        return tuple((p + q) / 2 for p, q in pairs)
    return tuple(2 * p * q / (p + q) for p, q in pairs)


def solve_darcy(a: torch.Tensor, f: torch.Tensor, *, average: str = "arithmetic",
                length: float = 1.0) -> torch.Tensor:
    """Solve ``-div(a grad u) = f`` on ``(0, L)^2`` with ``u = 0`` on the boundary.

    The conservative 5-point scheme
    ``sum_faces a_face (u_node - u_neighbour) / h^2 = f_node`` at each interior node, with the
    face coefficients of :func:`face_coefficients`; second order for smooth ``a``. Each sample's
    sparse matrix is factorised once by SuperLU. The result is differentiable with respect to
    ``a`` and ``f`` by the adjoint rule: the backward pass costs one transposed solve with the
    stored factors per sample (:class:`_ConductanceSolve`).

    Args:
        a: coefficient at the nodes, ``[B, s, s]`` or ``[s, s]``, positive.
        f: source at the nodes, same shape; its boundary values are not used.
        average: how ``a`` is carried to the faces, ``"arithmetic"`` or ``"harmonic"``.
        length: side ``L`` of the square.

    Returns:
        ``u`` with the shape, dtype and device of ``f`` (computed in float64 on the CPU).
    """
    if a.shape != f.shape or a.ndim not in (2, 3) or a.shape[-1] != a.shape[-2]:
        raise ShapeError(
            f"a and f must both be [B, s, s] or [s, s] with the same shape, got {tuple(a.shape)} "
            f"and {tuple(f.shape)}"
        )
    if a.shape[-1] < 3:
        raise ShapeError(f"the grid needs at least 3 nodes per side, got {a.shape[-1]}")
    if not (torch.isfinite(a).all() and torch.isfinite(f).all()):
        raise ValueError("a and f must be finite")
    if not bool((a > 0).all()):
        raise ValueError("the coefficient a must be positive everywhere")
    single = a.ndim == 2
    a, f = (a[None], f[None]) if single else (a, f)
    a_x, a_y = face_coefficients(a, average)
    h = length / (a.shape[-1] - 1)
    u = _ConductanceSolve.apply(a_x / h**2, a_y / h**2, f)
    return u[0] if single else u


def conductance_matrix(c_x: np.ndarray, c_y: np.ndarray) -> sp.csc_matrix:
    """The sparse matrix of ``sum_faces c_face (u_node - u_neighbour)`` on the interior nodes.

    ``c_x [s-1, s]`` and ``c_y [s, s-1]`` are face conductances (see :func:`face_coefficients`);
    unknowns are the ``(s-2)^2`` interior nodes in row-major order, boundary values are zero.
    Symmetric positive definite for positive conductances.
    """
    s = c_x.shape[1]
    m = s - 2
    index = np.arange(m * m).reshape(m, m)
    west, east = c_x[:-1, 1:-1], c_x[1:, 1:-1]  # faces at i-1/2 and i+1/2 of interior nodes
    south, north = c_y[1:-1, :-1], c_y[1:-1, 1:]
    diagonal = (west + east + south + north).ravel()
    rows, cols, values = [index.ravel()], [index.ravel()], [diagonal]
    # couplings between interior neighbours along x (first axis) and y (second axis)
    for first, second, coupling in (
        (index[:-1, :], index[1:, :], c_x[1:-1, 1:-1]),
        (index[:, :-1], index[:, 1:], c_y[1:-1, 1:-1]),
    ):
        rows += [first.ravel(), second.ravel()]
        cols += [second.ravel(), first.ravel()]
        values += [-coupling.ravel(), -coupling.ravel()]
    matrix = sp.coo_matrix(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))), shape=(m * m,) * 2
    )
    return matrix.tocsc()


class _ConductanceSolve(torch.autograd.Function):
    """``u = A(c)^-1 f`` per sample, with the adjoint rule for the gradients.

    For a loss ``J(u)`` with ``g = dJ/du``: ``lambda = A^-T g`` (one solve with the stored LU
    factors), ``dJ/df = lambda`` on the interior nodes, and, since ``A`` is linear in the face
    conductances, ``dJ/dc_face = -(lambda_p - lambda_q)(u_p - u_q)`` for the face between nodes
    ``p`` and ``q`` (boundary values zero).
    """

    @staticmethod
    def forward(ctx, c_x: torch.Tensor, c_y: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        keep_factors = any(ctx.needs_input_grad)
        c_x64, c_y64 = (c.detach().cpu().double().numpy() for c in (c_x, c_y))
        f64 = f.detach().cpu().double().numpy()
        solution = np.zeros_like(f64)
        factors = []
        for b in range(f64.shape[0]):
            lu = spla.splu(conductance_matrix(c_x64[b], c_y64[b]), permc_spec="MMD_AT_PLUS_A")
            solution[b, 1:-1, 1:-1] = lu.solve(f64[b, 1:-1, 1:-1].ravel()).reshape(
                f64.shape[1] - 2, -1
            )
            if keep_factors:
                factors.append(lu)
        u = torch.from_numpy(solution).to(dtype=f.dtype, device=f.device)
        ctx.factors = factors
        ctx.save_for_backward(u)
        return u

    @staticmethod
    def backward(ctx, grad_u: torch.Tensor):
        (u,) = ctx.saved_tensors
        g = grad_u.detach().cpu().double().numpy()
        adjoint = np.zeros_like(g)
        for b, lu in enumerate(ctx.factors):
            interior = g[b, 1:-1, 1:-1].ravel()
            adjoint[b, 1:-1, 1:-1] = lu.solve(interior, trans="T").reshape(g.shape[1] - 2, -1)
        lam = torch.from_numpy(adjoint).to(dtype=grad_u.dtype, device=grad_u.device)
        grad_c_x = -(lam[:, 1:] - lam[:, :-1]) * (u[:, 1:] - u[:, :-1])
        grad_c_y = -(lam[:, :, 1:] - lam[:, :, :-1]) * (u[:, :, 1:] - u[:, :, :-1])
        return grad_c_x, grad_c_y, lam
