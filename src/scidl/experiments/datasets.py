"""The run's dataset: read from a file, or generated with scidl's solver into the run directory."""

from __future__ import annotations

from pathlib import Path

import torch
from tqdm.auto import tqdm

from scidl.data import FieldDataset, TrajectoryRecipe, read_dataset, write_trajectories
from scidl.errors import DataError
from scidl.experiments.config import DataConfig

GENERATED = Path("data") / "dataset.h5"


def recipe(config: DataConfig) -> TrajectoryRecipe:
    """The dataset recipe a data config describes."""
    ic = config.initial_condition
    return TrajectoryRecipe.build(
        config.equation,
        {**config.parameters, "sigma": ic.sigma, "tau": ic.tau, "gamma": ic.gamma},
        resolution=config.resolution, solver_resolution=config.solver_resolution,
        compute_resolution=config.compute_resolution,
        t_final=config.t_final, n_times=config.n_times, dt=config.dt, seed=config.seed,
    )


def generate(config: DataConfig, path: Path, *, quiet: bool = False) -> Path:
    """Solve the config's recipe for ``n_train + n_test`` trajectories into ``path``
    (chunk by chunk, so an interrupted run resumes its data generation too)."""
    n = config.n_train + config.n_test
    with tqdm(total=n, desc="data", unit="traj", disable=quiet, leave=False) as bar:
        return write_trajectories(recipe(config), n, path,
                                  progress=lambda done: bar.update(done - bar.n))[0]


def prepare_dataset(config: DataConfig, run_dir: Path, *, quiet: bool = False) -> FieldDataset:
    """Generate (once; reused on resume) or read the dataset and check it is big enough."""
    if config.path is not None:
        dataset = read_dataset(config.path)
    else:
        if not (run_dir / GENERATED).exists():
            generate(config, run_dir / GENERATED, quiet=quiet)
        dataset = read_dataset(run_dir / GENERATED)
    needed = config.n_train + config.n_test
    if len(dataset) < needed:
        raise DataError(
            f"the dataset has {len(dataset)} trajectories, fewer than n_train + n_test = {needed}"
        )
    if dataset.u.ndim != 3:
        raise DataError(f"expected trajectories u of shape [B, T, N], got {tuple(dataset.u.shape)}")
    return dataset


def load_run_dataset(config: DataConfig, run_dir: Path) -> FieldDataset:
    """The dataset a finished run used (for ``scidl evaluate``)."""
    return read_dataset(config.path if config.path is not None else run_dir / GENERATED)


def split(dataset: FieldDataset, config: DataConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """First ``n_train`` trajectories for training, the next ``n_test`` for testing."""
    train = dataset.u[: config.n_train]
    test = dataset.u[config.n_train : config.n_train + config.n_test]
    return train, test
