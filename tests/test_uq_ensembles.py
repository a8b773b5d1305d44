"""Deep ensembles, Gaussian heads and MC dropout against their mathematics: the vectorised
ensemble equals its members one by one (forward and training), the losses equal their closed
forms, a heteroscedastic head recovers a known noise level, epistemic spread grows away from
the data, and MC dropout's mixture moments and likelihood are the paper's formulas.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from scidl.errors import ShapeError
from scidl.models.fno_nd import FNO
from scidl.models.mlp import MLP
from scidl.uq.dropout import (
    DropoutMLP,
    MCDropout,
    RateDropout,
    dropout_ensemble,
    fit_mc_dropout,
    mc_dropout_grid_search,
    mc_log_likelihood,
)
from scidl.uq.ensemble import VectorizedEnsemble, fit_ensemble
from scidl.uq.heads import GaussianHead, beta_nll_loss, gaussian_nll_loss, split_mean_variance

torch.set_num_threads(1)


def gaussian_mlp(d: int = 1, width: int = 32, layers: int = 2, act: str = "tanh"):
    return lambda: GaussianHead(MLP(d, 2, width, layers, act), min_std=1e-3)


# ---- heads and losses ---------------------------------------------------------------------


def test_gaussian_nll_equals_closed_form():
    gen = torch.Generator().manual_seed(0)
    mean, y = torch.randn(50, 3, generator=gen, dtype=torch.float64), torch.randn(
        50, 3, generator=gen, dtype=torch.float64)
    var = torch.rand(50, 3, generator=gen, dtype=torch.float64) + 0.1
    expected = -torch.distributions.Normal(mean, var.sqrt()).log_prob(y).mean()
    assert torch.allclose(gaussian_nll_loss(mean, var, y), expected, atol=1e-14)
    by_hand = (0.5 * torch.log(2 * math.pi * var) + (y - mean) ** 2 / (2 * var)).mean()
    assert torch.allclose(gaussian_nll_loss(mean, var, y), by_hand, atol=1e-14)


def test_beta_nll_limits():
    gen = torch.Generator().manual_seed(1)
    y = torch.randn(40, 1, generator=gen, dtype=torch.float64)
    mean = torch.randn(40, 1, generator=gen, dtype=torch.float64, requires_grad=True)
    var = (torch.rand(40, 1, generator=gen, dtype=torch.float64) + 0.2).requires_grad_()
    # beta = 0 is the NLL, value and gradients
    a, b = beta_nll_loss(mean, var, y, beta=0.0), gaussian_nll_loss(mean, var, y)
    assert torch.allclose(a, b, atol=1e-14)
    ga = torch.autograd.grad(a, (mean, var))
    gb = torch.autograd.grad(b, (mean, var))
    assert all(torch.allclose(u, v, atol=1e-14) for u, v in zip(ga, gb))
    # beta = 1: the mean's gradient is that of half the mean squared error (Seitzer et al.)
    (g_mean,) = torch.autograd.grad(beta_nll_loss(mean, var, y, beta=1.0), mean)
    assert torch.allclose(g_mean, (mean - y).detach() / y.numel(), atol=1e-14)


def test_gaussian_head_split_and_floor():
    raw = torch.tensor([[0.5, -50.0], [1.0, 2.0]])
    mean, var = split_mean_variance(raw, min_std=1e-2)
    assert torch.equal(mean, raw[:, :1])
    assert torch.allclose(var, nn.functional.softplus(raw[:, 1:]) + 1e-4)
    assert float(var.min()) >= 1e-4 * (1 - 1e-6)
    with pytest.raises(ShapeError, match="even number"):
        split_mean_variance(torch.zeros(4, 3))
    head = GaussianHead(nn.Linear(2, 2))
    x = torch.randn(5, 2)
    pred = head.predict(x)
    assert pred.mean.shape == pred.std.shape == (5, 1)
    assert torch.allclose(pred.std**2, head(x)[1]) and pred.epistemic_std is None


def test_head_learns_known_noise_std():
    """y = sin(x) + sigma(x) eps: the predicted aleatoric std recovers sigma(x) within 15 %."""
    gen = torch.Generator().manual_seed(0)
    n = 4000
    x = torch.rand(n, 1, generator=gen) * 4 - 2
    sigma = lambda t: 0.1 + 0.05 * t**2  # noqa: E731  (0.1 .. 0.3)
    y = torch.sin(x) + sigma(x) * torch.randn(n, 1, generator=gen)
    model = fit_ensemble(gaussian_mlp(width=32), x, y, members=2, epochs=30, batch_size=100,
                         lr=3e-3, seed=0)
    grid = torch.linspace(-1.8, 1.8, 37)[:, None]
    pred = model.predict(grid)
    relative = (pred.aleatoric_std / sigma(grid) - 1).abs()
    assert float(relative.mean()) < 0.08, relative.flatten()
    assert float(relative.max()) < 0.15, relative.flatten()
    assert float((pred.mean - torch.sin(grid)).abs().max()) < 0.1


# ---- the vectorised ensemble ----------------------------------------------------------------


def test_vectorized_forward_equals_members():
    ensemble = VectorizedEnsemble(gaussian_mlp(d=3), members=4, seed=3)
    x = torch.randn(11, 3)
    mean, var = ensemble(x)
    xs = torch.randn(4, 11, 3)
    mean_m, var_m = ensemble.forward_members(xs)
    assert mean.shape == var.shape == (4, 11, 1)
    for i in range(4):
        member = ensemble.member(i)
        m_i, v_i = member(x)
        assert torch.allclose(m_i, mean[i], atol=1e-6) and torch.allclose(v_i, var[i], atol=1e-6)
        m_i, v_i = member(xs[i])
        assert torch.allclose(m_i, mean_m[i], atol=1e-6)
        assert torch.allclose(v_i, var_m[i], atol=1e-6)
    # members are distinct initialisations, and the same seed rebuilds them exactly
    assert not torch.allclose(mean[0], mean[1])
    again = VectorizedEnsemble(gaussian_mlp(d=3), members=4, seed=3)
    assert torch.equal(again(x)[0], mean)
    assert not torch.allclose(VectorizedEnsemble(gaussian_mlp(d=3), 4, seed=4)(x)[0], mean)
    with pytest.raises(ShapeError, match="one batch per member"):
        ensemble.forward_members(torch.randn(3, 11, 3))


def test_concat_and_select_keep_members():
    a = VectorizedEnsemble(gaussian_mlp(), 2, seed=0)
    b = VectorizedEnsemble(gaussian_mlp(), 3, seed=1)
    both = VectorizedEnsemble.concat([a, b])
    x = torch.randn(7, 1)
    assert both.members == 5
    assert torch.equal(both(x)[0], torch.cat([a(x)[0], b(x)[0]]))
    assert torch.equal(both.select([2, 3, 4])(x)[0], b(x)[0])
    assert both.shuffle_seeds[2:] == b.shuffle_seeds


def test_vectorized_training_equals_sequential():
    """Same seeds and batch orders: all members at once == one after another (float64), with
    the NLL, weight decay and fast-gradient-sign adversarial training all active."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(90, 2, generator=gen, dtype=torch.float64)
    y = (x[:, :1] * x[:, 1:]).sin() + 0.1 * torch.randn(90, 1, generator=gen,
                                                        dtype=torch.float64)
    kwargs = dict(members=3, epochs=4, batch_size=16, lr=1e-2, weight_decay=1e-3,
                  adversarial_eps=0.01, seed=7)
    fast = fit_ensemble(gaussian_mlp(d=2, width=8), x, y, vectorize=True, **kwargs)
    slow = fit_ensemble(gaussian_mlp(d=2, width=8), x, y, vectorize=False, **kwargs)
    start = VectorizedEnsemble(gaussian_mlp(d=2, width=8), 3, seed=7).double()
    for (name, p), q, p0 in zip(fast.named_parameters(), slow.parameters(),
                                start.parameters()):
        assert p.dtype == torch.float64
        assert torch.allclose(p, q, atol=1e-10, rtol=0), name
        assert not torch.allclose(p, p0)  # training moved it
    assert torch.allclose(fast.history, slow.history, atol=1e-10)
    # determinism: the same call gives the same numbers
    again = fit_ensemble(gaussian_mlp(d=2, width=8), x, y, vectorize=True, **kwargs)
    assert all(torch.equal(p, q) for p, q in zip(fast.parameters(), again.parameters()))


