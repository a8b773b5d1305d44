"""A learned particle simulator: the Graph Network-based Simulator (GNS) of Sanchez-Gonzalez,
Godwin, Pfaff, Ying, Leskovec & Battaglia, "Learning to Simulate Complex Physics with Graph
Networks", ICML 2020 (github.com/deepmind/deepmind-research, learning_to_simulate/).

Time is counted in frames, the paper's ``dt = 1`` convention: a velocity is the displacement
over one frame, ``v_t = x_t - x_{t-1}``, an acceleration the second difference
``a_t = x_{t+1} - 2 x_t + x_{t-1}`` (physical units: divide by the frame interval, squared).
The model maps the last ``C + 1`` positions of every particle to its (normalised) acceleration;
the rollout advances with the semi-implicit Euler update ``v_{t+1} = v_t + a_t``,
``x_{t+1} = x_t + v_{t+1}``.

* Encoder: node features are the last ``C`` velocities, normalised with dataset statistics,
  optionally the distances to the walls of a bounded domain (divided by the connectivity
  radius ``R``, clipped to ``[-1, 1]``) and a learned node-type embedding; edges are the pairs
  within ``R`` (:func:`~scidl.geometric.graphs.radius_graph`) with features
  ``(x_i - x_j) / R`` and its norm. Both go through MLPs with LayerNorm.
* Processor: ``M`` message-passing steps with separate weights and residual connections,
  ``e_ij += phi_e(e_ij, h_i, h_j)``, ``h_i += phi_h(h_i, sum_j e_ij)``.
* Decoder: an MLP from ``h_i`` to the normalised acceleration.

Training (:class:`GNSObjective`): one-step targets with random-walk noise on the input
positions; the target is corrected as in the reference code so that the model learns to undo
the velocity noise (the next velocity is exact; the position offset of the last input frame
cannot be seen by a translation-invariant model and is carried along).
"""

from __future__ import annotations

import torch
from torch import nn

from scidl._shapes import check_ndim, check_size
from scidl.errors import ShapeError
from scidl.geometric.graphs import radius_graph, scatter_sum
from scidl.models.mlp import ACTIVATIONS


def _mlp(n_in: int, hidden: int, n_out: int, layers: int, activation: str,
         layer_norm: bool) -> nn.Sequential:
    """``layers`` hidden layers of ``hidden`` units, then an optional LayerNorm."""
    sizes = [n_in] + [hidden] * layers
    modules: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        modules += [nn.Linear(a, b), ACTIVATIONS[activation]()]
    modules.append(nn.Linear(sizes[-1], n_out))
    if layer_norm:
        modules.append(nn.LayerNorm(n_out))
    return nn.Sequential(*modules)


def finite_difference_acceleration(positions: torch.Tensor) -> torch.Tensor:
    """Second differences ``x_{t+1} - 2 x_t + x_{t-1}`` along the time dim (``-3``).

    Shapes:
        positions ``[..., T, N, dim]`` (``T >= 3``) -> ``[..., T - 2, N, dim]`` (the
        acceleration at frames ``1 .. T - 2``, in frame units).
    """
    if positions.ndim < 3 or positions.shape[-3] < 3:
        raise ShapeError(f"positions must have shape [..., T >= 3, N, dim], got "
                         f"{tuple(positions.shape)}")
    return positions[..., 2:, :, :] - 2 * positions[..., 1:-1, :, :] + positions[..., :-2, :, :]


