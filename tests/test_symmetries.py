"""Galilean boosts: derived from each PDE's right-hand side, exact on solver trajectories, and
applied as reproducible augmentations by both training objectives and by operator runs."""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass

import pytest
import torch

from scidl.errors import ConfigError, ShapeError
from scidl.experiments import parse_config, run
from scidl.forecast import AutoregressiveObjective
from scidl.numerics import GalileanBoost, PeriodicGrid, galilean_boost, simulate
from scidl.pdes import PDES, Burgers, KdV, KuramotoSivashinsky, TimeDependentPDE
from scidl.train import FieldRegression


@dataclass(frozen=True)
class _Scaled(TimeDependentPDE):
    """``u_t = -3 u u_x + u_xx``: a boost coefficient nobody declared."""

    name = "scaled"

    def rhs(self, u, d):
        return -3 * u * d.x(u) + d.xx(u)


@dataclass(frozen=True)
class _Cubic(TimeDependentPDE):
    """``u_t = -u^2 u_x``: translation invariant but not Galilean."""

    name = "cubic"

    def rhs(self, u, d):
        return -u * u * d.x(u)


def test_galilean_coefficient_is_derived_from_the_rhs():
    expected = {"burgers": 1.0, "kuramoto_sivashinsky": 1.0, "kdv": 6.0, "heat": 0.0,
                "advection": 0.0, "allen_cahn": None, "fisher_kpp": None, "wave": None,
                "navier_stokes": None, "shallow_water": None}
    assert set(expected) <= set(PDES)
    for name, a in expected.items():
        assert PDES[name]().galilean_coefficient() == a, name
    assert _Scaled().galilean_coefficient() == 3.0
    assert _Cubic().galilean_coefficient() is None


def _trajectory(pde, grid, u0, times, dt):
    return simulate(pde, u0[None], times, grid=grid, dt=dt)[:, :, None]  # [1, T, 1, X]


@pytest.mark.parametrize("pde, length, burn_in, dt", [
    (KuramotoSivashinsky(), 32.0, 40.0, 0.02),
    (KdV(), 20.0, 0.0, 1e-3),
])
def test_boosted_trajectory_equals_the_solver_from_the_boosted_state(pde, length, burn_in, dt):
    """``u(x - a c t, t) + c`` against a solve from ``u0 + c``, for a sub-grid shift."""
    grid = PeriodicGrid(128, length)
    x = grid.coordinates()[0]
    u0 = (torch.sin(2 * math.pi * x / length) + 0.5 * torch.cos(6 * math.pi * x / length + 1.0))
    if burn_in:
        u0 = simulate(pde, u0[None], [0.0, burn_in], grid=grid, dt=dt)[0, -1]
    a = pde.galilean_coefficient()
    times = 0.05 * torch.arange(6, dtype=torch.float64)
    window = _trajectory(pde, grid, u0, times, dt)
    c = 0.37
    boosted = galilean_boost(window, c, times.view(-1, 1, 1), length, a)
    direct = _trajectory(pde, grid, u0 + c, times, dt)
    scale = float(window.abs().max())
    assert float((boosted - direct).abs().max()) < 1e-6 * scale
    wrong = galilean_boost(window, -c, times.view(-1, 1, 1), length, a)
    assert float((wrong - direct).abs().max()) > 0.1 * c
    boost = GalileanBoost(1.0, 0.05, length, a)  # the batched form: one speed per sample
    assert torch.allclose(boost(window, torch.tensor([c])), boosted, atol=1e-12)


def test_on_grid_burgers_boost_is_an_exact_roll_and_a_solution():
    """Operator pairs ``u0 -> u_T`` of Burgers with a front: the rounded speed makes the
    shift ``c T`` whole grid spacings, so the boost is a roll (no ringing) and a solution."""
    length, points, t_final, nu = 1.0, 128, 0.5, 0.01
    grid = PeriodicGrid(points, length)
    x = grid.coordinates()[0]
    u0 = torch.sin(2 * math.pi * x) + 0.3
    pair = _trajectory(Burgers(nu=nu), grid, u0, [0.0, t_final], 1e-3)  # [1, 2, 1, X]
    boost = GalileanBoost(0.5, t_final, length, on_grid=True)
    speeds = boost.speeds(64, points, torch.Generator().manual_seed(0))
    steps = speeds * t_final * points / length
    assert torch.allclose(steps, steps.round(), atol=1e-9) and speeds.abs().max() <= 0.5 + 1e-9
    assert len(set(steps.round().tolist())) > 10
    c = float(speeds[speeds.abs() > 0.1][0])
    m = round(c * t_final * points / length)
    boosted = boost(pair, torch.tensor([c]))
    rolled = torch.roll(pair[:, 1], m, dims=-1) + c
    assert torch.allclose(boosted[:, 1], rolled, atol=1e-12)
    direct = _trajectory(Burgers(nu=nu), grid, u0 + c, [0.0, t_final], 1e-3)
    assert float((boosted - direct).abs().max()) < 1e-6


