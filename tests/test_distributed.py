"""``torchrun`` with two CPU processes (gloo) against a single process on the same config."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import TINY_CONFIG

# Both runs see the same global batches (each rank takes every second sample of a batch, and
# gradients are averaged), so they differ only in the order of float32 sums: about 1e-7
# relative per step. 30 Adam steps of the FNO, and 20 Adam + 20 L-BFGS steps of the PINN, leave
# at most 3e-6 (measured); over many more L-BFGS iterations the difference grows chaotically.
RTOL = 1e-4


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env["OMP_NUM_THREADS"] = "1"
    return env


def _torchrun() -> str:
    candidate = Path(sys.executable).with_name("torchrun")
    if candidate.exists():
        return str(candidate)
    found = shutil.which("torchrun")
    if found is None:
        pytest.skip("torchrun is not installed")
    return found


def _start(command: list[str], cwd: Path) -> subprocess.Popen:
    # a session of its own, so that a hung torchrun and its workers can be killed together
    return subprocess.Popen(command, cwd=cwd, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _finish(process: subprocess.Popen, timeout: float = 180) -> tuple[str, str]:
    try:
        return process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        pytest.fail(f"{process.args[0]} hung for {timeout} s (deadlocked ranks?):\n{err[-3000:]}")


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=RTOL, abs_tol=1e-9)


def test_torchrun_two_cpu_processes_match_one(tmp_path):
    raw = json.loads(json.dumps(TINY_CONFIG))
    assert raw["models"]["fno"]["training"]["batch_size"] % 2 == 0
    # Enough L-BFGS iterations that a line search deciding on a rank's own loss (rather than
    # the loss of the averaged gradient) makes the ranks' collectives mismatch: 10 sufficed.
    raw["models"]["pinn"]["training"]["stages"] = [
        {"steps": 20}, {"optimizer": "lbfgs", "steps": 20, "lr": 1.0}]
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(raw, sort_keys=False))
    single, multi = tmp_path / "single", tmp_path / "multi"

    one = _start([sys.executable, "-m", "scidl", "run", str(config), "--out", str(single),
                  "--quiet"], tmp_path)
    two = _start([_torchrun(), "--standalone", "--nproc_per_node=2", "-m", "scidl", "run",
                  str(config), "--out", str(multi), "--quiet"], tmp_path)
    (two_out, two_err), (_, one_err) = _finish(two), _finish(one)
    assert one.returncode == 0, one_err
    assert two.returncode == 0, two_out + two_err
    assert "Traceback" not in two_err

    # rank 0 wrote one run directory; no other rank wrote anything
    assert sorted(p.name for p in tmp_path.iterdir()) == ["multi", "single", "tiny.yaml"]
    assert sorted(p.name for p in multi.iterdir()) == sorted(p.name for p in single.iterdir())
    assert not [p for p in multi.rglob("*") if p.name.endswith(".tmp")]
    for name in ("fno", "pinn"):
        logged = (multi / "logs" / f"{name}.jsonl").read_text().splitlines()
        assert len(logged) == len((single / "logs" / f"{name}.jsonl").read_text().splitlines())
        assert len({json.loads(line)["step"] for line in logged}) == len(logged)  # written once

    a = json.loads((single / "metrics.json").read_text())
    b = json.loads((multi / "metrics.json").read_text())
    assert a["data"] == b["data"] and a["seed"] == b["seed"]
    fno_a, fno_b = a["models"]["fno"], b["models"]["fno"]
    assert fno_a["steps"] == fno_b["steps"] == 30
    for key in ("test_rel_l2", "train_rel_l2", "test_rel_l2_max", "final_loss"):
        assert _close(fno_a[key], fno_b[key]), (key, fno_a[key], fno_b[key])
    for x, y in zip(fno_a["test_rel_l2_per_sample"], fno_b["test_rel_l2_per_sample"],
                    strict=True):
        assert _close(x, y)
    pinn_a, pinn_b = a["models"]["pinn"], b["models"]["pinn"]
    assert pinn_a["steps"] == pinn_b["steps"] == 40
    assert pinn_a["optimizer_iterations"] == pinn_b["optimizer_iterations"]
    for key in ("rel_l2", "rel_l2_final", "residual_rms", "final_loss"):
        assert _close(pinn_a[key], pinn_b[key]), (key, pinn_a[key], pinn_b[key])
    # and the runs really trained (the comparison is not between two untouched models)
    log = [json.loads(line) for line in (multi / "logs" / "fno.jsonl").read_text().splitlines()]
    assert log[-1]["loss"] < log[0]["loss"]
