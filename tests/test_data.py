"""Self-describing HDF5 datasets and reference-data generation."""

from __future__ import annotations

import math

import h5py
import numpy as np
import pytest
import torch

import scidl
from scidl.data import (
    DATA_ENV,
    FAMILIES,
    FieldDataset,
    LazyFieldDataset,
    TrajectoryRecipe,
    chunk_generator,
    generate_trajectories,
    read_dataset,
    resolve_data_path,
    verify_checksum,
    write_dataset,
    write_trajectories,
)
from scidl.errors import DataError
from scidl.numerics import GaussianRandomField, PeriodicGrid, simulate
from scidl.pdes import make_pde

ATTRS = {
    "equation": "burgers",
    "parameters": {"nu": 0.1},
    "initial_condition": {"kind": "gaussian_random_field", "sigma": 25.0, "zero_mean": True},
    "sizes": [1, 2, 3],
    "resolution": 16,
    "dt": 0.0125,
    "solver": "pseudo-spectral",
    "seed": 7,
    "torch_version": torch.__version__,  # a str subclass
}


def _dataset(b: int = 3, t: int = 4, n: int = 16, seed: int = 0) -> FieldDataset:
    g = torch.Generator().manual_seed(seed)
    return FieldDataset(u=torch.randn(b, t, n, generator=g),
                        t=torch.linspace(0, 1, t), x=torch.arange(n) / n,
                        attrs=dict(ATTRS))


def _leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp")
                  or p.name.startswith("."))


def test_round_trip_preserves_arrays_and_metadata(tmp_path):
    original = _dataset()
    path = write_dataset(tmp_path / "sub" / "ds.h5", original)
    assert path == tmp_path / "sub" / "ds.h5" and path.is_file()
    back = read_dataset(path)
    for name in ("u", "t", "x"):
        a, b = getattr(original, name), getattr(back, name)
        assert b.dtype == a.dtype and torch.equal(a, b), name
    assert back.attrs == {**ATTRS, "torch_version": str(torch.__version__)}
    assert isinstance(back.attrs["parameters"], dict)
    assert isinstance(back.attrs["initial_condition"], dict)
    assert isinstance(back.attrs["resolution"], int) and isinstance(back.attrs["dt"], float)
    assert len(back) == 3
    assert _leftovers(tmp_path / "sub") == []


def test_round_trip_float64(tmp_path):
    original = _dataset()
    original.u = original.u.double()
    back = read_dataset(write_dataset(tmp_path / "ds.h5", original))
    assert back.u.dtype == torch.float64 and torch.equal(back.u, original.u)


def test_missing_file_names_the_file(tmp_path, monkeypatch):
    monkeypatch.delenv(DATA_ENV, raising=False)
    missing = tmp_path / "nowhere" / "burgers.h5"
    with pytest.raises(DataError) as info:
        read_dataset(missing)
    assert str(missing) in str(info.value) and "does not exist" in str(info.value)


def test_relative_paths_are_looked_up_under_scidl_data(tmp_path, monkeypatch):
    root = tmp_path / "datasets"
    original = _dataset()
    write_dataset(root / "burgers" / "small.h5", original)
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv(DATA_ENV, str(root))
    assert resolve_data_path("burgers/small.h5") == root / "burgers" / "small.h5"
    assert torch.equal(read_dataset("burgers/small.h5").u, original.u)

    # a file in the working directory wins over $SCIDL_DATA
    local = _dataset(seed=1)
    write_dataset(elsewhere / "burgers" / "small.h5", local)
    assert torch.equal(read_dataset("burgers/small.h5").u, local.u)

    with pytest.raises(DataError) as info:
        read_dataset("burgers/other.h5")
    assert "burgers/other.h5" in str(info.value) and str(root) in str(info.value)

    # without the variable the relative path is not found
    monkeypatch.delenv(DATA_ENV)
    (elsewhere / "burgers" / "small.h5").unlink()
    with pytest.raises(DataError, match="small.h5"):
        read_dataset("burgers/small.h5")


