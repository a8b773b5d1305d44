"""Raissi et al.'s Burgers PINN, forward and inverse, from the bundled configs.

* ``configs/pinn_burgers.yaml`` -- forward problem (9 x 20 tanh, N_u = 100, N_f = 10,000 LHS
  points, float64, Adam warm-up then L-BFGS) against ``$SCIDL_DATA/pinn/Burgers.npz``;
  paper 6.7e-4, target <= 1e-3.
* ``configs/pinn_burgers_inverse.yaml`` / ``..._noisy.yaml`` -- nu learned from 2,000
  observations, noise-free and with 1% noise; targets 1% and 5%.

Each config runs through ``scidl.experiments.run`` into ``--runs-dir/<config name>`` (a finished
run there is not retrained: ``resume``), and the metrics are collected into
``benchmarks/results/pinn_burgers.json``.

    python benchmarks/pinn_burgers.py [--runs-dir runs] [--configs pinn_burgers ...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from _results import machine_info, utc_now, write_result

from scidl.experiments import run
from scidl.experiments.config import load_config

ROOT = Path(__file__).parent.parent
RESULTS = Path(__file__).parent / "results" / "pinn_burgers.json"
CONFIGS = ["pinn_burgers", "pinn_burgers_inverse", "pinn_burgers_inverse_noisy"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-dir", type=Path, default=ROOT / "runs")
    parser.add_argument("--configs", nargs="+", default=CONFIGS)
    args = parser.parse_args()
    results = json.loads(RESULTS.read_text())["runs"] if RESULTS.exists() else {}
    for name in args.configs:
        out = args.runs_dir / name
        run(load_config(ROOT / "configs" / f"{name}.yaml"), out, resume=out.exists(),
            quiet=True)
        metrics = json.loads((out / "metrics.json").read_text())["pinn"]
        timings = json.loads((out / "timings.json").read_text())
        results[name] = {**metrics, "wall_seconds": timings.get("total")}
        line = f"{name}: rel. L2 {metrics.get('rel_l2', float('nan')):.3e}"
        for unknown, entry in metrics.get("unknowns", {}).items():
            line += (f", {unknown} = {entry['estimate']:.6g} (error "
                     f"{100 * entry.get('rel_error', float('nan')):.3f}%)")
        print(line + f", {metrics['train_seconds']:.0f} s of training", flush=True)
        write_result(RESULTS, {"benchmark": "pinn_burgers", "date": utc_now(),
                               "machine": machine_info(), "runs": results})


if __name__ == "__main__":
    main()
