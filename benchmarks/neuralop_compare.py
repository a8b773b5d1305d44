"""FNO side by side with neuraloperator 2.0: training step time and test error on its example sets.

One process, single-threaded torch by default, both libraries on the same data.

1. Step time. One training step (forward, backward, ``torch.optim.Adam`` step) of a 1D FNO at
   B = 20, N = 1,024 points, width 64, 4 Fourier layers, on one fixed batch (smooth random fields
   and their heat-kernel smoothing, relative L2 loss), the same tensors for every model. The
   models are stepped in turn, one step each per round (so machine noise hits all of them), after
   a warm-up; the median over rounds is reported. Rows: neuraloperator's ``FNO`` with
   ``n_modes=(16,)`` (its default use; it keeps ``16 // 2 + 1 = 9`` rfft modes and adds a lifting
   MLP and a channel-MLP per layer), and with ``n_modes=(30,)`` (16 kept modes); scidl's ``FNO``
   with ``modes=9`` and ``modes=16``; and the classic ~70-line FNO1d of Li et al. (``Conv1d``
   1x1 skips, ``torch.fft``), written below, with 16 modes. Ratios are neuraloperator ms / other
   ms (a speed-up). Parameter counts are printed: the libraries differ in what surrounds the
   spectral layers, so equal kept modes do not mean equal size.
2. Darcy 16² (neuraloperator's small example set: 1,000 train, 50 test at 16² and 32²).
   neuraloperator runs its own example recipe (``examples/models/plot_FNO_darcy.py`` at the 2.0.0
   tag): ``FNO(n_modes=(8, 8), hidden_channels=32, projection_channel_ratio=2)``, its ``AdamW``
   (lr 8e-3, weight decay 1e-4), ``CosineAnnealingLR(T_max=30)`` stepped per epoch, H1 training
   loss, batch 32 in file order (its loader does not shuffle), 20 epochs, output normalisation,
   its ``Trainer``; the loader is built from ``DarcyDataset`` as ``load_darcy_flow_small`` does,
   only without a worker process. scidl runs ``configs/neuralop_darcy16.yaml`` through
   ``scidl.experiments.run`` (so ``scidl run`` reproduces it), 20 epochs too. Both are scored the
   same way: mean over test samples of the per-sample relative L2 error in physical units, at 16²
   and zero-shot at 32². Published for neuraloperator's example: 0.1005 and 0.1251.
3. Burgers 16-point set (800 train / 400 test: initial state ``x [16]`` -> trajectory
   ``y [17, 16]``), learned as one space-time field from the initial state repeated along time.
   neuraloperator: the model of its ``config/burgers_config.py`` (``FNO_Small2d``: n_modes
   (16, 16), hidden 24, projection ratio 2), its ``load_mini_burgers_1dtime`` data (normalised
   input and output, batch 16, shuffled), relative L2 training loss, its ``AdamW`` (weight decay
   1e-4) with a per-epoch cosine schedule; its config's 10,000 epochs at lr 1e-4 do not fit a
   benchmark, so both libraries get the same number of epochs and the peer's lr is the best of a
   small grid (``PEER_BURGERS_LRS``, chosen on seed 0; ``--peer-lr-grid`` reruns the grid, which
   adds three peer runs, otherwise ``PEER_BURGERS_LR`` is used). scidl runs
   ``configs/neuralop_burgers16.yaml``. Error: relative L2 over the whole ``[17, 16]`` field.

Both error studies run over ``--seeds`` seeds (the seed sets the initialisation and, where a loader
shuffles, the order) and report mean and standard deviation.

Usage: python benchmarks/neuralop_compare.py [--quick] [--threads T] [--seeds K] [--repeats R]
Writes benchmarks/results/neuralop_compare.json and .md (--quick: *_quick.*; 2 epochs, 1 seed).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
import yaml
from _plain_fno import PlainFNO1d
from _results import machine_info, utc_now, write_result
from torch import nn

from scidl.experiments import load_config, run
from scidl.metrics import relative_l2
from scidl.models import FNO

try:
    import neuralop
    from neuralop import H1Loss, LpLoss, Trainer
    from neuralop.data.datasets.burgers import Burgers1dTimeDataset
    from neuralop.data.datasets.darcy import DarcyDataset
    from neuralop.models import FNO as PeerFNO
    from neuralop.training import AdamW as PeerAdamW
except ImportError:  # the side-by-side needs the bench extra
    neuralop = None

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CONFIGS = {"darcy": REPO / "configs" / "neuralop_darcy16.yaml",
           "burgers": REPO / "configs" / "neuralop_burgers16.yaml"}
BATCH, POINTS, WIDTH, LAYERS = 20, 1024, 64, 4
PUBLISHED_DARCY = {"16x16": 0.1005, "32x32": 0.1251}
#: learning rates tried for the peer on Burgers (it has no short-budget recipe of its own), and
#: the best of them on seed 0, 20 epochs (rel. L2 0.0054, 0.0038, 0.0035, 0.0037; --peer-lr-grid)
PEER_BURGERS_LRS = (1e-3, 3e-3, 8e-3, 1.5e-2)
PEER_BURGERS_LR = 8e-3


# ---- 1. step time -----------------------------------------------------------------------------

def step_batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``B`` smooth random periodic fields ``[B, 1, N]`` (decaying Fourier series) and their
    heat-kernel smoothing (``exp(-k^2 / 400)`` per mode) as the target."""
    generator = torch.Generator().manual_seed(seed)
    k = torch.arange(POINTS // 2 + 1, dtype=torch.float64)
    coeff = torch.complex(torch.randn(BATCH, 1, k.numel(), generator=generator, dtype=k.dtype),
                          torch.randn(BATCH, 1, k.numel(), generator=generator, dtype=k.dtype))
    coeff = coeff / (1 + k) ** 2 * POINTS
    coeff[..., 0] = 0
    x = torch.fft.irfft(coeff, n=POINTS)
    y = torch.fft.irfft(coeff * torch.exp(-k.square() / 400), n=POINTS)
    return x.float(), y.float()


def step_models() -> dict[str, tuple[str, nn.Module]]:
    """The timed models by key: (description, module), all seeded alike."""
    made = {}

    def add(key, description, factory):
        torch.manual_seed(0)
        made[key] = (description, factory())

    common = dict(in_channels=1, out_channels=1, hidden_channels=WIDTH, n_layers=LAYERS)
    add("neuralop_default", "neuraloperator FNO n_modes=(16,) (keeps 9)",
        lambda: PeerFNO(n_modes=(16,), **common))
    add("neuralop_16", "neuraloperator FNO n_modes=(30,) (keeps 16)",
        lambda: PeerFNO(n_modes=(30,), **common))
    add("scidl_9", "scidl FNO modes=9",
        lambda: FNO(ndim=1, modes=9, width=WIDTH, layers=LAYERS))
    add("scidl_16", "scidl FNO modes=16",
        lambda: FNO(ndim=1, modes=16, width=WIDTH, layers=LAYERS))
    add("plain_16", "plain torch FNO1d modes=16",
        lambda: PlainFNO1d(modes=16, width=WIDTH, layers=LAYERS))
    return made


def step_times(repeats: int, warmup: int = 3) -> dict:
    """Median milliseconds of one Adam step per model, models interleaved round by round."""
    x, y = step_batch()
    models = step_models()
    steps = {}
    for key, (_, model) in models.items():
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

        def step(model=model, optimizer=optimizer):
            optimizer.zero_grad(set_to_none=True)
            loss = relative_l2(model(x), y).mean()
            loss.backward()
            optimizer.step()
            return loss

        steps[key] = step
    for _ in range(warmup):
        for step in steps.values():
            step()
    times = {key: [] for key in steps}
    for _ in range(repeats):
        for key, step in steps.items():
            started = time.perf_counter()
            step()
            times[key].append(1000 * (time.perf_counter() - started))
    rows = {key: {"model": models[key][0],
                  "parameters": sum(p.numel() * (2 if p.is_complex() else 1)
                                    for p in models[key][1].parameters()),
                  "ms_median": statistics.median(times[key]),
                  "ms_min": min(times[key]), "ms_all": times[key]}
            for key in steps}
    ms = {key: row["ms_median"] for key, row in rows.items()}
    ratios = {
        "neuralop_default / scidl_9 (same kept modes)": ms["neuralop_default"] / ms["scidl_9"],
        "neuralop_16 / scidl_16 (same kept modes)": ms["neuralop_16"] / ms["scidl_16"],
        "neuralop_default / scidl_16": ms["neuralop_default"] / ms["scidl_16"],
        "neuralop_default / plain_16": ms["neuralop_default"] / ms["plain_16"],
        "plain_16 / scidl_16": ms["plain_16"] / ms["scidl_16"],
    }
    return {"batch": BATCH, "points": POINTS, "width": WIDTH, "layers": LAYERS,
            "optimizer": "torch.optim.Adam lr 1e-3", "loss": "relative L2",
            "repeats": repeats, "warmup": warmup, "rows": rows, "speedups": ratios}


# ---- 2./3. test error -------------------------------------------------------------------------

def data_root() -> Path:
    """``$SCIDL_DATA`` (``make test`` and ``make bench`` set it), else ``../shared/data``."""
    root = Path(os.environ.get("SCIDL_DATA") or REPO.parent / "shared" / "data")
    os.environ.setdefault("SCIDL_DATA", str(root))
    return root


def _mean_rel_l2(model: nn.Module, processor, loader) -> float:
    """Mean per-sample relative L2 of the peer's predictions in physical units."""
    model.eval()
    processor.eval()
    predictions, targets = [], []
    with torch.no_grad():
        for sample in loader:
            sample = processor.preprocess(sample)
            out, sample = processor.postprocess(model(sample["x"]), sample)
            predictions.append(out.double())
            targets.append(sample["y"].double())
    return float(relative_l2(torch.cat(predictions), torch.cat(targets)).mean())


def _peer_train(model, processor, train_loader, test_loaders, epochs, lr, loss, t_max):
    """neuraloperator's ``Trainer`` with its ``AdamW`` and a per-epoch cosine schedule."""
    optimizer = PeerAdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=t_max)
    trainer = Trainer(model=model, n_epochs=epochs, device="cpu", data_processor=processor,
                      wandb_log=False, eval_interval=10**9, use_distributed=False,
                      verbose=False)
    with warnings.catch_warnings():  # it warns on every batch that its losses ignore 'x'
        warnings.simplefilter("ignore", UserWarning)
        trainer.train(train_loader=train_loader, test_loaders=test_loaders,
                      optimizer=optimizer, scheduler=scheduler, regularizer=False,
                      training_loss=loss, eval_losses={"l2": LpLoss(d=2, p=2)})
    return {label: _mean_rel_l2(model, processor, loader)
            for label, loader in test_loaders.items()}


