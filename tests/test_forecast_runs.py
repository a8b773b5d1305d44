"""``kind: forecast`` through ``scidl run``: training on the run's trajectories, rollouts scored
by lead time, long-run stability, ensembles, the report, and re-evaluation from checkpoints."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from scidl.errors import ConfigError
from scidl.experiments import evaluate_run, parse_config, run
from scidl.metrics import high_correlation_time

RAW = {
    "name": "tiny-forecast",
    "seed": 0,
    "device": "cpu",
    "data": {"equation": "kuramoto_sivashinsky", "resolution": 64, "t_final": 10.0,
             "n_times": 51, "n_train": 8, "n_test": 4},
    "models": {"fno": {
        "kind": "forecast",
        "model": {"name": "fno1d", "modes": 8, "width": 16, "layers": 2, "grid_channel": False},
        "scheme": {"mode": "pushforward", "unroll": 2, "random_unroll": True,
                   "noise_std": 0.01, "augment": ["shift", "odd_reflect"], "galilean": 0.3},
        "training": {"batch_size": 16, "stages": [{"epochs": 3, "lr": 3e-3,
                                                    "schedule": "cosine"}], "log_every": 5},
        "skip_frames": 10,
        "long_steps": 200,
        "ensemble": {"members": 3, "trajectories": 2, "std": 0.01, "smoothing": 8},
    }},
}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("forecast") / "run"
    run(parse_config(copy.deepcopy(RAW)), out, quiet=True)
    return out


def test_forecast_run_scores_rollouts_and_writes_the_report(finished):
    m = json.loads((finished / "metrics.json").read_text())["models"]["fno"]
    assert m["kind"] == "forecast" and m["leads"] == 40 and m["frame_dt"] == pytest.approx(0.2)
    assert m["steps"] == 3 * (8 * (41 - 2) // 16)  # epochs count windows after skip_frames
    for key in ("rmse_by_lead", "pearson_by_lead", "acc_by_lead"):
        assert len(m[key]) == 40 and all(v == v for v in m[key])
    assert m["rmse_by_lead"][0] < m["rmse_by_lead"][-1]  # errors grow with lead time
    assert 0.2 <= m["high_correlation_time_mean"] <= 10.0
    assert m["long_rollout"]["steps"] == 200 and m["long_rollout"]["finite"]
    assert m["ensemble"]["members"] == 3 and len(m["ensemble"]["crps_by_lead"]) == 40
    figures = {p.name for p in (finished / "figures").iterdir()}
    assert {"forecast_pearson.png", "forecast_rmse.png", "forecast_acc.png",
            "forecast_crps.png", "forecast_spread_skill.png", "fno_space_time.png",
            "fno_invariants.png", "fno_spectra.png", "loss.png"} <= figures
    html = (finished / "report.html").read_text()
    assert "high-correlation time" in html and "Pearson correlation by lead time" in html


def test_forecast_metrics_match_a_direct_rollout_of_the_checkpoint(finished):
    """The run's high-correlation time is the one scidl.metrics computes on a rollout of the
    saved model (the same data, the same increment scale), and re-evaluation reproduces it."""
    from scidl.experiments import forecast
    from scidl.experiments.datasets import load_data
    from scidl.forecast import increment_scale, rollout

    config = parse_config(copy.deepcopy(RAW))
    data = load_data(config.data, finished)
    model, _ = forecast.restore("fno", config.models["fno"], config, data, finished)
    train_u = forecast.trajectories(data, data.train, 10)
    test_u = forecast.trajectories(data, data.test, 10)
    roll = rollout(model, test_u[:, 0], 40, residual=True,
                   delta_scale=increment_scale(train_u))
    hct = high_correlation_time(roll.trajectory[:, :, 0], test_u[:, 1:, 0], 0.2)
    m = json.loads((finished / "metrics.json").read_text())["models"]["fno"]
    assert m["high_correlation_time_mean"] == pytest.approx(float(hct.mean()), abs=1e-5)
    rmse = (roll.trajectory - test_u[:, 1:]).square().mean(dim=(0, 2, 3)).sqrt()
    assert m["rmse_by_lead"][-1] == pytest.approx(float(rmse[-1]), rel=1e-4)
    again = evaluate_run(finished)["models"]["fno"]
    assert again["high_correlation_time_mean"] == pytest.approx(m["high_correlation_time_mean"])
    assert torch.isfinite(roll.trajectory).all()


def test_forecast_config_errors(tmp_path):
    raw = copy.deepcopy(RAW)
    raw["models"]["fno"]["training"]["augment"] = ["shift"]
    with pytest.raises(ConfigError, match="scheme.augment"):
        parse_config(raw)
    raw = copy.deepcopy(RAW)
    raw["models"]["fno"]["kind"] = "forcast"
    with pytest.raises(ConfigError, match="'forecast'"):
        parse_config(raw)
    raw = copy.deepcopy(RAW)
    raw["data"]["equation"] = "allen_cahn"
    raw["models"]["fno"]["long_steps"] = 0
    raw["models"]["fno"].pop("ensemble")
    with pytest.raises(ConfigError, match="no Galilean symmetry"):
        run(parse_config(raw), tmp_path / "run", quiet=True)
    raw = copy.deepcopy(RAW)
    raw["models"]["fno"]["skip_frames"] = 49
    with pytest.raises(ConfigError, match="skip_frames = 49 leaves 2"):
        run(parse_config(raw), tmp_path / "skip", quiet=True)
