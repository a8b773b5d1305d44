"""The EGNN charged-particle N-body data (scidl.geometric.nbody_data) and the EGNN on it."""

from __future__ import annotations

import torch

from scidl.geometric import EGNN, check_equivariance
from scidl.geometric.nbody_data import (
    BURN_IN,
    HORIZON,
    SPLITS,
    NBodySplit,
    complete_graph_edges,
    constant_velocity_mse,
    fit_constant_velocity,
    generate_nbody_dataset,
    load_nbody_dataset,
    nbody_dataset,
    nbody_graph,
    save_nbody_dataset,
)
from scidl.numerics.symplectic import symplectic_euler
from scidl.sims.charged import ChargedParticles, charged_particles_dataset


def _energy(system: ChargedParticles, q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return 0.5 * v.square().sum((-2, -1)) + system.potential(q)


def test_generator_conserves_momentum_and_energy():
    start = charged_particles_dataset(32, 1, seed=3)  # the generator's initial distribution
    system = ChargedParticles(start.charges, max_force=None, learnable=False)
    medians = []
    for dt in (1e-3, 5e-4):
        q, v = symplectic_euler(system.acceleration, start.positions0, start.velocities0,
                                [0.0, 0.2], dt)
        assert q.dtype == torch.float64
        momentum = v.sum(-2)  # unit masses, no box: exactly conserved up to round-off
        assert float((momentum[-1] - momentum[0]).abs().max()) < 1e-10
        energy = _energy(system, q, v)
        medians.append(float((energy[-1] - energy[0]).abs().median()))
    # Symplectic Euler is first order: small drift at dt = 1e-3 that shrinks with dt.
    assert medians[0] < 5e-3
    assert medians[1] < 0.75 * medians[0]


def test_generator_with_clipping_conserves_momentum_outside_close_encounters():
    data = charged_particles_dataset(64, 300, seed=4)
    change = (data.velocities.sum(-2) - data.velocities0.sum(-2)).abs().amax(-1)
    assert float(change.median()) < 1e-10  # clipping (not antisymmetric) only in encounters


def test_dataset_shapes_splits_and_roundtrip(tmp_path):
    sizes = {"train": 6, "val": 4, "test": 3}
    data = generate_nbody_dataset(seed=1, sizes=sizes, burn_in=20, horizon=30)
    for name in SPLITS:
        split = data.split(name)
        n = sizes[name]
        assert len(split) == n
        assert split.pos.shape == split.vel.shape == split.target.shape == (n, 5, 3)
        assert split.charges.shape == (n, 5)
        assert set(split.charges.unique().tolist()) <= {-1.0, 1.0}
        assert split.pos.dtype == torch.float64
        speeds = torch.linalg.vector_norm(split.vel, dim=-1)
        assert float(speeds.max()) < 1.5  # started at 0.5, 20 steps only
    assert not torch.equal(data.train.pos[:3], data.test.pos)  # independent split seeds
    assert data.metadata["input_step"] == 20 and data.metadata["target_step"] == 50
    assert BURN_IN == 3100 and HORIZON == 1000
    path = save_nbody_dataset(data, tmp_path / "nbody.pt")
    back = load_nbody_dataset(path)
    assert torch.equal(back.test.target, data.test.target)
    assert back.metadata["sizes"] == sizes
    # nbody_dataset regenerates when the cache does not match, and reuses it when it does
    again = generate_nbody_dataset(seed=1, sizes=sizes, burn_in=20, horizon=30)
    assert torch.equal(again.val.pos, data.val.pos)  # deterministic in the seed
    assert nbody_dataset(path, seed=1, sizes=sizes).test.target.equal(data.test.target)


def test_constant_velocity_baseline_order_of_magnitude():
    data = charged_particles_dataset(150, HORIZON, seed=11, burn_in=BURN_IN)
    split = NBodySplit(data.positions0, data.velocities0, data.charges, data.positions)
    tau = fit_constant_velocity(split)
    assert 0.5 < tau < 1.0  # less than the elapsed time 1.0: the charges bend the paths
    mse = constant_velocity_mse(split, tau)
    assert 0.03 < mse < 0.25  # the protocol's full-test-set value is 0.0819
    assert mse <= constant_velocity_mse(split, 1.0)


def test_complete_graph_edges():
    edges = complete_graph_edges(3, 5)
    assert edges.shape == (2, 3 * 20)
    assert bool((edges[0] != edges[1]).all())
    assert bool((edges[0] // 5 == edges[1] // 5).all())  # no edges between systems
    assert len({tuple(e) for e in edges.t().tolist()}) == 60


def test_egnn_on_nbody_inputs_is_equivariant():
    data = generate_nbody_dataset(seed=2, sizes={"train": 3, "val": 1, "test": 1}, burn_in=10,
                                  horizon=10)
    g = nbody_graph(data.train.pos, data.train.vel, data.train.charges)
    assert g["h"].shape == (15, 1) and g["edge_attr"].shape == (60, 2)
    assert torch.equal(g["batch"], torch.arange(3).repeat_interleave(5))
    torch.manual_seed(0)
    model = EGNN(1, 16, 1, layers=4, edge_features=2, velocity=True).double()
    report = check_equivariance(
        lambda h, pos, vel, edge_index, edge_attr: model(h, pos, edge_index, edge_attr, vel=vel),
        {k: g[k] for k in ("h", "pos", "vel", "edge_index", "edge_attr")},
        input_types={"h": "node", "pos": "position", "vel": "vector",
                     "edge_index": "edge_index", "edge_attr": "fixed"},
        outputs={0: "node", 1: "position", 2: "vector"},
    )
    assert report.passed(1e-10), report
    # a training step's loss is finite and the batched prediction has the data's shape
    _, pred, _ = model(g["h"], g["pos"], g["edge_index"], g["edge_attr"], vel=g["vel"])
    assert pred.reshape(data.train.target.shape).shape == (3, 5, 3)


def test_time_reversed_samples_run_back_to_the_input():
    data = generate_nbody_dataset(seed=5, sizes={"train": 40, "val": 1, "test": 1}, burn_in=50,
                                  horizon=200)
    split = data.train
    back = split.time_reversed()
    assert torch.equal(back.pos, split.target) and torch.equal(back.target, split.pos)
    assert torch.equal(back.vel, -split.target_vel) and torch.equal(back.charges, split.charges)
    # re-simulating the reversed inputs lands on the original inputs: the labels are right up
    # to the integrator's (symplectic Euler, clipped forces) small irreversibility
    system = ChargedParticles(split.charges, max_force=100.0, learnable=False)
    q, _ = symplectic_euler(system.acceleration, back.pos, back.vel, [0.0, 0.2], 1e-3)
    error = (q[-1] - back.target).square().mean()
    moved = (split.target - split.pos).square().mean()
    assert float(error) < 1e-3 * float(moved)
    both = NBodySplit.concat([split.subset(3), back.subset(2)])
    assert len(both) == 5 and torch.equal(both.target[3:], split.pos[:2])
