"""The ``learned`` dynamics study: a Hamiltonian NN and a neural ODE fitted to the same
trajectories of a mechanical system (Greydanus, Dzamba & Yosinski, NeurIPS 2019), then rolled out
far beyond the data to compare how well each keeps the true energy."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from scidl.errors import ConfigError
from scidl.experiments._study import StudyOutcome, setup_of
from scidl.models.dynamics import DerivativeMatching, HamiltonianNN, NeuralODE
from scidl.numerics.odeint import odeint
from scidl.report import plots
from scidl.report.study import Section
from scidl.train.loop import Stage, TrainOptions, train

_RECORDS = 400  # energies read along the long rollout


def learned(name: str, study, seed: int, figures: Path, quiet: bool) -> StudyOutcome:
    """Fit both models to ``(state, exact derivative)`` pairs from ``trajectories`` solves
    from perturbed initial states; roll out each for ``rollout_time`` with RK4 and record the
    true energy along the way."""
    setup = setup_of(study)
    system = setup.system
    if not setup.mechanical:
        raise ConfigError(f"studies.{name}: a learned study needs a mechanical system "
                          f"(its (q, v) are canonical for unit masses); got {study.system.name!r}")
    q0, _ = system.unpack(setup.y0)
    if not torch.allclose(system.coordinate_masses(q0).detach(), torch.ones((), dtype=q0.dtype)):
        raise ConfigError(f"studies.{name}: a learned study needs unit masses (then the "
                          "velocities are the canonical momenta); set the system's masses to 1")
    dim = setup.y0.shape[-1]
    generator = torch.Generator().manual_seed(seed)
    starts = setup.y0 + 0.3 * torch.randn((2 * study.trajectories, dim), generator=generator,
                                          dtype=torch.float64)
    t = torch.linspace(0.0, study.t_final, study.n_times, dtype=torch.float64)
    with torch.no_grad():
        paths = odeint(system, starts, t, method="dopri5", rtol=1e-10, atol=1e-12)  # [T, B, D]
    # exact derivatives at the noise-free states, noise on the states (Greydanus et al.)
    with torch.no_grad():
        derivatives = system(torch.zeros(()), paths)
    noisy = paths + study.noise * torch.randn(paths.shape, generator=generator,
                                              dtype=torch.float64)
    train_x, test_x = (noisy[:, i::2].reshape(-1, dim).float() for i in (0, 1))
    train_dx, test_dx = (derivatives[:, i::2].reshape(-1, dim).float() for i in (0, 1))

    y_start = starts[1:2].float()  # a test trajectory's start
    energy0 = float(system.energy(starts[1:2]).detach()[0])
    times = torch.linspace(0.0, study.rollout_time, _RECORDS, dtype=torch.float64)
    builders = {"hnn": lambda: HamiltonianNN(dim // 2, study.width, 2),
                "neural_ode": lambda: NeuralODE(dim, study.width, 2)}
    metrics: dict = {}
    energy_lines = {}
    for model_name, build in builders.items():
        torch.manual_seed(seed)
        model = build()
        result = train(model, DerivativeMatching(train_x, train_dx),
                       [Stage("adam", study.steps, study.lr, schedule="constant")], seed=seed,
                       options=TrainOptions(progress=not quiet,
                                            log_every=max(study.steps // 20, 1)))
        with torch.no_grad():
            test_mse = float((model(torch.zeros(()), test_x) - test_dx).square().mean())
            states = odeint(model, y_start, times.float(), method="rk4",
                            step_size=study.rollout_step)
        energies = system.energy(states.double()).detach()[:, 0]
        relative = ((energies - energy0).abs() / abs(energy0)).nan_to_num(math.inf)
        metrics[model_name] = {"test_derivative_mse": test_mse,
                               "max_rel_energy_drift": float(relative.max()),
                               "final_rel_energy_drift": float(relative[-1]),
                               "train_seconds": result.seconds}
        energy_lines[model_name] = (times.tolist(), energies.clamp(-1e6, 1e6).tolist())
    energy_lines["true energy"] = ([0.0, study.rollout_time], [energy0, energy0])
    figure = plots.curves([("true energy along the rollout", energy_lines)], "time",
                          f"{name}: {setup.description}", figures / f"{name}_energy.png")
    ratio = (metrics["neural_ode"]["max_rel_energy_drift"]
             / max(metrics["hnn"]["max_rel_energy_drift"], 1e-300))
    rows = [[model_name, f"{m['test_derivative_mse']:.3e}", f"{m['max_rel_energy_drift']:.3e}",
             f"{m['final_rel_energy_drift']:.3e}"] for model_name, m in metrics.items()]
    section = Section(
        title=f"{name}: Hamiltonian NN against a neural ODE",
        paragraphs=[f"{setup.description}. {study.trajectories} training and "
                    f"{study.trajectories} test trajectories on [0, {study.t_final:g}] "
                    f"({study.n_times} states each, noise {study.noise:g}), exact derivatives "
                    f"as targets; MLPs of 2 x {study.width} tanh, Adam {study.lr:g} for "
                    f"{study.steps} steps. Rollout from a test state for "
                    f"{study.rollout_time:g} time units, RK4 with step {study.rollout_step:g}. "
                    f"The neural ODE's energy drift is {ratio:.3g} times the HNN's."],
        columns=["model", "test derivative MSE", "max |ΔE/E|", "final |ΔE/E|"], rows=rows,
        figures=[("True energy along each model's rollout", figure)])
    drifts = {k: metrics[k]["max_rel_energy_drift"] for k in builders}
    metrics.update({"system": setup.description, "drift_ratio_node_over_hnn": ratio,
                    "headline": f"energy drift: HNN {drifts['hnn']:.2e}, "
                                f"neural ODE {drifts['neural_ode']:.2e}"})
    return StudyOutcome(metrics, section)
