"""The FNO paper's benchmarks (Li et al., "Fourier Neural Operator for Parametric Partial
Differential Equations", ICLR 2021) with scidl, every model trained through ``scidl run`` from a
config in configs/.

Tasks (see ../shared/PROTOCOLS.md for the data):

* ``burgers``: the repository setting (nu = 1e-3), relative L2 at T = 1 by training resolution
  s = 256 ... 8,192 (configs/fno_burgers.yaml). The s = 256 model is trained from scratch; the
  finer ones start from it and are fine-tuned at s for ``--finetune-epochs`` (a coarse-to-fine
  curriculum: a full training at 8,192 points costs 32x as much per epoch on these CPUs). The
  s = 256 model is also evaluated zero-shot at every finer grid (super-resolution).
* ``burgers-text``: the paper's text setting (nu = 0.1), the same table at s = 256 and 1,024.
* ``darcy``: 85 x 85 and 141 x 141 nodes subsampled from 421 x 421 (configs/fno_darcy.yaml);
  the 141 model is fine-tuned from the 85 one; zero-shot 85 -> 141 is reported too.
* ``deeponet``: DeepONet and POD-DeepONet against the FNO on the same Burgers (s = 256) and
  Darcy (s = 43) data (configs/deeponet_burgers.yaml, configs/deeponet_darcy.yaml).
* ``speedup``: inference time per sample of the trained Burgers FNO against scidl's solver run
  at the same resolution and the FNO's accuracy (its compute grid and step calibrated to the
  FNO's error).
* ``navier-stokes``: FNO-2D (autoregressive), FNO-3D (space-time) and U-Net at nu = 1e-3 on
  64 x 64 with 10 input steps, on the budget given by ``--ns-train`` and ``--ns-epochs``.

Data are generated once into --data-dir (scidl's own solvers, the same commands as
``scidl data generate``) and shared by the runs; run directories go to --runs-dir.

Usage: python benchmarks/fno_paper.py TASK [TASK ...] [--quick] [--threads T]
Writes benchmarks/results/fno_paper_<task>.json (--quick: ..._quick.json).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import torch
import yaml
from _results import machine_info, utc_now, write_result

from scidl.data import DarcyRecipe, TrajectoryRecipe, write_darcy, write_trajectories
from scidl.experiments import parse_config, run

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CONFIGS = ROOT / "configs"

#: published relative L2 errors (Li et al. 2021, Tables 1-3)
PAPER = {
    "burgers": {256: 0.0149, 512: 0.0158, 1024: 0.0160, 2048: 0.0146, 4096: 0.0142, 8192: 0.0139},
    "darcy": {85: 0.0108, 141: 0.0109},
    "navier-stokes": {"fno2d": 0.0128, "fno3d": 0.0086, "unet": 0.0245},
}


def load_yaml(name: str) -> dict:
    return yaml.safe_load((CONFIGS / name).read_text())


def execute(raw: dict, runs_dir: Path, label: str) -> tuple[dict, float, Path]:
    """Run a config (a dict) into runs_dir/label; returns metrics, seconds and the directory."""
    out = runs_dir / label
    started = time.perf_counter()
    run(parse_config(raw), out, overwrite=True, quiet=True)
    seconds = time.perf_counter() - started
    metrics = json.loads((out / "metrics.json").read_text())
    print(f"  {label}: {seconds:.0f} s", flush=True)
    return metrics, seconds, out


def set_epochs(raw: dict, model: str, epochs: int) -> None:
    for stage in raw["models"][model]["training"]["stages"]:
        stage["epochs"] = epochs


# ---- data -------------------------------------------------------------------------------------

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


# ---- tasks ------------------------------------------------------------------------------------

def task_burgers(args, nu: float = 1e-3, resolutions=(256, 512, 1024, 2048, 4096, 8192)) -> dict:
    n_train, n_test = (100, 20) if args.quick else (1000, 100)
    path = burgers_file(args.data_dir, nu, n_train + n_test)
    base = load_yaml("fno_burgers.yaml")
    base["data"] = {"path": str(path), "n_train": n_train, "n_test": n_test}
    if args.quick:
        set_epochs(base, "fno", 2)
    tag = "burgers" if nu == 1e-3 else "burgers-text"
    rows, zero_shot = [], {}
    coarse_checkpoint = None
    for s in resolutions:
        raw = copy.deepcopy(base)
        raw["name"] = f"{tag}-s{s}"
        raw["data"]["subsample"] = 8192 // s
        fno = raw["models"]["fno"]
        fno["evaluate_subsample"] = [8192 // r for r in resolutions if r >= s]
        if coarse_checkpoint is not None:
            fno["init"] = str(coarse_checkpoint)
            set_epochs(raw, "fno", 2 if args.quick else args.finetune_epochs)
        metrics, seconds, out = execute(raw, args.runs_dir, f"{tag}-s{s}")
        m = metrics["models"]["fno"]
        epochs = fno["training"]["stages"][0]["epochs"]
        rows.append({"s": s, "test_rel_l2": m["test_rel_l2"], "train_rel_l2": m["train_rel_l2"],
                     "epochs": epochs, "init": "s=256" if coarse_checkpoint else "scratch",
                     "seconds": seconds, "paper": PAPER["burgers"].get(s) if nu == 1e-3 else None,
                     "by_resolution": m.get("test_rel_l2_by_resolution", {})})
        print(f"  s = {s}: test rel. L2 {m['test_rel_l2']:.4f}", flush=True)
        if coarse_checkpoint is None:
            zero_shot = m.get("test_rel_l2_by_resolution", {})
            coarse_checkpoint = out / "checkpoints" / "fno.pt"
    return {"task": tag, "nu": nu, "n_train": n_train, "n_test": n_test,
            "config": "configs/fno_burgers.yaml", "rows": rows,
            "zero_shot_from_256": zero_shot}


def task_darcy(args) -> dict:
    n_train, n_test = (100, 20) if args.quick else (1000, 100)
    coarse, fine = darcy_files(args.data_dir, n_train + n_test)
    raw = load_yaml("fno_darcy.yaml")
    raw["data"] = {"path": str(coarse), "n_train": n_train, "n_test": n_test}
    raw["models"]["fno"]["evaluate_paths"] = {"141x141": str(fine)}
    if args.quick:
        set_epochs(raw, "fno", 1)
    m85, sec85, out85 = execute(raw, args.runs_dir, "darcy-s85")
    m85 = m85["models"]["fno"]
    rows = [{"s": 85, "test_rel_l2": m85["test_rel_l2"], "train_rel_l2": m85["train_rel_l2"],
             "epochs": raw["models"]["fno"]["training"]["stages"][0]["epochs"],
             "init": "scratch", "seconds": sec85, "paper": PAPER["darcy"][85]}]
    fine_raw = copy.deepcopy(raw)
    fine_raw["name"] = "darcy-s141"
    fine_raw["data"]["path"] = str(fine)
    fine_raw["models"]["fno"]["evaluate_paths"] = {}
    fine_raw["models"]["fno"]["init"] = str(out85 / "checkpoints" / "fno.pt")
    set_epochs(fine_raw, "fno", 1 if args.quick else args.darcy_finetune_epochs)
    m141, sec141, _ = execute(fine_raw, args.runs_dir, "darcy-s141")
    m141 = m141["models"]["fno"]
    rows.append({"s": 141, "test_rel_l2": m141["test_rel_l2"],
                 "train_rel_l2": m141["train_rel_l2"],
                 "epochs": fine_raw["models"]["fno"]["training"]["stages"][0]["epochs"],
                 "init": "s=85", "seconds": sec141, "paper": PAPER["darcy"][141]})
    return {"task": "darcy", "n_train": n_train, "n_test": n_test,
            "config": "configs/fno_darcy.yaml", "rows": rows,
            "zero_shot_85_to_141": m85.get("test_rel_l2_by_resolution", {}).get("141x141")}


TASKS = {"burgers": task_burgers,
         "burgers-text": lambda args: task_burgers(args, nu=0.1, resolutions=(256, 1024)),
         "darcy": task_darcy}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tasks", nargs="*", default=["burgers", "burgers-text", "darcy"],
                        help=f"tasks to run: {', '.join(TASKS)}")
    parser.add_argument("--quick", action="store_true", help="tiny data and epochs (smoke run)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--finetune-epochs", type=int, default=20,
                        help="Burgers: epochs at each s > 256, starting from the s = 256 model")
    parser.add_argument("--darcy-finetune-epochs", type=int, default=10)
    parser.add_argument("--data-dir", type=Path, default=ROOT / "runs" / "bench-data")
    parser.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "bench")
    args = parser.parse_args()
    unknown = set(args.tasks) - set(TASKS)
    if unknown:
        parser.error(f"unknown task(s) {sorted(unknown)}; known: {', '.join(TASKS)}")
    torch.set_num_threads(args.threads)
    args.data_dir.mkdir(parents=True, exist_ok=True)
    for name in args.tasks:
        print(f"== {name}", flush=True)
        started = time.perf_counter()
        result = TASKS[name](args)
        result.update(seconds=time.perf_counter() - started, quick=args.quick, date=utc_now(),
                      machine=machine_info())
        suffix = "_quick" if args.quick else ""
        path = write_result(HERE / "results" / f"fno_paper_{name}{suffix}.json", result)
        print(f"wrote {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
