"""``task: pinn`` runs: a PDE problem from a config, solved (or inverted) by a PINN.

Builds the problem (:func:`build`), trains it through the one training loop (checkpoints, resume,
logs), scores it against the reference, and writes ``metrics.json``, ``figures/`` and
``report.html``: the predicted field, the reference and the error, the loss terms over training
and, for an inverse problem, the parameter estimates.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch

import scidl
from scidl.data.pinn_reference import load_pinn_reference
from scidl.errors import ConfigError
from scidl.experiments.pinn_config import PINNTaskConfig
from scidl.experiments.rundir import METRICS, TIMINGS, run_directory, write_json
from scidl.models import count_parameters
from scidl.models.mlp import MLP, SIREN
from scidl.pdes import PDES, Poisson
from scidl.pinn import (
    AdaptiveSampling,
    Balancing,
    CoordinateFeatures,
    DirichletBC,
    FieldNetwork,
    HardConstraint,
    InitialCondition,
    NeumannBC,
    Observations,
    PeriodicBC,
    PINNProblem,
    Refinement,
    SpaceTime,
    TimeDomain,
    Unknown,
)
from scidl.pinn import geometry as geometries
from scidl.pinn.expressions import compile_expression
from scidl.report import plots
from scidl.report.study import Section, render_study_report
from scidl.train import TrainOptions, init_distributed, load_trained, train

EQUATIONS = {**PDES, "poisson": Poisson}


@dataclass
class Built:
    problem: PINNProblem
    model: torch.nn.Module
    reference: tuple[torch.Tensor, torch.Tensor] | None  # points [P, D], values [P, C]
    grid: dict | None  # how the reference points are laid out, for figures
    truth: dict[str, float]


def _geometry(cfg):
    g = cfg.domain.geometry
    if g.type == "interval":
        return geometries.Interval(float(g.lo), float(g.hi))
    if g.type == "rectangle":
        return geometries.Rectangle(g.lo, g.hi)
    if g.type == "box":
        return geometries.Box(g.lo, g.hi)
    if g.type == "disk":
        return geometries.Disk(g.center, g.radius)
    return geometries.Polygon(g.vertices)


def _formulas(value, names, channels: int):
    """One formula, or a list of one per channel, as a function ``X -> [P, C]``."""
    if isinstance(value, list):
        if len(value) != channels:
            raise ConfigError(f"a value list needs one formula per channel ({channels}), got "
                              f"{len(value)}")
        parts = [compile_expression(v, names) for v in value]
        return lambda X: torch.cat([p(X) for p in parts], dim=1)
    return compile_expression(value, names)


def _pde(cfg, names):
    problem = cfg.problem
    if problem.equation not in EQUATIONS:
        raise ConfigError(f"unknown equation {problem.equation!r}; known: "
                          f"{', '.join(sorted(EQUATIONS))}")
    spatial = [n for n in names if n != "t"]
    params = {}
    for key, value in problem.parameters.items():
        if isinstance(value, str):
            formula = compile_expression(value, spatial)
            params[key] = (lambda f: lambda *coords: f(
                torch.cat([c.reshape(-1, 1) for c in coords], 1)).reshape(coords[0].shape))(
                formula)
        else:
            params[key] = float(value)
    try:
        return EQUATIONS[problem.equation](**params)
    except TypeError as error:
        raise ConfigError(f"problem.parameters do not fit {problem.equation}: {error}") from None


def _reference(cfg, domain, names, channels):
    ref = cfg.problem.reference
    if ref is None:
        return None, None
    if ref.dataset is not None:
        grid = load_pinn_reference(ref.dataset, ref.path)
        X, u = grid.points()
        return (X, u[:, None]), {"kind": "space-time", "x": grid.x, "t": grid.t}
    lo, hi = domain.bounds()
    axes = [torch.linspace(float(lo[i]), float(hi[i]), ref.grid.get(n, 64), dtype=torch.float64)
            for i, n in enumerate(names)]
    mesh = torch.meshgrid(*axes, indexing="ij")
    X = torch.stack([m.reshape(-1) for m in mesh], 1)
    inside = domain.inside(X) if not isinstance(domain, SpaceTime) else \
        domain.geometry.inside(X[:, :-1])
    X = X[inside]
    u = _formulas(ref.formula, names, channels)(X)
    layout = {"kind": "grid", "axes": dict(zip(names, axes)), "inside": inside}
    return (X, u), layout


def build(cfg: PINNTaskConfig, device="cpu") -> Built:
    """The problem, the network and the reference of a ``task: pinn`` config."""
    p = cfg.problem
    geometry = _geometry(p)
    domain = (SpaceTime(geometry, TimeDomain(*p.domain.time)) if p.domain.time is not None
              else geometry)
    names = tuple(domain.names)
    pde = _pde(cfg, names)
    channels = int(getattr(pde, "channels", 1))
    dtype = torch.float64 if cfg.dtype == "float64" else torch.float32
    conditions = []
    for i, c in enumerate(p.conditions):
        common = dict(n=c.points, weight=c.weight, method=c.method,
                      channels=tuple(c.channels) if c.channels is not None else None)
        name = c.name or (c.type if sum(d.type == c.type for d in p.conditions) == 1
                          else f"{c.type}_{i}")
        value = _formulas(c.value, names, len(c.channels) if c.channels else channels)
        where = None
        if c.where is not None:
            test = compile_expression(c.where, names)
            where = lambda X, test=test: test(X)[:, 0] > 0  # noqa: E731
        if c.type == "initial":
            if p.domain.time is None:
                raise ConfigError("an initial condition needs problem.domain.time")
            conditions.append(InitialCondition(value=value, name=name, **common))
        elif c.type == "dirichlet":
            conditions.append(DirichletBC(value=value, where=where, name=name, **common))
        elif c.type == "neumann":
            conditions.append(NeumannBC(value=value, where=where, name=name, **common))
        else:
            if c.dim not in names:
                raise ConfigError(f"periodic dim {c.dim!r} is not one of {names}")
            conditions.append(PeriodicBC(dim=names.index(c.dim), name=name, **common))
    reference, layout = _reference(cfg, domain, names, channels)
    truth = {k: u.truth for k, u in p.unknowns.items() if u.truth is not None}
    if p.observations is not None:
        o = p.observations
        X, u = reference
        generator = torch.Generator().manual_seed(o.seed)
        index = torch.randperm(len(X), generator=generator)[:o.points]
        values = u[index].clone()
        if o.noise > 0:
            values = values + o.noise * values.std() * torch.randn(values.shape,
                                                                   generator=generator,
                                                                   dtype=values.dtype)
        conditions.append(Observations(points=X[index], values=values, weight=o.weight))
    stages = cfg.training.to_stages()
    # where the last first-order stage ends: point changes stop there, since L-BFGS needs a
    # fixed objective (for Adam then L-BFGS, the Adam steps; for rounds of Adam and L-BFGS,
    # the start of the last L-BFGS round)
    ends = [sum(s.steps for s in stages[:i + 1]) for i in range(len(stages))]
    adam_steps = max((end for end, s in zip(ends, stages) if s.optimizer != "lbfgs"), default=0)
    total = sum(s.steps for s in stages)
    compile = cfg.compile == "on" or (cfg.compile == "auto" and total >= 2000
                                      and cfg.derivatives == "forward")
    problem = PINNProblem(
        pde, domain, conditions, collocation=cfg.collocation.points,
        method=cfg.collocation.method, resample_every=cfg.collocation.resample_every,
        resample_until=adam_steps or None,
        unknowns={k: Unknown(u.initial, u.positive) for k, u in p.unknowns.items()},
        derivatives=cfg.derivatives, compile=compile, channel_weights=cfg.channel_weights,
        refinement=Refinement(**{**cfg.refinement.model_dump(),
                                 "until": cfg.refinement.until or adam_steps or None})
        if cfg.refinement else None,
        adaptive_sampling=AdaptiveSampling(**{**cfg.adaptive_sampling.model_dump(),
                                              "until": cfg.adaptive_sampling.until
                                              or adam_steps or None})
        if cfg.adaptive_sampling else None,
        balancing=Balancing(**{**cfg.balancing.model_dump(),
                               "until": cfg.balancing.until or adam_steps or None})
        if cfg.balancing else None,
        seed=cfg.seed, device=device, dtype=dtype,
    )
    lo, hi = domain.bounds()
    periodic = {}
    for n in cfg.network.periodic:
        if n not in names:
            raise ConfigError(f"network.periodic names {n!r}, not one of {names}")
        i = names.index(n)
        periodic[i] = float(hi[i] - lo[i])
    features = CoordinateFeatures(lo.tolist(), hi.tolist(), periodic=periodic,
                                  periodic_modes=cfg.network.periodic_modes,
                                  fourier_features=cfg.network.fourier_features,
                                  fourier_sigma=cfg.network.fourier_sigma, seed=cfg.seed)
    torch.manual_seed(cfg.seed)
    n = cfg.network
    if n.kind == "siren":
        body = SIREN(features.out_features, channels, n.width, n.hidden_layers, n.omega_0)
    else:
        body = MLP(features.out_features, channels, n.width, n.hidden_layers, n.activation)
    constraint = None
    if p.hard is not None:
        offset = _formulas(p.hard.offset, names, channels) if p.hard.offset is not None else None
        if p.hard.factor == "distance":
            t0 = p.domain.time[0] if p.domain.time is not None else None
            spatial = geometry

            def factor(X, spatial=spatial, t0=t0):
                dist = spatial.smooth_distance(X[:, :spatial.dim])[:, None]
                return dist * (X[:, -1:] - t0) if t0 is not None else dist
        else:
            factor = compile_expression(p.hard.factor, names)
        constraint = HardConstraint(offset, factor)
    net = FieldNetwork(body, features, constraint)
    model = problem.model(net).to(device=device, dtype=dtype)
    model.unknowns.to(torch.float64)
    return Built(problem, model, reference, layout, truth)


def evaluate(built: Built, result) -> dict:
    """Scores of a trained PINN against its reference (what goes in ``metrics.json``)."""
    problem, model = built.problem, built.model
    metrics = {"kind": "pinn", "equation": problem.pde.name,
               "parameters": count_parameters(model.net)}
    if built.reference is not None:
        X, u = built.reference
        prediction = problem.predict(model, X).double().cpu()
        u = u.double()
        channels = min(prediction.shape[1], u.shape[1])
        err = prediction[:, :channels] - u[:, :channels]
        metrics["rel_l2"] = float(err.norm() / u[:, :channels].norm())
        metrics["max_abs_error"] = float(err.abs().max())
        if channels > 1:
            metrics["rel_l2_by_channel"] = [float(err[:, c].norm() / u[:, c].norm())
                                            for c in range(channels)]
        residual = torch.cat([problem.residual(model, part.to(problem.device, problem.dtype))
                              .detach().cpu() for part in X.split(8192)])
        metrics["residual_rms"] = float(residual.double().pow(2).mean().sqrt())
    if model.unknowns:
        metrics["unknowns"] = {}
        for name, estimate in model.estimates().items():
            entry = {"estimate": estimate}
            if name in built.truth:
                entry["true"] = built.truth[name]
                entry["rel_error"] = abs(estimate - built.truth[name]) / abs(built.truth[name])
            metrics["unknowns"][name] = entry
    if result is not None:
        metrics["steps"] = result.steps
        metrics["optimizer_iterations"] = result.optimizer_iterations
        if result.stalled:  # L-BFGS stages that ended early: no step could decrease the loss
            metrics["lbfgs_stalled_at"] = result.stalled
        metrics["final_loss"] = result.history[-1]["loss"] if result.history else None
        metrics["train_seconds"] = result.seconds
    metrics["derivatives"] = problem.derivatives_for(model)
    metrics["compiled"] = bool(problem.compile)
    return metrics


def run_pinn(config: PINNTaskConfig, out: str | Path, *, resume: bool = False,
             overwrite: bool = False, quiet: bool = False) -> Path:
    """Carry out a ``task: pinn`` config into the run directory ``out`` and return it."""
    out = Path(out)
    info = init_distributed(config.device)
    with run_directory(out, config.to_dict(), resume=resume, overwrite=overwrite):
        started = time.perf_counter()
        built = build(config, info.device)
        result = train(
            built.model, built.problem, config.training.to_stages(),
            checkpoint=out / "checkpoints" / "pinn.pt", resume=resume, seed=config.seed,
            dist_info=info, log_file=out / "logs" / "pinn.jsonl",
            options=TrainOptions(name=config.name, log_every=config.training.log_every,
                                 checkpoint_every=config.training.checkpoint_every,
                                 progress=not quiet),
        )
        timings = {"train": time.perf_counter() - started}
        metrics = {"scidl_version": scidl.__version__, "seed": config.seed,
                   "pinn": evaluate(built, result)}
        write_json(out / METRICS, metrics)
        clock = time.perf_counter()
        sections = report_sections(config, built, result, metrics["pinn"], out / "figures")
        timings["total_before_report"] = clock - started
        render_study_report(out, name=config.name, seed=config.seed, sections=sections,
                            metrics=metrics, timings=timings, config=config.to_dict())
        timings["total"] = time.perf_counter() - started
        write_json(out / TIMINGS, timings)
    return out


def evaluate_pinn_run(config: PINNTaskConfig, run_dir: Path) -> dict:
    """Reload a finished ``task: pinn`` run's checkpoint and recompute its metrics."""
    built = build(config)
    result = load_trained(built.model, run_dir / "checkpoints" / "pinn.pt")
    return {"scidl_version": scidl.__version__, "seed": config.seed,
            "pinn": evaluate(built, result)}