@pytest.mark.parametrize(("array", "bad"), [("u", math.nan), ("u", math.inf), ("t", math.nan),
                                            ("x", -math.inf)])
def test_non_finite_values_raise_data_error(tmp_path, array, bad):
    dataset = _dataset()
    getattr(dataset, array).view(-1)[2] = bad
    path = write_dataset(tmp_path / "bad.h5", dataset)
    with pytest.raises(DataError) as info:
        read_dataset(path)
    message = str(info.value)
    assert str(path) in message and repr(array) in message and "NaN" in message


def test_not_hdf5_or_incomplete_file_raises_data_error(tmp_path):
    junk = tmp_path / "junk.h5"
    junk.write_text("not an HDF5 file")
    with pytest.raises(DataError, match="junk.h5"):
        read_dataset(junk)
    partial = tmp_path / "partial.h5"
    with h5py.File(partial, "w") as f:
        f.create_dataset("u", data=np.zeros((1, 2, 8), dtype=np.float32))
    with pytest.raises(DataError, match="'t'"):
        read_dataset(partial)


def test_writes_are_atomic(tmp_path):
    path = tmp_path / "ds.h5"
    original = _dataset()
    write_dataset(path, original)
    before = path.read_bytes()

    broken = _dataset(seed=1)
    broken.attrs["unstorable"] = object()  # h5py cannot store this: the write fails midway
    with pytest.raises(TypeError):
        write_dataset(path, broken)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds.h5"]  # no temporary file left
    assert path.read_bytes() == before  # the old file is intact
    assert torch.equal(read_dataset(path).u, original.u)

    with pytest.raises(TypeError):
        write_dataset(tmp_path / "new.h5", broken)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds.h5"]  # nothing half-written


# ---------------------------------------------------------------------------------------------
# generate_trajectories

N, RES, SOLVER_RES, SEED = 3, 16, 64, 5
IC = GaussianRandomField.fno_burgers("paper")


def _recipe(params=None, **options) -> TrajectoryRecipe:
    args = {"resolution": RES, "solver_resolution": SOLVER_RES, "t_final": 0.5, "n_times": 6,
            "seed": SEED, **options}
    return TrajectoryRecipe.build("burgers", {"nu": 0.1, **(params or {})}, **args)


def _generate(params=None, n=N, **options) -> FieldDataset:
    return generate_trajectories(_recipe(params, **options), n)


@pytest.fixture(scope="module")
def generated() -> FieldDataset:
    return _generate()


def test_generation_is_deterministic_for_a_seed(generated):
    again = _generate()
    assert torch.equal(generated.u, again.u)
    assert torch.equal(generated.t, again.t) and torch.equal(generated.x, again.x)
    assert {k: v for k, v in generated.attrs.items() if k != "created"} == \
        {k: v for k, v in again.attrs.items() if k != "created"}
    other = _generate(seed=SEED + 1)
    assert not torch.allclose(generated.u[:, 0], other.u[:, 0])


def test_generated_shapes_and_metadata(generated):
    assert generated.u.shape == (N, 6, RES) and generated.u.dtype == torch.float32
    assert torch.allclose(generated.t, torch.linspace(0, 0.5, 6))
    assert torch.allclose(generated.x, torch.arange(RES) / RES)
    assert torch.isfinite(generated.u).all()
    attrs = generated.attrs
    assert attrs["equation"] == "burgers" and attrs["parameters"] == {"nu": 0.1}
    assert attrs["resolution"] == RES and attrs["solver_resolution"] == SOLVER_RES
    assert attrs["seed"] == SEED and attrs["scidl_version"] == scidl.__version__
    assert attrs["initial_condition"] == {"kind": "grf", "sigma": IC.sigma, "tau": IC.tau,
                                          "gamma": IC.gamma}
    assert attrs["recipe"]["family"] == "burgers" and attrs["recipe"]["dt"] == attrs["dt"]


