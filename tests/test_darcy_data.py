"""Darcy datasets: the FNO paper's thresholded-GRF recipe, solved and subsampled."""

from __future__ import annotations

import pytest
import torch

from scidl.data import DarcyRecipe, chunk_generator, read_arrays, verify_checksum, write_darcy
from scidl.numerics import NeumannGaussianRandomField, solve_darcy
from scidl.pdes import threshold_coefficient

RECIPE = DarcyRecipe(resolution=15, solver_resolution=29, seed=3, chunk_size=2)


def test_darcy_file_holds_subsampled_solutions_of_the_thresholded_coefficients(tmp_path):
    (path,) = write_darcy(RECIPE, 3, tmp_path / "darcy.h5")
    arrays, attrs = read_arrays(path)
    a, u = arrays["a"], arrays["u"]
    assert a.shape == u.shape == (3, 15, 15) and arrays["x"].shape == (15,)
    assert set(a.unique().tolist()) == {3.0, 12.0}
    assert torch.all(u[:, 0] == 0) and torch.all(u[:, :, -1] == 0)  # zero Dirichlet data
    assert bool((u[:, 1:-1, 1:-1] > 0).all())  # maximum principle with f = 1 > 0
    # the saved samples are the fine solve of chunk-seeded coefficients, subsampled by 2
    mu = NeumannGaussianRandomField.fno_darcy().sample(2, (29, 29), generator=chunk_generator(3, 0))
    fine_a = threshold_coefficient(mu)
    fine_u = solve_darcy(fine_a, torch.ones_like(fine_a))
    assert torch.equal(a[:2], fine_a[:, ::2, ::2].float())
    assert torch.allclose(u[:2], fine_u[:, ::2, ::2].float(), rtol=1e-6, atol=0)
    assert attrs["equation"] == "darcy" and attrs["recipe"]["solver_resolution"] == 29
    assert verify_checksum(path) is True
    again, _ = read_arrays(write_darcy(RECIPE, 3, tmp_path / "again.h5")[0])
    assert torch.equal(again["u"], u)


def test_darcy_recipe_checks_its_grids():
    with pytest.raises(ValueError, match="subsample"):
        DarcyRecipe(resolution=16, solver_resolution=29)
    assert DarcyRecipe().stride == 5  # 421 nodes -> 85, the FNO paper's sizes
