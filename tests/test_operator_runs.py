"""Operator runs on any data: Darcy, .pt files, space-time targets, DeepONets, evaluation at
other resolutions, warm starts, and exact symmetry augmentation."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from scidl.errors import ConfigError
from scidl.experiments import evaluate_run, parse_config, run
from scidl.numerics import PeriodicGrid, simulate
from scidl.pdes import Burgers
from scidl.train import FieldRegression

BURGERS = {
    "name": "tiny-ops",
    "seed": 0,
    "device": "cpu",
    "data": {"resolution": 64, "solver_resolution": 64, "dt": 0.01, "n_times": 6,
             "n_train": 12, "n_test": 4, "subsample": 2},
    "models": {},
}
TRAINING = {"batch_size": 4, "stages": [{"epochs": 2, "lr": 3e-3, "schedule": "onecycle"}],
            "log_every": 2, "checkpoint_every": 100}


def _config(models: dict, data: dict | None = None) -> dict:
    raw = copy.deepcopy(BURGERS)
    raw["models"] = models
    if data is not None:
        raw["data"] = data
    return raw


def test_fno_and_deeponets_train_and_report_errors_at_other_resolutions(tmp_path):
    raw = _config({
        "fno": {"kind": "operator", "model": {"name": "fno1d", "modes": 4, "width": 8,
                                              "layers": 2, "grid_channel": False},
                "training": {**TRAINING, "augment": ["odd_reflect"]},
                "evaluate_subsample": [2, 1]},
        "deeponet": {"kind": "operator", "model": {"name": "deeponet", "basis": 8, "width": 16,
                                                   "hidden_layers": 2},
                     "training": TRAINING, "normalizer": "global", "evaluate_subsample": [1]},
        "pod": {"kind": "operator", "model": {"name": "pod_deeponet", "modes": 4, "width": 16},
                "training": TRAINING, "evaluate_subsample": [1]},
    })
    out = run(parse_config(raw), tmp_path / "run", quiet=True)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data"]["training_resolution"] == 32 and metrics["data"]["subsample"] == 2
    fno = metrics["models"]["fno"]
    assert fno["resolution"] == [32] and set(fno["test_rel_l2_by_resolution"]) == {"32", "64"}
    # the stride-2 entry is the test set at the training resolution
    assert fno["test_rel_l2_by_resolution"]["32"] == pytest.approx(fno["test_rel_l2"])
    assert all(0 < v < float("inf") for v in fno["test_rel_l2_by_resolution"].values())
    # a DeepONet queries its trunk on the finer grid; a POD basis lives on the training grid
    assert metrics["models"]["deeponet"]["test_rel_l2_by_resolution"]["64"] > 0
    assert metrics["models"]["pod"]["test_rel_l2_by_resolution"]["64"] is None
    assert (out / "figures" / "resolutions.png").exists()
    again = evaluate_run(out)
    for name in ("fno", "deeponet", "pod"):
        assert again["models"][name]["test_rel_l2"] == pytest.approx(
            metrics["models"][name]["test_rel_l2"], rel=1e-5)


def test_darcy_recipe_runs_a_2d_fno_and_a_warm_start_continues_from_its_weights(tmp_path):
    data = {"equation": "darcy", "resolution": 9, "solver_resolution": 17, "n_train": 8,
            "n_test": 4}
    model = {"kind": "operator", "input": "a", "target": "u", "normalizer": "pointwise",
             "model": {"name": "fno", "modes": 2, "width": 6, "layers": 2, "padding": 2},
             "training": {**TRAINING, "stages": [{"epochs": 3, "lr": 1e-2}]}}
    first = run(parse_config(_config({"fno": model}, data)), tmp_path / "a", quiet=True)
    metrics = json.loads((first / "metrics.json").read_text())["models"]["fno"]
    assert metrics["resolution"] == [9, 9] and metrics["test_rel_l2"] < 1.0
    assert (first / "figures" / "fno_predictions.png").exists()

    warm = copy.deepcopy(model)
    warm["init"] = str(first / "checkpoints" / "fno.pt")
    warm["training"]["stages"] = [{"steps": 1, "lr": 1e-12, "schedule": "constant"}]
    second = run(parse_config(_config({"fno": warm}, data)), tmp_path / "b", quiet=True)
    again = json.loads((second / "metrics.json").read_text())["models"]["fno"]
    assert again["test_rel_l2"] == pytest.approx(metrics["test_rel_l2"], rel=1e-4)


def test_space_time_targets_from_a_pt_file(tmp_path):
    torch.manual_seed(0)
    x = torch.randn(10, 8, dtype=torch.float64)
    y = torch.stack([x * (1 - 0.1 * k) for k in range(5)], dim=1)  # [n, T=5, 8]
    torch.save({"x": x, "y": y}, tmp_path / "train.pt")
    torch.save({"x": x[:4], "y": y[:4]}, tmp_path / "test.pt")
    raw = _config({"st": {"kind": "operator", "input": "x", "target": "y", "space_time": True,
                          "target_time_index": "0:5",
                          "model": {"name": "fno", "modes": 2, "width": 6, "layers": 1,
                                    "padding": 2},
                          "training": {**TRAINING, "batch_size": 5}}},
                  {"path": str(tmp_path / "train.pt"), "test_path": str(tmp_path / "test.pt"),
                   "n_train": 10, "n_test": 4})
    out = run(parse_config(raw), tmp_path / "run", quiet=True)
    metrics = json.loads((out / "metrics.json").read_text())["models"]["st"]
    assert metrics["resolution"] == [5, 8]
    assert (out / "figures" / "st_predictions.png").exists()


@pytest.mark.parametrize(("change", "words"), [
    ({"model": {"name": "fno1d", "widht": 3}}, "'models.m.model.widht'"),
    ({"model": {"name": "transformer"}}, "model.name"),
    ({"space_time": True, "training": {"augment": ["shift"]}}, "augment"),
    ({"normalizer": "pointwise", "evaluate_subsample": [1]}, "pointwise"),
    ({"training": {"stages": [{"steps": 3, "epochs": 2}]}}, "steps or epochs"),
])
def test_operator_config_errors_are_one_sentence(change, words):
    model = {"kind": "operator", **change}
    with pytest.raises(ConfigError, match=words):
        parse_config(_config({"m": model}))


@pytest.mark.parametrize("kind", ["shift", "odd_reflect"])
def test_augmented_pairs_are_exact_solutions_of_burgers(kind):
    """A random translation or the odd reflection u(x) -> -u(-x) of a pair (u0, u(T)) is again
    a pair of the periodic Burgers solution map: the augmentation adds no error."""
    grid = PeriodicGrid((64,), (1.0,))
    pde = Burgers(nu=0.02)
    x = grid.coordinates()[0]
    u0 = torch.stack([torch.sin(2 * torch.pi * x) + 0.5 * torch.cos(4 * torch.pi * x + k)
                      for k in range(4)]).double()[:, None]

    def solve(u):
        return simulate(pde, u[:, 0], [0.0, 0.2], grid=grid, dt=1e-3)[:, -1][:, None]

    objective = FieldRegression(u0, solve(u0), batch_size=4, seed=3, augment=(kind,))
    for step in range(3):
        xa, ya = objective.batch(step)
        assert torch.allclose(solve(xa), ya, atol=1e-10)
    moved = sum(not torch.equal(objective.batch(s)[0], u0[objective._epoch_permutation(0)])
                for s in range(3))
    assert moved > 0


def test_relative_h1_loss_weighs_gradient_errors():
    grid = torch.arange(64, dtype=torch.float64) / 64
    target = torch.sin(2 * torch.pi * grid)[None, None]
    wiggle = 0.01 * torch.sin(2 * torch.pi * 20 * grid)[None, None]
    shift = 0.01 * torch.sin(2 * torch.pi * grid)[None, None]

    def loss(kind, error):
        objective = FieldRegression(target, target, batch_size=1, loss=kind)
        return float(objective.loss(lambda _: target + error, (target, target))[0])

    h1 = [loss("relative_h1", e) for e in (wiggle, shift)]
    l2 = [loss("relative_l2", e) for e in (wiggle, shift)]
    assert l2[0] == pytest.approx(l2[1], rel=1e-9)  # equal in L2 ...
    assert h1[0] > 10 * h1[1]  # ... but the high-frequency error is far larger in H1


def test_rollout_feeds_predictions_back_and_trains_through_the_whole_rollout(tmp_path):
    from scidl.experiments.operator import Rollout

    torch.manual_seed(0)
    step = torch.nn.Conv1d(2, 1, 3, padding=1, padding_mode="circular").double()
    model = Rollout(step, steps=3)
    x = torch.randn(2, 2, 8, dtype=torch.float64)
    window, expected = x, []
    for _ in range(3):
        nxt = step(window)
        expected.append(nxt)
        window = torch.cat([window[:, 1:], nxt], 1)
    assert torch.allclose(model(x), torch.cat(expected, 1))

    raw = _config({"ar": {"kind": "operator", "rollout": True, "input_time_index": [0, 1],
                          "target_time_index": "2:6", "normalizer": "global",
                          "model": {"name": "fno1d", "modes": 3, "width": 6, "layers": 1},
                          "training": TRAINING}})
    out = run(parse_config(raw), tmp_path / "run", quiet=True)
    metrics = json.loads((out / "metrics.json").read_text())["models"]["ar"]
    assert metrics["resolution"] == [32] and metrics["test_rel_l2"] < float("inf")
    bad = copy.deepcopy(raw)
    bad["models"]["ar"]["target_time_index"] = [3, 4]
    with pytest.raises(ConfigError, match="consecutive"):
        run(parse_config(bad), tmp_path / "bad", quiet=True)


def test_fno_pads_only_the_axes_it_is_asked_to():
    from scidl.models import FNO

    torch.manual_seed(1)
    model = FNO(ndim=2, modes=2, width=4, layers=1, grid_channels=False,
                padding=[0, 3]).double()
    u = torch.randn(1, 1, 8, 6, dtype=torch.float64)
    # periodic along the first axis (not padded), not along the second
    assert torch.allclose(model(torch.roll(u, 2, 2)), torch.roll(model(u), 2, 2), atol=1e-12)
    assert not torch.allclose(model(torch.roll(u, 2, 3)), torch.roll(model(u), 2, 3), atol=1e-6)


def test_pino_term_vanishes_on_the_solver_data_and_trains_a_space_time_fno(tmp_path):
    from scidl.experiments.datasets import prepare_data
    from scidl.experiments.operator import pairs, pino_term

    data_cfg = {"resolution": 64, "solver_resolution": 64, "t_final": 0.2, "n_times": 21,
                "initial_condition": {"sigma": 25.0, "tau": 5.0, "gamma": 4.0},
                "n_train": 8, "n_test": 4, "parameters": {"nu": 0.1}}
    model = {"kind": "operator", "space_time": True, "target_time_index": "0:21",
             "pino": {"weight": 0.5},
             "model": {"name": "fno", "modes": [4, 4], "width": 6, "layers": 1,
                       "padding": [4, 0]},
             "training": {**TRAINING, "log_every": 1}}
    config = parse_config(_config({"pino": model}, data_cfg))
    data = prepare_data(config.data, tmp_path / "data", quiet=True)
    _, targets = pairs(config.models["pino"], data, data.train)
    term = pino_term(config.models["pino"], data)
    assert float(term(targets)) < 1e-6  # the solver's own trajectories satisfy the PDE
    assert float(term(targets + 0.05 * torch.randn_like(targets))) > 1e-3
    out = run(config, tmp_path / "run", quiet=True)
    log = [json.loads(line) for line in (out / "logs" / "pino.jsonl").read_text().splitlines()]
    assert all("physics" in entry and "data" in entry for entry in log)


def test_a_file_config_round_trips_with_its_subsample_and_test_path():
    raw = _config({"fno": {"kind": "operator"}},
                  {"path": "train.h5", "test_path": "test.h5", "subsample": 4, "n_train": 3,
                   "n_test": 2})
    config = parse_config(raw)
    resolved = config.to_dict()
    assert resolved["data"] == {"path": "train.h5", "test_path": "test.h5", "n_train": 3,
                                "n_test": 2, "subsample": 4}
    assert parse_config(resolved) == config