def test_epistemic_std_grows_away_from_data():
    gen = torch.Generator().manual_seed(2)
    x = torch.rand(400, 1, generator=gen) * 2 - 1
    y = torch.sin(3 * x) + 0.05 * torch.randn(400, 1, generator=gen)
    model = fit_ensemble(gaussian_mlp(width=32), x, y, members=5, epochs=30, batch_size=50,
                         lr=1e-2, seed=0)
    inside = model.predict(torch.linspace(-0.9, 0.9, 19)[:, None])
    outside = model.predict(torch.tensor([[-4.0], [-3.5], [3.5], [4.0]]))
    assert float(outside.epistemic_std.min()) > 3 * float(inside.epistemic_std.mean())
    # mixture moments (Lakshminarayanan et al.): total var = aleatoric + epistemic
    assert torch.allclose(inside.std**2, inside.aleatoric_std**2 + inside.epistemic_std**2)
    assert inside.samples.shape == (5, 19, 1)
    assert torch.allclose(inside.mean, inside.samples.mean(0))


def test_fno_ensemble_predicts_per_pixel_std():
    factory = lambda: GaussianHead(  # noqa: E731
        FNO(ndim=1, in_channels=1, out_channels=2, modes=4, width=8, layers=2))
    ensemble = VectorizedEnsemble(factory, members=3, seed=0)
    u = torch.randn(4, 1, 32)
    mean, var = ensemble(u)
    assert mean.shape == var.shape == (3, 4, 1, 32)
    for i in range(3):
        m_i, v_i = ensemble.member(i)(u)
        assert torch.allclose(m_i, mean[i], atol=1e-6) and torch.allclose(v_i, var[i], atol=1e-6)
    target = torch.roll(u, 3, dims=-1)
    model = fit_ensemble(factory, u, target, members=3, epochs=2, batch_size=2, lr=1e-3)
    pred = model.predict(torch.randn(5, 1, 32))
    assert pred.mean.shape == pred.std.shape == pred.epistemic_std.shape == (5, 1, 32)
    assert pred.samples.shape == (3, 5, 1, 32)
    assert bool((pred.std > 0).all())


