"""Domains and collocation-point sampling for physics-informed neural networks.

Points are float64 tensors of shape ``[P, dim]`` whose columns are the spatial coordinates
``x, y, z`` in order; for a :class:`SpaceTime` domain the last column is ``t``.

Every geometry maps points of the unit cube onto itself (interior) or its boundary, so the
quasi-Monte-Carlo structure of Sobol' and Latin-hypercube samples is carried into the domain.
Sampling methods are

* ``"uniform"``: pseudo-random, from a seeded :class:`torch.Generator`;
* ``"sobol"``: scrambled Sobol' sequence (:class:`scipy.stats.qmc.Sobol`), drawn in powers of
  two and truncated, so the first ``n`` points of one sequence are returned;
* ``"lhs"``: Latin hypercube (:class:`scipy.stats.qmc.LatinHypercube`).

The same ``seed`` always gives the same points.
"""

from scidl.pinn.geometry.base import SAMPLING_METHODS, Geometry
from scidl.pinn.geometry.boxes import Box, Interval, Rectangle, TimeDomain
from scidl.pinn.geometry.shapes import Disk, Polygon
from scidl.pinn.geometry.spacetime import SpaceTime

__all__ = [
    "SAMPLING_METHODS",
    "Box",
    "Disk",
    "Geometry",
    "Interval",
    "Polygon",
    "Rectangle",
    "SpaceTime",
    "TimeDomain",
]
