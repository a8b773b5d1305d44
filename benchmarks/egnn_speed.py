"""EGNN forward + backward on a 1,000-particle radius graph: scidl's sparse EGNN against the
"obvious" dense plain-torch implementation.

Setup: ``--n`` particles (default 1,000) uniform in a periodic cube of side 10 (density 1), cutoff
``r = (3 k / (4 pi))^(1/3)`` for ``k = 25`` expected neighbours (minimum-image distances in
both implementations). Both models: embedding, 4 EGCL layers of width 64 (SiLU; eqs. 3-6 of
Satorras et al. 2021, mean coordinate aggregation), linear readout; same weights (the dense
model copies scidl's parameters, and the outputs are checked to agree). Loss: sum of the output
features plus the squared positions; timed: forward + backward, median of ``--repeats``.

* scidl: :func:`scidl.geometric.radius_graph` edge list (built once, timed separately),
  :class:`scidl.geometric.EGNN` gathers/scatters over the ``E`` edges.
* dense: every layer runs the edge MLP on all ``N x N`` pairs ``[N, N, 2H + 1]`` and multiplies
  the messages by the 0/1 adjacency mask, as a direct transcription of the equations would.

Usage: python benchmarks/egnn_speed.py [--n N] [--hidden H] [--layers L] [--repeats R]
       [--threads T] [--out FILE]
Writes benchmarks/results/egnn_speed.json.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import torch
from _results import machine_info, utc_now, write_result
from torch import nn

from scidl.geometric import EGNN, radius_graph

ROOT = Path(__file__).resolve().parent


class DenseEGCL(nn.Module):
    """EGCL on dense ``[N, N, .]`` pair tensors with an adjacency mask."""

    def __init__(self, hidden: int):
        super().__init__()
        self.edge_mlp = nn.Sequential(nn.Linear(2 * hidden + 1, hidden), nn.SiLU(),
                                      nn.Linear(hidden, hidden), nn.SiLU())
        self.coord_mlp = nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(),
                                       nn.Linear(hidden, 1, bias=False))
        self.node_mlp = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.SiLU(),
                                      nn.Linear(hidden, hidden))

    def forward(self, h, pos, adj, box):
        n = h.shape[0]
        rel = pos[:, None, :] - pos[None, :, :]  # x_i - x_j, [N, N, 3]
        rel = rel - box * torch.round(rel / box)
        dist2 = rel.square().sum(-1, keepdim=True)
        pair = torch.cat([h[:, None, :].expand(n, n, -1), h[None, :, :].expand(n, n, -1),
                          dist2], dim=-1)
        mask = adj[..., None]
        messages = self.edge_mlp(pair) * mask
        degree = adj.sum(1, keepdim=True).clamp(min=1)
        pos = pos + (rel * self.coord_mlp(messages) * mask).sum(1) / degree
        h = h + self.node_mlp(torch.cat([h, messages.sum(1)], dim=-1))
        return h, pos


class DenseEGNN(nn.Module):
    def __init__(self, in_features: int, hidden: int, out_features: int, layers: int):
        super().__init__()
        self.embed = nn.Linear(in_features, hidden)
        self.layers = nn.ModuleList(DenseEGCL(hidden) for _ in range(layers))
        self.readout = nn.Linear(hidden, out_features)

    def forward(self, h, pos, adj, box):
        h = self.embed(h)
        for layer in self.layers:
            h, pos = layer(h, pos, adj, box)
        return self.readout(h), pos


def time_it(fn, repeats: int, warmup: int = 1) -> list[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--neighbours", type=float, default=25.0)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--features", type=int, default=16)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--dense-repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(ROOT / "results" / "egnn_speed.json"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    side = (args.n / 1.0) ** (1 / 3)  # density 1
    box = torch.full((3,), side)
    r = (3 * args.neighbours / (4 * math.pi)) ** (1 / 3)
    pos = torch.rand(args.n, 3) * side
    h = torch.randn(args.n, args.features)

    t = time.perf_counter()
    edge_index = radius_graph(pos, r, box=box)
    graph_s = time.perf_counter() - t
    degree = edge_index.shape[1] / args.n
    diff = pos[:, None] - pos[None]
    diff = diff - box * torch.round(diff / box)
    adj = (diff.square().sum(-1) <= r * r).float()
    adj.fill_diagonal_(0)
    assert int(adj.sum()) == edge_index.shape[1]

    sparse = EGNN(args.features, args.hidden, args.features, args.layers)
    dense = DenseEGNN(args.features, args.hidden, args.features, args.layers)
    dense.load_state_dict(sparse.state_dict())

    def run_sparse():
        p_ = pos.clone().requires_grad_(True)
        out, new_pos = sparse(h, p_, edge_index, box=box)
        (out.sum() + new_pos.square().sum()).backward()
        return out, new_pos, p_.grad

    def run_dense():
        p_ = pos.clone().requires_grad_(True)
        out, new_pos = dense(h, p_, adj, box)
        (out.sum() + new_pos.square().sum()).backward()
        return out, new_pos, p_.grad

    a, b = run_sparse(), run_dense()
    agree = max(float((x - y).detach().abs().max()) for x, y in zip(a, b))
    print(f"N={args.n}, r={r:.3f}, mean degree {degree:.1f}, radius_graph {graph_s * 1e3:.1f} ms; "
          f"max |scidl - dense| over outputs and grads {agree:.2e}", flush=True)
    sparse_t = time_it(run_sparse, args.repeats)
    print(f"scidl EGNN (sparse): median {statistics.median(sparse_t) * 1e3:.1f} ms", flush=True)
    dense_t = time_it(run_dense, args.dense_repeats)
    print(f"dense plain torch:   median {statistics.median(dense_t) * 1e3:.1f} ms", flush=True)
    ratio = statistics.median(dense_t) / statistics.median(sparse_t)
    print(f"speed-up of scidl over dense: {ratio:.1f}x "
          f"({statistics.median(dense_t) / (statistics.median(sparse_t) + graph_s):.1f}x "
          f"counting one radius_graph call)")
    result = {
        "benchmark": "egnn_speed",
        "date": utc_now(),
        "machine": machine_info(),
        "args": vars(args),
        "box_side": side, "cutoff": r, "mean_degree": degree, "edges": edge_index.shape[1],
        "radius_graph_seconds": graph_s,
        "max_abs_difference": agree,
        "scidl_seconds": sparse_t, "dense_seconds": dense_t,
        "scidl_median_s": statistics.median(sparse_t),
        "dense_median_s": statistics.median(dense_t),
        "speedup_dense_over_scidl": ratio,
        "timed": "forward + backward (float32, CPU), graph construction excluded",
    }
    write_result(args.out, result)
    return result


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
