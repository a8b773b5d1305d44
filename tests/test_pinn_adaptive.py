"""Adaptive training tricks of PINNs: residual-based refinement (RAR) adds the points of largest
residual, adaptive sampling (RAD) redraws the points with density proportional to the residual,
gradient-norm balancing sets the weights of Wang, Teng & Perdikaris; checkpoints resume all of it.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from scidl.models import MLP
from scidl.pdes import Heat
from scidl.pinn import (
    AdaptiveSampling,
    Balancing,
    FieldNetwork,
    InitialCondition,
    Interval,
    PINNProblem,
    Refinement,
    SpaceTime,
    TimeDomain,
)
from scidl.train import Stage, TrainOptions, train

F64 = torch.float64


def trained_and_resumed(tmp_path, **adaptive):
    """A small heat PINN trained 12 Adam steps with a checkpoint, and a fresh model resumed
    from that checkpoint: ``(problem, model, resumed)``."""
    problem = PINNProblem(Heat(0.1), SpaceTime(Interval(0, 1), TimeDomain(0, 1)),
                          [InitialCondition(n=16, value=0.0)], collocation=64, dtype=F64,
                          **adaptive)
    torch.manual_seed(0)
    models = [problem.model(FieldNetwork(MLP(2, 1, 8, 2))).double() for _ in range(2)]
    for model, resume in zip(models, (False, True)):
        train(model, problem, [Stage("adam", 12, 1e-3)], options=TrainOptions(progress=False),
              checkpoint=tmp_path / "pinn.pt", resume=resume)
    return problem, *models


def test_refinement_adds_the_points_of_largest_residual_and_resumes(tmp_path):
    problem, model, again = trained_and_resumed(
        tmp_path, refinement=Refinement(every=5, candidates=500, add=7))
    assert model.added_points.shape == (14, 2)  # at steps 5 and 10
    added = model.added_points[:7].to(F64)
    # each added point's residual beats the median residual of fresh random points
    fresh = problem.domain.sample_interior(500, method="uniform", seed=123)
    with torch.no_grad():
        r_added = problem.residual(model, added).abs().squeeze(1)
        r_fresh = problem.residual(model, fresh).abs().squeeze(1)
    assert float(r_added.min()) > float(r_fresh.median())
    # a resumed model gets the refinement points back from the checkpoint
    assert torch.equal(again.added_points, model.added_points)


class Bump(nn.Module):
    """``u = exp(-((x - 0.5) / 0.05)^2)``: its heat residual lives near ``x = 0.5``."""

    def forward(self, X):
        return torch.exp(-((X[:, :1] - 0.5) / 0.05) ** 2)


@pytest.mark.parametrize("c", [0.0, 1.0])
def test_adaptive_sampling_draws_points_with_density_proportional_to_the_residual(c):
    domain = SpaceTime(Interval(0, 1), TimeDomain(0, 1))
    sampling = AdaptiveSampling(every=5, candidates=20000, k=1.0, c=c)
    problem = PINNProblem(Heat(0.1), domain, [], collocation=400, dtype=F64,
                          derivatives="autograd", adaptive_sampling=sampling)
    model = problem.model(Bump()).double()
    assert {s for s in range(12) if problem.changes_at(s)} == {0, 5, 10}
    problem.loss(model, problem.batch(4))
    assert len(model.sampled_points) == 0  # not a sampling step
    problem.loss(model, problem.batch(5))
    drawn = model.sampled_points
    assert drawn.shape == (400, 2) and len(set(map(tuple, drawn.tolist()))) == 400
    # the same candidates (same seed and step), and the probability of the band |x - 0.5| < 0.1
    generator = torch.Generator().manual_seed(problem.seed * 7919 + 5)
    candidates, norms = problem._candidates(model, 20000, generator)
    density = norms / norms.mean() + c
    band = lambda X: (X[:, 0] - 0.5).abs() < 0.1  # noqa: E731
    expected = float(density[band(candidates)].sum() / density.sum())
    observed = float(band(drawn).double().mean())
    assert expected > 0.5 if c == 0 else expected > 0.3  # the band is 20% of the domain
    assert abs(observed - expected) < 4 * math.sqrt(expected * (1 - expected) / 400)
    # the residual term is now the mean over the drawn points
    _, terms = problem.loss(model, problem.batch(6))
    with torch.no_grad():
        assert float(terms["residual"]) == pytest.approx(
            float(problem.residual(model, drawn).pow(2).mean()), rel=1e-12)


def test_adaptive_sampling_can_start_after_a_pretraining():
    # Wu et al.'s protocol: draw from a pretrained network, then once per round of training
    sampling = AdaptiveSampling(every=5, start=12, until=30)
    problem = PINNProblem(Heat(0.1), SpaceTime(Interval(0, 1), TimeDomain(0, 1)), [],
                          collocation=16, adaptive_sampling=sampling)
    assert [s for s in range(1, 40) if problem.changes_at(s)] == [12, 17, 22, 27]


def test_adaptively_sampled_points_survive_resume(tmp_path):
    _, model, again = trained_and_resumed(
        tmp_path, adaptive_sampling=AdaptiveSampling(every=5, candidates=500, until=11))
    assert model.sampled_points.shape == (64, 2)
    assert torch.equal(again.sampled_points, model.sampled_points)


def test_gradient_norm_balancing_sets_the_weights_of_wang_teng_perdikaris():
    # lambda = max |grad L_residual| / mean |grad L_condition|, moved by alpha each update
    domain = SpaceTime(Interval(0, 1), TimeDomain(0, 1))
    tiny = InitialCondition(n=32, value=lambda X: 1e-3 * torch.sin(math.pi * X[:, :1]))

    def fresh(balancing):
        problem = PINNProblem(Heat(0.1), domain, [tiny], collocation=64, dtype=F64,
                              derivatives="autograd", balancing=balancing)
        torch.manual_seed(0)
        return problem, problem.model(FieldNetwork(MLP(2, 1, 8, 2))).double()

    problem, model = fresh(None)
    _, terms = problem.loss(model, problem.batch(0))
    parts = problem._parts(model.net, problem.pde, problem.batch(0)["residual"], None,
                           [problem.batch(0)["initial"]], [None])
    params = list(model.net.parameters())
    # (the residual of the heat equation does not see the output bias: unused)
    g_res = torch.autograd.grad(parts[0], params, retain_graph=True, allow_unused=True)
    g_ic = torch.autograd.grad(parts[1], params)
    expected = (max(float(g.abs().max()) for g in g_res if g is not None)
                / float(torch.cat([g.abs().flatten() for g in g_ic]).mean()))
    assert expected > 5  # the condition's gradients are much smaller than the residual's

    problem, model = fresh(Balancing(every=1, alpha=1.0, until=1))
    train(model, problem, [Stage("adam", 1, 1e-4)], options=TrainOptions(progress=False))
    assert float(model.term_weights[0]) == pytest.approx(expected, rel=1e-10)

    problem, model = fresh(Balancing(every=1, alpha=0.3, until=3))
    train(model, problem, [Stage("adam", 3, 1e-4, "constant")],
          options=TrainOptions(progress=False))
    after3 = float(model.term_weights[0])
    problem, model = fresh(Balancing(every=1, alpha=0.3, until=3))
    train(model, problem, [Stage("adam", 8, 1e-4, "constant")],
          options=TrainOptions(progress=False))
    assert float(model.term_weights[0]) == after3  # after `until`, the weights stay fixed
    assert 1 < after3 < expected
