"""The ``simulator`` dynamics study: a learned particle simulator (GNS, Sanchez-Gonzalez et al.,
ICML 2020) trained on one-step accelerations of trajectories from one of scidl's particle
systems, rolled out from unseen initial states and compared with the true simulator: rollout
position MSE, a constant-velocity baseline, and the true energy along the learned rollout."""

from __future__ import annotations

import inspect
import math
from pathlib import Path

import torch

from scidl.errors import ConfigError
from scidl.experiments._study import StudyOutcome
from scidl.geometric.gns import GNS, GNSObjective, gns_statistics, rollout
from scidl.numerics.symplectic import integrate_second_order
from scidl.report import plots
from scidl.report.study import Section
from scidl.sims.base import MechanicalSystem
from scidl.sims.setups import SETUPS, make_setup
from scidl.train.loop import Stage, TrainOptions, train

REPORTED_STEPS = (1, 10, 50, 100)


def simulate(study, seed_offset: int, count: int, frames: int
             ) -> tuple[MechanicalSystem, str, torch.Tensor, torch.Tensor]:
    """``count`` trajectories of the study's set-up (seeds ``seed + seed_offset + k``), each
    ``burn_in + frames`` frames by velocity Verlet with ``substeps`` steps per frame; the
    burn-in frames are dropped.

    Returns:
        the system, its description, positions and velocities ``[count, frames, N, dim]``
        (float64).
    """
    name, params = study.system.name, dict(study.system.parameters)
    if "seed" not in inspect.signature(SETUPS[name]).parameters:
        raise ConfigError(f"a simulator study needs a particle set-up with a 'seed' parameter "
                          f"(e.g. soft_spheres); {name!r} has none")
    first = int(params.pop("seed", 0)) + seed_offset
    setups = [make_setup(name, **params, seed=first + k) for k in range(count)]
    system = setups[0].system
    if not isinstance(system, MechanicalSystem) or len(system.config_shape) != 2 \
            or not 1 <= system.config_shape[1] <= 3:
        raise ConfigError(f"a simulator study needs a mechanical system of particles "
                          f"(positions [N, dim]); {name!r} is not one")
    q0, v0 = (torch.stack(parts) for parts in zip(*(system.unpack(s.y0) for s in setups)))
    times = study.frame_dt * torch.arange(study.burn_in + frames, dtype=torch.float64)
    with torch.no_grad():
        q, v = integrate_second_order(system.acceleration, q0, v0, times,
                                      study.frame_dt / study.substeps, method="verlet")
    return (system, setups[0].description, q[study.burn_in:].transpose(0, 1),
            v[study.burn_in:].transpose(0, 1))


def _no_acceleration(window: torch.Tensor) -> torch.Tensor:
    """The constant-velocity baseline: ``a = 0``, ``[N, C + 1, dim] -> [N, dim]``."""
    return torch.zeros_like(window[:, -1])


