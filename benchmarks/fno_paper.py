"""The FNO paper's benchmarks (Li et al., "Fourier Neural Operator for Parametric Partial
Differential Equations", ICLR 2021) with scidl, every model trained through ``scidl run`` from a
config in configs/.

Tasks (see ../shared/PROTOCOLS.md for the data):

* ``burgers``: the repository setting (nu = 1e-3), relative L2 at T = 1 by training resolution
  s = 256 ... 8,192 (configs/fno_burgers.yaml). The s = 256 model is trained from scratch; the
  finer ones start from it and are fine-tuned at s for ``--finetune-epochs`` (a coarse-to-fine
  curriculum: a full training at 8,192 points costs 32x as much per epoch on these CPUs). The
  s = 256 model is also evaluated zero-shot at every finer grid (super-resolution).
* ``burgers-text``: the paper's text setting (nu = 0.1), the same table at s = 256 and 1,024
  (``--text-epochs``, 50 by default: this setting is easy).
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
import dataclasses
import json
import sys
import time
from pathlib import Path

import torch
from _fno_runs import (
    burgers_file,
    darcy_files,
    execute,
    finetune,
    load_yaml,
    ns_file,
    set_epochs,
)
from _results import machine_info, utc_now, write_result

from scidl.data import TrajectoryRecipe

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

#: published relative L2 errors (Li et al. 2021, Tables 1-3)
PAPER = {
    "burgers": {256: 0.0149, 512: 0.0158, 1024: 0.0160, 2048: 0.0146, 4096: 0.0142, 8192: 0.0139},
    "darcy": {85: 0.0108, 141: 0.0109},
    "navier-stokes": {"fno2d": 0.0128, "fno3d": 0.0086, "unet": 0.0245},
}


# ---- data -------------------------------------------------------------------------------------

# ---- tasks ------------------------------------------------------------------------------------

def task_burgers(args, nu: float = 1e-3, resolutions=(256, 512, 1024, 2048, 4096, 8192)) -> dict:
    n_train, n_test = (100, 20) if args.quick else (1000, 100)
    path = burgers_file(args.data_dir, nu, n_train + n_test)
    base = load_yaml("fno_burgers.yaml")
    base["data"] = {"path": str(path), "n_train": n_train, "n_test": n_test}
    base["device"] = args.device
    tag = "burgers" if nu == 1e-3 else "burgers-text"
    if args.quick:
        set_epochs(base, "fno", 2)
    elif nu != 1e-3:
        set_epochs(base, "fno", args.text_epochs)
    elif args.burgers_epochs:
        set_epochs(base, "fno", args.burgers_epochs)
    if args.burgers_galilean:
        base["models"]["fno"]["training"]["galilean"] = {"max_speed": args.burgers_galilean,
                                                         "on_grid": True}
        tag += f"-galilean{args.burgers_galilean:g}"
    if args.burgers_seed is not None:
        base["seed"] = args.burgers_seed
        tag += f"-seed{args.burgers_seed}"
    evaluated = resolutions
    resolutions = [s for s in resolutions if s <= args.burgers_max_resolution]
    rows, zero_shot = [], {}
    coarse_checkpoint = None
    for s in resolutions:
        raw = copy.deepcopy(base)
        raw["name"] = f"{tag}-s{s}"
        raw["data"]["subsample"] = 8192 // s
        fno = raw["models"]["fno"]
        fno["evaluate_subsample"] = [8192 // r for r in evaluated if r >= s]
        if coarse_checkpoint is not None:
            finetune(raw, "fno", coarse_checkpoint, 1 if args.quick else args.finetune_epochs,
                     args.finetune_lr)
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
            "config": "configs/fno_burgers.yaml", "galilean": args.burgers_galilean,
            "seed": base.get("seed", 0), "rows": rows,
            "zero_shot_from_256": zero_shot}


def darcy_configs(args) -> dict[str, dict]:
    """The two Darcy runs as config dicts, by run label: s = 85 from scratch, and s = 141 either
    from scratch (the paper's protocol, the default) or fine-tuned from the s = 85 model."""
    n_train, n_test = (100, 20) if args.quick else (1000, 100)
    coarse, fine = darcy_files(args.data_dir, n_train + n_test)
    raw = load_yaml("fno_darcy.yaml")
    raw["device"] = args.device
    raw["data"] = {"path": str(coarse), "n_train": n_train, "n_test": n_test}
    raw["models"]["fno"]["evaluate_paths"] = {"141x141": str(fine)}
    if args.quick:
        set_epochs(raw, "fno", 1)
    elif args.darcy_epochs:
        set_epochs(raw, "fno", args.darcy_epochs)
    fine_raw = copy.deepcopy(raw)
    fine_raw["name"] = "darcy-s141"
    fine_raw["data"]["path"] = str(fine)
    fine_raw["models"]["fno"]["evaluate_paths"] = {}
    if args.darcy_141 == "finetune":
        finetune(fine_raw, "fno", args.runs_dir / "darcy-s85" / "checkpoints" / "fno.pt",
                 1 if args.quick else args.darcy_finetune_epochs, args.finetune_lr)
    return {"darcy-s85": raw, "darcy-s141": fine_raw}


def task_darcy(args) -> dict:
    configs = darcy_configs(args)
    rows, zero_shot = [], None
    for label, raw in configs.items():
        metrics, seconds, _ = execute(raw, args.runs_dir, label)
        m = metrics["models"]["fno"]
        s = 85 if label == "darcy-s85" else 141
        init = raw["models"]["fno"].get("init")
        rows.append({"s": s, "test_rel_l2": m["test_rel_l2"], "train_rel_l2": m["train_rel_l2"],
                     "epochs": raw["models"]["fno"]["training"]["stages"][0]["epochs"],
                     "init": "s=85" if init else "scratch", "seconds": seconds,
                     "paper": PAPER["darcy"][s]})
        if s == 85:
            zero_shot = m.get("test_rel_l2_by_resolution", {}).get("141x141")
        print(f"  s = {s}: test rel. L2 {m['test_rel_l2']:.4f}", flush=True)
    data = configs["darcy-s85"]["data"]
    return {"task": "darcy", "n_train": data["n_train"], "n_test": data["n_test"],
            "config": "configs/fno_darcy.yaml", "rows": rows,
            "zero_shot_85_to_141": zero_shot}


def task_navier_stokes(args) -> dict:
    n_train, n_test = (8, 4) if args.quick else (args.ns_train, args.ns_test)
    path = ns_file(args.data_dir, n_train + n_test)
    raw = load_yaml("fno_navier_stokes.yaml")
    raw["data"] = {"path": str(path), "n_train": n_train, "n_test": n_test}
    raw["models"] = {k: v for k, v in raw["models"].items() if k in args.ns_models}
    for name in raw["models"]:
        set_epochs(raw, name, 1 if args.quick else args.ns_epochs)
        if args.quick:
            raw["models"][name]["training"]["batch_size"] = 4
    metrics, seconds, out = execute(raw, args.runs_dir, "navier-stokes")
    rows = []
    for name, m in metrics["models"].items():
        log = [json.loads(line) for line in (out / "logs" / f"{name}.jsonl").read_text()
               .splitlines()]
        per_epoch = max(n_train // raw["models"][name]["training"]["batch_size"], 1)
        curve = {}
        for entry in log:  # mean training loss (rel. L2 over the rollout) per epoch
            curve.setdefault(entry["step"] // per_epoch, []).append(entry["loss"])
        rows.append({"model": name, "test_rel_l2": m["test_rel_l2"],
                     "train_rel_l2": m["train_rel_l2"], "parameters": m["parameters"],
                     "paper": PAPER["navier-stokes"][name],
                     "train_loss_by_epoch": {int(k): sum(v) / len(v) for k, v in curve.items()}})
    return {"task": "navier-stokes", "n_train": n_train, "n_test": n_test,
            "epochs": 1 if args.quick else args.ns_epochs, "seconds_training": seconds,
            "config": "configs/fno_navier_stokes.yaml", "rows": rows}


def task_deeponet(args) -> dict:
    """DeepONet and POD-DeepONet on the Burgers (s = 256) and Darcy (85 x 85) data of the
    burgers and darcy tasks, next to the FNO numbers those tasks recorded."""
    n_train, n_test = (100, 20) if args.quick else (1000, 100)
    suffix = "_quick" if args.quick else ""
    rows = []
    for family, config, data in (
        ("burgers", "deeponet_burgers.yaml",
         {"path": str(burgers_file(args.data_dir, 1e-3, n_train + n_test)), "subsample": 32}),
        ("darcy", "deeponet_darcy.yaml",
         {"path": str(darcy_files(args.data_dir, n_train + n_test)[0])}),
    ):
        raw = load_yaml(config)
        raw["data"] = {**data, "n_train": n_train, "n_test": n_test}
        for name in raw["models"]:
            if args.quick:
                set_epochs(raw, name, 2)
            elif family == "darcy":  # the trunk runs on all 7,225 nodes every step
                set_epochs(raw, name, args.deeponet_darcy_epochs)
        metrics, seconds, _ = execute(raw, args.runs_dir, f"deeponet-{family}")
        fno_file = HERE / "results" / f"fno_paper_{family}{suffix}.json"
        fno = None
        if fno_file.exists():
            fno = json.loads(fno_file.read_text())["rows"][0]["test_rel_l2"]
        for name, m in metrics["models"].items():
            rows.append({"data": family, "model": name, "test_rel_l2": m["test_rel_l2"],
                         "parameters": m["parameters"],
                         "by_resolution": m.get("test_rel_l2_by_resolution", {})})
        rows.append({"data": family, "model": "fno (from the task above)", "test_rel_l2": fno})
    return {"task": "deeponet", "n_train": n_train, "n_test": n_test, "rows": rows}


def task_speedup(args) -> dict:
    """FNO inference against scidl's solver at the FNO's accuracy, per sample, on one thread.

    The trained Burgers FNO of each resolution s (runs of the burgers task) predicts u(T) for
    the test set in batches of 100; the solver's grid and step are calibrated to a tolerance
    equal to the FNO's test error, and it solves the same 100 initial states (timed after
    calibration). The solver's own error against the stored data is reported next to it.
    """
    from scidl.data import calibrate
    from scidl.experiments import load_config
    from scidl.experiments.datasets import load_data
    from scidl.experiments.operator import restore
    from scidl.metrics import relative_l2

    rows = []
    for s in args.speedup_resolutions:
        run_dir = args.runs_dir / f"burgers-s{s}"
        if not (run_dir / "metrics.json").exists():
            print(f"  no trained model in {run_dir}; run the burgers task first", flush=True)
            continue
        config = load_config(run_dir / "config.yaml")
        cfg = config.models["fno"]
        data = load_data(config.data, run_dir)
        model, _ = restore("fno", cfg, config, data, run_dir)
        model.eval()
        x = data.strided(data.test["u"][:, :1], data.subsample)
        y = data.strided(data.test["u"][:, 1:], data.subsample)
        with torch.no_grad():
            model(x[:10])
            started = time.perf_counter()
            prediction = torch.cat([model(part) for part in x.split(100)])
            fno_seconds = (time.perf_counter() - started) / x.shape[0]
        fno_error = float(relative_l2(prediction, y).mean())
        recipe = TrajectoryRecipe.build("burgers", {"nu": 1e-3, "setting": "fno-repository"},
                                        resolution=s, solver_resolution=8192, n_times=2,
                                        tolerance=fno_error)
        n_train = config.data.n_train
        calibrated = calibrate(recipe, 4)
        # the test states are samples n_train .. n_train + n_test of the dataset: regenerate
        # their chunk and time the solve of the whole chunk (its samples cost the same)
        chunk = n_train // recipe.chunk_size
        solved, solver_seconds, calibrated = _timed_solve(calibrated, chunk, s)
        offset = n_train - chunk * recipe.chunk_size
        count = min(recipe.chunk_size - offset, y.shape[0])

        def error(trajectories, offset=offset, count=count, y=y):
            return float(relative_l2(trajectories[offset:offset + count, -1:],
                                     y[:count]).mean())

        solver_error = error(solved)
        # the paper's comparison: the solver on the output grid itself (s points), its step
        # calibrated to the same tolerance
        same = calibrate(dataclasses.replace(recipe, compute_resolution=s), 4)
        solved_same, same_seconds, same = _timed_solve(same, chunk, s)
        rows.append({"s": s, "fno_seconds_per_sample": fno_seconds, "fno_rel_l2": fno_error,
                     "solver_compute_resolution": calibrated.compute_resolution,
                     "solver_dt": calibrated.dt, "solver_seconds_per_sample": solver_seconds,
                     "solver_rel_l2": solver_error,
                     "speedup": solver_seconds / fno_seconds,
                     "same_grid_solver_dt": same.dt,
                     "same_grid_solver_seconds_per_sample": same_seconds,
                     "same_grid_solver_rel_l2": error(solved_same),
                     "speedup_same_grid": same_seconds / fno_seconds})
        print(f"  s = {s}: FNO {fno_seconds * 1e3:.2f} ms ({fno_error:.4f}); solver "
              f"{solver_seconds * 1e3:.2f} ms ({solver_error:.4f}) on "
              f"{calibrated.compute_resolution} points: {solver_seconds / fno_seconds:.2f}x; "
              f"on {s} points {same_seconds * 1e3:.2f} ms: {same_seconds / fno_seconds:.2f}x",
              flush=True)
    ns = _navier_stokes_speedup(args)
    return {"task": "speedup", "rows": rows, "navier_stokes": ns}


def _timed_solve(recipe, chunk: int, resolution: int):
    """Solve one chunk of the recipe and time it: (trajectories, seconds per sample, recipe).
    A step calibrated on 4 probes may be unstable for some of the chunk's samples: it is
    halved until the whole chunk stays finite."""
    from scidl.data.generate import solve_chunk
    from scidl.errors import DivergenceError

    while True:
        try:
            started = time.perf_counter()
            solved = solve_chunk(recipe, chunk, recipe.chunk_size, resolution)
            return solved, (time.perf_counter() - started) / recipe.chunk_size, recipe
        except DivergenceError:
            recipe = dataclasses.replace(recipe, dt=recipe.dt / 2)


def _navier_stokes_speedup(args) -> list[dict]:
    """The recurrent FNO-2D of the navier-stokes task (t = 1..10 -> 11..50 on 64 x 64) against
    the solver from t = 10 to 50 on the same 64 x 64 grid, its step calibrated to the FNO's
    error, and against the paper's solver setting (256 x 256, dt = 1e-4; timed on one sample
    over t = 10..11 and scaled by 40)."""
    from scidl.data import calibrate
    from scidl.experiments import load_config
    from scidl.experiments.datasets import load_data
    from scidl.experiments.operator import pairs, restore
    from scidl.metrics import relative_l2
    from scidl.numerics import PeriodicGrid, fourier_resample, simulate

    run_dir = args.runs_dir / "navier-stokes"
    if not (run_dir / "metrics.json").exists():
        print("  no navier-stokes run; run that task first for its speed-up", flush=True)
        return []
    config = load_config(run_dir / "config.yaml")
    data = load_data(config.data, run_dir)
    rows = []
    cfg = config.models["fno2d"]
    model, _ = restore("fno2d", cfg, config, data, run_dir)
    model.eval()
    x, y = pairs(cfg, data, data.test)
    with torch.no_grad():
        model(x[:2])
        started = time.perf_counter()
        prediction = torch.cat([model(part) for part in x.split(20)])
        fno_seconds = (time.perf_counter() - started) / x.shape[0]
    fno_error = float(relative_l2(prediction, y).mean())
    recipe = TrajectoryRecipe.build("navier_stokes", {"nu": 1e-3}, resolution=64,
                                    solver_resolution=64, compute_resolution=64,
                                    t_final=40.0, n_times=41, tolerance=fno_error)
    calibrated = calibrate(recipe, 4)
    pde, grid = recipe.pde(), PeriodicGrid((64, 64), (1.0, 1.0))
    u10 = data.test["u"][:, 10].double()
    times = torch.arange(41, dtype=torch.float64)
    started = time.perf_counter()
    solved = simulate(pde, u10, times, grid=grid, dt=calibrated.dt)
    solver_seconds = (time.perf_counter() - started) / u10.shape[0]
    solver_error = float(relative_l2(solved[:, 1:].float(), y).mean())
    fine = PeriodicGrid((256, 256), (1.0, 1.0))
    started = time.perf_counter()
    simulate(pde, fourier_resample(u10[:1], (256, 256)), torch.tensor([0.0, 1.0]),
             grid=fine, dt=1e-4)
    paper_seconds = (time.perf_counter() - started) * 40
    rows.append({"fno_seconds_per_sample": fno_seconds, "fno_rel_l2": fno_error,
                 "solver_dt": calibrated.dt, "solver_seconds_per_sample": solver_seconds,
                 "solver_rel_l2": solver_error, "speedup": solver_seconds / fno_seconds,
                 "paper_solver_seconds_per_sample": paper_seconds,
                 "speedup_paper_solver": paper_seconds / fno_seconds})
    print(f"  navier-stokes: FNO-2D {fno_seconds * 1e3:.1f} ms ({fno_error:.4f}); solver on "
          f"64 x 64 {solver_seconds * 1e3:.1f} ms ({solver_error:.4f}): "
          f"{solver_seconds / fno_seconds:.2f}x; 256 x 256 at dt 1e-4 {paper_seconds:.1f} s: "
          f"{paper_seconds / fno_seconds:.0f}x", flush=True)
    return rows


TASKS = {"burgers": task_burgers,
         "burgers-text": lambda args: task_burgers(args, nu=0.1, resolutions=(256, 1024)),
         "darcy": task_darcy, "deeponet": task_deeponet, "speedup": task_speedup,
         "navier-stokes": task_navier_stokes}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tasks", nargs="*", default=list(TASKS),
                        help=f"tasks to run (default all, in this order): {', '.join(TASKS)}")
    parser.add_argument("--quick", action="store_true", help="tiny data and epochs (smoke run)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--finetune-epochs", type=int, default=2,
                        help="Burgers: epochs at each s > 256, starting from the s = 256 model")
    parser.add_argument("--device", default="auto",
                        help="where the runs train: auto (CUDA if present), cpu, cuda, cuda:N")
    parser.add_argument("--burgers-epochs", type=int, default=None,
                        help="burgers: epochs at s = 256 (default: the config's)")
    parser.add_argument("--burgers-galilean", type=float, default=None,
                        help="burgers: train with random Galilean boosts |c| <= this "
                             "(training.galilean, on the grid)")
    parser.add_argument("--burgers-seed", type=int, default=None,
                        help="burgers: the run's seed (default: the config's)")
    parser.add_argument("--burgers-max-resolution", type=int, default=8192,
                        help="burgers: train up to this s (256: the coarse model only)")
    parser.add_argument("--suffix", default="",
                        help="appended to the result file's name (fno_paper_<task><suffix>.json)")
    parser.add_argument("--darcy-epochs", type=int, default=None,
                        help="darcy: epochs per run (default: the config's, the paper's 500)")
    parser.add_argument("--darcy-141", choices=["scratch", "finetune"], default="scratch",
                        help="darcy: train the s = 141 model from scratch (the paper's protocol) "
                             "or fine-tune the s = 85 one for --darcy-finetune-epochs")
    parser.add_argument("--darcy-finetune-epochs", type=int, default=5)
    parser.add_argument("--finetune-lr", type=float, default=3e-4)
    parser.add_argument("--text-epochs", type=int, default=50,
                        help="burgers-text: epochs at s = 256 (the easy setting)")
    parser.add_argument("--deeponet-darcy-epochs", type=int, default=100)
    parser.add_argument("--ns-train", type=int, default=200)
    parser.add_argument("--ns-test", type=int, default=50)
    parser.add_argument("--ns-epochs", type=int, default=8)
    parser.add_argument("--ns-models", nargs="*", default=["fno2d", "fno3d", "unet"],
                        help="navier-stokes: models of configs/fno_navier_stokes.yaml to train")
    parser.add_argument("--speedup-resolutions", type=int, nargs="*",
                        default=[256, 1024, 8192])
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
        suffix = ("_quick" if args.quick else "") + args.suffix
        path = write_result(HERE / "results" / f"fno_paper_{name}{suffix}.json", result)
        print(f"wrote {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
