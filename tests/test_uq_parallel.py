"""Ray scale-out of uncertainty workloads: the same seeds give the same numbers as in process."""

from __future__ import annotations

import os
import sys

import pytest
import torch
from torch import nn

from scidl.train import FieldRegression, Stage, TrainOptions, train
from scidl.uq.parallel import (
    RayUnavailableError,
    conformal_runs,
    import_ray,
    run_tasks,
    sweep,
    train_ensemble_members,
)

# ---- tasks (module level: Ray workers get them by value, see the fixture) --------------------


def _data(n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(123)
    x = torch.rand(n, 1, generator=generator) * 6 - 3
    y = torch.sin(x) + 0.1 * torch.randn(n, 1, generator=generator)
    return x, y


def train_mlp(seed: int, x: torch.Tensor, y: torch.Tensor, hidden: int = 16, lr: float = 1e-2,
              steps: int = 60) -> dict[str, torch.Tensor]:
    """One ensemble member: a small MLP fitted through scidl's training loop."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(1, hidden), nn.Tanh(), nn.Linear(hidden, 1))
    objective = FieldRegression(x, y, batch_size=16, loss="mse", seed=seed)
    train(model, objective, [Stage(steps=steps, lr=lr)], seed=seed,
          options=TrainOptions(progress=False))
    return model.state_dict()


def sweep_point(hidden: int, lr: float, x: torch.Tensor, y: torch.Tensor) -> float:
    model = nn.Sequential(nn.Linear(1, hidden), nn.Tanh(), nn.Linear(hidden, 1))
    model.load_state_dict(train_mlp(0, x, y, hidden=hidden, lr=lr, steps=40))
    with torch.no_grad():
        return float((model(x) - y).pow(2).mean())


def conformal_split(seed: int, scores: torch.Tensor, coverage: float = 0.9) -> dict[str, float]:
    """Split conformal on absolute residuals: calibrate on a random half, test on the other."""
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(scores), generator=generator)
    calibration, test = scores[order[: len(scores) // 2]], scores[order[len(scores) // 2:]]
    n = len(calibration)
    rank = min(int(torch.tensor((n + 1) * coverage).ceil()), n)
    threshold = calibration.sort().values[rank - 1]
    return {"threshold": float(threshold), "coverage": float((test <= threshold).double().mean())}


def uses_global_rng(scale: float) -> torch.Tensor:
    return scale * torch.rand(3)


def process_id() -> int:
    return os.getpid()


# ---- in process -------------------------------------------------------------------------------


def test_sequential_runs_in_order_with_common_arguments():
    out = run_tasks(lambda a, b: (a, b), [{"a": 1}, {"a": 2}, {"a": 3}], common={"b": "x"})
    assert out == [(1, "x"), (2, "x"), (3, "x")]
    with pytest.raises(ValueError, match="both in common and per task"):
        run_tasks(lambda a: a, [{"a": 1}], common={"a": 2})
    with pytest.raises(ValueError, match="backend"):
        run_tasks(lambda: 0, [{}], backend="dask")


def test_tasks_leave_the_callers_state_alone_and_draw_from_their_index():
    threads = torch.get_num_threads()
    torch.manual_seed(7)
    expected_next = torch.rand(2)
    torch.manual_seed(7)
    first = run_tasks(uses_global_rng, [{"scale": 1.0}, {"scale": 1.0}])
    assert torch.equal(torch.rand(2), expected_next)  # the caller's generator is untouched
    assert torch.get_num_threads() == threads
    assert not torch.equal(first[0], first[1])  # task 0 and task 1 draw different numbers
    again = run_tasks(uses_global_rng, [{"scale": 1.0}, {"scale": 1.0}])
    assert all(torch.equal(a, b) for a, b in zip(first, again))


def test_ensemble_members_are_distinct_state_dicts_from_their_seeds():
    x, y = _data()
    members = train_ensemble_members(train_mlp, [0, 1], common={"x": x, "y": y})
    assert set(members[0]) == {"0.weight", "0.bias", "2.weight", "2.bias"}
    assert not torch.equal(members[0]["0.weight"], members[1]["0.weight"])
    direct = train_mlp(1, x, y)
    assert all(torch.equal(direct[k], members[1][k]) for k in direct)
    with pytest.raises(ValueError, match="distinct seeds"):
        train_ensemble_members(train_mlp, [3, 3], common={"x": x, "y": y})
    with pytest.raises(TypeError, match="state_dict"):
        train_ensemble_members(lambda seed: seed, [0])


def test_sweep_covers_the_grid_in_product_order():
    out = sweep(lambda a, b: a * b, {"a": [1, 2], "b": [10, 20, 30]})
    assert [p["params"] for p in out] == [{"a": a, "b": b} for a in (1, 2) for b in (10, 20, 30)]
    assert [p["result"] for p in out] == [10, 20, 30, 20, 40, 60]
    with pytest.raises(ValueError, match="grid\\['a'\\]"):
        sweep(lambda a: a, {"a": []})


def test_conformal_resplits_reach_the_coverage_on_average():
    scores = torch.randn(400, generator=torch.Generator().manual_seed(0)).abs()
    runs = conformal_runs(conformal_split, range(20), common={"scores": scores})
    mean_coverage = sum(r["coverage"] for r in runs) / len(runs)
    assert abs(mean_coverage - 0.9) < 0.03  # split conformal: >= 0.9 in expectation
    assert len({r["threshold"] for r in runs}) > 1  # the splits differ


def test_without_ray_the_error_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(RayUnavailableError, match=r"pip install 'scidl\[ray\]'"):
        run_tasks(lambda: 0, [{}], backend="ray")
    with pytest.raises(ImportError):  # a subclass: `except ImportError` still catches it
        import_ray()


# ---- on a local Ray instance with 2 workers ---------------------------------------------------


@pytest.fixture(scope="module")
def ray_local():
    try:
        ray = import_ray()
    except RayUnavailableError:
        pytest.skip("Ray is not installed: pip install 'scidl[ray]' to run the Ray tests")
    if ray.is_initialized():
        ray.shutdown()
    # The workers cannot import this test module: send its functions by value.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING",
             runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
    yield ray
    ray.shutdown()
    ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def test_ray_ensemble_members_equal_the_sequential_ones(ray_local):
    x, y = _data()
    seeds = [0, 1, 2]
    sequential = train_ensemble_members(train_mlp, seeds, common={"x": x, "y": y})
    distributed = train_ensemble_members(train_mlp, seeds, common={"x": x, "y": y},
                                         backend="ray")
    for a, b in zip(sequential, distributed):
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_ray_sweep_equals_the_sequential_one(ray_local):
    x, y = _data()
    grid = {"hidden": [8, 16], "lr": [1e-2, 3e-2]}
    sequential = sweep(sweep_point, grid, common={"x": x, "y": y})
    distributed = sweep(sweep_point, grid, common={"x": x, "y": y}, backend="ray")
    assert sequential == distributed
    assert len({p["result"] for p in sequential}) == 4


def test_ray_conformal_resplits_equal_the_sequential_ones(ray_local):
    scores = torch.randn(200, generator=torch.Generator().manual_seed(1)).abs()
    sequential = conformal_runs(conformal_split, range(6), common={"scores": scores})
    distributed = conformal_runs(conformal_split, range(6), common={"scores": scores},
                                 backend="ray")
    assert sequential == distributed
    assert os.getpid() not in run_tasks(process_id, [{}] * 2, backend="ray")  # in workers
    # and the global generators are seeded per task in the workers as in process
    assert all(torch.equal(a, b) for a, b in zip(
        run_tasks(uses_global_rng, [{"scale": 2.0}] * 3),
        run_tasks(uses_global_rng, [{"scale": 2.0}] * 3, backend="ray")))
