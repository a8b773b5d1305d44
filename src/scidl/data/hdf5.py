"""Self-describing HDF5 datasets: arrays plus the metadata that made them."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import torch

from scidl._atomic import atomic_write
from scidl.errors import DataError

#: environment variable naming a folder in which relative data paths are also looked up
DATA_ENV = "SCIDL_DATA"


@dataclass
class FieldDataset:
    """Trajectories of a field on a grid, with metadata.

    Attributes:
        u: ``[B, T, *S]`` trajectories (``T`` output times, ``S`` the spatial grid).
        t: ``[T]`` output times.
        x: ``[N]`` grid coordinates of the first spatial dimension.
        attrs: metadata (equation, parameters, grid, solver, seed, scidl version, ...).
    """

    u: torch.Tensor
    t: torch.Tensor
    x: torch.Tensor
    attrs: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return self.u.shape[0]


def resolve_data_path(path: str | os.PathLike) -> Path:
    """Return ``path`` if it exists, else ``$SCIDL_DATA/path``; raise DataError if neither does."""
    path = Path(path)
    if path.exists():
        return path
    root = os.environ.get(DATA_ENV)
    if root and not path.is_absolute() and (Path(root) / path).exists():
        return Path(root) / path
    where = f" (also looked in ${DATA_ENV}={root})" if root else ""
    raise DataError(f"data file {str(path)!r} does not exist{where}")


def write_dataset(path: str | os.PathLike, dataset: FieldDataset) -> Path:
    """Write ``dataset`` to HDF5 atomically (a temporary file renamed into place)."""
    path = Path(path)
    with atomic_write(path) as tmp, h5py.File(tmp, "w") as f:
        for name in ("u", "t", "x"):
            f.create_dataset(name, data=getattr(dataset, name).detach().cpu().numpy())
        for key, value in dataset.attrs.items():
            if isinstance(value, (dict, list)):
                value = json.dumps(value)
            elif isinstance(value, str):
                value = str(value)  # e.g. torch.__version__ is a str subclass h5py rejects
            f.attrs[key] = value
    return path


def read_dataset(path: str | os.PathLike) -> FieldDataset:
    """Read a dataset written by :func:`write_dataset`; checks that every array is finite."""
    path = resolve_data_path(path)
    try:
        with h5py.File(path, "r") as f:
            missing = [name for name in ("u", "t", "x") if name not in f]
            if missing:
                raise DataError(f"data file {str(path)!r} has no array {missing[0]!r}")
            arrays = {name: torch.from_numpy(np.asarray(f[name])) for name in ("u", "t", "x")}
            attrs = {key: _decode(value) for key, value in f.attrs.items()}
    except OSError as err:
        raise DataError(f"data file {str(path)!r} is not a readable HDF5 file ({err})") from None
    for name, array in arrays.items():
        if not torch.isfinite(array).all():
            bad = int((~torch.isfinite(array)).sum())
            raise DataError(f"data file {str(path)!r}: array {name!r} has {bad} NaN/inf values")
    return FieldDataset(**arrays, attrs=attrs)


def _decode(value):
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    if isinstance(value, np.generic):
        return value.item()
    return value
