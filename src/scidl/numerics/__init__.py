"""Grids, derivative operators, time steppers, solvers, elliptic solves and random fields."""

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
from scidl.numerics.random_fields import (
    GaussianRandomField,
    NeumannGaussianRandomField,
    RandomSineSeries,
)
from scidl.numerics.rk4 import RK4
from scidl.numerics.simulate import simulate
from scidl.numerics.steppers import BlockSymbol, SemilinearStepper, apply_linear

__all__ = [
    "AdaptiveSolution",
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
    "FiniteDifferenceDerivatives",
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
    "odeint_adaptive",
    "odeint_fixed",
    "simulate",
    "solve_darcy",
    "solve_poisson_dirichlet",
    "solve_poisson_periodic",
]
