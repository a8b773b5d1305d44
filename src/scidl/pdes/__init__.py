"""PDE families, one module each; physics only (right-hand sides over derivative operators)."""

from scidl.pdes.base import TimeDependentPDE
from scidl.pdes.burgers import Burgers
from scidl.pdes.heat import Heat

#: config / CLI name -> PDE class
PDES: dict[str, type[TimeDependentPDE]] = {cls.name: cls for cls in (Burgers, Heat)}


def make_pde(name: str, **params: float) -> TimeDependentPDE:
    """Build a PDE from its registered name and parameters, e.g. ``make_pde("burgers", nu=0.1)``."""
    if name not in PDES:
        raise ValueError(f"unknown equation {name!r}; known: {sorted(PDES)}")
    return PDES[name](**params)


__all__ = ["TimeDependentPDE", "Burgers", "Heat", "PDES", "make_pde"]
