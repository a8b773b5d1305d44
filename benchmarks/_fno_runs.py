"""Helpers of benchmarks/fno_paper.py: running configs and generating the paper's datasets once."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from scidl.data import DarcyRecipe, TrajectoryRecipe, write_darcy, write_trajectories
from scidl.experiments import parse_config, run

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def load_yaml(name: str) -> dict:
    return yaml.safe_load((CONFIGS / name).read_text())


def execute(raw: dict, runs_dir: Path, label: str) -> tuple[dict, float, Path]:
    """Run a config (a dict) into runs_dir/label; returns metrics, training seconds and the
    directory. An existing run of the same config is resumed (a finished one is only
    re-evaluated), so an interrupted benchmark continues where it stopped."""
    out = runs_dir / label
    config = parse_config(raw)
    resume = (out / "config.yaml").exists()
    try:
        run(config, out, resume=resume, quiet=True)
    except Exception as err:  # a different config in the same folder: start again
        if not resume or "config" not in str(err):
            raise
        run(config, out, overwrite=True, quiet=True)
    metrics = json.loads((out / "metrics.json").read_text())
    timings = json.loads((out / "timings.json").read_text())
    seconds = sum(v for k, v in timings.items() if k.endswith(".train_total"))
    print(f"  {label}: trained {seconds:.0f} s", flush=True)
    return metrics, seconds, out


def set_epochs(raw: dict, model: str, epochs: int) -> None:
    for stage in raw["models"][model]["training"]["stages"]:
        stage["epochs"] = epochs


def finetune(raw: dict, model: str, checkpoint: Path, epochs: int, lr: float) -> None:
    """Start ``model`` from ``checkpoint`` and train ``epochs`` more at a small cosine-decayed
    learning rate (a warm-up to the full rate would undo the coarse training)."""
    spec = raw["models"][model]
    spec["init"] = str(checkpoint)
    stage = spec["training"]["stages"][0]
    spec["training"]["stages"] = [{"optimizer": stage.get("optimizer", "adam"), "epochs": epochs,
                                   "lr": lr, "weight_decay": stage.get("weight_decay", 0.0),
                                   "schedule": "cosine"}]


# ---- data ---------------------------------------------------------------------------------------

def burgers_file(data_dir: Path, nu: float, n: int) -> Path:
    """1,100 (or n) trajectories at 8,192 points, t = 0 and 1, in the given setting."""
    path = data_dir / f"burgers_nu{nu:g}_8192_n{n}.h5"
    if not path.exists():
        setting = "fno-repository" if nu == 1e-3 else "fno-paper"
        recipe = TrajectoryRecipe.build("burgers", {"nu": nu, "setting": setting},
                                        resolution=8192, solver_resolution=8192, n_times=2)
        print(f"generating {path.name}", flush=True)
        write_trajectories(recipe, n, path)
    return path


def darcy_files(data_dir: Path, n: int) -> tuple[Path, Path]:
    """n Darcy problems solved at 421 x 421 nodes, saved at 85 and 141 nodes."""
    path = data_dir / f"darcy_r85_n{n}.h5"
    fine = path.with_name(f"{path.stem}_r141.h5")
    if not (path.exists() and fine.exists()):
        print(f"generating {path.name} (about 0.8 s per sample)", flush=True)
        write_darcy(DarcyRecipe(resolution=85), n, path, also=(141,))
    return path, fine


def ns_file(data_dir: Path, n: int) -> Path:
    """n vorticity trajectories, nu = 1e-3, 64 x 64, saved every t = 1 up to T = 50."""
    path = data_dir / f"navier_stokes_nu1e-3_64_T50_n{n}.h5"
    if not path.exists():
        recipe = TrajectoryRecipe.build("navier_stokes", {"nu": 1e-3}, resolution=64,
                                        t_final=50.0, n_times=51)
        print(f"generating {path.name}", flush=True)
        write_trajectories(recipe, n, path)
    return path
