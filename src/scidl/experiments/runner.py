"""``run(config)``: data, models, metrics, figures and report in one run directory."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import scidl
from scidl.errors import ConfigError
from scidl.experiments import forecast, operator, operator_uq, pinn
from scidl.experiments.config import (
    ForecastRunConfig,
    OperatorRunConfig,
    PINNRunConfig,
    RunConfig,
    parse_config,
)
from scidl.experiments.datasets import RunData, load_data, prepare_data
from scidl.experiments.dynamics import run_dynamics
from scidl.experiments.dynamics_config import DynamicsRunConfig
from scidl.experiments.pinn_config import PINNTaskConfig
from scidl.experiments.pinn_study import evaluate_pinn_run, run_pinn
from scidl.experiments.rundir import (
    METRICS,
    TIMINGS,
    open_run_dir,
    read_run_config,
    write_json,
)
from scidl.report import write_report
from scidl.train import init_distributed, load_trained
from scidl.train.distributed import DistInfo, barrier, broadcast_object


def run(config: RunConfig | DynamicsRunConfig, out: str | Path, *, resume: bool = False,
        overwrite: bool = False, quiet: bool = False) -> Path:
    """Carry out a run and return its directory (a ``task: dynamics`` config goes to
    :func:`~scidl.experiments.dynamics.run_dynamics`).

    Writes ``config.yaml`` (resolved), ``metrics.json`` (deterministic for a seed on CPU),
    ``timings.json`` (wall-clock seconds), ``checkpoints/``, ``logs/``, ``figures/`` and
    ``report.html``. If anything fails, a directory this call created is removed again.
    Under ``torchrun`` every rank trains and rank 0 writes.
    """
    if isinstance(config, DynamicsRunConfig):
        return run_dynamics(config, out, resume=resume, overwrite=overwrite, quiet=quiet)
    if isinstance(config, PINNTaskConfig):
        return run_pinn(config, out, resume=resume, overwrite=overwrite, quiet=quiet)
    info = init_distributed(config.device)
    out = Path(out)
    created = False
    try:
        if info.is_main:
            created = open_run_dir(out, config.to_dict(), resume=resume, overwrite=overwrite)
        created = broadcast_object(created, info)
        barrier(info)
        _carry_out(config, out, info, resume=resume, quiet=quiet)
    except BaseException:
        if info.is_main and created:
            shutil.rmtree(out, ignore_errors=True)
        raise
    return out


def _carry_out(config: RunConfig, out: Path, info: DistInfo, *, resume: bool, quiet: bool):
    timings: dict[str, float] = {}
    started = time.perf_counter()
    if info.is_main:
        data = prepare_data(config.data, out, quiet=quiet)
    barrier(info)
    if not info.is_main:
        data = prepare_data(config.data, out, quiet=True)
    timings["data"] = time.perf_counter() - started
    dataset, test_u = _trajectories(config, data)

    outcomes = {}
    for name, cfg in config.models.items():
        clock = time.perf_counter()
        if isinstance(cfg, OperatorRunConfig) and cfg.uq is not None:
            outcome = operator_uq.fit_and_evaluate(name, cfg, config, data, out, info,
                                                   resume=resume, quiet=quiet)
            timings[f"{name}.train"] = time.perf_counter() - clock  # and calibration
            clock = time.perf_counter()
            outcomes[name], result = outcome, outcome.train_result
        elif isinstance(cfg, OperatorRunConfig):
            model, result = operator.fit(name, cfg, config, data, out, info,
                                         resume=resume, quiet=quiet)
            timings[f"{name}.train"] = time.perf_counter() - clock
            clock = time.perf_counter()
            outcomes[name] = operator.evaluate(model, cfg, data, result)
        elif isinstance(cfg, ForecastRunConfig):
            model, result = forecast.fit(name, cfg, config, data, out, info, resume=resume,
                                         quiet=quiet)
            timings[f"{name}.train"] = time.perf_counter() - clock
            clock = time.perf_counter()
            outcomes[name] = forecast.evaluate(model, cfg, config, data, result)
        else:
            model, result = pinn.fit(name, cfg, config, dataset, test_u, out, info,
                                     resume=resume, quiet=quiet)
            timings[f"{name}.train"] = time.perf_counter() - clock
            clock = time.perf_counter()
            outcomes[name] = pinn.evaluate(model, cfg, config, dataset, test_u, result)
        timings[f"{name}.evaluate"] = time.perf_counter() - clock
        # Training time accumulated over interrupted and resumed sessions, from the checkpoint.
        timings[f"{name}.train_total"] = result.seconds
    if info.is_main:
        metrics = collect_metrics(config, data, outcomes)
        write_json(out / METRICS, metrics)
        clock = time.perf_counter()
        # The report shows the time up to its own start; timings.json adds the report itself.
        timings["total_before_report"] = clock - started
        write_report(out, config, data, outcomes, metrics, timings)
        timings["report"] = time.perf_counter() - clock
        timings["total"] = time.perf_counter() - started
        write_json(out / TIMINGS, timings)
    barrier(info)


def _trajectories(config: RunConfig, data: RunData):
    """The trajectory dataset and test trajectories a PINN model needs (None without one)."""
    if not any(isinstance(cfg, PINNRunConfig) for cfg in config.models.values()):
        return data.trajectories, None
    if data.trajectories is None or config.data.test_path is not None:
        raise ConfigError("a pinn model needs trajectories u [n, T, N] from one file or recipe")
    return data.trajectories, data.test["u"]


def collect_metrics(config: RunConfig, data: RunData, outcomes: dict) -> dict:
    """The content of ``metrics.json`` (documented in docs/metrics.md)."""
    first = next(iter(data.train.values()))
    summary = {
        "equation": data.attrs.get("equation", config.data.equation
                                   if config.data.path is None else None),
        "parameters": data.attrs.get("parameters", config.data.parameters
                                     if config.data.path is None else {}),
        "resolution": int(first.shape[-1]) * data.subsample,
        "arrays": {k: list(v.shape[1:]) for k, v in data.train.items()},
        "n_train": config.data.n_train,
        "n_test": config.data.n_test,
    }
    if "u" in data.train and data.has_time("u"):
        summary["times"] = int(data.train["u"].shape[1])
    if data.subsample > 1:
        summary["subsample"] = data.subsample
        summary["training_resolution"] = int(first.shape[-1])
    return {
        "scidl_version": scidl.__version__,
        "seed": config.seed,
        "data": summary,
        "models": {name: outcome.metrics for name, outcome in outcomes.items()},
    }


def evaluate_run(run_dir: str | Path) -> dict:
    """Reload a finished run's checkpoints and recompute its metrics (nothing is written)."""
    run_dir = Path(run_dir)
    config = parse_config(read_run_config(run_dir))
    if isinstance(config, DynamicsRunConfig):
        raise ConfigError(f"{str(run_dir)!r} is a dynamics run; it has no checkpoints to "
                          "evaluate (rerun its config instead)")
    if isinstance(config, PINNTaskConfig):
        return evaluate_pinn_run(config, run_dir)
    data = load_data(config.data, run_dir)
    dataset, test_u = _trajectories(config, data)
    outcomes = {}
    for name, cfg in config.models.items():
        checkpoint = run_dir / "checkpoints" / f"{name}.pt"
        if isinstance(cfg, OperatorRunConfig) and cfg.uq is not None:
            outcomes[name] = operator_uq.restore_and_evaluate(name, cfg, config, data, run_dir)
        elif isinstance(cfg, OperatorRunConfig):
            model, result = operator.restore(name, cfg, config, data, run_dir)
            outcomes[name] = operator.evaluate(model, cfg, data, result)
        elif isinstance(cfg, ForecastRunConfig):
            model, result = forecast.restore(name, cfg, config, data, run_dir)
            outcomes[name] = forecast.evaluate(model, cfg, config, data, result)
        else:
            model = pinn.build(cfg, dataset, config.seed)
            result = load_trained(model, checkpoint)
            outcomes[name] = pinn.evaluate(model, cfg, config, dataset, test_u, result)
    return collect_metrics(config, data, outcomes)

