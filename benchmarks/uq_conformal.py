"""Empirical coverage of 90 % split-conformal intervals: UCI regression and FNO field predictions.

Split conformal prediction promises coverage >= 1 - alpha on average over the calibration draw
(Lei et al. 2018, thm. 2.2; for n calibration items exactly ceil((n + 1) 0.9) / (n + 1) with
continuous scores). This benchmark measures it over many random splits.

UCI (concrete, power; Hernandez-Lobato & Adams' files, all rows): each split is a fresh random
50 / 25 / 25 % train / calibration / test partition, standardised by the training part. Models,
retrained on every split (full-batch Adam, float32): a 2 x 50 ReLU MLP (point model) for
absolute-residual split conformal; its last-layer Laplace posterior (scidl.uq.LastLayerLaplace,
marginal-likelihood prior) whose Gaussian 90 % interval is reported raw and as the scale of
normalised-score conformal; and a 2 x 50 quantile MLP at levels 0.05 / 0.5 / 0.95 (pinball
loss), reported raw and after CQR (Romano et al. 2019).

FNO: Burgers trajectories from scidl's generator (nu = 0.01, the GRF initial states of the FNO
paper, 128 points, t = 0 -> 1), an FNO-1d trained on the first part; the held-out fields are
re-split at random into calibration and test halves, and the pointwise (per pixel) conformal
intervals' coverage is averaged over pixels (min / max over pixels of the split-averaged coverage
also reported). Pooled (one quantile for all pixels) and Laplace-normalised variants alongside.

Target: mean coverage within 2 % of 90 % for every conformal method.

Usage: python benchmarks/uq_conformal.py [--quick] [--splits N] [--threads T] [--seed S]
Writes benchmarks/results/uq_conformal.json (--quick: uq_conformal_quick.json).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import torch
from _results import machine_info, utc_now, write_result

from scidl.data import TrajectoryRecipe, generate_trajectories
from scidl.data.uci import load_uci
from scidl.models.fno_nd import FNO
from scidl.models.mlp import MLP
from scidl.uq.conformal import ConformalizedQuantileRegression, SplitConformal
from scidl.uq.laplace import LastLayerLaplace
from scidl.uq.prediction import Prediction
from scidl.uq.quantile import QuantileRegressor, fit_quantile_regressor

HERE = Path(__file__).resolve().parent
COVERAGE = 0.9
LEVELS = (0.05, 0.5, 0.95)


def coverage_and_width(lower, upper, y) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-element 0/1 coverage and width, ``[N, *shape]`` each (float64)."""
    inside = ((y >= lower) & (y <= upper)).double()
    return inside, (upper - lower).double()


def summary(coverages: list[float], widths: list[float]) -> dict:
    c, w = torch.tensor(coverages, dtype=torch.float64), torch.tensor(widths)
    return {"coverage_mean": float(c.mean()), "coverage_std": float(c.std()),
            "coverage_standard_error": float(c.std()) / math.sqrt(len(c)),
            "width_mean": float(w.mean()), "within_2pct": abs(float(c.mean()) - COVERAGE) <= 0.02}


# ---- UCI ---------------------------------------------------------------------------------------

def fit_point_mlp(x: torch.Tensor, y: torch.Tensor, steps: int, seed: int) -> MLP:
    """2 x 50 ReLU MLP, full-batch Adam on the MSE (standardised data)."""
    torch.manual_seed(seed)
    model = MLP(x.shape[1], 1, width=50, hidden_layers=2, activation="relu")
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    for _ in range(steps):
        loss = (model(x)[:, 0] - y).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    return model.eval()


