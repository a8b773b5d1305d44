"""``task: dynamics`` runs from a config: run directory, metrics, report, errors."""

from __future__ import annotations

import json

import pytest
import yaml

from scidl.cli import main
from scidl.errors import ConfigError
from scidl.experiments import parse_config, run
from scidl.experiments.dynamics_studies import record_steps

STABILITY = {
    "task": "dynamics",
    "name": "tiny-stability",
    "studies": {
        "kepler": {"kind": "stability", "system": {"name": "kepler",
                                                   "parameters": {"eccentricity": 0.6}},
                   "methods": ["verlet", "rk4"], "step_size": 0.05, "steps": 4000,
                   "records": 30},
    },
}


def test_record_steps_are_log_spaced_and_end_at_the_last_step():
    counts = record_steps(10_000, 40)
    assert counts[0] == 1 and counts[-1] == 10_000
    assert counts == sorted(set(counts))
    ratios = [b / a for a, b in zip(counts[10:], counts[11:])]
    assert max(ratios) < 1.5


def test_stability_run_shows_verlet_bounded_and_rk4_drifting(tmp_path):
    out = run(parse_config(STABILITY), tmp_path / "run", quiet=True)
    for name in ("config.yaml", "metrics.json", "timings.json", "report.html",
                 "figures/kepler_energy.png"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())["studies"]["kepler"]
    verlet, rk4 = metrics["methods"]["verlet"], metrics["methods"]["rk4"]
    # Verlet: bounded, the last records are no worse than the early worst
    assert verlet["max_error_last_10pct_of_records"] <= \
        1.05 * verlet["max_error_first_90pct_of_records"]
    # RK4 at this (large) step: the error keeps growing
    assert rk4["max_error_last_10pct_of_records"] > 1.5 * rk4["max_error_first_90pct_of_records"]
    assert verlet["finite"] and rk4["finite"]
    html = (out / "report.html").read_text()
    assert "energy error" in html and "data:image/png;base64," in html
    # deterministic
    again = run(parse_config(STABILITY), tmp_path / "again", quiet=True)
    assert json.loads((again / "metrics.json").read_text()) == \
        json.loads((out / "metrics.json").read_text())


def test_dynamics_config_errors_are_one_sentence():
    with pytest.raises(ConfigError, match="studies.a.kind must be one of"):
        parse_config({"task": "dynamics", "studies": {"a": {"kind": "nope"}}})
    with pytest.raises(ConfigError, match="unknown system 'moon'"):
        parse_config({"task": "dynamics", "studies": {"a": {
            "kind": "stability", "system": {"name": "moon"}, "step_size": 0.1}}})
    with pytest.raises(ConfigError, match="task"):
        parse_config({"task": "weather", "models": {}})


def test_stability_of_a_non_mechanical_system_is_refused_by_the_cli(tmp_path, capsys):
    config = {"task": "dynamics", "studies": {"lv": {
        "kind": "stability", "system": {"name": "lotka_volterra"}, "step_size": 0.1,
        "steps": 10}}}
    path = tmp_path / "lv.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(SystemExit) as exit_info:
        main(["run", str(path), "--out", str(tmp_path / "lv"), "--quiet"])
    assert exit_info.value.code == 2
    assert "mechanical system" in capsys.readouterr().err
    assert not (tmp_path / "lv").exists()  # nothing half-written is left behind


def test_inverse_learned_and_swing_up_studies_from_one_config(tmp_path):
    config = {
        "task": "dynamics", "name": "tiny-studies",
        "studies": {
            "rates": {"kind": "inverse", "system": {"name": "lotka_volterra"},
                      "unknown": ["alpha", "delta"], "t_final": 4.0, "n_times": 41,
                      "iterations": 30},
            "hnn": {"kind": "learned", "system": {"name": "pendulum"}, "trajectories": 8,
                    "width": 48, "steps": 800, "lr": 3e-3, "rollout_time": 60.0,
                    "rollout_step": 0.02},
            "swing": {"kind": "swing_up", "horizon": 2.5, "controls": 20, "max_torque": 8.0,
                      "iterations": 80},
        },
    }
    out = run(parse_config(config), tmp_path / "run", quiet=True)
    studies = json.loads((out / "metrics.json").read_text())["studies"]
    # noise-free data: the rates come back to far better than 1 %
    assert studies["rates"]["max_relative_error"] < 1e-6
    assert set(studies["rates"]["estimate"]) == {"alpha", "delta"}
    # the learned Hamiltonian keeps the true energy far better than the neural ODE
    hnn, node = studies["hnn"]["hnn"], studies["hnn"]["neural_ode"]
    assert hnn["max_rel_energy_drift"] * 5 < node["max_rel_energy_drift"]
    # the pendulum ends upright and at rest, with the torque bound respected
    swing = studies["swing"]
    assert abs(swing["angle_error"]) < 1e-2 and abs(swing["rate_error"]) < 5e-2
    assert swing["max_abs_torque"] <= 8.0
    for figure in ("rates_estimates.png", "hnn_energy.png", "swing_swing_up.png"):
        assert (out / "figures" / figure).is_file()
    html = (out / "report.html").read_text()
    assert "recovering alpha, delta" in html and "swing-up" in html


def test_inverse_study_names_unknown_constants(tmp_path):
    config = {"task": "dynamics", "studies": {"bad": {
        "kind": "inverse", "system": {"name": "pendulum"}, "unknown": ["stiffness"],
        "t_final": 1.0}}}
    with pytest.raises(ConfigError, match="stiffness"):
        run(parse_config(config), tmp_path / "bad", quiet=True)
    assert not (tmp_path / "bad").exists()
