"""Grids, derivative operators, time steppers, solvers, elliptic solves and random fields."""

from scidl.numerics.adjoint import AdjointStats, odeint_adjoint
from scidl.numerics.butcher import (
    BOGACKI_SHAMPINE,
    CLASSIC_RK4,
    ButcherStepper,
    ButcherTableau,
    odeint_fixed,
)
from scidl.numerics.derivatives import AutogradDerivatives, Derivatives, SpectralDerivatives
from scidl.numerics.dopri5 import (
    DOPRI5,
    AdaptiveSolution,
    StepLimitError,
    StepSizeController,
    odeint_adaptive,
)
from scidl.numerics.elliptic import solve_darcy, solve_poisson_dirichlet, solve_poisson_periodic
from scidl.numerics.etdrk4 import ETDRK4
from scidl.numerics.finite_differences import (
    FiniteDifferenceDerivatives,
    central_difference_weights,
)
from scidl.numerics.grids import PeriodicGrid
from scidl.numerics.imex import CrankNicolsonHeun
from scidl.numerics.interpolation import fourier_interpolate, fourier_resample
from scidl.numerics.odeint import EXPLICIT_EULER, EXPLICIT_MIDPOINT, odeint
from scidl.numerics.random_fields import (
    GaussianRandomField,
    NeumannGaussianRandomField,
    RandomSineSeries,
)
from scidl.numerics.rk4 import RK4
from scidl.numerics.simulate import simulate
from scidl.numerics.steppers import BlockSymbol, SemilinearStepper, apply_linear
from scidl.numerics.symmetries import GalileanBoost, galilean_boost
from scidl.numerics.symplectic import (
    integrate_second_order,
    leapfrog,
    symplectic_euler,
    velocity_verlet,
)

__all__ = [
    "AdaptiveSolution",
    "AdjointStats",
    "AutogradDerivatives",
    "BOGACKI_SHAMPINE",
    "BlockSymbol",
    "ButcherStepper",
    "ButcherTableau",
    "CLASSIC_RK4",
    "CrankNicolsonHeun",
    "DOPRI5",
    "Derivatives",
    "ETDRK4",
    "EXPLICIT_EULER",
    "EXPLICIT_MIDPOINT",
    "FiniteDifferenceDerivatives",
    "GalileanBoost",
    "GaussianRandomField",
    "NeumannGaussianRandomField",
    "PeriodicGrid",
    "RK4",
    "RandomSineSeries",
    "SemilinearStepper",
    "SpectralDerivatives",
    "StepLimitError",
    "StepSizeController",
    "apply_linear",
    "central_difference_weights",
    "fourier_interpolate",
    "fourier_resample",
    "galilean_boost",
    "integrate_second_order",
    "leapfrog",
    "odeint",
    "odeint_adaptive",
    "odeint_adjoint",
    "odeint_fixed",
    "simulate",
    "solve_darcy",
    "solve_poisson_dirichlet",
    "solve_poisson_periodic",
    "symplectic_euler",
    "velocity_verlet",
]
