"""Operator runs with a ``uq:`` section: an FNO ensemble with split-conformal intervals from a
config, through ``scidl run``'s runner, resumable and re-evaluable."""

from __future__ import annotations

import json

import pytest
import torch

from scidl.errors import ConfigError
from scidl.experiments import evaluate_run, operator_uq, parse_config, run
from scidl.experiments.datasets import load_data

RAW = {
    "name": "tiny-uq",
    "seed": 0,
    "device": "cpu",
    "data": {"resolution": 32, "solver_resolution": 64, "dt": 0.01, "n_times": 2,
             "n_train": 40, "n_test": 20, "parameters": {"nu": 0.05}},
    "models": {"fno": {
        "kind": "operator",
        "model": {"name": "fno1d", "modes": 6, "width": 12, "layers": 2},
        "training": {"batch_size": 10, "stages": [{"epochs": 6, "lr": 5e-3}],
                     "log_every": 5, "checkpoint_every": 100},
        "uq": {"members": 3, "conformal": True, "calibration": 0.25, "coverage": 0.8},
    }},
}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("uq") / "run"
    run(parse_config(RAW), out, quiet=True)
    return out


def test_ensemble_run_writes_uq_metrics_members_and_calibration_figures(finished):
    metrics = json.loads((finished / "metrics.json").read_text())["models"]["fno"]
    uq = metrics["uq"]
    assert uq["members"] == 3 and uq["coverage_nominal"] == 0.8
    for i in range(3):
        assert (finished / "checkpoints" / f"fno.m{i}.pt").exists()
    # the point metrics are the ensemble mean's; the std is positive and finite
    assert 0 < metrics["test_rel_l2"] < 1
    assert 0 < uq["mean_std"] < 1 and uq["crps"] > 0
    # conformal intervals: per point, 20 test fields; marginal coverage near the nominal 0.8
    assert 0.6 <= uq["conformal_coverage"] <= 1.0
    figures = {p.name for p in (finished / "figures").iterdir()}
    assert {"fno_intervals.png", "fno_reliability.png", "fno_coverage.png",
            "fno_error_vs_std.png"} <= figures
    assert "fno: reliability diagram" in (finished / "report.html").read_text()


def test_members_differ_and_the_reported_error_is_the_ensemble_means(finished):
    config = parse_config(RAW)
    cfg = config.models["fno"]
    data = operator_uq.split_calibration(load_data(config.data, finished),
                                         cfg.uq.calibration)[0]
    members, _ = operator_uq.restore_members("fno", cfg, config, data, finished)
    first, second = (dict(m.named_parameters()) for m in members[:2])
    assert any(not torch.equal(first[k], second[k]) for k in first)
    stored = json.loads((finished / "metrics.json").read_text())
    again = evaluate_run(finished)
    assert again["models"]["fno"]["test_rel_l2"] == pytest.approx(
        stored["models"]["fno"]["test_rel_l2"], rel=1e-6)
    assert again["models"]["fno"]["uq"]["conformal_coverage"] == pytest.approx(
        stored["models"]["fno"]["uq"]["conformal_coverage"])


def test_resuming_a_finished_uq_run_retrains_nothing(finished):
    before = {p.name: p.stat().st_mtime_ns for p in (finished / "checkpoints").iterdir()}
    run(parse_config(RAW), finished, resume=True, quiet=True)
    after = {p.name: p.stat().st_mtime_ns for p in (finished / "checkpoints").iterdir()}
    assert before == after


@pytest.mark.parametrize("uq, words", [
    ({"members": 1}, "members >= 2"),
    ({"members": 3, "coverage": 1.5}, "coverage"),
    ({"members": 3, "backend": "dask"}, "backend"),
])
def test_uq_config_errors_are_one_sentence(uq, words):
    raw = json.loads(json.dumps(RAW))
    raw["models"]["fno"]["uq"] = uq
    with pytest.raises(ConfigError, match=words):
        parse_config(raw)


def test_ray_address_needs_a_uq_model():
    from scidl.cli import _on_ray

    raw = json.loads(json.dumps(RAW))
    del raw["models"]["fno"]["uq"]
    with pytest.raises(ConfigError, match="uq"):
        _on_ray(parse_config(raw), None)
    sent = _on_ray(parse_config(RAW), "auto")
    assert sent.models["fno"].uq.backend == "ray"
    assert sent.models["fno"].uq.ray_address == "auto"


def test_members_trained_as_ray_tasks_equal_the_sequential_run(finished, tmp_path):
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'scidl[ray]')")
    raw = json.loads(json.dumps(RAW))
    raw["models"]["fno"]["uq"]["backend"] = "ray"
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        run(parse_config(raw), tmp_path / "ray", quiet=True)
    finally:
        if started_here:
            ray.shutdown()
    on_ray = json.loads((tmp_path / "ray" / "metrics.json").read_text())["models"]["fno"]
    sequential = json.loads((finished / "metrics.json").read_text())["models"]["fno"]
    assert on_ray["test_rel_l2_per_sample"] == pytest.approx(
        sequential["test_rel_l2_per_sample"], rel=1e-6)
    assert on_ray["uq"]["conformal_coverage"] == sequential["uq"]["conformal_coverage"]


def test_a_2d_fno_ensemble_gives_per_pixel_std_maps(tmp_path):
    raw = {"name": "darcy-uq", "seed": 0, "device": "cpu",
           "data": {"equation": "darcy", "resolution": 9, "solver_resolution": 17,
                    "n_train": 8, "n_test": 4},
           "models": {"fno": {
               "kind": "operator", "input": "a", "target": "u", "normalizer": "global",
               "model": {"name": "fno", "modes": 2, "width": 6, "layers": 2, "padding": 2},
               "training": {"batch_size": 4, "stages": [{"epochs": 2, "lr": 1e-2}],
                            "log_every": 2, "checkpoint_every": 100},
               "uq": {"members": 2}}}}
    out = run(parse_config(raw), tmp_path / "run", quiet=True)
    uq = json.loads((out / "metrics.json").read_text())["models"]["fno"]["uq"]
    assert uq["members"] == 2 and uq["mean_std"] > 0 and "conformal_coverage" not in uq
    assert (out / "figures" / "fno_std.png").stat().st_size > 1000


def test_the_docs_quick_start_runs(shared_data, monkeypatch):
    import re

    from conftest import REPO

    monkeypatch.setenv("SCIDL_DATA", str(shared_data))
    text = (REPO / "docs" / "uq.md").read_text().split("## Quick start on a table", 1)[1]
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    namespace: dict = {}
    exec(compile(code.replace("print(", "len("), "docs/uq.md", "exec"), namespace)
    lower, upper, p = namespace["lower"], namespace["upper"], namespace["p"]
    assert lower.shape == upper.shape == p.mean.shape and bool((upper > lower).all())


def test_a_run_resumes_on_another_backend_but_not_with_other_members(tmp_path):
    from scidl.errors import CheckpointError
    from scidl.experiments.rundir import open_run_dir

    config = parse_config(RAW).to_dict()
    open_run_dir(tmp_path, config, resume=False, overwrite=False)
    (tmp_path / "marker").write_text("x")
    on_ray = json.loads(json.dumps(config))
    on_ray["models"]["fno"]["uq"].update(backend="ray", ray_address="auto")
    open_run_dir(tmp_path, on_ray, resume=True, overwrite=False)  # where it runs: allowed
    other = json.loads(json.dumps(config))
    other["models"]["fno"]["uq"]["members"] = 4
    with pytest.raises(CheckpointError, match="models"):
        open_run_dir(tmp_path, other, resume=True, overwrite=False)