def _initial_conditions(chunk_size: int = 64) -> torch.Tensor:
    grid = PeriodicGrid(SOLVER_RES, 1.0)
    parts = [IC.sample(min(chunk_size, N - start), grid, generator=chunk_generator(SEED, i))
             for i, start in enumerate(range(0, N, chunk_size))]
    return torch.cat(parts)


def test_first_time_is_the_grf_sample_subsampled(generated):
    u0 = _initial_conditions()
    stride = SOLVER_RES // RES
    assert torch.equal(generated.u[:, 0], u0[:, ::stride].to(torch.float32))


def test_final_time_is_the_solver_solution(generated):
    u0 = _initial_conditions()
    t = torch.linspace(0.0, 0.5, 6, dtype=torch.float64)
    reference = simulate(make_pde("burgers", nu=0.1), u0, t, grid=PeriodicGrid(SOLVER_RES, 1.0),
                         dt=generated.attrs["dt"])
    stride = SOLVER_RES // RES
    expected = reference[:, :, ::stride].to(torch.float32)
    assert torch.equal(generated.u[:, -1], expected[:, -1])
    assert torch.equal(generated.u, expected)
    # the solution really evolved (the check is not comparing initial conditions)
    assert (generated.u[:, -1] - generated.u[:, 0]).abs().max() > 0.01


