"""Molecular graphs from SMILES (RDKit), batching, the ESOL data set and its splits.

Graphs follow the conventions of :mod:`scidl.geometric`: ``x [N, F]``, ``edge_index [2, E]``
(source row 0, target row 1), ``batch [N]``. Hydrogens are implicit (heavy-atom graphs); every
bond gives two directed edges, stored as consecutive pairs ``(2k: u->v, 2k+1: v->u)``.

Atom features (:data:`ATOM_FEATURES`, ``ATOM_DIM = 40`` columns, in this order; each one-hot
block ends with an "other" slot so every block sums to exactly 1):

=====================  ======  ==========================================================
block                  size    values
=====================  ======  ==========================================================
element                12      B, C, N, O, F, Si, P, S, Cl, Br, I, other
degree                 7       0, 1, 2, 3, 4, 5, other (heavy-atom neighbours)
formal charge          6       -2, -1, 0, +1, +2, other
hybridisation          6       SP, SP2, SP3, SP3D, SP3D2, other
aromatic               1       0/1
total H count          6       0, 1, 2, 3, 4, other
in ring                1       0/1
mass                   1       atomic mass / 100 (as chemprop)
=====================  ======  ==========================================================

Bond features (:data:`BOND_FEATURES`, ``BOND_DIM = 6``): bond type one-hot (single, double,
triple, aromatic), conjugated, in ring.

RDKit is imported lazily, so ``import scidl.geometric`` works without it; the functions that need
it raise :class:`ImportError` naming the ``chem`` extra (``pip install scidl[chem]``).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from scidl._optional import require

ELEMENTS = ("B", "C", "N", "O", "F", "Si", "P", "S", "Cl", "Br", "I")
DEGREES = (0, 1, 2, 3, 4, 5)
FORMAL_CHARGES = (-2, -1, 0, 1, 2)
HYBRIDISATIONS = ("SP", "SP2", "SP3", "SP3D", "SP3D2")
NUM_HS = (0, 1, 2, 3, 4)
BOND_TYPES = ("SINGLE", "DOUBLE", "TRIPLE", "AROMATIC")

#: (name, width) of each atom feature block, in column order.
ATOM_FEATURES = (
    ("element", len(ELEMENTS) + 1),
    ("degree", len(DEGREES) + 1),
    ("formal_charge", len(FORMAL_CHARGES) + 1),
    ("hybridisation", len(HYBRIDISATIONS) + 1),
    ("aromatic", 1),
    ("num_hs", len(NUM_HS) + 1),
    ("in_ring", 1),
    ("mass", 1),
)
#: (name, width) of each bond feature block, in column order.
BOND_FEATURES = (("bond_type", len(BOND_TYPES)), ("conjugated", 1), ("in_ring", 1))
ATOM_DIM = sum(width for _, width in ATOM_FEATURES)
BOND_DIM = sum(width for _, width in BOND_FEATURES)

ESOL_TARGET = "measured log solubility in mols per litre"


def _chem():
    chem = require("rdkit.Chem", "chem", "scidl.geometric.molecules")
    require("rdkit.RDLogger", "chem", "scidl.geometric.molecules").DisableLog("rdApp.*")
    return chem


def _one_hot(value, choices: Sequence) -> list[float]:
    out = [0.0] * (len(choices) + 1)
    out[choices.index(value) if value in choices else len(choices)] = 1.0
    return out


def atom_features(atom) -> list[float]:
    """The ``ATOM_DIM`` features of one RDKit atom (see the module docstring)."""
    return (
        _one_hot(atom.GetSymbol(), ELEMENTS)
        + _one_hot(atom.GetDegree(), DEGREES)
        + _one_hot(atom.GetFormalCharge(), FORMAL_CHARGES)
        + _one_hot(str(atom.GetHybridization()), HYBRIDISATIONS)
        + [float(atom.GetIsAromatic())]
        + _one_hot(atom.GetTotalNumHs(), NUM_HS)
        + [float(atom.IsInRing())]
        + [atom.GetMass() * 0.01]
    )


def bond_features(bond) -> list[float]:
    """The ``BOND_DIM`` features of one RDKit bond (see the module docstring)."""
    kind = str(bond.GetBondType())
    return [float(kind == t) for t in BOND_TYPES] + [
        float(bond.GetIsConjugated()),
        float(bond.IsInRing()),
    ]


@dataclass
class MolGraph:
    """One molecule as a heavy-atom graph.

    Attributes:
        x: atom features ``[N, ATOM_DIM]`` (float32).
        edge_index: directed bonds ``[2, E]``, ``E = 2 * num_bonds``; edges ``2k`` and ``2k + 1``
            are the two directions of bond ``k``.
        edge_attr: bond features ``[E, BOND_DIM]`` (the same row for both directions).
        pos: heavy-atom coordinates ``[N, 3]`` in Angstrom (``conformer=True``), else None.
        smiles: the input SMILES.
    """

    x: torch.Tensor
    edge_index: torch.Tensor
    edge_attr: torch.Tensor
    pos: torch.Tensor | None
    smiles: str

    @property
    def num_nodes(self) -> int:
        return self.x.shape[0]

    def to_pyg(self, y=None):
        """This graph as a torch_geometric ``Data`` (``x``, ``edge_index``, ``edge_attr``,
        ``smiles``, ``pos`` if embedded, ``y`` as ``[1, T]`` if given), for torch_geometric's
        ``DataLoader``, transforms and layers. Needs the ``geometric`` extra."""
        Data = _pyg_data()
        data = Data(x=self.x, edge_index=self.edge_index, edge_attr=self.edge_attr,
                    smiles=self.smiles)
        if self.pos is not None:
            data.pos = self.pos
        if y is not None:
            data.y = torch.as_tensor(y, dtype=torch.float32).reshape(1, -1)
        return data


def _embed(mol, seed: int) -> torch.Tensor:
    from rdkit.Chem import AllChem

    Chem = _chem()
    molh = Chem.AddHs(mol)
    params = AllChem.ETKDGv3()
    params.randomSeed = seed
    if AllChem.EmbedMolecule(molh, params) != 0:
        params.useRandomCoords = True
        if AllChem.EmbedMolecule(molh, params) != 0:
            raise ValueError(f"RDKit could not embed a conformer for {Chem.MolToSmiles(mol)!r}")
    if AllChem.MMFFHasAllMoleculeParams(molh):
        AllChem.MMFFOptimizeMolecule(molh, maxIters=500)
    coords = molh.GetConformer().GetPositions()[: mol.GetNumAtoms()]  # heavy atoms come first
    return torch.tensor(coords, dtype=torch.float32)


def mol_graph(smiles, *, conformer: bool = False, seed: int = 0) -> MolGraph:
    """Featurise a SMILES string as a :class:`MolGraph`.

    Args:
        smiles: the molecule, as SMILES or as an RDKit ``Mol`` (whose atom order is kept, e.g.
            after ``Chem.RenumberAtoms``; ``smiles`` then holds its canonical SMILES).
        conformer: embed 3D coordinates (RDKit ETKDGv3 with ``randomSeed=seed``, explicit
            hydrogens, then MMFF94 optimisation where MMFF has parameters); ``pos`` holds the
            heavy atoms' coordinates.
        seed: the embedding seed.

    Raises:
        ValueError: if RDKit cannot parse ``smiles`` (or embed it, with ``conformer=True``).
    """
    Chem = _chem()
    if hasattr(smiles, "GetAtoms"):  # an RDKit Mol: keep its atom order
        mol, smiles = smiles, Chem.MolToSmiles(smiles)
    else:
        mol = Chem.MolFromSmiles(smiles.strip()) if isinstance(smiles, str) else None
    if mol is None:
        raise ValueError(f"could not parse SMILES {smiles!r} with RDKit")
    x = torch.tensor([atom_features(a) for a in mol.GetAtoms()], dtype=torch.float32)
    x = x.reshape(-1, ATOM_DIM)
    src, dst, attr = [], [], []
    for bond in mol.GetBonds():
        u, v = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
        feats = bond_features(bond)
        src += [u, v]
        dst += [v, u]
        attr += [feats, feats]
    edge_index = torch.tensor([src, dst], dtype=torch.long).reshape(2, -1)
    edge_attr = torch.tensor(attr, dtype=torch.float32).reshape(-1, BOND_DIM)
    pos = _embed(mol, seed) if conformer else None
    return MolGraph(x, edge_index, edge_attr, pos, smiles.strip())


@dataclass
class Batch:
    """Several graphs as one disconnected graph.

    Attributes:
        x ``[N, F]``, edge_index ``[2, E]`` (node indices offset per graph), edge_attr ``[E, B]``,
        batch ``[N]`` (graph of each node), num_graphs, pos ``[N, 3]`` or None (None unless every
        graph has positions), y ``[num_graphs, ...]`` or None.
    """

    x: torch.Tensor
    edge_index: torch.Tensor
    edge_attr: torch.Tensor
    batch: torch.Tensor
    num_graphs: int
    pos: torch.Tensor | None = None
    y: torch.Tensor | None = None
    smiles: list[str] = field(default_factory=list)

    def to(self, device) -> Batch:
        move = lambda t: None if t is None else t.to(device)  # noqa: E731
        return Batch(move(self.x), move(self.edge_index), move(self.edge_attr), move(self.batch),
                     self.num_graphs, move(self.pos), move(self.y), list(self.smiles))


def _pyg_data():
    return require("torch_geometric.data", "geometric", "MolGraph.to_pyg").Data


def molecule_dataset(smiles: Sequence[str], y=None, *, conformer: bool = False,
                     seed: int = 0) -> list:
    """Featurise molecules as a list of torch_geometric ``Data`` (see :meth:`MolGraph.to_pyg`),
    ready for ``torch_geometric.loader.DataLoader``; ``y`` ``[n]`` or ``[n, T]`` targets.

    Batches of these are what every model in :mod:`scidl.geometric.mpnn` takes
    (``model(batch)``), with the same node order, edge order and ``batch`` vector as
    :func:`collate`.
    """
    if y is not None and len(y) != len(smiles):
        raise ValueError(f"got {len(smiles)} SMILES but {len(y)} targets")
    return [mol_graph(s, conformer=conformer, seed=seed).to_pyg(None if y is None else y[i])
            for i, s in enumerate(smiles)]


def collate(graphs: Sequence[MolGraph], y: torch.Tensor | None = None) -> Batch:
    """Concatenate graphs; edge indices are offset by the number of nodes before each graph.

    ``graphs`` may also be torch_geometric ``Data`` objects with the same fields (e.g. from
    :func:`molecule_dataset`); the result equals ``torch_geometric.data.Batch.from_data_list``
    field by field, without its bookkeeping (this is the cheaper path in a training loop).
    """
    if len(graphs) == 0:
        raise ValueError("collate needs at least one graph")
    sizes = torch.tensor([g.num_nodes for g in graphs], dtype=torch.long)
    offsets = torch.cumsum(sizes, 0) - sizes
    edge_index = torch.cat([g.edge_index + off for g, off in zip(graphs, offsets.tolist())], 1)
    has_pos = all(getattr(g, "pos", None) is not None for g in graphs)
    return Batch(
        x=torch.cat([g.x for g in graphs]),
        edge_index=edge_index,
        edge_attr=torch.cat([g.edge_attr for g in graphs]),
        batch=torch.repeat_interleave(torch.arange(len(graphs)), sizes),
        num_graphs=len(graphs),
        pos=torch.cat([g.pos for g in graphs]) if has_pos else None,
        y=y,
        smiles=[getattr(g, "smiles", "") for g in graphs],
    )


def load_esol(path: str | os.PathLike | None = None) -> tuple[list[str], torch.Tensor]:
    """ESOL (Delaney 2004): SMILES and measured log solubility (mol/L) as float32 ``[1128]``.

    ``path`` defaults to ``$SCIDL_DATA/molecules/esol.csv``. Rows are kept as in the file
    (including its 5 duplicate SMILES).
    """
    if path is None:
        root = os.environ.get("SCIDL_DATA")
        if not root:
            raise FileNotFoundError("load_esol: pass path or set SCIDL_DATA (the shared data dir)")
        path = Path(root) / "molecules" / "esol.csv"
    smiles, targets = [], []
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            smiles.append(row["smiles"].strip())
            targets.append(float(row[ESOL_TARGET]))
    return smiles, torch.tensor(targets, dtype=torch.float32)


def _sizes(n: int, fractions: Sequence[float]) -> tuple[int, int]:
    if len(fractions) != 3 or abs(sum(fractions) - 1.0) > 1e-6 or min(fractions) < 0:
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got "
                         f"{tuple(fractions)}")
    return int(fractions[0] * n), int(fractions[1] * n)


def random_split(n: int, seed: int, fractions: Sequence[float] = (0.8, 0.1, 0.1)):
    """Shuffle ``range(n)`` with ``numpy.random.default_rng(seed)``; return (train, val, test)
    index lists of sizes ``int(f_train n)``, ``int(f_val n)`` and the rest."""
    n_train, n_val = _sizes(n, fractions)
    perm = np.random.default_rng(seed).permutation(n).tolist()
    return perm[:n_train], perm[n_train:n_train + n_val], perm[n_train + n_val:]


def murcko_scaffold(smiles: str) -> str:
    """Bemis--Murcko scaffold SMILES without chirality ("" for acyclic molecules)."""
    from rdkit.Chem.Scaffolds import MurckoScaffold

    Chem = _chem()
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise ValueError(f"could not parse SMILES {smiles!r} with RDKit")
    return MurckoScaffold.MurckoScaffoldSmiles(mol=mol, includeChirality=False)


def scaffold_split(smiles: Sequence[str], seed: int,
                   fractions: Sequence[float] = (0.8, 0.1, 0.1)):
    """Scaffold-balanced split (chemprop's ``scaffold_balanced``, Yang et al. 2019).

    Exactly: group indices by :func:`murcko_scaffold` (groups in order of first appearance,
    indices ascending within a group). With ``n_train = int(f_train n)``, ``n_val = int(f_val n)``,
    ``n_test = n - n_train - n_val``, a group is *big* if its size exceeds ``n_val / 2`` or
    ``n_test / 2``. Big groups and small groups are each shuffled with
    ``numpy.random.default_rng(seed)`` (big first, then small, same generator) and visited big
    first: a group goes to train if it fits (``len(train) + len(group) <= n_train``), else to
    validation if it fits there, else to test. So the largest scaffolds (including the acyclic
    "" group) land in train and no scaffold is ever shared between two parts.

    Returns (train, val, test) index lists.
    """
    n = len(smiles)
    n_train, n_val = _sizes(n, fractions)
    n_test = n - n_train - n_val
    groups: dict[str, list[int]] = {}
    for i, smi in enumerate(smiles):
        groups.setdefault(murcko_scaffold(smi), []).append(i)
    big = [g for g in groups.values() if len(g) > n_val / 2 or len(g) > n_test / 2]
    small = [g for g in groups.values() if not (len(g) > n_val / 2 or len(g) > n_test / 2)]
    rng = np.random.default_rng(seed)
    big = [big[i] for i in rng.permutation(len(big))]
    small = [small[i] for i in rng.permutation(len(small))]
    train, val, test = [], [], []
    for group in big + small:
        if len(train) + len(group) <= n_train:
            train += group
        elif len(val) + len(group) <= n_val:
            val += group
        else:
            test += group
    return train, val, test
