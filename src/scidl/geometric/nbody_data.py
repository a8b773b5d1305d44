"""The charged-particle N-body task of Satorras et al., "E(n) Equivariant Graph Neural Networks"
(ICML 2021), generated with scidl's own simulator, plus the constant-velocity baseline and
the batching of many 5-particle systems into one graph for :class:`~scidl.geometric.EGNN`.

Protocol (``/work/shared/PROTOCOLS.md``, "EGNN charged-particle N-body"): the NRI "charged"
generator without walls during the run; 5 particles with charges +-1, positions ``N(0, 1)``
per coordinate, speeds 0.5, force ``q_i q_j (x_i - x_j) / |x_i - x_j|^3`` with each component
clipped to ``0.1 / dt``, ``dt = 1e-3``, symplectic Euler. NRI records every 100 steps and
overwrites the initial frame, so frame ``k`` is step ``100 (k + 1)``; EGNN maps frame 30 (step
3,100) to frame 40 (step 4,100). Input: positions and velocities at step 3,100; target:
positions 1,000 steps later. Splits: 3,000 train / 2,000 validation / 2,000 test.

The simulation is :func:`scidl.sims.charged_particles_dataset` (vectorised torch float64, same
force law, clipping, integrator and initial-state distribution as NRI's ``ChargedParticlesSim``;
a torch generator instead of numpy's global RNG, so the numbers differ but not the statistics).
Each split is drawn with its own seed derived from ``seed``.

The constant-velocity ("Linear") baseline predicts ``x + tau v`` with one ``tau`` fitted by
least squares on the training split (closed form); the paper reports 0.0819 test MSE.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from scidl.sims.charged import charged_particles_dataset

SPLITS = ("train", "val", "test")
DEFAULT_SIZES = {"train": 3000, "val": 2000, "test": 2000}
BURN_IN = 3100  # frame 30 of NRI's recording = step 100 * (30 + 1)
HORIZON = 1000  # frame 40 - frame 30, at 100 steps per frame
PAPER_TEST_MSE = {"constant_velocity": 0.0819, "se3_transformer": 0.0244, "tfn": 0.0155,
                  "gnn": 0.0107, "radial_field": 0.0104, "egnn": 0.0071}


@dataclass
class NBodySplit:
    """One split: ``pos``, ``vel``, ``target`` ``[n, 5, 3]``, ``charges`` ``[n, 5]``, and the
    velocities at the target frame ``target_vel`` ``[n, 5, 3]`` (``None`` in files written
    before they were recorded)."""

    pos: torch.Tensor
    vel: torch.Tensor
    charges: torch.Tensor
    target: torch.Tensor
    target_vel: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.pos.shape[0]

    def _fields(self) -> tuple[torch.Tensor | None, ...]:
        return (self.pos, self.vel, self.charges, self.target, self.target_vel)

    def subset(self, n: int) -> NBodySplit:
        """The first ``n`` samples."""
        return NBodySplit(*(None if t is None else t[:n] for t in self._fields()))

    def to(self, dtype: torch.dtype) -> NBodySplit:
        return NBodySplit(*(None if t is None else t.to(dtype) for t in self._fields()))

    def time_reversed(self) -> NBodySplit:
        """The same trajectories run backwards: input ``(target, -target_vel)``, target ``pos``.

        The charged system is time-reversible (forces depend on positions only), so these are
        samples of the same task; the integrator (symplectic Euler with force clipping) is only
        approximately reversible, which leaves a label error of about 6e-4 MSE against the
        ~7e-3 a trained EGNN reaches (measured on 200 trajectories by re-simulating backwards).
        Used as data augmentation; the evaluation splits are never reversed.
        """
        if self.target_vel is None:
            raise ValueError("time_reversed needs target_vel; regenerate the dataset (files "
                             "written before target velocities were recorded lack them)")
        return NBodySplit(self.target, -self.target_vel, self.charges, self.pos, -self.vel)

    @staticmethod
    def concat(splits: list[NBodySplit]) -> NBodySplit:
        """Samples of several splits, in order."""
        fields = zip(*(s._fields() for s in splits))
        return NBodySplit(*(None if any(t is None for t in f) else torch.cat(f)
                            for f in fields))


@dataclass
class NBodyDataset:
    """Train / validation / test splits and the generator's metadata."""

    train: NBodySplit
    val: NBodySplit
    test: NBodySplit
    metadata: dict = field(default_factory=dict)

    def split(self, name: str) -> NBodySplit:
        if name not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {name!r}")
        return getattr(self, name)