def peer_darcy(seed: int, epochs: int, n_train: int) -> dict:
    """neuraloperator's Darcy example (see the module docstring); errors at 16² and 32²."""
    from torch.utils.data import DataLoader

    with contextlib.redirect_stdout(io.StringIO()):  # it prints one line per test set
        dataset = DarcyDataset(root_dir=data_root() / "operators", n_train=n_train,
                               n_tests=[100, 50], batch_size=32, test_batch_sizes=[32, 32],
                               train_resolution=16, test_resolutions=[16, 32], download=False)
    torch.manual_seed(seed)
    model = PeerFNO(n_modes=(8, 8), in_channels=1, out_channels=1, hidden_channels=32,
                    projection_channel_ratio=2)
    train_loader = DataLoader(dataset.train_db, batch_size=32)
    test_loaders = {f"{r}x{r}": DataLoader(dataset.test_dbs[r], batch_size=32, shuffle=False)
                    for r in (16, 32)}
    started = time.perf_counter()
    errors = _peer_train(model, dataset.data_processor, train_loader, test_loaders, epochs,
                         lr=8e-3, loss=H1Loss(d=2), t_max=30)
    return {"errors": errors, "seconds": time.perf_counter() - started,
            "parameters": _parameters(model)}


def peer_burgers(seed: int, epochs: int, n_train: int, lr: float) -> dict:
    """neuraloperator's FNO_Small2d on its mini Burgers set (see the module docstring)."""
    from torch.utils.data import DataLoader

    with contextlib.redirect_stdout(io.StringIO()):
        dataset = Burgers1dTimeDataset(root_dir=data_root() / "operators", n_train=n_train,
                                       n_tests=[400], batch_size=16, test_batch_sizes=[16])
    torch.manual_seed(seed)
    model = PeerFNO(n_modes=(16, 16), in_channels=1, out_channels=1, hidden_channels=24,
                    projection_channel_ratio=2)
    train_loader = DataLoader(dataset.train_db, batch_size=16, shuffle=True)
    test_loaders = {"17x16": DataLoader(dataset.test_dbs[16], batch_size=16, shuffle=False)}
    started = time.perf_counter()
    errors = _peer_train(model, dataset.data_processor, train_loader, test_loaders, epochs,
                         lr=lr, loss=LpLoss(d=2, p=2), t_max=epochs)
    return {"errors": errors, "seconds": time.perf_counter() - started,
            "parameters": _parameters(model)}


