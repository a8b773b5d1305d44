"""The PINN problem setups of ``benchmarks/pinn_problems.py``: exact solutions have zero residual,
hard constraints hold exactly, and forward-mode and autograd residuals agree."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import pinn_setups as pp  # noqa: E402

from scidl.models.mlp import MLP  # noqa: E402
from scidl.pinn import FieldNetwork  # noqa: E402

F64 = torch.float64
MODES = ("forward", "autograd")


class Exact(nn.Module):
    """A closed-form solution in the network's place (no ``jet``: forward mode falls back)."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn
        self.anchor = nn.Parameter(torch.zeros((), dtype=F64))  # so it has parameters

    def forward(self, X):
        out = self.fn(X)
        out = out[:, None] if out.ndim == 1 else out
        return out + 0 * self.anchor


def kink(X):
    """``tanh(x sqrt(a / 2D))``: a stationary Allen-Cahn solution."""
    return torch.tanh(X[:, 0] * math.sqrt(5.0 / (2 * 1e-3)))


def homogeneous(X):
    """``u' = a (u - u^3)``, ``u(0) = 0.3``: a spatially uniform Allen-Cahn solution."""
    u0, e = 0.3, torch.exp(2 * 5.0 * X[:, 1])
    return u0 * torch.sqrt(e) / torch.sqrt(1 - u0**2 + u0**2 * e)


def setups(derivatives: str):
    """(name, problem, exact solution, hard constraint) for every benchmark case."""
    kw = {"dtype": F64, "derivatives": derivatives, "collocation": 256}
    out = []
    for variant in ("soft", "hard"):
        problem, c = pp.poisson_setup(variant, **kw)
        out.append((f"poisson-{variant}", problem,
                    lambda X: pp.poisson_exact(X[:, 0], X[:, 1]), c))
    for variant in ("soft", "hard-distance", "hard-rfunction"):
        problem, c = pp.lshape_setup(variant, **kw)
        # -(x^2 + y^2) / 4 solves -Laplacian u = 1 (not the boundary data: the residual only)
        out.append((f"lshape-{variant}", problem,
                    lambda X: -(X[:, 0] ** 2 + X[:, 1] ** 2) / 4, c))
    for variant in ("soft", "hard"):
        problem, c = pp.heat_setup(variant, **kw)
        out.append((f"heat-{variant}", problem, pp.heat_exact, c))
    for variant in ("soft", "hard", "soft-nondim", "hard-nondim"):
        problem, c, L = pp.wave_setup(variant, **kw)
        scale = torch.tensor([1.0, 1.0 / L], dtype=F64)  # v' = du/dt' = v / L
        out.append((f"wave-{variant}", problem,
                    lambda X, L=L, scale=scale: pp.wave_exact(X / L) * scale, c))
    for hard in (False, True):
        problem, c = pp.allen_cahn_setup(hard, **kw)
        out.append((f"allen_cahn-{'hard' if hard else 'soft'}", problem, kink, c))
        out.append((f"allen_cahn-{'hard' if hard else 'soft'}-uniform", problem, homogeneous, c))
    return out


@pytest.mark.parametrize("derivatives", MODES)
def test_exact_solutions_have_zero_residual(derivatives):
    checked = 0
    for name, problem, exact, _ in setups(derivatives):
        X = problem.domain.sample_interior(300, method="sobol", seed=3).to(F64)
        r = problem.residual(Exact(exact), X).detach()
        assert r.shape == (300, problem.channels), name
        assert float(r.abs().max()) < 1e-8, (name, float(r.abs().max()))
        checked += 1
    assert checked == 15


def test_a_wrong_solution_has_a_residual():
    problem, _, _ = pp.wave_setup("soft", 256, dtype=F64)
    X = problem.domain.sample_interior(100, seed=1).to(F64)
    wrong = Exact(lambda Y: pp.wave_exact(Y) * torch.tensor([1.0, 1.1], dtype=F64))
    assert float(problem.residual(wrong, X).detach().abs().max()) > 1e-2


def _net(problem, constraint):
    torch.manual_seed(0)
    return FieldNetwork(MLP(problem.domain.dim, problem.channels, 16, 2), constraint=constraint
                        ).to(F64)


def _prescribed(name, X):
    if name.startswith("heat"):
        return torch.where(X[:, 1:] == 0, pp.heat_offset(X)[:, None], 0.0)
    if name.startswith("wave"):
        L = pp.WAVE_UNITS if name.endswith("-nondim") else 1.0
        return pp.wave_initial(X / L)
    if name.startswith("allen_cahn"):
        return torch.where(X[:, 1:] == 0, pp.ac_u0(X)[:, None], -1.0)
    return torch.zeros(len(X), 1, dtype=F64)


def test_hard_constraints_hold_exactly():
    checked = 0
    for name, problem, _, constraint in setups("forward"):
        if constraint is None or name.endswith("-uniform"):
            continue
        net = _net(problem, constraint)
        domain = problem.domain
        points = [domain.sample_boundary(200, method="uniform", seed=2).to(F64)]
        if hasattr(domain, "sample_initial"):
            points.append(domain.sample_initial(200, method="uniform", seed=4).to(F64))
        for X in points:
            with torch.no_grad():
                u = net(X)
            err = float((u - _prescribed(name, X)).abs().max())
            assert err < 1e-12, (name, err)
            # and the factor does not vanish inside: the network has something to learn
        inner = domain.sample_interior(200, seed=5).to(F64)
        assert float(constraint.factor(inner).abs().max()) > 1e-2, name
        checked += 1
    assert checked == 7


def test_wave_hard_constraint_boundary_zero_for_velocity_too():
    for variant in ("hard", "hard-nondim"):
        problem, constraint, _ = pp.wave_setup(variant, 64, dtype=F64)
        X = problem.domain.sample_boundary(100, seed=0).to(F64)
        with torch.no_grad():
            u = _net(problem, constraint)(X)
        assert u.shape == (100, 2)
        assert float(u.abs().max()) < 1e-12


def test_forward_and_autograd_residuals_agree_for_networks():
    """The jet path (with hard-constraint jets) against nested autograd, per setup."""
    fwd, rev = setups("forward"), setups("autograd")
    for (name, pf, _, c), (_, pr, _, _) in zip(fwd, rev):
        if name.endswith("-uniform"):
            continue
        net = _net(pf, c)
        X = pf.domain.sample_interior(128, method="sobol", seed=7).to(F64)
        a, b = pf.residual(net, X).detach(), pr.residual(net, X).detach()
        scale = float(b.abs().max())
        assert float((a - b).abs().max()) <= 1e-9 * max(scale, 1.0), name
