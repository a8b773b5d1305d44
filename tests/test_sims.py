"""scidl.sims: conservation laws, forces against -grad V, symmetries, the charged-particle data.

Checks: each system's energy or invariant is conserved by a fine integration (dopri5 at tight
tolerance, or a small Verlet drift); analytic accelerations equal the autograd ``-grad V / m``;
pairwise forces conserve momentum; potentials are translation and rotation invariant; Lorenz's
phase-space contraction rate and the double pendulum's normal modes; a two-body Kepler orbit
closes after one period; the charged-particle generator's statistics, determinism and dynamics
(against a direct port of the NRI loop); batched shapes in float32 and float64; Verlet keeps the
Kepler energy error bounded where RK4 drifts (short here; 10^6 steps under ``-m slow``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from scidl.errors import ShapeError
from scidl.numerics.odeint import odeint
from scidl.numerics.symplectic import integrate_second_order, velocity_verlet
from scidl.sims import (
    ChargedParticles,
    DoublePendulum,
    Lorenz63,
    LotkaVolterra,
    MechanicalSystem,
    NBody,
    Pendulum,
    SpringNetwork,
    charged_particles_dataset,
    kepler_orbit,
)

F64 = torch.float64


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def spring_network(n: int = 6, dim: int = 3) -> SpringNetwork:
    """A ring of ``n`` particles with cross-braces to the particle two along."""
    ring = [[i, (i + 1) % n] for i in range(n)] + [[i, (i + 2) % n] for i in range(n)]
    edges = torch.tensor(ring)
    stiffness = 1 + torch.rand(len(ring), generator=gen(1), dtype=F64)
    rest = 0.8 + 0.4 * torch.rand(len(ring), generator=gen(2), dtype=F64)
    masses = 0.5 + torch.rand(n, generator=gen(3), dtype=F64)
    return SpringNetwork(edges, stiffness, rest, masses, dim=dim)


def particle_systems() -> dict[str, MechanicalSystem]:
    charges = torch.tensor([1.0, -1.0, 1.0, 1.0, -1.0], dtype=F64)
    return {
        "springs": spring_network(),
        "nbody": NBody(torch.tensor([1.0, 2.0, 0.5, 1.5], dtype=F64)),
        "nbody_softened": NBody(torch.tensor([1.0, 2.0, 0.5], dtype=F64), softening=0.3),
        "charged": ChargedParticles(charges, masses=torch.tensor([1.0, 2.0, 1.0, 0.5, 1.0]),
                                    max_force=None),
    }


def spread_positions(system: MechanicalSystem, batch=(2,), dtype=F64, seed=0) -> torch.Tensor:
    n, dim = system.config_shape
    return 1.5 * torch.randn(*batch, n, dim, generator=gen(seed), dtype=dtype)


def random_rotation(dim: int, seed: int = 5) -> torch.Tensor:
    matrix, _ = torch.linalg.qr(torch.randn(dim, dim, generator=gen(seed), dtype=F64))
    return matrix


@pytest.mark.parametrize("name", ["springs", "nbody", "nbody_softened", "charged"])
def test_analytic_acceleration_is_minus_grad_potential(name):
    system = particle_systems()[name]
    q = spread_positions(system)
    analytic = system.acceleration(q)
    autograd = MechanicalSystem.acceleration(system, q)
    assert analytic.shape == q.shape
    assert torch.allclose(analytic, autograd, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["springs", "nbody", "nbody_softened", "charged"])
def test_momentum_conserved_and_potential_invariant(name):
    system = particle_systems()[name].requires_grad_(False)
    q = spread_positions(system)
    masses = system.coordinate_masses(q)
    total_force = (masses * system.acceleration(q)).sum(-2)
    assert float(total_force.abs().max()) < 1e-12 * float(system.acceleration(q).abs().max())
    shift = torch.tensor([0.7, -3.0, 1.1], dtype=F64)
    rotation = random_rotation(3)
    potential = system.potential(q)
    assert torch.allclose(system.potential(q + shift), potential, rtol=1e-12, atol=1e-12)
    assert torch.allclose(system.potential(q @ rotation.T), potential, rtol=1e-12, atol=1e-12)
    # forces rotate with the frame
    assert torch.allclose(system.acceleration(q @ rotation.T), system.acceleration(q) @ rotation.T,
                          rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["springs", "nbody_softened", "charged"])
def test_verlet_conserves_energy_and_momentum(name):
    system = particle_systems()[name]
    q0 = spread_positions(system, batch=())
    v0 = 0.3 * torch.randn(q0.shape, generator=gen(9), dtype=F64)
    with torch.no_grad():
        q, v = velocity_verlet(system.acceleration, q0, v0, torch.linspace(0, 2, 21), 1e-3)
        energy = system.energy_qv(q, v)
        momentum = (system.coordinate_masses(q0) * v).sum(-2)
    assert float((energy - energy[0]).abs().max()) < 1e-5 * float(energy[0].abs()) + 1e-8
    assert float((momentum - momentum[0]).abs().max()) < 1e-12


def test_pendulum_energy_period_and_forces():
    system = Pendulum(length=2.0, gravity=9.81, mass=0.7, learnable=False)
    theta = torch.linspace(-3, 3, 13, dtype=F64).unsqueeze(-1)
    assert torch.allclose(system.acceleration(theta), MechanicalSystem.acceleration(system, theta))
    y0 = system.pack(torch.tensor([[2.5], [0.01]], dtype=F64), torch.zeros(2, 1, dtype=F64))
    period = 2 * math.pi * math.sqrt(2.0 / 9.81)
    y = odeint(system, y0, torch.linspace(0, period, 5, dtype=F64), rtol=1e-11, atol=1e-13)
    energy = system.energy(y)
    assert float((energy - energy[0]).abs().max()) < 1e-9 * float(energy[0, 0])
    # small amplitude: back after 2 pi sqrt(l / g) (error O(amplitude^2) ~ 1e-5 relative)
    assert abs(float(y[-1, 1, 0]) - 0.01) < 1e-6


def test_double_pendulum_energy_and_normal_modes():
    system = DoublePendulum(m1=1.0, m2=1.0, l1=1.0, l2=1.0, g=9.81, learnable=False)
    y0 = torch.tensor([[2.0, -1.0, 0.5, 0.0], [0.1, 0.2, 0.0, 0.0]], dtype=F64)
    y = odeint(system, y0, torch.linspace(0, 5, 6, dtype=F64), rtol=1e-10, atol=1e-12)
    energy = system.energy(y)
    assert float((energy - energy[0]).abs().max()) < 1e-8 * float(energy[0].abs().max())
    # linearised about rest, equal masses and lengths: w^2 = (g / l)(2 -+ sqrt 2)
    jacobian = torch.autograd.functional.jacobian(lambda s: system(torch.tensor(0.0), s),
                                                  torch.zeros(4, dtype=F64))
    frequencies = sorted(torch.linalg.eigvals(jacobian).imag.abs().tolist())
    slow, fast = (math.sqrt(9.81 * (2 + sign * math.sqrt(2))) for sign in (-1, 1))
    expected = [slow, slow, fast, fast]
    assert np.allclose(frequencies, expected, rtol=1e-10)


def test_lotka_volterra_invariant_conserved():
    system = LotkaVolterra(learnable=False)
    y0 = torch.tensor([[1.0, 1.0], [0.5, 2.0]], dtype=F64)
    y = odeint(system, y0, torch.linspace(0, 20, 21, dtype=F64), rtol=1e-11, atol=1e-13)
    invariant = system.energy(y)
    assert float((invariant - invariant[0]).abs().max()) < 1e-9
    assert float((y[:, 0] - y[:, 1]).abs().max()) > 0.1  # it does move


def test_lorenz_contracts_phase_space_and_has_no_invariant():
    system = Lorenz63()
    y = torch.tensor([1.0, -2.0, 25.0], dtype=F64)
    jacobian = torch.autograd.functional.jacobian(lambda s: system(torch.tensor(0.0), s), y)
    assert float(torch.trace(jacobian)) == pytest.approx(-(10 + 1 + 8 / 3), abs=1e-12)
    with pytest.raises(NotImplementedError):
        system.energy(y)
    rho_grad = torch.autograd.grad(system(torch.tensor(0.0), y)[1], system.rho)[0]
    assert float(rho_grad) == pytest.approx(1.0)  # dy'/drho = x


def test_kepler_orbit_closes_after_one_period():
    orbit = kepler_orbit(0.6, semi_major_axis=1.5, masses=(1.0, 0.3), dim=3)
    system = orbit.system()
    y0 = system.pack(orbit.positions, orbit.velocities)
    with torch.no_grad():
        assert float(system.energy(y0)) == pytest.approx(orbit.energy, rel=1e-14)
        y = odeint(system, y0, [0.0, orbit.period / 2, orbit.period], rtol=1e-12, atol=1e-14)
    assert float((y[-1] - y0).abs().max()) < 1e-8
    q_half, _ = system.unpack(y[1])
    apocentre = float(torch.linalg.vector_norm(q_half[1] - q_half[0]))
    assert apocentre == pytest.approx(1.5 * 1.6, rel=1e-9)


SYSTEMS = {
    "lorenz": Lorenz63,
    "lotka_volterra": LotkaVolterra,
    "pendulum": Pendulum,
    "double_pendulum": DoublePendulum,
    "springs": lambda: spring_network(4, 2),
    "nbody": lambda: NBody(torch.ones(3)),
    "charged": lambda: ChargedParticles(torch.tensor([[1.0, -1.0, 1.0]]).expand(2, 3)),
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", sorted(SYSTEMS))
def test_batched_shapes_and_dtypes(name, dtype):
    system = SYSTEMS[name]()
    y = 0.5 + torch.rand(4, 2, system.state_dim, generator=gen(), dtype=dtype)
    dy = system(torch.tensor(0.0, dtype=dtype), y)
    assert dy.shape == y.shape and dy.dtype == dtype and torch.isfinite(dy).all()
    trajectory = odeint(system, y, [0.0, 0.01, 0.02], method="rk4", step_size=0.005)
    assert trajectory.shape == (3, *y.shape) and trajectory.dtype == dtype
    if isinstance(system, MechanicalSystem):
        q, v = system.unpack(y)
        assert torch.equal(system.pack(q, v), y)
        assert system.energy_qv(q, v).shape == (4, 2)
    with pytest.raises(ShapeError):
        system(torch.tensor(0.0), torch.zeros(4, system.state_dim + 1, dtype=dtype))


def test_parameters_are_learnable_or_buffers():
    learnable = SpringNetwork(torch.tensor([[0, 1]]), stiffness=2.0)
    frozen = SpringNetwork(torch.tensor([[0, 1]]), stiffness=2.0, learnable=False)
    assert {n for n, _ in learnable.named_parameters()} == {"stiffness", "rest_length", "masses"}
    assert not list(frozen.parameters()) and "stiffness" in dict(frozen.named_buffers())
    assert learnable.stiffness.dtype == F64


def test_charged_particles_dataset_statistics_and_determinism():
    data = charged_particles_dataset(800, steps=20, seed=3)
    assert data.positions0.shape == data.velocities0.shape == data.positions.shape == (800, 5, 3)
    assert data.charges.shape == (800, 5)
    assert set(data.charges.unique().tolist()) == {-1.0, 1.0}
    assert abs(float(data.charges.mean())) < 0.05
    speeds = torch.linalg.vector_norm(data.velocities0, dim=-1)
    assert torch.allclose(speeds, torch.full_like(speeds, 0.5), atol=1e-12)
    assert float(data.positions0.std()) == pytest.approx(1.0, abs=0.03)
    assert abs(float(data.positions0.mean())) < 0.03
    assert float((data.positions - data.positions0).abs().max()) > 0
    again = charged_particles_dataset(800, steps=20, seed=3)
    assert torch.equal(again.positions, data.positions) and torch.equal(again.charges, data.charges)
    other = charged_particles_dataset(800, steps=20, seed=4)
    assert not torch.equal(other.positions0, data.positions0)
    assert data.metadata["seed"] == 3 and data.metadata["dt"] == 1e-3


def nri_reference(loc, vel, charges, steps, dt=1e-3):
    """The NRI / EGNN ``ChargedParticlesSim`` loop written out in numpy, ``loc [dim, n]``."""
    edges = np.outer(charges, charges)
    max_force = 0.1 / dt

    def force(x):
        diff = x[:, :, None] - x[:, None, :]  # x_i - x_j
        dist3 = np.sqrt((diff**2).sum(0)) ** 3
        np.fill_diagonal(dist3, np.inf)
        return np.clip((edges / dist3 * diff).sum(-1), -max_force, max_force)

    loc, vel = loc.copy(), vel + dt * force(loc)
    for _ in range(steps):
        loc = loc + dt * vel
        vel_out = vel.copy()
        vel = vel + dt * force(loc)
    return loc, vel_out


def test_charged_particles_dataset_follows_the_nri_loop():
    data = charged_particles_dataset(3, steps=300, seed=0)
    short = charged_particles_dataset(3, steps=100, burn_in=200, seed=0)
    for i in range(3):
        loc, vel = nri_reference(data.positions0[i].T.numpy(), data.velocities0[i].T.numpy(),
                                 data.charges[i].numpy(), 300)
        assert np.allclose(loc.T, data.positions[i].numpy(), atol=1e-10)
        assert np.allclose(vel.T, data.velocities[i].numpy(), atol=1e-10)
        assert torch.allclose(short.positions[i], data.positions[i], atol=1e-12)


def kepler_energy_errors(method: str, steps: int, per_orbit: int, every: int):
    orbit = kepler_orbit(0.5)
    system = orbit.system(learnable=False)
    h = orbit.period / per_orbit
    t = torch.arange(0, steps + 1, every, dtype=F64) * h
    with torch.inference_mode():
        q, v = integrate_second_order(system.acceleration, orbit.positions, orbit.velocities, t, h,
                                      method=method)
        return (system.energy_qv(q, v) / orbit.energy - 1).abs()


def test_verlet_energy_bounded_where_rk4_drifts_on_kepler():
    """2e4 steps, 100 per orbit (e = 0.5): Verlet's worst error is the same in the first and
    the last tenth; RK4's error at the end is about 10x its error after a tenth of the run."""
    verlet = kepler_energy_errors("verlet", 20_000, 100, 100)  # sampled once per orbit
    rk4 = kepler_energy_errors("rk4", 20_000, 100, 100)
    tenth = len(verlet) // 10
    assert float(verlet[-tenth:].max()) < 1.2 * float(verlet[:tenth + 1].max())
    assert float(rk4[-1]) > 5 * float(rk4[tenth])
    assert bool((rk4[2:].diff() > 0).all())  # monotone drift, orbit by orbit


