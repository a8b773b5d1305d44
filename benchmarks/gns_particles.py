"""A learned particle simulator (GNS) against the true simulator it was trained on.

The ``kind: simulator`` dynamics study (scidl.experiments.simulator_study) at benchmark size:
a Graph Network-based Simulator (Sanchez-Gonzalez et al., "Learning to Simulate Complex Physics
with Graph Networks", ICML 2020; encode-process-decode, one-step accelerations with random-walk
input noise, semi-implicit Euler rollout in frame units) trained on trajectories of 24 soft
spheres in a box (scidl.sims.pair_potential.SoftSpheres, velocity Verlet with 10 steps per
frame of 0.05 time units), then rolled out for 100 steps from unseen initial states.

Records the rollout position MSE at steps 1/10/50/100 and over the 100 steps for the GNS and a
constant-velocity baseline (``a = 0``), the one-step MSE, and the true energy's relative drift
along the learned rollout next to the true trajectory's (both with central-difference
velocities) and the integrator's own.

Usage: python benchmarks/gns_particles.py [--quick] [--steps N] [--seed S] [--threads T]
       [--keep DIR] [--out FILE]
Writes benchmarks/results/gns_particles.json (--quick: gns_particles_quick.json, the size of
configs/gns_particles.yaml).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
from _results import machine_info, utc_now, write_result

from scidl.experiments import parse_config, run

HERE = Path(__file__).resolve().parent

STUDY = {
    "kind": "simulator",
    "system": {"name": "soft_spheres", "parameters": {"particles": 24, "box": 6.0, "sigma": 1.0,
                                                      "epsilon": 2.0, "temperature": 0.5}},
    "train_trajectories": 32, "test_trajectories": 8, "frames": 100, "burn_in": 20,
    "frame_dt": 0.05, "substeps": 10, "history": 5, "radius": 1.5, "hidden": 64,
    "message_passing": 4, "mlp_layers": 2, "noise_std": 0.003, "batch_size": 8,
    "steps": 6000, "lr": 0.001, "rollout_steps": 100, "strip_frames": 6,
}
QUICK = {"train_trajectories": 16, "test_trajectories": 4, "steps": 2000}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the size of the example config")
    parser.add_argument("--steps", type=int, default=None, help="training steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: the recorded runs)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the run directory here")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    study = {**STUDY, **(QUICK if args.quick else {})}
    if args.steps:
        study["steps"] = args.steps
    config = parse_config({"task": "dynamics", "name": "gns-particles-benchmark",
                           "seed": args.seed, "studies": {"particles": study}})
    out = args.out or HERE / "results" / f"gns_particles{'_quick' if args.quick else ''}.json"
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        run_dir = run(config, args.keep or Path(scratch) / "run", overwrite=True, quiet=True)
        metrics = json.loads((run_dir / "metrics.json").read_text())["studies"]["particles"]
    seconds = time.perf_counter() - started
    drift = metrics["energy_drift"]
    result = {
        "benchmark": "gns_particles",
        "reference": "Sanchez-Gonzalez et al., Learning to Simulate Complex Physics with Graph "
                     "Networks, ICML 2020",
        "date": utc_now(), "machine": machine_info(), "mode": "quick" if args.quick else "default",
        "setup": {**study, "seed": args.seed, "system_description": metrics["system"],
                  "parameters": metrics["parameters"],
                  "mse": "mean over test trajectories, particles and coordinates of the squared "
                         "position error (position units^2; the box is 6 x 6, sigma = 1)",
                  "energy": "max over steps 0..100 of |E - E0| / |E0|, mean over test "
                            "trajectories; E from the true energy function with "
                            "central-difference velocities (true_exact_velocities: the "
                            "integrator's velocities)"},
        "rollout_mse": metrics["rollout_mse"],
        "baseline_rollout_mse": metrics["baseline_rollout_mse"],
        "one_step_position_mse": metrics["one_step_position_mse"],
        "baseline_one_step_position_mse": metrics["baseline_one_step_position_mse"],
        "energy_drift": drift,
        "final_train_loss": metrics["final_train_loss"],
        "train_seconds": metrics["train_seconds"], "seconds": seconds,
    }
    write_result(out, result)
    mse, base = metrics["rollout_mse"], metrics["baseline_rollout_mse"]
    for key in mse:
        print(f"rollout MSE {key:8s} GNS {mse[key]:.3e}   constant velocity {base[key]:.3e}")
    print(f"max |dE/E0| over 100 steps: GNS {drift['learned']['max_rel_energy_drift']:.3e}, "
          f"true {drift['true_finite_difference']['max_rel_energy_drift']:.3e} "
          f"(integrator velocities {drift['true_exact_velocities']['max_rel_energy_drift']:.3e})")
    print(f"wrote {out} ({seconds:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
