"""Tests for scidl.pinn.geometry: domains, membership, normals, distances and sampling."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import qmc

from scidl.pinn.geometry import (
    SAMPLING_METHODS,
    Box,
    Disk,
    Geometry,
    Interval,
    Polygon,
    Rectangle,
    SpaceTime,
    TimeDomain,
)

L_SHAPE = [(0, 0), (2, 0), (2, 1), (1, 1), (1, 2), (0, 2)]


def _geometries() -> dict[str, Geometry]:
    return {
        "interval": Interval(-1.0, 2.0),
        "rectangle": Rectangle([0.0, -1.0], [2.0, 0.5]),
        "box": Box([0.0, 0.0, 0.0], [1.0, 2.0, 3.0]),
        "disk": Disk([1.0, -1.0], 2.0),
        "lshape": Polygon(L_SHAPE),
        "lshape_cw": Polygon(L_SHAPE[::-1]),
        "triangle": Polygon([(0, 0), (3, 0), (0, 1)]),
    }


GEOMS = _geometries()
CASES = [(name, m) for name in GEOMS for m in SAMPLING_METHODS]


# --------------------------------------------------------------------------------------------
# Sampling: membership, shapes, determinism
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,method", CASES)
def test_samples_lie_in_domain_and_on_boundary(name, method):
    g = GEOMS[name]
    x = g.sample_interior(300, method=method, seed=3)
    b = g.sample_boundary(201, method=method, seed=3)
    assert x.shape == (300, g.dim) and b.shape == (201, g.dim)
    assert x.dtype == torch.float64 and b.dtype == torch.float64
    assert g.inside(x).all()
    assert g.inside(b).all()  # closed set
    assert g.inside(b.float()).all() and g.inside(x.float()).all()  # float32 round-off
    assert g.on_boundary(b).all()
    assert not g.on_boundary(x).any()
    lo, hi = g.bounds()
    assert torch.all(x >= lo) and torch.all(x <= hi)
    # distance: 0 on the boundary, > 0 inside
    assert g.distance(b).abs().max() < 1e-12
    assert (g.distance(x) > 0).all()


@pytest.mark.parametrize("name,method", CASES)
def test_seed_determinism(name, method):
    g = GEOMS[name]
    a1, a2 = g.sample_interior(64, method, seed=7), g.sample_interior(64, method, seed=7)
    a3 = g.sample_interior(64, method, seed=8)
    assert torch.equal(a1, a2) and not torch.equal(a1, a3)
    b1, b2 = g.sample_boundary(64, method, seed=7), g.sample_boundary(64, method, seed=7)
    assert torch.equal(b1, b2)
    if g.dim > 1:  # the interval boundary is {a, b} whatever the seed
        assert not torch.equal(b1, g.sample_boundary(64, method, seed=8))


def test_unknown_method_and_bad_inputs():
    g = Rectangle([0, 0], [1, 1])
    with pytest.raises(ValueError, match="uniform, sobol, lhs"):
        g.sample_interior(10, method="halton")
    with pytest.raises(ValueError, match="uniform"):
        g.sample_boundary(10, method="random")
    with pytest.raises(ValueError, match=r"\[P, dim\]"):
        g.inside(torch.zeros(5, 3))
    with pytest.raises(ValueError, match=r"\[P, dim\]"):
        g.distance(torch.zeros(5))
    with pytest.raises(ValueError):
        Interval(1.0, 1.0)
    with pytest.raises(ValueError):
        Interval(2.0, 1.0)
    with pytest.raises(ValueError):
        Box([0, 0, 1], [1, 1, 1])
    with pytest.raises(ValueError):
        Disk([0, 0], 0.0)
    with pytest.raises(ValueError):
        Disk([0, 0], -1.0)
    with pytest.raises(ValueError):
        Polygon([(0, 0), (1, 0)])
    with pytest.raises(ValueError, match="not simple"):
        Polygon([(0, 0), (1, 1), (1, 0), (0, 1)])  # bow tie
    with pytest.raises(ValueError):
        TimeDomain(1.0, 0.0)


def test_interval_boundary_alternates_endpoints():
    g = Interval(-1.0, 2.0)
    b = g.sample_boundary(7, method="sobol", seed=1)[:, 0]
    assert b.tolist() == [-1.0, 2.0, -1.0, 2.0, -1.0, 2.0, -1.0]
    assert g.sample_boundary(6)[:, 0].eq(-1.0).sum() == 3


# --------------------------------------------------------------------------------------------
# Uniformity and quasi-Monte-Carlo quality
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", SAMPLING_METHODS)
def test_disk_quadrant_fraction(method):
    g = Disk([0.5, -0.25], 1.5)
    x = g.sample_interior(4000, method, seed=0) - g.center
    frac = ((x[:, 0] > 0) & (x[:, 1] > 0)).double().mean().item()
    assert abs(frac - 0.25) < 0.02
    # radial law: P(|x - c| < R/2) = 1/4 for an area-uniform disk
    frac_r = (x.norm(dim=1) < 0.75).double().mean().item()
    assert abs(frac_r - 0.25) < 0.02


@pytest.mark.parametrize("method", SAMPLING_METHODS)
def test_lshape_uniform_area_fraction(method):
    g = Polygon(L_SHAPE)
    x = g.sample_interior(3000, method, seed=2)
    frac = (x <= 1).all(dim=1).double().mean().item()
    assert abs(frac - 1 / 3) < 0.025
    assert not ((x[:, 0] > 1 + 1e-9) & (x[:, 1] > 1 + 1e-9)).any()  # the notch is empty


@pytest.mark.parametrize("method", SAMPLING_METHODS)
def test_boundary_uniform_in_arc_length(method):
    # L-shape perimeter 8: the two edges of length 2 on the axes hold 4/8 of the points.
    g = Polygon(L_SHAPE)
    b = g.sample_boundary(4000, method, seed=0)
    on_axes = ((b[:, 0].abs() < 1e-12) | (b[:, 1].abs() < 1e-12)).double().mean().item()
    assert abs(on_axes - 0.5) < 0.03
    # box faces in proportion to area: faces x=const have area 6 of total 22
    box = Box([0, 0, 0], [1, 2, 3])
    bb = box.sample_boundary(4000, method, seed=0)
    on_x = ((bb[:, 0] == 0) | (bb[:, 0] == 1)).double().mean().item()
    assert abs(on_x - 12 / 22) < 0.03


def test_qmc_discrepancy_lower_than_uniform():
    g = Rectangle([0, 0], [1, 1])
    disc = {m: qmc.discrepancy(g.sample_interior(256, m, seed=0).numpy()) for m in SAMPLING_METHODS}
    assert disc["sobol"] < disc["uniform"]
    assert disc["lhs"] < disc["uniform"]


def test_lhs_one_point_per_stratum():
    lo, hi = np.array([-1.0, 0.0, 2.0]), np.array([1.0, 5.0, 2.5])
    g = Box(lo, hi)
    n = 50
    x = g.sample_interior(n, "lhs", seed=4).numpy()
    strata = np.floor((x - lo) / (hi - lo) * n).astype(int)
    for d in range(3):
        assert sorted(strata[:, d].tolist()) == list(range(n))


def test_sobol_prefix_property():
    # Sobol' points are a prefix of one sequence: n points are the first n of 2n.
    g = Disk([0, 0], 1.0)
    assert torch.equal(g.sample_interior(100, "sobol", 5), g.sample_interior(200, "sobol", 5)[:100])


# --------------------------------------------------------------------------------------------
# Normals
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(GEOMS))
def test_normals_unit_and_outward(name):
    g = GEOMS[name]
    b = g.sample_boundary(400, "sobol", seed=1)
    n = g.boundary_normal(b)
    assert n.shape == b.shape
    assert torch.allclose(n.norm(dim=1), torch.ones(len(b), dtype=torch.float64))
    eps = 1e-4
    assert not g.inside(b + eps * n).any()
    assert g.inside(b - eps * n).all()


def test_normals_exact_values():
    disk = Disk([1.0, 2.0], 3.0)
    theta = torch.linspace(0, 2 * math.pi, 17, dtype=torch.float64)[:-1]
    d = torch.stack([torch.cos(theta), torch.sin(theta)], 1)
    assert torch.allclose(disk.boundary_normal(disk.center + 3.0 * d), d, atol=1e-14)

    rect = Rectangle([0.0, 0.0], [2.0, 1.0])
    pts = torch.tensor([[0.0, 0.5], [2.0, 0.3], [1.2, 0.0], [0.7, 1.0]], dtype=torch.float64)
    expected = torch.tensor([[-1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 1.0]],
                            dtype=torch.float64)
    assert torch.equal(rect.boundary_normal(pts), expected)
    # corner: one of the adjacent face normals
    corner = rect.boundary_normal(torch.tensor([[2.0, 1.0]], dtype=torch.float64))[0]
    assert corner.tolist() in ([1.0, 0.0], [0.0, 1.0])

    lshape = Polygon(L_SHAPE[::-1])  # clockwise input
    pts = torch.tensor([[1.5, 1.0], [1.0, 1.5], [0.0, 0.5], [2.0, 0.5]], dtype=torch.float64)
    expected = torch.tensor([[0.0, 1.0], [1.0, 0.0], [-1.0, 0.0], [1.0, 0.0]],
                            dtype=torch.float64)
    assert torch.allclose(lshape.boundary_normal(pts), expected)


# --------------------------------------------------------------------------------------------
# Membership and distance
# --------------------------------------------------------------------------------------------
def test_inside_and_on_boundary_known_points():
    g = Polygon(L_SHAPE)
    pts = torch.tensor(
        [[0.5, 0.5], [1.5, 1.5], [1.0, 1.0], [0.0, 2.0], [1.5, 0.5], [-0.1, 0.5], [0.5, 1.5]],
        dtype=torch.float64,
    )
    assert g.inside(pts).tolist() == [True, False, True, True, True, False, True]
    assert g.on_boundary(pts).tolist() == [False, False, True, True, False, False, False]
    disk = Disk([0, 0], 1.0)
    assert disk.inside([[1.0, 0.0], [1.0 + 1e-6, 0.0]]).tolist() == [True, False]
    assert disk.on_boundary([[1.0 + 1e-7, 0.0], [0.5, 0.0]]).tolist() == [True, False]


def test_distance_formulas():
    iv = Interval(1.0, 3.0)
    x = torch.tensor([[1.0], [2.0], [1.5], [3.0]], dtype=torch.float64)
    assert torch.allclose(iv.distance(x), torch.tensor([0.0, 1.0, 0.75, 0.0], dtype=torch.float64))
    rect = Rectangle([0, 0], [2, 4])
    p = torch.tensor([[1.0, 2.0], [0.5, 1.0]], dtype=torch.float64)
    assert torch.allclose(rect.distance(p), torch.tensor([1.0, 0.75 * 0.75], dtype=torch.float64))
    disk = Disk([1, 1], 2.0)
    p = torch.tensor([[1.0, 1.0], [2.0, 1.0]], dtype=torch.float64)
    assert torch.allclose(disk.distance(p), torch.tensor([1.0, 0.75], dtype=torch.float64))
    # L-shape: exact Euclidean distance to the boundary (the reflex corner included)
    lshape = Polygon(L_SHAPE)
    p = torch.tensor([[0.5, 0.5], [0.5, 1.5], [0.9, 0.9], [0.2, 1.7]], dtype=torch.float64)
    expected = torch.tensor([0.5, 0.5, math.hypot(0.1, 0.1), 0.2], dtype=torch.float64)
    assert torch.allclose(lshape.distance(p), expected)


@pytest.mark.parametrize("name", list(GEOMS))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_distance_autograd(name, dtype):
    g = GEOMS[name]
    pts = torch.cat([g.sample_interior(32, "sobol", 0), g.sample_boundary(8, "sobol", 0)])
    x = pts.to(dtype).requires_grad_(True)
    d = g.distance(x)
    assert d.dtype == dtype and d.shape == (40,)
    (grad,) = torch.autograd.grad(d.sum(), x)
    assert grad.shape == x.shape and torch.isfinite(grad).all()
    # finite-difference check at interior points (float64 only)
    if dtype == torch.float64:
        h = 1e-6
        xi = pts[:32]
        for k in range(g.dim):
            e = torch.zeros_like(xi)
            e[:, k] = h
            fd = (g.distance(xi + e) - g.distance(xi - e)) / (2 * h)
            assert torch.allclose(grad[:32, k], fd, atol=1e-5)


def test_hard_constraint_vanishes_on_boundary():
    g = Polygon(L_SHAPE)
    net = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    net = net.double()
    b = g.sample_boundary(64, "lhs", 0)
    u = 1.0 + g.distance(b)[:, None] * net(b)  # u = g + D N with g = 1
    assert torch.allclose(u, torch.ones_like(u), atol=1e-12)


# --------------------------------------------------------------------------------------------
# Measure, bounds, grid
# --------------------------------------------------------------------------------------------
def test_measures_and_bounds():
    assert Polygon(L_SHAPE).measure() == pytest.approx(3.0)
    assert Polygon(L_SHAPE[::-1]).measure() == pytest.approx(3.0)
    assert Disk([0, 0], 1.7).measure() == pytest.approx(math.pi * 1.7**2)
    assert Box([0, 1, 2], [1, 3, 5]).measure() == pytest.approx(6.0)
    assert Interval(-1, 2).measure() == pytest.approx(3.0)
    lo, hi = Polygon(L_SHAPE).bounds()
    assert lo.tolist() == [0.0, 0.0] and hi.tolist() == [2.0, 2.0] and lo.dtype == torch.float64
    lo, hi = Disk([1, 2], 0.5).bounds()
    assert lo.tolist() == [0.5, 1.5] and hi.tolist() == [1.5, 2.5]
    # Monte-Carlo estimate of the L-shape area from its bounding box and inside()
    u = Rectangle([0, 0], [2, 2]).sample_interior(4096, "sobol", 0)
    assert 4 * Polygon(L_SHAPE).inside(u).double().mean().item() == pytest.approx(3.0, abs=0.02)


def test_grid():
    g = Polygon(L_SHAPE)
    pts = g.grid(5)  # spacing 0.5: 25 box points minus the 4 strictly in the notch
    assert pts.shape == (21, 2) and g.inside(pts).all()
    assert Box([0, 0, 0], [1, 1, 1]).grid([2, 3, 4]).shape == (24, 3)
    assert Disk([0, 0], 1.0).grid(3).shape == (5, 2)  # centre and 4 axis points
    assert Interval(0, 1).grid(11).shape == (11, 1)


def test_names_and_dims():
    assert Interval(0, 1).names == ("x",) and Interval(0, 1).dim == 1
    assert Rectangle([0, 0], [1, 1]).names == ("x", "y")
    assert Box([0, 0, 0], [1, 1, 1]).names == ("x", "y", "z")
    st = SpaceTime(Disk([0, 0], 1.0), TimeDomain(0, 1))
    assert st.dim == 3 and st.names == ("x", "y", "t")


# --------------------------------------------------------------------------------------------
# Space-time
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["interval", "rectangle", "disk", "lshape", "box"])
@pytest.mark.parametrize("method", SAMPLING_METHODS)
def test_spacetime_sampling(name, method):
    g = GEOMS[name]
    td = TimeDomain(0.5, 2.0)
    st = SpaceTime(g, td)
    xi = st.sample_interior(200, method, seed=1)
    x0 = st.sample_initial(100, method, seed=1)
    xb = st.sample_boundary(150, method, seed=1)
    assert xi.shape == (200, g.dim + 1) and x0.shape == (100, g.dim + 1)
    assert xb.shape == (150, g.dim + 1)
    assert st.inside(xi).all() and st.inside(x0).all() and st.inside(xb).all()
    assert g.inside(xi[:, :-1]).all()
    assert torch.all(x0[:, -1] == 0.5) and st.on_initial(x0).all()
    assert not st.on_initial(xi).any()
    assert g.on_boundary(xb[:, :-1]).all() and st.on_boundary(xb).all()
    assert torch.all((xb[:, -1] >= 0.5) & (xb[:, -1] <= 2.0))
    assert torch.all((xi[:, -1] >= 0.5) & (xi[:, -1] <= 2.0))
    assert torch.equal(xi, st.sample_interior(200, method, seed=1))
    lo, hi = st.bounds()
    assert lo[-1] == 0.5 and hi[-1] == 2.0 and lo.shape == (g.dim + 1,)


def test_spacetime_time_uniform_and_lhs_joint():
    st = SpaceTime(Rectangle([0, 0], [1, 1]), TimeDomain(0.0, 4.0))
    n = 40
    x = st.sample_interior(n, "lhs", seed=3).numpy()
    # LHS is joint over space and time: one point per stratum in every column
    scaled = x / np.array([1.0, 1.0, 4.0])
    for d in range(3):
        assert sorted(np.floor(scaled[:, d] * n).astype(int).tolist()) == list(range(n))
    t = st.sample_interior(4000, "uniform", seed=0)[:, -1]
    assert abs((t < 1.0).double().mean().item() - 0.25) < 0.02
    # time column of the polygon space-time domain stays paired through rejection
    lst = SpaceTime(Polygon(L_SHAPE), TimeDomain(0.0, 1.0))
    y = lst.sample_interior(3000, "sobol", seed=0)
    assert abs(y[:, -1].mean().item() - 0.5) < 0.02
    assert abs((y[:, :2] <= 1).all(1).double().mean().item() - 1 / 3) < 0.02
    assert lst.measure() == pytest.approx(3.0)


def test_spacetime_membership():
    st = SpaceTime(Interval(0.0, 1.0), TimeDomain(0.0, 2.0))
    pts = torch.tensor([[0.0, 1.0], [0.5, 0.0], [0.5, 2.5], [1.0, 2.0], [0.5, 1.0]],
                       dtype=torch.float64)
    assert st.inside(pts).tolist() == [True, True, False, True, True]
    assert st.on_boundary(pts).tolist() == [True, False, False, True, False]
    assert st.on_initial(pts).tolist() == [False, True, False, False, False]
    with pytest.raises(ValueError, match=r"\[P, dim\]"):
        st.inside(torch.zeros(3, 3))
