"""PDE families, one module each; physics only (right-hand sides over derivative operators)."""

from scidl.pdes.advection import Advection
from scidl.pdes.allen_cahn import AllenCahn
from scidl.pdes.base import TimeDependentPDE
from scidl.pdes.burgers import Burgers
from scidl.pdes.darcy import Darcy, threshold_coefficient
from scidl.pdes.fisher_kpp import FisherKPP
from scidl.pdes.heat import Heat
from scidl.pdes.kdv import KdV
from scidl.pdes.kuramoto_sivashinsky import KuramotoSivashinsky
from scidl.pdes.navier_stokes import NavierStokes2D
from scidl.pdes.poisson import Poisson
from scidl.pdes.shallow_water import ShallowWater2D
from scidl.pdes.steady import SteadyPDE
from scidl.pdes.trajectory_residual import residual_loss, trajectory_residual
from scidl.pdes.wave import Wave

#: config / CLI name -> time-dependent PDE class
PDES: dict[str, type[TimeDependentPDE]] = {
    cls.name: cls
    for cls in (Advection, AllenCahn, Burgers, FisherKPP, Heat, KdV, KuramotoSivashinsky,
                NavierStokes2D, ShallowWater2D, Wave)
}


def make_pde(name: str, **params: float) -> TimeDependentPDE:
    """Build a PDE from its registered name and parameters, e.g. ``make_pde("burgers", nu=0.1)``."""
    if name not in PDES:
        raise ValueError(f"unknown equation {name!r}; known: {sorted(PDES)}")
    return PDES[name](**params)


__all__ = [
    "Advection",
    "AllenCahn",
    "Burgers",
    "Darcy",
    "FisherKPP",
    "Heat",
    "KdV",
    "KuramotoSivashinsky",
    "NavierStokes2D",
    "PDES",
    "Poisson",
    "ShallowWater2D",
    "SteadyPDE",
    "TimeDependentPDE",
    "Wave",
    "make_pde",
    "residual_loss",
    "threshold_coefficient",
    "trajectory_residual",
]
