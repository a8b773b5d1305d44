"""E(3)-equivariant tensor-product networks on e3nn (NequIP-style; Batzner et al., Nat. Commun.
13, 2453, 2022).

Node features are direct sums of irreducible representations of O(3) (e3nn ``Irreps``, e.g.
``"32x0e + 16x1o + 8x2e"``). Each interaction layer convolves them with the spherical harmonics
``Y(r_ij / |r_ij|)`` of the edge directions through a tensor product whose weights are an MLP of
a Bessel radial basis with a smooth polynomial cutoff, mixes channels, applies a gated
nonlinearity (``e3nn.nn.Gate``) and adds a residual self-interaction. Outputs are either
per-node irreps (:class:`TensorProductNetwork`, e.g. ``"1x1o"`` vectors, ``"1x2e"`` traceless
symmetric tensors) or a per-graph invariant energy with conservative forces ``F = -dE/dpos``
(:class:`TensorProductPotential`).

e3nn is an optional dependency (``pip install 'scidl[geometric]'``): this module imports without
it, and constructing a model then raises ImportError.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from scidl._shapes import check_ndim, check_size
from scidl.errors import ShapeError
from scidl.geometric.graphs import edge_vectors, scatter_sum

try:
    from e3nn import o3 as _o3
    from e3nn.nn import FullyConnectedNet as _FullyConnectedNet
    from e3nn.nn import Gate as _Gate
except ImportError:  # pragma: no cover - exercised by a test that hides e3nn
    _o3 = None


def _require_e3nn() -> None:
    if _o3 is None:
        raise ImportError("scidl's tensor-product networks need e3nn; install it with "
                          "pip install 'scidl[geometric]' (or pip install e3nn)")


def bessel_basis(r: torch.Tensor, cutoff: float, num_basis: int) -> torch.Tensor:
    """Radial Bessel functions ``sqrt(2 / c) sin(n pi r / c) / r``, ``n = 1..num_basis``
    (DimeNet, Gasteiger et al. 2020). ``r`` must be positive.

    Shapes:
        r ``[E]`` -> ``[E, num_basis]``.
    """
    n = torch.arange(1, num_basis + 1, dtype=r.dtype, device=r.device)
    return math.sqrt(2.0 / cutoff) * torch.sin(n * (math.pi / cutoff) * r[:, None]) / r[:, None]


def polynomial_cutoff(r: torch.Tensor, cutoff: float, p: int = 6) -> torch.Tensor:
    """Smooth envelope ``u(r)``: 1 at ``r = 0``, 0 with ``p - 1`` vanishing derivatives at and
    beyond ``r = cutoff`` (DimeNet eq. 8).

    Shapes:
        r ``[E]`` -> ``[E]``.
    """
    d = r / cutoff
    u = (1.0 - (p + 1) * (p + 2) / 2 * d**p + p * (p + 2) * d ** (p + 1)
         - p * (p + 1) / 2 * d ** (p + 2))
    return torch.where(d < 1, u, torch.zeros_like(u))


def _path_exists(irreps_in, irreps_edge, ir_out) -> bool:
    ir_out = _o3.Irrep(ir_out)
    return any(ir_out in ir1 * ir2 for _, ir1 in irreps_in for _, ir2 in irreps_edge)


class _Interaction(nn.Module):
    """Convolution ``sum_j TP(W h_j, Y(r_ij); R(|r_ij|))``, channel mixing, self-interaction,
    gate and (when the irreps agree) a residual connection."""

    def __init__(self, irreps_in, irreps_hidden, irreps_sh, num_basis: int, radial_hidden: int,
                 avg_neighbors: float):
        super().__init__()
        o3 = _o3
        reachable = [(mul, ir) for mul, ir in irreps_hidden
                     if _path_exists(irreps_in, irreps_sh, ir)]
        scalars = o3.Irreps([(mul, ir) for mul, ir in reachable if ir.l == 0])
        gated = o3.Irreps([(mul, ir) for mul, ir in reachable if ir.l > 0])
        gate_ir = "0e" if _path_exists(irreps_in, irreps_sh, "0e") else "0o"
        gates = o3.Irreps([(mul, gate_ir) for mul, _ in gated])
        act = {1: nn.functional.silu, -1: torch.tanh}
        act_gate = {1: torch.sigmoid, -1: torch.abs}
        self.gate = _Gate(scalars, [act[ir.p] for _, ir in scalars],
                          gates, [act_gate[ir.p] for _, ir in gates], gated)

        targets = [ir for _, ir in self.gate.irreps_in]
        irreps_mid, instructions = [], []
        for i, (mul, ir_in) in enumerate(irreps_in):
            for j, (_, ir_edge) in enumerate(irreps_sh):
                for ir_out in ir_in * ir_edge:
                    if ir_out in targets:
                        instructions.append((i, j, len(irreps_mid), "uvu", True))
                        irreps_mid.append((mul, ir_out))
        irreps_mid, perm, _ = o3.Irreps(irreps_mid).sort()
        instructions = [(i, j, perm[k], mode, train) for i, j, k, mode, train in instructions]

        self.linear_in = o3.Linear(irreps_in, irreps_in)
        self.tp = o3.TensorProduct(irreps_in, irreps_sh, irreps_mid, instructions,
                                   shared_weights=False, internal_weights=False)
        self.radial = _FullyConnectedNet([num_basis, radial_hidden, radial_hidden,
                                          self.tp.weight_numel], nn.functional.silu)
        self.linear_out = o3.Linear(irreps_mid.simplify(), self.gate.irreps_in)
        self.self_interaction = o3.Linear(irreps_in, self.gate.irreps_in)
        self.irreps_in = o3.Irreps(irreps_in)
        self.irreps_out = self.gate.irreps_out
        self.residual = self.irreps_in == self.irreps_out
        self.norm = 1.0 / math.sqrt(avg_neighbors)

    def forward(self, h, sh, radial_basis, envelope, source, target):
        weights = self.radial(radial_basis) * envelope[:, None]
        messages = self.tp(self.linear_in(h)[source], sh, weights)
        aggregated = scatter_sum(messages, target, h.shape[0]) * self.norm
        out = self.gate(self.linear_out(aggregated) + self.self_interaction(h))
        return h + out if self.residual else out


class TensorProductNetwork(nn.Module):
    """E(3)-equivariant message-passing network with per-node irreps outputs.

    Node inputs are invariant: float features ``h [N, in_features]`` or integer species
    ``h [N]`` in ``[0, in_features)`` (one-hot encoded). They are embedded as the ``0e`` channels
    of ``hidden_irreps``; ``layers`` interaction layers then build equivariant features from the
    spherical harmonics (up to ``lmax``) of the edge directions, and a linear map gives
    ``out_irreps``. Outputs follow e3nn layouts: ``"1x1o"`` is a vector ``[N, 3]`` in ``x, y, z``
    order (rotates and reflects like positions); ``"1x2e"`` transforms with
    ``o3.Irreps("1x2e").D_from_matrix(Q)`` (e3nn builds D in torch's default dtype: set it to
    float64 for float64-accurate checks). Only edges shorter than ``cutoff`` contribute, and
    smoothly; self-loops and coincident pairs contribute nothing.

    Args:
        in_features: node feature size, or number of species for integer ``h``.
        out_irreps: e3nn irreps of the per-node output; each irrep must occur in the last
            layer's features (normally those of ``hidden_irreps``).
        hidden_irreps: irreps of the hidden node features; must contain ``0e`` channels.
        layers: number of interaction layers.
        lmax: highest degree of the edge spherical harmonics.
        cutoff: radial cutoff, in position units.
        num_basis: number of Bessel radial basis functions.
        radial_hidden: width of the MLP that maps the radial basis to tensor-product weights.
        avg_neighbors: typical number of neighbours; aggregated messages are divided by its
            square root.

    Shapes:
        h ``[N, in_features]`` (float) or ``[N]`` (integer), pos ``[N, 3]``, edge_index
        ``[2, E]`` (int64; source, target), box ``[3]`` (minimum-image edge vectors)
        -> ``[N, out_irreps.dim]``.
    """

    def __init__(self, in_features: int, out_irreps: str = "1x1o",
                 hidden_irreps: str = "32x0e + 16x1o + 8x2e", layers: int = 3, lmax: int = 2,
                 cutoff: float = 5.0, num_basis: int = 8, radial_hidden: int = 64,
                 avg_neighbors: float = 10.0):
        super().__init__()
        _require_e3nn()
        o3 = _o3
        if layers < 1 or lmax < 0 or cutoff <= 0 or num_basis < 1:
            raise ValueError(f"need layers >= 1, lmax >= 0, cutoff > 0 and num_basis >= 1, got "
                             f"layers={layers}, lmax={lmax}, cutoff={cutoff}, "
                             f"num_basis={num_basis}")
        hidden = o3.Irreps(hidden_irreps).simplify()
        scalar_channels = hidden.count("0e")
        if scalar_channels == 0:
            raise ValueError(f"hidden_irreps must contain 0e channels, got {hidden}")
        self.irreps_sh = o3.Irreps.spherical_harmonics(lmax)
        self.embed = nn.Linear(in_features, scalar_channels)
        irreps = o3.Irreps(f"{scalar_channels}x0e")
        self.layers = nn.ModuleList()
        for _ in range(layers):
            self.layers.append(_Interaction(irreps, hidden, self.irreps_sh, num_basis,
                                            radial_hidden, avg_neighbors))
            irreps = self.layers[-1].irreps_out
        self.out_irreps = o3.Irreps(out_irreps)
        missing = [str(ir) for _, ir in self.out_irreps if ir not in irreps]
        if missing:
            raise ValueError(f"out_irreps {self.out_irreps} needs {', '.join(missing)}, which "
                             f"the last layer's features {irreps} lack; add it to hidden_irreps")
        self.readout = o3.Linear(irreps, self.out_irreps)
        self.in_features = in_features
        self.cutoff = float(cutoff)
        self.num_basis = num_basis

    def _apply(self, fn, recurse=True):
        # e3nn stores the Wigner 3j symbols of its tensor products as buffers in the default
        # dtype at construction (float32): after a cast to float64 they would carry float32
        # rounding (equivariance errors ~1e-10 instead of ~1e-15), so recompute them exactly.
        super()._apply(fn, recurse)
        with torch.no_grad():
            for module in self.modules():
                for name, buffer in module.named_buffers(recurse=False):
                    if name.startswith("_w3j_") and buffer.dtype == torch.float64:
                        l1, l2, l3 = (int(part) for part in name[len("_w3j_"):].split("_"))
                        buffer.copy_(_o3.wigner_3j(l1, l2, l3, dtype=torch.float64,
                                                   device=buffer.device))
        return self

    def _check(self, h, pos, edge_index) -> None:
        if h.is_floating_point():
            check_ndim(h, (2,), "TensorProductNetwork node features h", "[N, in_features]")
            check_size(h, 1, self.in_features, "TensorProductNetwork node features h",
                       "features")
        else:
            check_ndim(h, (1,), "TensorProductNetwork integer species h", "[N]")
        if tuple(pos.shape) != (h.shape[0], 3):
            raise ShapeError(f"TensorProductNetwork pos must have shape [{h.shape[0]}, 3], got "
                             f"{tuple(pos.shape)}")
        check_ndim(edge_index, (2,), "edge_index", "[2, E]")
        check_size(edge_index, 0, 2, "edge_index", "rows (source, target)")

    def forward(self, h: torch.Tensor, pos: torch.Tensor, edge_index: torch.Tensor,
                box: torch.Tensor | None = None) -> torch.Tensor:
        self._check(h, pos, edge_index)
        if not h.is_floating_point():
            h = nn.functional.one_hot(h.long(), self.in_features)
        x = self.embed(h.to(pos.dtype))
        source, target = edge_index
        rel = edge_vectors(pos, edge_index, box)  # x_i - x_j, [E, 3]
        r2 = rel.square().sum(-1)
        degenerate = r2 == 0  # self-loops, coincident pairs: no direction, no message
        r = torch.sqrt(torch.where(degenerate, torch.ones_like(r2), r2))
        envelope = polynomial_cutoff(r, self.cutoff) * (~degenerate).to(r.dtype)
        sh = _o3.spherical_harmonics(self.irreps_sh, rel / r[:, None], normalize=False,
                                     normalization="component")
        basis = bessel_basis(r, self.cutoff, self.num_basis)
        for layer in self.layers:
            x = layer(x, sh, basis, envelope, source, target)
        return self.readout(x)


class TensorProductPotential(nn.Module):
    """Invariant energy per graph, ``E_g = sum_{i in g} (s * e_i + mu)``, from the scalar output
    ``e_i`` of a :class:`TensorProductNetwork`, and conservative forces ``F = -dE/dpos`` by
    automatic differentiation.

    The energy is O(3)- and translation-invariant and permutation-invariant; the forces are
    equivariant (they rotate and reflect like vectors). ``s`` (``energy_scale``) and ``mu``
    (``energy_shift``, per node) are fixed buffers for putting energies on a unit scale, e.g.
    the force RMS and the mean energy per node of the training data.

    Args:
        in_features, hidden_irreps, layers, lmax, cutoff, num_basis, radial_hidden,
            avg_neighbors: as in :class:`TensorProductNetwork`.
        readout_hidden: width of the per-node scalar MLP that gives ``e_i``.
        energy_scale, energy_shift: ``s`` and ``mu`` above.

    Shapes:
        h ``[N, in_features]`` or ``[N]`` (species), pos ``[N, 3]``, edge_index ``[2, E]``,
        batch ``[N]``, box ``[3]`` -> energy ``[G]`` (``G = num_graphs`` or ``batch.max() + 1``;
        1 without ``batch``), forces ``[N, 3]``.
    """

    def __init__(self, in_features: int, hidden_irreps: str = "32x0e + 16x1o + 8x2e",
                 layers: int = 3, lmax: int = 2, cutoff: float = 5.0, num_basis: int = 8,
                 radial_hidden: int = 64, avg_neighbors: float = 10.0, readout_hidden: int = 16,
                 energy_scale: float = 1.0, energy_shift: float = 0.0):
        super().__init__()
        self.network = TensorProductNetwork(in_features, f"{readout_hidden}x0e", hidden_irreps,
                                            layers, lmax, cutoff, num_basis, radial_hidden,
                                            avg_neighbors)
        self.head = nn.Sequential(nn.SiLU(), nn.Linear(readout_hidden, 1))
        self.register_buffer("energy_scale", torch.tensor(float(energy_scale)))
        self.register_buffer("energy_shift", torch.tensor(float(energy_shift)))

    def node_energies(self, h: torch.Tensor, pos: torch.Tensor, edge_index: torch.Tensor,
                      box: torch.Tensor | None = None) -> torch.Tensor:
        """Per-node energies ``s * e_i + mu`` ``[N]``."""
        e = self.head(self.network(h, pos, edge_index, box)).squeeze(-1)
        return self.energy_scale * e + self.energy_shift

    def forward(self, h: torch.Tensor, pos: torch.Tensor, edge_index: torch.Tensor,
                batch: torch.Tensor | None = None, num_graphs: int | None = None,
                box: torch.Tensor | None = None) -> torch.Tensor:
        per_node = self.node_energies(h, pos, edge_index, box)
        if batch is None:
            return per_node.sum().reshape(1)
        if tuple(batch.shape) != (pos.shape[0],):
            raise ShapeError(f"TensorProductPotential batch must have shape [{pos.shape[0]}], "
                             f"got {tuple(batch.shape)}")
        if num_graphs is None:
            num_graphs = int(batch.max()) + 1 if batch.numel() else 0
        return scatter_sum(per_node, batch.long(), num_graphs)

    def energy_and_forces(self, h: torch.Tensor, pos: torch.Tensor, edge_index: torch.Tensor,
                          batch: torch.Tensor | None = None, num_graphs: int | None = None,
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
            energy = self(h, pos, edge_index, batch, num_graphs, box)
            (grad,) = torch.autograd.grad(energy.sum(), pos, create_graph=create_graph,
                                          allow_unused=True)
        if grad is None:  # no edge within the cutoff: the energy does not depend on pos
            grad = torch.zeros_like(pos)
        return energy, -grad
