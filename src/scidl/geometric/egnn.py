"""E(n)-equivariant graph neural network (EGNN) of Satorras, Hoogeboom & Welling, ICML 2021.

Equation numbers refer to that paper. Messages depend on positions only through squared
distances, and positions move along relative vectors, so node features are E(3)-invariant and
positions E(3)-equivariant (rotations, reflections, translations) and permutation-equivariant.
"""

from __future__ import annotations

import torch
from torch import nn

from scidl._shapes import check_ndim, check_size
from scidl.errors import ShapeError
from scidl.geometric.graphs import edge_vectors, scatter_sum
from scidl.models.mlp import ACTIVATIONS

COORD_AGGREGATIONS = ("mean", "sum")


def _two_layer(n_in: int, hidden: int, n_out: int, activation: str, *,
               final_activation: bool = False, bias: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Linear(n_in, hidden), ACTIVATIONS[activation](),
                               nn.Linear(hidden, n_out, bias=bias)]
    if final_activation:
        layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


class EGCL(nn.Module):
    """One equivariant graph convolutional layer (eqs. 3-6; eq. 7 with ``velocity=True``).

    ``m_ij = phi_e(h_i, h_j, |x_i - x_j|^2, a_ij)``;
    ``x_i <- x_i + C sum_j (x_i - x_j) phi_x(m_ij)``;
    ``h_i <- h_i + phi_h(h_i, sum_j m_ij)`` (residual form of the reference code).
    ``C`` is ``1 / deg(i)`` for ``coord_aggregation="mean"`` (``1/(N-1)`` on a complete graph)
    or 1 for ``"sum"``. With ``velocity=True`` (N-body experiment, eq. 7)
    ``v_i <- phi_v(h_i) v_i^init + C sum_j (x_i - x_j) phi_x(m_ij)`` and ``x_i <- x_i + v_i``.

    Args:
        hidden: node feature size (input and output).
        edge_features: size of the edge attributes ``a_ij`` (0 for none).
        velocity: use the velocity update of eq. 7.
        coord_aggregation: ``"mean"`` or ``"sum"``.
        activation: one of ``scidl.models.mlp.ACTIVATIONS``.

    Shapes:
        h ``[N, hidden]``, pos ``[N, 3]``, edge_index ``[2, E]``, edge_attr ``[E, edge_features]``,
        vel ``[N, 3]``, box ``[3]`` -> ``(h [N, hidden], pos [N, 3], vel [N, 3] or None)``.
    """

    def __init__(self, hidden: int, edge_features: int = 0, velocity: bool = False,
                 coord_aggregation: str = "mean", activation: str = "silu"):
        super().__init__()
        if coord_aggregation not in COORD_AGGREGATIONS:
            raise ValueError(f"coord_aggregation must be one of {COORD_AGGREGATIONS}, "
                             f"got {coord_aggregation!r}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        self.edge_mlp = _two_layer(2 * hidden + 1 + edge_features, hidden, hidden, activation,
                                   final_activation=True)
        self.coord_mlp = _two_layer(hidden, hidden, 1, activation, bias=False)
        # Small initial coordinate steps (as in the reference code) keep deep stacks stable.
        nn.init.xavier_uniform_(self.coord_mlp[-1].weight, gain=1e-3)
        self.node_mlp = _two_layer(2 * hidden, hidden, hidden, activation)
        self.vel_mlp = _two_layer(hidden, hidden, 1, activation) if velocity else None
        self.coord_aggregation = coord_aggregation
        self.edge_features = edge_features

    def forward(self, h: torch.Tensor, pos: torch.Tensor, edge_index: torch.Tensor,
                edge_attr: torch.Tensor | None = None, vel: torch.Tensor | None = None,
                box: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        num_nodes = h.shape[0]
        source, target = edge_index
        rel = edge_vectors(pos, edge_index, box)  # x_i - x_j, [E, 3]
        dist2 = (rel**2).sum(-1, keepdim=True)
        inputs = [h[target], h[source], dist2]
        if self.edge_features:
            inputs.append(edge_attr)
        messages = self.edge_mlp(torch.cat(inputs, dim=-1))  # eq. 3, [E, hidden]

        shift = scatter_sum(rel * self.coord_mlp(messages), target, num_nodes)  # eq. 4
        if self.coord_aggregation == "mean":
            degree = scatter_sum(torch.ones_like(dist2), target, num_nodes)
            shift = shift / degree.clamp(min=1)
        if self.vel_mlp is not None:
            vel = self.vel_mlp(h) * vel + shift  # eq. 7
            pos = pos + vel
        else:
            pos = pos + shift

        aggregated = scatter_sum(messages, target, num_nodes)  # eq. 5
        h = h + self.node_mlp(torch.cat([h, aggregated], dim=-1))  # eq. 6
        return h, pos, vel


class EGNN(nn.Module):
    """Stack of :class:`EGCL` layers between a linear embedding and a linear readout of ``h``.

    Args:
        in_features, out_features: node feature sizes of input and output.
        hidden: node feature size inside the stack.
        layers: number of EGCL layers.
        edge_features: size of edge attributes (0 for none).
        velocity: velocity form (eq. 7); ``forward`` then needs ``vel`` and returns it updated.
            Every layer scales the *initial* velocity, as in eq. 7.
        coord_aggregation, activation: passed to every :class:`EGCL`.

    Shapes:
        h ``[N, in_features]``, pos ``[N, 3]``, edge_index ``[2, E]`` (int64; source, target),
        edge_attr ``[E, edge_features]``, vel ``[N, 3]``, box ``[3]`` (minimum-image edge vectors)
        -> ``(h [N, out_features], pos [N, 3])``, plus ``vel [N, 3]`` when ``velocity=True``.
    """

    def __init__(self, in_features: int, hidden: int, out_features: int, layers: int = 4,
                 edge_features: int = 0, velocity: bool = False,
                 coord_aggregation: str = "mean", activation: str = "silu"):
        super().__init__()
        self.embed = nn.Linear(in_features, hidden)
        self.layers = nn.ModuleList(
            EGCL(hidden, edge_features, velocity, coord_aggregation, activation)
            for _ in range(layers)
        )
        self.readout = nn.Linear(hidden, out_features)
        self.in_features = in_features
        self.edge_features = edge_features
        self.velocity = velocity

    def _check(self, h, pos, edge_index, edge_attr, vel) -> None:
        check_ndim(h, (2,), "EGNN node features h", "[N, in_features]")
        check_size(h, 1, self.in_features, "EGNN node features h", "features")
        if tuple(pos.shape) != (h.shape[0], 3):
            raise ShapeError(f"EGNN pos must have shape [{h.shape[0]}, 3], got {tuple(pos.shape)}")
        check_ndim(edge_index, (2,), "edge_index", "[2, E]")
        check_size(edge_index, 0, 2, "edge_index", "rows (source, target)")
        if self.edge_features:
            if edge_attr is None or tuple(edge_attr.shape) != (edge_index.shape[1],
                                                               self.edge_features):
                got = None if edge_attr is None else tuple(edge_attr.shape)
                raise ShapeError(f"EGNN edge_attr must have shape "
                                 f"[{edge_index.shape[1]}, {self.edge_features}], got {got}")
        if self.velocity and (vel is None or tuple(vel.shape) != tuple(pos.shape)):
            got = None if vel is None else tuple(vel.shape)
            raise ShapeError(f"EGNN(velocity=True) needs vel of shape {tuple(pos.shape)}, "
                             f"got {got}")

    def forward(self, h: torch.Tensor, pos: torch.Tensor, edge_index: torch.Tensor,
                edge_attr: torch.Tensor | None = None, vel: torch.Tensor | None = None,
                box: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        self._check(h, pos, edge_index, edge_attr, vel)
        h = self.embed(h)
        vel_out = vel
        for layer in self.layers:
            h, pos, vel_out = layer(h, pos, edge_index, edge_attr, vel, box)
        h = self.readout(h)
        return (h, pos, vel_out) if self.velocity else (h, pos)


class EGNNEnergy(nn.Module):
    """Scalar energy per graph from an EGNN, ``E_g = sum_{i in g} phi_E(h_i)``, and conservative
    forces ``F = -dE/dpos`` by automatic differentiation.

    The energy depends on positions only through the invariant features, so it is E(3)-invariant
    and the forces are E(3)-equivariant.

    Args:
        in_features, hidden, layers, edge_features, coord_aggregation, activation: as in
            :class:`EGNN`.

    Shapes:
        h ``[N, in_features]``, pos ``[N, 3]``, edge_index ``[2, E]``, batch ``[N]``
        -> energy ``[G]`` (``G = num_graphs`` or ``batch.max() + 1``), forces ``[N, 3]``.
    """

    def __init__(self, in_features: int, hidden: int, layers: int = 4, edge_features: int = 0,
                 coord_aggregation: str = "mean", activation: str = "silu"):
        super().__init__()
        self.egnn = EGNN(in_features, hidden, hidden, layers, edge_features,
                         coord_aggregation=coord_aggregation, activation=activation)
        self.energy_head = _two_layer(hidden, hidden, 1, activation)

    def forward(self, h: torch.Tensor, pos: torch.Tensor, edge_index: torch.Tensor,
                batch: torch.Tensor | None = None, edge_attr: torch.Tensor | None = None,
                num_graphs: int | None = None, box: torch.Tensor | None = None) -> torch.Tensor:
        features, _ = self.egnn(h, pos, edge_index, edge_attr, box=box)
        per_node = self.energy_head(features).squeeze(-1)
        if batch is None:
            return per_node.sum().reshape(1)
        if num_graphs is None:
            num_graphs = int(batch.max()) + 1 if batch.numel() else 0
        return scatter_sum(per_node, batch, num_graphs)

    def energy_and_forces(self, h: torch.Tensor, pos: torch.Tensor, edge_index: torch.Tensor,
                          batch: torch.Tensor | None = None,
                          edge_attr: torch.Tensor | None = None, num_graphs: int | None = None,
                          box: torch.Tensor | None = None, create_graph: bool = False
                          ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(energy [G], forces [N, 3])`` with ``forces = -dE/dpos``.

        Set ``create_graph=True`` to train on forces (the loss then backpropagates through the
        gradient). Works inside ``torch.no_grad()``; if ``pos`` does not require grad a detached
        copy is used.
        """
        with torch.enable_grad():
            if not pos.requires_grad:
                pos = pos.detach().requires_grad_(True)
            energy = self(h, pos, edge_index, batch, edge_attr, num_graphs, box)
            (grad,) = torch.autograd.grad(energy.sum(), pos, create_graph=create_graph)
        return energy, -grad
