"""Train and evaluate a neural operator run (``kind: operator``): FNO (1D/2D/3D), DeepONet,
POD-DeepONet, U-Net or ResNet on any field-to-field map of the run's data."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from scidl.data.normalizers import GlobalNormalizer, PointwiseNormalizer
from scidl.errors import ConfigError, DataError, ShapeError
from scidl.experiments.config import ModelConfig, OperatorRunConfig, RunConfig, model_class
from scidl.experiments.datasets import RunData, _read_file
from scidl.experiments.rundir import train_in_run
from scidl.metrics import relative_h1, relative_l2
from scidl.models import count_parameters
from scidl.train import DistInfo, FieldRegression, TrainResult


@dataclass
class OperatorOutcome:
    metrics: dict
    inputs: torch.Tensor  # [n_test, C_in, *S] test inputs at the training resolution
    targets: torch.Tensor  # [n_test, C_out, *S]
    prediction: torch.Tensor  # [n_test, C_out, *S]
    train_result: TrainResult | None
    uncertainty: object = None  # with ``uq:``: the ensemble's scidl.uq.Prediction on the test set
    conformal: object = None  # with ``uq.conformal``: the calibrated Prediction (intervals)


# ---- pairs ------------------------------------------------------------------------------------

def _time_index(index: int | list[int] | str, steps: int) -> list[int]:
    if isinstance(index, str):
        parts = index.split(":")
        if len(parts) != 2:
            raise ConfigError(f"a time-index string is a slice 'start:stop', got {index!r}")
        start, stop = (int(p) if p.strip() else None for p in parts)
        return list(range(steps))[slice(start, stop)]
    indices = [index] if isinstance(index, int) else list(index)
    for i in indices:
        if not -steps <= i < steps:
            raise ConfigError(f"time index {i} is out of range for {steps} saved times")
    return indices


def pairs(cfg: OperatorRunConfig, data: RunData,
          arrays: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Input and target fields ``[n, C, *S]`` (``[n, C, T, *S]`` with ``space_time``)."""
    for name in (cfg.input, cfg.target):
        if name not in arrays:
            raise ConfigError(f"the data have no array {name!r}; they hold {sorted(arrays)}")

    def pick(name, index):
        values = arrays[name]
        if data.has_time(name):
            return values[:, _time_index(index, values.shape[1])]
        return values[:, None]

    x = pick(cfg.input, cfg.input_time_index)
    y = pick(cfg.target, cfg.target_time_index)
    if cfg.rollout:
        if not (data.has_time(cfg.input) and data.has_time(cfg.target)):
            raise ConfigError("rollout needs trajectories for input and target")
        steps = arrays[cfg.input].shape[1]
        history = [i % steps for i in _time_index(cfg.input_time_index, steps)]
        future = [i % steps for i in _time_index(cfg.target_time_index, steps)]
        expected = list(range(history[-1] + 1, history[-1] + 1 + len(future)))
        if history != list(range(history[0], history[-1] + 1)) or future != expected:
            raise ConfigError("rollout needs consecutive input times followed by consecutive "
                              f"target times, got {history} and {future}")
    if cfg.space_time:
        if not data.has_time(cfg.target):
            raise ConfigError(f"space_time needs a target with a time axis; {cfg.target!r} "
                              "has none")
        y = y[:, None]  # [n, 1, T, *S]
        x = x[:, :, None].expand(-1, -1, y.shape[2], *x.shape[2:]).contiguous()
    return x, y


# ---- models -----------------------------------------------------------------------------------

class Rollout(nn.Module):
    """A one-step model ``[B, k, *S] -> [B, 1, *S]`` (the last ``k`` states to the next) rolled
    out autoregressively: ``[B, k, *S] -> [B, steps, *S]``, each prediction fed back."""

    def __init__(self, step: nn.Module, steps: int):
        super().__init__()
        self.step, self.steps = step, steps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        window, out = x, []
        for _ in range(self.steps):
            nxt = self.step(window)
            out.append(nxt)
            window = torch.cat([window[:, 1:], nxt], dim=1)
        return torch.cat(out, dim=1)


class NormalizedOperator(nn.Module):
    """``decode(model(encode(x)))``: a model trained and evaluated in physical units."""

    def __init__(self, model: nn.Module, inputs: nn.Module | None, outputs: nn.Module | None):
        super().__init__()
        self.model, self.inputs, self.outputs = model, inputs, outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.inputs is not None:
            x = self.inputs.encode(x)
        y = self.model(x)
        return self.outputs.decode(y) if self.outputs is not None else y