def random_walk_noise(shape: torch.Size | tuple[int, ...], std: float,
                      generator: torch.Generator | None = None,
                      dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Noise for a position history: a random walk of the velocities whose last step has
    standard deviation ``std`` (each of the ``C`` velocity increments has ``std / sqrt(C)``),
    integrated to positions; the first (oldest) position is not perturbed.

    Shapes:
        shape ``(N, C + 1, dim)`` -> noise ``[N, C + 1, dim]``.
    """
    n, frames, dim = shape
    velocity = torch.randn((n, frames - 1, dim), generator=generator, dtype=dtype)
    velocity = (std / (frames - 1) ** 0.5) * velocity.cumsum(1)
    return torch.cat([velocity.new_zeros(n, 1, dim), velocity.cumsum(1)], dim=1)


def corrected_target(positions: torch.Tensor, next_position: torch.Tensor,
                     noise: torch.Tensor) -> torch.Tensor:
    """The acceleration target for the noisy history ``positions + noise``: the next position
    is shifted by the noise of the last input frame, so that ``x_t + noise_t`` plus the
    corrected velocity lands on ``x_{t+1} + noise_t``: the next velocity is the true one.

    Shapes:
        positions, noise ``[N, C + 1, dim]``, next_position ``[N, dim]`` -> ``[N, dim]``.
    """
    noisy = positions + noise
    return (next_position + noise[:, -1]) - 2 * noisy[:, -1] + noisy[:, -2]


def euler_update(positions: torch.Tensor, acceleration: torch.Tensor) -> torch.Tensor:
    """Semi-implicit Euler in frame units: ``x_{t+1} = x_t + (x_t - x_{t-1}) + a_t``.

    Shapes:
        positions ``[N, C + 1, dim]``, acceleration ``[N, dim]`` -> ``[N, dim]``.
    """
    last = positions[:, -1]
    return last + (last - positions[:, -2]) + acceleration


def rollout(accelerate, positions: torch.Tensor, steps: int) -> torch.Tensor:
    """Roll ``steps`` frames forward with :func:`euler_update`, shifting the history window.

    Args:
        accelerate: ``window [N, C + 1, dim] -> acceleration [N, dim]`` in frame units (a
            trained :meth:`GNS.acceleration`, or the true one for checks).
        positions: the initial history window.

    Shapes:
        positions ``[N, C + 1, dim]`` -> ``[steps, N, dim]`` (frames ``1 .. steps`` after the
        window's last).
    """
    check_ndim(positions, (3,), "rollout positions", "[N, C + 1, dim]")
    window, frames = positions, []
    for _ in range(steps):
        nxt = euler_update(window, accelerate(window).to(window))
        frames.append(nxt)
        window = torch.cat([window[:, 1:], nxt.unsqueeze(1)], dim=1)
    return torch.stack(frames) if frames else positions.new_zeros((0, *positions.shape[::2]))


class GNS(nn.Module):
    """Encode-process-decode graph network that predicts particle accelerations.

    Args:
        dim: spatial dimension (1 to 3).
        radius: connectivity radius ``R`` (edges join particles closer than ``R``).
        history: ``C``, the number of past velocities in the node features (``C + 1``
            positions in).
        hidden: latent size of nodes and edges (paper: 128).
        message_passing: ``M``, processor steps (paper: 10).
        mlp_layers: hidden layers of every MLP (paper: 2).
        bounds: ``[dim, 2]`` lower and upper walls of a bounded domain (distance features), or
            None (then the model is translation-invariant).
        node_types: number of particle types (0: no type embedding).
        type_embedding: size of the type embedding (paper: 16).
        activation: one of ``scidl.models.mlp.ACTIVATIONS`` (paper: relu).

    Normalisation statistics (buffers ``velocity_mean/std``, ``acceleration_mean/std``, each
    ``[dim]``) start at 0 and 1; set them with :meth:`set_statistics` from the training data.

    Shapes:
        positions ``[N, C + 1, dim]`` (oldest first), batch ``[N]`` (graph of each particle),
        node_type ``[N]`` (int64) -> normalised acceleration ``[N, dim]``.
    """

    def __init__(self, dim: int = 2, radius: float = 1.0, history: int = 5, hidden: int = 128,
                 message_passing: int = 10, mlp_layers: int = 2,
                 bounds: torch.Tensor | None = None, node_types: int = 0,
                 type_embedding: int = 16, activation: str = "relu"):
        super().__init__()
        if not 1 <= dim <= 3:
            raise ValueError(f"GNS dim must be 1, 2 or 3, got {dim}")
        if history < 1 or message_passing < 0 or radius <= 0:
            raise ValueError(f"GNS needs history >= 1, message_passing >= 0 and radius > 0, got "
                             f"{history}, {message_passing}, {radius}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        if bounds is not None:
            bounds = torch.as_tensor(bounds, dtype=torch.float64)
            if tuple(bounds.shape) != (dim, 2):
                raise ShapeError(f"GNS bounds must have shape [{dim}, 2], got "
                                 f"{tuple(bounds.shape)}")
            self.register_buffer("bounds", bounds)
        else:
            self.bounds = None
        self.dim, self.radius, self.history, self.node_types = dim, float(radius), history, \
            node_types
        self.type_embedding = nn.Embedding(node_types, type_embedding) if node_types else None
        node_in = history * dim + (2 * dim if bounds is not None else 0) + \
            (type_embedding if node_types else 0)
        self.node_encoder = _mlp(node_in, hidden, hidden, mlp_layers, activation, True)
        self.edge_encoder = _mlp(dim + 1, hidden, hidden, mlp_layers, activation, True)
        self.edge_processors = nn.ModuleList(
            _mlp(3 * hidden, hidden, hidden, mlp_layers, activation, True)
            for _ in range(message_passing))
        self.node_processors = nn.ModuleList(
            _mlp(2 * hidden, hidden, hidden, mlp_layers, activation, True)
            for _ in range(message_passing))
        self.decoder = _mlp(hidden, hidden, dim, mlp_layers, activation, False)
        for name in ("velocity_mean", "acceleration_mean"):
            self.register_buffer(name, torch.zeros(dim, dtype=torch.float64))
        for name in ("velocity_std", "acceleration_std"):
            self.register_buffer(name, torch.ones(dim, dtype=torch.float64))

    def set_statistics(self, velocity_mean, velocity_std, acceleration_mean,
                       acceleration_std) -> None:
        """Store the normalisation statistics (each a number or ``[dim]``)."""
        for name, value in (("velocity_mean", velocity_mean), ("velocity_std", velocity_std),
                            ("acceleration_mean", acceleration_mean),
                            ("acceleration_std", acceleration_std)):
            getattr(self, name).copy_(torch.as_tensor(value, dtype=torch.float64)
                                      .expand(self.dim))

    def _check(self, positions, batch, node_type) -> None:
        check_ndim(positions, (3,), "GNS positions", "[N, C + 1, dim]")
        check_size(positions, 1, self.history + 1, "GNS positions", "frames (C + 1)")
        check_size(positions, 2, self.dim, "GNS positions", "coordinates")
        n = positions.shape[0]
        if batch is not None and tuple(batch.shape) != (n,):
            raise ShapeError(f"GNS batch must have shape [{n}], got {tuple(batch.shape)}")
        if self.node_types and (node_type is None or tuple(node_type.shape) != (n,)):
            got = None if node_type is None else tuple(node_type.shape)
            raise ShapeError(f"GNS with node_types needs node_type of shape [{n}], got {got}")

    def graph(self, positions: torch.Tensor, batch: torch.Tensor | None = None) -> torch.Tensor:
        """Edges ``[2, E]`` (source, target) between particles of the same graph within
        ``radius`` at the last frame of ``positions [N, C + 1, dim]``."""
        last = positions[:, -1]
        pad = last.new_zeros(last.shape[0], 3 - self.dim)
        return radius_graph(torch.cat([last, pad], dim=1), self.radius, batch)

    def forward(self, positions: torch.Tensor, batch: torch.Tensor | None = None,
                node_type: torch.Tensor | None = None,
                edge_index: torch.Tensor | None = None) -> torch.Tensor:
        self._check(positions, batch, node_type)
        dtype = self.node_encoder[0].weight.dtype
        last = positions[:, -1]
        velocities = positions[:, 1:] - positions[:, :-1]  # [N, C, dim]
        velocities = (velocities - self.velocity_mean.to(positions)) / \
            self.velocity_std.to(positions)
        nodes = [velocities.flatten(1)]
        if self.bounds is not None:
            bounds = self.bounds.to(positions)
            nodes += [((last - bounds[:, 0]) / self.radius).clamp(-1, 1),
                      ((bounds[:, 1] - last) / self.radius).clamp(-1, 1)]
        nodes = [x.to(dtype) for x in nodes]
        if self.type_embedding is not None:
            nodes.append(self.type_embedding(node_type))
        if edge_index is None:
            edge_index = self.graph(positions, batch)
        source, target = edge_index
        rel = ((last[target] - last[source]) / self.radius).to(dtype)  # (x_i - x_j) / R
        edges = torch.cat([rel, torch.linalg.vector_norm(rel, dim=1, keepdim=True)], dim=1)

        h = self.node_encoder(torch.cat(nodes, dim=1))
        e = self.edge_encoder(edges)
        for edge_mlp, node_mlp in zip(self.edge_processors, self.node_processors):
            e = e + edge_mlp(torch.cat([e, h[target], h[source]], dim=1))
            h = h + node_mlp(torch.cat([h, scatter_sum(e, target, h.shape[0])], dim=1))
        return self.decoder(h)

    def normalise(self, acceleration: torch.Tensor) -> torch.Tensor:
        """Frame-unit accelerations ``[N, dim]`` -> the model's normalised output space."""
        return (acceleration - self.acceleration_mean.to(acceleration)) / \
            self.acceleration_std.to(acceleration)

    def acceleration(self, positions: torch.Tensor, batch: torch.Tensor | None = None,
                     node_type: torch.Tensor | None = None) -> torch.Tensor:
        """The predicted acceleration in frame units, in the dtype of ``positions``.

        Shapes:
            positions ``[N, C + 1, dim]``, batch, node_type ``[N]`` -> ``[N, dim]``.
        """
        out = self(positions, batch, node_type).to(positions.dtype)
        return out * self.acceleration_std.to(out) + self.acceleration_mean.to(out)

    @torch.no_grad()
    def rollout(self, positions: torch.Tensor, steps: int, batch: torch.Tensor | None = None,
                node_type: torch.Tensor | None = None) -> torch.Tensor:
        """``steps`` frames predicted one after another from the history ``positions``
        (:func:`rollout` with this model's acceleration; no noise, no gradients).

        Shapes:
            positions ``[N, C + 1, dim]`` -> ``[steps, N, dim]``.
        """
        return rollout(lambda window: self.acceleration(window, batch, node_type), positions,
                       steps)


def gns_statistics(trajectories: torch.Tensor, noise_std: float = 0.0) -> dict[str, torch.Tensor]:
    """Per-axis mean and standard deviation of the frame velocities and accelerations of
    ``trajectories``; ``noise_std^2`` is added to both variances, as in the reference code
    (the inputs the model sees are noisy).

    Shapes:
        trajectories ``[B, T, N, dim]`` -> a dict of ``[dim]`` tensors, keyed as the arguments
        of :meth:`GNS.set_statistics`.
    """
    check_ndim(trajectories, (4,), "trajectories", "[B, T, N, dim]")
    dim = trajectories.shape[-1]
    velocity = (trajectories[:, 1:] - trajectories[:, :-1]).reshape(-1, dim)
    acceleration = finite_difference_acceleration(trajectories).reshape(-1, dim)
    noise = noise_std**2
    return {"velocity_mean": velocity.mean(0),
            "velocity_std": (velocity.var(0) + noise).sqrt(),
            "acceleration_mean": acceleration.mean(0),
            "acceleration_std": (acceleration.var(0) + noise).sqrt()}


class GNSObjective:
    """One-step training of a :class:`GNS` for :func:`scidl.train.loop.train`.

    Every step draws ``batch_size`` windows (a trajectory and a start frame each) and a
    random-walk noise for every window from a generator seeded by ``(seed, step)``, so batches
    are reproducible. The loss is the MSE between the predicted and the corrected target
    acceleration, both normalised. Noise is applied only while the model is in training mode;
    in eval mode the same batch gives the noise-free loss.

    Args:
        trajectories: positions ``[B, T, N, dim]`` (``T >= history + 2``).
        history: ``C``, as the model's.
        noise_std: standard deviation of the noise of the last input velocity.
        batch_size: windows (graphs) per step; each rank takes its share.
        seed: seeds the batches.
    """

    def __init__(self, trajectories: torch.Tensor, history: int, noise_std: float,
                 batch_size: int = 8, seed: int = 0):
        check_ndim(trajectories, (4,), "trajectories", "[B, T, N, dim]")
        if trajectories.shape[1] < history + 2:
            raise ShapeError(f"trajectories need at least history + 2 = {history + 2} frames, "
                             f"got shape {tuple(trajectories.shape)}")
        self.trajectories = trajectories
        self.history, self.noise_std = history, noise_std
        self.batch_size, self.seed = batch_size, seed

    def batch(self, step: int, rank: int = 0, world_size: int = 1) -> dict[str, torch.Tensor]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        b, t, n, dim = self.trajectories.shape
        c = self.history
        which = torch.randint(b, (self.batch_size,), generator=generator)
        start = torch.randint(t - c - 1, (self.batch_size,), generator=generator)
        frames = start[:, None] + torch.arange(c + 2)  # [S, C + 2]
        windows = self.trajectories[which[:, None], frames]  # [S, C + 2, N, dim]
        windows = windows[rank::world_size].transpose(1, 2)  # [s, N, C + 2, dim]
        s = windows.shape[0]
        windows = windows.reshape(s * n, c + 2, dim)
        noise = random_walk_noise((s * n, c + 1, dim), self.noise_std, generator,
                                  windows.dtype)
        return {"positions": windows[:, :-1], "next": windows[:, -1], "noise": noise,
                "batch": torch.arange(s).repeat_interleave(n)}

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor]
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        gns = getattr(model, "module", model)  # DistributedDataParallel wraps the GNS
        noise = batch["noise"] if model.training else torch.zeros_like(batch["noise"])
        target = gns.normalise(corrected_target(batch["positions"], batch["next"], noise))
        predicted = model(batch["positions"] + noise, batch["batch"])
        mse = (predicted - target.to(predicted)).square().mean()
        return mse, {"acceleration_mse": mse.detach()}
