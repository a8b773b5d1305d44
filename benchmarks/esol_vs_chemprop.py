"""ESOL side by side: scidl's D-MPNN (+ RDKit descriptors, small ensemble) against chemprop 2.

The same 10 random 80/10/10 splits and 10 scaffold-balanced splits (seeds 0-9, the index lists of
:func:`scidl.geometric.molecules.random_split` / :func:`scaffold_split`) go to both:

* chemprop -- ``chemprop train`` (the CLI, pip package, the ``benchmark`` extra) with ALL of its
  defaults (50 epochs, batch 64, hidden 300, depth 3, norm aggregation, 1-layer FFN, Noam
  schedule 1e-4 -> 1e-3 -> 1e-4, checkpoint of the lowest validation loss, no extra features),
  fed the exact indices through ``--splits-file``, ``--pytorch-seed`` = the split seed,
  ``OMP_NUM_THREADS=1``, one process per run. Its test RMSE is computed here from its
  ``test_predictions.csv`` (its log prints test MSE). Time per run = the whole process (CPU
  seconds of the child, user + system, and wall seconds), which includes chemprop's import
  and featurisation; the bare import cost is measured once and reported as
  ``chemprop_import_seconds``.
* scidl -- :func:`esol.run_scidl` with the settings of ``esol.DESCRIPTOR_CONFIG`` (see the
  docstring of benchmarks/esol.py for every lever). Time per run = training and prediction of
  all ensemble members + the featurisation of the whole data set (graphs and descriptors,
  measured once and ADDED to every run, as chemprop featurises in every run), CPU seconds of
  this process and wall seconds, one thread.

Usage: python benchmarks/esol_vs_chemprop.py [--seeds 10] [--splits random,scaffold]
       [--parts scidl,chemprop] [--quick] [--data PATH] [--out FILE]
``--quick``: 2 seeds, 3 epochs for both, writes esol_vs_chemprop_quick.json. ``--parts`` (and
``--splits``) run a subset; the (part, split) entries not run are copied from ``--merge-from``
files (default: the existing output file), recorded under ``"merged_from_previous"``, so the
halves can run as separate processes on the same splits, e.g.
``--parts chemprop`` and ``--parts scidl --splits random --out a.json`` then
``--parts "" --merge-from a.json ... ``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from _results import machine_info, utc_now, write_result
from esol import DESCRIPTOR_CONFIG, default_data, featurise, run_scidl

from scidl.geometric.molecules import load_esol, random_split, scaffold_split

HERE = Path(__file__).resolve().parent
TARGET = "measured log solubility in mols per litre"
CHEMPROP_EXPECTED = {"random": "0.653 +- 0.076", "scaffold": "0.832 +- 0.054",
                     "seconds_per_run": 40}


def _child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _chemprop_bin() -> str:
    exe = Path(sys.executable).with_name("chemprop")
    return str(exe) if exe.exists() else "chemprop"


def chemprop_import_seconds() -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    cpu0, wall0 = _child_cpu(), time.perf_counter()
    subprocess.run([sys.executable, "-c", "import chemprop.cli.main"], env=env, check=True)
    return {"cpu_seconds": _child_cpu() - cpu0, "wall_seconds": time.perf_counter() - wall0}


def run_chemprop(data: Path, smiles, y, split, seed: int, workdir: Path,
                 epochs: int | None) -> dict:
    """One ``chemprop train`` process on the given index split; returns its test RMSE."""
    train, val, test = split
    splits = workdir / f"splits_{seed}.json"
    splits.write_text(json.dumps([{"train": train, "val": val, "test": test}]))
    out = workdir / f"run_{seed}"
    cmd = [_chemprop_bin(), "train", "--data-path", str(data), "--smiles-columns", "smiles",
           "--target-columns", TARGET, "--splits-file", str(splits),
           "--pytorch-seed", str(seed), "--data-seed", str(seed), "--num-workers", "0",
           "--accelerator", "cpu", "--devices", "1", "--output-dir", str(out)]
    if epochs is not None:
        cmd += ["--epochs", str(epochs)]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    cpu0, wall0 = _child_cpu(), time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - wall0, _child_cpu() - cpu0
    if proc.returncode != 0:
        raise RuntimeError(f"chemprop failed (rc {proc.returncode}):\n{proc.stderr[-3000:]}")
    with open(out / "model_0" / "test_predictions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    if len(rows) != len(test) or any(r["smiles"].strip() != smiles[i]
                                      for r, i in zip(rows, test)):
        raise RuntimeError("chemprop's test predictions do not line up with the test indices")
    pred = torch.tensor([float(r[TARGET]) for r in rows])
    rmse = float(((pred - y[test]) ** 2).mean().sqrt())
    best = sorted((out / "model_0" / "checkpoints").glob("best-epoch=*"))
    return {"seed": seed, "test_rmse": rmse, "cpu_seconds": cpu, "wall_seconds": wall,
            "checkpoint": best[0].name if best else None,
            "sizes": [len(train), len(val), len(test)]}


def _cache_file(cache: str | None, part: str, split: str, seed: int) -> Path | None:
    if not cache:
        return None
    Path(cache).mkdir(parents=True, exist_ok=True)
    return Path(cache) / f"{part}_{split}_{seed}.json"


def summarise(runs: list[dict]) -> dict:
    rmse = [r["test_rmse"] for r in runs]
    return {
        "test_rmse_mean": statistics.fmean(rmse),
        "test_rmse_std": statistics.stdev(rmse) if len(rmse) > 1 else 0.0,
        "cpu_seconds_per_run": statistics.fmean(r["cpu_seconds"] for r in runs),
        "wall_seconds_per_run": statistics.fmean(r["wall_seconds"] for r in runs),
        "n_seeds": len(runs),
        "per_seed_test_rmse": rmse,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--splits", default="random,scaffold")
    parser.add_argument("--parts", default="scidl,chemprop")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--data", default=None)
    parser.add_argument("--out", default=None)
    parser.add_argument("--cache", default=None,
                        help="folder of finished chemprop runs (one json each): reused, not rerun")
    parser.add_argument("--merge-from", nargs="*", default=None,
                        help="result files whose (part, split) entries fill those not run now")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    epochs = None
    config = dict(DESCRIPTOR_CONFIG)
    if args.quick:
        args.seeds, epochs = 2, 3
        config["epochs"] = 3
    data = Path(args.data) if args.data else default_data()
    out_path = Path(args.out) if args.out else HERE / "results" / (
        "esol_vs_chemprop_quick.json" if args.quick else "esol_vs_chemprop.json")
    smiles, y = load_esol(data)
    splitters = {"random": lambda s: random_split(len(smiles), s),
                 "scaffold": lambda s: scaffold_split(smiles, s)}
    parts = [p for p in args.parts.split(",") if p]
    results: dict = {"scidl": {}, "chemprop": {}}
    extra: dict = {}
    if "scidl" in parts:
        feats = featurise(smiles, config)
        extra["scidl_featurisation"] = feats["timing"]
        for split in args.splits.split(","):
            runs = []
            for seed in range(args.seeds):
                run = run_scidl(feats, y, splitters[split](seed), seed, config)
                run["cpu_seconds"] += feats["timing"]["cpu_seconds"]
                run["wall_seconds"] += feats["timing"]["wall_seconds"]
                runs.append(run)
                print(f"scidl {split} seed {seed}: test RMSE {run['test_rmse']:.3f} "
                      f"({run['cpu_seconds']:.1f} cpu s, {run['wall_seconds']:.1f} s)", flush=True)
            results["scidl"][split] = {"summary": summarise(runs), "runs": runs}
    if "chemprop" in parts:
        extra["chemprop_import_seconds"] = chemprop_import_seconds()
        with tempfile.TemporaryDirectory(prefix="esol_chemprop_") as tmp:
            for split in args.splits.split(","):
                runs = []
                for seed in range(args.seeds):
                    work = Path(tmp) / split
                    work.mkdir(exist_ok=True)
                    cached = _cache_file(args.cache, "chemprop", split, seed)
                    if cached and cached.exists():
                        run = json.loads(cached.read_text())
                    else:
                        run = run_chemprop(data, smiles, y, splitters[split](seed), seed, work,
                                           epochs)
                        if cached:
                            cached.write_text(json.dumps(run, indent=1))
                    runs.append(run)
                    print(f"chemprop {split} seed {seed}: test RMSE {run['test_rmse']:.3f} "
                          f"({run['cpu_seconds']:.1f} cpu s, {run['wall_seconds']:.1f} s)",
                          flush=True)
                results["chemprop"][split] = {"summary": summarise(runs), "runs": runs}
    merged = []
    sources = [Path(f) for f in args.merge_from] if args.merge_from else (
        [out_path] if out_path.exists() else [])
    for source in sources:
        old = json.loads(source.read_text())
        for part, by_split in old.get("results", {}).items():
            for split, res in by_split.items():
                if split in args.splits.split(",") and split not in results[part]:
                    results[part][split] = res
                    merged.append({"part": part, "split": split, "file": source.name,
                                   "date": old.get("date")})
        for key in ("scidl_featurisation", "chemprop_import_seconds", "scidl_config"):
            if key in old and key not in extra:
                extra[key] = old[key]
    ratio = {}
    for split in args.splits.split(","):
        s, c = results["scidl"].get(split), results["chemprop"].get(split)
        if s and c:
            ratio[split] = {k: s["summary"][f"{k}_per_run"] / c["summary"][f"{k}_per_run"]
                            for k in ("cpu_seconds", "wall_seconds")}
    print("\n| model | split | test RMSE (mean ± std) | seeds | CPU s / run | wall s / run |")
    print("|---|---|---|---|---|---|")
    for part in ("scidl", "chemprop"):
        for split, res in results[part].items():
            s = res["summary"]
            print(f"| {part} | {split} | {s['test_rmse_mean']:.3f} ± {s['test_rmse_std']:.3f} | "
                  f"{s['n_seeds']} | {s['cpu_seconds_per_run']:.1f} | "
                  f"{s['wall_seconds_per_run']:.1f} |")
    print("time ratio scidl / chemprop:", json.dumps(ratio))
    write_result(out_path, {
        "benchmark": "MoleculeNet ESOL: scidl vs chemprop (same splits)",
        "date": utc_now(),
        "machine": machine_info(),
        "quick": args.quick,
        "scidl_config": config if "scidl" in parts or "scidl_config" not in extra
        else extra["scidl_config"],
        "chemprop": {"version": _chemprop_version(), "settings": "CLI defaults" if epochs is None
                     else f"CLI defaults but --epochs {epochs}",
                     "expected_on_these_machines": CHEMPROP_EXPECTED},
        **{k: v for k, v in extra.items() if k != "scidl_config"},
        "time_ratio_scidl_over_chemprop": ratio,
        "merged_from_previous": merged,
        "results": results,
    })
    return 0 if all(math.isfinite(r["summary"]["test_rmse_mean"])
                    for p in results.values() for r in p.values()) else 1


def _chemprop_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("chemprop")
    except Exception:  # noqa: BLE001
        return None


if __name__ == "__main__":
    sys.exit(main())
