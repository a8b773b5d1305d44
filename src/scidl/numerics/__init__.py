"""Grids, derivative operators, time steppers, solvers and random fields."""

from scidl.numerics.derivatives import AutogradDerivatives, Derivatives, SpectralDerivatives
from scidl.numerics.etdrk4 import ETDRK4
from scidl.numerics.grids import PeriodicGrid
from scidl.numerics.interpolation import fourier_interpolate
from scidl.numerics.random_fields import GaussianRandomField
from scidl.numerics.rk4 import RK4
from scidl.numerics.simulate import simulate
from scidl.numerics.steppers import SemilinearStepper

__all__ = [
    "AutogradDerivatives",
    "Derivatives",
    "ETDRK4",
    "GaussianRandomField",
    "PeriodicGrid",
    "RK4",
    "SemilinearStepper",
    "SpectralDerivatives",
    "fourier_interpolate",
    "simulate",
]
