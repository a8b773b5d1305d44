"""PINNs against exact solutions and hand-written derivatives.

The residual of exact solutions vanishes; the residual is the PDE's own ``rhs`` (the one the solver
uses); forward-mode (jet) derivatives equal nested autograd; hard constraints hold exactly; the loss
is the weighted sum of its terms; batches are reproducible and shard across ranks; a short training
recovers the heat solution; an inverse problem recovers a viscosity in seconds. The adaptive tricks
are tested in ``test_pinn_adaptive.py``.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from scidl.models import MLP
from scidl.models.mlp import SIREN
from scidl.pdes import Burgers, Heat, Poisson, Wave
from scidl.pinn import (
    Balancing,
    CoordinateFeatures,
    DirichletBC,
    Disk,
    FieldNetwork,
    HardConstraint,
    InitialCondition,
    Interval,
    NeumannBC,
    Observations,
    PeriodicBC,
    PINNProblem,
    Rectangle,
    Refinement,
    SpaceTime,
    TimeDomain,
    Unknown,
)
from scidl.train import Stage, TrainOptions, train

TWO_PI = 2 * math.pi
F64 = torch.float64


class ColeHopf(nn.Module):
    """The exact viscous Burgers solution ``u = -2 nu phi_x / phi`` with
    ``phi = 1 + a exp(-nu k^2 t) cos(k x)``, ``k = 2 pi / L`` (Cole 1951, Hopf 1950).
    ``X [P, 2] (x, t) -> u [P, 1]``."""

    def __init__(self, nu: float, amplitude: float, length: float, perturbation: float = 0.0):
        super().__init__()
        self.nu, self.amplitude, self.k = nu, amplitude, TWO_PI / length
        self.perturbation = perturbation

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        x, t = X[:, :1], X[:, 1:]
        decay = self.amplitude * torch.exp(-self.nu * self.k**2 * t)
        phi = 1 + decay * torch.cos(self.k * x)
        u = 2 * self.nu * self.k * decay * torch.sin(self.k * x) / phi
        return u + self.perturbation * t * torch.sin(self.k * x)


def burgers(nu=0.1, length=1.0, derivatives="autograd", **kwargs) -> PINNProblem:
    domain = SpaceTime(Interval(0.0, length), TimeDomain(0.0, 0.5))
    exact = ColeHopf(nu, 0.7, length)
    conditions = [InitialCondition(n=64, value=exact),
                  PeriodicBC(dim=0, n=32)]
    return PINNProblem(Burgers(nu), domain, conditions, collocation=256, dtype=F64,
                       derivatives=derivatives, **kwargs)


def random_net(in_features=2, out=1, body="mlp", features=None, constraint=None, seed=0):
    torch.manual_seed(seed)
    n_in = features.out_features if features is not None else in_features
    net = (MLP(n_in, out, width=12, hidden_layers=2) if body == "mlp"
           else SIREN(n_in, out, width=12, hidden_layers=2, omega_0=3.0))
    return FieldNetwork(net, features, constraint).double()


# ------------------------------------------------------------------- exact solutions

@pytest.mark.parametrize("nu, length", [(0.1, 1.0), (0.5, TWO_PI)])
def test_the_residual_of_the_exact_burgers_solution_vanishes(nu, length):
    problem = burgers(nu, length)
    exact = ColeHopf(nu, 0.7, length)
    X = problem.domain.sample_interior(400, seed=1)
    residual = problem.residual(exact, X).detach()
    assert residual.shape == (400, 1) and residual.dtype == F64
    assert float(residual.abs().max()) < 1e-10
    total, terms = problem.loss(exact, problem.batch(0))
    assert set(terms) == {"residual", "initial", "periodic"}
    assert all(float(v) < 1e-20 for v in terms.values()), terms
    # the same check has teeth: u + 0.01 t sin(kx) misses the equation by ~0.01 sin(kx)
    perturbed = ColeHopf(nu, 0.7, length, perturbation=0.01)
    assert float(problem.residual(perturbed, X).detach().abs().max()) > 5e-3
    _, terms = problem.loss(perturbed, problem.batch(0))
    assert float(terms["residual"]) > 1e-5 and float(terms["initial"]) < 1e-20


def test_the_residual_of_an_exact_wave_solution_vanishes_for_the_two_channel_system():
    # Wave is written once as u_t = v, v_t = c^2 u_xx; a PINN of it has two outputs.
    c = 1.7

    class Standing(nn.Module):
        def forward(self, X):
            x, t = X[:, :1], X[:, 1:]
            u = torch.sin(math.pi * x) * torch.cos(c * math.pi * t)
            v = -c * math.pi * torch.sin(math.pi * x) * torch.sin(c * math.pi * t)
            return torch.cat([u, v], 1)

    domain = SpaceTime(Interval(0, 1), TimeDomain(0, 1))
    problem = PINNProblem(Wave(c), domain, dtype=F64, derivatives="autograd")
    X = domain.sample_interior(300, seed=2)
    residual = problem.residual(Standing(), X).detach()
    assert residual.shape == (300, 2)
    assert float(residual.abs().max()) < 1e-10
    # per-channel weights scale each equation inside the residual term
    net = random_net(2, 2)
    weighted = PINNProblem(Wave(c), domain, dtype=F64, channel_weights=[2.0, 0.5])
    r = weighted.residual(net, X).detach()
    _, terms = weighted.loss(net, {"step": 0, "residual": X})
    expected = (r * torch.tensor([2.0, 0.5], dtype=F64)).pow(2).mean()
    assert float(terms["residual"]) == pytest.approx(float(expected), rel=1e-12)
    with pytest.raises(ValueError, match="one weight per channel"):
        PINNProblem(Wave(c), domain, channel_weights=[1.0])
    # and forward mode on a network gives the same residual as autograd
    forward = PINNProblem(Wave(c), domain, dtype=F64).residual(net, X).detach()
    assert torch.allclose(forward, problem.residual(net, X).detach(), rtol=1e-12, atol=1e-12)


def test_poisson_on_a_disk_with_a_neumann_condition():
    # u = x^2 + y^2 solves -lap u = -4 on the unit disk; du/dn = 2 r = 2 on the circle
    class Exact(nn.Module):
        def forward(self, X):
            return X.pow(2).sum(1, keepdim=True)

    disk = Disk([0.0, 0.0], 1.0)
    problem = PINNProblem(Poisson(source=-4.0), disk, [NeumannBC(n=64, value=2.0)],
                          collocation=128, dtype=F64, derivatives="autograd")
    total, terms = problem.loss(Exact(), problem.batch(0))
    assert float(terms["residual"]) < 1e-24 and float(terms["neumann"]) < 1e-24
    wrong = PINNProblem(Poisson(source=-4.0), disk, [NeumannBC(n=64, value=1.0)], dtype=F64,
                        derivatives="autograd")
    _, terms = wrong.loss(Exact(), wrong.batch(0))
    assert float(terms["neumann"]) == pytest.approx(1.0, rel=1e-10)


# ------------------------------------------------------------ physics is written once

@pytest.mark.parametrize("derivatives", ["autograd", "forward"])
def test_residual_equals_a_hand_written_burgers_residual(derivatives):
    nu = 0.07
    net = random_net()
    problem = burgers(nu, derivatives=derivatives)
    X = problem.domain.sample_interior(200, seed=2).requires_grad_(True)
    u = net(X)
    (g,) = torch.autograd.grad(u.sum(), X, create_graph=True)
    (gg,) = torch.autograd.grad(g[:, 0].sum(), X)
    by_hand = (g[:, 1:] + u * g[:, :1] - nu * gg[:, :1]).detach()
    residual = problem.residual(net, X.detach()).detach()
    assert float(by_hand.abs().max()) > 1e-2  # a random network is no solution
    assert torch.allclose(residual, by_hand, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("derivatives", ["autograd", "forward"])
def test_the_residual_uses_the_pdes_own_rhs(monkeypatch, derivatives):
    problem = burgers(derivatives=derivatives)
    net = random_net()
    X = problem.domain.sample_interior(100, seed=3)
    before = problem.residual(net, X).detach()
    original = Burgers.rhs
    # u_t = rhs(u) + 3 u: the residual u_t - rhs must drop by exactly 3 u
    monkeypatch.setattr(Burgers, "rhs", lambda self, u, d: original(self, u, d) + 3 * u)
    after = problem.residual(net, X).detach()
    with torch.no_grad():
        expected = before - 3 * net(X)
    assert torch.allclose(after, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("body", ["mlp", "siren"])
def test_forward_mode_derivatives_equal_nested_autograd(body):
    features = CoordinateFeatures([0.0, -1.0, 0.0], [2.0, 1.0, 1.0], periodic={1: 2.0},
                                  periodic_modes=2, fourier_features=4, fourier_sigma=1.5)
    constraint = HardConstraint(lambda X: torch.sin(X[:, :1]) * X[:, 2:],
                                lambda X: X[:, 2:] * (2 - X[:, :1]) * X[:, :1])
    net = random_net(body=body, features=features, constraint=constraint)
    X = torch.rand(60, 3, dtype=F64) * torch.tensor([2.0, 2.0, 1.0]) - torch.tensor([0, 1.0, 0])
    second = [(0, 0), (0, 1), (1, 1), (2, 2), (0, 2)]
    jet = net.jet(X, [0, 1, 2], second)
    Xg = X.clone().requires_grad_(True)
    u = net(Xg)
    (g,) = torch.autograd.grad(u.sum(), Xg, create_graph=True)
    assert torch.allclose(jet.value, u.detach(), atol=1e-13)
    for i in range(3):
        assert torch.allclose(jet.d1[i][:, 0], g[:, i].detach(), atol=1e-12)
    for a, b in second:
        (h,) = torch.autograd.grad(g[:, a].sum(), Xg, retain_graph=True)
        assert torch.allclose(jet.d2[(a, b)][:, 0], h[:, b], atol=1e-11), (a, b)


def test_every_problem_of_a_process_stays_compiled(monkeypatch):
    # torch.compile caches graphs, and limits recompiles, per code object: problems sharing
    # ``_parts`` recompiled into one cache and the ninth of a process ran uncompiled
    import torch._dynamo.config as dynamo_config
    from torch._dynamo.utils import counters

    monkeypatch.setattr(dynamo_config, "recompile_limit", 1)
    before = counters["stats"]["unique_graphs"]
    losses = []
    for seed in range(3):
        problem = burgers(derivatives="forward", compile=True)
        model = problem.model(random_net(seed=seed))
        plain = burgers(derivatives="forward")
        loss, _ = problem.loss(model, problem.batch(0))
        loss.backward()
        losses.append((float(loss), float(plain.loss(model, plain.batch(0))[0])))
    assert counters["stats"]["unique_graphs"] - before == 3  # one graph each, none reused
    for compiled, eager in losses:
        assert compiled == pytest.approx(eager, rel=1e-12)


def test_forward_mode_falls_back_to_autograd_for_networks_it_cannot_push_jets_through():
    class Opaque(nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = nn.Linear(2, 1).double()

        def forward(self, X):
            return torch.atan(self.layer(X))

    problem = burgers(derivatives="forward")
    net = FieldNetwork(Opaque())
    X = problem.domain.sample_interior(50, seed=0)
    residual = problem.residual(net, X)
    reference = burgers(derivatives="autograd").residual(net, X)
    assert torch.allclose(residual, reference, atol=1e-14)
    assert problem.derivatives_for(net) == "autograd"
    assert problem.derivatives_for(random_net()) == "forward"  # only that network falls back


# ------------------------------------------------------------------------ constraints

def test_hard_constraints_hold_exactly_for_any_weights():
    domain = SpaceTime(Interval(-1, 1), TimeDomain(0, 1))
    constraint = HardConstraint(lambda X: -torch.sin(math.pi * X[:, :1]),
                                lambda X: X[:, 1:] * (1 - X[:, :1] ** 2))
    for seed in range(3):
        net = random_net(constraint=constraint, seed=seed)
        with torch.no_grad():
            for p in net.parameters():
                p.normal_(0, 2)
            initial = domain.sample_initial(50, seed=seed)
            boundary = domain.sample_boundary(50, seed=seed)
            assert float(net(boundary).abs().max()) < 1e-15
            target = -torch.sin(math.pi * initial[:, :1])
            assert float((net(initial) - target).abs().max()) < 1e-15
            assert float(net(domain.sample_interior(50, seed=seed)).abs().max()) > 1e-2


def test_periodic_features_make_the_network_exactly_periodic_with_its_derivatives():
    features = CoordinateFeatures([-1.3, 0.0], [2.1, 0.7], periodic={0: 3.4}, periodic_modes=3)
    net = random_net(features=features)
    t = torch.linspace(0, 0.7, 11, dtype=F64)[:, None]
    left = torch.cat([torch.full_like(t, -1.3), t], 1)
    right = torch.cat([torch.full_like(t, 2.1), t], 1)
    jl, jr = net.jet(left, [0], [(0, 0)]), net.jet(right, [0], [(0, 0)])
    assert float(jl.d1[0].detach().abs().max()) > 1e-2
    for a, b in [(jl.value, jr.value), (jl.d1[0], jr.d1[0]), (jl.d2[(0, 0)], jr.d2[(0, 0)])]:
        assert float((a - b).detach().abs().max()) < 1e-12


# ------------------------------------------------------------------------------- loss

def test_loss_is_the_weighted_sum_of_exactly_computed_terms():
    # u = x (1 + t) for u_t = nu u_xx on [-0.5, 1.5]: residual x, initial misfit x - cos x,
    # Dirichlet misfit u - 0 at x = -0.5, 1.5.
    def linear(X):
        return X[:, :1] * (1 + X[:, 1:])

    domain = SpaceTime(Interval(-0.5, 1.5), TimeDomain(0, 2))
    conditions = [InitialCondition(n=9, value=lambda X: torch.cos(X[:, :1]), weight=3.0),
                  DirichletBC(n=10, value=0.0, weight=5.0)]
    problem = PINNProblem(Heat(0.3), domain, conditions, collocation=50, residual_weight=2.0,
                          dtype=F64, derivatives="autograd", seed=1)
    batch = problem.batch(0)
    total, terms = problem.loss(linear, batch)
    residual = batch["residual"][:, 0].pow(2).mean()
    X0, Xb = batch["initial"], batch["dirichlet"]
    initial = (X0[:, 0] - torch.cos(X0[:, 0])).pow(2).mean()
    boundary = linear(Xb).pow(2).mean()
    assert float(terms["residual"]) == pytest.approx(float(residual), rel=1e-14)
    assert float(terms["initial"]) == pytest.approx(float(initial), rel=1e-14)
    assert float(terms["dirichlet"]) == pytest.approx(float(boundary), rel=1e-14)
    assert float(total.detach()) == pytest.approx(
        float(2 * residual + 3 * initial + 5 * boundary), rel=1e-14)
    assert all(not v.requires_grad for v in terms.values())


def test_pinn_problem_rejects_bad_arguments():
    domain = SpaceTime(Interval(0, 1), TimeDomain(0, 1))
    with pytest.raises(ValueError, match="derivatives must be"):
        PINNProblem(Heat(0.1), domain, derivatives="finite")
    with pytest.raises(ValueError, match="SpaceTime"):
        PINNProblem(Heat(0.1), Interval(0, 1))
    with pytest.raises(ValueError, match="no parameter"):
        PINNProblem(Heat(0.1), domain, unknowns={"viscosity": Unknown(0.1)})
    with pytest.raises(ValueError, match="unique"):
        PINNProblem(Heat(0.1), domain, [DirichletBC(), DirichletBC()])
    with pytest.raises(ValueError, match=r"\[M, D\]"):
        Observations(points=torch.zeros(5, 2), values=torch.zeros(4))


# ---------------------------------------------------------------------------- batches

def make_problem(seed: int = 4, resample_every=3, dtype=F64) -> PINNProblem:
    domain = SpaceTime(Interval(-1, 2), TimeDomain(0, 0.5))
    return PINNProblem(Heat(0.1), domain, [InitialCondition(n=10, value=0.0),
                                           PeriodicBC(dim=0, n=20)],
                       collocation=100, resample_every=resample_every, seed=seed, dtype=dtype)


def same_batch(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        torch.equal(a[k], b[k]) for k in a if isinstance(a[k], torch.Tensor))


def test_batches_are_a_function_of_seed_and_step_and_respect_resample_every():
    problem = make_problem()
    assert same_batch(problem.batch(5), make_problem().batch(5))
    assert same_batch(problem.batch(3), problem.batch(5))  # steps 3, 4, 5 share points
    assert not same_batch(problem.batch(2), problem.batch(3))
    assert not same_batch(problem.batch(3), make_problem(seed=5).batch(3))
    fixed = make_problem(resample_every=None)
    assert same_batch(fixed.batch(0), fixed.batch(1000))
    until = make_problem(resample_every=1)
    until.resample_until = 10  # points stop changing there (for the L-BFGS stage)
    assert not same_batch(until.batch(5), until.batch(6))
    assert same_batch(until.batch(9), until.batch(10)) and same_batch(until.batch(9),
                                                                     until.batch(5000))
    batch = problem.batch(7)
    X = batch["residual"]
    assert X.shape == (100, 2) and X.dtype == F64
    assert float(X[:, 0].min()) >= -1 and float(X[:, 0].max()) <= 2
    assert float(X[:, 1].min()) >= 0 and float(X[:, 1].max()) <= 0.5
    assert float(X[:, 0].max() - X[:, 0].min()) > 2.5  # fills the box
    assert make_problem(dtype=torch.float32).batch(0)["residual"].dtype == torch.float32


def test_changes_at_marks_exactly_the_steps_whose_loss_is_a_new_function():
    # new points, a refinement or a balancing update: there L-BFGS may not reuse the
    # previous step's evaluation; everywhere else the batch must really be the same
    problem = make_problem(resample_every=10)
    problem.resample_until = 25
    problem.refinement = Refinement(every=6, until=13)
    problem.balancing = Balancing(every=7, until=15)
    expected = {0, 6, 7, 10, 12, 14, 20}
    assert {s for s in range(60) if problem.changes_at(s)} == expected
    for step in set(range(1, 60)) - expected:
        if step not in (6, 7, 12, 14):
            assert same_batch(problem.batch(step - 1), problem.batch(step))
    assert {s for s in range(60) if make_problem(resample_every=None).changes_at(s)} == {0}


def test_lbfgs_on_a_pinn_reuses_evaluations_with_the_same_iterates(monkeypatch):
    def run(reuse: bool):
        problem = make_problem(resample_every=None)
        if not reuse:
            monkeypatch.setattr(problem, "changes_at", lambda step: True)
        torch.manual_seed(0)
        model = problem.model(FieldNetwork(MLP(2, 1, 8, 2))).double()
        calls = []
        original = problem.loss
        monkeypatch.setattr(problem, "loss", lambda m, b: calls.append(1) or original(m, b))
        result = train(model, problem, [Stage("adam", 5, 1e-2), Stage("lbfgs", 20, 1.0)],
                       options=TrainOptions(progress=False, log_every=1))
        return model.state_dict(), result.history, len(calls)

    state, history, calls = run(reuse=True)
    plain_state, plain_history, plain_calls = run(reuse=False)
    assert all(torch.equal(state[k], plain_state[k]) for k in state)
    assert history == plain_history
    assert calls == plain_calls - 19  # every L-BFGS iteration after the first saves one


def test_rank_shards_partition_the_single_process_batch_and_keep_periodic_pairs():
    problem = make_problem()
    whole = problem.batch(4)
    shards = [problem.batch(4, rank, 2) for rank in range(2)]
    for key in ("residual", "initial"):
        assert torch.equal(shards[0][key], whole[key][0::2])
        assert torch.equal(shards[1][key], whole[key][1::2])
    for shard in shards:  # left and right faces stay paired point by point
        pairs = shard["periodic"].reshape(2, -1, 2)
        assert torch.equal(pairs[0, :, 1], pairs[1, :, 1])
        assert bool((pairs[0, :, 0] == -1).all() and (pairs[1, :, 0] == 2).all())


# --------------------------------------------------------------------------- training

@pytest.mark.parametrize("derivatives", ["forward", "autograd"])
def test_a_short_pinn_training_recovers_the_heat_solution(derivatives):
    # u_t = nu u_xx on the periodic unit interval with u0 = sin(2 pi x): u = exp(-4 pi^2 nu t)
    # sin(2 pi x). Hard-periodic features, 200 Adam steps then 100 L-BFGS iterations.
    nu = 0.02
    domain = SpaceTime(Interval(0, 1), TimeDomain(0, 1))
    features = CoordinateFeatures([0, 0], [1, 1], periodic={0: 1.0})
    torch.manual_seed(0)
    net = FieldNetwork(MLP(features.out_features, 1, width=16, hidden_layers=2), features)
    problem = PINNProblem(Heat(nu), domain,
                          [InitialCondition(n=64, value=lambda X: torch.sin(TWO_PI * X[:, :1]))],
                          collocation=256, dtype=F64, derivatives=derivatives)
    model = problem.model(net).double()
    result = train(model, problem, [Stage("adam", steps=200, lr=1e-2),
                                    Stage("lbfgs", steps=100, lr=1.0)],
                   options=TrainOptions(progress=False, log_every=50))
    X = domain.sample_interior(2000, seed=9)
    exact = torch.exp(-4 * math.pi**2 * nu * X[:, 1:]) * torch.sin(TWO_PI * X[:, :1])
    prediction = problem.predict(model, X)
    error = float((prediction - exact).norm() / exact.norm())
    assert error < 5e-3, error
    assert result.optimizer_iterations == {"0:adam": 200, "1:lbfgs": 100}


def test_an_inverse_problem_recovers_the_diffusivity_in_seconds():
    # u = exp(-pi^2 nu t) sin(pi x) on [0, 1] with nu = 0.05; start from nu = 0.2.
    nu = 0.05
    domain = SpaceTime(Interval(0, 1), TimeDomain(0, 1))
    X = domain.sample_interior(300, method="sobol", seed=3)
    values = torch.exp(-math.pi**2 * nu * X[:, 1:]) * torch.sin(math.pi * X[:, :1])
    torch.manual_seed(0)
    net = FieldNetwork(MLP(2, 1, width=16, hidden_layers=2))
    problem = PINNProblem(Heat(0.2), domain, [Observations(points=X, values=values)],
                          collocation=300, unknowns={"nu": Unknown(0.2)}, dtype=F64)
    model = problem.model(net).double()
    result = train(model, problem, [Stage("adam", 300, 1e-2), Stage("lbfgs", 200, 1.0)],
                   options=TrainOptions(progress=False, log_every=50))
    estimate = model.estimates()["nu"]
    assert abs(estimate - nu) / nu < 0.01, estimate
    assert [r["nu"] for r in result.history][0] > 0.1  # logged trajectory starts near 0.2


def test_rectangle_steady_poisson_trains_with_a_distance_hard_constraint():
    # -lap u = 2 pi^2 sin(pi x) sin(pi y), u = 0 on the boundary of the unit square
    square = Rectangle([0, 0], [1, 1])
    source = lambda x, y: 2 * math.pi**2 * torch.sin(math.pi * x) * torch.sin(math.pi * y)  # noqa: E731
    constraint = HardConstraint(None, lambda X: square.distance(X)[:, None])
    torch.manual_seed(0)
    net = FieldNetwork(MLP(2, 1, 16, 2), constraint=constraint)
    problem = PINNProblem(Poisson(source=source), square, collocation=256, dtype=F64)
    model = problem.model(net).double()
    train(model, problem, [Stage("adam", 200, 1e-2), Stage("lbfgs", 100, 1.0)],
          options=TrainOptions(progress=False))
    X = square.sample_interior(1000, seed=5)
    exact = torch.sin(math.pi * X[:, :1]) * torch.sin(math.pi * X[:, 1:])
    error = float((problem.predict(model, X) - exact).norm() / exact.norm())
    assert error < 1e-2, error
