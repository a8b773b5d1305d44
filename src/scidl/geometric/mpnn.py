"""Message-passing networks for molecular property prediction.

* :class:`MPNN` -- the directed message-passing network of chemprop (D-MPNN; Yang et al.,
  "Analyzing Learned Molecular Representations for Property Prediction", JCIM 2019): hidden
  states live on directed bonds, a bond ``v -> w`` sums the messages into ``v`` except the one
  coming back from ``w``, atoms aggregate their incoming bonds at the end, a mean (or sum)
  readout and a feed-forward head give one prediction per graph.
* :class:`GIN` -- graph isomorphism network with edge features (GINE; Xu et al. 2019, Hu et al.
  2020), a node-centred baseline.
* :class:`GCN` -- graph convolution (Kipf & Welling 2017), symmetric normalisation with self
  loops, ignores bond features; the weakest baseline.

All take ``forward(x, edge_index, edge_attr, batch, num_graphs=None) -> [num_graphs, out]`` with
the conventions of :mod:`scidl.geometric` (``edge_index[0]`` source, ``edge_index[1]`` target,
both directions of every bond present), or one batch object, ``model(batch)``: scidl's
:func:`~scidl.geometric.collate` or torch_geometric's ``Batch`` (e.g. from its ``DataLoader``
over :func:`~scidl.geometric.molecule_dataset`). They are invariant to relabelling the atoms.
The D-MPNN is plain torch; GIN and GCN are built from torch_geometric's ``GINEConv`` and
``GCNConv`` and need the ``geometric`` extra.
"""

from __future__ import annotations

import torch
from torch import nn

from scidl._optional import require
from scidl.errors import ShapeError
from scidl.geometric.graphs import scatter_sum

READOUTS = ("mean", "sum")


def reverse_edges(edge_index: torch.Tensor, num_nodes: int) -> torch.Tensor:
    """Index ``rev[e]`` of the edge ``j -> i`` for each edge ``e = i -> j``.

    Raises :class:`ShapeError` if some edge has no reverse (the graph must be symmetric).
    """
    src, dst = edge_index
    key = src * num_nodes + dst
    order = torch.argsort(key)
    sorted_key = key[order]
    rev_key = dst * num_nodes + src
    pos = torch.searchsorted(sorted_key, rev_key).clamp(max=max(len(key) - 1, 0))
    if len(key) and not torch.equal(sorted_key[pos], rev_key):
        raise ShapeError("edge_index must contain both directions of every edge")
    return order[pos]


def _readout(h: torch.Tensor, batch: torch.Tensor, num_graphs: int, how: str) -> torch.Tensor:
    out = scatter_sum(h, batch, num_graphs)
    if how == "mean":
        counts = torch.bincount(batch, minlength=num_graphs).clamp(min=1).to(h.dtype)
        out = out / counts[:, None]
    return out


def _check(x, edge_index, edge_attr, batch, num_graphs):
    if x.ndim != 2:
        raise ShapeError(f"x must have shape [N, F], got {tuple(x.shape)}")
    if edge_index.ndim != 2 or edge_index.shape[0] != 2:
        raise ShapeError(f"edge_index must have shape [2, E], got {tuple(edge_index.shape)}")
    if edge_attr is not None and edge_attr.shape[0] != edge_index.shape[1]:
        raise ShapeError(f"edge_attr must have {edge_index.shape[1]} rows, got "
                         f"{tuple(edge_attr.shape)}")
    if batch is None:
        batch = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
    if num_graphs is None:
        num_graphs = int(batch.max()) + 1 if batch.numel() else 0
    return batch, num_graphs


def _unpack(x, edge_index, edge_attr, batch, num_graphs):
    """Accept ``model(batch)`` for a graph batch object (scidl's :class:`~scidl.geometric.Batch`
    or a torch_geometric ``Batch``/``Data``) as well as the tensors one by one."""
    if isinstance(x, torch.Tensor):
        if edge_index is None:
            raise ShapeError("pass edge_index with x, or one graph batch object")
        return x, edge_index, edge_attr, batch, num_graphs
    graph = x
    if not hasattr(graph, "edge_index"):
        raise ShapeError(f"expected a tensor x or a graph batch with x, edge_index, edge_attr, "
                         f"batch; got {type(graph).__name__}")
    batch = getattr(graph, "batch", None)
    return (graph.x, graph.edge_index, getattr(graph, "edge_attr", None), batch,
            getattr(graph, "num_graphs", None) if batch is not None else 1)


