"""Uncertainty for operator runs (``uq:`` in a ``kind: operator`` model; docs/uq.md).

A deep ensemble of ``members`` independently seeded copies of the configured model, each
trained through the one training loop (its own checkpoint ``checkpoints/NAME.mK.pt``, so an
interrupted run resumes member by member), sequentially or as Ray tasks; their predictions
form a :class:`~scidl.uq.Prediction` with a mean and std at every grid point. With
``conformal: true`` a calibration split of the training pairs turns the predictions into
split-conformal intervals at every grid point (scores normalised by the ensemble's std when
there are several members). The usual operator metrics are those of the ensemble mean.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import torch
from torch import nn

from scidl.experiments import operator
from scidl.experiments.config import OperatorRunConfig, RunConfig
from scidl.experiments.datasets import RunData
from scidl.train import DistInfo, TrainResult
from scidl.uq import Prediction


class EnsembleMean(nn.Module):
    """The mean prediction of several models (what the ensemble's point metrics score)."""

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(x) for m in self.members]).mean(0)


def split_calibration(data: RunData, fraction: float) -> tuple[RunData, dict[str, torch.Tensor]]:
    """The run's data with the last ``fraction`` of the training samples moved out, and those
    samples (the conformal calibration set)."""
    n = next(iter(data.train.values())).shape[0]
    n_cal = max(1, int(round(fraction * n)))
    if n - n_cal < 1:
        raise ValueError(f"uq.calibration {fraction} leaves no training samples out of {n}")
    train = {k: v[: n - n_cal] for k, v in data.train.items()}
    calibration = {k: v[n - n_cal:] for k, v in data.train.items()}
    return dataclasses.replace(data, train=train), calibration


def member_seed(seed: int, index: int) -> int:
    """Seed of ensemble member ``index`` (member 0 keeps the run's seed)."""
    return seed + 1_000 * index


def _blank_members(cfg: OperatorRunConfig, run: RunConfig, data: RunData) -> list[nn.Module]:
    """Freshly built members (normalisers fitted on the training pairs), to load weights into."""
    inputs, targets = operator.pairs(cfg, data, data.train)
    return [operator.build(cfg, member_seed(run.seed, i), inputs, targets,
                           operator._periodic(data)) for i in range(cfg.uq.members)]


def _splits(cfg: OperatorRunConfig, data: RunData) -> tuple[RunData, dict | None]:
    """The training data and, with ``uq.conformal``, the calibration samples held out of it."""
    return split_calibration(data, cfg.uq.calibration) if cfg.uq.conformal else (data, None)


def _fit_member(name: str, index: int, cfg: OperatorRunConfig, run: RunConfig, data: RunData,
                run_dir: str, resume: bool, quiet: bool, info: DistInfo | None = None):
    """Train one member; returns its CPU state dict and training record (also the body of a
    Ray task, which trains on its worker's CPU: ``info`` None)."""
    member_run = run.model_copy(update={"seed": member_seed(run.seed, index)})
    model, result = operator.fit(f"{name}.m{index}", cfg, member_run, data, Path(run_dir),
                                 info or DistInfo(), resume=resume, quiet=quiet)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return state, result


def fit_members(name: str, cfg: OperatorRunConfig, run: RunConfig, data: RunData,
                run_dir: Path, info: DistInfo, *, resume: bool,
                quiet: bool) -> tuple[list[nn.Module], TrainResult]:
    """Train (or restore) every member; returns them and the training record of member 0 with
    the members' seconds summed."""
    uq = cfg.uq
    common = dict(name=name, cfg=cfg, run=run, data=data, run_dir=str(run_dir), resume=resume,
                  quiet=quiet or uq.backend == "ray")
    tasks = [{"index": i} for i in range(uq.members)]
    if uq.backend == "ray":
        from scidl.uq.parallel import run_tasks

        # the data travel once, through Ray's object store; members write their checkpoints
        # into the run directory, so workers must share its file system (one machine, or a
        # cluster with a shared disk)
        outputs = run_tasks(_fit_member, tasks, common=common, backend="ray",
                            ray_address=uq.ray_address, num_cpus=1)
    else:
        # in process: on the run's device, and under torchrun on every rank (DDP per member)
        outputs = [_fit_member(**common, **task, info=info) for task in tasks]
    members = _blank_members(cfg, run, data)
    for model, (state, _) in zip(members, outputs):
        model.load_state_dict(state)
        model.to(info.device)
    first = outputs[0][1]
    total = dataclasses.replace(first, seconds=sum(r.seconds for _, r in outputs))
    return members, total


