"""Learned dynamics: neural ODEs and Hamiltonian neural networks, and the objectives that fit them.

* :class:`NeuralODE` -- an MLP vector field ``f(t, y)`` (Chen et al., "Neural Ordinary
  Differential Equations", NeurIPS 2018); nothing constrains its flow.
* :class:`HamiltonianNN` -- a scalar network ``H(q, p)`` whose symplectic gradient
  ``(dH/dp, -dH/dq)`` is the vector field (Greydanus, Dzamba & Yosinski, "Hamiltonian Neural
  Networks", NeurIPS 2019, Eq. 2), so the exact flow conserves the learned ``H``.

Both are ``func(t, y)`` for :func:`scidl.numerics.odeint.odeint` and are trained by the one loop,
``scidl.train.train(model, objective, stages)``, with either objective here (they fill in the
loop's ``batch`` / ``loss`` protocol; ``models`` sits above ``train`` in the layers, so the loop
is called by the user, not from this module):

* :class:`DerivativeMatching` -- pairs ``(y, dy/dt)``, as in Greydanus et al. (derivatives from
  the true field, or from trajectories by :func:`finite_difference_pairs`);
* :class:`TrajectoryMatching` -- whole trajectories or windows of them, rolled out with
  :func:`~scidl.numerics.odeint.odeint` and compared frame by frame (backpropagation through the
  solver).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from scidl.errors import ShapeError
from scidl.models.mlp import MLP
from scidl.numerics.odeint import odeint

KINETIC = ("network", "unit_mass")


def _apply(net: MLP, x: torch.Tensor) -> torch.Tensor:
    """``net`` on the last dim of ``x [..., F]`` -> ``[..., out]``."""
    return net(x.reshape(-1, x.shape[-1])).reshape(*x.shape[:-1], -1)


def _gradient(scalar: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """``d scalar(x) / dx`` ``[..., F]`` by autograd; the graph is kept (``create_graph``) when
    gradients are enabled, so a loss on the result trains the network, and dropped otherwise."""
    create_graph = torch.is_grad_enabled()
    with torch.enable_grad():
        leaf = x if x.requires_grad else x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(scalar(leaf).sum(), leaf, create_graph=create_graph)
    return grad


def _check_last(y: torch.Tensor, size: int, name: str) -> None:
    if y.ndim < 1 or y.shape[-1] != size:
        raise ShapeError(f"{name} state must have shape [..., {size}], got {tuple(y.shape)}")


class NeuralODE(nn.Module):
    """``dy/dt = f_theta(t, y)``, an MLP (Chen et al. 2018); the unconstrained baseline.

    Args:
        dim: state size ``D``.
        width, hidden_layers, activation: of the :class:`~scidl.models.mlp.MLP`.
        time_dependent: feed ``t`` as an extra input (else the field is autonomous).

    Shapes:
        t: 0-dim, or ``[...]`` (one time per state); y: ``[..., D]``; returns ``[..., D]``.
    """

    def __init__(self, dim: int, width: int = 200, hidden_layers: int = 2,
                 activation: str = "tanh", *, time_dependent: bool = False):
        super().__init__()
        self.dim, self.time_dependent = dim, time_dependent
        self.net = MLP(dim + int(time_dependent), dim, width, hidden_layers, activation)

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        _check_last(y, self.dim, "NeuralODE")
        if self.time_dependent:
            t = torch.as_tensor(t).to(y)
            t = t.expand(*y.shape[:-1], 1) if t.ndim == 0 else t[..., None]
            y = torch.cat([y, t], dim=-1)
        return _apply(self.net, y)


class HamiltonianNN(nn.Module):
    """A learned Hamiltonian ``H(q, p)`` and its flow ``q' = dH/dp``, ``p' = -dH/dq``.

    Greydanus, Dzamba & Yosinski 2019 (Eq. 2; their code's ``field_type='solenoidal'``). The
    field is the autograd gradient of ``H`` with ``create_graph=True``, so a loss on it trains
    ``H``. Since ``dH/dt = grad H . J grad H = 0``, the exact flow conserves ``H``; a symplectic
    integrator keeps it within a bounded band (Hairer, Lubich & Wanner, "Geometric Numerical
    Integration", 2006, Sec. IX.8).

    With ``separable=True``, ``H = T(p) + V(q)``:

    * ``kinetic="network"``: ``T`` and ``V`` are two MLPs; integrate with :meth:`leapfrog`, the
      Stormer-Verlet scheme for separable ``H`` (HLW Sec. I.1.4), explicit and symplectic.
    * ``kinetic="unit_mass"``: ``T = |p|^2 / 2`` is fixed and only ``V`` is learned; then
      ``v = p`` and :meth:`acceleration` ``= -grad V(q)`` feeds the integrators of
      :mod:`scidl.numerics.symplectic` (or :meth:`leapfrog`, the same scheme).

    Args:
        dof: degrees of freedom ``n``; the state is ``y = (q, p)``, ``2 n`` numbers.
        width, hidden_layers, activation: of each :class:`~scidl.models.mlp.MLP`.
        separable: learn ``T(p) + V(q)`` instead of a general ``H(q, p)``.
        kinetic: ``"network"`` or ``"unit_mass"`` (only with ``separable``).

    Shapes:
        y: ``[..., 2 n]``, positions first; forward returns ``[..., 2 n]``; hamiltonian ``[...]``;
        q, p: ``[..., n]``.
    """

    def __init__(self, dof: int, width: int = 200, hidden_layers: int = 2,
                 activation: str = "tanh", *, separable: bool = False,
                 kinetic: str = "network"):
        super().__init__()
        if kinetic not in KINETIC:
            raise ValueError(f"kinetic must be one of {KINETIC}, got {kinetic!r}")
        if kinetic != "network" and not separable:
            raise ValueError(f"kinetic={kinetic!r} needs separable=True")
        self.dof, self.separable, self.kinetic_kind = dof, separable, kinetic
        if not separable:
            self.h_net = MLP(2 * dof, 1, width, hidden_layers, activation)
            return
        self.v_net = MLP(dof, 1, width, hidden_layers, activation)
        if kinetic == "network":
            self.t_net = MLP(dof, 1, width, hidden_layers, activation)

    def potential(self, q: torch.Tensor) -> torch.Tensor:
        """``V(q)`` ``[...]`` (separable models only)."""
        self._require_separable("potential")
        _check_last(q, self.dof, "HamiltonianNN position")
        return _apply(self.v_net, q).squeeze(-1)

    def kinetic(self, p: torch.Tensor) -> torch.Tensor:
        """``T(p)`` ``[...]`` (separable models only)."""
        self._require_separable("kinetic")
        _check_last(p, self.dof, "HamiltonianNN momentum")
        if self.kinetic_kind == "unit_mass":
            return 0.5 * p.square().sum(-1)
        return _apply(self.t_net, p).squeeze(-1)

    def hamiltonian(self, y: torch.Tensor) -> torch.Tensor:
        """The learned energy ``H(y)`` ``[...]``."""
        _check_last(y, 2 * self.dof, "HamiltonianNN")
        if not self.separable:
            return _apply(self.h_net, y).squeeze(-1)
        q, p = y.chunk(2, dim=-1)
        return self.kinetic(p) + self.potential(q)

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.separable:  # two smaller gradients, and no spurious q-p coupling
            q, p = y.chunk(2, dim=-1)
            return torch.cat([_gradient(self.kinetic, p), -_gradient(self.potential, q)], -1)
        d_q, d_p = _gradient(self.hamiltonian, y).chunk(2, dim=-1)
        return torch.cat([d_p, -d_q], dim=-1)

    def acceleration(self, q: torch.Tensor) -> torch.Tensor:
        """``q'' = -grad V(q)`` for ``kinetic="unit_mass"`` (then ``v = p``)."""
        if self.kinetic_kind != "unit_mass":
            raise ValueError("acceleration(q) exists only for separable=True, "
                             "kinetic='unit_mass'; integrate a learned T(p) with leapfrog()")
        return -_gradient(self.potential, q)

    def leapfrog(self, y0: torch.Tensor, t: torch.Tensor | Sequence[float],
                 step_size: float) -> torch.Tensor:
        """Stormer-Verlet for separable ``H`` (drift-kick-drift; HLW Sec. I.1.4, VI.3):
        ``q+ = q + h/2 T'(p)``, ``p' = p - h V'(q+)``, ``q' = q+ + h/2 T'(p')``. Each output
        interval is split into ``ceil(interval / step_size)`` equal steps. Differentiable.

        Shapes:
            y0: ``[..., 2 n]``; t: ``[T]``; returns ``[T, ..., 2 n]``.
        """
        self._require_separable("leapfrog")
        _check_last(y0, 2 * self.dof, "HamiltonianNN")
        times = torch.as_tensor(t, dtype=torch.float64).flatten().tolist()
        if not times or any(b <= a for a, b in zip(times, times[1:])) or not step_size > 0:
            raise ValueError("leapfrog needs strictly increasing times and a positive step_size")
        q, p = y0.chunk(2, dim=-1)
        states = [y0]
        for start, end in zip(times, times[1:]):
            n = max(1, math.ceil((end - start) / step_size * (1 - 1e-12)))
            h = (end - start) / n
            for _ in range(n):
                q = q + (h / 2) * _gradient(self.kinetic, p)
                p = p - h * _gradient(self.potential, q)
                q = q + (h / 2) * _gradient(self.kinetic, p)
            states.append(torch.cat([q, p], dim=-1))
        return torch.stack(states)

    def _require_separable(self, what: str) -> None:
        if not self.separable:
            raise ValueError(f"HamiltonianNN.{what} needs separable=True")


def finite_difference_pairs(trajectories: torch.Tensor, t: torch.Tensor | Sequence[float]
                            ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(y, dy/dt)`` pairs from sampled trajectories, by second-order finite differences
    (central inside, one-sided at the ends; ``torch.gradient``, non-uniform ``t`` allowed), as
    Greydanus et al. did for the real pendulum.

    Shapes:
        trajectories: ``[T, B, D]``; t: ``[T]``; returns two ``[T * B, D]`` tensors.
    """
    if trajectories.ndim != 3:
        raise ShapeError(f"trajectories must have shape [T, B, D], got {tuple(trajectories.shape)}")
    times = torch.as_tensor(t).to(trajectories)
    if times.shape != trajectories.shape[:1] or times.numel() < 3:
        raise ShapeError(f"t must have shape [T] = [{trajectories.shape[0]}] with T >= 3, "
                         f"got {tuple(times.shape)}")
    (rate,) = torch.gradient(trajectories, spacing=(times,), dim=0, edge_order=2)
    dim = trajectories.shape[-1]
    return trajectories.reshape(-1, dim), rate.reshape(-1, dim)


class DerivativeMatching:
    """Objective: ``mean |f(t_i, y_i) - dy_i/dt|^2`` over pairs (Greydanus et al.'s ``L2_loss``).

    Args:
        states, derivatives: the pairs.
        times: the time of each pair, for time-dependent fields (passed as ``model(times,
            states)``); default a 0-dim zero.
        batch_size: pairs per step; ``None`` uses all (full batch, as in Greydanus et al.).
        seed: of the per-epoch shuffling.

    Shapes:
        states, derivatives: ``[N, D]``; times: ``[N]``.
    """

    def __init__(self, states: torch.Tensor, derivatives: torch.Tensor, *,
                 times: torch.Tensor | None = None, batch_size: int | None = None,
                 seed: int = 0):
        if states.ndim != 2 or states.shape != derivatives.shape:
            raise ShapeError(f"states and derivatives must both be [N, D], got "
                             f"{tuple(states.shape)} and {tuple(derivatives.shape)}")
        if times is not None and tuple(times.shape) != states.shape[:1]:
            raise ShapeError(f"times must have shape [{states.shape[0]}], got "
                             f"{tuple(times.shape)}")
        self.states, self.derivatives, self.seed = states, derivatives, seed
        self.times = times
        self.batch_size = batch_size or states.shape[0]
        _batch_index(states.shape[0], self.batch_size, seed, 0)  # validates batch_size

    def batch(self, step: int, rank: int = 0, world_size: int = 1):
        index = _batch_index(self.states.shape[0], self.batch_size, self.seed, step)
        index = index[rank::world_size]
        times = self.times[index] if self.times is not None else None
        return self.states[index], self.derivatives[index], times

    def loss(self, model: nn.Module, batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        states, derivatives, times = batch
        if times is None:
            times = torch.zeros((), dtype=states.dtype, device=states.device)
        prediction = model(times, states)
        return (prediction - derivatives).square().mean(), {}


class TrajectoryMatching:
    """Objective: roll the model out from observed states and match the following frames.

    Each batch draws ``batch_size`` windows (trajectory ``b``, start ``s``) of ``horizon + 1``
    frames, integrates from ``y[s, b]`` with :func:`~scidl.numerics.odeint.odeint` and returns
    the mean squared error over the ``horizon`` predicted frames. Short windows keep the loss
    well conditioned on long or chaotic trajectories (multiple shooting in spirit; Bock & Plitt,
    IFAC 1984). Every window is integrated from time 0, so the model should be autonomous.

    Args:
        trajectories: observed states.
        t: the common sample times; uniform spacing is required when ``horizon < T - 1``.
        horizon: frames predicted per window; default the whole trajectory.
        batch_size: windows per step; default ``B`` (whole trajectories: each one once).
        method, step_size: passed to :func:`~scidl.numerics.odeint.odeint`; the default step is
            the sample spacing.
        seed: of the window draws.

    Shapes:
        trajectories: ``[T, B, D]``; t: ``[T]``.
    """

    def __init__(self, trajectories: torch.Tensor, t: torch.Tensor | Sequence[float], *,
                 horizon: int | None = None, batch_size: int | None = None,
                 method: str = "rk4", step_size: float | None = None, seed: int = 0):
        if trajectories.ndim != 3:
            raise ShapeError("trajectories must have shape [T, B, D], got "
                             f"{tuple(trajectories.shape)}")
        times = torch.as_tensor(t, dtype=torch.float64).flatten()
        n_times = trajectories.shape[0]
        if times.numel() != n_times:
            raise ShapeError(f"t must have {n_times} times, got {times.numel()}")
        self.horizon = horizon if horizon is not None else n_times - 1
        if not 1 <= self.horizon <= n_times - 1:
            raise ValueError(f"horizon must be in [1, {n_times - 1}], got {self.horizon}")
        spacing = times.diff()
        if self.horizon < n_times - 1 and not torch.allclose(spacing, spacing[0], rtol=1e-9):
            raise ValueError("windows (horizon < T - 1) need uniformly spaced times")
        self.trajectories, self.times, self.seed = trajectories, times, seed
        self.window_times = times[: self.horizon + 1] - times[0]
        self.method = method
        self.step_size = step_size if step_size is not None else float(spacing.min())
        self.starts = n_times - self.horizon
        self.batch_size = batch_size or trajectories.shape[1]
        _batch_index(self.starts * trajectories.shape[1], self.batch_size, seed, 0)

    def batch(self, step: int, rank: int = 0, world_size: int = 1):
        n_traj = self.trajectories.shape[1]
        draw = _batch_index(self.starts * n_traj, self.batch_size, self.seed, step)
        draw = draw[rank::world_size]
        start, column = draw // n_traj, draw % n_traj
        offsets = torch.arange(self.horizon + 1)
        frames = self.trajectories[start[None, :] + offsets[:, None], column[None, :]]
        return frames  # [horizon + 1, batch, D]

    def loss(self, model: nn.Module, batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        prediction = odeint(model, batch[0], self.window_times.to(batch), method=self.method,
                            step_size=self.step_size)
        return (prediction[1:] - batch[1:]).square().mean(), {}


def _batch_index(n: int, batch_size: int, seed: int, step: int) -> torch.Tensor:
    """Indices of one batch: consecutive slices of a fresh permutation per epoch."""
    if not 1 <= batch_size <= n:
        raise ValueError(f"batch_size must be between 1 and {n}, got {batch_size}")
    if batch_size == n:
        return torch.arange(n)
    per_epoch = n // batch_size
    epoch, offset = divmod(step, per_epoch)
    permutation = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003
                                                                            + epoch))
    return permutation[offset * batch_size:(offset + 1) * batch_size]