def build(cfg: OperatorRunConfig, seed: int, x: torch.Tensor, y: torch.Tensor,
          periodic: bool = True) -> nn.Module:
    """The configured model for inputs like ``x`` and targets like ``y`` (``[n, C, *S]``), with
    its normalisers fitted on them (a fresh model: load a checkpoint into it to restore one)."""
    if cfg.rollout:
        return Rollout(build(cfg.model_copy(update={"rollout": False}), seed, x, y[:, :1],
                             periodic), steps=y.shape[1])
    model = build_model(cfg.model, seed, x, y, periodic)
    norms = {"none": None, "global": GlobalNormalizer, "pointwise": PointwiseNormalizer}
    kind = norms[cfg.normalizer]
    if kind is None:
        return model
    return NormalizedOperator(model, kind().fit(x), kind().fit(y))


def build_model(spec: ModelConfig, seed: int, x: torch.Tensor, y: torch.Tensor,
                periodic: bool = True) -> nn.Module:
    """The registered model of ``spec`` for inputs like ``x`` and targets like ``y``
    (``[n, C, *S]``): channels, dimensions and sensor grids filled in, a POD basis fitted."""
    torch.manual_seed(seed)
    params = spec.model_dump()
    name = params.pop("name")
    ndim = x.ndim - 2
    cls = model_class(name)
    if name in ("deeponet", "pod_deeponet"):
        params = {"in_channels": x.shape[1], "grid": tuple(x.shape[2:]), **params}
        if name == "deeponet" and "periodic" not in params:
            params["periodic"] = periodic
    elif name == "fno1d":
        if ndim != 1:
            raise ConfigError(f"fno1d takes 1D fields; these have {ndim} axes (use name: fno)")
        params = {"in_channels": x.shape[1], "out_channels": y.shape[1], **params}
    else:
        params = {"ndim": ndim, "in_channels": x.shape[1], "out_channels": y.shape[1], **params}
    try:
        model = cls(**params)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"model {name!r}: {err}") from None
    if hasattr(model, "fit_basis"):
        model.fit_basis(y)
    return model


def _periodic(data: RunData) -> bool:
    return str(data.attrs.get("boundary", "periodic")).startswith("periodic")


# ---- physics ----------------------------------------------------------------------------------

def data_pde(data: RunData, option: str):
    """The PDE the run's data were solved with (from the file's ``equation`` and
    ``parameters``), for an ``option`` that needs it."""
    from scidl.pdes import make_pde

    if "equation" not in data.attrs:
        raise ConfigError(f"{option} needs the data's equation (a scidl trajectory file or "
                          "recipe)")
    return make_pde(data.attrs["equation"], **(data.attrs.get("parameters") or {}))


def data_galilean_coefficient(data: RunData, option: str) -> float:
    """``a`` of the Galilean boost of the data's equation (derived from its ``rhs``); a
    :class:`ConfigError` naming ``option`` if the equation has no such symmetry."""
    coefficient = data_pde(data, option).galilean_coefficient()
    if not coefficient:
        raise ConfigError(f"{data.attrs['equation']} has no Galilean symmetry u(x - a c t) + c "
                          f"(derived from its right-hand side), so {option} does not apply")
    return coefficient


def pino_term(cfg: OperatorRunConfig, data: RunData):
    """The PINO physics loss on predicted trajectories ``[B, 1, T, *S]``, or None."""
    if cfg.pino is None or cfg.pino.weight == 0:
        return None
    if not cfg.space_time:
        raise ConfigError("pino needs space_time: true (the residual is taken over predicted "
                          "trajectories)")
    from scidl.numerics.grids import PeriodicGrid
    from scidl.pdes import residual_loss

    attrs = data.attrs
    if data.trajectories is None:
        raise ConfigError("pino needs the data's equation and times (a scidl trajectory file)")
    pde = data_pde(data, "pino")
    all_times = data.trajectories.t.to(torch.float64)
    t = all_times[_time_index(cfg.target_time_index, len(all_times))]
    steps = torch.diff(t)
    if len(t) < 5 or not torch.allclose(steps, steps[0].expand_as(steps), rtol=1e-6):
        raise ConfigError("pino needs at least 5 equally spaced target times")
    length = float(attrs.get("domain_length", 1.0))
    weight, dt = cfg.pino.weight, float(steps[0])

    def term(prediction: torch.Tensor) -> torch.Tensor:
        u = prediction[:, 0]
        grid = PeriodicGrid(tuple(u.shape[2:]), (length,) * (u.ndim - 2))
        return weight * residual_loss(pde, u, dt, grid).mean()

    return term


def galilean_boost(cfg: OperatorRunConfig, data: RunData):
    """The :class:`~scidl.numerics.GalileanBoost` of ``training.galilean``, or None; its
    coefficient derived from the data's equation, its time from the input and target times."""
    options = cfg.training.galilean
    if options is None:
        return None
    from scidl.numerics.symmetries import GalileanBoost

    attrs = data.attrs
    if data.trajectories is None:
        raise ConfigError("training.galilean needs the data's times (a scidl trajectory file)")
    coefficient = data_galilean_coefficient(data, "training.galilean")
    times = data.trajectories.t.to(torch.float64)
    start = _time_index(cfg.input_time_index, len(times))
    end = _time_index(cfg.target_time_index, len(times))
    if len(start) != 1 or len(end) != 1 or float(times[end[0]] - times[start[0]]) <= 0:
        raise ConfigError("training.galilean needs one input time before one target time")
    return GalileanBoost(options.max_speed, float(times[end[0]] - times[start[0]]),
                         float(attrs.get("domain_length", 1.0)), coefficient,
                         on_grid=options.on_grid)


