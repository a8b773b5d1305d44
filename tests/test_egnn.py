"""EGNN symmetry, energy/force consistency, the equivariance test kit, and graph builders."""

from __future__ import annotations

import itertools

import pytest
import torch

from scidl.errors import ShapeError
from scidl.geometric import (
    EGNN,
    EGNNEnergy,
    check_equivariance,
    edge_vectors,
    knn_graph,
    radius_graph,
    random_reflection,
    random_rotation,
    scatter_sum,
)

TOL = {torch.float32: 1e-5, torch.float64: 1e-10}


def _complete_graph(sizes: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Fully connected edges (no loops) within each graph, and the batch vector."""
    edges, offset = [], 0
    for n in sizes:
        pairs = [(offset + j, offset + i) for i in range(n) for j in range(n) if i != j]
        edges += pairs
        offset += n
    batch = torch.cat([torch.full((n,), g) for g, n in enumerate(sizes)])
    return torch.tensor(edges).T.contiguous(), batch


def _system(dtype, sizes=(5, 4), features=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    edge_index, batch = _complete_graph(list(sizes))
    n = batch.shape[0]
    h = torch.randn(n, features, generator=gen).to(dtype)
    pos = torch.randn(n, 3, generator=gen).to(dtype)
    vel = torch.randn(n, 3, generator=gen).to(dtype)
    edge_attr = torch.randn(edge_index.shape[1], 2, generator=gen).to(dtype)
    return h, pos, vel, edge_index, batch, edge_attr


def test_random_orthogonal_matrices():
    gen = torch.Generator().manual_seed(1)
    for sample, det in ((random_rotation, 1.0), (random_reflection, -1.0)):
        q = sample(gen)
        assert torch.allclose(q @ q.T, torch.eye(3, dtype=torch.float64), atol=1e-14)
        assert torch.det(q).item() == pytest.approx(det, abs=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_egnn_is_e3_and_permutation_equivariant(dtype):
    torch.manual_seed(0)
    model = EGNN(3, 16, 4, layers=3, edge_features=2, velocity=True).to(dtype)
    h, pos, vel, edge_index, _, edge_attr = _system(dtype)
    inputs = {"h": h, "pos": pos, "vel": vel, "edge_index": edge_index, "edge_attr": edge_attr}
    types = {"h": "node", "pos": "position", "vel": "vector", "edge_index": "edge_index",
             "edge_attr": "fixed"}
    with torch.no_grad():
        report = check_equivariance(model, inputs, input_types=types,
                                    outputs=("node", "position", "vector"))
    assert len(report.abs_errors) == 4 * 3
    assert report.passed(TOL[dtype]), str(report)
    # The coordinate update must actually move positions, or position equivariance is vacuous.
    with torch.no_grad():
        _, new_pos, _ = model(**inputs)
    assert (new_pos - pos).abs().max() > 1e-4


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_egnn_without_velocity_sum_aggregation(dtype):
    torch.manual_seed(1)
    model = EGNN(3, 8, 2, layers=2, coord_aggregation="sum").to(dtype)
    h, pos, _, edge_index, _, _ = _system(dtype, sizes=(6,))
    with torch.no_grad():
        report = check_equivariance(
            model, {"h": h, "pos": pos, "edge_index": edge_index},
            input_types={"h": "node", "pos": "position", "edge_index": "edge_index"},
            outputs={0: "node", 1: "position"})
    assert report.passed(TOL[dtype]), str(report)


def test_energy_invariant_and_forces_equivariant():
    torch.manual_seed(2)
    model = EGNNEnergy(3, 16, layers=2).double()
    h, pos, _, edge_index, batch, _ = _system(torch.float64)

    def energy_and_forces(h, pos, edge_index, batch):
        return model.energy_and_forces(h, pos, edge_index, batch, num_graphs=2)

    report = check_equivariance(
        energy_and_forces, {"h": h, "pos": pos, "edge_index": edge_index, "batch": batch},
        input_types={"h": "node", "pos": "position", "edge_index": "edge_index",
                     "batch": "node"},
        outputs=("invariant", "vector"))
    assert report.passed(1e-10), str(report)
    energy, forces = energy_and_forces(h, pos, edge_index, batch)
    assert energy.shape == (2,) and forces.shape == pos.shape
    # Isolated graphs exert no net force on themselves (translation invariance of each energy).
    assert scatter_sum(forces, batch, 2).abs().max() < 1e-10


def test_forces_match_finite_differences():
    torch.manual_seed(3)
    model = EGNNEnergy(3, 16, layers=2).double()
    h, pos, _, edge_index, batch, _ = _system(torch.float64, sizes=(4, 3))
    _, forces = model.energy_and_forces(h, pos, edge_index, batch)
    step = 1e-5
    numeric = torch.zeros_like(pos)
    with torch.no_grad():
        for node, axis in itertools.product(range(pos.shape[0]), range(3)):
            plus, minus = pos.clone(), pos.clone()
            plus[node, axis] += step
            minus[node, axis] -= step
            diff = model(h, plus, edge_index, batch) - model(h, minus, edge_index, batch)
            numeric[node, axis] = -diff.sum() / (2 * step)
    assert (forces - numeric).abs().max() < 1e-6


def test_force_training_backpropagates_through_gradient():
    torch.manual_seed(4)
    model = EGNNEnergy(3, 8, layers=1).double()
    h, pos, _, edge_index, batch, _ = _system(torch.float64)
    _, forces = model.energy_and_forces(h, pos, edge_index, batch, create_graph=True)
    forces.pow(2).sum().backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and any(g.abs().max() > 0 for g in grads)


def test_check_equivariance_flags_broken_functions():
    h, pos, _, edge_index, _, _ = _system(torch.float64)
    offset = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    report = check_equivariance(lambda pos: pos + offset, {"pos": pos},
                                input_types={"pos": "position"}, outputs="position")
    assert report.abs_errors[("translation", "output")] < 1e-12
    assert report.abs_errors[("permutation", "output")] == 0.0
    assert report.abs_errors[("rotation", "output")] > 0.1
    assert not report.passed(1e-5) and ("reflection", "output") in report.failures(1e-5)

    torch.manual_seed(5)
    model = EGNN(6, 8, 2, layers=1).double()  # raw coordinates fed in as features
    with torch.no_grad():
        report = check_equivariance(
            lambda h, pos, edge_index: model(torch.cat([h, pos], -1), pos, edge_index),
            {"h": h, "pos": pos, "edge_index": edge_index},
            input_types={"h": "node", "pos": "position", "edge_index": "edge_index"},
            outputs=("node", "position"))
    assert report.abs_errors[("permutation", "0")] < 1e-10
    for transform in ("rotation", "reflection", "translation"):
        assert report.abs_errors[(transform, "0")] > 1e-3
    assert "rotation" in str(report)


def test_check_equivariance_rejects_undeclared_inputs():
    pos = torch.randn(4, 3)
    with pytest.raises(ValueError, match="missing"):
        check_equivariance(lambda pos, v: pos, {"pos": pos, "v": pos},
                           input_types={"pos": "position"}, outputs="position")
    with pytest.raises(ValueError, match="output types"):
        check_equivariance(lambda pos: pos, {"pos": pos}, input_types={"pos": "position"},
                           outputs="spinor")


def _brute_min_image(a: torch.Tensor, b: torch.Tensor, box: torch.Tensor | None) -> float:
    if box is None:
        return float((a - b).norm())
    shifts = torch.tensor(list(itertools.product((-1, 0, 1), repeat=3)), dtype=a.dtype) * box
    return float((a - b + shifts).norm(dim=1).min())


@pytest.mark.parametrize("periodic", [False, True])
def test_radius_graph_matches_brute_force(periodic):
    gen = torch.Generator().manual_seed(6)
    box = torch.tensor([3.0, 4.0, 3.5], dtype=torch.float64) if periodic else None
    pos = torch.rand(30, 3, generator=gen, dtype=torch.float64) * 3.0
    batch = torch.tensor([0] * 12 + [1] * 10 + [2] * 8)
    r = 1.2
    edges = radius_graph(pos, r, batch, box)
    expected = {(j, i) for i in range(30) for j in range(30)
                if i != j and batch[i] == batch[j] and _brute_min_image(pos[i], pos[j], box) <= r}
    assert set(map(tuple, edges.T.tolist())) == expected
    assert len(expected) == edges.shape[1] > 0
    loops = radius_graph(pos, r, batch, box, loop=True)
    assert loops.shape[1] == edges.shape[1] + 30
    vectors = edge_vectors(pos, edges, box)
    assert torch.all(vectors.norm(dim=1) <= r + 1e-12)
    if periodic:
        with pytest.raises(ValueError, match="half"):
            radius_graph(pos, 1.6, batch, box)


@pytest.mark.parametrize("periodic", [False, True])
def test_knn_graph_matches_brute_force(periodic):
    gen = torch.Generator().manual_seed(7)
    box = torch.tensor([2.0, 2.0, 2.5], dtype=torch.float64) if periodic else None
    pos = torch.rand(20, 3, generator=gen, dtype=torch.float64) * 2.0
    batch = torch.tensor([0] * 9 + [1] * 8 + [2] * 3)  # graph 2 has fewer than k + 1 nodes
    k = 4
    edges = knn_graph(pos, k, batch, box)
    src, dst = edges
    for i in range(20):
        others = [j for j in range(20) if j != i and batch[j] == batch[i]]
        dists = sorted(_brute_min_image(pos[i], pos[j], box) for j in others)[:k]
        got = sorted(_brute_min_image(pos[i], pos[j], box) for j in src[dst == i].tolist())
        assert got == pytest.approx(dists, abs=1e-12)
        assert all(batch[j] == batch[i] and j != i for j in src[dst == i].tolist())
    assert edges.shape[1] == 9 * k + 8 * k + 3 * 2


def test_edge_vectors_minimum_image_and_shapes():
    pos = torch.tensor([[0.1, 0.0, 0.0], [0.9, 0.0, 0.0]], dtype=torch.float64)
    box = torch.tensor([1.0, 1.0, 1.0], dtype=torch.float64)
    vec = edge_vectors(pos, torch.tensor([[0], [1]]), box)  # x_1 - x_0 wrapped: -0.2
    assert vec[0, 0].item() == pytest.approx(-0.2)
    with pytest.raises(ShapeError):
        radius_graph(torch.zeros(4, 2), 1.0)
    with pytest.raises(ShapeError):
        EGNN(3, 8, 2, layers=1)(torch.zeros(4, 3), torch.zeros(5, 3), torch.zeros(2, 0).long())
