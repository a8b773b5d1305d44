"""Physics-informed neural networks: the PDE's own residual as a loss.

* :mod:`~scidl.pinn.geometry` -- domains (interval, rectangle, box, disk, polygon, x time) and
  their uniform / Sobol / Latin-hypercube sampling;
* :mod:`~scidl.pinn.conditions` -- initial, Dirichlet, Neumann, periodic and data terms;
* :mod:`~scidl.pinn.network` -- input features, hard constraints, the field network;
* :mod:`~scidl.pinn.jet` -- forward-mode (Taylor) derivatives, the fast default;
* :mod:`~scidl.pinn.problem` -- the objective: residual, conditions, unknown parameters,
  adaptive refinement and resampling, loss balancing.
"""

from scidl.pinn.conditions import (
    Condition,
    DirichletBC,
    InitialCondition,
    NeumannBC,
    Observations,
    PeriodicBC,
)
from scidl.pinn.geometry import Box, Disk, Interval, Polygon, Rectangle, SpaceTime, TimeDomain
from scidl.pinn.jet import Jet, JetDerivatives
from scidl.pinn.model import PINN, AdaptiveSampling, Balancing, Refinement, Unknown
from scidl.pinn.network import CoordinateFeatures, FieldNetwork, HardConstraint
from scidl.pinn.problem import PINNProblem

__all__ = [
    "PINN", "AdaptiveSampling", "Balancing", "Box", "Condition", "CoordinateFeatures",
    "DirichletBC", "Disk",
    "FieldNetwork", "HardConstraint", "InitialCondition", "Interval", "Jet", "JetDerivatives",
    "NeumannBC", "Observations", "PINNProblem", "PeriodicBC", "Polygon", "Rectangle",
    "Refinement", "SpaceTime", "TimeDomain", "Unknown",
]