# ---- fit and evaluate -------------------------------------------------------------------------

def fit(name: str, cfg: OperatorRunConfig, run: RunConfig, data: RunData, run_dir: Path,
        info: DistInfo, *, resume: bool, quiet: bool):
    inputs, targets = pairs(cfg, data, data.train)
    model = build(cfg, run.seed, inputs, targets, _periodic(data))
    if cfg.init is not None:
        from scidl.train import load_trained

        load_trained(model, cfg.init)
    model = model.to(info.device)
    ndim = targets.ndim - 2
    objective = FieldRegression(inputs, targets, batch_size=cfg.training.batch_size,
                                loss=cfg.training.loss, seed=run.seed, device=info.device,
                                ndim=ndim, physics=pino_term(cfg, data),
                                augment=tuple(cfg.training.augment),
                                galilean=galilean_boost(cfg, data))
    result = train_in_run(name, model, objective, cfg.training, run_dir, seed=run.seed,
                          info=info, resume=resume, quiet=quiet,
                          steps_per_epoch=objective.steps_per_epoch)
    return model, result


def restore(name: str, cfg: OperatorRunConfig, run: RunConfig, data: RunData,
            run_dir: Path) -> tuple[nn.Module, TrainResult]:
    """A trained model from the run directory's checkpoint."""
    from scidl.train import load_trained

    inputs, targets = pairs(cfg, data, data.train)
    model = build(cfg, run.seed, inputs, targets, _periodic(data))
    return model, load_trained(model, run_dir / "checkpoints" / f"{name}.pt")


@torch.no_grad()
def _predict(model: nn.Module, x: torch.Tensor, chunk: int = 50) -> torch.Tensor:
    device = next(model.parameters()).device
    return torch.cat([model(part.to(device)).cpu() for part in x.split(chunk)])


def _errors(model, x, y) -> tuple[torch.Tensor, torch.Tensor]:
    prediction = _predict(model, x)
    return relative_l2(prediction, y), prediction


@torch.no_grad()
def evaluate(model: nn.Module, cfg: OperatorRunConfig, data: RunData,
             result: TrainResult | None) -> OperatorOutcome:
    model.eval()
    test_x, test_y = pairs(cfg, data, {k: data.strided(v, data.subsample)
                                       for k, v in data.test.items()})
    train_x, train_y = pairs(cfg, data, data.train)
    test_errors, prediction = _errors(model, test_x, test_y)
    train_errors, _ = _errors(model, train_x, train_y)
    ndim = test_y.ndim - 2
    h1 = relative_h1(prediction, test_y, ndim=ndim) if ndim <= 3 else None
    metrics = {
        "kind": "operator",
        "model": cfg.model.name,
        "resolution": list(test_y.shape[2:]),
        "test_rel_l2": float(test_errors.mean()),
        "test_rel_l2_median": float(test_errors.median()),
        "test_rel_l2_max": float(test_errors.max()),
        "test_rel_h1": float(h1.mean()) if h1 is not None else None,
        "train_rel_l2": float(train_errors.mean()),
        "test_rel_l2_per_sample": [float(e) for e in test_errors],
        "parameters": count_parameters(model),
    }
    by_resolution = {}
    for stride in cfg.evaluate_subsample:
        x, y = pairs(cfg, data, {k: data.strided(v, stride) for k, v in data.test.items()})
        by_resolution["x".join(str(n) for n in y.shape[2:])] = _resolution_error(model, x, y)
    for label, path in cfg.evaluate_paths.items():
        arrays, _, _ = _read_file(path)
        missing = {cfg.input, cfg.target} - set(arrays)
        if missing:
            raise DataError(f"evaluate_paths[{label!r}] lacks the array(s) {sorted(missing)}")
        x, y = pairs(cfg, data, arrays)
        by_resolution[label] = _resolution_error(model, x, y)
    if by_resolution:
        metrics["test_rel_l2_by_resolution"] = by_resolution
    if result is not None:
        metrics["steps"] = result.steps
        metrics["final_loss"] = result.history[-1]["loss"] if result.history else None
    return OperatorOutcome(metrics, test_x, test_y, prediction, result)


def _resolution_error(model, x, y) -> float | None:
    """Mean test error on another grid; None where the model cannot predict on it (a POD
    basis fixed to the training grid, too few points for an FNO's modes, no nested sensors)."""
    try:
        errors, _ = _errors(model, x, y)
    except ShapeError:
        return None
    value = float(errors.mean())
    return value if math.isfinite(value) else None
