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
