"""MoleculeNet ESOL: D-MPNN (scidl.geometric.MPNN), with and without RDKit descriptors, against
GIN and GCN baselines.

Protocol (PROTOCOLS.md, "MoleculeNet ESOL"): 1,128 molecules, target `measured log solubility in
mols per litre`; random 80/10/10 splits and chemprop-style scaffold-balanced splits, the same seeds
for both (the seed sets the split and the initialisation); the epoch with the lowest validation
RMSE is kept (model selection on validation only) and its test RMSE reported, mean +- std over
seeds, with the wall (and CPU) time per run (featurisation excluded here: done once; the
side-by-side with chemprop, benchmarks/esol_vs_chemprop.py, adds it to every run).

Training, as chemprop's defaults where they exist: targets standardised with the training split's
mean and std, MSE loss, batch 50, Adam, learning rate linear warm-up 1e-4 -> 1e-3 over 2 epochs
then exponential decay to 1e-4 at the last epoch (chemprop's NoamLR), float32, one CPU thread.
MPNN: hidden 300, depth 3, mean readout, 2-layer FFN head. GIN: 4 layers, sum readout. GCN: 3
layers, mean readout. These three: no ensembling, no extra molecular descriptors.

``mpnn-desc`` (:data:`DESCRIPTOR_CONFIG`, :func:`run_scidl`) -- the levers, each chosen on the
mean VALIDATION RMSE of random splits 0-2 (single models: no descriptors 0.697, CDF-normalised
descriptors 0.608, standardised 0.559, standardised + dropout 0.1 0.550; hidden 100 / 30 epochs
0.579), never on test:

1. molecule-level RDKit 2D descriptors (:func:`scidl.geometric.descriptors.molecule_descriptors`:
   all ~217 of RDKit's ``Descriptors._descList``, computed from the SMILES only -- none of the
   CSV's precomputed columns, in particular not "ESOL predicted log solubility"), normalised by
   :class:`~scidl.geometric.descriptors.DescriptorNormaliser` ("standard": mean/std and median
   fill fitted on the TRAINING split of each run only, clipped to +-5), concatenated to the mean
   readout before the FFN (``MPNN(extra_features=217)``);
2. hyperparameters: hidden 150 (bond messages and FFN), depth 3, 2-layer FFN, dropout 0.1, 50
   epochs, batch 50, the Noam schedule above;
3. an ensemble of 2 such models (initialisation seeds ``1000 seed + k``, same split), each
   keeping its own best-validation epoch; the ensemble averages their predictions. Its time is
   the time of both. Two, not more, so that a run (featurisation included) takes no longer than
   one chemprop run with its defaults (a third member would cost ~16 s more on one CPU thread).

Anchors: MoleculeNet MPNN 0.58; chemprop D-MPNN ~0.555 (tuned); chemprop 2.3.1 defaults on these
machines 0.653 +- 0.076 (random), 0.832 +- 0.054 (scaffold), ~40 s a run.

Usage: python benchmarks/esol.py [--seeds 10] [--models mpnn,gin,gcn,mpnn-desc]
       [--splits random,scaffold] [--epochs 50] [--dropout 0.0] [--readout mean|sum] [--quick]
       [--data PATH] [--out FILE]
Writes benchmarks/results/esol.json (--quick: esol_quick.json: 2 seeds, 5 epochs, MPNN).
``--epochs``, ``--dropout`` and ``--readout`` apply to mpnn, gin and gcn; mpnn-desc uses
:data:`DESCRIPTOR_CONFIG` (5 epochs with --quick).
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
from _results import cpu_seconds, machine_info, utc_now, write_result

from scidl.geometric.descriptors import DescriptorNormaliser, molecule_descriptors
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


def predict(model, graphs, extra=None, batch_size=256) -> torch.Tensor:
    model.eval()
    out = []
    with torch.no_grad():
        for k in range(0, len(graphs), batch_size):
            b = collate(graphs[k:k + batch_size])
            kw = {} if extra is None else {"extra": extra[k:k + batch_size]}
            out.append(model(b.x, b.edge_index, b.edge_attr, b.batch, b.num_graphs, **kw)[:, 0])
    return torch.cat(out)


def fit(model, graphs, y, split, seed, epochs, batch_size=50, extra=None, peak_lr=1e-3,
        skip_singletons=False):
    """Train on ``split[0]`` with the Noam schedule; keep the epoch of lowest validation RMSE.

    Returns (validation RMSE, best epoch, test predictions in target units). ``extra`` holds the
    per-molecule features ``[n, D]`` already normalised with training statistics (or None).
    """
    rng = np.random.default_rng(seed)
    train, val, test = split
    mean, std = y[train].mean(), y[train].std()
    opt = torch.optim.Adam(model.parameters(), lr=peak_lr / 10)
    steps_per_epoch = math.ceil(len(train) / batch_size)
    val_graphs = [graphs[i] for i in val]
    val_extra = None if extra is None else extra[val]
    best, best_state, best_epoch, step = math.inf, None, -1, 0
    for epoch in range(epochs):
        model.train()
        order = rng.permutation(train)
        for k in range(0, len(order), batch_size):
            idx = order[k:k + batch_size]
            if len(idx) < 2 and skip_singletons:  # batch norm needs two graphs
                continue
            for group in opt.param_groups:
                group["lr"] = noam(step, steps_per_epoch, epochs, init=peak_lr / 10,
                                   peak=peak_lr, final=peak_lr / 10)
            b = collate([graphs[i] for i in idx])
            kw = {} if extra is None else {"extra": extra[idx]}
            pred = model(b.x, b.edge_index, b.edge_attr, b.batch, b.num_graphs, **kw)[:, 0]
            loss = torch.nn.functional.mse_loss(pred, (y[idx] - mean) / std)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
        val_pred = predict(model, val_graphs, val_extra) * std + mean
        val_rmse = float(((val_pred - y[val]) ** 2).mean().sqrt())
        if val_rmse < best:
            best, best_epoch = val_rmse, epoch
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    val_pred = predict(model, val_graphs, val_extra) * std + mean
    test_pred = predict(model, [graphs[i] for i in test],
                        None if extra is None else extra[test]) * std + mean
    return best, best_epoch, val_pred, test_pred


def run_one(name, graphs, y, split, seed, epochs, batch_size=50, dropout=0.0,
            readout=None) -> dict:
    start, cpu = time.perf_counter(), cpu_seconds()
    torch.manual_seed(seed)
    model = build(name, dropout, readout)
    best, best_epoch, _, test_pred = fit(model, graphs, y, split, seed, epochs, batch_size,
                                         skip_singletons=name == "gin")
    test = split[2]
    return {
        "seed": seed,
        "test_rmse": float(((test_pred - y[test]) ** 2).mean().sqrt()),
        "val_rmse": best,
        "best_epoch": best_epoch,
        "seconds": time.perf_counter() - start,
        "cpu_seconds": cpu_seconds() - cpu,
        "sizes": [len(s) for s in split],
    }


#: scidl's ESOL recipe with descriptors (the levers are listed in the module docstring).
DESCRIPTOR_CONFIG = {
    "model": "mpnn", "hidden": 150, "depth": 3, "ffn_hidden": 150, "ffn_layers": 2,
    "dropout": 0.1, "readout": "mean", "epochs": 50, "batch_size": 50, "peak_lr": 1e-3,
    "ensemble": 2, "descriptors": "standard",
}


#: What DESCRIPTOR_CONFIG changes relative to the plain D-MPNN (recorded in the results json).
LEVERS = [
    "RDKit 2D descriptors (all of Descriptors._descList, from SMILES only) standardised with "
    "training-split statistics, concatenated to the readout before the FFN",
    "hidden 150, dropout 0.1, 2-layer FFN (chosen on validation RMSE, random splits 0-2)",
    "ensemble of 2 models (different initialisations), predictions averaged, time counted",
]


def default_data() -> Path:
    root = os.environ.get("SCIDL_DATA") or str(HERE.parents[1] / "shared" / "data")
    return Path(root) / "molecules" / "esol.csv"


def featurise(smiles, config) -> dict:
    """Graphs (and raw RDKit descriptors if ``config["descriptors"]``) of every molecule, with
    the CPU and wall seconds this took."""
    start, cpu = time.perf_counter(), cpu_seconds()
    graphs = [mol_graph(s) for s in smiles]
    desc = molecule_descriptors(smiles) if config.get("descriptors") else None
    return {"graphs": graphs, "desc": desc,
            "timing": {"cpu_seconds": cpu_seconds() - cpu,
                       "wall_seconds": time.perf_counter() - start}}


def run_scidl(feats, y, split, seed, config) -> dict:
    """An ensemble of ``config["ensemble"]`` D-MPNNs (different initialisations, the same split),
    each with its own best-validation epoch; the ensemble averages their predictions."""
    start, cpu = time.perf_counter(), cpu_seconds()
    train, val, test = split
    extra = None
    if feats["desc"] is not None:
        norm = DescriptorNormaliser(config["descriptors"]).fit(feats["desc"][train])
        extra = torch.as_tensor(norm.transform(feats["desc"]))
    vals, tests, epochs = [], [], []
    for member in range(config["ensemble"]):
        member_seed = seed * 1000 + member
        torch.manual_seed(member_seed)
        model = MPNN(ATOM_DIM, BOND_DIM, hidden=config["hidden"], depth=config["depth"],
                     ffn_hidden=config["ffn_hidden"], ffn_layers=config["ffn_layers"],
                     dropout=config["dropout"], readout=config["readout"],
                     extra_features=0 if extra is None else extra.shape[1])
        _, best_epoch, val_pred, test_pred = fit(
            model, feats["graphs"], y, split, member_seed, config["epochs"],
            config["batch_size"], extra=extra, peak_lr=config["peak_lr"])
        vals.append(val_pred)
        tests.append(test_pred)
        epochs.append(best_epoch)
    rmse = lambda p, idx: float(((torch.stack(p).mean(0) - y[idx]) ** 2).mean().sqrt())  # noqa
    return {
        "seed": seed,
        "test_rmse": rmse(tests, test),
        "val_rmse": rmse(vals, val),
        "member_test_rmse": [rmse([t], test) for t in tests],
        "member_val_rmse": [rmse([v], val) for v in vals],
        "best_epochs": epochs,
        "cpu_seconds": cpu_seconds() - cpu,
        "wall_seconds": time.perf_counter() - start,
        "sizes": [len(train), len(val), len(test)],
    }


def summary(runs: list[dict]) -> dict:
    rmse = [r["test_rmse"] for r in runs]
    secs = [r["seconds"] for r in runs]
    cpu = [r["cpu_seconds"] for r in runs]
    return {
        "test_rmse_mean": statistics.fmean(rmse),
        "test_rmse_std": statistics.stdev(rmse) if len(rmse) > 1 else 0.0,
        "seconds_per_run": statistics.fmean(secs),
        "cpu_seconds_per_run": statistics.fmean(cpu),
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
    data = args.data or default_data()
    smiles, y = load_esol(data)
    graphs = [mol_graph(s) for s in smiles]
    desc_config = dict(DESCRIPTOR_CONFIG, epochs=5) if args.quick else dict(DESCRIPTOR_CONFIG)
    feats = featurise(smiles, desc_config) if "mpnn-desc" in args.models.split(",") else None
    splitters = {"random": lambda s: random_split(len(smiles), s),
                 "scaffold": lambda s: scaffold_split(smiles, s)}
    results: dict = {}
    for model in args.models.split(","):
        for split in args.splits.split(","):
            runs = []
            for seed in range(args.seeds):
                if model == "mpnn-desc":
                    run = run_scidl(feats, y, splitters[split](seed), seed, desc_config)
                    run["seconds"], run["best_epoch"] = run["wall_seconds"], run["best_epochs"]
                else:
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
        "mpnn_desc_config": desc_config,
        "mpnn_desc_levers": LEVERS,
        "featurisation_seconds": None if feats is None else feats["timing"],
        "anchors": ANCHORS,
        "results": results,
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
