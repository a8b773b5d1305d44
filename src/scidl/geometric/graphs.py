"""Neighbour graphs, periodic edge vectors and scatter sums for point clouds (particles, molecules).

Conventions follow PyTorch Geometric: ``edge_index[0]`` is the source ``j`` and ``edge_index[1]``
the target ``i`` of a message ``j -> i``; ``batch[n]`` is the graph that node ``n`` belongs to.

The graph builders are brute force: O(N_b^2) time and memory per batch element ``b``, which is
fine for molecules and small particle systems. A cell list would replace them for large systems,
keeping the same signatures.
"""

from __future__ import annotations

import torch

from scidl._shapes import check_ndim, check_size
from scidl.errors import ShapeError


def scatter_sum(src: torch.Tensor, index: torch.Tensor, dim_size: int) -> torch.Tensor:
    """Sum the rows of ``src`` into ``dim_size`` bins: ``out[index[e]] += src[e]``.

    Shapes:
        src ``[E, *F]``, index ``[E]`` (int64, values in ``[0, dim_size)``) -> ``[dim_size, *F]``.
    """
    if index.ndim != 1 or index.shape[0] != src.shape[0]:
        raise ShapeError(
            f"scatter_sum index must have shape [{src.shape[0]}] to match src of shape "
            f"{tuple(src.shape)}, got {tuple(index.shape)}"
        )
    out = src.new_zeros((dim_size, *src.shape[1:]))
    return out.index_add_(0, index, src)


def _check_pos_batch_box(pos: torch.Tensor, batch: torch.Tensor | None,
                         box: torch.Tensor | None) -> torch.Tensor:
    check_ndim(pos, (2,), "pos", "[N, 3]")
    check_size(pos, 1, 3, "pos", "coordinates")
    if box is not None and tuple(box.shape) != (3,):
        raise ShapeError(f"box must have shape [3] (orthorhombic side lengths), got "
                         f"{tuple(box.shape)}")
    if batch is None:
        return torch.zeros(pos.shape[0], dtype=torch.long, device=pos.device)
    if tuple(batch.shape) != (pos.shape[0],):
        raise ShapeError(f"batch must have shape [{pos.shape[0]}], got {tuple(batch.shape)}")
    return batch.long()


def _minimum_image(diff: torch.Tensor, box: torch.Tensor | None) -> torch.Tensor:
    """Wrap displacements into ``[-L/2, L/2]`` per axis (orthorhombic minimum image)."""
    if box is None:
        return diff
    box = box.to(diff)
    return diff - box * torch.round(diff / box)


def _pairwise(pos: torch.Tensor, batch: torch.Tensor, box: torch.Tensor | None):
    """Yield ``(nodes, squared distances [n, n])`` for each batch element, target along rows."""
    for graph in torch.unique(batch):
        nodes = (batch == graph).nonzero().squeeze(1)
        sub = pos[nodes]
        diff = _minimum_image(sub[:, None, :] - sub[None, :, :], box)
        yield nodes, (diff**2).sum(-1)


def _sorted_edges(source: list[torch.Tensor], target: list[torch.Tensor], num_nodes: int,
                  device: torch.device) -> torch.Tensor:
    if not source:
        return torch.zeros((2, 0), dtype=torch.long, device=device)
    src, dst = torch.cat(source), torch.cat(target)
    order = torch.argsort(dst * num_nodes + src)  # by target, then source: deterministic
    return torch.stack([src[order], dst[order]])


def radius_graph(pos: torch.Tensor, r: float, batch: torch.Tensor | None = None,
                 box: torch.Tensor | None = None, loop: bool = False) -> torch.Tensor:
    """All pairs ``(j, i)`` of the same batch element with ``|x_i - x_j| <= r``.

    Args:
        pos: node positions.
        r: cutoff radius (same units as ``pos``). With a periodic ``box`` it must not exceed half
            the shortest side, so that each pair has a single image within the cutoff.
        batch: graph of each node; ``None`` means one graph.
        box: orthorhombic periodic box side lengths; distances use the minimum image.
        loop: include self-loops ``(i, i)``.

    Shapes:
        pos ``[N, 3]``, batch ``[N]``, box ``[3]`` -> edge_index ``[2, E]`` (source, target),
        sorted by target then source.
    """
    batch = _check_pos_batch_box(pos, batch, box)
    if box is not None and r > 0.5 * float(box.min()):
        raise ValueError(f"radius_graph cutoff r={r} exceeds half the shortest box side "
                         f"{0.5 * float(box.min())}; the minimum image would miss neighbours")
    source, target = [], []
    with torch.no_grad():
        for nodes, dist2 in _pairwise(pos.detach(), batch, box):
            mask = dist2 <= r * r
            if not loop:
                mask.fill_diagonal_(False)
            i, j = mask.nonzero(as_tuple=True)
            source.append(nodes[j])
            target.append(nodes[i])
    return _sorted_edges(source, target, pos.shape[0], pos.device)


def knn_graph(pos: torch.Tensor, k: int, batch: torch.Tensor | None = None,
              box: torch.Tensor | None = None) -> torch.Tensor:
    """Edges ``j -> i`` from the ``k`` nearest neighbours ``j`` of every node ``i`` (no self-loops).

    Nodes whose batch element has ``n <= k`` nodes get all ``n - 1`` others. Ties are broken by
    ``torch.topk``. With ``box``, distances use the minimum image.

    Shapes:
        pos ``[N, 3]``, batch ``[N]``, box ``[3]`` -> edge_index ``[2, E]`` (source, target),
        sorted by target then source.
    """
    if k < 1:
        raise ValueError(f"knn_graph needs k >= 1, got {k}")
    batch = _check_pos_batch_box(pos, batch, box)
    source, target = [], []
    with torch.no_grad():
        for nodes, dist2 in _pairwise(pos.detach(), batch, box):
            n = nodes.shape[0]
            kk = min(k, n - 1)
            if kk == 0:
                continue
            dist2.fill_diagonal_(float("inf"))
            neighbours = torch.topk(dist2, kk, dim=1, largest=False).indices  # [n, kk]
            source.append(nodes[neighbours.reshape(-1)])
            target.append(nodes.repeat_interleave(kk))
    return _sorted_edges(source, target, pos.shape[0], pos.device)


def edge_vectors(pos: torch.Tensor, edge_index: torch.Tensor,
                 box: torch.Tensor | None = None) -> torch.Tensor:
    """Relative positions ``x_i - x_j`` (target minus source) of every edge, minimum image if
    ``box`` is given. Differentiable in ``pos``.

    Shapes:
        pos ``[N, 3]``, edge_index ``[2, E]``, box ``[3]`` -> ``[E, 3]``.
    """
    check_ndim(edge_index, (2,), "edge_index", "[2, E]")
    check_size(edge_index, 0, 2, "edge_index", "rows (source, target)")
    return _minimum_image(pos[edge_index[1]] - pos[edge_index[0]], box)