def _nodes(windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``[G, T, N, dim]`` graph windows -> node histories ``[G * N, T, dim]`` and batch."""
    g, t, n, dim = windows.shape
    return (windows.transpose(1, 2).reshape(g * n, t, dim),
            torch.arange(g).repeat_interleave(n))


def _energies(system: MechanicalSystem, frames: torch.Tensor, frame_dt: float) -> torch.Tensor:
    """True energy at frames ``1 .. T - 2`` with central-difference velocities,
    ``[B, T, N, dim] -> [B, T - 2]``."""
    velocity = (frames[:, 2:] - frames[:, :-2]) / (2 * frame_dt)
    return system.energy_qv(frames[:, 1:-1], velocity).detach()


def _drift(energy: torch.Tensor, e0: torch.Tensor) -> dict[str, float]:
    relative = ((energy - e0[:, None]).abs() / e0.abs()[:, None]).nan_to_num(math.inf)
    return {"max_rel_energy_drift": float(relative.max(1).values.mean()),
            "final_rel_energy_drift": float(relative[:, -1].mean())}


def frame_strip(truth: torch.Tensor, learned: torch.Tensor, steps: list[int],
                bounds: torch.Tensor | None, title: str, path: Path) -> Path:
    """A row of scatter plots, true (open circles) and learned (dots) particles at ``steps``
    of a rollout ``[K + 1, N, dim]`` (step 0 = the last input frame); the first two axes."""
    fig, axes = plots.plt.subplots(1, len(steps), figsize=(2.4 * len(steps), 2.7),
                                   squeeze=False)
    everything = torch.cat([truth, learned])
    low, high = everything[..., :2].amin((0, 1)), everything[..., :2].amax((0, 1))
    if bounds is not None:
        low, high = torch.minimum(low, bounds[:2, 0]), torch.maximum(high, bounds[:2, 1])
    margin = 0.05 * float((high - low).max())
    for ax, step in zip(axes[0], steps):
        ax.scatter(truth[step, :, 0], truth[step, :, 1], s=36, facecolors="none",
                   edgecolors="k", linewidths=0.9, label="true")
        ax.scatter(learned[step, :, 0], learned[step, :, 1], s=10, color="tab:red",
                   label="learned")
        if bounds is not None:
            (x0, x1), (y0, y1) = bounds[0].tolist(), bounds[1].tolist()
            ax.plot([x0, x1, x1, x0, x0], [y0, y0, y1, y1, y0], color="grey", linewidth=0.8)
        ax.set(xlim=(float(low[0]) - margin, float(high[0]) + margin),
               ylim=(float(low[1]) - margin, float(high[1]) + margin), aspect="equal",
               xticks=[], yticks=[])
        ax.set_title(f"step {step}", fontsize=9)
    axes[0, 0].legend(fontsize=7, loc="upper left", bbox_to_anchor=(0.0, -0.02), ncol=2,
                      frameon=False)
    fig.suptitle(title, fontsize=10)
    return plots._save(fig, path)


def simulator(name: str, study, seed: int, figures: Path, quiet: bool) -> StudyOutcome:
    """Generate data, train the GNS with noise injection, roll it out, report."""
    c, k = study.history, study.rollout_steps
    test_frames = c + 1 + k + 1  # history, the rollout and one frame for the last velocity
    frames = max(study.frames, test_frames)
    if study.frames < c + 2:
        raise ConfigError(f"studies.{name}.frames must be at least history + 2 = {c + 2}")
    count = study.train_trajectories + study.test_trajectories
    system, description, q, v = simulate(study, 1000 * seed, count, frames)
    train_q = q[:study.train_trajectories, :study.frames]
    test_q = q[study.train_trajectories:, :test_frames]
    test_v = v[study.train_trajectories:, :test_frames]
    n, dim = system.config_shape
    bounds = getattr(system, "bounds", None)
    bounds = bounds.detach().to(torch.float64) if bounds is not None else None

    torch.manual_seed(seed)
    model = GNS(dim, study.radius, c, study.hidden, study.message_passing, study.mlp_layers,
                bounds=bounds)
    model.set_statistics(**gns_statistics(train_q, study.noise_std))
    objective = GNSObjective(train_q, c, study.noise_std, study.batch_size, seed)
    result = train(model, objective, [Stage("adam", study.steps, study.lr, schedule="cosine")],
                   seed=seed, options=TrainOptions(name=f"{name}-gns", progress=not quiet,
                                                   log_every=max(study.steps // 50, 1)))
    model.eval()

    # one-step error on every window of the test trajectories
    with torch.no_grad():
        starts = torch.arange(test_frames - c - 1)
        windows = test_q[:, starts[:, None] + torch.arange(c + 2)]  # [B, S, C + 2, N, dim]
        history, batch = _nodes(windows.flatten(0, 1))
        predicted = rollout(lambda w: model.acceleration(w, batch), history[:, :-1], 1)[0]
        one_step = float((predicted - history[:, -1]).square().mean())
        still = rollout(_no_acceleration, history[:, :-1], 1)[0]
        one_step_baseline = float((still - history[:, -1]).square().mean())

    # rollouts from the first C + 1 frames of every test trajectory
    start, batch = _nodes(test_q[:, :c + 1])
    b = study.test_trajectories
    learned = model.rollout(start, k + 1, batch).reshape(k + 1, b, n, dim).transpose(0, 1)
    constant = rollout(_no_acceleration, start, k).reshape(k, b, n, dim).transpose(0, 1)
    truth = test_q[:, c + 1:]
    errors = (learned[:, :k] - truth[:, :k]).square().mean((0, 2, 3))  # [K]
    baseline_errors = (constant - truth[:, :k]).square().mean((0, 2, 3))

    def at_steps(series: torch.Tensor) -> dict[str, float]:
        steps = sorted({s for s in REPORTED_STEPS if s <= k} | {k})
        return {**{f"step_{s}": float(series[s - 1]) for s in steps},
                "mean": float(series.mean())}

    # the true energy along each rollout, central-difference velocities, steps 0 .. K
    e0 = system.energy_qv(test_q[:, c], test_v[:, c]).detach()  # exact, at step 0
    learned_frames = torch.cat([test_q[:, c - 1:c + 1], learned], dim=1)  # frames C-1 .. C+K+1
    energy_learned = _energies(system, learned_frames, study.frame_dt)
    energy_true = _energies(system, test_q[:, c - 1:], study.frame_dt)
    energy_exact = system.energy_qv(test_q[:, c:c + k + 1], test_v[:, c:c + k + 1]).detach()
    drift = {"learned": _drift(energy_learned, e0),
             "true_finite_difference": _drift(energy_true, e0),
             "true_exact_velocities": _drift(energy_exact, e0)}

    steps = list(range(1, k + 1))
    mse_figure = plots.curves(
        [("position MSE", {"GNS": (steps, errors.tolist()),
                           "constant velocity": (steps, baseline_errors.tolist())})],
        "rollout step", f"{name}: rollout error against the true simulator",
        figures / f"{name}_rollout_mse.png", logy=True)
    energy_steps = list(range(k + 1))
    mean_relative = {label: ((series - e0[:, None]) / e0.abs()[:, None]).mean(0).tolist()
                     for label, series in (("GNS (finite-difference v)", energy_learned),
                                           ("true (finite-difference v)", energy_true),
                                           ("true (exact v)", energy_exact))}
    energy_figure = plots.curves(
        [("(E - E0) / |E0|", {label: (energy_steps, values)
                              for label, values in mean_relative.items()})],
        "rollout step", f"{name}: true energy along the rollouts (mean over test)",
        figures / f"{name}_energy.png")
    strip_steps = sorted({round(i * k / (study.strip_frames - 1))
                          for i in range(study.strip_frames)})
    strip = frame_strip(test_q[0, c:c + k + 1], torch.cat([test_q[0, c:c + 1], learned[0]]),
                        strip_steps, bounds, f"{name}: true (circles) and learned (dots)",
                        figures / f"{name}_frames.png")

    rollout_mse, baseline_mse = at_steps(errors), at_steps(baseline_errors)
    metrics = {
        "system": description, "particles": n, "dim": dim,
        "train_trajectories": study.train_trajectories,
        "test_trajectories": study.test_trajectories, "frame_dt": study.frame_dt,
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_seconds": result.seconds, "final_train_loss": result.history[-1]["loss"],
        "one_step_position_mse": one_step, "baseline_one_step_position_mse": one_step_baseline,
        "rollout_mse": rollout_mse, "baseline_rollout_mse": baseline_mse,
        "energy_drift": drift,
        "headline": (f"rollout MSE at step {k}: GNS {rollout_mse[f'step_{k}']:.3e}, constant "
                     f"velocity {baseline_mse[f'step_{k}']:.3e}; energy drift GNS "
                     f"{drift['learned']['max_rel_energy_drift']:.2e}, true "
                     f"{drift['true_finite_difference']['max_rel_energy_drift']:.2e}"),
    }
    rows = [[key.replace("_", " "), f"{rollout_mse[key]:.3e}", f"{baseline_mse[key]:.3e}"]
            for key in rollout_mse]
    section = Section(
        title=f"{name}: learned particle simulator (GNS)",
        paragraphs=[
            f"{description}. {study.train_trajectories} training trajectories of "
            f"{study.frames} frames (frame interval {study.frame_dt:g}, {study.substeps} "
            f"velocity-Verlet steps per frame, {study.burn_in} burn-in frames dropped); "
            f"{study.test_trajectories} test trajectories from unseen initial states.",
            f"GNS: {c} input velocities, connectivity radius {study.radius:g}, latent "
            f"{study.hidden}, {study.message_passing} message-passing steps, "
            f"{metrics['parameters']:,} parameters; trained on normalised one-step "
            f"accelerations with random-walk input noise {study.noise_std:g} (Adam "
            f"{study.lr:g}, cosine, {study.steps} steps of {study.batch_size} graphs, "
            f"{result.seconds:.0f} s).",
            f"One-step position MSE {one_step:.3e} (constant velocity {one_step_baseline:.3e}). "
            f"Max relative energy drift over {k} steps: GNS "
            f"{drift['learned']['max_rel_energy_drift']:.3e}, true trajectory "
            f"{drift['true_finite_difference']['max_rel_energy_drift']:.3e} (same "
            f"finite-difference velocities; "
            f"{drift['true_exact_velocities']['max_rel_energy_drift']:.3e} with the "
            "integrator's velocities)."],
        columns=["rollout position MSE", "GNS", "constant velocity"], rows=rows,
        figures=[("Rollout position MSE against step", mse_figure),
                 ("True energy along the learned and the true rollouts", energy_figure),
                 ("Rollout frames of test trajectory 0", strip)])
    return StudyOutcome(metrics, section)