def uci_split(x, y, split: int, args) -> dict[str, tuple[float, float]]:
    """One random partition: (coverage, mean width in standardised units) per method."""
    generator = torch.Generator().manual_seed(args.seed * 100_003 + split)
    order = torch.randperm(len(y), generator=generator)
    n_train, n_cal = len(y) // 2, len(y) // 4
    train, cal, test = order[:n_train], order[n_train:n_train + n_cal], order[n_train + n_cal:]
    x_shift, x_scale = x[train].mean(0), x[train].std(0)
    y_shift, y_scale = y[train].mean(), y[train].std()
    x, y = (x - x_shift) / x_scale, (y - y_shift) / y_scale
    model = fit_point_mlp(x[train], y[train], args.steps, seed=split)
    with torch.no_grad():
        point = {part: Prediction(mean=model(x[part])[:, 0]) for part in (cal, test)}
    laplace = LastLayerLaplace(model).fit(x[train], y[train][:, None])

    def gaussian(part):
        p = laplace.predict(x[part])
        return Prediction(mean=p.mean[:, 0], std=p.std[:, 0])

    torch.manual_seed(split)
    quantile_model = fit_quantile_regressor(
        x[train], y[train], LEVELS, QuantileRegressor(x.shape[1], LEVELS, width=50),
        epochs=args.steps, batch_size=n_train, lr=3e-3)
    quantiles = {part: quantile_model.predict(x[part]) for part in (cal, test)}
    lap_cal, lap_test = gaussian(cal), gaussian(test)
    intervals = {
        "split_conformal_absolute": SplitConformal(COVERAGE).calibrate(
            point[cal], y[cal]).predict(point[test]).interval(COVERAGE),
        "laplace_gaussian_raw": lap_test.interval(COVERAGE),
        "split_conformal_laplace_normalized": SplitConformal(COVERAGE, "normalized").calibrate(
            lap_cal, y[cal]).predict(lap_test).interval(COVERAGE),
        "quantile_regression_raw": quantiles[test].interval(COVERAGE),
        "cqr": ConformalizedQuantileRegression(COVERAGE).calibrate(
            quantiles[cal], y[cal]).predict(quantiles[test]).interval(COVERAGE),
    }
    out = {}
    for method, (lower, upper) in intervals.items():
        inside, width = coverage_and_width(lower, upper, y[test])
        out[method] = (float(inside.mean()), float(width.mean() * y_scale))
    out["_rmse"] = (float((point[test].mean - y[test]).square().mean().sqrt() * y_scale), 0.0)
    return out


def task_uci(name: str, args) -> dict:
    data = load_uci(name, 0, args.uci_root)
    x = torch.cat([data.x_train, data.x_test]).float()
    y = torch.cat([data.y_train, data.y_test]).float()
    started = time.perf_counter()
    per_method: dict[str, tuple[list, list]] = {}
    for split in range(args.splits):
        for method, (c, w) in uci_split(x, y, split, args).items():
            per_method.setdefault(method, ([], []))
            per_method[method][0].append(c)
            per_method[method][1].append(w)
    n = len(y)
    n_cal = n // 4
    rmse = per_method.pop("_rmse")[0]
    return {"dataset": name, "n": n, "n_train": n // 2, "n_calibration": n_cal,
            "n_test": n - n // 2 - n_cal, "splits": args.splits, "train_steps": args.steps,
            "expected_coverage": math.ceil((n_cal + 1) * COVERAGE) / (n_cal + 1),
            "point_model_test_rmse_mean": sum(rmse) / len(rmse),
            "methods": {m: summary(c, w) for m, (c, w) in per_method.items()},
            "seconds": time.perf_counter() - started}


# ---- FNO fields --------------------------------------------------------------------------------

def train_fno(x: torch.Tensor, y: torch.Tensor, epochs: int, seed: int) -> FNO:
    torch.manual_seed(seed)
    model = FNO(ndim=1, in_channels=1, out_channels=1, modes=16, width=32, layers=4)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    steps = epochs * math.ceil(len(x) / 20)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, 1e-3, total_steps=steps)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for batch in torch.randperm(len(x), generator=generator).split(20):
            error = (model(x[batch]) - y[batch]).flatten(1).norm(dim=1)
            loss = (error / y[batch].flatten(1).norm(dim=1)).mean()  # relative L2
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    return model.eval()


