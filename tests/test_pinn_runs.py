"""``task: pinn`` configs run as a user runs them (``python -m scidl run``): a forward problem with
hard constraints and formulas, an inverse problem that reports its parameter estimates, the run
directory and report, and ``scidl evaluate`` reproducing the metrics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from scidl.errors import ConfigError
from scidl.experiments.config import parse_config

HEAT = {
    "task": "pinn",
    "name": "heat",
    "dtype": "float64",
    "problem": {
        "equation": "heat",
        "parameters": {"nu": 0.1},
        "domain": {"geometry": {"type": "interval", "lo": 0, "hi": 1}, "time": [0, 0.5]},
        "hard": {"offset": "sin(pi*x)", "factor": "t*x*(1-x)"},
        "reference": {"formula": "exp(-0.1*pi**2*t)*sin(pi*x)", "grid": {"x": 41, "t": 11}},
    },
    "network": {"width": 16, "hidden_layers": 2},
    "collocation": {"points": 256},
    "training": {"stages": [{"optimizer": "adam", "steps": 150, "lr": 0.01},
                            {"optimizer": "lbfgs", "steps": 60}], "log_every": 10},
}


def scidl(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "scidl", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def write(config: dict, tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def test_a_forward_pinn_config_runs_and_evaluate_reproduces_it(tmp_path):
    done = scidl("run", str(write(HEAT, tmp_path)), "--out", "run", "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    run = tmp_path / "run"
    metrics = json.loads((run / "metrics.json").read_text())["pinn"]
    assert metrics["rel_l2"] < 1e-2
    assert metrics["derivatives"] == "forward" and metrics["compiled"] is False
    assert metrics["optimizer_iterations"] == {"0:adam": 150, "1:lbfgs": 60}
    assert (run / "figures" / "solution.png").stat().st_size > 1000
    html = (run / "report.html").read_text()
    assert "Reference, prediction and error" in html and "Loss terms" in html
    again = scidl("evaluate", "run", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "matches" in again.stderr


def test_an_inverse_pinn_config_recovers_the_diffusivity_and_reports_it(tmp_path):
    config = json.loads(json.dumps(HEAT))
    config["problem"].pop("hard")
    config["problem"]["unknowns"] = {"nu": {"initial": 0.3, "truth": 0.1}}
    config["problem"]["observations"] = {"points": 300, "noise": 0.0}
    config["training"]["stages"] = [{"optimizer": "adam", "steps": 300, "lr": 0.01},
                                    {"optimizer": "lbfgs", "steps": 200}]
    done = scidl("run", str(write(config, tmp_path)), "--out", "run", "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())["pinn"]
    nu = metrics["unknowns"]["nu"]
    assert nu["rel_error"] < 0.02, nu
    html = (tmp_path / "run" / "report.html").read_text()
    assert "parameter estimates" in html


@pytest.mark.parametrize("change, message", [
    ({"problem": {**HEAT["problem"], "equation": "schroedinger"}}, "unknown equation"),
    ({"problem": {**HEAT["problem"], "hard": {"offset": "open(x)", "factor": "t"}}},
     "calls something"),
    ({"problem": {**HEAT["problem"], "hard": {"offset": "y", "factor": "t"}}}, "unknown name"),
    ({"problem": {**HEAT["problem"], "unknowns": {"nu": {"initial": 0.2}}}}, "observations"),
    ({"derivatives": "symbolic"}, "derivatives"),
])
def test_bad_pinn_configs_fail_in_one_sentence(change, message, tmp_path):
    config = {**HEAT, **change}
    with pytest.raises(ConfigError, match=message):
        parsed = parse_config(config)
        from scidl.experiments.pinn_study import build

        build(parsed)


def test_the_bundled_pinn_configs_parse():
    root = Path(__file__).parent.parent / "configs"
    for path in sorted(root.glob("pinn_*.yaml")):
        config = parse_config(yaml.safe_load(path.read_text()))
        assert config.task == "pinn", path


def test_the_pinn_docs_example_runs():
    import re

    text = (Path(__file__).parent.parent / "docs" / "pinns.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    namespace: dict = {}
    exec(compile(code.replace("print(", "str("), "docs/pinns.md", "exec"), namespace)
    assert float(namespace["residual"].pow(2).mean().sqrt()) < 0.05
    assert namespace["result"].optimizer_iterations == {"0:adam": 300, "1:lbfgs": 200}


def test_adaptive_tricks_in_a_config_stop_with_the_adam_stage():
    from scidl.experiments.pinn_study import build
    from scidl.pinn import AdaptiveSampling, Refinement

    config = {**HEAT, "adaptive_sampling": {"every": 50, "k": 2, "c": 0.5},
              "refinement": {"every": 40, "add": 10}}
    problem = build(parse_config(config)).problem
    assert problem.adaptive_sampling == AdaptiveSampling(every=50, candidates=100000, k=2.0,
                                                         c=0.5, until=150)
    assert problem.refinement == Refinement(every=40, candidates=10000, add=10, until=150)
    # no new points once L-BFGS (steps 150 on) trains
    assert [s for s in range(1, 210) if problem.changes_at(s)] == [40, 50, 80, 100, 120]
    # rounds of Adam and L-BFGS (Wu et al.): changes stop where the last Adam stage ends
    config["training"] = {"stages": [{"optimizer": "adam", "steps": 100},
                                     {"optimizer": "lbfgs", "steps": 20},
                                     {"optimizer": "adam", "steps": 10},
                                     {"optimizer": "lbfgs", "steps": 10}]}
    config["adaptive_sampling"] = {"every": 30, "start": 120}
    problem = build(parse_config(config)).problem
    assert problem.adaptive_sampling.until == 130
    assert [s for s in range(1, 140) if problem._adapts_at(s)] == [120]
