"""The learned particle simulator (GNS), its data source (soft spheres) and its dynamics study."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import REPO

from scidl.errors import ShapeError
from scidl.experiments import load_config, parse_config, run
from scidl.experiments.dynamics_config import SimulatorStudy
from scidl.experiments.simulator_study import simulate
from scidl.geometric import check_equivariance
from scidl.geometric.gns import (
    GNS,
    GNSObjective,
    corrected_target,
    euler_update,
    finite_difference_acceleration,
    gns_statistics,
    random_walk_noise,
    rollout,
)
from scidl.numerics.symplectic import integrate_second_order
from scidl.sims.base import MechanicalSystem
from scidl.sims.pair_potential import SoftSpheres, soft_sphere_state
from scidl.sims.setups import make_setup
from scidl.train.loop import Stage, TrainOptions, train

F64 = torch.float64


def _history(n: int = 16, c: int = 5, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    start = 4 * torch.rand(n, 1, 2, generator=generator, dtype=F64)
    steps = 0.05 * torch.randn(n, c + 1, 2, generator=generator, dtype=F64)
    return start + steps.cumsum(1)


def _trajectory(h: float, substeps: int, frames: int, seed: int = 3):
    setup = make_setup("soft_spheres", particles=12, box=4.0, temperature=1.0, seed=seed)
    q0, v0 = setup.system.unpack(setup.y0)
    times = h * torch.arange(frames, dtype=F64)
    with torch.no_grad():
        q, _ = integrate_second_order(setup.system.acceleration, q0, v0, times, h / substeps)
    return setup.system, q


@pytest.mark.parametrize("bounds", [None, [[0.0, 4.0], [0.0, 4.0]]])
def test_gns_is_translation_invariant_and_permutation_equivariant(bounds):
    torch.manual_seed(0)
    model = GNS(dim=2, radius=1.0, history=5, hidden=32, message_passing=3,
                bounds=bounds).double()
    history = _history()
    inputs = {f"x{t}": torch.cat([history[:, t], torch.zeros(16, 1, dtype=F64)], dim=1)
              for t in range(6)}

    def accelerations(**frames):
        return model(torch.stack([frames[f"x{t}"][:, :2] for t in range(6)], dim=1))

    group = ("translation", "permutation") if bounds is None else ("permutation",)
    report = check_equivariance(accelerations, inputs,
                                input_types={name: "position" for name in inputs},
                                outputs="vector", group=group, translation_scale=3.0)
    assert report.passed(1e-10), report
    assert model.graph(history).shape[1] > 0  # the check saw interacting particles


def test_gns_shape_errors_are_one_sentence():
    model = GNS(dim=2, radius=1.0, history=5, hidden=8, message_passing=1)
    with pytest.raises(ShapeError, match=r"C \+ 1"):
        model(torch.zeros(4, 5, 2))
    with pytest.raises(ShapeError, match="coordinates"):
        model(torch.zeros(4, 6, 3))
    with pytest.raises(ShapeError, match="batch"):
        model(torch.zeros(4, 6, 2), batch=torch.zeros(3, dtype=torch.long))
    with pytest.raises(ShapeError, match="bounds"):
        GNS(dim=2, bounds=torch.zeros(3, 2))


def test_soft_spheres_force_is_minus_the_gradient_and_verlet_is_second_order():
    system = SoftSpheres(10, box=3.0, epsilon=2.0, sigma=1.0, wall_stiffness=50.0)
    q0, v0 = soft_sphere_state(system, 1.0, torch.Generator().manual_seed(1))
    probe = q0 + 0.3 * torch.randn(q0.shape, generator=torch.Generator().manual_seed(2),
                                   dtype=F64)
    probe[0, 0] = -0.2  # inside a wall
    autograd = MechanicalSystem.acceleration(system, probe).detach()
    assert torch.allclose(system.acceleration(probe), autograd, atol=1e-12)
    e0 = system.energy_qv(q0, v0)
    errors = []
    for h in (0.02, 0.01, 0.005):
        q, v = integrate_second_order(system.acceleration, q0, v0, [0.0, 5.0], h)
        errors.append(float((system.energy_qv(q[-1], v[-1]) - e0).abs()))
    ratios = [a / b for a, b in zip(errors, errors[1:])]
    assert all(3.0 < r < 5.5 for r in ratios), (errors, ratios)


def test_finite_difference_acceleration_is_exact_for_stormer_verlet_and_second_order():
    h = 0.1
    system, q = _trajectory(h, 1, 20)  # one Verlet step per frame: the Stormer recursion
    fd = finite_difference_acceleration(q) / h**2
    assert torch.allclose(fd, system.acceleration(q[1:-1]), atol=1e-10)
    errors = []
    for frame in (0.08, 0.04):  # fine Verlet steps (h / 32) inside coarse frames
        system, q = _trajectory(frame, round(32 * frame / 0.08), round(1.6 / frame) + 1)
        fd = finite_difference_acceleration(q) / frame**2
        errors.append(float((fd - system.acceleration(q[1:-1])).abs().max()))
    assert 3.0 < errors[0] / errors[1] < 5.0, errors


def test_rollout_with_the_true_accelerations_reproduces_the_simulator():
    h = 0.05
    system, q = _trajectory(h, 1, 60)
    c = 5
    start = q[:c + 1].transpose(0, 1)  # [N, C + 1, dim]
    predicted = rollout(lambda w: system.acceleration(w[:, -1]) * h**2, start, 60 - c - 1)
    assert torch.allclose(predicted, q[c + 1:], atol=1e-10)
    true_fd = finite_difference_acceleration(q)  # the data's own targets, frame units
    step = iter(range(c, 59))
    replay = rollout(lambda w: true_fd[next(step) - 1], start, 60 - c - 1)
    assert torch.allclose(replay, q[c + 1:], atol=1e-12)


def test_noise_corrected_target_restores_the_next_velocity():
    history = _history(c=5)
    generator = torch.Generator().manual_seed(4)
    nxt = history[:, -1] + 0.05 * torch.randn(16, 2, generator=generator, dtype=F64)
    noise = random_walk_noise(history.shape, 0.01, generator)
    assert torch.equal(noise[:, 0], torch.zeros(16, 2, dtype=F64))
    noisy = history + noise
    landed = euler_update(noisy, corrected_target(history, nxt, noise))
    # the velocity noise is undone: the next velocity is the true one; the position offset of
    # the last input frame (invisible to a translation-invariant model) is carried along
    assert torch.allclose(landed - noisy[:, -1], nxt - history[:, -1], atol=1e-14)
    assert torch.allclose(landed - noise[:, -1], nxt, atol=1e-14)
    many = random_walk_noise((20000, 6, 2), 0.01, torch.Generator().manual_seed(5))
    last_velocity = many[:, -1] - many[:, -2]
    assert abs(float(last_velocity.std()) / 0.01 - 1) < 0.03


def test_eval_mode_has_no_noise_and_rollout_is_deterministic():
    system, q = _trajectory(0.05, 4, 30)
    trajectories = q.unsqueeze(0)
    torch.manual_seed(0)
    model = GNS(dim=2, radius=1.2, history=5, hidden=16, message_passing=2)
    model.set_statistics(**gns_statistics(trajectories, 0.01))
    noisy = GNSObjective(trajectories, 5, noise_std=0.01, batch_size=3, seed=1)
    clean = GNSObjective(trajectories, 5, noise_std=0.0, batch_size=3, seed=1)
    batch, clean_batch = noisy.batch(7), clean.batch(7)
    assert torch.equal(batch["positions"], clean_batch["positions"])
    with torch.no_grad():
        trained = float(noisy.loss(model, batch)[0])
        model.eval()
        evaluated = float(noisy.loss(model, batch)[0])
        reference = float(clean.loss(model, clean_batch)[0])
    assert evaluated == reference and trained != evaluated
    start = q[:6].transpose(0, 1)
    first, second = model.rollout(start, 10), model.rollout(start, 10)
    assert torch.equal(first, second) and first.shape == (10, 12, 2)
    assert not model.training


def test_tiny_training_beats_the_constant_velocity_baseline():
    study = SimulatorStudy(kind="simulator", burn_in=10)
    system, _, q, _ = simulate(study, 0, 8, 60)
    train_q, test_q = q[:6], q[6:]
    c, k = 5, 25
    torch.manual_seed(0)
    model = GNS(dim=2, radius=1.5, history=c, hidden=32, message_passing=2,
                bounds=system.bounds)
    model.set_statistics(**gns_statistics(train_q, 3e-3))
    train(model, GNSObjective(train_q, c, 3e-3, batch_size=8),
          [Stage("adam", 250, 2e-3, schedule="cosine")], options=TrainOptions(progress=False))
    model.eval()
    n = test_q.shape[2]
    start = test_q[:, :c + 1].transpose(1, 2).reshape(-1, c + 1, 2)
    batch = torch.arange(2).repeat_interleave(n)
    truth = test_q[:, c + 1:c + 1 + k].transpose(0, 1).reshape(k, -1, 2)
    learned = model.rollout(start, k, batch)
    constant = rollout(lambda w: torch.zeros_like(w[:, -1]), start, k)
    learned_mse = (learned - truth).square().mean((1, 2))
    constant_mse = (constant - truth).square().mean((1, 2))
    assert learned_mse[-1] < 0.7 * constant_mse[-1], (learned_mse[-1], constant_mse[-1])
    assert learned_mse.mean() < constant_mse.mean()


def test_simulator_study_runs_from_a_config(tmp_path):
    config = {"task": "dynamics", "name": "tiny-gns", "studies": {"gns": {
        "kind": "simulator", "system": {"name": "soft_spheres", "parameters": {"particles": 12,
                                                                              "box": 4.0}},
        "train_trajectories": 3, "test_trajectories": 2, "frames": 30, "burn_in": 5,
        "hidden": 16, "message_passing": 1, "steps": 40, "rollout_steps": 12,
        "strip_frames": 4}}}
    out = run(parse_config(config), tmp_path / "run", quiet=True)
    metrics = json.loads((out / "metrics.json").read_text())["studies"]["gns"]
    assert metrics["kind"] == "simulator" and metrics["particles"] == 12
    assert set(metrics["rollout_mse"]) == {"step_1", "step_10", "step_12", "mean"}
    assert set(metrics["baseline_rollout_mse"]) == set(metrics["rollout_mse"])
    drift = metrics["energy_drift"]
    assert set(drift) == {"learned", "true_finite_difference", "true_exact_velocities"}
    assert drift["true_exact_velocities"]["max_rel_energy_drift"] < 1e-3
    for figure in ("gns_rollout_mse.png", "gns_energy.png", "gns_frames.png"):
        assert (out / "figures" / figure).is_file(), figure
    html = (out / "report.html").read_text()
    assert "learned particle simulator" in html and "Rollout frames" in html
    example = load_config(REPO / "configs" / "gns_particles.yaml").studies["particles"]
    assert example.kind == "simulator" and example.rollout_steps == 100
    with pytest.raises(Exception, match="seed"):
        run(parse_config({"task": "dynamics", "studies": {"bad": {
            "kind": "simulator", "system": {"name": "pendulum"}}}}), tmp_path / "bad",
            quiet=True)
