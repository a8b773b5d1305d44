"""Long-horizon forecasting: autoregressive objectives, rollouts, ensembles, stabilisers."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from scidl.errors import ShapeError
from scidl.forecast import (
    AutoregressiveObjective,
    Forecaster,
    apply_spectral_norm,
    ensemble_scores,
    evaluate_rollout,
    gaussian_perturbation,
    layer_operator_norms,
    mean_spectrum,
    mean_square,
    mean_value,
    multi_model_ensemble,
    perturbed_ensemble,
    rollout,
    spectrum_relative_error,
    step,
    tighten_spectral_norm,
)
from scidl.forecast.stabilizers import ModeSpectralNorm
from scidl.models import FNO, UNet
from scidl.numerics import PeriodicGrid, simulate
from scidl.pdes import KuramotoSivashinsky
from scidl.train import Stage, TrainOptions, train


class Linear1d(nn.Module):
    """``u -> a * u + b * roll(u)``: a tiny differentiable one-step model with two weights."""

    def __init__(self, a: float = 0.9, b: float = 0.05):
        super().__init__()
        self.a = nn.Parameter(torch.tensor(a))
        self.b = nn.Parameter(torch.tensor(b))

    def forward(self, u):
        return self.a * u + self.b * torch.roll(u, 1, dims=-1)


def _trajectories(n=6, t=8, c=1, x=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, t, c, x, generator=g)


def _grads(model, objective, batch):
    model.zero_grad()
    loss, _ = objective.loss(model, batch)
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in model.parameters()]


# ---- autoregressive objective ---------------------------------------------------------------

def test_unrolled_with_k1_equals_one_step():
    data = _trajectories()
    one = AutoregressiveObjective(data, batch_size=4, mode="one-step", seed=3)
    unr = AutoregressiveObjective(data, batch_size=4, mode="unrolled", unroll=1, seed=3)
    push = AutoregressiveObjective(data, batch_size=4, mode="pushforward", unroll=1, seed=3)
    model = Linear1d()
    b1, b2 = one.batch(5), unr.batch(5)
    assert torch.equal(b1["window"], b2["window"])
    l1, g1 = _grads(model, one, b1)
    l2, g2 = _grads(model, unr, b2)
    l3, g3 = _grads(model, push, push.batch(5))
    assert torch.equal(l1, l2) and torch.equal(l1, l3)
    for a, b, c in zip(g1, g2, g3):
        assert torch.equal(a, b) and torch.equal(a, c)


def test_unrolled_backpropagates_through_every_step():
    data = _trajectories()
    obj = AutoregressiveObjective(data, batch_size=3, mode="unrolled", unroll=3, seed=1)
    model = Linear1d()
    batch = obj.batch(0)
    loss, (ga, gb) = _grads(model, obj, batch)
    window = batch["window"]
    a, b = model.a.detach().requires_grad_(), model.b.detach().requires_grad_()
    u, errors = window[:, 0], []
    for j in range(1, 4):
        u = a * u + b * torch.roll(u, 1, dims=-1)
        errors.append((u - window[:, j]).square().mean())
    expected = torch.stack(errors).mean()
    expected.backward()
    assert torch.allclose(loss, expected.detach())
    assert torch.allclose(ga, a.grad) and torch.allclose(gb, b.grad)


def test_pushforward_gradient_flows_only_through_last_step():
    data = _trajectories(t=6)
    obj = AutoregressiveObjective(data, batch_size=4, mode="pushforward", unroll=3, seed=2)
    model = Linear1d()
    batch = obj.batch(0)
    loss, (ga, gb) = _grads(model, obj, batch)
    window = batch["window"]
    # the first two steps as constants, then one differentiable step
    with torch.no_grad():
        u = window[:, 0]
        for _ in range(2):
            u = model(u)
    a, b = model.a.detach().requires_grad_(), model.b.detach().requires_grad_()
    expected = (a * u + b * torch.roll(u, 1, dims=-1) - window[:, 3]).square().mean()
    expected.backward()
    assert torch.allclose(loss, expected.detach())
    assert torch.allclose(ga, a.grad) and torch.allclose(gb, b.grad)
    # the through-all-steps gradient is different
    unrolled = AutoregressiveObjective(data, batch_size=4, mode="unrolled", unroll=3, seed=2)
    _, (ua, _) = _grads(model, unrolled, unrolled.batch(0))
    assert not torch.allclose(ua, ga)


def test_random_unroll_varies_and_batches_are_deterministic():
    data = _trajectories()
    obj = AutoregressiveObjective(data, batch_size=4, mode="pushforward", unroll=3,
                                  random_unroll=True, noise_std=0.1, seed=7,
                                  augment=("shift", "odd_reflect"))
    assert {obj.batch(s)["unroll"] for s in range(30)} == {1, 2, 3}
    b1, b2 = obj.batch(11), obj.batch(11)
    assert torch.equal(b1["window"], b2["window"]) and torch.equal(b1["noise"], b2["noise"])
    # ranks split the global batch
    halves = [obj.batch(11, rank=r, world_size=2) for r in range(2)]
    assert torch.equal(torch.cat([halves[0]["window"], halves[1]["window"]]).sort(0).values,
                       b1["window"].sort(0).values)


def test_noise_is_training_only_and_rollout_is_deterministic():
    data = _trajectories()
    model = Linear1d()
    clean = AutoregressiveObjective(data, batch_size=4, seed=0)
    noisy = AutoregressiveObjective(data, batch_size=4, noise_std=0.5, seed=0)
    assert clean.batch(0)["noise"] is None
    assert noisy.batch(0)["noise"].abs().sum() > 0
    l_clean, _ = clean.loss(model, clean.batch(0))
    l_noisy, _ = noisy.loss(model, noisy.batch(0))
    assert not torch.allclose(l_clean, l_noisy)
    # evaluation never sees the training scheme: one model, the same forecasts every time
    u0 = data[:, 0]
    r1 = rollout(model, u0, 5).trajectory
    r2 = rollout(model, u0, 5).trajectory
    assert torch.equal(r1, r2)
    u = u0
    for k in range(5):
        with torch.no_grad():
            u = model(u)
        assert torch.equal(r1[:, k], u)


def test_training_scheme_changes_nothing_at_evaluation():
    """A model trained with noise + pushforward is evaluated by the same plain rollout: the
    scheme lives in the objective, not the model, so identical weights forecast identically."""
    data = _trajectories(n=4, t=6)
    torch.manual_seed(0)
    model = FNO(ndim=1, modes=4, width=8, layers=2, grid_channels=False)
    twin = FNO(ndim=1, modes=4, width=8, layers=2, grid_channels=False)
    twin.load_state_dict(model.state_dict())
    obj = AutoregressiveObjective(data, batch_size=2, mode="pushforward", unroll=2,
                                  noise_std=0.3, residual=True, seed=0)
    train(model, obj, [Stage("adam", 2, 1e-3)], options=TrainOptions(progress=False))
    twin.load_state_dict(model.state_dict())
    a = rollout(model, data[:, 0], 4, residual=True).trajectory
    b = Forecaster(twin, residual=True).rollout(data[:, 0], 4).trajectory
    assert torch.equal(a, b)


def test_residual_mode_and_dt_channel():
    data = _trajectories()

    class Zero(nn.Module):
        def forward(self, u):
            return torch.zeros_like(u[:, :1])

    u = data[:, 0]
    # residual with a zero increment is the identity (persistence)
    assert torch.equal(step(Zero(), u, residual=True), u)
    obj = AutoregressiveObjective(data, batch_size=4, residual=True, delta_scale=0.5)
    batch = obj.batch(0)
    loss, terms = obj.loss(Zero(), batch)
    persistence = (batch["window"][:, 1] - batch["window"][:, 0]).square().mean()
    assert torch.allclose(terms["mse"], persistence)
    assert torch.allclose(loss, persistence / 0.25)

    seen = {}

    class Spy(nn.Module):
        def forward(self, x):
            seen["x"] = x
            return x[:, :1] * 0

    dt = torch.linspace(0.1, 0.6, 6)
    obj = AutoregressiveObjective(data, batch_size=4, residual=True, dt=dt, seed=4)
    batch = obj.batch(0)
    obj.loss(Spy(), batch)
    assert seen["x"].shape == (4, 2, 16)
    assert torch.allclose(seen["x"][:, 1], batch["dt"][:, None].expand(4, 16))
    step(Spy(), u, dt=0.2)
    assert torch.all(seen["x"][:, 1] == 0.2)


def test_objective_trains_through_the_loop():
    # u_{n+1} = 0.5 u_n + 0.25 roll(u_n): the linear model recovers the two weights
    g = torch.Generator().manual_seed(0)
    u = torch.randn(8, 1, 1, 32, generator=g)
    frames = [u]
    for _ in range(5):
        frames.append(0.5 * frames[-1] + 0.25 * torch.roll(frames[-1], 1, dims=-1))
    data = torch.cat(frames, dim=1)
    model = Linear1d(0.0, 0.0)
    obj = AutoregressiveObjective(data, batch_size=8, mode="unrolled", unroll=3, seed=0)
    train(model, obj, [Stage("adam", 300, 0.05)], options=TrainOptions(progress=False))
    assert abs(model.a.item() - 0.5) < 1e-2 and abs(model.b.item() - 0.25) < 1e-2


def test_objective_rejects_bad_input():
    with pytest.raises(ShapeError):
        AutoregressiveObjective(torch.zeros(3, 4, 16), batch_size=2)
    with pytest.raises(ShapeError):
        AutoregressiveObjective(torch.zeros(3, 2, 1, 16), batch_size=2, mode="unrolled",
                                unroll=2)
    with pytest.raises(ValueError):
        AutoregressiveObjective(torch.zeros(3, 4, 1, 16), batch_size=2, mode="teacher")


# ---- rollout ---------------------------------------------------------------------------------

def test_rollout_shapes_storage_and_invariants():
    model = Linear1d(1.0, 0.0)  # identity: every invariant is conserved
    u0 = torch.randn(3, 2, 8, 8)
    r = rollout(model, u0, 10, monitor={"mass": mean_value, "energy": mean_square})
    assert r.trajectory.shape == (3, 10, 2, 8, 8)
    assert r.steps_kept.tolist() == list(range(1, 11))
    assert r.invariants["mass"].shape == (3, 11) and r.finite
    assert torch.allclose(r.drift("energy"), torch.zeros(3, 11))
    r = rollout(model, u0, 10, store_every=3, keep_last=2, batch_size=2)
    assert r.trajectory.shape == (3, 2, 2, 8, 8) and r.steps_kept.tolist() == [6, 9]
    with pytest.raises(ShapeError):
        rollout(model, torch.randn(3, 8), 2)


def test_rollout_restores_training_mode_and_flags_blow_up():
    model = Linear1d(3.0, 0.0)
    model.train()
    r = rollout(model, torch.full((2, 1, 4), 1e30), 80)
    assert model.training and not r.finite
    assert (r.first_nonfinite > 0).all()


def test_projection_hook_applied_after_every_step():
    def zero_mean(u):
        return u - u.mean(dim=-1, keepdim=True)

    calls = []

    def counting(u):
        calls.append(1)
        return zero_mean(u)

    model = Linear1d(1.0, 0.0)

    class AddOne(nn.Module):
        def forward(self, u):
            return u + 1.0  # breaks the mean every step

    u0 = zero_mean(torch.randn(2, 1, 16))
    plain = rollout(AddOne(), u0, 5, monitor={"mean": mean_value})
    assert torch.allclose(plain.invariants["mean"][:, -1], torch.full((2,), 5.0))
    fixed = rollout(AddOne(), u0, 5, projection=counting, monitor={"mean": mean_value})
    assert len(calls) == 5
    assert fixed.invariants["mean"].abs().max() < 1e-6
    assert torch.allclose(rollout(model, u0, 3, projection=zero_mean).trajectory[:, -1], u0)


def test_evaluate_rollout_perfect_and_persistence():
    g = torch.Generator().manual_seed(0)
    ref = torch.randn(4, 6, 1, 32, generator=g)
    scores = evaluate_rollout(ref, ref, 0.5, climatology=torch.zeros(32))
    assert torch.allclose(scores["rmse"], torch.zeros(6))
    assert torch.allclose(scores["acc"], torch.ones(6))
    assert torch.allclose(scores["high_correlation_time"], torch.full((4,), 3.0))
    noisy = evaluate_rollout(ref + 0.1 * torch.randn(ref.shape, generator=g), ref, 0.5)
    assert (noisy["rmse"] > 0).all() and float(noisy["high_correlation_time_mean"]) == 3.0
    assert spectrum_relative_error(mean_spectrum(ref), mean_spectrum(ref)) == 0.0


# ---- ensembles -------------------------------------------------------------------------------

def test_spread_skill_is_one_for_an_exchangeable_ensemble():
    # truth and members are i.i.d. draws around a common signal: calibrated by construction
    g = torch.Generator().manual_seed(0)
    signal = torch.randn(64, 5, 1, 32, generator=g)
    noise_std = torch.linspace(0.1, 1.0, 5).reshape(1, 5, 1, 1)
    truth = signal + noise_std * torch.randn(signal.shape, generator=g)
    members = signal + noise_std * torch.randn(8, *signal.shape, generator=g)
    scores = ensemble_scores(members, truth)
    assert scores["spread_skill"].shape == (5,)
    assert torch.all((scores["spread_skill"] - 1).abs() < 0.05)
    assert torch.all(scores["crps"] > 0)
    under = ensemble_scores(signal + 0.3 * (members - signal), truth)
    assert torch.all(under["spread_skill"] < 0.5)


def test_perturbed_and_multi_model_ensembles():
    u0 = torch.randn(3, 1, 16)
    model = Linear1d()
    ens = perturbed_ensemble(model, u0, 4, members=5, perturbation=0.1, seed=1,
                             perturb_first=False)
    assert ens.shape == (5, 3, 4, 1, 16)
    assert torch.equal(ens[0], rollout(model, u0, 4).trajectory)
    assert not torch.equal(ens[1], ens[2])
    again = perturbed_ensemble(model, u0, 4, members=5, perturbation=0.1, seed=1,
                               perturb_first=False)
    assert torch.equal(ens, again)
    smooth = gaussian_perturbation(0.2, smoothing=3)(u0, torch.Generator().manual_seed(0))
    diff = smooth - u0
    assert torch.allclose(diff.mean(dim=-1), torch.zeros(3, 1), atol=1e-6)
    assert torch.allclose(diff.square().mean(dim=-1).sqrt(), torch.full((3, 1), 0.2))
    multi = multi_model_ensemble([Linear1d(0.9), Linear1d(0.8)], u0, 4)
    assert multi.shape == (2, 3, 4, 1, 16)
    ref = rollout(Linear1d(0.85), u0, 4).trajectory
    scores = ensemble_scores(multi, ref)
    assert set(scores) == {"crps", "spread_skill", "rmse_mean", "spread", "rmse_members"}


# ---- spectral normalisation -------------------------------------------------------------------

def _check_norms(model):
    tighten_spectral_norm(model, iterations=300)
    model.eval()
    norms = layer_operator_norms(model)
    assert norms and max(norms.values()) <= 1 + 1e-3, norms
    return norms


def test_spectral_norm_fno_bounds_every_mode():
    torch.manual_seed(0)
    model = FNO(ndim=2, modes=3, width=6, layers=2)
    for conv in model.spectral:  # make some modes expansive
        with torch.no_grad():
            conv.weight.mul_(200.0)
    before = layer_operator_norms(model)
    assert max(before.values()) > 1.5
    apply_spectral_norm(model)
    norms = _check_norms(model)
    # the largest mode of each spectral layer sits at the bound (expansive before)
    assert all(abs(norms[f"spectral.{i}"] - 1) < 1e-3 for i in range(2))
    x = torch.randn(2, 1, 12, 12)
    assert torch.isfinite(model(x)).all()
    # power iteration agrees with the exact per-mode norms
    conv = model.spectral[0]
    p = conv.parametrizations.weight[0]
    assert isinstance(p, ModeSpectralNorm)
    raw = conv.parametrizations.weight.original
    exact = torch.linalg.matrix_norm(p._matrices(raw), ord=2)
    assert torch.allclose(p.sigma(raw), exact, rtol=1e-4)


def test_spectral_norm_unet_and_training_step():
    torch.manual_seed(0)
    model = apply_spectral_norm(UNet(ndim=1, width=4, levels=1))
    _check_norms(model)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x = torch.randn(4, 1, 16)
    for _ in range(3):
        loss = model(x).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    _check_norms(model)
    state = model.state_dict()
    twin = apply_spectral_norm(UNet(ndim=1, width=4, levels=1))
    twin.load_state_dict(state)


def test_spectral_norm_rejects_factorised_weights():
    with pytest.raises(ValueError, match="factorised"):
        apply_spectral_norm(FNO(ndim=1, modes=4, width=8, factorization="cp"))


# ---- reference-solver invariants ---------------------------------------------------------------

def test_ks_solver_conserves_the_mean():
    """``d/dt mean(u) = -mean((u^2/2)_x + u_xx + u_xxxx) = 0`` on a periodic domain."""
    grid = PeriodicGrid(128, 64.0)
    x = grid.coordinates()[0]
    g = torch.Generator().manual_seed(0)
    u0 = 0.3 + sum(0.4 * torch.rand(2, 1, generator=g, dtype=torch.float64)
                   * torch.sin(2 * math.pi * k * x / 64.0 + 6 * torch.rand(2, 1, generator=g))
                   for k in (1, 2, 3))
    t = torch.linspace(0.0, 200.0, 101, dtype=torch.float64)
    u = simulate(KuramotoSivashinsky(), u0, t, grid=grid, dt=0.1)
    mean = u.mean(dim=-1)
    assert (mean - mean[:, :1]).abs().max() < 1e-10
    assert u[:, -1].std() > 0.5  # reached the chaotic regime, not a trivial state


def test_rollout_with_mean_projection_keeps_mass():
    projections = pytest.importorskip("scidl.forecast.projections")

    class Drifting(nn.Module):
        def forward(self, u):
            return 1.01 * u + 0.001

    u0 = torch.randn(3, 2, 8, 8)
    projection = projections.MeanProjection.from_state(u0, channels=0)
    r = rollout(Drifting(), u0, 50, projection=projection,
                monitor={"mass": lambda u: u[:, 0].mean(dim=(-2, -1))})
    assert r.drift("mass").max() < 1e-5
    free = rollout(Drifting(), u0, 50, monitor={"mass": lambda u: u[:, 0].mean(dim=(-2, -1))})
    assert free.drift("mass").max() > 1e-2

