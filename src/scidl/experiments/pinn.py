"""Train and evaluate a PINN run (``kind: pinn``) on one test trajectory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from scidl.data import FieldDataset
from scidl.experiments.config import PINNRunConfig, RunConfig
from scidl.experiments.rundir import train_in_run
from scidl.metrics import relative_l2
from scidl.models import MLP, count_parameters
from scidl.pdes import make_pde
from scidl.pinn import (
    PINN,
    CoordinateFeatures,
    FieldNetwork,
    Interval,
    Observations,
    PeriodicBC,
    PINNProblem,
    SpaceTime,
    TimeDomain,
)
from scidl.train import DistInfo, TrainResult


@dataclass
class PINNOutcome:
    metrics: dict
    prediction: torch.Tensor  # [T, N] on the dataset's grid and times
    train_result: TrainResult | None


def build(cfg: PINNRunConfig, dataset: FieldDataset, seed: int) -> PINN:
    torch.manual_seed(seed)
    net = cfg.network
    length = float(dataset.attrs.get("domain_length", 1.0))
    periodic = {0: length} if cfg.boundary == "hard-periodic" else None
    features = CoordinateFeatures([0.0, 0.0], [length, float(dataset.t[-1])], periodic=periodic,
                                  periodic_modes=net.periodic_modes)
    body = MLP(features.out_features, 1, width=net.width, hidden_layers=net.hidden_layers,
               activation=net.activation)
    n_terms = 1 if cfg.boundary == "hard-periodic" else 2
    return PINN(FieldNetwork(body, features), n_terms=n_terms, dim=2)


def problem(cfg: PINNRunConfig, run: RunConfig, dataset: FieldDataset, test_u: torch.Tensor,
            device) -> PINNProblem:
    params = dataset.attrs.get("parameters") or run.data.parameters
    equation = dataset.attrs.get("equation", run.data.equation)
    length = float(dataset.attrs.get("domain_length", 1.0))
    w = cfg.weights
    x0 = dataset.x.to(torch.float64)
    initial = Observations(points=torch.stack([x0, torch.zeros_like(x0)], 1),
                           values=test_u[cfg.sample, 0].to(torch.float64), name="initial",
                           weight=w.initial)
    conditions = [initial]
    if cfg.boundary == "soft-periodic":
        conditions.append(PeriodicBC(dim=0, n=cfg.boundary_points, weight=w.boundary,
                                     method="uniform", name="boundary"))
    domain = SpaceTime(Interval(0.0, length), TimeDomain(0.0, float(dataset.t[-1])))
    return PINNProblem(
        make_pde(equation, **params), domain, conditions, collocation=cfg.collocation,
        method="uniform", resample_every=cfg.resample_every, residual_weight=w.residual,
        resample_until=sum(s.steps for s in cfg.training.to_stages() if s.optimizer != "lbfgs"),
        seed=run.seed, device=device,
    )


def fit(name: str, cfg: PINNRunConfig, run: RunConfig, dataset: FieldDataset,
        test_u: torch.Tensor, run_dir: Path, info: DistInfo, *, resume: bool, quiet: bool):
    model = build(cfg, dataset, run.seed).to(info.device)
    objective = problem(cfg, run, dataset, test_u, info.device)
    result = train_in_run(name, model, objective, cfg.training, run_dir, seed=run.seed,
                          info=info, resume=resume, quiet=quiet)
    return model, result


def evaluate(model: torch.nn.Module, cfg: PINNRunConfig, run: RunConfig, dataset: FieldDataset,
             test_u: torch.Tensor, result: TrainResult | None) -> PINNOutcome:
    model.eval()
    device = next(model.parameters()).device
    objective = problem(cfg, run, dataset, test_u, device)
    reference = test_u[cfg.sample]  # [T, N]
    tt, xx = torch.meshgrid(dataset.t, dataset.x, indexing="ij")
    X = torch.stack([xx.reshape(-1), tt.reshape(-1)], 1).to(device, objective.dtype)
    prediction = objective.predict(model, X).cpu().reshape(tt.shape)
    residual = objective.residual(model, X)
    metrics = {
        "kind": "pinn",
        "sample": cfg.sample,
        "rel_l2": float(relative_l2(prediction[None], reference[None])[0]),
        "rel_l2_final": float(relative_l2(prediction[None, -1], reference[None, -1])[0]),
        "rel_l2_initial": float(relative_l2(prediction[None, 0], reference[None, 0])[0]),
        "residual_rms": float(residual.detach().pow(2).mean().sqrt()),
        "parameters": count_parameters(model),
    }
    if result is not None:
        metrics["steps"] = result.steps
        metrics["final_loss"] = result.history[-1]["loss"] if result.history else None
        metrics["optimizer_iterations"] = result.optimizer_iterations
        if result.stalled:
            metrics["lbfgs_stalled_at"] = result.stalled
    return PINNOutcome(metrics, prediction, result)
