"""The run's dataset: read from a file, or generated with scidl's solver into the run directory."""

from __future__ import annotations

from pathlib import Path

import torch
from tqdm.auto import tqdm

from scidl.data import FieldDataset, generate_trajectories, read_dataset, write_dataset
from scidl.errors import DataError
from scidl.experiments.config import DataConfig
from scidl.numerics import GaussianRandomField
from scidl.pdes import make_pde

GENERATED = Path("data") / "dataset.h5"


def generate(config: DataConfig, *, quiet: bool = False) -> FieldDataset:
    """Solve the config's recipe for ``n_train + n_test`` trajectories."""
    ic = config.initial_condition
    n = config.n_train + config.n_test
    with tqdm(total=n, desc="data", unit="traj", disable=quiet, leave=False) as bar:
        return generate_trajectories(
            make_pde(config.equation, **config.parameters),
            n=n,
            resolution=config.resolution,
            initial_condition=GaussianRandomField(ic.sigma, ic.tau, ic.gamma),
            t_final=config.t_final,
            n_times=config.n_times,
            solver_resolution=config.solver_resolution,
            dt=config.dt,
            seed=config.seed,
            progress=lambda done: bar.update(done - bar.n),
        )


def prepare_dataset(config: DataConfig, run_dir: Path, *, quiet: bool = False) -> FieldDataset:
    """Generate (once; reused on resume) or read the dataset and check it is big enough."""
    if config.path is not None:
        dataset = read_dataset(config.path)
    elif (run_dir / GENERATED).exists():
        dataset = read_dataset(run_dir / GENERATED)
    else:
        dataset = generate(config, quiet=quiet)
        write_dataset(run_dir / GENERATED, dataset)
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
