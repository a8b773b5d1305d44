"""``kind: forecast`` runs: a learned time stepper trained on the run's trajectories and rolled
out over the test trajectories (scidl.forecast), with its scores by lead time."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from scidl.errors import ConfigError
from scidl.experiments.config import ForecastRunConfig, RunConfig
from scidl.experiments.datasets import RunData
from scidl.experiments.operator import build_model, data_galilean_coefficient
from scidl.experiments.rundir import train_in_run
from scidl.forecast import (
    AutoregressiveObjective,
    ensemble_scores,
    evaluate_rollout,
    gaussian_perturbation,
    increment_scale,
    mean_spectrum,
    mean_square,
    mean_value,
    perturbed_ensemble,
    rollout,
    spectrum_relative_error,
)
from scidl.models import count_parameters
from scidl.train import DistInfo, TrainResult, load_trained


@dataclass
class ForecastOutcome:
    metrics: dict
    curves: dict  # name -> [T] tensor by lead (rmse, pearson, acc, spectrum_error, crps, ...)
    reference: torch.Tensor  # test trajectory 0, [T, C, *S] (leads 1..T)
    prediction: torch.Tensor  # its rollout, [T, C, *S]
    invariants: dict  # name -> [N, T + 1] series of the test rollouts
    spectra: dict | None  # reference / late-rollout climatological spectra
    dt: float
    length: float
    train_result: TrainResult | None


def trajectories(data: RunData, arrays: dict[str, torch.Tensor],
                 skip: int = 0) -> torch.Tensor:
    """The run's ``u`` as ``[N, T, C, *S]`` (a channel axis added to scalar fields), without
    its first ``skip`` frames."""
    if "u" not in arrays or not data.has_time("u"):
        raise ConfigError("a forecast model needs trajectories u [n, T, *S] (a recipe or a "
                          "scidl trajectory file)")
    u = arrays["u"]
    if u.shape[1] - skip < 3:
        raise ConfigError(f"skip_frames = {skip} leaves {u.shape[1] - skip} of {u.shape[1]} "
                          "frames; a forecast model needs at least 3")
    u = u[:, skip:]
    return u.unsqueeze(2) if u.ndim == data.spatial_dims + 2 else u


def frame_step(data: RunData) -> float:
    """The time between saved frames (they must be equally spaced)."""
    if data.trajectories is None:
        raise ConfigError("a forecast model needs the trajectories' times (a recipe or a scidl "
                          "trajectory file)")
    times = data.trajectories.t.to(torch.float64)
    steps = torch.diff(times)
    if len(times) < 3:
        raise ConfigError("a forecast model needs at least 3 saved times")
    mean = float(times[-1] - times[0]) / (len(times) - 1)
    if float((steps - mean).abs().max()) > 1e-4 * mean:  # times may be stored in float32
        raise ConfigError("a forecast model needs equally spaced saved times")
    return mean


def _galilean(cfg: ForecastRunConfig, data: RunData, dt: float, u: torch.Tensor):
    if cfg.scheme.galilean is None:
        return None
    from scidl.numerics.symmetries import GalileanBoost

    coefficient = data_galilean_coefficient(data, "scheme.galilean")
    if u.ndim != 4 or u.shape[2] != 1:
        raise ConfigError("scheme.galilean needs a scalar 1D field u [n, T, X]")
    return GalileanBoost(cfg.scheme.galilean, dt, float(data.attrs.get("domain_length", 1.0)),
                         coefficient)


def _model(cfg: ForecastRunConfig, seed: int, u: torch.Tensor) -> nn.Module:
    return build_model(cfg.model, seed, u[:2, 0], u[:2, 1])


def _delta(cfg: ForecastRunConfig, u: torch.Tensor) -> float:
    return increment_scale(u) if cfg.scheme.residual else 1.0


def fit(name: str, cfg: ForecastRunConfig, run: RunConfig, data: RunData, run_dir: Path,
        info: DistInfo, *, resume: bool, quiet: bool) -> tuple[nn.Module, TrainResult]:
    train_u = trajectories(data, data.train, cfg.skip_frames)
    dt = frame_step(data)
    model = _model(cfg, run.seed, train_u).to(info.device)
    s = cfg.scheme
    unroll = 1 if s.mode == "one-step" else s.unroll
    objective = AutoregressiveObjective(
        train_u, batch_size=cfg.training.batch_size, mode=s.mode, unroll=unroll,
        random_unroll=s.random_unroll, noise_std=s.noise_std, residual=s.residual,
        delta_scale=_delta(cfg, train_u), augment=tuple(s.augment),
        galilean=_galilean(cfg, data, dt, train_u), seed=run.seed, device=info.device)
    windows = train_u.shape[0] * (train_u.shape[1] - unroll)
    steps_per_epoch = max(1, windows // cfg.training.batch_size)
    result = train_in_run(name, model, objective, cfg.training, run_dir, seed=run.seed,
                          info=info, resume=resume, quiet=quiet,
                          steps_per_epoch=steps_per_epoch)
    return model, result


def restore(name: str, cfg: ForecastRunConfig, run: RunConfig, data: RunData,
            run_dir: Path) -> tuple[nn.Module, TrainResult]:
    model = _model(cfg, run.seed, trajectories(data, data.train, cfg.skip_frames))
    return model, load_trained(model, run_dir / "checkpoints" / f"{name}.pt")


def _values(x: torch.Tensor) -> list[float]:
    return [round(float(v), 6) for v in x]


@torch.no_grad()
def evaluate(model: nn.Module, cfg: ForecastRunConfig, run: RunConfig, data: RunData,
             result: TrainResult | None) -> ForecastOutcome:
    model = model.cpu().eval()
    train_u = trajectories(data, data.train, cfg.skip_frames)
    test_u = trajectories(data, {k: data.strided(v, data.subsample)
                                 for k, v in data.test.items()}, cfg.skip_frames)
    dt, delta = frame_step(data), _delta(cfg, train_u)
    length = float(data.attrs.get("domain_length", 1.0))
    kw = dict(residual=cfg.scheme.residual, delta_scale=delta)
    channel = 0 if test_u.shape[2] > 1 else None
    monitor = {"mean": mean_value, "mean_square": mean_square}
    roll = rollout(model, test_u[:, 0], test_u.shape[1] - 1, monitor=monitor, batch_size=64,
                   **kw)
    climatology = train_u.mean(dim=(0, 1))[channel or 0]
    scores = evaluate_rollout(roll.trajectory, test_u[:, 1:], dt, climatology=climatology,
                              threshold=cfg.threshold, channel=channel,
                              invariants=roll.invariants)
    hct = scores["high_correlation_time"]
    curves = {k: scores[k] for k in ("rmse", "pearson", "acc", "spectrum_error")}
    metrics = {
        "kind": "forecast",
        "model": cfg.model.name,
        "scheme": cfg.scheme.mode,
        "frame_dt": dt,
        "leads": int(test_u.shape[1] - 1),
        "scored_channel": channel,
        "threshold": cfg.threshold,
        "high_correlation_time_mean": float(hct.mean()),
        "high_correlation_time_median": float(hct.median()),
        "high_correlation_time_standard_error": (float(hct.std() / hct.numel() ** 0.5)
                                                 if hct.numel() > 1 else None),
        "rmse_first": float(scores["rmse"][0]),
        "rmse_last": float(scores["rmse"][-1]),
        "acc_last": float(scores["acc"][-1]),
        "rmse_by_lead": _values(scores["rmse"]),
        "pearson_by_lead": _values(scores["pearson"]),
        "acc_by_lead": _values(scores["acc"]),
        # the spatial mean is often ~0 (a relative drift would be meaningless): absolute
        "max_abs_drift_of_mean": float((roll.invariants["mean"]
                                        - roll.invariants["mean"][:, :1]).abs().max()),
        "max_relative_drift_of_mean_square": float(scores["max_drift/mean_square"]),
        "parameters": count_parameters(model),
    }
    spectra = None
    if cfg.long_steps:
        starts = test_u[:cfg.long_trajectories, 0]
        late = max(1, cfg.long_steps // 5)
        long = rollout(model, starts, cfg.long_steps, monitor=monitor, keep_last=late, **kw)
        finite = long.finite and bool(torch.isfinite(long.trajectory).all())
        reference_spectrum = mean_spectrum(test_u, channel)
        energy = float(test_u.square().mean())
        entry = {"steps": cfg.long_steps, "trajectories": int(starts.shape[0]),
                 "finite": finite, "late_steps": late}
        if finite:
            late_spectrum = mean_spectrum(long.trajectory, channel)
            spectra = {"test data": reference_spectrum,
                       f"{cfg.long_steps}-step rollout, last {late} steps": late_spectrum}
            entry.update(
                late_spectrum_relative_l1_error=spectrum_relative_error(late_spectrum,
                                                                        reference_spectrum),
                late_mean_square_over_test=float(long.trajectory.square().mean()) / energy,
                max_abs_drift_of_mean=float((long.invariants["mean"]
                                             - long.invariants["mean"][:, :1]).abs().max()))
        metrics["long_rollout"] = entry
    if cfg.ensemble is not None:
        e = cfg.ensemble
        u0, reference = test_u[:e.trajectories, 0], test_u[:e.trajectories, 1:]
        members = perturbed_ensemble(model, u0, reference.shape[1], e.members,
                                     perturbation=gaussian_perturbation(e.std, e.smoothing),
                                     seed=run.seed + 1, batch_size=64, **kw)
        ens = ensemble_scores(members, reference, channel=channel)
        curves.update(crps=ens["crps"], spread_skill=ens["spread_skill"])
        metrics["ensemble"] = {
            "members": e.members, "trajectories": int(u0.shape[0]),
            "crps_last": float(ens["crps"][-1]),
            "spread_skill_last": float(ens["spread_skill"][-1]),
            "crps_by_lead": _values(ens["crps"]),
            "spread_skill_by_lead": _values(ens["spread_skill"]),
        }
    if result is not None:
        metrics["steps"] = result.steps
        metrics["final_loss"] = result.history[-1]["loss"] if result.history else None
    return ForecastOutcome(metrics, curves, test_u[0, 1:], roll.trajectory[0], roll.invariants,
                           spectra, dt, length, result)


__all__ = ["ForecastOutcome", "evaluate", "fit", "frame_step", "restore", "trajectories"]