def generate_nbody_dataset(seed: int = 43, sizes: dict[str, int] | None = None, *,
                           burn_in: int = BURN_IN, horizon: int = HORIZON,
                           n_particles: int = 5, dt: float = 1e-3) -> NBodyDataset:
    """Simulate the EGNN N-body splits (float64). Split ``k`` of ``SPLITS`` uses seed
    ``1000 * seed + k``, so splits are independent and a smaller split is not a prefix of a
    larger one's generator stream (use :meth:`NBodySplit.subset` for that).

    Args:
        seed: base seed (EGNN's dataset used 43 with numpy).
        sizes: samples per split (default 3,000 / 2,000 / 2,000).
        burn_in: steps before the input frame (3,100).
        horizon: steps from input to target (1,000).
    """
    sizes = {**DEFAULT_SIZES, **(sizes or {})}
    splits = {}
    for k, name in enumerate(SPLITS):
        data = charged_particles_dataset(sizes[name], steps=horizon, seed=1000 * seed + k,
                                         n_particles=n_particles, burn_in=burn_in, dt=dt)
        splits[name] = NBodySplit(data.positions0, data.velocities0, data.charges,
                                  data.positions, data.velocities)
        meta = dict(data.metadata)
    meta.update({"generator": "scidl.geometric.nbody_data.generate_nbody_dataset",
                 "simulator": "scidl.sims.charged_particles_dataset", "seed": seed,
                 "split_seeds": {n: 1000 * seed + k for k, n in enumerate(SPLITS)},
                 "sizes": sizes, "input_step": burn_in, "target_step": burn_in + horizon})
    meta.pop("n", None)
    return NBodyDataset(splits["train"], splits["val"], splits["test"], meta)


def save_nbody_dataset(dataset: NBodyDataset, path: str | Path) -> Path:
    """Save with ``torch.save`` (a dict of tensors and the metadata)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"metadata": dataset.metadata}
    for name in SPLITS:
        s = dataset.split(name)
        payload[name] = {"pos": s.pos, "vel": s.vel, "charges": s.charges, "target": s.target,
                         "target_vel": s.target_vel}
    torch.save(payload, path)
    return path


def load_nbody_dataset(path: str | Path) -> NBodyDataset:
    payload = torch.load(Path(path), weights_only=True)
    splits = {name: NBodySplit(**payload[name]) for name in SPLITS}
    return NBodyDataset(splits["train"], splits["val"], splits["test"], payload["metadata"])


def nbody_dataset(path: str | Path | None = None, seed: int = 43,
                  sizes: dict[str, int] | None = None) -> NBodyDataset:
    """Load ``path`` if it exists and matches ``seed``/``sizes``, else generate (and save)."""
    sizes = {**DEFAULT_SIZES, **(sizes or {})}
    if path is not None and Path(path).exists():
        data = load_nbody_dataset(path)
        if (data.metadata.get("seed") == seed and data.metadata.get("sizes") == sizes
                and data.train.target_vel is not None):
            return data
    data = generate_nbody_dataset(seed, sizes)
    if path is not None:
        save_nbody_dataset(data, path)
    return data


def fit_constant_velocity(split: NBodySplit) -> float:
    """Least-squares ``tau`` of ``target ~ pos + tau vel``: ``<d, v> / <v, v>``, ``d = target
    - pos``."""
    d = split.target - split.pos
    return float((d * split.vel).sum() / (split.vel * split.vel).sum())


def constant_velocity_mse(split: NBodySplit, tau: float) -> float:
    """Mean over samples, particles and coordinates of ``(pos + tau vel - target)^2``."""
    return float((split.pos + tau * split.vel - split.target).square().mean())


def complete_graph_edges(n_graphs: int, n_nodes: int = 5, device=None) -> torch.Tensor:
    """``edge_index [2, n_graphs n_nodes (n_nodes - 1)]`` of ``n_graphs`` disjoint complete
    graphs without self-loops, nodes numbered graph by graph (source row 0, target row 1)."""
    i, j = torch.meshgrid(torch.arange(n_nodes, device=device),
                          torch.arange(n_nodes, device=device), indexing="ij")
    keep = i != j
    src, dst = j[keep], i[keep]
    offset = (torch.arange(n_graphs, device=device) * n_nodes).unsqueeze(1)
    return torch.stack([(src + offset).reshape(-1), (dst + offset).reshape(-1)])


def nbody_graph(pos: torch.Tensor, vel: torch.Tensor, charges: torch.Tensor
                ) -> dict[str, torch.Tensor]:
    """Inputs of :class:`~scidl.geometric.EGNN` (``velocity=True``, ``in_features=1``,
    ``edge_features=2``) for a batch of ``B`` systems as one graph, as in EGNN's reference
    code: node feature ``|v_i|``, edge attributes ``(q_i q_j, |x_i - x_j|^2)`` at the input
    frame, complete graph per system.

    Shapes:
        pos, vel ``[B, n, 3]``, charges ``[B, n]`` -> ``h [B n, 1]``, ``pos``/``vel``
        ``[B n, 3]``, ``edge_index [2, B n (n - 1)]``, ``edge_attr [E, 2]``, ``batch [B n]``.
    """
    b, n, _ = pos.shape
    edge_index = complete_graph_edges(b, n, pos.device)
    flat_pos, flat_vel = pos.reshape(b * n, 3), vel.reshape(b * n, 3)
    q = charges.reshape(b * n)
    src, dst = edge_index
    dist2 = (flat_pos[dst] - flat_pos[src]).square().sum(-1)
    edge_attr = torch.stack([q[src] * q[dst], dist2], dim=-1)
    h = torch.linalg.vector_norm(flat_vel, dim=-1, keepdim=True)
    batch = torch.arange(b, device=pos.device).repeat_interleave(n)
    return {"h": h, "pos": flat_pos, "vel": flat_vel, "edge_index": edge_index,
            "edge_attr": edge_attr, "batch": batch}
