"""Differentiable particle and ODE systems: each a ``torch.nn.Module`` vector field ``f(t, y)``.

Integrate them with :func:`scidl.numerics.odeint.odeint` (any system) or, for the mechanical
ones, with the symplectic integrators of :mod:`scidl.numerics.symplectic` through
``system.acceleration``. Physical constants are parameters, so gradients reach them.
"""

from scidl.sims.base import DynamicalSystem, MechanicalSystem, as_constant, register_constant
from scidl.sims.charged import ChargedParticles, ChargedParticlesData, charged_particles_dataset
from scidl.sims.lorenz import Lorenz63
from scidl.sims.lotka_volterra import LotkaVolterra
from scidl.sims.nbody import KeplerOrbit, NBody, kepler_orbit
from scidl.sims.pendulum import DoublePendulum, Pendulum
from scidl.sims.springs import SpringNetwork

__all__ = [
    "ChargedParticles",
    "ChargedParticlesData",
    "DoublePendulum",
    "DynamicalSystem",
    "KeplerOrbit",
    "Lorenz63",
    "LotkaVolterra",
    "MechanicalSystem",
    "NBody",
    "Pendulum",
    "SpringNetwork",
    "as_constant",
    "charged_particles_dataset",
    "kepler_orbit",
    "register_constant",
]
