"""Datasets: generation with scidl's solvers, self-describing HDF5 files, loading."""

from scidl.data.darcy import DarcyRecipe, write_darcy
from scidl.data.generate import (
    calibrate,
    generate_trajectories,
    resolve_dt,
    write_trajectories,
)
from scidl.data.hdf5 import (
    DATA_ENV,
    FieldDataset,
    LazyFieldDataset,
    read_arrays,
    read_dataset,
    resolve_data_path,
    verify_checksum,
    write_dataset,
)
from scidl.data.normalizers import GlobalNormalizer, PointwiseNormalizer
from scidl.data.recipes import FAMILIES, SETTINGS, TrajectoryRecipe, chunk_generator

__all__ = [
    "DATA_ENV",
    "DarcyRecipe",
    "FAMILIES",
    "FieldDataset",
    "GlobalNormalizer",
    "LazyFieldDataset",
    "PointwiseNormalizer",
    "SETTINGS",
    "TrajectoryRecipe",
    "calibrate",
    "chunk_generator",
    "generate_trajectories",
    "read_arrays",
    "read_dataset",
    "resolve_data_path",
    "resolve_dt",
    "verify_checksum",
    "write_darcy",
    "write_dataset",
    "write_trajectories",
]