def _parameters(model: nn.Module) -> int:
    """Real parameters (a complex one counts twice, as scidl stores it)."""
    return sum(p.numel() * (2 if p.is_complex() else 1) for p in model.parameters())


def scidl_run(task: str, seed: int, epochs: int | None, n_train: int | None) -> dict:
    """The task's config through ``scidl.experiments.run`` (``--quick`` shortens it)."""
    raw = yaml.safe_load(CONFIGS[task].read_text())
    overrides = {"seed": seed}
    if epochs is not None or n_train is not None:
        data, models = raw["data"], raw["models"]
        if n_train is not None:
            data["n_train"] = n_train
        for model in models.values():
            if epochs is not None:
                model["training"]["stages"] = [{**stage, "epochs": epochs}
                                               for stage in model["training"]["stages"]]
        overrides.update(data=data, models=models)
    config = load_config(CONFIGS[task], overrides=overrides)
    name, model_cfg = next(iter(config.models.items()))
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        run_dir = run(config, Path(tmp) / "run", quiet=True)
        seconds = time.perf_counter() - started
        metrics = json.loads((run_dir / "metrics.json").read_text())["models"][name]
        timings = json.loads((run_dir / "timings.json").read_text())
    label = "x".join(str(n) for n in metrics["resolution"])
    errors = {label: metrics["test_rel_l2"], **metrics.get("test_rel_l2_by_resolution", {})}
    return {"errors": errors, "seconds": seconds, "train_seconds": timings[f"{name}.train"],
            "parameters": metrics["parameters"], "epochs": model_cfg.training.stages[0].epochs}