def report_sections(config, built: Built, result, metrics: dict, figures: Path) -> list[Section]:
    """Field, error, loss terms and parameter estimates, as report sections."""
    sections = []
    problem, model = built.problem, built.model
    rows = [["relative L2", f"{metrics['rel_l2']:.3e}" if "rel_l2" in metrics else "-"],
            ["max abs error", f"{metrics.get('max_abs_error', float('nan')):.3e}"],
            ["residual RMS", f"{metrics.get('residual_rms', float('nan')):.3e}"],
            ["steps", str(metrics.get("steps"))],
            ["optimizer iterations", str(metrics.get("optimizer_iterations"))
             + (f" (L-BFGS stalled at step {metrics['lbfgs_stalled_at']})"
                if metrics.get("lbfgs_stalled_at") else "")],
            ["derivatives", f"{metrics['derivatives']}" + (" (compiled)" if metrics["compiled"]
                                                         else "")]]
    fig = []
    if built.reference is not None:
        fig.append(("Reference, prediction and error", _field_figure(built, figures)))
    sections.append(Section(f"{config.problem.equation}: the solution", [
        f"A PINN of {metrics['parameters']:,} parameters trained on the residual of "
        f"scidl's {type(problem.pde).__name__} class (the same rhs its solvers use)."],
        ["metric", "value"], rows, fig))
    if result is not None and result.history:
        sections.append(Section("Training", ["Loss terms (mean squares) against step; dotted "
                                             "lines mark optimiser stages."], figures=[
            ("Loss terms", plots.loss_curves({config.name: _loss_history(result.history,
                                                                        model)},
                                             figures / "loss_terms.png"))]))
    if model.unknowns and result is not None and result.history:
        series = {k: [r[k] for r in result.history if k in r] for k in model.unknowns}
        truth = {k: built.truth.get(k, series[k][-1]) for k in series}
        rows = [[k, f"{v['estimate']:.6g}", f"{v.get('true', float('nan')):.6g}",
                 f"{100 * v['rel_error']:.3f}%" if "rel_error" in v else "-"]
                for k, v in metrics["unknowns"].items()]
        sections.append(Section("Inverse problem: parameter estimates", [
            "Each unknown against training step (logged every "
            f"{config.training.log_every} steps), relative to the true value."],
            ["parameter", "estimate", "true", "error"], rows,
            [("Estimates", plots.parameter_estimates(series, truth, "unknown parameters",
                                                     figures / "unknowns.png"))]))
    return sections


def _loss_history(history: list[dict], model) -> list[dict]:
    drop = set(model.unknowns)
    return [{k: v for k, v in r.items() if k not in drop} for r in history]


def _field_figure(built: Built, figures: Path) -> Path:
    X, u = built.reference
    prediction = built.problem.predict(built.model, X).double().cpu()[:, 0]
    u = u[:, 0].double()
    layout = built.grid
    path = figures / "solution.png"
    if layout["kind"] == "space-time":
        x, t = layout["x"], layout["t"]
        shape = (len(x), len(t))
        return plots.space_time_fields(x, t, u.reshape(shape).t(),
                                       prediction.reshape(shape).t(),
                                       f"rel. L2 {float((prediction - u).norm() / u.norm()):.2e}",
                                       path)
    names = list(layout["axes"])
    if len(names) == 2:
        return plots.scattered_fields(X[:, 0], X[:, 1], u, prediction, names, path)
    # higher dimensions: the last slice of the last axis
    last = X[:, -1] == X[:, -1].max()
    return plots.scattered_fields(X[last, 0], X[last, 1], u[last], prediction[last],
                                  names[:2], path)