def test_objectives_apply_the_boost_reproducibly():
    g = torch.Generator().manual_seed(0)
    fields = torch.randn(8, 1, 32, generator=g, dtype=torch.float64)
    boost = GalileanBoost(0.5, 1.0, 1.0, on_grid=True)
    regression = FieldRegression(fields, fields.roll(3, -1), batch_size=4, seed=2,
                                 galilean=boost)
    (x1, y1), (x2, y2) = regression.batch(5), regression.batch(5)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    plain = FieldRegression(fields, fields.roll(3, -1), batch_size=4, seed=2)
    x0, y0 = plain.batch(5)
    c = (x1 - x0).mean(dim=(1, 2))
    assert torch.allclose(x1 - x0, c.view(-1, 1, 1).expand_as(x0), atol=1e-12)
    assert c.abs().max() <= 0.5 + 1e-9 and c.std() > 0.01
    shift = (c * 32).round().long()  # the target moves by c T / dx whole cells
    for i in range(4):
        assert torch.allclose(y1[i], torch.roll(y0[i], int(shift[i]), -1) + c[i], atol=1e-12)
    with pytest.raises(ShapeError, match="single-channel 1D"):
        FieldRegression(torch.zeros(4, 2, 8), torch.zeros(4, 2, 8), batch_size=2,
                        galilean=boost)

    windows = fields[:, None].repeat(1, 5, 1, 1).float()  # [8, 5, 1, 32]
    objective = AutoregressiveObjective(windows, batch_size=4, mode="unrolled", unroll=4,
                                        galilean=boost, seed=3)
    a, b = objective.batch(7)["window"], objective.batch(7)["window"]
    assert torch.equal(a, b)
    base = AutoregressiveObjective(windows, batch_size=4, mode="unrolled", unroll=4,
                                   seed=3).batch(7)["window"]
    c = (a - base)[:, 0].mean(dim=(1, 2))
    assert c.std() > 0.01
    # frame j is moved by j c dt / dx cells
    for j in range(5):
        moved = torch.stack([torch.roll(base[i, j], round(j * float(c[i]) * 32), -1)
                             for i in range(4)]) + c.view(-1, 1, 1)
        assert torch.allclose(a[:, j], moved, atol=1e-5)
    with pytest.raises(ShapeError, match="scalar 1D"):
        AutoregressiveObjective(torch.zeros(2, 3, 2, 8), batch_size=2, galilean=boost)
    with pytest.raises(ValueError, match="elapsed > 0"):
        GalileanBoost(0.5, 0.0, 1.0)


RUN = {
    "name": "tiny-galilean",
    "seed": 0,
    "device": "cpu",
    "data": {"resolution": 64, "solver_resolution": 64, "dt": 0.01, "n_times": 6,
             "n_train": 12, "n_test": 4, "subsample": 2},
    "models": {"fno": {"kind": "operator",
                       "model": {"name": "fno1d", "modes": 4, "width": 8, "layers": 2,
                                 "grid_channel": False},
                       "training": {"batch_size": 4, "augment": ["odd_reflect"],
                                    "galilean": {"max_speed": 0.2},
                                    "stages": [{"epochs": 2, "lr": 3e-3}],
                                    "log_every": 2, "checkpoint_every": 100}}},
}


def test_operator_run_with_galilean_augmentation(tmp_path):
    out = run(parse_config(copy.deepcopy(RUN)), tmp_path / "run", quiet=True)
    metrics = json.loads((out / "metrics.json").read_text())["models"]["fno"]
    assert 0 < metrics["test_rel_l2"] < float("inf")

    heat = copy.deepcopy(RUN)
    heat["data"]["equation"] = "heat"
    with pytest.raises(ConfigError, match="no Galilean symmetry"):
        run(parse_config(heat), tmp_path / "heat", quiet=True)
    normalised = copy.deepcopy(RUN)
    normalised["models"]["fno"]["normalizer"] = "global"
    with pytest.raises(ConfigError, match="physical units"):
        parse_config(normalised)