def test_loss_and_output_mismatch_is_explained():
    with pytest.raises(ValueError, match="GaussianHead"):
        fit_ensemble(lambda: MLP(1, 1, 4, 1), torch.randn(8, 1), torch.randn(8, 1),
                     members=2, epochs=1, loss="gaussian_nll")
    with pytest.raises(ShapeError):
        fit_ensemble(gaussian_mlp(), torch.randn(8, 1), torch.randn(7, 1), members=2)


# ---- MC dropout ----------------------------------------------------------------------------


def test_rate_dropout_statistics():
    drop = RateDropout(0.3).train()
    out = drop(torch.ones(200_000))
    assert abs(float((out == 0).float().mean()) - 0.3) < 0.005
    assert abs(float(out.mean()) - 1.0) < 0.01  # inverted dropout keeps the mean
    assert torch.equal(drop.eval()(torch.ones(5)), torch.ones(5))


def test_dropout_ensemble_members_drop_at_their_own_rates():
    ensemble = dropout_ensemble(3, [(0.0, 1.0), (0.5, 1.0)], width=16).train()
    x = torch.randn(5, 3)
    first, second = ensemble(x), ensemble(x)
    assert torch.equal(first[0], second[0])  # p = 0: deterministic even in train mode
    assert not torch.allclose(first[1], second[1])
    assert torch.allclose(first[0], ensemble.member(0).eval()(x), atol=1e-6)
    assert float(ensemble.member(1).net[0].rate) == 0.5


