"""The studies of a dynamics run. Each takes its config and returns metrics and a report section."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from scidl.errors import ConfigError
from scidl.numerics.symplectic import integrate_second_order
from scidl.report import plots
from scidl.report.study import Section
from scidl.sims.setups import Setup, make_setup


@dataclass(frozen=True)
class StudyOutcome:
    metrics: dict
    section: Section


def _setup(study) -> Setup:
    return make_setup(study.system.name, **study.system.parameters)


def record_steps(steps: int, records: int) -> list[int]:
    """About ``records`` distinct step counts from 1 to ``steps``, evenly spaced in log."""
    counts = np.unique(np.round(np.logspace(0, np.log10(steps), records)).astype(int))
    return [int(c) for c in counts if 1 <= c <= steps]


def stability(name: str, study, seed: int, figures: Path, quiet: bool) -> StudyOutcome:
    """Relative energy error ``|E(t) - E(0)| / |E(0)|`` of each method at the same step."""
    setup = _setup(study)
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


STUDIES: dict[str, Callable[..., StudyOutcome]] = {
    "stability": stability,
}
