"""Learn a conservative force field with scidl's e3nn tensor-product potential.

System: ``--particles`` (default 8) point masses of two species (half A, half B) in 3D, every
pair joined by a Hookean spring (:class:`scidl.sims.springs.SpringNetwork`) whose stiffness
and rest length depend on the species pair (AA: k 1.0, L 1.0; AB: 2.0, 1.3; BB: 0.5, 1.6).
Data: velocity-Verlet trajectories (:func:`scidl.numerics.symplectic.velocity_verlet`,
step 0.01) from random initial states (positions ``0.8 N(0, 1)``, velocities ``0.5 N(0, 1)``
without centre-of-mass drift), one frame every 0.1 time units for 10 time units;
``--train-traj`` trajectories for training and ``--test-traj`` other ones for testing.
Labels: the simulator's potential energy and forces.

Model: :class:`scidl.geometric.TensorProductPotential` (hidden irreps ``32x0e + 16x1o + 8x2e``,
2 layers, lmax 2, Bessel radial basis with a polynomial cutoff at 6, species one-hot), on the
complete graph of each configuration. Energies are put on the force scale with
``energy_shift`` = mean training energy per particle and ``energy_scale`` = training force RMS.
Loss: force MSE + 0.1 x per-particle energy MSE (both divided by the force variance); Adam,
cosine-decayed learning rate, ``--batch`` configurations per step.

Reported on the test trajectories: force MAE / RMSE (absolute and relative to the force RMS),
energy MAE per particle (absolute and relative to the energy standard deviation per particle),
the equivariance errors of the trained model (float32 and a float64 copy) from
:func:`scidl.geometric.check_equivariance`, and the drift of the total energy in an NVE run
driven by the learned forces (learned potential + kinetic) against the simulator's own drift.

Usage: python benchmarks/e3nn_forces.py [--steps N] [--batch B] [--particles N]
       [--train-traj K] [--test-traj K] [--threads T] [--seed S] [--out FILE]
Writes benchmarks/results/e3nn_forces.json.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import torch
from _results import machine_info, utc_now, write_result

from scidl.geometric import check_equivariance
from scidl.geometric.tensor_product import TensorProductPotential
from scidl.numerics.symplectic import velocity_verlet
from scidl.sims.springs import SpringNetwork

ROOT = Path(__file__).resolve().parent
PAIR = {(0, 0): (1.0, 1.0), (0, 1): (2.0, 1.3), (1, 1): (0.5, 1.6)}  # (stiffness, rest length)


def spring_system(species: torch.Tensor) -> SpringNetwork:
    pairs = torch.combinations(torch.arange(species.shape[0]))
    kinds = [tuple(sorted(species[p].tolist())) for p in pairs]
    stiffness = torch.tensor([PAIR[k][0] for k in kinds])
    rest = torch.tensor([PAIR[k][1] for k in kinds])
    return SpringNetwork(pairs, stiffness, rest, dim=3, learnable=False)


def trajectories(system: SpringNetwork, count: int, n: int, gen: torch.Generator,
                 t_end: float = 10.0, every: float = 0.1, dt: float = 0.01):
    """Frames ``[count * T, n, 3]`` with energies ``[count * T]`` and forces."""
    q0 = 0.8 * torch.randn(count, n, 3, generator=gen, dtype=torch.float64)
    v0 = 0.5 * torch.randn(count, n, 3, generator=gen, dtype=torch.float64)
    v0 = v0 - v0.mean(1, keepdim=True)
    t = torch.arange(1, int(round(t_end / every)) + 1, dtype=torch.float64) * every
    with torch.no_grad():
        q, _ = velocity_verlet(system.acceleration, q0, v0, torch.cat([t.new_zeros(1), t]), dt)
        q = q[1:].transpose(0, 1).reshape(-1, n, 3)  # drop the random initial state
        return q, system.potential(q), system.acceleration(q)  # unit masses: a = F


def complete_edges(n: int, graphs: int) -> torch.Tensor:
    one = torch.tensor([(j, i) for i in range(n) for j in range(n) if i != j]).T
    return torch.cat([one + g * n for g in range(graphs)], dim=1)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--particles", type=int, default=8)
    p.add_argument("--train-traj", type=int, default=12)
    p.add_argument("--test-traj", type=int, default=4)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=5e-3)
    p.add_argument("--cutoff", type=float, default=6.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(ROOT / "results" / "e3nn_forces.json"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    n = args.particles
    species = (torch.arange(n) >= n // 2).long()
    system = spring_system(species)

    t0 = time.perf_counter()
    q_train, e_train, f_train = trajectories(system, args.train_traj, n, gen)
    q_test, e_test, f_test = trajectories(system, args.test_traj, n, gen)
    max_dist = max(float(torch.cdist(q, q).max()) for q in (q_train, q_test))
    if max_dist >= args.cutoff:
        raise SystemExit(f"largest distance {max_dist:.2f} exceeds the cutoff {args.cutoff}")
    force_rms = float(f_train.square().mean().sqrt())
    print(f"data: {len(q_train)} train / {len(q_test)} test frames of {n} particles in "
          f"{time.perf_counter() - t0:.1f} s; force RMS {force_rms:.3f}, largest distance "
          f"{max_dist:.2f} (cutoff {args.cutoff})", flush=True)

    model = TensorProductPotential(2, "32x0e + 16x1o + 8x2e", layers=2, lmax=2,
                                   cutoff=args.cutoff, avg_neighbors=n - 1,
                                   energy_scale=force_rms,
                                   energy_shift=float(e_train.mean()) / n)
    q_train, e_train, f_train = q_train.float(), e_train.float(), f_train.float()
    edges = complete_edges(n, args.batch)
    batch_vec = torch.arange(args.batch).repeat_interleave(n)
    h = species.repeat(args.batch)

    def predict(model, q):
        b = q.shape[0]
        energy, forces = model.energy_and_forces(
            species.repeat(b), q.reshape(-1, 3), complete_edges(n, b),
            torch.arange(b).repeat_interleave(n), num_graphs=b)
        return energy.detach(), forces.detach().reshape(q.shape)

    def test_errors(model) -> dict:
        energy, forces = predict(model, q_test.float())
        err = (forces.double() - f_test)
        e_err = (energy.double() - e_test) / n
        scale = float(f_test.square().mean().sqrt())
        return {"force_mae": float(err.abs().mean()),
                "force_rmse": float(err.square().mean().sqrt()),
                "force_rms": scale,
                "force_rmse_relative": float(err.square().mean().sqrt()) / scale,
                "energy_mae_per_particle": float(e_err.abs().mean()),
                "energy_std_per_particle": float((e_test / n).std()),
                "energy_mae_relative": float(e_err.abs().mean()) / float((e_test / n).std())}

    untrained = test_errors(model)
    print(f"untrained: test force RMSE {untrained['force_rmse']:.4f}", flush=True)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.steps)
    t0 = time.perf_counter()
    curve = []
    for step in range(args.steps):
        idx = torch.randint(len(q_train), (args.batch,), generator=gen)
        energy, forces = model.energy_and_forces(h, q_train[idx].reshape(-1, 3), edges,
                                                 batch_vec, num_graphs=args.batch,
                                                 create_graph=True)
        loss = ((forces - f_train[idx].reshape(-1, 3)).square().mean()
                + 0.1 * ((energy - e_train[idx]) / n).square().mean()) / force_rms**2
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if (step + 1) % max(1, args.steps // 10) == 0:
            errors = test_errors(model)
            curve.append({"step": step + 1, "loss": float(loss.detach()), **errors})
            print(f"step {step + 1}: loss {float(loss.detach()):.4f}, test force RMSE "
                  f"{errors['force_rmse']:.4f} ({100 * errors['force_rmse_relative']:.1f}% of "
                  f"RMS), energy MAE/particle {errors['energy_mae_per_particle']:.4f}",
                  flush=True)
    train_s = time.perf_counter() - t0
    final = test_errors(model)

    # Symmetry of the trained model: energy invariant, forces equivariant.
    q = q_test[:2].reshape(-1, 3)
    inputs = {"h": species.repeat(2), "pos": q, "edge_index": complete_edges(n, 2),
              "batch": torch.arange(2).repeat_interleave(n)}
    types = {"h": "node", "pos": "position", "edge_index": "edge_index", "batch": "node"}
    equivariance = {}
    for name, dtype in (("float32", torch.float32), ("float64", torch.float64)):
        m = copy.deepcopy(model).to(dtype)
        report = check_equivariance(
            lambda h, pos, edge_index, batch, m=m: m.energy_and_forces(h, pos, edge_index, batch,
                                                                       num_graphs=2),
            {**inputs, "pos": q.to(dtype)}, input_types=types, outputs=("invariant", "vector"))
        equivariance[name] = {"energy_abs": max(v for (_, o), v in report.abs_errors.items()
                                                if o == "0"),
                              "energy_rel": max(v for (_, o), v in report.rel_errors.items()
                                                if o == "0"),
                              "forces_abs": max(v for (_, o), v in report.abs_errors.items()
                                                if o == "1"),
                              "forces_rel": max(v for (_, o), v in report.rel_errors.items()
                                                if o == "1")}
        errs = equivariance[name]
        print(f"equivariance ({name}): worst energy error {errs['energy_abs']:.2e} (relative "
              f"{errs['energy_rel']:.1e}), worst force error {errs['forces_abs']:.2e} (relative "
              f"{errs['forces_rel']:.1e})", flush=True)

    # NVE with the learned forces: the learned total energy should be conserved too.
    model64 = copy.deepcopy(model).double()
    one_edges, zeros = complete_edges(n, 1), torch.zeros(n, dtype=torch.long)

    def learned_acc(x):
        return model64.energy_and_forces(species, x, one_edges, zeros)[1]

    q0, v0 = q_test[0], torch.randn(n, 3, generator=gen, dtype=torch.float64) * 0.5
    v0 = v0 - v0.mean(0)
    times = torch.linspace(0, 10, 101, dtype=torch.float64)
    qs, vs = velocity_verlet(learned_acc, q0, v0, times, 0.01)
    with torch.no_grad():
        learned_h = torch.stack([model64(species, x, one_edges)[0] for x in qs])
        learned_h = learned_h + 0.5 * vs.square().sum((1, 2))
        qr, vr = velocity_verlet(system.acceleration, q0, v0, times, 0.01)
        ref_h = system.potential(qr) + 0.5 * vr.square().sum((1, 2))
    kinetic = float(0.5 * vr.square().sum((1, 2)).mean())
    nve = {"learned_energy_drift": float((learned_h - learned_h[0]).abs().max()) / kinetic,
           "reference_energy_drift": float((ref_h - ref_h[0]).abs().max()) / kinetic,
           "position_rmse_t1": float((qs[10] - qr[10]).square().mean().sqrt()),
           "note": "max |H(t) - H(0)| / mean kinetic energy over t in [0, 10], dt 0.01"}
    print(f"NVE with learned forces: energy drift {nve['learned_energy_drift']:.2e} of the "
          f"kinetic energy (simulator {nve['reference_energy_drift']:.2e}); position RMSE "
          f"vs simulator at t=1: {nve['position_rmse_t1']:.3f}")
    print(f"final: test force MAE {final['force_mae']:.4f}, RMSE {final['force_rmse']:.4f} "
          f"({100 * final['force_rmse_relative']:.1f}% of force RMS {final['force_rms']:.3f}); "
          f"energy MAE/particle {final['energy_mae_per_particle']:.4f} "
          f"({100 * final['energy_mae_relative']:.1f}% of its std); training {train_s:.0f} s")
    result = {
        "benchmark": "e3nn_forces",
        "date": utc_now(),
        "machine": machine_info(),
        "args": vars(args),
        "system": {"particles": n, "species": species.tolist(),
                   "pairs": {f"{a}{b}": {"stiffness": k, "rest_length": length}
                             for (a, b), (k, length) in PAIR.items()},
                   "train_frames": len(q_train), "test_frames": len(q_test),
                   "largest_distance": max_dist},
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_seconds": train_s,
        "untrained": untrained,
        "test": final,
        "curve": curve,
        "equivariance": equivariance,
        "nve": nve,
    }
    write_result(args.out, result)
    return result


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
