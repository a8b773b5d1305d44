"""Datasets: generation with scidl's solvers, self-describing HDF5 files, loading."""

from scidl.data.generate import generate_trajectories
from scidl.data.hdf5 import DATA_ENV, FieldDataset, read_dataset, resolve_data_path, write_dataset

__all__ = [
    "DATA_ENV",
    "FieldDataset",
    "generate_trajectories",
    "read_dataset",
    "resolve_data_path",
    "write_dataset",
]
