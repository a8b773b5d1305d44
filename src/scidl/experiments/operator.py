"""Train and evaluate a neural operator run (``kind: operator``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from scidl.experiments.config import OperatorRunConfig, RunConfig
from scidl.metrics import relative_l2
from scidl.models import build_model, count_parameters
from scidl.train import DistInfo, FieldRegression, Stage, TrainOptions, TrainResult, train


@dataclass
class OperatorOutcome:
    metrics: dict
    prediction: torch.Tensor  # [n_test, N] at the target time
    train_result: TrainResult | None


def _pairs(u: torch.Tensor, cfg: OperatorRunConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """``[B, T, N]`` trajectories -> input and target fields ``[B, 1, N]``."""
    return u[:, cfg.input_time_index, None], u[:, cfg.target_time_index, None]


def build(cfg: OperatorRunConfig, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    params = cfg.model.model_dump()
    return build_model(params.pop("name"), in_channels=1, out_channels=1, **params)


def stages(cfg) -> list[Stage]:
    return [Stage(**s.model_dump()) for s in cfg.training.stages]


def fit(name: str, cfg: OperatorRunConfig, run: RunConfig, train_u: torch.Tensor,
        run_dir: Path, info: DistInfo, *, resume: bool, quiet: bool):
    model = build(cfg, run.seed).to(info.device)
    inputs, targets = _pairs(train_u, cfg)
    objective = FieldRegression(inputs, targets, batch_size=cfg.training.batch_size,
                                loss=cfg.training.loss, seed=run.seed, device=info.device)
    result = train(
        model, objective, stages(cfg),
        checkpoint=run_dir / "checkpoints" / f"{name}.pt", resume=resume, seed=run.seed,
        dist_info=info, log_file=run_dir / "logs" / f"{name}.jsonl",
        options=TrainOptions(name=name, log_every=cfg.training.log_every,
                             checkpoint_every=cfg.training.checkpoint_every, progress=not quiet),
    )
    return model, result


@torch.no_grad()
def evaluate(model: torch.nn.Module, cfg: OperatorRunConfig, train_u: torch.Tensor,
             test_u: torch.Tensor, result: TrainResult | None) -> OperatorOutcome:
    model.eval()
    device = next(model.parameters()).device

    def errors(u):
        inputs, targets = _pairs(u, cfg)
        prediction = torch.cat([model(chunk.to(device)).cpu() for chunk in inputs.split(100)])
        return relative_l2(prediction, targets), prediction[:, 0]

    test_errors, prediction = errors(test_u)
    train_errors, _ = errors(train_u)
    metrics = {
        "kind": "operator",
        "test_rel_l2": float(test_errors.mean()),
        "test_rel_l2_median": float(test_errors.median()),
        "test_rel_l2_max": float(test_errors.max()),
        "train_rel_l2": float(train_errors.mean()),
        "test_rel_l2_per_sample": [float(e) for e in test_errors],
        "parameters": count_parameters(model),
    }
    if result is not None:
        metrics["steps"] = result.steps
        metrics["final_loss"] = result.history[-1]["loss"] if result.history else None
    return OperatorOutcome(metrics, prediction, result)