def octagon_springs(n: int = 8) -> tuple[SpringNetwork, torch.Tensor, torch.Tensor]:
    """A ring with first- and second-neighbour springs, at rest as a regular polygon, started
    near it (as in benchmarks/energy_stability.py)."""
    angles = torch.arange(n, dtype=F64) * 2 * math.pi / n
    polygon = torch.stack([torch.cos(angles), torch.sin(angles)], -1) / (2 * math.sin(math.pi / n))
    edges = torch.tensor([[i, (i + k) % n] for k in (1, 2) for i in range(n)])
    rest = torch.linalg.vector_norm(polygon[edges[:, 0]] - polygon[edges[:, 1]], dim=-1)
    masses = 0.5 + torch.rand(n, generator=gen(3), dtype=F64)
    system = SpringNetwork(edges, 1 + torch.rand(len(edges), generator=gen(1), dtype=F64), rest,
                           masses, dim=2, learnable=False)
    q0 = polygon + 0.1 * torch.randn(n, 2, generator=gen(4), dtype=F64)
    v0 = 0.1 * torch.randn(n, 2, generator=gen(5), dtype=F64)
    return system, q0, v0 - (masses[:, None] * v0).sum(0) / masses.sum()


@pytest.mark.slow
def test_energy_stability_over_a_million_steps():
    """Kepler (Verlet and RK4) and a spring network (Verlet), 10^6 steps each (minutes)."""
    verlet = kepler_energy_errors("verlet", 1_000_000, 100, 1000)
    rk4 = kepler_energy_errors("rk4", 1_000_000, 100, 1000)
    tenth = len(verlet) // 10
    assert float(verlet[-tenth:].max()) < 1.2 * float(verlet[:tenth + 1].max())
    assert float(rk4[-1]) > 5 * float(rk4[tenth])
    system, q0, v0 = octagon_springs()
    t = torch.arange(0, 1_000_001, 1000, dtype=F64) * 0.05
    with torch.inference_mode():
        q, v = velocity_verlet(system.acceleration, q0, v0, t, 0.05)
        energy = system.energy_qv(q, v)
    error = ((energy - energy[0]) / energy[0]).abs()
    assert float(error[-tenth:].max()) < 2 * float(error[:tenth + 1].max())
    assert float(error.max()) < 1e-2
