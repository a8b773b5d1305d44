"""MoleculeNet ESOL: D-MPNN (scidl.geometric.MPNN) against GIN and GCN baselines.

Protocol (PROTOCOLS.md, "MoleculeNet ESOL"): 1,128 molecules, target `measured log solubility in
mols per litre`; random 80/10/10 splits and chemprop-style scaffold-balanced splits, the same seeds
for both (the seed sets the split and the initialisation); the epoch with the lowest validation
RMSE is kept (model selection on validation only) and its test RMSE reported, mean +- std over
seeds, with the wall time per run (featurisation excluded: done once, ~1 s).

Training, as chemprop's defaults where they exist: targets standardised with the training split's
mean and std, MSE loss, batch 50, Adam, learning rate linear warm-up 1e-4 -> 1e-3 over 2 epochs
then exponential decay to 1e-4 at the last epoch (chemprop's NoamLR), float32, one CPU thread.
MPNN: hidden 300, depth 3, mean readout, 2-layer FFN head. GIN: 4 layers, sum readout. GCN: 3
layers, mean readout. No ensembling, no extra molecular descriptors.

Anchors: MoleculeNet MPNN 0.58; chemprop D-MPNN ~0.555 (tuned); chemprop 2.3.1 defaults on these
machines 0.653 +- 0.076 (random), 0.832 +- 0.054 (scaffold), ~40 s a run.

Usage: python benchmarks/esol.py [--seeds 10] [--models mpnn,gin,gcn] [--splits random,scaffold]
       [--epochs 50] [--dropout 0.0] [--readout mean|sum] [--quick] [--data PATH] [--out FILE]
Writes benchmarks/results/esol.json (--quick: esol_quick.json: 2 seeds, 5 epochs, MPNN).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from _results import machine_info, utc_now, write_result

from scidl.geometric.molecules import (
    ATOM_DIM,
    BOND_DIM,
    collate,
    load_esol,
    mol_graph,
    random_split,
    scaffold_split,
)
from scidl.geometric.mpnn import GCN, GIN, MPNN

HERE = Path(__file__).resolve().parent
ANCHORS = {
    "MoleculeNet MPNN (random)": 0.58,
    "chemprop D-MPNN tuned (random)": 0.555,
    "chemprop 2.3.1 defaults, random": "0.653 +- 0.076",
    "chemprop 2.3.1 defaults, scaffold": "0.832 +- 0.054",
    "chemprop seconds per run": 40,
}


def build(name: str, dropout: float, readout: str | None = None) -> torch.nn.Module:
    if name == "mpnn":
        return MPNN(ATOM_DIM, BOND_DIM, hidden=300, depth=3, dropout=dropout,
                    readout=readout or "mean")
    if name == "gin":
        return GIN(ATOM_DIM, BOND_DIM, hidden=300, layers=4, dropout=dropout,
                   readout=readout or "sum")
    if name == "gcn":
        return GCN(ATOM_DIM, BOND_DIM, hidden=300, layers=3, dropout=dropout,
                   readout=readout or "mean")
    raise ValueError(f"unknown model {name!r}")


def noam(step: int, steps_per_epoch: int, epochs: int, warmup: float = 2.0,
         init: float = 1e-4, peak: float = 1e-3, final: float = 1e-4) -> float:
    warm = int(warmup * steps_per_epoch)
    total = epochs * steps_per_epoch
    if step < warm:
        return init + (peak - init) * step / warm
    gamma = (final / peak) ** (1.0 / max(total - warm, 1))
    return peak * gamma ** (step - warm)


def predict(model, graphs, batch_size=256) -> torch.Tensor:
    model.eval()
    out = []
    with torch.no_grad():
        for k in range(0, len(graphs), batch_size):
            b = collate(graphs[k:k + batch_size])
            out.append(model(b.x, b.edge_index, b.edge_attr, b.batch, b.num_graphs)[:, 0])
    return torch.cat(out)


def run_one(name, graphs, y, split, seed, epochs, batch_size=50, dropout=0.0,
            readout=None) -> dict:
    start = time.perf_counter()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    train, val, test = split
    mean, std = y[train].mean(), y[train].std()
    model = build(name, dropout, readout)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    steps_per_epoch = math.ceil(len(train) / batch_size)
    best, best_state, best_epoch, step = math.inf, None, -1, 0
    for epoch in range(epochs):
        model.train()
        order = rng.permutation(train)
        for k in range(0, len(order), batch_size):
            idx = order[k:k + batch_size]
            if len(idx) < 2 and name == "gin":  # batch norm needs two graphs
                continue
            for group in opt.param_groups:
                group["lr"] = noam(step, steps_per_epoch, epochs)
            b = collate([graphs[i] for i in idx])
            pred = model(b.x, b.edge_index, b.edge_attr, b.batch, b.num_graphs)[:, 0]
            loss = torch.nn.functional.mse_loss(pred, (y[idx] - mean) / std)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
        val_pred = predict(model, [graphs[i] for i in val]) * std + mean
        val_rmse = float(((val_pred - y[val]) ** 2).mean().sqrt())
        if val_rmse < best:
            best, best_epoch = val_rmse, epoch
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    test_pred = predict(model, [graphs[i] for i in test]) * std + mean
    return {
        "seed": seed,
        "test_rmse": float(((test_pred - y[test]) ** 2).mean().sqrt()),
        "val_rmse": best,
        "best_epoch": best_epoch,
        "seconds": time.perf_counter() - start,
        "sizes": [len(train), len(val), len(test)],
    }


def summary(runs: list[dict]) -> dict:
    rmse = [r["test_rmse"] for r in runs]
    secs = [r["seconds"] for r in runs]
    return {
        "test_rmse_mean": statistics.fmean(rmse),
        "test_rmse_std": statistics.stdev(rmse) if len(rmse) > 1 else 0.0,
        "seconds_per_run": statistics.fmean(secs),
        "n_seeds": len(runs),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--models", default="mpnn,gin,gcn")
    parser.add_argument("--splits", default="random,scaffold")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--readout", choices=("mean", "sum"), default=None,
                        help="override the model's default readout")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--data", default=None)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.quick:
        args.seeds, args.epochs, args.models = 2, 5, "mpnn"
    data = args.data
    if data is None:
        root = os.environ.get("SCIDL_DATA") or str(HERE.parents[1] / "shared" / "data")
        data = Path(root) / "molecules" / "esol.csv"
    smiles, y = load_esol(data)
    graphs = [mol_graph(s) for s in smiles]
    splitters = {"random": lambda s: random_split(len(smiles), s),
                 "scaffold": lambda s: scaffold_split(smiles, s)}
    results: dict = {}
    for model in args.models.split(","):
        for split in args.splits.split(","):
            runs = []
            for seed in range(args.seeds):
                run = run_one(model, graphs, y, splitters[split](seed), seed, args.epochs,
                              dropout=args.dropout, readout=args.readout)
                runs.append(run)
                print(f"{model} {split} seed {seed}: test RMSE {run['test_rmse']:.3f} "
                      f"(best epoch {run['best_epoch']}, {run['seconds']:.1f} s)", flush=True)
            results[f"{model}/{split}"] = {"summary": summary(runs), "runs": runs}
    print("\n| model | split | test RMSE (mean ± std) | seeds | s / run |")
    print("|---|---|---|---|---|")
    for key, res in results.items():
        s = res["summary"]
        model, split = key.split("/")
        print(f"| {model} | {split} | {s['test_rmse_mean']:.3f} ± {s['test_rmse_std']:.3f} | "
              f"{s['n_seeds']} | {s['seconds_per_run']:.1f} |")
    out = args.out or HERE / "results" / ("esol_quick.json" if args.quick else "esol.json")
    write_result(out, {
        "benchmark": "MoleculeNet ESOL",
        "date": utc_now(),
        "machine": machine_info(),
        "settings": {"epochs": args.epochs, "batch_size": 50, "dropout": args.dropout,
                     "readout": args.readout or "model default",
                     "lr": "noam 1e-4 -> 1e-3 (2 epochs) -> 1e-4", "seeds": args.seeds},
        "anchors": ANCHORS,
        "results": results,
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
