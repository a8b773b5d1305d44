"""Deep ensembles and MC dropout on the UCI regression benchmarks, next to the published tables.

Protocol (../shared/PROTOCOLS.md, "Deep Ensembles on UCI"): the 20 train/test splits of
Hernandez-Lobato & Adams (2015) (5 for protein) from ``$SCIDL_DATA/uci`` (default
``../shared/data/uci``); inputs and targets standardised on the training data; NLL and RMSE in
the original target units, mean +- standard error over splits (the std over splits is stored
too). Float32, one CPU thread.

* ``ensemble`` / ``ensemble_at`` -- deep ensembles (Lakshminarayanan, Pritzel & Blundell,
  NeurIPS 2017): 5 networks, one hidden layer of 50 ReLU units (100 for protein), Gaussian head
  (variance ``softplus + 1e-6``), Gaussian NLL, 40 epochs, batch size 100, Adam; ``_at`` adds
  adversarial training (fast gradient sign, ``eps = 0.01`` of each input's training range).
  Prediction: the Gaussian with the mixture's mean and variance (as the paper). The paper's
  Adam learning rate 0.1 diverges here (NLL 0.7 to 3.4 on naval/yacht); a constant rate cannot
  serve both yacht (120 steps in 40 epochs) and naval (4,300 steps): 1e-2 underfits naval's NLL
  (-3.3), 3e-3 underfits yacht (RMSE 4.6). The default is Adam 2e-2 cosine-annealed to 0 over
  the 40 epochs, the same for every dataset (``--lr``, ``--lr-schedule``).
* ``dropout`` -- MC dropout (Gal & Ghahramani, ICML 2016) as the paper's code did it
  (DropoutUncertaintyExps at commit 0eeeb7f, 2016): per-dataset dropout rate, prior lengthscale
  and model precision tau (found there by Bayesian optimisation; table ``PAPER_DROPOUT``),
  batch 32, Adam 1e-3, MSE + ``l^2 (1 - p) / (2 N tau) ||W||^2``, ``n_epochs.txt x 10`` = 400
  epochs (``--dropout-epochs``; at 40 the small sets are far from converged), fitted on the
  whole training split, test log-likelihood from T = 10,000 passes (``--mc-samples-test``).
  ``--dropout-protocol grid`` runs the repository's later grid search instead (every ``(p,
  tau)`` of ``dropout_rates.txt x tau_values.txt``, lengthscale 1e-2, fitted on the first 80 %
  of the training split, chosen on the MC log-likelihood of the last 20 % with
  ``--mc-samples-val`` passes, batch 128 as there).

All members of all splits of a dataset train in one vectorised loop
(``VectorizedEnsemble.concat``; each member keeps its own seed, data and batches, so this is
``fit_ensemble(..., seed=split)`` per split -- ``--check-equivalence`` checks split 0; it is on
in ``--quick``), and likewise all dropout networks.

Published numbers: Lakshminarayanan et al. 2017, Table 1 ("Deep Ensembles" columns); Gal &
Ghahramani 2016, Table 1 ("Dropout" columns, test log-likelihood negated to an NLL) = the
"original" column of the DropoutUncertaintyExps README (whose "10x epochs" column is stored
for reference). Their +- are standard deviations over splits: the README first printed them
so and later divided them by sqrt(20) "to conform with PBP" (commit a6259f1), and
Lakshminarayanan's Boston RMSE 3.28 +- 1.00 cannot be a standard error of 20 splits.
"within" means ``|ours - published| <= published +- (+ half a unit of the printed digit)``;
"not worse" means ``ours <= published + +-`` (lower is better for both metrics).

Usage: python benchmarks/uq_uci.py [--datasets boston,yacht] [--splits N] [--methods
ensemble,ensemble_at,dropout] [--threads T] [--quick] [--protein]
Writes benchmarks/results/uq_uci.json and uq_uci.md (--quick: uq_uci_quick.*).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from _results import machine_info, utc_now, write_result

from scidl.data.uci import UCI_DATASETS, load_uci, uci_n_splits
from scidl.models.mlp import MLP
from scidl.uq.dropout import (
    MCDropout,
    Standardized,
    dropout_ensemble,
    gal_weight_decay,
    mc_log_likelihood,
)
from scidl.uq.ensemble import (
    DeepEnsemble,
    VectorizedEnsemble,
    fit_ensemble,
    standardization,
    train_members,
)
from scidl.uq.heads import GaussianHead

HERE = Path(__file__).resolve().parent
DEFAULT_ROOT = HERE.parent.parent / "shared" / "data" / "uci"
DATASETS = ["boston", "concrete", "energy", "kin8nm", "naval", "power", "wine", "yacht"]

# (mean, +-) as printed; NLL = -test log-likelihood
PUBLISHED = {
    "ensemble": {
        "source": "Lakshminarayanan, Pritzel & Blundell, NeurIPS 2017, Table 1, Deep Ensembles",
        "nll": {"boston": (2.41, 0.25), "concrete": (3.06, 0.18), "energy": (1.38, 0.22),
                "kin8nm": (-1.20, 0.02), "naval": (-5.63, 0.05), "power": (2.79, 0.04),
                "protein": (2.83, 0.02), "wine": (0.94, 0.12), "yacht": (1.18, 0.21)},
        "rmse": {"boston": (3.28, 1.00), "concrete": (6.03, 0.58), "energy": (2.09, 0.29),
                 "kin8nm": (0.09, 0.00), "naval": (0.00, 0.00), "power": (4.11, 0.17),
                 "protein": (4.71, 0.06), "wine": (0.64, 0.04), "yacht": (1.58, 0.48)},
    },
    "dropout": {
        "source": "Gal & Ghahramani, ICML 2016, Table 1, Dropout (= 'original' column of the "
                  "DropoutUncertaintyExps README); NLL = -test LL",
        "nll": {"boston": (2.46, 0.25), "concrete": (3.04, 0.09), "energy": (1.99, 0.09),
                "kin8nm": (-0.95, 0.03), "naval": (-3.80, 0.05), "power": (2.80, 0.05),
                "protein": (2.89, 0.01), "wine": (0.93, 0.06), "yacht": (1.55, 0.12)},
        "rmse": {"boston": (2.97, 0.85), "concrete": (5.23, 0.53), "energy": (1.66, 0.19),
                 "kin8nm": (0.10, 0.00), "naval": (0.01, 0.00), "power": (4.02, 0.18),
                 "protein": (4.36, 0.04), "wine": (0.62, 0.04), "yacht": (1.11, 0.38)},
    },
    "dropout_10x_epochs": {
        "source": "DropoutUncertaintyExps README, 'updated' column (10x epochs)",
        "nll": {"boston": (2.39, 0.20), "concrete": (2.94, 0.10), "energy": (1.72, 0.07),
                "kin8nm": (-0.97, 0.02), "naval": (-3.92, 0.03), "power": (2.79, 0.04),
                "protein": (2.87, 0.01), "wine": (0.92, 0.06), "yacht": (1.38, 0.06)},
        "rmse": {"boston": (2.80, 0.84), "concrete": (4.81, 0.64), "energy": (1.09, 0.21),
                 "kin8nm": (0.09, 0.00), "naval": (0.00, 0.00), "power": (4.00, 0.17),
                 "protein": (4.27, 0.05), "wine": (0.61, 0.04), "yacht": (0.72, 0.25)},
    },
}
PUBLISHED_FOR = {"ensemble": "ensemble", "ensemble_at": "ensemble", "dropout": "dropout"}

#: what was tried on the way to these settings (development runs, float32, same splits)
NOTES: list[str] = [
    "Deep ensembles, learning rate: the paper's Adam 0.1 diverges here (3 splits: naval NLL "
    "0.70 +- 0.93, yacht 3.12); constant 1e-2 with adversarial training (20 splits) misses "
    "naval (-3.37), yacht (1.48) and kin8nm (-1.17); constant 3e-3 underfits yacht (RMSE 4.6, "
    "120 steps in 40 epochs) while naval needs the small steps; constant 1e-3 underfits yacht "
    "(RMSE 8.4). Adam 2e-2 cosine-annealed to 0 over the 40 epochs works for every dataset and "
    "is used for all of them.",
    "Adversarial training (fast gradient sign, eps = 0.01 of each input's range) caps naval at "
    "RMSE 0.008, NLL -3.40 (without: 0.001, -5.87): naval's target lives in deviations of the "
    "sensor readings from the operating line far smaller than 1 % of their ranges, so the "
    "perturbed inputs no longer determine it. On the other datasets it changes NLL by <= 0.08.",
    "Where a deep-ensemble number lies outside the published band it is better than published "
    "(kin8nm RMSE 0.076 vs 0.09, NLL -1.25/-1.29 vs -1.20; naval NLL -5.87 vs -5.63), not "
    "worse: the 'not worse' column.",
    "MC dropout, epochs: with 40 epochs (batch 32, or the later grid search's batch 128) the "
    "networks are far from converged on the small sets (2 splits: yacht RMSE 6.5 / 8.6, energy "
    "2.7 / 3.0 vs 1.11 and 1.66 published; a plain single torch network gives yacht 6.7 at 40 "
    "and 0.78 at 400 epochs). With n_epochs x 10 = 400 epochs at batch 32, as the 2016 "
    "experiment.py runs, every dataset lands on the paper's numbers. The README calls its "
    "400-epoch run '10x epochs' and reports better numbers for it (e.g. yacht 0.72); that "
    "factor of ten between the Keras-0.x training of 2015/16 and ours is not explained here.",
    "Uncertainties: published +- are standard deviations over splits; ours are printed as "
    "standard errors (standard deviations are in the JSON).",
]


def gaussian_nll(mean: torch.Tensor, std: torch.Tensor, y: torch.Tensor) -> float:
    """Mean ``-log N(y; mean, std^2)``."""
    return float((0.5 * torch.log(2 * math.pi * std**2) + (y - mean) ** 2 / (2 * std**2))
                 .mean())


def rmse(mean: torch.Tensor, y: torch.Tensor) -> float:
    return float((mean - y).pow(2).mean().sqrt())


def summary(values: list[float]) -> dict:
    a = np.asarray(values, dtype=np.float64)
    std = float(a.std(ddof=1)) if len(a) > 1 else 0.0
    return {"mean": float(a.mean()), "stderr": std / math.sqrt(len(a)), "std": std,
            "n": len(a)}


def within(ours: float, published: tuple[float, float]) -> bool:
    return abs(ours - published[0]) <= published[1] + 0.005 + 1e-12


def load_splits(name: str, splits: list[int], root: Path, dtype: torch.dtype):
    data = [load_uci(name, s, root) for s in splits]
    return [(d.x_train.to(dtype), d.y_train.to(dtype)[:, None], d.x_test.to(dtype),
             d.y_test.to(dtype)[:, None]) for d in data]


# ---- deep ensembles -------------------------------------------------------------------------

def run_ensembles(name: str, splits: list[int], args, root: Path,
                  adversarial_eps: float | None) -> dict:
    data = load_splits(name, splits, root, torch.float32)
    d = data[0][0].shape[1]
    width = 100 if name == "protein" else 50

    def factory():
        return GaussianHead(MLP(d, 2, width, 1, "relu"), min_std=1e-3)
    stats = [(standardization(x), standardization(y)) for x, y, _, _ in data]
    m = args.members
    xs = torch.stack([(x - xm) / xsd for (x, *_), ((xm, xsd), _) in zip(data, stats)])
    ys = torch.stack([(y - ym) / ysd for (_, y, *_), (_, (ym, ysd)) in zip(data, stats)])
    ensemble = VectorizedEnsemble.concat(
        [VectorizedEnsemble(factory, m, seed=s) for s in splits])
    start = time.perf_counter()
    train_members(ensemble, xs.repeat_interleave(m, 0), ys.repeat_interleave(m, 0),
                  epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                  loss="gaussian_nll", adversarial_eps=adversarial_eps,
                  lr_schedule=args.lr_schedule)
    train_seconds = time.perf_counter() - start
    nlls, rmses, per_split = [], [], []
    for k, (split, (_, _, x_test, y_test), ((xm, xsd), (ym, ysd))) in enumerate(
            zip(splits, data, stats)):
        model = DeepEnsemble(ensemble.select(range(k * m, (k + 1) * m)).eval(), xm, xsd, ym,
                             ysd)
        pred = model.predict(x_test)
        nlls.append(gaussian_nll(pred.mean, pred.std, y_test))
        rmses.append(rmse(pred.mean, y_test))
        per_split.append({"split": split, "nll": nlls[-1], "rmse": rmses[-1]})
    result = {"nll": summary(nlls), "rmse": summary(rmses), "train_seconds": train_seconds,
              "per_split": per_split}
    if args.check_equivalence:
        x, y, x_test, _ = data[0]
        alone = fit_ensemble(factory, x, y, members=m, epochs=args.epochs,
                             batch_size=args.batch_size, lr=args.lr,
                             adversarial_eps=adversarial_eps, lr_schedule=args.lr_schedule,
                             seed=splits[0])
        together = DeepEnsemble(ensemble.select(range(m)).eval(), *stats[0][0], *stats[0][1])
        diff = (alone.predict(x_test).mean - together.predict(x_test).mean).abs().max()
        result["check_fit_ensemble_max_abs_diff"] = float(diff)
    return result


# ---- MC dropout ---------------------------------------------------------------------------

def _grid(name: str, root: Path) -> tuple[list[float], list[float]]:
    folder = root / UCI_DATASETS[name]
    return (np.loadtxt(folder / "dropout_rates.txt").ravel().tolist(),
            np.loadtxt(folder / "tau_values.txt").ravel().tolist())


#: The paper's settings, from DropoutUncertaintyExps at commit 0eeeb7f (2016-09-15),
#: ``<dataset>/net/net/net.py``: dropout rate, model precision tau "obtained from BO"
#: (Spearmint on 5 splits, 80/20 validation, 40 epochs), and the prior lengthscale written
#: there as ``reg = (1 - p) / (2 N L^2 tau)``, here ``l = 1 / L`` so that
#: ``reg = l^2 (1 - p) / (2 N tau)`` (``gal_weight_decay``); batch size 32.
PAPER_DROPOUT = {
    "boston": (0.05, 0.159707652696, 1e-2), "concrete": (0.01, 0.0557319157756, 1e-2),
    "energy": (0.05, 0.427114830213, 1e-2), "kin8nm": (0.05, 192.482910156, 1e-2),
    "naval": (0.05, 42173.5152106, 1.0), "power": (0.005, 0.0871109017617, 1e-2),
    "protein": (0.005, 0.0644419184588, 1e-2), "wine": (0.05, 2.95833720839, 1e-2),
    "yacht": (0.01, 0.541869562034, 1e-1),
}


def _mc_test(net, tau: float, x_test, y_test, samples: int) -> dict:
    draws = MCDropout(net, samples, tau).sample(x_test)
    with torch.no_grad():
        deterministic = rmse(net.eval()(x_test), y_test)
    return {"nll": -float(mc_log_likelihood(draws, y_test, tau).mean()),
            "rmse": rmse(draws.mean(0), y_test), "rmse_weight_averaged": deterministic}


def run_dropout(name: str, splits: list[int], args, root: Path) -> dict:
    """``--dropout-protocol paper``: the paper's per-dataset (p, tau, l), batch 32, fitted on
    the whole training split. ``grid``: the repository's later ``experiment.py`` -- grid
    ``dropout_rates.txt x tau_values.txt``, l = 1e-2, batch 128, fitted on the first 80 %,
    chosen on the MC log-likelihood of the last 20 %."""
    data = load_splits(name, splits, root, torch.float32)
    width = 100 if name == "protein" else 50
    grid = args.dropout_protocol == "grid"
    if grid:
        p_values, tau_values = _grid(name, root)
        settings = [(p, t, 1e-2) for p in p_values for t in tau_values]
        n_fit, batch_size = int(0.8 * data[0][0].shape[0]), 128
    else:
        settings = [PAPER_DROPOUT[name]]
        n_fit, batch_size = data[0][0].shape[0], 32
    fits, stats = [], []
    for x, y, _, _ in data:
        xf, yf = x[:n_fit], y[:n_fit, 0]
        (xm, xsd), (ym, ysd) = standardization(xf), standardization(yf)
        stats.append((xm, xsd, ym, ysd))
        fits.append(((xf - xm) / xsd, ((yf - ym) / ysd)[:, None]))
    k = len(settings)
    ensemble = VectorizedEnsemble.concat(
        [dropout_ensemble(data[0][0].shape[1], [s[:2] for s in settings], width=width, seed=sp)
         for sp in splits])
    decay = torch.tensor([gal_weight_decay(p, t, n_fit, ls) for p, t, ls in settings]
                         * len(splits))
    start = time.perf_counter()
    train_members(ensemble, torch.stack([f[0] for f in fits]).repeat_interleave(k, 0),
                  torch.stack([f[1] for f in fits]).repeat_interleave(k, 0),
                  epochs=args.dropout_epochs, batch_size=batch_size, lr=1e-3, loss="mse",
                  weight_decay=decay)
    train_seconds = time.perf_counter() - start
    per_split = []
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(0)
    for j, (split, (x, y, x_test, y_test), (xm, xsd, ym, ysd)) in enumerate(
            zip(splits, data, stats)):
        scores, best = None, 0
        if grid:
            scores = []
            for i, (_, tau, _) in enumerate(settings):
                net = Standardized(ensemble.member(j * k + i), xm, xsd, ym, ysd)
                scores.append(float(MCDropout(net, args.mc_samples_val, tau)
                                    .log_likelihood(x[n_fit:], y[n_fit:]).mean()))
            best = int(np.argmax(scores))
        p, tau, _ = settings[best]
        net = Standardized(ensemble.member(j * k + best), xm, xsd, ym, ysd)
        row = {"split": split, **_mc_test(net, tau, x_test, y_test, args.mc_samples_test),
               "p": p, "tau": tau}
        if scores is not None:
            row["validation_ll"] = scores
        per_split.append(row)
    torch.random.set_rng_state(gen_state)
    result = {m: summary([r[m] for r in per_split])
              for m in ("nll", "rmse", "rmse_weight_averaged")}
    return {**result, "train_seconds": train_seconds, "protocol": args.dropout_protocol,
            "settings": settings if not grid else {"p": p_values, "tau": tau_values},
            "per_split": per_split}


# ---- report -------------------------------------------------------------------------------

def markdown(result: dict) -> str:
    lines = ["# UCI regression: deep ensembles and MC dropout vs published\n",
             f"{result['date']}, {result['machine']['processor']}, torch "
             f"{result['machine']['torch']}, {result['machine']['torch_threads']} thread(s), "
             f"{result['wall_seconds']:.0f} s in all (every method, dataset and split).\n",
             "Ours: mean ± standard error over splits. Published: mean ± as printed (a std "
             "over splits). within: |ours − published| ≤ published ± (+ half a printed "
             "digit); ≤: ours ≤ published + ± (not worse than one published std; lower is "
             "better for both metrics).\n"]
    for method, rows in result["results"].items():
        pub = PUBLISHED[PUBLISHED_FOR[method]]
        lines += [f"## {method}: {result['settings'][method]}\n",
                  f"Published: {pub['source']}.\n",
                  "| dataset | splits | NLL ours | NLL published | within | ≤ | RMSE ours | "
                  "RMSE published | within | ≤ | train s |",
                  "|---|---:|---:|---:|:-:|:-:|---:|---:|:-:|:-:|---:|"]
        for name, r in rows.items():
            cells = [name, str(r["nll"]["n"])]
            for metric in ("nll", "rmse"):
                ours, published = r[metric], pub[metric][name]
                digits = 3 if abs(published[0]) < 0.2 else 2
                cells += [f"{ours['mean']:.{digits}f} ± {ours['stderr']:.{digits}f}",
                          f"{published[0]:.2f} ± {published[1]:.2f}",
                          "✓" if r[f"{metric}_within"] else "✗",
                          "✓" if r[f"{metric}_not_worse"] else "✗"]
            cells.append(f"{r['train_seconds']:.1f}")
            lines.append("| " + " | ".join(cells) + " |")
        hits = sum(r[f"{m}_within"] for r in rows.values() for m in ("nll", "rmse"))
        fine = sum(r[f"{m}_not_worse"] for r in rows.values() for m in ("nll", "rmse"))
        lines += ["", f"within one published std: {hits}/{2 * len(rows)}; not worse than "
                  f"published + std: {fine}/{2 * len(rows)}.", ""]
    lines += ["## Notes\n"] + [f"- {n}" for n in NOTES] + [""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--protein", action="store_true", help="add protein (large)")
    parser.add_argument("--splits", type=int, default=None, help="first N splits (default all)")
    parser.add_argument("--methods", default="ensemble,ensemble_at,dropout",
                        help="ensemble (no adversarial training), ensemble_at, dropout")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true",
                        help="4 small datasets, 2 splits, T_test = 1000")
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--lr", type=float, default=2e-2)
    parser.add_argument("--lr-schedule", choices=["constant", "cosine"], default="cosine")
    parser.add_argument("--adversarial-eps", type=float, default=0.01,
                        help="eps of method ensemble_at (fraction of each input's range)")
    parser.add_argument("--dropout-epochs", type=int, default=400)
    parser.add_argument("--dropout-protocol", choices=["paper", "grid"], default="paper")
    parser.add_argument("--mc-samples-val", type=int, default=1000)
    parser.add_argument("--mc-samples-test", type=int, default=10_000)
    parser.add_argument("--root", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--check-equivalence", action="store_true",
                        help="compare split 0 against fit_ensemble (ensembles)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    datasets = args.datasets.split(",") + (["protein"] if args.protein else [])
    if args.quick:
        datasets = ["boston", "energy", "wine", "yacht"]
        args.splits, args.mc_samples_test, args.check_equivalence = 2, 1000, True
    root = args.root or Path(os.environ.get("SCIDL_DATA", DEFAULT_ROOT.parent)) / "uci"
    methods = args.methods.split(",")
    out = args.out or HERE / "results" / ("uq_uci_quick.json" if args.quick else "uq_uci.json")
    ensemble = (f"M={args.members}, 1x50 ReLU (100 for protein), Gaussian head (variance "
                f"floor 1e-6), Gaussian NLL, {args.epochs} epochs, batch {args.batch_size}, "
                f"Adam lr {args.lr:g} ({args.lr_schedule})")
    settings = {
        "ensemble": ensemble + ", no adversarial training",
        "ensemble_at": ensemble + f", adversarial training eps {args.adversarial_eps:g} x range",
        "dropout": f"1x50 ReLU (100 for protein), {args.dropout_epochs} epochs, Adam 1e-3, " + (
            "the paper's per-dataset p, tau, lengthscale, batch 32" if args.dropout_protocol
            == "paper" else "grid p x tau (files) on an 80/20 split, lengthscale 1e-2, batch "
            f"128, T_val={args.mc_samples_val}") + f", T_test={args.mc_samples_test}",
    }
    result = {"benchmark": "uq_uci", "date": utc_now(), "machine": machine_info(),
              "command": " ".join(sys.argv), "settings": {m: settings[m] for m in methods},
              "published": PUBLISHED, "notes": NOTES, "results": {m: {} for m in methods}}
    start = time.perf_counter()
    for name in datasets:
        n = uci_n_splits(name, root)
        splits = list(range(min(n, args.splits or n)))
        for method in methods:
            t0 = time.perf_counter()
            if method == "dropout":
                r = run_dropout(name, splits, args, root)
            else:
                eps = args.adversarial_eps if method == "ensemble_at" else None
                r = run_ensembles(name, splits, args, root, eps)
            r["wall_seconds"] = time.perf_counter() - t0
            pub = PUBLISHED[PUBLISHED_FOR[method]]
            for metric in ("nll", "rmse"):
                mean, (p_mean, p_pm) = r[metric]["mean"], pub[metric][name]
                r[f"{metric}_within"] = within(mean, (p_mean, p_pm))
                r[f"{metric}_not_worse"] = mean <= p_mean + p_pm + 0.005
            result["results"][method][name] = r
            print(f"{method:11s} {name:9s} NLL {r['nll']['mean']:7.3f} ± "
                  f"{r['nll']['stderr']:.3f} (pub {pub['nll'][name][0]:5.2f})  RMSE "
                  f"{r['rmse']['mean']:7.3f} ± {r['rmse']['stderr']:.3f} (pub "
                  f"{pub['rmse'][name][0]:5.2f})  {r['wall_seconds']:.1f} s", flush=True)
    result["wall_seconds"] = time.perf_counter() - start
    write_result(out, result)
    out.with_suffix(".md").write_text(markdown(result))
    print(f"wrote {out} ({result['wall_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