def summarise(runs: list[dict]) -> dict:
    """Per-resolution mean, standard deviation (n - 1) and per-seed values."""
    out = {}
    for label in runs[0]["errors"]:
        values = [r["errors"][label] for r in runs]
        out[label] = {"mean": statistics.fmean(values),
                      "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                      "per_seed": values}
    return out


def error_study(task: str, seeds: list[int], epochs: int, quick: bool,
                lr_grid: bool = False) -> dict:
    """Both libraries on one task, seed by seed; errors summarised over the seeds."""
    n_train = {"darcy": 1000, "burgers": 800}[task]
    if quick:
        n_train //= 4
    peer_lr = PEER_BURGERS_LR if task == "burgers" else None
    grid = {}
    if task == "burgers" and lr_grid:
        # choose the peer's lr on the first seed, then use it for every seed
        for lr in PEER_BURGERS_LRS:
            grid[lr] = peer_burgers(seeds[0], epochs, n_train, lr)
            print(f"  neuraloperator burgers lr {lr:g}: "
                  f"{grid[lr]['errors']['17x16']:.4f}", flush=True)
        peer_lr = min(grid, key=lambda lr: grid[lr]["errors"]["17x16"])
    peer, ours = [], []
    for seed in seeds:
        if task == "darcy":
            peer.append(peer_darcy(seed, epochs, n_train))
        elif seed == seeds[0] and peer_lr in grid:
            peer.append(grid[peer_lr])
        else:
            peer.append(peer_burgers(seed, epochs, n_train, peer_lr))
        ours.append(scidl_run(task, seed, epochs if quick else None,
                              n_train if quick else None))
        print(f"  {task} seed {seed}: neuraloperator "
              + ", ".join(f"{k} {v:.4f}" for k, v in peer[-1]["errors"].items())
              + f" ({peer[-1]['seconds']:.0f} s); scidl "
              + ", ".join(f"{k} {v:.4f}" for k, v in ours[-1]["errors"].items())
              + f" ({ours[-1]['seconds']:.0f} s)", flush=True)
    return {
        "epochs": epochs, "n_train": n_train, "seeds": seeds,
        "config": str(CONFIGS[task].relative_to(REPO)),
        "neuralop": {"errors": summarise(peer), "parameters": peer[0]["parameters"],
                     "seconds_per_seed": [r["seconds"] for r in peer],
                     **({"lr": peer_lr} if peer_lr else {}),
                     **({"lr_grid_first_seed": {str(lr): r["errors"] for lr, r in grid.items()}}
                        if grid else {})},
        "scidl": {"errors": summarise(ours), "parameters": ours[0]["parameters"],
                  "seconds_per_seed": [r["seconds"] for r in ours],
                  "train_seconds_per_seed": [r["train_seconds"] for r in ours]},
    }


# ---- report -----------------------------------------------------------------------------------

def _pm(summary: dict) -> str:
    if len(summary["per_seed"]) > 1:
        return f"{summary['mean']:.4f} ± {summary['std']:.4f}"
    return f"{summary['mean']:.4f}"


def markdown(result: dict) -> str:
    """The result as markdown tables (also printed)."""
    speed = result["step_time"]
    lines = [f"# FNO: scidl vs neuraloperator {result['setup']['neuralop']}",
             "",
             f"{result['date']}, {result['machine']['processor']}, torch "
             f"{result['machine']['torch']}, {result['machine']['torch_threads']} thread(s), "
             f"mode {result['mode']}, {result['seconds']:.0f} s in all.",
             "",
             f"## Training step (B = {speed['batch']}, N = {speed['points']}, width "
             f"{speed['width']}, {speed['layers']} layers; forward + backward + Adam; median "
             f"of {speed['repeats']} interleaved rounds)",
             "",
             "| model | real parameters | ms / step (median) | ms (min) |",
             "|---|---:|---:|---:|"]
    for row in speed["rows"].values():
        lines.append(f"| {row['model']} | {row['parameters']:,} | {row['ms_median']:.1f} | "
                     f"{row['ms_min']:.1f} |")
    lines += ["", "| speed-up (ms / ms) | |", "|---|---:|"]
    lines += [f"| {key} | {value:.2f}x |" for key, value in speed["speedups"].items()]
    for task, title in (("darcy", "Darcy 16² (zero-shot 32²)"),
                        ("burgers", "Burgers 16 points x 17 times (space-time field)")):
        study = result[task]
        labels = list(study["scidl"]["errors"])
        seeds = len(study["seeds"])
        lines += ["", f"## {title}: test relative L2, {study['epochs']} epochs, "
                      f"{study['n_train']} training samples, "
                      f"{'mean ± std over ' + str(seeds) + ' seeds' if seeds > 1 else '1 seed'}",
                  "", "| library | real parameters | " + " | ".join(labels) + " | s / run |",
                  "|---|---:|" + "---:|" * len(labels) + "---:|"]
        for lib in ("neuralop", "scidl"):
            side = study[lib]
            name = {"neuralop": "neuraloperator", "scidl": "scidl"}[lib]
            if lib == "neuralop" and "lr" in side:
                name += f" (lr {side['lr']:g})"
            lines.append(f"| {name} | {side['parameters']:,} | "
                         + " | ".join(_pm(side["errors"][k]) for k in labels)
                         + f" | {statistics.fmean(side['seconds_per_seed']):.0f} |")
        if task == "darcy":
            lines.append("| neuraloperator, published for its example | | "
                         + " | ".join(f"{PUBLISHED_DARCY.get(k, math.nan):.4f}"
                                      for k in labels) + " | |")
    lines += ["", "Configs: " + ", ".join(f"`{result[t]['config']}`"
                                          for t in ("darcy", "burgers")),
              f"Command: `{result['command']}`", ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run (about a minute)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--seeds", type=int, help="seeds per error study (default 3; quick 1)")
    parser.add_argument("--repeats", type=int, help="timing rounds (default 15; quick 3)")
    parser.add_argument("--peer-lr-grid", action="store_true",
                        help="rerun the peer's Burgers learning-rate grid (about 2 min more)")
    parser.add_argument("--out", help="result file (default "
                        "benchmarks/results/neuralop_compare.json; .md beside it)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if neuralop is None:
        print("neuraloperator is not installed; install the benchmark extra: "
              "pip install -e '.[bench]' (or pip install neuraloperator)", file=sys.stderr)
        return 2
    if not (data_root() / "operators" / "darcy_train_16.pt").is_file():
        print(f"neuraloperator's example sets are not in {data_root() / 'operators'}; set "
              "SCIDL_DATA to the shared data folder", file=sys.stderr)
        return 2
    quick = args.quick
    seeds = list(range(args.seeds or (1 if quick else 3)))
    repeats = args.repeats or (3 if quick else 15)
    out_path = Path(args.out or HERE / "results" / ("neuralop_compare_quick.json" if quick
                                                    else "neuralop_compare.json"))
    load_before, started = os.getloadavg(), time.perf_counter()

    speed = step_times(repeats, warmup=1 if quick else 3)
    print(f"step time, median of {repeats} rounds (ms):")
    for row in speed["rows"].values():
        print(f"  {row['model']:<44} {row['parameters']:>9,} params  {row['ms_median']:7.1f}")
    for key, ratio in speed["speedups"].items():
        print(f"  {key}: {ratio:.2f}x")
    epochs = 2 if quick else 20
    darcy = error_study("darcy", seeds, epochs, quick)
    burgers = error_study("burgers", seeds, epochs, quick, lr_grid=args.peer_lr_grid)

    result = {
        "benchmark": "neuralop_compare",
        "mode": "quick" if quick else "default",
        "command": " ".join(["python", f"benchmarks/{Path(sys.argv[0]).name}", *sys.argv[1:]]),
        "setup": {"neuralop": neuralop.__version__,
                  "published_neuralop_darcy": PUBLISHED_DARCY,
                  "error": "mean over test samples of the per-sample relative L2 error "
                           "(physical units), scidl.metrics.relative_l2 for both libraries"},
        "step_time": speed,
        "darcy": darcy,
        "burgers": burgers,
        "note": ("one process on a shared machine; step-time ratios are neuraloperator ms / "
                 "other ms from interleaved rounds"),
        "machine": machine_info(load_average_before=load_before,
                                load_average_after=os.getloadavg()),
        "seconds": time.perf_counter() - started,
        "date": utc_now(),
    }
    table = markdown(result)
    print()
    print(table)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.with_suffix(".md").write_text(table)
    print(f"wrote {write_result(out_path, result)} and {out_path.with_suffix('.md').name} "
          f"({result['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
