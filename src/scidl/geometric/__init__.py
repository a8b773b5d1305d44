"""Graph and E(3)-equivariant networks for particles and molecules.

Graph tensors follow PyTorch Geometric: node features ``x [N, F]``, positions ``pos [N, 3]``,
``edge_index [2, E]`` (source row 0, target row 1) and a batch vector ``[N]``.
"""

from scidl.geometric.descriptors import (
    DescriptorNormaliser,
    descriptor_names,
    molecule_descriptors,
)
from scidl.geometric.egnn import EGCL, EGNN, EGNNEnergy
from scidl.geometric.equivariance import (
    EquivarianceReport,
    check_equivariance,
    random_reflection,
    random_rotation,
)
from scidl.geometric.gns import GNS, GNSObjective, gns_statistics, random_walk_noise, rollout
from scidl.geometric.graphs import edge_vectors, knn_graph, radius_graph, scatter_sum
from scidl.geometric.molecules import (
    ATOM_DIM,
    BOND_DIM,
    Batch,
    MolGraph,
    collate,
    load_esol,
    mol_graph,
    molecule_dataset,
    murcko_scaffold,
    random_split,
    scaffold_split,
)
from scidl.geometric.mpnn import GCN, GIN, MPNN
from scidl.geometric.nbody_data import (
    PAPER_TEST_MSE,
    NBodyDataset,
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
from scidl.geometric.tensor_product import (
    TensorProductNetwork,
    TensorProductPotential,
    bessel_basis,
    polynomial_cutoff,
)

__all__ = [
    "DescriptorNormaliser",
    "descriptor_names",
    "molecule_descriptors",
    "GNS",
    "GNSObjective",
    "gns_statistics",
    "random_walk_noise",
    "rollout",
    "ATOM_DIM",
    "BOND_DIM",
    "GCN",
    "GIN",
    "MPNN",
    "Batch",
    "MolGraph",
    "collate",
    "load_esol",
    "mol_graph",
    "molecule_dataset",
    "murcko_scaffold",
    "random_split",
    "scaffold_split",
    "PAPER_TEST_MSE",
    "NBodyDataset",
    "NBodySplit",
    "complete_graph_edges",
    "constant_velocity_mse",
    "fit_constant_velocity",
    "generate_nbody_dataset",
    "load_nbody_dataset",
    "nbody_dataset",
    "nbody_graph",
    "save_nbody_dataset",
    "TensorProductNetwork",
    "TensorProductPotential",
    "bessel_basis",
    "polynomial_cutoff",
    "EGCL",
    "EGNN",
    "EGNNEnergy",
    "EquivarianceReport",
    "check_equivariance",
    "edge_vectors",
    "knn_graph",
    "radius_graph",
    "random_reflection",
    "random_rotation",
    "scatter_sum",
]
