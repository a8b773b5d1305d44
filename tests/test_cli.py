"""The ``scidl`` command, run as a user runs it: a subprocess of ``python -m scidl``."""

from __future__ import annotations

import base64
import copy
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import pytest
import torch
import yaml
from conftest import TINY_CONFIG

import scidl
from scidl.cli import main
from scidl.data import (
    FieldDataset,
    TrajectoryRecipe,
    generate_trajectories,
    read_dataset,
    write_dataset,
)
from scidl.errors import ConfigError
from scidl.experiments import evaluate_run, load_config, parse_config, run

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env["OMP_NUM_THREADS"] = "1"
    return env


def scidl_cli(*args, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    """``python -m scidl ARGS`` in ``cwd`` (always a temporary folder)."""
    return subprocess.run([sys.executable, "-m", "scidl", *map(str, args)], cwd=cwd, env=_env(),
                          capture_output=True, text=True, timeout=timeout)


def write_config(path: Path, raw: dict) -> Path:
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    """Exit status 2 and exactly one line on stderr, ``error: ...``, containing ``fragments``."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("error:"), line
    for fragment in fragments:
        assert fragment in line, (fragment, line)
    return line


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file below ``folder`` with its bytes and modification time."""
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_close_tree(a, b, rel: float = 1e-6, where: str = "metrics") -> None:
    """Same structure; floats within ``rel`` relative tolerance, everything else equal."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for key in a:
            assert_close_tree(a[key], b[key], rel, f"{where}.{key}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_close_tree(x, y, rel, f"{where}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert math.isclose(a, b, rel_tol=rel, abs_tol=1e-12), (where, a, b)
    else:
        assert a == b, (where, a, b)



@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> tuple[Path, Path, subprocess.CompletedProcess]:
    """One successful run of the tiny config (with progress output): config, run dir, result."""
    root = tmp_path_factory.mktemp("cli")
    config = write_config(root / "tiny.yaml", TINY_CONFIG)
    result = scidl_cli("run", config, "--out", root / "run_a", cwd=root)
    assert result.returncode == 0, result.stderr
    return config, root / "run_a", result


# --- help and version -----------------------------------------------------------------------


def test_help(tmp_path):
    result = scidl_cli("--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for command in ("run", "evaluate", "demo", "data"):
        assert command in result.stdout
    result = scidl_cli("run", "--help", cwd=tmp_path)
    assert result.returncode == 0 and "--resume" in result.stdout and "--seed" in result.stdout


def test_version(tmp_path):
    result = scidl_cli("--version", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["scidl", scidl.__version__]
    assert scidl.__version__ != "0.0.0+unknown"


# --- bad input: one line, exit status 2, nothing left behind -----------------------------------


def _tiny_with(dotted: str, value) -> dict:
    raw = copy.deepcopy(TINY_CONFIG)
    *parents, last = dotted.split(".")
    node = raw
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    node[int(last) if isinstance(node, list) else last] = value
    return raw


@pytest.mark.parametrize(("case", "fragments"), [
    ("unknown_key", ("'models.fno.model.widht'", "unknown")),
    ("wrong_type", ("'models.fno.training.stages.0.lr'", "must be a number", "'abc'")),
    ("missing_file", ("missing.yaml", "does not exist")),
    ("invalid_yaml", ("broken.yaml", "not valid YAML", "line")),
])
def test_bad_config(tmp_path, case, fragments):
    if case == "unknown_key":
        config = write_config(tmp_path / "c.yaml", _tiny_with("models.fno.model.widht", 8))
    elif case == "wrong_type":
        config = write_config(tmp_path / "c.yaml",
                              _tiny_with("models.fno.training.stages.0.lr", "abc"))
    elif case == "missing_file":
        config = tmp_path / "missing.yaml"
    else:
        config = tmp_path / "broken.yaml"
        config.write_text("name: tiny\nmodels:\n  fno: {kind: operator\n  pinn: [\n")
    out = tmp_path / "out"
    result = scidl_cli("run", config, "--out", out, cwd=tmp_path)
    assert_one_line_error(result, *fragments)
    assert not out.exists()
    assert result.stdout == ""


def _file_config(path) -> dict:
    raw = copy.deepcopy(TINY_CONFIG)
    raw["data"] = {"path": str(path), "n_train": 16, "n_test": 4}
    return raw


def test_missing_data_file(tmp_path):
    data = tmp_path / "nowhere" / "burgers.h5"
    config = write_config(tmp_path / "c.yaml", _file_config(data))
    out = tmp_path / "out"
    result = scidl_cli("run", config, "--out", out, "--quiet", cwd=tmp_path)
    assert_one_line_error(result, str(data), "does not exist")
    assert not out.exists()


def test_nan_in_data(tmp_path):
    g = torch.Generator().manual_seed(0)
    u = torch.randn(20, 11, 32, generator=g)
    u[3, 5, 7] = float("nan")
    data = write_dataset(tmp_path / "nan.h5", FieldDataset(
        u=u, t=torch.linspace(0, 1, 11), x=torch.arange(32) / 32,
        attrs={"equation": "burgers", "parameters": {"nu": 0.1}}))
    config = write_config(tmp_path / "c.yaml", _file_config(data))
    out = tmp_path / "out"
    result = scidl_cli("run", config, "--out", out, "--quiet", cwd=tmp_path)
    assert_one_line_error(result, "NaN", str(data))
    assert not out.exists()


def test_diverging_loss(tmp_path):
    raw = _tiny_with("models.fno.training.stages.0.lr", 1e6)
    raw["models"]["fno"]["training"]["checkpoint_every"] = 1  # a checkpoint exists before it fails
    config = write_config(tmp_path / "c.yaml", raw)
    out = tmp_path / "out"
    result = scidl_cli("run", config, "--out", out, "--quiet", cwd=tmp_path)
    assert_one_line_error(result, "diverged", "'fno'")
    assert not out.exists()
    assert list(tmp_path.rglob("*.pt")) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]


def test_existing_out_is_refused_and_untouched(tiny_run, tmp_path):
    config, run_dir, _ = tiny_run
    existing = tmp_path / "existing"
    shutil.copytree(run_dir, existing)
    (existing / "notes.txt").write_text("mine")
    before = snapshot(existing)
    result = scidl_cli("run", config, "--out", existing, "--quiet", cwd=tmp_path)
    assert_one_line_error(result, str(existing), "already exists", "--resume", "--overwrite")
    assert snapshot(existing) == before


# --- a successful run ------------------------------------------------------------------------


def test_run_writes_the_run_directory(tiny_run):
    config_path, run_dir, result = tiny_run
    # progress was shown (not --quiet), and a summary printed
    assert "relative L2" in result.stdout and "report.html" in result.stdout

    resolved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert "report" not in TINY_CONFIG and resolved["report"] == {"samples": 4}
    assert "n_times" not in TINY_CONFIG["data"] and resolved["data"]["n_times"] == 11
    assert resolved["models"]["fno"]["model"]["grid_channel"] is True
    assert resolved["models"]["pinn"]["boundary"] == "hard-periodic"
    assert resolved["models"]["pinn"]["training"]["batch_size"] == 20
    assert parse_config(resolved) == load_config(config_path)

    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["scidl_version"] == scidl.__version__ and metrics["seed"] == 0
    assert metrics["data"]["n_train"] == 16 and metrics["data"]["resolution"] == 32
    fno, pinn = metrics["models"]["fno"], metrics["models"]["pinn"]
    assert fno["kind"] == "operator" and fno["steps"] == 30
    assert len(fno["test_rel_l2_per_sample"]) == 4
    assert pinn["kind"] == "pinn" and pinn["steps"] == 25
    for value in (fno["test_rel_l2"], fno["train_rel_l2"], pinn["rel_l2"], pinn["residual_rms"]):
        assert math.isfinite(value) and value > 0

    timings = json.loads((run_dir / "timings.json").read_text())
    for key in ("data", "fno.train", "fno.evaluate", "pinn.train", "report", "total"):
        assert isinstance(timings[key], float) and timings[key] >= 0
    assert timings["total"] >= timings["fno.train"] + timings["pinn.train"]

    for name in ("fno", "pinn"):
        state = torch.load(run_dir / "checkpoints" / f"{name}.pt", weights_only=True)
        assert state["complete"] and "model" in state
        log = [json.loads(line) for line in
               (run_dir / "logs" / f"{name}.jsonl").read_text().splitlines()]
        assert log and all(math.isfinite(r["loss"]) for r in log)
        assert log[-1]["step"] == metrics["models"][name]["steps"]
        assert log[-1]["loss"] == metrics["models"][name]["final_loss"]

    figures = sorted((run_dir / "figures").glob("*.png"))
    assert len(figures) >= 3
    for figure in figures:
        data = figure.read_bytes()
        assert len(data) > 1000 and data.startswith(PNG_MAGIC), figure

    html = (run_dir / "report.html").read_text()
    assert "data:image/png;base64" in html
    images = re.findall(r'<img[^>]*src="([^"]*)"', html)
    assert len(images) == len(figures)
    for src in images:  # every image is embedded, none is a link to a file
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG_MAGIC)
    assert not re.search(r'(src|href)="(?!data:)', html)
    assert f"{fno['test_rel_l2']:.3e}" in html
    assert f"{pinn['rel_l2']:.3e}" in html and f"{pinn['rel_l2_final']:.3e}" in html
    for value in (fno["test_rel_l2"], fno["train_rel_l2"], pinn["rel_l2"], pinn["residual_rms"]):
        assert json.dumps(value) in html  # the full-precision metrics block

    # nothing temporary is left anywhere in the run directory
    assert not [p for p in run_dir.rglob("*") if p.name.endswith(".tmp")]


def test_same_seed_same_metrics_other_seed_different(tiny_run, tmp_path):
    config, run_dir, _ = tiny_run
    reference = json.loads((run_dir / "metrics.json").read_text())

    result = scidl_cli("run", config, "--out", tmp_path / "b", "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""  # --quiet
    assert json.loads((tmp_path / "b" / "metrics.json").read_text()) == reference

    result = scidl_cli("run", config, "--out", tmp_path / "c", "--quiet", "--seed", "1",
                       cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    other = json.loads((tmp_path / "c" / "metrics.json").read_text())
    assert other["seed"] == 1
    assert yaml.safe_load((tmp_path / "c" / "config.yaml").read_text())["seed"] == 1
    for name, key in (("fno", "test_rel_l2"), ("pinn", "rel_l2")):
        assert other["models"][name][key] != reference["models"][name][key]


def test_threads_option(tiny_run, tmp_path):
    config, run_dir, _ = tiny_run
    reference = json.loads((run_dir / "metrics.json").read_text())
    result = scidl_cli("run", config, "--out", tmp_path / "t", "--quiet", "--threads", "1",
                       cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "t" / "metrics.json").read_text())
    for name, key in (("fno", "test_rel_l2"), ("pinn", "rel_l2")):
        assert metrics["models"][name][key] == pytest.approx(reference["models"][name][key],
                                                             rel=1e-3)
    result = scidl_cli("run", config, "--out", tmp_path / "u", "--threads", "0", cwd=tmp_path)
    assert result.returncode != 0 and not (tmp_path / "u").exists()


def test_evaluate_reproduces_the_stored_metrics(tiny_run, tmp_path):
    _, run_dir, _ = tiny_run
    before = snapshot(run_dir)
    result = scidl_cli("evaluate", run_dir, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "matches" in result.stderr
    stored = json.loads((run_dir / "metrics.json").read_text())
    assert_close_tree(json.loads(result.stdout), stored, rel=1e-6)
    assert snapshot(run_dir) == before  # evaluation writes nothing


def test_evaluate_detects_changed_metrics(tiny_run, tmp_path, capsys):
    # in-process (the subprocess path is checked above), to keep the suite fast
    _, run_dir, _ = tiny_run
    tampered = tmp_path / "tampered"
    shutil.copytree(run_dir, tampered)
    changed = json.loads((run_dir / "metrics.json").read_text())
    changed["models"]["fno"]["test_rel_l2"] *= 1.01
    (tampered / "metrics.json").write_text(json.dumps(changed))
    with pytest.raises(SystemExit) as info:
        main(["evaluate", str(tampered)])
    assert info.value.code == 1
    assert "DIFFERS" in capsys.readouterr().err

    with pytest.raises(ConfigError, match="not a run directory"):
        evaluate_run(tmp_path / "nothing")


def test_run_and_evaluate_with_a_data_file(tiny_run, tmp_path):
    """A run reading its data from a file: its resolved config is valid, so evaluate works."""
    _, run_dir, _ = tiny_run
    raw = _file_config(run_dir / "data" / "dataset.h5")
    del raw["models"]["pinn"]
    config = write_config(tmp_path / "file.yaml", raw)
    out = run(load_config(config), tmp_path / "from_file", quiet=True)  # in-process: faster
    resolved = yaml.safe_load((out / "config.yaml").read_text())
    assert resolved["data"]["path"] == raw["data"]["path"]
    assert parse_config(resolved) == load_config(config)
    stored = json.loads((out / "metrics.json").read_text())
    # the same data and seed as the generated run (a subprocess) give the same FNO
    generated = json.loads((run_dir / "metrics.json").read_text())
    assert stored["models"]["fno"] == generated["models"]["fno"]
    assert_close_tree(evaluate_run(out), stored, rel=1e-6)


# --- data generation -------------------------------------------------------------------------


def test_data_generate(tmp_path):
    args = ("data", "generate", "burgers", "--n", "4", "--res", "32", "--solver-res", "64",
            "--quiet")
    result = scidl_cli(*args, "--out", tmp_path / "F.h5", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""

    with h5py.File(tmp_path / "F.h5", "r") as f:
        attrs = set(f.attrs)
        assert f["u"].shape == (4, 11, 32)
    assert {"equation", "parameters", "resolution", "solver_resolution", "solver", "dt", "seed",
            "scidl_version", "initial_condition"} <= attrs
    dataset = read_dataset(tmp_path / "F.h5")
    assert dataset.attrs["equation"] == "burgers"
    assert dataset.attrs["parameters"] == {"nu": 0.1}
    assert dataset.attrs["resolution"] == 32 and dataset.attrs["solver_resolution"] == 64
    assert dataset.attrs["seed"] == 0 and dataset.attrs["scidl_version"] == scidl.__version__
    assert dataset.attrs["initial_condition"]["sigma"] == 25.0

    direct = generate_trajectories(
        TrajectoryRecipe.build("burgers", {"nu": 0.1, "setting": "fno-paper"}, resolution=32,
                               t_final=1.0, n_times=11, solver_resolution=64, seed=0), 4)
    for name in ("u", "t", "x"):
        assert torch.equal(getattr(dataset, name), getattr(direct, name)), name
    assert dataset.attrs["dt"] == direct.attrs["dt"]

    result = scidl_cli(*args, "--out", tmp_path / "G.h5", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    again = read_dataset(tmp_path / "G.h5")
    assert torch.equal(again.u, dataset.u)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_data_generate_with_params_subsample_and_info(tmp_path):
    result = scidl_cli("data", "generate", "burgers", "--param", "nu=0.001", "--param",
                       "setting=fno-repository", "--n", "3", "--res", "32", "--solver-res", "64",
                       "--chunk-size", "2", "--subsample", "2", "--out", tmp_path / "R.h5",
                       "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    fine, coarse = read_dataset(tmp_path / "R.h5"), read_dataset(tmp_path / "R_r16.h5")
    assert fine.attrs["parameters"] == {"nu": 0.001}
    assert fine.attrs["initial_condition"] == {"kind": "grf", "sigma": 49.0, "tau": 7.0,
                                               "gamma": 2.5}
    assert torch.equal(coarse.u, fine.u[..., ::2])

    info = scidl_cli("data", "info", tmp_path / "R_r16.h5", cwd=tmp_path)
    assert info.returncode == 0, info.stderr
    assert "u: (3, 11, 16) float32" in info.stdout and "checksum: ok" in info.stdout
    assert "equation: burgers" in info.stdout

    bad = scidl_cli("data", "generate", "burgers", "--param", "mu=1", "--out", tmp_path / "X.h5",
                    cwd=tmp_path)
    assert bad.returncode == 2 and "mu" in bad.stderr and not (tmp_path / "X.h5").exists()
