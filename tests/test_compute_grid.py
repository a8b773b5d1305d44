"""Solving on a coarser grid than the dataset's: Fourier resampling and its calibration."""

from __future__ import annotations

import math

import pytest
import torch

from scidl.data import (
    TrajectoryRecipe,
    calibrate,
    generate_trajectories,
)
from scidl.numerics import PeriodicGrid, fourier_resample, simulate


def _trig(grid_points: tuple[int, ...], modes: list[tuple[tuple[int, ...], float]]):
    """A real trigonometric polynomial on the unit box sampled at ``grid_points``."""
    axes = [torch.arange(n, dtype=torch.float64) / n for n in grid_points]
    coords = torch.meshgrid(*axes, indexing="ij")
    field = torch.zeros(grid_points, dtype=torch.float64)
    for k, phase in modes:
        field = field + torch.cos(2 * math.pi * sum(ki * xi for ki, xi in zip(k, coords)) + phase)
    return field


@pytest.mark.parametrize(("coarse", "fine"), [((16,), (48,)), ((15,), (45,)), ((16, 12), (32, 36)),
                                             ((9, 10, 8), (18, 20, 24)), ((16, 12), (16, 24))])
def test_refining_then_coarsening_returns_the_field(coarse, fine):
    u = torch.randn(3, *coarse, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    refined = fourier_resample(u, fine)
    assert refined.shape == (3, *fine)
    # the old points are reproduced (the strides are integers here)
    index = (slice(None), *(slice(None, None, f // c) for c, f in zip(coarse, fine)))
    assert torch.allclose(refined[index], u, atol=1e-13)
    assert torch.allclose(fourier_resample(refined, coarse), u, atol=1e-13)


def test_refining_evaluates_the_trigonometric_polynomial():
    modes = [((3, -2), 0.4), ((-5, 4), 1.1), ((1, 5), -0.3)]  # all below the coarse Nyquist
    coarse, fine = _trig((12, 12), modes), _trig((40, 28), modes)
    assert torch.allclose(fourier_resample(coarse, (40, 28)), fine, atol=1e-12)
    # coarsening a band-limited field (here with a mode at the new Nyquist) = sampling it
    nyquist = [((8, 3), 0.3), ((2, -8), 1.0)]
    assert torch.allclose(fourier_resample(_trig((32, 32), nyquist), (16, 16)),
                          _trig((16, 16), nyquist), atol=1e-12)


def test_resampling_rejects_bad_shapes():
    with pytest.raises(ValueError, match="cannot resample"):
        fourier_resample(torch.zeros(8), (8, 8))


def _burgers(**options) -> TrajectoryRecipe:
    args = {"resolution": 128, "solver_resolution": 1024, "n_times": 3, "seed": 2, **options}
    return TrajectoryRecipe.build("burgers", {"nu": 0.1}, **args)


def test_the_calibrated_grid_is_the_coarsest_within_the_tolerance():
    recipe = calibrate(_burgers(), 4)
    assert recipe.dt is not None and recipe.compute_resolution is not None
    # the smooth nu = 0.1 solution needs far fewer than the 1,024 points of its initial states
    assert 16 <= recipe.compute_resolution <= 256
    u0 = recipe.initial_states(0, 4)
    pde, t = recipe.pde(), recipe.times()

    def solve(points: int, dt: float) -> torch.Tensor:
        out = simulate(pde, fourier_resample(u0, points), t, grid=PeriodicGrid(points, 1.0),
                       dt=dt)
        return fourier_resample(out, 1024)[:, 1:]

    def change(a: torch.Tensor, b: torch.Tensor) -> float:
        return float(((a - b).norm(dim=-1) / b.norm(dim=-1)).max())

    points, dt = recipe.compute_resolution, recipe.dt
    # doubling the grid, or halving the step, changes the states by at most the tolerance
    assert change(solve(points, dt), solve(2 * points, dt)) <= recipe.tolerance
    assert change(solve(points, dt), solve(points, dt / 2)) <= recipe.tolerance
    # and the data are accurate: against the full 1,024-point grid at a 4x smaller step
    assert change(solve(points, dt), solve(1024, dt / 4)) < 3 * recipe.tolerance
    if points > 16:  # the next coarser grid is not accurate enough at its own step
        coarser = calibrate(_burgers(compute_resolution=points // 2), 4)
        assert change(solve(points // 2, coarser.dt), solve(points, coarser.dt)) \
            > recipe.tolerance
    # a fixed grid is kept, and only the step is calibrated on it
    fixed = calibrate(_burgers(compute_resolution=512), 4)
    assert fixed.compute_resolution == 512 and fixed.dt is not None
    # both fixed: nothing to do
    given = _burgers(compute_resolution=128, dt=0.01)
    assert calibrate(given, 4) == given


def test_data_solved_on_the_coarse_grid_match_the_fine_solve():
    n = 6
    coarse = generate_trajectories(_burgers(chunk_size=4), n)
    fine = generate_trajectories(_burgers(chunk_size=4, compute_resolution=1024), n)
    assert coarse.attrs["compute_resolution"] < 1024 == fine.attrs["compute_resolution"]
    # the drawn initial states are saved exactly, the later states to about the tolerance
    assert torch.equal(coarse.u[:, 0], fine.u[:, 0])
    error = (coarse.u[:, 1:] - fine.u[:, 1:]).norm(dim=-1) / fine.u[:, 1:].norm(dim=-1)
    assert float(error.max()) < 3e-6
    # and a saved grid finer than the compute grid reads off the interpolant
    recipe = _burgers(resolution=1024, compute_resolution=64, dt=coarse.attrs["dt"])
    data = generate_trajectories(recipe, 2)
    assert data.u.shape == (2, 3, 1024)
    u0 = recipe.initial_states(0, 2)
    assert torch.equal(data.u[:, 0], u0.to(torch.float32))
    out = simulate(recipe.pde(), fourier_resample(u0, 64), recipe.times(),
                   grid=PeriodicGrid(64, 1.0), dt=recipe.dt)
    assert torch.allclose(data.u[:, -1, ::16], out[:, -1].to(torch.float32), atol=1e-6)


def test_compute_resolution_must_divide_the_solver_grid():
    with pytest.raises(ValueError, match="compute resolution"):
        _burgers(compute_resolution=384)
    with pytest.raises(ValueError, match="compute resolution"):
        _burgers(compute_resolution=2048)