def task_fno(args) -> dict:
    started = time.perf_counter()
    recipe = TrajectoryRecipe.build("burgers", {"nu": args.nu}, resolution=128, n_times=2)
    u = generate_trajectories(recipe, args.n_fields).u  # [n, 2, 128]
    data_seconds = time.perf_counter() - started
    x, y = u[:, :1], u[:, 1:]
    n_train = args.n_fields * 2 // 3
    model = train_fno(x[:n_train], y[:n_train], args.epochs, args.seed)
    train_seconds = time.perf_counter() - started - data_seconds
    laplace = LastLayerLaplace(model).fit(x[:n_train], y[:n_train], batch_size=100)
    held_x, held_y = x[n_train:], y[n_train:]
    gaussian = laplace.predict(held_x, batch_size=100)
    point = Prediction(mean=gaussian.mean)
    relative_l2 = (gaussian.mean - held_y).flatten(1).norm(dim=1) / held_y.flatten(1).norm(dim=1)
    n_cal = len(held_y) // 2
    methods = {"pointwise_absolute": lambda: SplitConformal(COVERAGE),
               "pooled_absolute": lambda: SplitConformal(COVERAGE, pointwise=False),
               "pointwise_laplace_normalized": lambda: SplitConformal(COVERAGE, "normalized")}
    per_pixel = {m: torch.zeros(held_y.shape[1:], dtype=torch.float64) for m in methods}
    results = {m: ([], []) for m in [*methods, "laplace_gaussian_raw"]}
    for split in range(args.splits):
        order = torch.randperm(len(held_y),
                               generator=torch.Generator().manual_seed(args.seed + split))
        cal, test = order[:n_cal], order[n_cal:]
        for method, make in methods.items():
            base = gaussian if "normalized" in method else point
            lower, upper = make().calibrate(base[cal], held_y[cal]).predict(
                base[test]).interval(COVERAGE)
            inside, width = coverage_and_width(lower, upper, held_y[test])
            per_pixel[method] += inside.mean(0) / args.splits
            results[method][0].append(float(inside.mean()))
            results[method][1].append(float(width.mean()))
        inside, width = coverage_and_width(*gaussian[test].interval(COVERAGE), held_y[test])
        results["laplace_gaussian_raw"][0].append(float(inside.mean()))
        results["laplace_gaussian_raw"][1].append(float(width.mean()))
    summaries = {m: summary(*results[m]) for m in results}
    for method, pixels in per_pixel.items():
        summaries[method]["pixel_coverage_min"] = float(pixels.min())
        summaries[method]["pixel_coverage_max"] = float(pixels.max())
    return {"equation": "burgers", "nu": args.nu, "resolution": 128, "n_fields": args.n_fields,
            "n_train": n_train, "n_calibration": n_cal, "n_test": len(held_y) - n_cal,
            "splits": args.splits, "epochs": args.epochs,
            "expected_coverage": math.ceil((n_cal + 1) * COVERAGE) / (n_cal + 1),
            "fno_test_relative_l2": float(relative_l2.mean()),
            "laplace_prior_precision": laplace.prior_precision,
            "laplace_noise_std": float(laplace.noise_std[0]),
            # share of the predictive variance that is epistemic (small: sigma dominates, so
            # the normalised scores are nearly the absolute ones scaled per pixel)
            "laplace_epistemic_variance_fraction": float(
                gaussian.epistemic_std.square().mean() / gaussian.std.square().mean()),
            "methods": summaries,
            "data_seconds": data_seconds, "train_seconds": train_seconds,
            "seconds": time.perf_counter() - started}


# ---- report -----------------------------------------------------------------------------------

def print_table(title: str, task: dict) -> None:
    print(f"\n{title}: {task['splits']} splits, calibration n = {task['n_calibration']}, "
          f"expected coverage {task['expected_coverage']:.4f}")
    print(f"  {'method':38s} {'coverage':>9s} {'std':>7s} {'width':>9s}  within 2 %")
    for method, s in task["methods"].items():
        verdict = "-" if "raw" in method else ("yes" if s["within_2pct"] else "NO")
        print(f"  {method:38s} {s['coverage_mean']:9.4f} {s['coverage_std']:7.4f} "
              f"{s['width_mean']:9.4f}  {verdict}"
              + (f"  pixels [{s['pixel_coverage_min']:.3f}, {s['pixel_coverage_max']:.3f}]"
                 if "pixel_coverage_min" in s else ""))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="10 splits, 300 steps, 300 fields, 10 epochs")
    parser.add_argument("--splits", type=int, default=None, help="random splits (default 100)")
    parser.add_argument("--steps", type=int, default=None, help="UCI training steps (1000)")
    parser.add_argument("--epochs", type=int, default=None, help="FNO epochs (100)")
    parser.add_argument("--n-fields", type=int, default=None, help="Burgers fields (900)")
    parser.add_argument("--nu", type=float, default=0.01)
    parser.add_argument("--datasets", nargs="*", default=["concrete", "power"])
    parser.add_argument("--uci-root", default=None, help="default $SCIDL_DATA/uci")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    quick = args.quick
    args.splits = args.splits or (10 if quick else 100)
    args.steps = args.steps or (300 if quick else 1000)
    args.epochs = args.epochs or (10 if quick else 100)
    args.n_fields = args.n_fields or (300 if quick else 900)
    if args.uci_root is None and not os.environ.get("SCIDL_DATA"):
        args.uci_root = HERE.parents[1] / "shared" / "data" / "uci"
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    uci = []
    for name in args.datasets:
        uci.append(task_uci(name, args))
        print_table(f"UCI {name}", uci[-1])
    fno = task_fno(args)
    print_table(f"FNO Burgers nu = {args.nu} (test rel. L2 {fno['fno_test_relative_l2']:.4f})",
                fno)
    result = {"benchmark": "uq_conformal", "date": utc_now(),
              "machine": machine_info(), "mode": "quick" if quick else "default",
              "coverage_target": COVERAGE, "tolerance": 0.02, "uci": uci, "fno": fno,
              "seconds": time.perf_counter() - started}
    out = args.out or HERE / "results" / f"uq_conformal{'_quick' if quick else ''}.json"
    print(f"\nwrote {write_result(out, result)} ({result['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
