"""Molecular graphs (RDKit featurisation, batching, splits, conformers) and the D-MPNN."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

pytest.importorskip("rdkit", reason="molecular graphs need RDKit: pip install 'scidl[chem]'")

from scidl.errors import ShapeError  # noqa: E402
from scidl.geometric import check_equivariance  # noqa: E402
from scidl.geometric.descriptors import (  # noqa: E402
    DescriptorNormaliser,
    descriptor_names,
    molecule_descriptors,
)
from scidl.geometric.molecules import (  # noqa: E402
    ATOM_DIM,
    ATOM_FEATURES,
    BOND_DIM,
    collate,
    load_esol,
    mol_graph,
    molecule_dataset,
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
    """Relabelling atoms and reordering edges changes nothing; checked by hand (edge order) and
    with check_equivariance, the kit every geometric model is tested with."""
    if cls is not MPNN:
        pytest.importorskip("torch_geometric", reason="GIN/GCN need scidl[geometric]")
    torch.manual_seed(0)
    b = collate([mol_graph(s) for s in SMILES])
    model = cls(ATOM_DIM, BOND_DIM, hidden=32).double().eval()
    x, edge_attr = b.x.double(), b.edge_attr.double()
    out = model(x, b.edge_index, edge_attr, b.batch, b.num_graphs)
    perm = torch.randperm(b.x.shape[0])
    inv = torch.argsort(perm)  # new node k is old node perm[k]
    eperm = torch.randperm(b.edge_index.shape[1])
    out_p = model(x[perm], inv[b.edge_index][:, eperm], edge_attr[eperm], b.batch[perm],
                  b.num_graphs)
    assert out.shape == (len(SMILES), 1)
    assert torch.allclose(out, out_p, atol=1e-12)
    report = check_equivariance(
        lambda x, edge_index, edge_attr, batch: model(x, edge_index, edge_attr, batch,
                                                      b.num_graphs),
        {"x": x, "edge_index": b.edge_index, "edge_attr": edge_attr, "batch": b.batch},
        input_types={"x": "node", "edge_index": "edge_index", "edge_attr": "fixed",
                     "batch": "node"},
        outputs="invariant", group=("permutation",), trials=3)
    assert report.passed(1e-10), report


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


DESC_SMILES = SMILES + ["CC(C)Cc1ccc(C(C)C(=O)O)cc1", "O=C(O)c1ccccc1O", "CCCCCCCC",
                        "c1ccc2ccccc2c1", "CN1CCC[C@H]1c1cccnc1", "OCC(O)CO", "FC(F)(F)c1ccccc1",
                        "CCOC(=O)C"]


def test_descriptors_finite_and_deterministic():
    d = molecule_descriptors(DESC_SMILES)
    assert d.shape == (len(DESC_SMILES), len(descriptor_names())) and d.dtype == np.float64
    assert np.isfinite(d).mean() > 0.98  # RDKit fails on very few (e.g. Ipc overflow -> NaN)
    assert np.array_equal(d, molecule_descriptors(DESC_SMILES), equal_nan=True)
    logp = descriptor_names().index("MolLogP")
    assert d[DESC_SMILES.index("CCCCCCCC"), logp] > d[DESC_SMILES.index("OCC(O)CO"), logp]
    sub = molecule_descriptors("CCO", names=["MolLogP", "TPSA"])
    tpsa = descriptor_names().index("TPSA")
    assert sub.shape == (1, 2) and np.allclose(sub[0], d[0, [logp, tpsa]])
    with pytest.raises(ValueError, match="could not parse SMILES"):
        molecule_descriptors(["CCO", "C1CC("])
    with pytest.raises(ValueError, match="unknown RDKit descriptors"):
        molecule_descriptors(["CCO"], names=["NotADescriptor"])


def test_descriptors_without_rdkit_raise(monkeypatch):
    monkeypatch.setitem(sys.modules, "rdkit", None)
    monkeypatch.setitem(sys.modules, "rdkit.Chem", None)
    with pytest.raises(ImportError, match=r"scidl\[chem\]"):
        molecule_descriptors(["CCO"])


@pytest.mark.parametrize("method", ["cdf", "standard"])
def test_normaliser_fitted_on_train_only(method):
    d = molecule_descriptors(DESC_SMILES)
    d[0, 3] = np.nan  # a missing value is filled with the training median
    train, test = d[:9], d[9:]
    norm = DescriptorNormaliser(method).fit(train)
    z_train, z_test = norm.transform(train), norm.transform(test)
    assert z_train.dtype == np.float32 and np.isfinite(z_train).all() and np.isfinite(z_test).all()
    varying = ~norm.constant_
    assert np.all(z_train[:, norm.constant_] == 0)
    if method == "cdf":
        assert z_train.min() >= 0 and z_train.max() <= 1 and z_test.min() >= 0 and z_test.max() <= 1
        for j in np.flatnonzero(varying):  # a monotone map of each column
            order = np.argsort(np.nan_to_num(train[:, j], nan=norm.median_[j]), kind="stable")
            assert np.all(np.diff(z_train[order, j]) >= 0) and z_train[order[-1], j] > 0.5
    else:
        assert np.allclose(z_train[:, varying].mean(0), 0, atol=1e-5)
        assert np.abs(z_test).max() <= norm.clip
    # statistics come from the training rows alone: test rows do not change them
    again = DescriptorNormaliser(method).fit(train)
    assert np.array_equal(again.transform(np.vstack([train, test])), np.vstack([z_train, z_test]))
    assert np.allclose(norm.median_[4], np.median(train[:, 4]))
    with pytest.raises(RuntimeError, match="before fit"):
        DescriptorNormaliser(method).transform(train)


def test_mpnn_with_descriptors_invariant_to_rdkit_atom_order():
    from rdkit import Chem

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    originals = [Chem.MolFromSmiles(s) for s in DESC_SMILES]
    renumbered = [Chem.RenumberAtoms(m, rng.permutation(m.GetNumAtoms()).tolist())
                  for m in originals]
    assert any(Chem.MolToSmiles(r, canonical=False) != Chem.MolToSmiles(m, canonical=False)
               for m, r in zip(originals, renumbered))
    norm = DescriptorNormaliser("standard").fit(molecule_descriptors(DESC_SMILES))
    extra = torch.as_tensor(norm.transform(molecule_descriptors(DESC_SMILES))).double()
    extra_p = torch.as_tensor(norm.transform(molecule_descriptors(
        [Chem.MolToSmiles(r, canonical=False) for r in renumbered]))).double()
    assert torch.allclose(extra, extra_p, atol=1e-6)
    model = MPNN(ATOM_DIM, BOND_DIM, hidden=32, ffn_hidden=32,
                 extra_features=extra.shape[1]).double().eval()

    def predict(mols, feats):
        b = collate([mol_graph(m) for m in mols])
        return model(b.x.double(), b.edge_index, b.edge_attr.double(), b.batch, b.num_graphs,
                     extra=feats)

    out, out_p = predict(originals, extra), predict(renumbered, extra_p)
    assert out.shape == (len(DESC_SMILES), 1)
    assert torch.allclose(out, out_p, atol=1e-6, rtol=0)
    with pytest.raises(ShapeError):
        predict(originals, extra[:, :5])


def test_tiny_training_with_descriptors_learns():
    torch.manual_seed(0)
    d = molecule_descriptors(DESC_SMILES)
    extra = torch.as_tensor(DescriptorNormaliser("standard").fit_transform(d))
    b = collate([mol_graph(s) for s in DESC_SMILES])
    y = torch.linspace(-2, 1, len(DESC_SMILES))
    model = MPNN(ATOM_DIM, BOND_DIM, hidden=32, ffn_hidden=32, extra_features=extra.shape[1])
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        loss = torch.nn.functional.mse_loss(
            model(b.x, b.edge_index, b.edge_attr, b.batch, b.num_graphs, extra=extra)[:, 0], y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]


def test_collate_matches_torch_geometric_batching():
    pyg = pytest.importorskip("torch_geometric", reason="needs scidl[geometric]")
    from torch_geometric.loader import DataLoader

    y = torch.arange(len(SMILES), dtype=torch.float32)
    data = molecule_dataset(SMILES, y)
    assert isinstance(data[0], pyg.data.Data) and data[2].y.shape == (1, 1)
    ours = collate([mol_graph(s) for s in SMILES])
    theirs = next(iter(DataLoader(data, batch_size=len(SMILES), shuffle=False)))
    for name in ("x", "edge_index", "edge_attr", "batch"):
        assert torch.equal(getattr(ours, name), getattr(theirs, name)), name
    assert ours.num_graphs == theirs.num_graphs and theirs.smiles == ours.smiles
    assert torch.equal(theirs.y[:, 0], y)
    assert torch.equal(collate(data).edge_index, ours.edge_index)  # collate takes Data too
    with pytest.raises(ValueError, match="targets"):
        molecule_dataset(SMILES, y[:2])


@pytest.mark.parametrize("cls", [MPNN, GIN, GCN])
def test_models_take_a_torch_geometric_batch(cls):
    pytest.importorskip("torch_geometric", reason="needs scidl[geometric]")
    from torch_geometric.loader import DataLoader

    torch.manual_seed(0)
    model = cls(ATOM_DIM, BOND_DIM, hidden=16, ffn_hidden=16).eval()
    ours = collate([mol_graph(s) for s in SMILES])
    expected = model(ours.x, ours.edge_index, ours.edge_attr, ours.batch, ours.num_graphs)
    loader = DataLoader(molecule_dataset(SMILES), batch_size=4, shuffle=False)
    got = torch.cat([model(batch) for batch in loader])
    assert torch.allclose(got, expected, atol=1e-6)
    assert torch.allclose(model(ours), expected)  # scidl's Batch works the same way
    single = mol_graph(SMILES[1])
    assert torch.allclose(model(single.to_pyg()), expected[1:2], atol=1e-6)
    with pytest.raises(ShapeError, match="edge_index"):
        model(ours.x)


def test_gcn_is_the_normalised_adjacency_propagation():
    """One GCN layer equals relu(D^-1/2 (A + I) D^-1/2 X W + b), formed densely in float64."""
    pytest.importorskip("torch_geometric", reason="needs scidl[geometric]")
    torch.manual_seed(0)
    b = collate([mol_graph(s) for s in SMILES])
    model = GCN(ATOM_DIM, hidden=8, layers=1, ffn_hidden=8).double().eval()
    conv = model.convs[0]
    n = b.x.shape[0]
    a = torch.eye(n, dtype=torch.float64)
    a[b.edge_index[1], b.edge_index[0]] = 1.0
    d = a.sum(1).rsqrt()
    x = b.x.double()
    dense = torch.relu(d[:, None] * a * d[None, :] @ x @ conv.lin.weight.T + conv.bias)
    assert torch.allclose(torch.relu(conv(x, b.edge_index)), dense, atol=1e-12)