def test_chunks_have_independent_seeded_initial_conditions():
    small_chunks = _generate(chunk_size=2, dt=0.01)
    u0 = _initial_conditions(chunk_size=2)
    assert torch.equal(small_chunks.u[:, 0], u0[:, ::SOLVER_RES // RES].to(torch.float32))
    first, second = chunk_generator(SEED, 0), chunk_generator(SEED, 1)
    assert not torch.equal(first.get_state(), second.get_state())
    assert not torch.equal(second.get_state(), chunk_generator(SEED + 1, 0).get_state())


def test_default_dt_is_the_largest_halving_step_within_the_tolerance(generated):
    # dt = interval / 2^k for the smallest k whose states change by <= tolerance on halving
    u0 = _initial_conditions()
    grid, t = PeriodicGrid(SOLVER_RES, 1.0), torch.linspace(0.0, 0.5, 6, dtype=torch.float64)

    def solve(dt):
        return simulate(make_pde("burgers", nu=0.1), u0, t, grid=grid, dt=dt)

    def change(dt):
        a, b = solve(dt), solve(dt / 2)
        return float(((a - b).flatten(2).norm(dim=-1) / b.flatten(2).norm(dim=-1))
                     .nan_to_num(0.0).max())

    dt = generated.attrs["dt"]
    interval = 0.1
    assert math.log2(interval / dt) == round(math.log2(interval / dt))  # a halving step
    assert change(dt) <= 1e-6
    if dt < interval:
        assert change(2 * dt) > 1e-6  # the largest such step
    # and its solution is accurate to about the tolerance
    reference = solve(dt / 16)
    error = ((solve(dt) - reference).flatten(2).norm(dim=-1) / reference.flatten(2).norm(dim=-1))
    assert float(error.nan_to_num(0.0).max()) < 2e-6

    looser = _generate(tolerance=1e-3)
    assert looser.attrs["dt"] >= dt
    explicit = _generate(dt=1e-3, n_times=2, t_final=0.01)
    assert explicit.attrs["dt"] == 1e-3
    assert explicit.attrs["steps_per_save"] == 10


def test_recipes_reject_unknown_families_parameters_and_settings():
    with pytest.raises(ValueError, match="unknown dataset family"):
        TrajectoryRecipe.build("navier-stokes-9d")
    with pytest.raises(ValueError, match="foo"):
        TrajectoryRecipe.build("burgers", {"foo": 1})
    with pytest.raises(ValueError, match="setting"):
        TrajectoryRecipe.build("burgers", {"setting": "nope"})
    repository = TrajectoryRecipe.build("burgers", {"setting": "fno-repository", "nu": 1e-3})
    assert repository.initial_parameters == {"sigma": 49.0, "tau": 7.0, "gamma": 2.5}
    assert repository.parameters == {"nu": 1e-3}


def test_written_files_equal_the_in_memory_dataset_and_carry_a_checksum(tmp_path):
    paths = write_trajectories(_recipe(chunk_size=2), N, tmp_path / "b.h5", subsample=(2,))
    assert [p.name for p in paths] == ["b.h5", "b_r8.h5"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.h5", "b_r8.h5"]  # no .partial left
    fine = read_dataset(paths[0], verify=True)
    coarse = read_dataset(paths[1], verify=True)
    reference = _generate(chunk_size=2)
    assert torch.equal(fine.u, reference.u)
    assert torch.equal(coarse.u, reference.u[..., ::2]) and coarse.attrs["resolution"] == RES // 2
    assert verify_checksum(paths[0]) is True
    with h5py.File(paths[0], "a") as f:  # change one value: the checksum notices
        f["u"][0, 0, 0] += 1.0
    assert verify_checksum(paths[0]) is False
    with pytest.raises(DataError, match="checksum"):
        read_dataset(paths[0], verify=True)


def test_an_interrupted_generation_resumes_after_its_last_chunk(tmp_path, monkeypatch):
    import scidl.data.generate as generate_module

    recipe = _recipe(chunk_size=1, dt=0.01)
    real_solve = generate_module.solve_chunk
    solved = []

    def crash_at_chunk_2(recipe_, chunk, n, resolution):
        if chunk == 2:
            raise KeyboardInterrupt
        solved.append(chunk)
        return real_solve(recipe_, chunk, n, resolution)

    monkeypatch.setattr(generate_module, "solve_chunk", crash_at_chunk_2)
    with pytest.raises(KeyboardInterrupt):
        write_trajectories(recipe, N, tmp_path / "r.h5")
    assert not (tmp_path / "r.h5").exists() and (tmp_path / "r.h5.partial").exists()

    def record(recipe_, chunk, n, resolution):
        solved.append(chunk)
        return real_solve(recipe_, chunk, n, resolution)

    monkeypatch.setattr(generate_module, "solve_chunk", record)
    write_trajectories(recipe, N, tmp_path / "r.h5")
    assert solved == [0, 1, 2]  # chunks 0 and 1 were not solved again
    assert torch.equal(read_dataset(tmp_path / "r.h5", verify=True).u,
                       generate_trajectories(recipe, N).u)


def test_lazy_dataset_reads_one_trajectory_at_a_time(tmp_path, generated):
    write_dataset(tmp_path / "l.h5", generated)
    with LazyFieldDataset(tmp_path / "l.h5") as lazy:
        assert len(lazy) == N and lazy.shape == tuple(generated.u.shape)
        assert torch.equal(lazy[1], generated.u[1]) and torch.equal(lazy.t, generated.t)
        assert lazy.attrs["equation"] == "burgers"
        with pytest.raises(IndexError):
            lazy[N]


def test_resolution_must_divide_the_solver_resolution():
    with pytest.raises(ValueError, match="divide"):
        _generate(resolution=24)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_family_generates_finite_self_describing_data(family):
    two_d = FAMILIES[family].dimensions == 2
    recipe = TrajectoryRecipe.build(family, resolution=16 if two_d else 32,
                                    solver_resolution=32 if two_d else 128, n_times=3,
                                    t_final=FAMILIES[family].t_final / 10)
    data = generate_trajectories(recipe, 2)
    assert data.u.shape == (2, 3) + ((16, 16) if two_d else (32,))
    assert torch.isfinite(data.u).all()
    assert data.attrs["equation"] == FAMILIES[family].equation
    assert data.attrs["recipe"]["family"] == family
    assert not torch.equal(data.u[:, -1], data.u[:, 0])  # something happened
    if family == "fisher_kpp":  # a density stays in [0, 1] (comparison principle)
        assert float(data.u.min()) >= -1e-6 and float(data.u.max()) <= 1 + 1e-6
