"""scidl.sims.inverse: parameter recovery, shooting to a target, pendulum swing-up.

Noise-free data come from dopri5 at tight tolerance (or, for the charged particles, the same
integrator), so the fits are not an "inverse crime" except where stated; each recovery must be
within 1% (it is far better: the floor is RK4's discretisation error). The projectile is checked
against its closed form (fixed time) and the minimum-speed launch ``|v0|^2 = g R`` at 45 degrees
(free time); shots with drag and in an N-body system are re-checked by an independent dopri5 solve.
"""

from __future__ import annotations

import math

import pytest
import torch

from scidl.errors import ShapeError
from scidl.numerics.odeint import odeint
from scidl.sims.charged import ChargedParticles, charged_particles_dataset
from scidl.sims.control import swing_up
from scidl.sims.inverse import fit_parameters, hit_target, rollout
from scidl.sims.lotka_volterra import LotkaVolterra
from scidl.sims.nbody import NBody
from scidl.sims.pendulum import Pendulum
from scidl.sims.projectile import Projectile
from scidl.sims.springs import SpringNetwork

F64 = torch.float64


def exact(system, y0, t):
    with torch.no_grad():
        return odeint(system, y0, t, method="dopri5", rtol=1e-12, atol=1e-12)


def relative_error(estimate: torch.Tensor, truth: torch.Tensor) -> float:
    return float(((estimate - truth).abs() / truth.abs()).max())


def test_spring_constants_recovered_and_history_recorded():
    k_true = torch.tensor([1.0, 2.0, 0.5], dtype=F64)
    system = SpringNetwork(torch.tensor([[0, 1], [1, 2], [2, 0]]), stiffness=k_true,
                           masses=torch.tensor([1.0, 2.0, 0.5], dtype=F64), dim=2)
    q0 = torch.tensor([[0.0, 0.0], [1.3, 0.0], [0.5, 0.7]], dtype=F64)
    v0 = torch.tensor([[0.0, 0.1], [0.0, -0.2], [0.3, 0.0]], dtype=F64)
    y0, t = system.pack(q0, v0), torch.linspace(0, 2, 21, dtype=F64)
    guess = k_true * torch.tensor([1.4, 0.7, 1.3], dtype=F64)
    fit = fit_parameters(system, ["stiffness"], y0, t, exact(system, y0, t), step_size=0.04,
                         steps=40, initial={"stiffness": guess}, tolerance=1e-14)
    assert relative_error(fit.estimates["stiffness"], k_true) < 1e-2
    assert relative_error(fit.estimates["stiffness"], k_true) < 1e-5  # what it really reaches
    history = fit.history["stiffness"]
    assert history.shape == (fit.log.iterations + 1, 3)
    torch.testing.assert_close(history[0], guess)
    torch.testing.assert_close(history[-1], fit.estimates["stiffness"])
    assert fit.log.losses[-1] < 1e-3 * fit.log.losses[0]
    torch.testing.assert_close(system.stiffness.detach(), k_true)  # the input is untouched
    torch.testing.assert_close(fit.system.stiffness.detach(), fit.estimates["stiffness"])


def test_nbody_masses_recovered():
    system = NBody(torch.tensor([1.0, 0.3, 0.1], dtype=F64), dim=2)
    q0 = torch.tensor([[0.0, 0.0], [1.0, 0.0], [-1.5, 0.3]], dtype=F64)
    v0 = torch.tensor([[0.0, -0.1], [0.0, 1.0], [0.1, -0.8]], dtype=F64)
    y0, t = system.pack(q0, v0), torch.linspace(0, 2, 21, dtype=F64)
    fit = fit_parameters(system, ["masses"], y0, t, exact(system, y0, t), step_size=0.04,
                         steps=40, initial={"masses": torch.tensor([0.8, 0.5, 0.2], dtype=F64)},
                         tolerance=1e-14)
    assert relative_error(fit.estimates["masses"], system.masses.detach()) < 1e-2
    assert bool((fit.history["masses"] > 0).all())  # log-parametrised: positive throughout


def test_lotka_volterra_rates_recovered():
    names = ["alpha", "beta", "gamma", "delta"]
    truth = torch.tensor([0.7, 1.3, 1.1, 0.9], dtype=F64)
    system = LotkaVolterra(*truth.tolist())
    y0, t = torch.tensor([1.0, 0.5], dtype=F64), torch.linspace(0, 8, 33, dtype=F64)
    fit = fit_parameters(system, names, y0, t, exact(system, y0, t), step_size=0.1, steps=60,
                         initial=dict.fromkeys(names, 1.0), tolerance=1e-14)
    estimate = torch.stack([fit.estimates[n] for n in names])
    assert relative_error(estimate, truth) < 1e-2


def test_signed_charges_recovered_on_a_short_horizon():
    """NRI charges (+-1) from the NRI initial-state generator; the same integrator makes the
    data (the clipped force is what the model is). 0.3 time units: before close encounters."""
    data = charged_particles_dataset(1, steps=1, seed=1)
    truth = data.charges[0]
    system = ChargedParticles(truth, dim=3)
    y0 = system.pack(data.positions0[0], data.velocities0[0])
    t = torch.linspace(0, 0.3, 11, dtype=F64)
    with torch.no_grad():
        observed = rollout(system, y0, t, "symplectic_euler", 0.01)
    guess = truth * torch.tensor([0.8, 1.2, 0.9, 1.2, 0.8], dtype=F64)
    fit = fit_parameters(system, ["charges"], y0, t, observed, method="symplectic_euler",
                         step_size=0.01, steps=40, initial={"charges": guess}, tolerance=1e-16)
    assert relative_error(fit.estimates["charges"], truth) < 1e-2


