"""Differentiable particle and ODE systems: each a ``torch.nn.Module`` vector field ``f(t, y)``.

Integrate them with :func:`scidl.numerics.odeint.odeint` (any system) or, for the mechanical
ones, with the symplectic integrators of :mod:`scidl.numerics.symplectic` through
``system.acceleration``. Physical constants are parameters, so gradients reach them.
"""

from scidl.sims.base import DynamicalSystem, MechanicalSystem, as_constant, register_constant
from scidl.sims.charged import ChargedParticles, ChargedParticlesData, charged_particles_dataset
from scidl.sims.control import SwingUp, swing_up
from scidl.sims.inverse import (
    OptimisationLog,
    ParameterFit,
    TargetShot,
    fit_parameters,
    hit_target,
    rollout,
)
from scidl.sims.lorenz import Lorenz63
from scidl.sims.lotka_volterra import LotkaVolterra
from scidl.sims.nbody import KeplerOrbit, NBody, kepler_orbit
from scidl.sims.pendulum import DoublePendulum, Pendulum
from scidl.sims.projectile import Projectile
from scidl.sims.setups import SETUPS, Setup, make_setup
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
    "OptimisationLog",
    "ParameterFit",
    "Pendulum",
    "Projectile",
    "SETUPS",
    "Setup",
    "SpringNetwork",
    "SwingUp",
    "TargetShot",
    "as_constant",
    "charged_particles_dataset",
    "fit_parameters",
    "hit_target",
    "kepler_orbit",
    "make_setup",
    "register_constant",
    "rollout",
    "swing_up",
]