def test_mc_dropout_p0_and_modes_restored():
    net = nn.Sequential(nn.Linear(3, 8), nn.BatchNorm1d(8), nn.Dropout(0.0), nn.ReLU(),
                        nn.Linear(8, 1))
    with torch.no_grad():
        net[1].running_mean.fill_(0.5)
        net[1].running_var.fill_(2.0)
    x = torch.randn(6, 3)
    net.train()
    net[4].eval()  # a mixed state must come back as it was
    before = {name: m.training for name, m in net.named_modules()}
    pred = MCDropout(net, samples=20, tau=4.0).predict(x)
    assert {name: m.training for name, m in net.named_modules()} == before
    assert float(pred.epistemic_std.abs().max()) == 0.0
    # BatchNorm ran in eval mode (running statistics), not on the batch
    assert torch.allclose(pred.mean, net.eval()(x), atol=1e-6)
    assert torch.allclose(pred.std, torch.full_like(pred.mean, 0.5))


def test_mc_dropout_moments_and_likelihood():
    torch.manual_seed(0)
    net = DropoutMLP(2, 1, width=16, hidden_layers=2, p=0.2).eval()
    x, y = torch.randn(10, 2), torch.randn(10, 1)
    mc = MCDropout(net, samples=64, tau=2.0)
    pred = mc.predict(x)
    assert not net.training  # restored
    assert float(pred.epistemic_std.min()) > 0
    var = pred.samples.var(0, unbiased=False)
    assert torch.allclose(pred.std**2, var + 0.5, atol=1e-6)
    # one draw: the likelihood is the Gaussian log density with variance 1 / tau
    draw = pred.samples[:1]
    expected = torch.distributions.Normal(draw[0], 1 / math.sqrt(2.0)).log_prob(y)
    assert torch.allclose(mc_log_likelihood(draw, y, 2.0), expected, atol=1e-6)
    # T identical draws give the same value as one
    assert torch.allclose(mc_log_likelihood(draw.expand(5, -1, -1), y, 2.0), expected,
                          atol=1e-6)


def test_fit_mc_dropout_and_grid_search():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(300, 3, generator=gen, dtype=torch.float64) * 5 + 2
    y = 10 + 3 * x[:, 0] - x[:, 1] + 0.5 * torch.randn(300, generator=gen, dtype=torch.float64)
    mc = fit_mc_dropout(x, y, p=0.05, tau=4.0, epochs=40, samples=100)
    pred = mc.predict(x[:50])
    rmse = float((pred.mean[:, 0] - y[:50]).pow(2).mean().sqrt())
    # raw units: the model un-normalises its output (a trivial predictor has rmse std(y) ~ 16)
    assert rmse < 0.15 * float(y.std())
    assert abs(float(pred.mean.mean()) - float(y[:50].mean())) < 0.1 * float(y.std())
    torch.rand(10)  # the global generator's state must not matter
    again = fit_mc_dropout(x, y, p=0.05, tau=4.0, epochs=40, samples=100)
    assert all(torch.equal(a, b) for a, b in zip(mc.model.parameters(), again.model.parameters()))
    best, table = mc_dropout_grid_search(x, y, p_values=[0.01, 0.1], tau_values=[0.5, 4.0],
                                         epochs=5, validation_samples=50, samples=50)
    assert len(table) == 4
    top = max(table, key=lambda row: row["validation_ll"])
    assert best.tau == top["tau"]
