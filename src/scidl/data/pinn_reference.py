"""Reference solutions of the PINN literature (DeepXDE's example data), as scored grids.

``load_pinn_reference(name, path=None)`` reads ``Burgers.npz`` (Raissi et al. 2019: ``u_t + u u_x =
(0.01/pi) u_xx`` on ``[-1, 1] x [0, 0.99]``) or ``Allen_Cahn.mat`` (``u_t = 0.001 u_xx + 5 (u -
u^3)``, ``u_0 = x^2 cos(pi x)``) from ``path`` or ``$SCIDL_DATA/pinn/``; nothing is downloaded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from scidl.data.hdf5 import DATA_ENV
from scidl.errors import DataError

FILES = {"burgers": "Burgers.npz", "allen_cahn": "Allen_Cahn.mat",
         "poisson_lshape": "Poisson_Lshape.npz"}


@dataclass
class GridReference:
    """A solution on a space-time grid.

    Attributes:
        x: ``[N]`` positions; t: ``[T]`` times; u: ``[N, T]`` values.
    """

    x: torch.Tensor
    t: torch.Tensor
    u: torch.Tensor

    def points(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``X [N T, 2]`` (columns x, t) and ``u [N T]`` in the same order."""
        xx, tt = torch.meshgrid(self.x, self.t, indexing="ij")
        return torch.stack([xx.reshape(-1), tt.reshape(-1)], 1), self.u.reshape(-1)


def reference_path(name: str, path: str | os.PathLike | None = None) -> Path:
    if name not in FILES:
        raise DataError(f"unknown PINN reference {name!r}; known: {', '.join(FILES)}")
    if path is not None:
        file = Path(path)
    elif os.environ.get(DATA_ENV):
        file = Path(os.environ[DATA_ENV]) / "pinn" / FILES[name]
    else:
        raise DataError(f"no reference file for {name!r}: pass path= or set ${DATA_ENV} to a "
                        f"folder holding pinn/{FILES[name]}")
    if not file.exists():
        raise DataError(f"reference file {str(file)!r} does not exist")
    return file


def load_scattered_reference(name: str = "poisson_lshape",
                             path: str | os.PathLike | None = None):
    """Points ``X [P, 2]`` and values ``u [P]`` of a steady reference given at scattered points
    (``poisson_lshape``: ``-lap u = 1`` on the L-shape ``[-1, 1]^2`` minus ``[0, 1]^2``, ``u = 0``
    on the boundary). Points marked NaN in the file (the cut-out quadrant) are dropped.

    The file's values deviate from a converged finite-difference solve by about 9% (its maximum
    is 0.134 against 0.149; see BENCHMARKS.md): score against it with that in mind."""
    data = np.load(reference_path(name, path))
    X, u = np.asarray(data["X_test"], np.float64), np.asarray(data["y_ref"], np.float64)[:, 0]
    keep = np.isfinite(X).all(1) & np.isfinite(u)
    return torch.as_tensor(X[keep]), torch.as_tensor(u[keep])


def load_pinn_reference(name: str, path: str | os.PathLike | None = None) -> GridReference:
    """The reference solution ``name`` (``burgers`` or ``allen_cahn``) as a grid."""
    if name not in ("burgers", "allen_cahn"):
        raise DataError(f"{name!r} is not a space-time grid reference; use "
                        "load_scattered_reference")
    file = reference_path(name, path)
    as_t = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float64))  # noqa: E731
    if name == "burgers":
        data = np.load(file)
        return GridReference(as_t(data["x"]).reshape(-1), as_t(data["t"]).reshape(-1),
                             as_t(data["usol"]))
    from scipy.io import loadmat

    data = loadmat(file)
    # Allen_Cahn.mat stores u as [T, N]
    return GridReference(as_t(data["x"]).reshape(-1), as_t(data["t"]).reshape(-1),
                         as_t(data["u"]).t().contiguous())