def _ffn(hidden: int, ffn_hidden: int, out: int, layers: int, dropout: float) -> nn.Sequential:
    mods: list[nn.Module] = [nn.Dropout(dropout)]
    width = hidden
    for _ in range(layers - 1):
        mods += [nn.Linear(width, ffn_hidden), nn.ReLU(), nn.Dropout(dropout)]
        width = ffn_hidden
    mods.append(nn.Linear(width, out))
    return nn.Sequential(*mods)


class MPNN(nn.Module):
    """Directed message passing network (chemprop D-MPNN).

    With ``e = v -> w`` and ``f`` the input features::

        h0_e = ReLU(W_i [x_v, b_e])
        h_e <- ReLU(h0_e + W_h (sum_{k -> v} h_{k->v} - h_{w->v}))     (depth - 1 times)
        a_v = ReLU(W_o [x_v, sum_{k -> v} h_{k->v}])
        y = FFN(readout_v a_v)

    Args:
        atom_features, bond_features: input widths (``ATOM_DIM``, ``BOND_DIM``).
        hidden: bond/atom hidden width (chemprop: 300).
        depth: message passing depth as chemprop counts it (3 = two updates after ``h0``).
        out_features: targets per graph.
        ffn_hidden, ffn_layers: head (``ffn_layers`` linear layers).
        dropout: dropout after each message update, in the atom output and in the head.
        readout: "mean" (chemprop default) or "sum".
        extra_features: width of per-graph features (``extra`` in :meth:`forward`, e.g.
            RDKit descriptors) concatenated to the readout before the FFN head.
    """

    def __init__(self, atom_features: int, bond_features: int, hidden: int = 300, depth: int = 3,
                 out_features: int = 1, ffn_hidden: int = 300, ffn_layers: int = 2,
                 dropout: float = 0.0, readout: str = "mean", extra_features: int = 0):
        super().__init__()
        if readout not in READOUTS:
            raise ValueError(f"readout must be one of {READOUTS}, got {readout!r}")
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self.depth, self.readout, self.extra_features = depth, readout, extra_features
        self.W_i = nn.Linear(atom_features + bond_features, hidden, bias=False)
        self.W_h = nn.Linear(hidden, hidden, bias=False)
        self.W_o = nn.Linear(atom_features + hidden, hidden)
        self.dropout = nn.Dropout(dropout)
        self.head = _ffn(hidden + extra_features, ffn_hidden, out_features, ffn_layers, dropout)

    def embed(self, x, edge_index=None, edge_attr=None, batch=None,
              num_graphs=None) -> torch.Tensor:
        """The per-graph representation ``[num_graphs, hidden]`` before the head."""
        x, edge_index, edge_attr, batch, num_graphs = _unpack(x, edge_index, edge_attr, batch,
                                                              num_graphs)
        batch, num_graphs = _check(x, edge_index, edge_attr, batch, num_graphs)
        n = x.shape[0]
        src, dst = edge_index
        rev = reverse_edges(edge_index, n)
        h0 = torch.relu(self.W_i(torch.cat([x[src], edge_attr], 1)))
        h = h0
        for _ in range(self.depth - 1):
            incoming = scatter_sum(h, dst, n)
            h = self.dropout(torch.relu(h0 + self.W_h(incoming[src] - h[rev])))
        atoms = torch.relu(self.W_o(torch.cat([x, scatter_sum(h, dst, n)], 1)))
        return _readout(self.dropout(atoms), batch, num_graphs, self.readout)

    def forward(self, x, edge_index=None, edge_attr=None, batch=None, num_graphs=None,
                extra: torch.Tensor | None = None) -> torch.Tensor:
        """Predictions ``[num_graphs, out_features]``; ``extra`` ``[num_graphs, extra_features]``
        holds the per-molecule features (e.g. normalised RDKit descriptors, see
        :mod:`scidl.geometric.descriptors`) appended to the readout before the head; required
        exactly when the model was built with ``extra_features > 0``."""
        z = self.embed(x, edge_index, edge_attr, batch, num_graphs)
        if self.extra_features:
            if extra is None or extra.shape != (z.shape[0], self.extra_features):
                got = None if extra is None else tuple(extra.shape)
                raise ShapeError(f"extra must have shape [{z.shape[0]}, {self.extra_features}] "
                                 f"(num_graphs, extra_features), got {got}")
            z = torch.cat([z, extra.to(z.dtype)], 1)
        elif extra is not None:
            raise ShapeError("extra given but the model was built with extra_features=0")
        return self.head(z)


