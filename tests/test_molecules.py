"""Molecular graphs (RDKit featurisation, batching, splits, conformers) and the D-MPNN."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("rdkit", reason="molecular graphs need RDKit: pip install 'scidl[chem]'")

from scidl.geometric.molecules import (  # noqa: E402
    ATOM_DIM,
    ATOM_FEATURES,
    BOND_DIM,
    collate,
    load_esol,
    mol_graph,
    murcko_scaffold,
    random_split,
    scaffold_split,
)
from scidl.geometric.mpnn import GCN, GIN, MPNN, reverse_edges  # noqa: E402

SMILES = ["CCO", "c1ccccc1", "CC(=O)Nc1ccc(O)cc1", "C#N", "OC(=O)C[NH3+]", "ClC(Cl)Cl"]


def _blocks(x):
    start = 0
    for name, width in ATOM_FEATURES:
        yield name, width, x[:, start:start + width]
        start += width


def test_counts_and_feature_blocks():
    g = mol_graph("CCO")
    assert g.x.shape == (3, ATOM_DIM) and g.edge_index.shape == (2, 4)
    assert g.edge_attr.shape == (4, BOND_DIM) and g.pos is None
    para = mol_graph("CC(=O)Nc1ccc(O)cc1")  # paracetamol: 11 heavy atoms, 11 bonds
    assert para.num_nodes == 11 and para.edge_index.shape[1] == 22
    for smi in SMILES:
        g = mol_graph(smi)
        for name, width, block in _blocks(g.x):
            if width > 1:  # one-hot blocks (with their "other" slot) sum to one
                assert torch.all(block.sum(1) == 1), name
        assert torch.all(g.edge_attr[:, :4].sum(1) == 1)


def test_benzene_aromatic_and_both_directions():
    g = mol_graph("c1ccccc1")
    aromatic_col = sum(w for name, w in ATOM_FEATURES[:4])
    assert torch.all(g.x[:, aromatic_col] == 1)
    assert torch.all(g.edge_attr[:, 3] == 1)  # aromatic bond type
    assert torch.all(g.edge_attr[:, 5] == 1)  # in ring
    edges = set(map(tuple, g.edge_index.T.tolist()))
    assert all((j, i) in edges for i, j in edges) and len(edges) == 12
    assert torch.equal(g.edge_index[:, 0::2], g.edge_index[:, 1::2].flip(0))


def test_bad_smiles_raises():
    with pytest.raises(ValueError, match="could not parse SMILES"):
        mol_graph("C1CC(")


def test_collate_offsets():
    graphs = [mol_graph(s) for s in SMILES[:3]]
    b = collate(graphs)
    sizes = [g.num_nodes for g in graphs]
    assert b.num_graphs == 3 and b.x.shape[0] == sum(sizes)
    assert b.batch.tolist() == sum(([k] * n for k, n in enumerate(sizes)), [])
    e0, e1 = graphs[0].edge_index.shape[1], graphs[1].edge_index.shape[1]
    assert torch.equal(b.edge_index[:, e0:e0 + e1], graphs[1].edge_index + sizes[0])
    assert torch.all(b.batch[b.edge_index[0]] == b.batch[b.edge_index[1]])


def test_conformer_bond_lengths():
    g = mol_graph("CCCC", conformer=True, seed=1)
    src, dst = g.edge_index
    lengths = (g.pos[src] - g.pos[dst]).norm(dim=1)
    assert torch.allclose(lengths, torch.full_like(lengths, 1.53), atol=0.05)
    again = mol_graph("CCCC", conformer=True, seed=1)
    assert torch.allclose(g.pos, again.pos)


def test_splits_reproducible_and_scaffolds_disjoint():
    smiles = ["c1ccccc1C", "c1ccccc1O", "c1ccccc1N", "C1CCCCC1O", "C1CCCCC1N", "CCO", "CCCC",
              "c1ccncc1C", "c1ccncc1O", "C1CCOC1", "C1CCOC1C", "O=C1CCCC1", "c1ccc2ccccc2c1",
              "Cc1ccc2ccccc2c1", "C1CC1", "CC1CC1", "c1ccsc1", "Cc1ccsc1", "CCN", "CCCl"]
    for seed in range(3):
        parts = scaffold_split(smiles, seed)
        assert parts == scaffold_split(smiles, seed)
        assert sorted(sum(parts, [])) == list(range(len(smiles)))
        owner = {}
        for k, part in enumerate(parts):
            for i in part:
                assert owner.setdefault(murcko_scaffold(smiles[i]), k) == k
    assert random_split(50, 3) == random_split(50, 3) != random_split(50, 4)
    assert [len(p) for p in random_split(50, 0)] == [40, 5, 5]


def test_esol_scaffold_split(shared_data):
    smiles, y = load_esol(shared_data / "molecules" / "esol.csv")
    assert len(smiles) == 1128 and y.shape == (1128,)
    train, val, test = scaffold_split(smiles, 0)
    assert (len(train), len(val), len(test)) == (902, 112, 114)
    scaff = [murcko_scaffold(s) for s in smiles]
    assert not ({scaff[i] for i in train} & {scaff[i] for i in test})
    assert not ({scaff[i] for i in val} & {scaff[i] for i in test})


@pytest.mark.parametrize("cls", [MPNN, GIN, GCN])
def test_permutation_invariance(cls):
    torch.manual_seed(0)
    b = collate([mol_graph(s) for s in SMILES])
    model = cls(ATOM_DIM, BOND_DIM, hidden=32).eval()
    out = model(b.x, b.edge_index, b.edge_attr, b.batch, b.num_graphs)
    perm = torch.randperm(b.x.shape[0])
    inv = torch.argsort(perm)  # new node k is old node perm[k]
    eperm = torch.randperm(b.edge_index.shape[1])
    out_p = model(b.x[perm], inv[b.edge_index][:, eperm], b.edge_attr[eperm], b.batch[perm],
                  b.num_graphs)
    assert out.shape == (len(SMILES), 1)
    assert torch.allclose(out, out_p, atol=1e-5)


def test_reverse_edges():
    g = mol_graph("CC(=O)O")
    rev = reverse_edges(g.edge_index, g.num_nodes)
    assert torch.equal(g.edge_index[:, rev], g.edge_index.flip(0))


def test_tiny_training_lowers_loss():
    torch.manual_seed(0)
    b = collate([mol_graph(s) for s in SMILES])
    y = torch.tensor([-0.2, -1.6, -1.0, 0.5, 0.8, -1.2])
    model = MPNN(ATOM_DIM, BOND_DIM, hidden=32, ffn_hidden=32)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        loss = torch.nn.functional.mse_loss(
            model(b.x, b.edge_index, b.edge_attr, b.batch, b.num_graphs)[:, 0], y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]
