"""The L-BFGS stages of the training loop: no silent stop on a tolerance, convergence on least
squares and Rosenbrock, one evaluation per iteration where the objective stays the same (with
the same iterates), and a stage that ends, after a restart, when its line search can no longer
move the weights.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from scidl.train import Stage, TrainOptions, train


def options(**kwargs) -> TrainOptions:
    return TrainOptions(progress=False, **kwargs)


class LinearLeastSquares:
    """``min_{w, b} |X w + b - y|^2 / P`` with noisy ``y``: a positive minimum whose minimiser
    ``torch.linalg.lstsq`` gives independently."""

    def __init__(self, points: int = 64, features: int = 6, seed: int = 0):
        gen = torch.Generator().manual_seed(seed)
        self.inputs = torch.randn(points, features, dtype=torch.float64, generator=gen)
        weight = torch.randn(1, features, dtype=torch.float64, generator=gen)
        noise = 0.1 * torch.randn(points, 1, dtype=torch.float64, generator=gen)
        self.targets = self.inputs @ weight.T + 0.5 + noise
        design = torch.cat([self.inputs, torch.ones(points, 1, dtype=torch.float64)], dim=1)
        solution = torch.linalg.lstsq(design, self.targets).solution
        self.weight, self.bias = solution[:-1].T, solution[-1]
        self.minimum = float((design @ solution - self.targets).pow(2).mean())

    def batch(self, step, rank=0, world_size=1):
        return self.inputs[rank::world_size], self.targets[rank::world_size]

    def loss(self, model, batch):
        x, y = batch
        return (model(x) - y).pow(2).mean(), {}


def test_lbfgs_runs_every_requested_iteration_and_solves_least_squares():
    problem = LinearLeastSquares()
    torch.manual_seed(0)
    model = nn.Linear(6, 1).double()
    result = train(model, problem, [Stage("lbfgs", steps=30, lr=1.0)],
                   options=options(log_every=1))
    # the tolerances are zeroed: no silent early stop, although it converged long before (an
    # objective that does not declare changes_at may change with the step: it never stalls)
    assert result.optimizer_iterations == {"0:lbfgs": 30} and result.stalled == {}
    assert result.steps == 30 and [r["step"] for r in result.history] == list(range(1, 31))
    losses = [r["loss"] for r in result.history]
    assert losses[0] > 100 * problem.minimum
    with torch.no_grad():
        final, _ = problem.loss(model, problem.batch(0))
    assert float(final) - problem.minimum < 1e-13 * problem.minimum
    # near a minimum the loss is flat to second order, so round-off in the loss (~1e-18 here)
    # limits the weights to ~sqrt(1e-16) accuracy; measured: 6e-10
    assert torch.allclose(model.weight.detach(), problem.weight, rtol=0, atol=1e-8)
    assert torch.allclose(model.bias.detach(), problem.bias, rtol=0, atol=1e-8)


class FixedLeastSquares(LinearLeastSquares):
    """The same problem, declaring that it is one function for all steps (or changes at
    ``change``)."""

    def __init__(self, change: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.change = change

    def changes_at(self, step):
        return step == 0 or step == self.change


def test_lbfgs_that_cannot_move_restarts_and_then_ends_the_stage():
    # converged to round-off, the line search finds no decrease: the step leaves the weights
    # as they were, and torch's L-BFGS would repeat that no-op for every remaining iteration
    runs = {}
    for change in (None, 40):
        problem = FixedLeastSquares(change)
        torch.manual_seed(0)
        model = nn.Linear(6, 1).double()
        runs[change] = train(model, problem, [Stage("lbfgs", steps=60, lr=1.0)],
                             options=options(log_every=1))
        with torch.no_grad():
            final, _ = problem.loss(model, problem.batch(0))
        assert float(final) - problem.minimum < 1e-13 * problem.minimum
    fixed = runs[None]
    # first a restart from steepest descent (memory cleared), then a stall ends the stage
    assert fixed.restarts == {"0:lbfgs": 1}
    stop = fixed.stalled["0:lbfgs"]
    assert 10 < stop < 60 and fixed.optimizer_iterations == {"0:lbfgs": stop}
    # the no-op iterations are skipped: the run ends at its planned step
    assert fixed.steps == 60 and [r["step"] for r in fixed.history][-2:] == [stop - 1, 60]
    # an objective that will change later in the stage keeps iterating until it has changed
    # (here to the same function again: it stalls again right after)
    assert stop < 40 and runs[40].stalled == {"0:lbfgs": 41}


def test_lbfgs_after_adam_counts_its_own_iterations():
    problem = LinearLeastSquares(seed=1)
    torch.manual_seed(1)
    model = nn.Linear(6, 1).double()
    stages = [Stage("adam", steps=5, lr=1e-2), Stage("lbfgs", steps=25, lr=1.0)]
    result = train(model, problem, stages, options=options(log_every=1))
    assert result.optimizer_iterations == {"0:adam": 5, "1:lbfgs": 25}
    assert result.steps == 30
    assert [r["stage"] for r in result.history] == [0] * 5 + [1] * 25
    assert [r["lr"] for r in result.history][5:] == [1.0] * 25  # L-BFGS keeps its step size
    assert torch.allclose(model.weight.detach(), problem.weight, rtol=0, atol=1e-8)


class Point(nn.Module):
    """A model that is just a point in the plane."""

    def __init__(self, x: float, y: float):
        super().__init__()
        self.xy = nn.Parameter(torch.tensor([x, y], dtype=torch.float64))


class Rosenbrock:
    """``(1 - x)^2 + 100 (y - x^2)^2``: minimum 0 at ``(1, 1)`` at the end of a curved valley."""

    def batch(self, step, rank=0, world_size=1):
        return None

    def loss(self, model, batch):
        x, y = model.xy
        return (1 - x) ** 2 + 100 * (y - x**2) ** 2, {}


def test_lbfgs_line_search_solves_rosenbrock():
    # From the classical start (-1.2, 1) the first trial step overshoots, so the strong-Wolfe
    # line search must bracket and zoom. (With the line search starved of evaluations L-BFGS
    # rejected that step, kept t = 0 and sat at the start for all 40 "iterations".)
    model = Point(-1.2, 1.0)
    result = train(model, Rosenbrock(), [Stage("lbfgs", steps=40, lr=1.0)],
                   options=options(log_every=1))
    assert result.optimizer_iterations == {"0:lbfgs": 40}
    losses = [r["loss"] for r in result.history]
    assert losses[0] == pytest.approx(24.2)
    assert all(b <= a for a, b in zip(losses[:-1], losses[1:], strict=True))  # descent
    assert torch.allclose(model.xy.detach(), torch.ones(2, dtype=torch.float64), rtol=0,
                          atol=1e-12)


class CountingRosenbrock(Rosenbrock):
    """Rosenbrock that counts its evaluations and may declare when it stays the same."""

    def __init__(self, changes=None):
        self.evaluations = 0
        if changes is not None:
            self.changes_at = changes

    def loss(self, model, batch):
        self.evaluations += 1
        return super().loss(model, batch)


def test_lbfgs_reuses_the_line_search_evaluation_with_the_same_iterates():
    # torch's LBFGS, one iteration per call, evaluates the start point that its previous line
    # search has just evaluated; an objective that declares itself unchanged skips that repeat
    runs = {}
    for name, changes in [("plain", None), ("reuse", lambda step: step == 0),
                          ("changes every 5", lambda step: step % 5 == 0)]:
        objective = CountingRosenbrock(changes)
        model = Point(-1.2, 1.0)
        result = train(model, objective, [Stage("lbfgs", steps=40, lr=1.0)],
                       options=options(log_every=1))
        runs[name] = (model.xy.detach().clone(), [r["loss"] for r in result.history],
                      objective.evaluations)
    xy, losses, plain_evaluations = runs["plain"]
    for name in ("reuse", "changes every 5"):
        assert torch.equal(runs[name][0], xy)  # bit for bit the same iterates
        assert runs[name][1] == losses  # and the same logged start-of-step losses
    # one evaluation per iteration is saved, except where the objective may have changed
    assert runs["reuse"][2] == plain_evaluations - 39
    assert runs["changes every 5"][2] == plain_evaluations - 39 + 7


def test_lbfgs_reuse_never_returns_a_stale_loss_after_the_model_changed():
    # something moves the parameters after every step: the cached evaluation no longer
    # matches their values, so every step evaluates its true start point again
    from torch.optim.optimizer import register_optimizer_step_post_hook

    objective = CountingRosenbrock(lambda step: step == 0)
    model = Point(-1.2, 1.0)
    starts = [Rosenbrock().loss(model, None)[0].item()]

    def nudge(*_):
        with torch.no_grad():
            model.xy.mul_(0.999)
        starts.append(Rosenbrock().loss(model, None)[0].item())

    handle = register_optimizer_step_post_hook(nudge)
    try:
        result = train(model, objective, [Stage("lbfgs", steps=10, lr=1.0)],
                       options=options(log_every=1))
    finally:
        handle.remove()
    assert [r["loss"] for r in result.history] == pytest.approx(starts[:10], rel=1e-14)
    assert objective.evaluations >= 2 * 10  # a start evaluation plus a line search each


def test_unknown_optimizer_is_rejected():
    with pytest.raises(ValueError, match="unknown optimizer 'sgd'"):
        train(nn.Linear(6, 1).double(), LinearLeastSquares(), [Stage("sgd", steps=1)],
              options=options())
