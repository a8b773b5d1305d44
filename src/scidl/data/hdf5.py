"""Self-describing HDF5 datasets: arrays plus the metadata that made them."""

from __future__ import annotations

import hashlib
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


def encode_attribute(value):
    """An HDF5-storable form of a metadata value (mappings and lists as JSON)."""
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value)
    if isinstance(value, str):
        return str(value)  # e.g. torch.__version__ is a str subclass h5py rejects
    return value


def write_dataset(path: str | os.PathLike, dataset: FieldDataset) -> Path:
    """Write ``dataset`` to HDF5 atomically (a temporary file renamed into place)."""
    path = Path(path)
    with atomic_write(path) as tmp, h5py.File(tmp, "w") as f:
        for name in ("u", "t", "x"):
            f.create_dataset(name, data=getattr(dataset, name).detach().cpu().numpy())
        for key, value in dataset.attrs.items():
            f.attrs[key] = encode_attribute(value)
    return path


def checksum(f: h5py.File) -> str:
    """SHA-256 of every array in the file, by name (read in slabs, so large files are fine)."""
    digest = hashlib.sha256()
    for name in sorted(f):
        array = f[name]
        digest.update(name.encode())
        if array.ndim == 0:
            digest.update(np.ascontiguousarray(array[()]).tobytes())
            continue
        for start in range(0, array.shape[0], 256):
            digest.update(np.ascontiguousarray(array[start : start + 256]).tobytes())
    return digest.hexdigest()


def _open(path: Path, required: tuple[str, ...] = ("u", "t", "x")) -> h5py.File:
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise DataError(f"data file {str(path)!r} is not a readable HDF5 file ({err})") from None
    missing = [name for name in required if name not in f]
    if missing:
        f.close()
        raise DataError(f"data file {str(path)!r} has no array {missing[0]!r}")
    return f


def verify_checksum(path: str | os.PathLike) -> bool | None:
    """True if the file's arrays match its stored checksum, None if it stores none."""
    with _open(resolve_data_path(path), required=()) as f:
        stored = f.attrs.get("checksum_sha256")
        return None if stored is None else _decode(stored) == checksum(f)


def _read(path: str | os.PathLike, names: tuple[str, ...] | None,
          verify: bool) -> tuple[dict[str, torch.Tensor], dict]:
    """Arrays ``names`` (all if None) and metadata; checks finiteness and, with ``verify``,
    the stored checksum."""
    path = resolve_data_path(path)
    with _open(path, required=names or ()) as f:
        arrays = {name: torch.from_numpy(np.asarray(f[name])) for name in (names or f)}
        attrs = {key: _decode(value) for key, value in f.attrs.items()}
        if verify and "checksum_sha256" in attrs and attrs["checksum_sha256"] != checksum(f):
            raise DataError(f"data file {str(path)!r} does not match its stored checksum")
    for name, array in arrays.items():
        if array.is_floating_point() and not torch.isfinite(array).all():
            bad = int((~torch.isfinite(array)).sum())
            raise DataError(f"data file {str(path)!r}: array {name!r} has {bad} NaN/inf values")
    return arrays, attrs


def read_arrays(path: str | os.PathLike, *,
                verify: bool = False) -> tuple[dict[str, torch.Tensor], dict]:
    """Every array of an HDF5 file (e.g. a Darcy set's ``a``, ``u``, ``x``) and its metadata;
    checks that the arrays are finite."""
    return _read(path, None, verify)


def read_dataset(path: str | os.PathLike, *, verify: bool = False) -> FieldDataset:
    """Read a trajectory dataset written by scidl; checks that every array is finite.

    With ``verify=True`` the arrays are also checked against the stored SHA-256 checksum.
    """
    arrays, attrs = _read(path, ("u", "t", "x"), verify)
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


class LazyFieldDataset(torch.utils.data.Dataset):
    """Trajectories read from HDF5 one sample at a time (for sets larger than memory).

    ``dataset[i]`` is ``u[i]`` as a float tensor ``[T, *S]``; ``t``, ``x`` and ``attrs`` are
    loaded at once. The file stays open until :meth:`close` (or the end of a ``with`` block).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = resolve_data_path(path)
        self._file = _open(self.path)
        self.t = torch.from_numpy(np.asarray(self._file["t"]))
        self.x = torch.from_numpy(np.asarray(self._file["x"]))
        self.attrs = {key: _decode(value) for key, value in self._file.attrs.items()}
        self.shape = tuple(self._file["u"].shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: int) -> torch.Tensor:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} trajectories")
        sample = torch.from_numpy(np.asarray(self._file["u"][index]))
        if not torch.isfinite(sample).all():
            raise DataError(f"data file {str(self.path)!r}: trajectory {index} has NaN/inf values")
        return sample

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> LazyFieldDataset:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
