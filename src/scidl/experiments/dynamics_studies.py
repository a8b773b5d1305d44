"""The studies of a dynamics run. Each takes its config and returns metrics and a report section."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from scidl.errors import ConfigError
from scidl.experiments._study import StudyOutcome, setup_of
from scidl.experiments.learned_study import learned
from scidl.experiments.simulator_study import simulator
from scidl.numerics.odeint import odeint
from scidl.numerics.symplectic import integrate_second_order
from scidl.report import plots
from scidl.report.study import Section
from scidl.sims.control import swing_up
from scidl.sims.inverse import fit_parameters
from scidl.sims.pendulum import Pendulum


def record_steps(steps: int, records: int) -> list[int]:
    """About ``records`` distinct step counts from 1 to ``steps``, evenly spaced in log."""
    counts = np.unique(np.round(np.logspace(0, np.log10(steps), records)).astype(int))
    return [int(c) for c in counts if 1 <= c <= steps]


def stability(name: str, study, seed: int, figures: Path, quiet: bool) -> StudyOutcome:
    """Relative energy error ``|E(t) - E(0)| / |E(0)|`` of each method at the same step."""
    setup = setup_of(study)
    if not setup.mechanical:
        raise ConfigError(f"studies.{name}: a stability study needs a mechanical system "
                          "(kepler, spring_chain, pendulum, charged); "
                          f"{study.system.name!r} is not one")
    system = setup.system
    q0, v0 = system.unpack(setup.y0)
    counts = record_steps(study.steps, study.records)
    times = [0.0] + [c * study.step_size for c in counts]
    with torch.no_grad():
        e0 = float(system.energy_qv(q0, v0))
        series, metrics = {}, {}
        for method in study.methods:
            q, v = integrate_second_order(system.acceleration, q0, v0, times, study.step_size,
                                          method=method)
            errors = ((system.energy_qv(q[1:], v[1:]) - e0).abs() / abs(e0)).tolist()
            series[method] = (counts, errors)
            tenth = max(1, len(counts) // 10)
            metrics[method] = {
                "max_rel_energy_error": max(errors),
                "final_rel_energy_error": errors[-1],
                # bounded vs drifting: the worst error in the last decade of steps against the
                # worst before it
                "max_error_first_90pct_of_records": max(errors[:-tenth] or errors),
                "max_error_last_10pct_of_records": max(errors[-tenth:]),
                "finite": bool(np.isfinite(errors).all()),
            }
    figure = plots.energy_errors(series, f"{name}: {setup.description}, h = {study.step_size:g}",
                                 figures / f"{name}_energy.png")
    rows = [[method, f"{m['max_rel_energy_error']:.3e}", f"{m['final_rel_energy_error']:.3e}"]
            for method, m in metrics.items()]
    section = Section(
        title=f"{name}: energy error over {study.steps:,} steps",
        paragraphs=[f"{setup.description}; step {study.step_size:g}; initial energy "
                    f"{e0:.6g}. A symplectic method keeps the energy error bounded and "
                    "oscillating; a non-symplectic one (RK4, Euler) lets it drift."],
        columns=["method", "max |ΔE/E|", "final |ΔE/E|"], rows=rows,
        figures=[("Relative energy error against step", figure)])
    headline = ", ".join(f"{method} max |dE/E| {m['max_rel_energy_error']:.2e}"
                         for method, m in metrics.items())
    return StudyOutcome({"system": setup.description, "step_size": study.step_size,
                         "steps": study.steps, "initial_energy": e0, "methods": metrics,
                         "headline": headline}, section)


def inverse(name: str, study, seed: int, figures: Path, quiet: bool) -> StudyOutcome:
    """Recover the ``unknown`` constants of a system from its simulated trajectory."""
    setup = setup_of(study)
    system, y0 = setup.system, setup.y0
    params = dict(system.named_parameters())
    missing = sorted(set(study.unknown) - set(params))
    if missing:
        raise ConfigError(f"studies.{name}.unknown: {missing} are not constants of "
                          f"{study.system.name!r}; it has {sorted(params)}")
    t = torch.linspace(0.0, study.t_final, study.n_times, dtype=torch.float64)
    with torch.no_grad():  # the observation: a tight dopri5 solve of the true system
        observed = odeint(system, y0, t, method="dopri5", rtol=1e-12, atol=1e-12)
        if study.noise > 0:
            generator = torch.Generator().manual_seed(seed)
            scale = study.noise * observed.square().mean().sqrt()
            observed = observed + scale * torch.randn(observed.shape, generator=generator,
                                                      dtype=observed.dtype)
    truth = {n: params[n].detach().clone() for n in study.unknown}
    initial = {n: truth[n] * study.initial_factor for n in study.unknown}
    step = study.step_size or float(t[1] - t[0]) / 10
    fit = fit_parameters(system, study.unknown, y0, t, observed, method=study.method,
                         step_size=step, steps=study.iterations, optimizer=study.optimizer,
                         lr=study.lr if study.optimizer == "adam" else None, initial=initial)
    errors = {n: float(((fit.estimates[n] - truth[n]).abs() / truth[n].abs()).max())
              for n in study.unknown}
    history = {f"{n}[{i}]" if truth[n].numel() > 1 else n: fit.history[n].reshape(
        len(fit.history[n]), -1)[:, i].tolist()
        for n in study.unknown for i in range(truth[n].numel())}
    true_flat = {f"{n}[{i}]" if truth[n].numel() > 1 else n: float(truth[n].flatten()[i])
                 for n in study.unknown for i in range(truth[n].numel())}
    figure = plots.parameter_estimates(history, true_flat, f"{name}: {setup.description}",
                                       figures / f"{name}_estimates.png")
    rows = [[key, f"{true_flat[key]:.6g}", f"{true_flat[key] * study.initial_factor:.6g}",
             f"{values[-1]:.6g}", f"{abs(values[-1] / true_flat[key] - 1):.2e}"]
            for key, values in history.items()]
    worst = max(errors.values())
    section = Section(
        title=f"{name}: recovering {', '.join(study.unknown)}",
        paragraphs=[f"{setup.description}. Observed at {study.n_times} times in "
                    f"[0, {study.t_final:g}] (dopri5 at 1e-12), noise {study.noise:g} of the "
                    f"state's RMS; fitted with {study.method} (step {step:g}) and "
                    f"{study.optimizer}, starting {study.initial_factor:g}x the truth. "
                    f"Optimiser: {fit.log.message}."],
        columns=["constant", "true", "start", "estimate", "relative error"], rows=rows,
        figures=[("Estimates relative to the truth during the fit", figure)])
    metrics = {"system": setup.description, "unknown": study.unknown,
               "true": {k: v for k, v in true_flat.items()},
               "estimate": {k: v[-1] for k, v in history.items()},
               "relative_error": errors, "max_relative_error": worst,
               "iterations": int(fit.log.iterations), "final_loss": float(fit.log.losses[-1]),
               "headline": f"max relative error of the recovered constants {worst:.2e}"}
    return StudyOutcome(metrics, section)


def swing_up_study(name: str, study, seed: int, figures: Path, quiet: bool) -> StudyOutcome:
    """A bounded torque sequence that raises the pendulum from hanging at rest to upright."""
    setup = setup_of(study)
    if not isinstance(setup.system, Pendulum):
        raise ConfigError(f"studies.{name}: a swing-up needs system 'pendulum', "
                          f"got {study.system.name!r}")
    result = swing_up(setup.system, study.horizon, study.controls,
                      max_torque=study.max_torque, effort_weight=study.effort_weight,
                      steps=study.iterations, seed=seed)
    times = result.times.tolist()
    edges = torch.linspace(0, study.horizon, study.controls + 1).tolist()
    control_x = [x for a, b in zip(edges, edges[1:]) for x in (a, b)]
    control_y = [float(u) for u in result.controls for _ in range(2)]
    figure = plots.curves([
        ("angle (rad)", {"theta": (times, result.states[:, 0].tolist()),
                         "upright": ([0.0, study.horizon], [np.pi, np.pi])}),
        ("rate (rad/s)", {"theta'": (times, result.states[:, 1].tolist())}),
        ("torque", {"u": (control_x, control_y)}),
    ], "time", f"{name}: swing-up with |u| <= {study.max_torque:g}",
        figures / f"{name}_swing_up.png")
    metrics = {"system": setup.description, "angle_error": result.angle_error,
               "rate_error": result.rate_error,
               "max_abs_torque": float(result.controls.abs().max()),
               "iterations": int(result.log.iterations),
               "headline": f"final angle error {result.angle_error:.2e} rad, rate "
                           f"{result.rate_error:.2e} rad/s"}
    section = Section(
        title=f"{name}: pendulum swing-up",
        paragraphs=[f"{setup.description}; {study.controls} piecewise-constant torques over "
                    f"{study.horizon:g} s, |u| <= {study.max_torque:g}, effort weight "
                    f"{study.effort_weight:g}. Optimiser: {result.log.message}."],
        columns=["final angle - pi", "final rate", "max |u|"],
        rows=[[f"{result.angle_error:.3e}", f"{result.rate_error:.3e}",
               f"{metrics['max_abs_torque']:.3f}"]],
        figures=[("Angle, rate and torque", figure)])
    return StudyOutcome(metrics, section)


STUDIES: dict[str, Callable[..., StudyOutcome]] = {
    "stability": stability,
    "inverse": inverse,
    "learned": learned,
    "swing_up": swing_up_study,
    "simulator": simulator,
}
