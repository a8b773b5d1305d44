"""The run's data: read from files, or generated with scidl's solvers into the run directory.

A run sees its data as named arrays (:class:`RunData`): trajectories ``u [n, T, *S]`` from a
trajectory file, coefficient and solution ``a, u [n, *S]`` from a Darcy file, or whatever
tensors a ``.pt`` file holds (neuraloperator's example sets: ``x``, ``y``). Arrays with one
more axis than the others carry a time axis.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import h5py
import torch
from tqdm.auto import tqdm

from scidl.data import (
    DarcyRecipe,
    FieldDataset,
    TrajectoryRecipe,
    read_dataset,
    resolve_data_path,
    write_darcy,
    write_trajectories,
)
from scidl.data.hdf5 import _decode
from scidl.data.recipes import FAMILIES, SETTINGS
from scidl.errors import DataError
from scidl.experiments.config import DataConfig

GENERATED = Path("data") / "dataset.h5"


@dataclass
class RunData:
    """Named arrays of one run, split into training and test samples.

    Attributes:
        train, test: name -> ``[n, ...]`` float tensors (test at full resolution).
        spatial_dims: spatial axes of a field (the trailing axes of every array).
        attrs: the file's metadata (equation, parameters, solver, ...).
        subsample: stride along each spatial axis of the training resolution.
        trajectories: the file as a :class:`FieldDataset`, for trajectory files (PINN runs).
    """

    train: dict[str, torch.Tensor]
    test: dict[str, torch.Tensor]
    spatial_dims: int
    attrs: dict = field(default_factory=dict)
    subsample: int = 1
    trajectories: FieldDataset | None = None

    def has_time(self, name: str) -> bool:
        return self.train[name].ndim == self.spatial_dims + 2

    def strided(self, tensor: torch.Tensor, stride: int) -> torch.Tensor:
        """Every ``stride``-th point along each spatial axis of ``[..., *S]``."""
        if stride == 1:
            return tensor
        index = (Ellipsis, *(slice(None, None, stride),) * self.spatial_dims)
        return tensor[index]

    def describe(self, n_train: int, n_test: int) -> str:
        shapes = ", ".join(f"{k} {tuple(v.shape[1:])}" for k, v in self.train.items())
        a = self.attrs
        text = (f"{a.get('equation', 'data')} {a.get('parameters', '')}: {shapes} per sample, "
                f"{n_train} train / {n_test} test")
        if self.subsample > 1:
            text += f", trained on every {self.subsample}th point per axis"
        if "solver" in a:
            text += (f"; solver: {a['solver']} at {a.get('solver_resolution', 'n/a')} points, "
                     f"dt {a.get('dt', 'n/a')}")
        if "initial_condition" in a:
            text += f"; initial conditions {a['initial_condition']}"
        if "seed" in a:
            text += f"; seed {a['seed']}"
        return text + "."


def recipe(config: DataConfig) -> TrajectoryRecipe | DarcyRecipe:
    """The dataset recipe a data config describes."""
    if config.equation == "darcy":
        known = {"high", "low", "source"}
        unknown = set(config.parameters) - known
        if unknown:
            raise DataError(f"unknown darcy parameter(s) {sorted(unknown)}; use {sorted(known)}")
        return DarcyRecipe(resolution=config.resolution,
                           solver_resolution=config.solver_resolution or 421,
                           seed=config.seed, **config.parameters)
    ic = config.initial_condition
    grf = {"sigma": ic.sigma, "tau": ic.tau, "gamma": ic.gamma}
    family = FAMILIES.get(config.equation)
    setting = str(config.parameters.get("setting", family.setting if family else ""))
    if setting in SETTINGS and not set(grf) <= set(SETTINGS[setting][1]):
        # a family whose initial states are not a Gaussian random field (e.g. KS's sines)
        if "initial_condition" in config.model_fields_set:
            raise DataError(f"{config.equation} does not draw Gaussian random fields: give its "
                            "initial-condition parameters "
                            f"{sorted(SETTINGS[setting][1])} in data.parameters instead of "
                            "data.initial_condition")
        grf = {}
    return TrajectoryRecipe.build(
        config.equation,
        {**config.parameters, **grf},
        resolution=config.resolution, solver_resolution=config.solver_resolution,
        compute_resolution=config.compute_resolution,
        t_final=config.t_final, n_times=config.n_times, dt=config.dt, seed=config.seed,
    )


def generate(config: DataConfig, path: Path, *, quiet: bool = False) -> Path:
    """Solve the config's recipe for ``n_train + n_test`` samples into ``path`` (chunk by
    chunk, so an interrupted run resumes its data generation too)."""
    n = config.n_train + config.n_test
    made = recipe(config)
    with tqdm(total=n, desc="data", unit="sample", disable=quiet, leave=False) as bar:
        progress = lambda done: bar.update(done - bar.n)  # noqa: E731
        if isinstance(made, DarcyRecipe):
            return write_darcy(made, n, path, progress=progress)[0]
        return write_trajectories(made, n, path, progress=progress)[0]


def _read_file(path: str | Path) -> tuple[dict[str, torch.Tensor], dict, FieldDataset | None]:
    """Arrays, metadata and (for trajectory files) the dataset of one file."""
    resolved = resolve_data_path(path)
    if resolved.suffix in (".pt", ".pth"):
        raw = torch.load(resolved, map_location="cpu", weights_only=True)
        if not isinstance(raw, dict):
            raise DataError(f"{str(resolved)!r} must hold a dict of tensors, got {type(raw)}")
        arrays = {k: v.float() for k, v in raw.items()
                  if isinstance(v, torch.Tensor) and v.ndim >= 2 and v.shape[0] > 1}
        return arrays, {"source": resolved.name}, None
    with h5py.File(resolved, "r") as f:
        if "a" in f:  # a steady (Darcy) set: coefficient and solution
            arrays = {k: torch.from_numpy(f[k][:]).float() for k in ("a", "u")}
            attrs = {k: _decode(v) for k, v in f.attrs.items()}
            return arrays, attrs, None
    dataset = read_dataset(resolved)
    return {"u": dataset.u}, dict(dataset.attrs), dataset


def _spatial_dims(arrays: dict[str, torch.Tensor], attrs: dict) -> int:
    if attrs.get("equation") == "darcy":
        return 2
    low = min(v.ndim for v in arrays.values())
    if "u" in arrays and len(arrays) == 1:
        return arrays["u"].ndim - 2  # trajectories [n, T, *S]
    return low - 1


def prepare_data(config: DataConfig, run_dir: Path, *, quiet: bool = False) -> RunData:
    """Generate (once; reused on resume) or read the data and split it."""
    if config.path is None and not (run_dir / GENERATED).exists():
        generate(config, run_dir / GENERATED, quiet=quiet)
    return load_data(config, run_dir)


def load_data(config: DataConfig, run_dir: Path) -> RunData:
    """Read a run's data (from ``data.path``, or the run's generated file) and split it:
    the first ``n_train`` samples train; the test set is the next ``n_test`` samples, or the
    first ``n_test`` of ``data.test_path``."""
    arrays, attrs, trajectories = _read_file(config.path if config.path is not None
                                             else run_dir / GENERATED)
    spatial = _spatial_dims(arrays, attrs)
    n = min(v.shape[0] for v in arrays.values())
    if config.test_path is not None:
        test_arrays, _, _ = _read_file(config.test_path)
        missing = set(arrays) - set(test_arrays)
        if missing:
            raise DataError(f"the test file lacks the array(s) {sorted(missing)}")
        n_test_available = min(v.shape[0] for v in test_arrays.values())
        needed, have = config.n_train, n
        test = {k: test_arrays[k][: config.n_test] for k in arrays}
        if n_test_available < config.n_test:
            raise DataError(f"the test file has {n_test_available} samples, fewer than "
                            f"n_test = {config.n_test}")
    else:
        needed, have = config.n_train + config.n_test, n
        test = {k: v[config.n_train: config.n_train + config.n_test] for k, v in arrays.items()}
    if have < needed:
        raise DataError(f"the dataset has {have} samples, fewer than the {needed} the config "
                        f"asks for (n_train + n_test)")
    for name, v in arrays.items():
        if not torch.isfinite(v[:needed]).all():
            raise DataError(f"array {name!r} contains NaN or infinite values")
    data = RunData(train={}, test=test, spatial_dims=spatial, attrs=attrs,
                   subsample=config.subsample, trajectories=trajectories)
    sizes = arrays[next(iter(arrays))].shape[-spatial:]
    if any(s // config.subsample < 2 for s in sizes):
        raise DataError(f"data.subsample {config.subsample} leaves fewer than 2 points of the "
                        f"grid {tuple(sizes)}")
    data.train = {k: data.strided(v[: config.n_train], config.subsample)
                  for k, v in arrays.items()}
    return data


# ---- the trajectory view kept for PINN runs and the demo -------------------------------------

def prepare_dataset(config: DataConfig, run_dir: Path, *, quiet: bool = False) -> FieldDataset:
    """Generate or read a trajectory dataset and check it is big enough."""
    data = prepare_data(config, run_dir, quiet=quiet)
    if data.trajectories is None:
        raise DataError("this run needs trajectories u [n, T, N]; the data file holds "
                        f"{sorted(data.train)}")
    return data.trajectories


def load_run_dataset(config: DataConfig, run_dir: Path) -> FieldDataset:
    """The trajectory dataset a finished run used."""
    return read_dataset(config.path if config.path is not None else run_dir / GENERATED)


def split(dataset: FieldDataset, config: DataConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """First ``n_train`` trajectories for training, the next ``n_test`` for testing."""
    train = dataset.u[: config.n_train]
    test = dataset.u[config.n_train : config.n_train + config.n_test]
    return train, test