def test_fit_parameters_rejects_unknown_names_and_bad_shapes():
    system = LotkaVolterra()
    y0, t = torch.tensor([1.0, 0.5], dtype=F64), torch.linspace(0, 1, 5, dtype=F64)
    with pytest.raises(ValueError, match="'mass' is not a learnable constant.*alpha"):
        fit_parameters(system, ["mass"], y0, t, torch.zeros(5, 2, dtype=F64))
    with pytest.raises(ShapeError, match=r"\[T, \*y0.shape\]"):
        fit_parameters(system, ["alpha"], y0, t, torch.zeros(4, 2, dtype=F64))


def test_time_rescaled_rollout_matches_plain_rollout():
    system = NBody(torch.tensor([1.0, 0.5], dtype=F64), dim=2)
    y0 = system.pack(torch.tensor([[0.0, 0.0], [1.0, 0.0]], dtype=F64),
                     torch.tensor([[0.0, -0.3], [0.0, 0.6]], dtype=F64))
    scale = torch.tensor(2.0, dtype=F64)
    tau = torch.linspace(0, 1, 5, dtype=F64)
    for method in ("rk4", "verlet"):
        scaled = rollout(system, y0, tau, method, 0.01, scale)
        plain = rollout(system, y0, 2 * tau, method, 0.02)
        torch.testing.assert_close(scaled, plain, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="symplectic method 'verlet' needs"):
        rollout(Projectile(drag=0.1), torch.zeros(4, dtype=F64), tau, "verlet", 0.1)


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_projectile_hits_target_at_fixed_time_closed_form(dtype):
    system, q0 = Projectile(dim=2), torch.zeros(2, dtype=dtype)
    target = torch.tensor([10.0, 2.0], dtype=dtype)
    shot = hit_target(system, q0, torch.tensor([5.0, 5.0], dtype=dtype), target, 1.5,
                      step_size=0.05, steps=30)
    gravity = torch.tensor([0.0, -9.81], dtype=dtype)
    closed_form = (target - q0 - 0.5 * gravity * 1.5**2) / 1.5  # RK4 is exact on parabolas
    tol = 1e-9 if dtype == F64 else 1e-4
    assert shot.v0.dtype == dtype and shot.miss < tol
    torch.testing.assert_close(shot.v0, closed_form, rtol=tol, atol=tol)
    torch.testing.assert_close(shot.positions[-1], target, rtol=0, atol=tol)


def test_projectile_with_drag_hits_target():
    system, q0 = Projectile(dim=2, drag=0.05), torch.zeros(2, dtype=F64)
    target = torch.tensor([10.0, 2.0], dtype=F64)
    shot = hit_target(system, q0, torch.tensor([5.0, 5.0], dtype=F64), target, 1.5,
                      step_size=0.01, steps=30)
    y_final = exact(system, system.pack(q0, shot.v0), [0.0, 1.5])[-1]
    assert float((y_final[:2] - target).norm()) < 1e-6  # an independent solve
    straight = (target - q0 + 0.5 * 9.81 * 1.5**2 * torch.tensor([0, 1.0], dtype=F64)) / 1.5
    assert bool((shot.v0 > straight).all())  # drag costs speed in both components


def test_slowest_launch_is_at_45_degrees():
    """Free arrival time, min |v0|: on level ground |v0|^2 = g R, angle 45 deg, T = sqrt(2R/g)."""
    system, q0 = Projectile(dim=2), torch.zeros(2, dtype=F64)
    target = torch.tensor([10.0, 0.0], dtype=F64)
    shot = hit_target(system, q0, torch.tensor([5.0, 5.0], dtype=F64), target, 1.5,
                      free_time=True, step_size=0.05, steps=15, rounds=6)
    assert abs(float(shot.v0.square().sum()) / (9.81 * 10) - 1) < 1e-3
    assert abs(math.degrees(math.atan2(shot.v0[1], shot.v0[0])) - 45) < 0.1
    assert abs(shot.t_final / math.sqrt(2 * 10 / 9.81) - 1) < 1e-3
    assert shot.miss < 1e-4


def test_nbody_probe_reaches_target():
    system = NBody(torch.tensor([1.0, 1e-2, 1e-6], dtype=F64), dim=2)
    q0 = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.1, 0.0]], dtype=F64)
    v0 = torch.tensor([[0.0, -0.01], [0.0, 1.0], [0.0, 0.0]], dtype=F64)
    target, t_final = torch.tensor([-1.0, 1.0], dtype=F64), 2.0
    v0[2] = (target - q0[2]) / t_final  # straight-line guess
    shot = hit_target(system, q0, v0, target, t_final, body=2, step_size=0.02, steps=50)
    torch.testing.assert_close(shot.v0[:2], v0[:2])  # only the probe's velocity changes
    q_final, _ = system.unpack(exact(system, system.pack(q0, shot.v0), [0.0, t_final])[-1])
    assert float((q_final[2] - target).norm()) < 1e-4


def test_pendulum_swing_up_ends_upright_within_the_torque_bound():
    pendulum = Pendulum()
    max_torque = 5.0  # about half of m g l: the pendulum has to be pumped
    result = swing_up(pendulum, 4.0, 20, max_torque=max_torque, step_size=0.05, steps=60)
    assert abs(result.angle_error) < 0.02 and abs(result.rate_error) < 0.05
    assert float(result.controls.abs().max()) <= max_torque
    assert float(result.controls.abs().max()) > 0.9 * max_torque  # the bound is active
    assert result.states.shape == (20 * 4 + 1, 2) and result.times[-1] == pytest.approx(4.0)
    torch.testing.assert_close(result.states[0], torch.zeros(2, dtype=F64))