class GIN(nn.Module):
    """GIN with bond features (GINE; Xu et al. 2019, Hu et al. 2020), torch_geometric's
    ``GINEConv`` layers: ``h_i <- MLP((1 + eps) h_i + sum_j ReLU(h_j + W b_ji))``, ``eps``
    learned.

    Batch norm inside each MLP, ``layers`` layers, sum (default) or mean readout of the last
    layer, then an FFN head. Needs the ``geometric`` extra (torch_geometric).
    """

    def __init__(self, atom_features: int, bond_features: int, hidden: int = 300,
                 layers: int = 4, out_features: int = 1, ffn_hidden: int = 300,
                 dropout: float = 0.0, readout: str = "sum"):
        super().__init__()
        if readout not in READOUTS:
            raise ValueError(f"readout must be one of {READOUTS}, got {readout!r}")
        pyg_nn = require("torch_geometric.nn", "geometric", "GIN")
        self.readout = readout
        self.embed_atoms = nn.Linear(atom_features, hidden)
        self.convs = nn.ModuleList(
            pyg_nn.GINEConv(
                nn.Sequential(nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
                              nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.ReLU()),
                train_eps=True, edge_dim=bond_features)
            for _ in range(layers)
        )
        self.dropout = nn.Dropout(dropout)
        self.head = _ffn(hidden, ffn_hidden, out_features, 2, dropout)

    def forward(self, x, edge_index=None, edge_attr=None, batch=None,
                num_graphs=None) -> torch.Tensor:
        x, edge_index, edge_attr, batch, num_graphs = _unpack(x, edge_index, edge_attr, batch,
                                                              num_graphs)
        batch, num_graphs = _check(x, edge_index, edge_attr, batch, num_graphs)
        h = self.embed_atoms(x)
        for conv in self.convs:
            h = self.dropout(conv(h, edge_index, edge_attr))
        return self.head(_readout(h, batch, num_graphs, self.readout))


class GCN(nn.Module):
    """GCN (Kipf & Welling 2017), torch_geometric's ``GCNConv`` layers:
    ``H <- ReLU(D^-1/2 (A + I) D^-1/2 H W + b)``; bond features are ignored.

    Needs the ``geometric`` extra (torch_geometric).
    """

    def __init__(self, atom_features: int, bond_features: int = 0, hidden: int = 300,
                 layers: int = 3, out_features: int = 1, ffn_hidden: int = 300,
                 dropout: float = 0.0, readout: str = "mean"):
        super().__init__()
        if readout not in READOUTS:
            raise ValueError(f"readout must be one of {READOUTS}, got {readout!r}")
        pyg_nn = require("torch_geometric.nn", "geometric", "GCN")
        self.readout = readout
        widths = [atom_features] + [hidden] * layers
        self.convs = nn.ModuleList(pyg_nn.GCNConv(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.dropout = nn.Dropout(dropout)
        self.head = _ffn(hidden, ffn_hidden, out_features, 2, dropout)

    def forward(self, x, edge_index=None, edge_attr=None, batch=None, num_graphs=None):
        x, edge_index, edge_attr, batch, num_graphs = _unpack(x, edge_index, edge_attr, batch,
                                                              num_graphs)
        batch, num_graphs = _check(x, edge_index, edge_attr, batch, num_graphs)
        h = x
        for conv in self.convs:
            h = self.dropout(torch.relu(conv(h, edge_index)))
        return self.head(_readout(h, batch, num_graphs, self.readout))
