"""PINNs against exact solutions: the residual of the Cole-Hopf Burgers solution vanishes, the
residual is the PDE's own ``rhs`` (the one the solver uses), the loss is the weighted sum of its
terms, hard periodicity is exact, collocation batches are reproducible and shard across ranks,
and a short training recovers the exact heat solution.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from scidl.metrics import relative_l2
from scidl.models import MLP
from scidl.pdes import Burgers, Heat
from scidl.pinn import LossWeights, PINNProblem, SpaceTimeNetwork
from scidl.train import Stage, TrainOptions, train

TWO_PI = 2 * math.pi



class ColeHopf(nn.Module):
    """The exact viscous Burgers solution ``u = -2 nu phi_x / phi`` with
    ``phi = 1 + a exp(-nu k^2 t) cos(k x)``, ``k = 2 pi / L`` (Cole 1951, Hopf 1950):
    ``phi_t = nu phi_xx`` makes ``u_t + u u_x = nu u_xx``. ``x, t [P, 1] -> u [P, 1]``."""

    def __init__(self, nu: float, amplitude: float, length: float, perturbation: float = 0.0):
        super().__init__()
        self.nu, self.amplitude, self.k = nu, amplitude, TWO_PI / length
        self.perturbation = perturbation

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        decay = self.amplitude * torch.exp(-self.nu * self.k**2 * t)
        phi = 1 + decay * torch.cos(self.k * x)
        u = 2 * self.nu * self.k * decay * torch.sin(self.k * x) / phi
        # a smooth periodic perturbation vanishing at t = 0, to check the residual is not blind
        return u + self.perturbation * t * torch.sin(self.k * x)


def random_points(n: int, x_min: float, x_max: float, t_final: float, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x = x_min + (x_max - x_min) * torch.rand(n, 1, dtype=torch.float64, generator=gen)
    t = t_final * torch.rand(n, 1, dtype=torch.float64, generator=gen)
    return x, t


def burgers_problem(nu: float, amplitude: float, length: float, **kwargs) -> PINNProblem:
    x0 = torch.linspace(0, length, 65, dtype=torch.float64)[:-1]
    u0 = ColeHopf(nu, amplitude, length)(x0[:, None], torch.zeros(64, 1, dtype=torch.float64))
    return PINNProblem(Burgers(nu), x_min=0.0, x_max=length, t_final=0.5, initial_points=x0,
                       initial_values=u0[:, 0], boundary="periodic", dtype=torch.float64,
                       n_collocation=512, n_boundary=64, **kwargs)


# ---------------------------------------------------------------------- exact Burgers solution


@pytest.mark.parametrize("nu, amplitude, length", [(0.1, 0.7, 1.0), (0.5, 0.8, TWO_PI)])
def test_the_residual_of_the_exact_burgers_solution_vanishes(nu, amplitude, length):
    problem = burgers_problem(nu, amplitude, length)
    exact = ColeHopf(nu, amplitude, length)
    x, t = random_points(400, 0.0, length, 0.5, seed=1)
    residual = problem.residual(exact, x, t).detach()
    assert residual.shape == (400, 1) and residual.dtype == torch.float64
    assert float(residual.abs().max()) < 1e-10

    total, terms = problem.loss(exact, problem.batch(0))
    assert set(terms) == {"residual", "initial", "boundary"}
    for name, value in terms.items():
        assert float(value) < 1e-20, name
    assert float(total.detach()) < 1e-20

    # the same check has teeth: u + 0.01 t sin(kx) misses the equation by ~0.01 sin(kx)
    perturbed = ColeHopf(nu, amplitude, length, perturbation=0.01)
    assert float(problem.residual(perturbed, x, t).detach().abs().max()) > 5e-3
    _, terms = problem.loss(perturbed, problem.batch(0))
    assert float(terms["residual"]) > 1e-5
    assert float(terms["initial"]) < 1e-20  # the perturbation vanishes at t = 0


def test_predict_evaluates_the_network_on_a_space_time_grid():
    problem = burgers_problem(0.1, 0.7, 1.0)
    exact = ColeHopf(0.1, 0.7, 1.0)
    x = torch.linspace(0, 1, 17, dtype=torch.float64)
    t = torch.tensor([0.0, 0.2, 0.5], dtype=torch.float64)
    field = problem.predict(exact, x, t)
    assert field.shape == (3, 17)
    for i, time in enumerate(t):
        expected = exact(x[:, None], torch.full((17, 1), float(time), dtype=torch.float64))
        assert torch.allclose(field[i], expected[:, 0], rtol=0, atol=1e-15)


# ------------------------------------------------------------------ physics is written once


def test_residual_equals_a_hand_written_burgers_residual_on_a_random_network():
    nu = 0.07
    torch.manual_seed(0)
    network = SpaceTimeNetwork(MLP(2, 1, width=12, hidden_layers=2).double(), -1.0, 1.0, 0.5)
    problem = PINNProblem(Burgers(nu), x_min=-1.0, x_max=1.0, t_final=0.5,
                          initial_points=torch.zeros(4), initial_values=torch.zeros(4),
                          dtype=torch.float64)
    x, t = random_points(200, -1.0, 1.0, 0.5, seed=2)
    x.requires_grad_(True)
    t.requires_grad_(True)
    u = network(x, t)
    ones = torch.ones_like(u)
    (u_x,) = torch.autograd.grad(u, x, ones, create_graph=True)
    (u_t,) = torch.autograd.grad(u, t, ones, create_graph=True)
    (u_xx,) = torch.autograd.grad(u_x, x, ones, create_graph=True)
    by_hand = (u_t + u * u_x - nu * u_xx).detach()
    residual = problem.residual(network, x, t).detach()
    assert float(by_hand.abs().max()) > 1e-2  # a random network is no solution
    assert torch.allclose(residual, by_hand, rtol=1e-12, atol=1e-14)


def test_the_residual_uses_the_pdes_own_rhs(monkeypatch):
    problem = burgers_problem(0.1, 0.7, 1.0)
    exact = ColeHopf(0.1, 0.7, 1.0)
    x, t = random_points(100, 0.0, 1.0, 0.5, seed=3)
    before = problem.residual(exact, x, t).detach()
    original = Burgers.rhs
    # u_t = rhs(u) + 3 u: the residual u_t - rhs must drop by exactly 3 u
    monkeypatch.setattr(Burgers, "rhs", lambda self, u, d: original(self, u, d) + 3 * u)
    after = problem.residual(exact, x, t).detach()
    expected = before - 3 * exact(x, t)
    assert float(after.abs().max()) > 0.1
    assert torch.allclose(after, expected, rtol=0, atol=1e-12)


def test_loss_is_the_weighted_sum_of_exactly_computed_terms():
    # u = x (1 + t) for u_t = nu u_xx: residual x, boundary jump (x_min - x_max)(1 + t) with
    # equal slopes (1 + t) at both ends, initial misfit x0 - u0.
    nu, x_min, x_max = 0.3, -0.5, 1.5

    def linear(x, t):
        return x * (1 + t)

    x0 = torch.linspace(-0.5, 1.5, 9, dtype=torch.float64)
    u0 = torch.cos(x0)
    weights = LossWeights(residual=2.0, initial=3.0, boundary=5.0)
    problem = PINNProblem(Heat(nu), x_min=x_min, x_max=x_max, t_final=2.0, initial_points=x0,
                          initial_values=u0, weights=weights, dtype=torch.float64,
                          n_collocation=50, n_boundary=20, seed=1)
    batch = problem.batch(0)
    total, terms = problem.loss(linear, batch)
    residual = batch["x"].pow(2).mean()
    initial = (x0 - u0).pow(2).mean()
    boundary = ((x_min - x_max) * (1 + batch["t_boundary"])).pow(2).mean()
    assert float(terms["residual"]) == pytest.approx(float(residual), rel=1e-14)
    assert float(terms["initial"]) == pytest.approx(float(initial), rel=1e-14)
    assert float(terms["boundary"]) == pytest.approx(float(boundary), rel=1e-14)
    assert float(total.detach()) == pytest.approx(float(2 * residual + 3 * initial + 5 * boundary),
                                         rel=1e-14)
    assert all(not v.requires_grad for v in terms.values())  # logged values carry no graph
    no_boundary = PINNProblem(Heat(nu), x_min=x_min, x_max=x_max, t_final=2.0,
                              initial_points=x0, initial_values=u0, boundary="none",
                              dtype=torch.float64, n_collocation=50, seed=1)
    _, terms = no_boundary.loss(linear, no_boundary.batch(0))
    assert set(terms) == {"residual", "initial"}


def test_pinn_problem_rejects_bad_arguments():
    points = torch.zeros(5)
    with pytest.raises(ValueError, match="boundary must be"):
        PINNProblem(Heat(0.1), x_min=0, x_max=1, t_final=1, initial_points=points,
                    initial_values=points, boundary="dirichlet")
    with pytest.raises(ValueError, match=r"shape \[M\]"):
        PINNProblem(Heat(0.1), x_min=0, x_max=1, t_final=1, initial_points=points,
                    initial_values=torch.zeros(4))


# ---------------------------------------------------------------------------- the network


def test_features_for_gives_the_body_input_size():
    assert SpaceTimeNetwork.features_for(False) == 2
    assert SpaceTimeNetwork.features_for(True) == 3
    assert SpaceTimeNetwork.features_for(True, 4) == 9
    body = MLP(9, 1, width=4, hidden_layers=1)
    network = SpaceTimeNetwork(body, 0.0, 1.0, 1.0, periodic=True, periodic_modes=4)
    assert network.in_features == 9
    assert network(torch.rand(6, 1), torch.rand(6, 1)).shape == (6, 1)


def test_hard_periodic_network_is_exactly_periodic_for_any_weights():
    x_min, x_max = -1.3, 2.1
    t = torch.linspace(0, 0.7, 11, dtype=torch.float64)[:, None]
    for seed in range(3):
        torch.manual_seed(seed)
        body = MLP(7, 1, width=10, hidden_layers=2).double()
        with torch.no_grad():
            for p in body.parameters():
                p.normal_(0, 2)  # far from any trained or initial state
        network = SpaceTimeNetwork(body, x_min, x_max, 0.7, periodic=True, periodic_modes=3)
        left = torch.full_like(t, x_min).requires_grad_(True)
        right = torch.full_like(t, x_max).requires_grad_(True)
        u_left, u_right = network(left, t), network(right, t)
        (du_left,) = torch.autograd.grad(u_left.sum(), left, create_graph=True)
        (du_right,) = torch.autograd.grad(u_right.sum(), right, create_graph=True)
        (ddu_left,) = torch.autograd.grad(du_left.sum(), left)
        (ddu_right,) = torch.autograd.grad(du_right.sum(), right)
        u_left, u_right, du_left, du_right = (
            v.detach() for v in (u_left, u_right, du_left, du_right))
        scale = float(u_left.abs().max())
        assert scale > 1e-2 and float(du_left.abs().max()) > 1e-2  # not trivially constant
        assert float((u_left - u_right).abs().max()) < 1e-12 * max(scale, 1)
        assert float((du_left - du_right).abs().max()) < 1e-12 * float(du_left.abs().max())
        assert float((ddu_left - ddu_right).abs().max()) < 1e-11 * float(ddu_left.abs().max())
        # and periodic with period L everywhere, not just at the ends
        x = torch.rand(20, 1, dtype=torch.float64) * 3.4 + x_min
        tt = torch.rand(20, 1, dtype=torch.float64) * 0.7
        with torch.no_grad():
            shifted, unshifted = network(x + (x_max - x_min), tt), network(x, tt)
        assert torch.allclose(shifted, unshifted, rtol=0, atol=1e-12 * max(scale, 1))


def test_network_scales_coordinates_to_the_unit_box():
    class Record(nn.Module):
        def forward(self, features):
            self.features = features
            return features[:, :1]

    body = Record()
    network = SpaceTimeNetwork(body, -2.0, 4.0, 3.0)
    x = torch.tensor([[-2.0], [1.0], [4.0]], dtype=torch.float64)
    t = torch.tensor([[0.0], [1.5], [3.0]], dtype=torch.float64)
    network(x, t)
    expected = torch.tensor([[-1.0, -1.0], [0.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
    assert torch.equal(body.features, expected)

    periodic = SpaceTimeNetwork(body, -2.0, 4.0, 3.0, periodic=True, periodic_modes=2)
    periodic(x, t)
    phase = TWO_PI * (x + 2.0) / 6.0
    expected = torch.cat([torch.cos(phase), torch.cos(2 * phase), torch.sin(phase),
                          torch.sin(2 * phase), 2 * t / 3.0 - 1], dim=1)
    assert body.features.shape == (3, 5)
    # the body sees cos(k theta), sin(k theta) for k = 1, 2 and the scaled time, in some order
    for column in expected.T:
        assert any(torch.allclose(column, seen, rtol=0, atol=1e-15) for seen in body.features.T)


# -------------------------------------------------------------------------------- batches


def make_problem(seed: int = 4, resample_every: int = 3, dtype=torch.float64) -> PINNProblem:
    x0 = torch.linspace(-1, 2, 10, dtype=torch.float64)
    return PINNProblem(Heat(0.1), x_min=-1.0, x_max=2.0, t_final=0.5, initial_points=x0,
                       initial_values=torch.sin(x0), n_collocation=100, n_boundary=20,
                       resample_every=resample_every, seed=seed, dtype=dtype)


def same_batch(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_batches_are_a_function_of_seed_and_step_and_respect_resample_every():
    problem = make_problem()
    assert same_batch(problem.batch(5), make_problem().batch(5))  # a fresh object agrees
    assert same_batch(problem.batch(3), problem.batch(5))  # steps 3, 4, 5 share points
    assert not same_batch(problem.batch(2), problem.batch(3))
    assert not same_batch(problem.batch(3), make_problem(seed=5).batch(3))
    every_step = make_problem(resample_every=1)
    assert not same_batch(every_step.batch(3), every_step.batch(4))
    batch = problem.batch(7)
    assert batch["x"].shape == batch["t"].shape == (100, 1)
    assert batch["t_boundary"].shape == (20, 1)
    assert float(batch["x"].min()) >= -1.0 and float(batch["x"].max()) <= 2.0
    assert float(batch["t"].min()) >= 0.0 and float(batch["t"].max()) <= 0.5
    assert float(batch["t_boundary"].min()) >= 0 and float(batch["t_boundary"].max()) <= 0.5
    # uniform in the box: the points fill it rather than a corner of it
    assert float(batch["x"].max() - batch["x"].min()) > 2.5
    assert float(batch["t"].max() - batch["t"].min()) > 0.4
    assert make_problem(dtype=torch.float32).batch(0)["x"].dtype == torch.float32


def test_rank_shards_partition_the_single_process_batch():
    problem = make_problem()
    for step in (0, 4):
        whole = problem.batch(step)
        shards = [problem.batch(step, rank, 2) for rank in range(2)]
        for key, value in whole.items():
            parts = [shard[key] for shard in shards]
            assert parts[0].shape[0] + parts[1].shape[0] == value.shape[0], key
            assert torch.equal(parts[0], value[0::2]) and torch.equal(parts[1], value[1::2])
            merged = torch.cat(parts).flatten().sort().values
            assert torch.equal(merged, value.flatten().sort().values), key


# ------------------------------------------------------------------------------- training


def test_a_short_pinn_training_recovers_the_heat_solution():
    # u_t = nu u_xx on the periodic unit interval with u0 = sin(2 pi x): u = exp(-4 pi^2 nu t)
    # sin(2 pi x), here decaying to 0.45 at t = 1. Hard-periodic network, 200 Adam steps then
    # 100 L-BFGS iterations on 256 fixed collocation points (about a second).
    # Measured relative L2 over seeds 0-5: 4.6e-4 to 8.9e-4.
    nu, t_final = 0.02, 1.0
    torch.manual_seed(0)
    body = MLP(SpaceTimeNetwork.features_for(True), 1, width=16, hidden_layers=2).double()
    network = SpaceTimeNetwork(body, 0.0, 1.0, t_final, periodic=True)
    x0 = torch.linspace(0, 1, 65, dtype=torch.float64)[:-1]
    problem = PINNProblem(Heat(nu), x_min=0.0, x_max=1.0, t_final=t_final, initial_points=x0,
                          initial_values=torch.sin(TWO_PI * x0), boundary="none",
                          n_collocation=256, resample_every=10**9, dtype=torch.float64)
    result = train(network, problem, [Stage("adam", steps=200, lr=1e-2),
                                      Stage("lbfgs", steps=100, lr=1.0)],
                   options=TrainOptions(progress=False, log_every=50))
    x = torch.linspace(0, 1, 101, dtype=torch.float64)
    t = torch.linspace(0, t_final, 21, dtype=torch.float64)
    exact = torch.exp(-4 * math.pi**2 * nu * t)[:, None] * torch.sin(TWO_PI * x)[None]
    prediction = problem.predict(network, x, t)
    error = float(relative_l2(prediction[None], exact[None]))
    assert error < 5e-3, error
    assert result.optimizer_iterations == {"0:adam": 200, "1:lbfgs": 100}
    assert result.history[-1]["loss"] < 1e-3 * result.history[0]["loss"]