def restore_members(name: str, cfg: OperatorRunConfig, run: RunConfig, data: RunData,
                    run_dir: Path) -> tuple[list[nn.Module], TrainResult]:
    """The trained members from their checkpoints, and member 0's training record with the
    members' seconds summed (as :func:`fit_members` returns them)."""
    from scidl.train import load_trained

    members = _blank_members(cfg, run, data)
    results = [load_trained(model, run_dir / "checkpoints" / f"{name}.m{i}.pt")
               for i, model in enumerate(members)]
    return members, dataclasses.replace(results[0], seconds=sum(r.seconds for r in results))


@torch.no_grad()
def predict(members: list[nn.Module], x: torch.Tensor) -> Prediction:
    """The ensemble's predictive distribution at every point of the target fields."""
    for m in members:
        m.eval()
    samples = torch.stack([operator._predict(m, x) for m in members]).double()
    if len(members) == 1:
        return Prediction(mean=samples[0])
    return Prediction.from_samples(samples)


def _spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    from scipy.stats import spearmanr

    value = spearmanr(a.numpy(), b.numpy()).statistic
    return float(value) if math.isfinite(value) else float("nan")


def uq_metrics(cfg: OperatorRunConfig, prediction: Prediction, y: torch.Tensor,
               calibrated: Prediction | None) -> dict:
    """Calibration metrics of the test predictions (docs/metrics.md)."""
    from scidl.metrics import summarize

    y = y.double()
    out: dict = {"members": cfg.uq.members, "coverage_nominal": cfg.uq.coverage}
    if prediction.std is not None:
        out.update(summarize(prediction, y, coverage=cfg.uq.coverage))
        errors = (prediction.mean - y).flatten(1).pow(2).mean(1).sqrt()
        spread = prediction.std.flatten(1).pow(2).mean(1).sqrt()
        out["mean_std"] = float(prediction.std.mean())
        out["spearman_std_error_per_sample"] = _spearman(spread, errors)
        out["spearman_std_error_per_point"] = _spearman(
            prediction.std.flatten(), (prediction.mean - y).abs().flatten())
    if calibrated is not None:
        lower, upper = calibrated.interval(cfg.uq.coverage)
        inside = ((y >= lower) & (y <= upper)).double()
        out["conformal_coverage"] = float(inside.mean())
        out["conformal_coverage_worst_point"] = float(inside.mean(0).min())
        out["conformal_mean_width"] = float((upper - lower).mean())
    return out


def fit_and_evaluate(name: str, cfg: OperatorRunConfig, run: RunConfig, data: RunData,
                     run_dir: Path, info: DistInfo, *, resume: bool, quiet: bool):
    """Train the ensemble (and calibrate it) and evaluate it: an OperatorOutcome whose metrics
    are the ensemble mean's plus ``uq``; its ``uncertainty`` holds the test Prediction."""
    train_data, calibration = _splits(cfg, data)
    members, result = fit_members(name, cfg, run, train_data, run_dir, info, resume=resume,
                                  quiet=quiet)
    return evaluate(members, cfg, data, train_data, calibration, result)


def evaluate(members: list[nn.Module], cfg: OperatorRunConfig, data: RunData,
             train_data: RunData, calibration: dict | None, result: TrainResult | None):
    ensemble = EnsembleMean(members)
    outcome = operator.evaluate(ensemble, cfg, train_data, result)
    prediction = predict(members, outcome.inputs)
    calibrated = None
    if calibration is not None:
        from scidl.uq.conformal import SplitConformal

        x_cal, y_cal = operator.pairs(cfg, data, calibration)
        score = "normalized" if prediction.std is not None else "absolute"
        conformal = SplitConformal(coverage=cfg.uq.coverage, score=score, pointwise=True)
        conformal.calibrate(predict(members, x_cal), y_cal.double())
        calibrated = conformal.predict(prediction)
    outcome.metrics["uq"] = uq_metrics(cfg, prediction, outcome.targets, calibrated)
    outcome.uncertainty, outcome.conformal = prediction, calibrated
    return outcome


def restore_and_evaluate(name: str, cfg: OperatorRunConfig, run: RunConfig, data: RunData,
                         run_dir: Path):
    train_data, calibration = _splits(cfg, data)
    members, result = restore_members(name, cfg, run, train_data, run_dir)
    return evaluate(members, cfg, data, train_data, calibration, result)
