"""Named, ready-to-run set-ups: a system with its physical constants and an initial state.

Configs name a set-up (``system: {name: kepler, eccentricity: 0.5}``) instead of spelling out
tensors; :func:`make_setup` builds it. Every set-up is deterministic for its arguments.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

import torch

from scidl.sims.base import DynamicalSystem, MechanicalSystem
from scidl.sims.charged import ChargedParticles, charged_particles_dataset
from scidl.sims.lorenz import Lorenz63
from scidl.sims.lotka_volterra import LotkaVolterra
from scidl.sims.nbody import kepler_orbit
from scidl.sims.pair_potential import SoftSpheres, soft_sphere_state
from scidl.sims.pendulum import DoublePendulum, Pendulum
from scidl.sims.springs import SpringNetwork


@dataclass(frozen=True)
class Setup:
    """A system and its initial state.

    Attributes:
        system: the module (its constants are parameters, so it can be fitted).
        y0: the first-order initial state ``[state_dim]`` (float64).
        description: one line for reports.
    """

    system: DynamicalSystem
    y0: torch.Tensor
    description: str

    @property
    def mechanical(self) -> bool:
        """Whether the symplectic integrators apply (``q'' = a(q)``, separable energy)."""
        return isinstance(self.system, MechanicalSystem)


def kepler(eccentricity: float = 0.5, semi_major_axis: float = 1.0) -> Setup:
    """Two equal unit masses on a Kepler ellipse (G = 1), starting at pericentre."""
    orbit = kepler_orbit(eccentricity, semi_major_axis)
    system = orbit.system()
    return Setup(system, system.pack(orbit.positions, orbit.velocities),
                 f"Kepler two-body problem, e = {eccentricity:g}, a = {semi_major_axis:g}, "
                 f"period {orbit.period:.4g}")


def spring_chain(particles: int = 5, stiffness: float = 1.0, rest_length: float = 1.0,
                 mass: float = 1.0, perturbation: float = 0.1, seed: int = 0) -> Setup:
    """A chain of ``particles`` unit masses in the plane joined by springs, started at rest
    from rest-length spacing plus a seeded Gaussian perturbation of the positions."""
    edges = torch.stack([torch.arange(particles - 1), torch.arange(1, particles)], dim=1)
    system = SpringNetwork(edges, stiffness, rest_length, mass, dim=2, n_particles=particles)
    generator = torch.Generator().manual_seed(seed)
    q0 = torch.zeros(particles, 2, dtype=torch.float64)
    q0[:, 0] = rest_length * torch.arange(particles, dtype=torch.float64)
    q0 = q0 + perturbation * torch.randn(q0.shape, generator=generator, dtype=torch.float64)
    return Setup(system, system.pack(q0, torch.zeros_like(q0)),
                 f"spring chain of {particles} masses, k = {stiffness:g}, "
                 f"rest length {rest_length:g}, perturbation {perturbation:g} (seed {seed})")


def pendulum(length: float = 1.0, gravity: float = 9.81, mass: float = 1.0, angle: float = 1.0,
             angular_velocity: float = 0.0) -> Setup:
    """A simple pendulum released at ``angle`` (radians from hanging down)."""
    system = Pendulum(length, gravity, mass)
    y0 = torch.tensor([angle, angular_velocity], dtype=torch.float64)
    return Setup(system, y0, f"pendulum, l = {length:g}, g = {gravity:g}, "
                             f"theta0 = {angle:g}, omega0 = {angular_velocity:g}")


def double_pendulum(angle1: float = 1.0, angle2: float = 0.5, m1: float = 1.0, m2: float = 1.0,
                    l1: float = 1.0, l2: float = 1.0, g: float = 9.81) -> Setup:
    """A double pendulum released at rest from the angles ``(angle1, angle2)``."""
    system = DoublePendulum(m1, m2, l1, l2, g)
    y0 = torch.tensor([angle1, angle2, 0.0, 0.0], dtype=torch.float64)
    return Setup(system, y0, f"double pendulum, angles ({angle1:g}, {angle2:g}) at rest")


def lotka_volterra(alpha: float = 2 / 3, beta: float = 4 / 3, gamma: float = 1.0,
                   delta: float = 1.0, prey: float = 1.8, predators: float = 1.0) -> Setup:
    """Lotka-Volterra populations from ``(prey, predators)`` (the equilibrium of the default
    rates is ``(gamma / delta, alpha / beta) = (1, 0.5)``; the default start orbits it)."""
    system = LotkaVolterra(alpha, beta, gamma, delta)
    y0 = torch.tensor([prey, predators], dtype=torch.float64)
    return Setup(system, y0, f"Lotka-Volterra, rates ({alpha:.4g}, {beta:.4g}, {gamma:.4g}, "
                             f"{delta:.4g}), start ({prey:g}, {predators:g})")


def lorenz63(sigma: float = 10.0, rho: float = 28.0, beta: float = 8 / 3, x: float = 1.0,
             y: float = 1.0, z: float = 1.0) -> Setup:
    """The Lorenz (1963) system from ``(x, y, z)``."""
    system = Lorenz63(sigma, rho, beta)
    return Setup(system, torch.tensor([x, y, z], dtype=torch.float64),
                 f"Lorenz-63, sigma = {sigma:g}, rho = {rho:g}, beta = {beta:.4g}")


def charged(seed: int = 0, particles: int = 5) -> Setup:
    """Charged particles as in the EGNN paper's generator (charges +-1, positions N(0, 1),
    speeds 0.5); sample 0 of :func:`charged_particles_dataset` with ``seed``."""
    data = charged_particles_dataset(1, steps=1, seed=seed, n_particles=particles)
    system = ChargedParticles(data.charges[0])
    q0, v0 = data.positions0[0], data.velocities0[0]
    return Setup(system, system.pack(q0, v0),
                 f"{particles} charged particles (EGNN/NRI generator, seed {seed})")


def soft_spheres(particles: int = 24, box: float = 6.0, sigma: float = 1.0,
                 epsilon: float = 2.0, temperature: float = 0.5, wall_stiffness: float = 100.0,
                 seed: int = 0) -> Setup:
    """``particles`` unit masses with the smooth repulsion ``eps (1 - r^2/sigma^2)^3`` in a
    square ``box`` with soft walls (:class:`~scidl.sims.pair_potential.SoftSpheres`), started
    from a jittered grid with Gaussian velocities of variance ``temperature`` (``seed``)."""
    system = SoftSpheres(particles, box, epsilon, sigma, wall_stiffness, dim=2)
    q0, v0 = soft_sphere_state(system, temperature, torch.Generator().manual_seed(seed))
    return Setup(system, system.pack(q0, v0),
                 f"{particles} soft spheres in a {box:g} x {box:g} box, eps = {epsilon:g}, "
                 f"sigma = {sigma:g}, temperature {temperature:g} (seed {seed})")


#: name -> set-up factory; keyword arguments are the factory's parameters
SETUPS: dict[str, Callable[..., Setup]] = {
    "kepler": kepler,
    "spring_chain": spring_chain,
    "pendulum": pendulum,
    "double_pendulum": double_pendulum,
    "lotka_volterra": lotka_volterra,
    "lorenz63": lorenz63,
    "charged": charged,
    "soft_spheres": soft_spheres,
}


def make_setup(name: str, **parameters: float) -> Setup:
    """Build the set-up ``name`` with ``parameters``; unknown names or keys are a ValueError
    that lists what is known."""
    if name not in SETUPS:
        raise ValueError(f"unknown system {name!r}; known: {sorted(SETUPS)}")
    factory = SETUPS[name]
    signature = inspect.signature(factory).parameters
    unknown = sorted(set(parameters) - set(signature))
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown} for system {name!r}; "
                         f"it takes {list(signature)}")
    values = {}
    for key, value in parameters.items():  # configs give numbers; counts and seeds are ints
        if isinstance(signature[key].default, int) and not isinstance(value, int):
            if float(value) != int(value):
                raise ValueError(f"parameter {key!r} of system {name!r} must be a whole "
                                 f"number, got {value}")
            value = int(value)
        values[key] = value
    return factory(**values)
