"""Deep ensembles (Lakshminarayanan, Pritzel & Blundell, "Simple and Scalable Predictive
Uncertainty Estimation using Deep Ensembles", NeurIPS 2017), trained all members at once.

:class:`VectorizedEnsemble` holds ``M`` independently initialised copies of a model as stacked
parameters (``torch.func.stack_module_state``) registered as ordinary ``nn.Parameter`` s, and
evaluates them with ``torch.vmap`` over ``torch.func.functional_call``: one batched forward and
one backward per step for the whole ensemble, and any torch optimiser updates every member
(the updates of Adam, SGD and the like are elementwise, so each member follows exactly the
trajectory it would follow alone). :func:`train_members` trains each member on its own
shuffled mini-batches (or its own data set), vectorised or -- the reference -- member by
member with the same batches; :func:`fit_ensemble` is the paper's recipe: proper scoring rule
(Gaussian NLL with a predicted variance, or beta-NLL), optional adversarial training, ``M``
random initialisations, and :class:`DeepEnsemble` predicts the uniform mixture (as in the
paper): mean and variance, the members' means as samples, and the aleatoric/epistemic split.

Limits: the model must keep all its tensors as parameters or buffers, and must not update
buffers in place in the forward pass (BatchNorm in training mode); dropout works (each member
draws its own masks).
"""

from __future__ import annotations

import copy
import itertools
import time
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, stack_module_state

from scidl.errors import DivergenceError, ShapeError
from scidl.uq.heads import _elementwise_nll
from scidl.uq.prediction import Prediction

Loss = Literal["gaussian_nll", "beta_nll", "mse"]
Schedule = Literal["constant", "cosine"]
Output = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


def member_seeds(seed: int, members: int) -> list[tuple[int, int]]:
    """``(init_seed, shuffle_seed)`` of each member: independent streams spawned from
    ``seed`` (``numpy.random.SeedSequence``), so that ensembles with different seeds share no
    member."""
    states = [s.generate_state(2) for s in np.random.SeedSequence(seed).spawn(members)]
    return [(int(a), int(b)) for a, b in states]


def _key(name: str) -> str:
    return name.replace(".", ":")  # parameter names may not contain dots


class VectorizedEnsemble(nn.Module):
    """``members`` independently initialised copies of ``factory()``, evaluated with vmap.

    Member ``i`` is built by ``factory()`` with torch's RNG seeded by
    ``member_seeds(seed, members)[i][0]`` (the global RNG is left untouched), so the same
    ``seed`` gives the same ensemble.

    Args:
        factory: builds one member (``nn.Module``); every call must give the same structure.
        members: number of members ``M``.
        seed: ensemble seed.

    Shapes:
        :meth:`forward`: ``x [N, ...]`` (the same input to every member) -> ``[M, N, ...]``
        (or a tuple of such, e.g. ``(mean, variance)`` from a
        :class:`~scidl.uq.heads.GaussianHead`); :meth:`forward_members`: ``xs [M, N, ...]``
        (member ``i`` sees ``xs[i]``) -> ``[M, N, ...]``.
    """

    def __init__(self, factory: Callable[[], nn.Module], members: int, seed: int = 0):
        super().__init__()
        if members < 1:
            raise ValueError(f"an ensemble needs at least one member, got members={members}")
        seeds = member_seeds(seed, members)
        modules = []
        for init_seed, _ in seeds:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(init_seed)
                modules.append(factory())
        self._set_members(modules, [s for _, s in seeds])

    @classmethod
    def from_modules(cls, modules: Sequence[nn.Module],
                     shuffle_seeds: Sequence[int] | None = None) -> VectorizedEnsemble:
        """Stack existing modules (same structure) into an ensemble."""
        ensemble = cls.__new__(cls)
        nn.Module.__init__(ensemble)
        seeds = list(shuffle_seeds) if shuffle_seeds is not None else list(range(len(modules)))
        ensemble._set_members(list(modules), seeds)
        return ensemble

    def _set_members(self, modules: list[nn.Module], shuffle_seeds: list[int]) -> None:
        if len(shuffle_seeds) != len(modules):
            raise ValueError(f"need one shuffle seed per member: {len(shuffle_seeds)} seeds "
                             f"for {len(modules)} members")
        params, buffers = stack_module_state(modules)
        self._install(copy.deepcopy(modules[0]).to("meta"), params, buffers, shuffle_seeds)
        self.train(modules[0].training)

    def _install(self, base: nn.Module, params: dict, buffers: dict,
                 shuffle_seeds: list[int]) -> None:
        # The template lives on the meta device and is not a submodule: its tensors are always
        # replaced by one member's slice in functional_call.
        object.__setattr__(self, "_base", base)
        self.param_names = list(params)
        self.buffer_names = list(buffers)
        self.stacked = nn.ParameterDict(
            {_key(k): nn.Parameter(v.detach().clone()) for k, v in params.items()})
        self.stacked_buffers = nn.Module()
        for k, v in buffers.items():
            self.stacked_buffers.register_buffer(_key(k), v.detach().clone())
        self.shuffle_seeds = list(shuffle_seeds)

    # ---- member access ----------------------------------------------------------------------

    @property
    def members(self) -> int:
        return len(self.shuffle_seeds)

    def __len__(self) -> int:
        return self.members

    def _tensors(self) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        params = {k: self.stacked[_key(k)] for k in self.param_names}
        buffers = {k: getattr(self.stacked_buffers, _key(k)) for k in self.buffer_names}
        return params, buffers

    def member(self, i: int) -> nn.Module:
        """An ordinary ``nn.Module`` copy of member ``i`` (detached, same device and dtype)."""
        if not -self.members <= i < self.members:
            raise IndexError(f"member {i} out of range for an ensemble of {self.members}")
        params, buffers = self._tensors()
        module = copy.deepcopy(self._base)
        module.to_empty(device=next(iter(params.values())).device)
        with torch.no_grad():
            for name, tensor in itertools.chain(module.named_parameters(),
                                                module.named_buffers()):
                stacked = params[name] if name in params else buffers[name]
                tensor.data = stacked[i].detach().clone()
        return module.train(self.training)

    @torch.no_grad()
    def set_member(self, i: int, module: nn.Module) -> None:
        """Copy ``module``'s parameters and buffers into member ``i``."""
        params, buffers = self._tensors()
        for name, tensor in itertools.chain(module.named_parameters(), module.named_buffers()):
            (params[name] if name in params else buffers[name])[i].copy_(tensor)

    def select(self, indices: Sequence[int]) -> VectorizedEnsemble:
        """A new ensemble holding copies of the members ``indices``."""
        index = torch.as_tensor(list(indices), dtype=torch.long)
        params, buffers = self._tensors()
        ensemble = type(self).__new__(type(self))
        nn.Module.__init__(ensemble)
        ensemble._install(self._base, {k: v[index.to(v.device)] for k, v in params.items()},
                          {k: v[index.to(v.device)] for k, v in buffers.items()},
                          [self.shuffle_seeds[i] for i in index.tolist()])
        return ensemble.train(self.training)

    @staticmethod
    def concat(ensembles: Sequence[VectorizedEnsemble]) -> VectorizedEnsemble:
        """One ensemble holding the members of all ``ensembles`` (same model structure), e.g.
        to train ensembles for several data splits in one vectorised loop."""
        first = ensembles[0]
        tensors = [e._tensors() for e in ensembles]
        for e in ensembles[1:]:
            if e.param_names != first.param_names or e.buffer_names != first.buffer_names:
                raise ValueError("cannot concatenate ensembles of different models")
        params = {k: torch.cat([t[0][k] for t in tensors]) for k in first.param_names}
        buffers = {k: torch.cat([t[1][k] for t in tensors]) for k in first.buffer_names}
        ensemble = type(first).__new__(type(first))
        nn.Module.__init__(ensemble)
        ensemble._install(first._base, params, buffers,
                          [s for e in ensembles for s in e.shuffle_seeds])
        return ensemble.train(first.training)

    # ---- evaluation -------------------------------------------------------------------------

    def train(self, mode: bool = True) -> VectorizedEnsemble:
        super().train(mode)
        self._base.train(mode)  # dropout and friends read the template's flag
        return self

    def _call(self, params, buffers, x):
        return functional_call(self._base, (params, buffers), (x,))

    def forward(self, x: torch.Tensor) -> Output:
        """Every member on the same input: ``[N, ...]`` -> ``[M, N, ...]``."""
        params, buffers = self._tensors()
        return torch.vmap(self._call, in_dims=(0, 0, None), randomness="different")(
            params, buffers, x)

    def forward_members(self, xs: torch.Tensor) -> Output:
        """Member ``i`` on ``xs[i]``: ``[M, N, ...]`` -> ``[M, N, ...]``."""
        if xs.shape[0] != self.members:
            raise ShapeError(f"forward_members needs one batch per member along dim 0: "
                             f"{self.members} members, input shape {tuple(xs.shape)}")
        params, buffers = self._tensors()
        return torch.vmap(self._call, in_dims=(0, 0, 0), randomness="different")(
            params, buffers, xs)


# ---- training ---------------------------------------------------------------------------------

def _per_member_loss(output: Output, target: torch.Tensor, loss: Loss,
                     beta: float) -> torch.Tensor:
    """Mean loss of each member over its batch: ``output [M, B, ...]`` -> ``[M]``."""
    gaussian = isinstance(output, tuple)
    if loss == "mse":
        if gaussian:
            raise ValueError("loss='mse' needs a model that returns one tensor (the mean), "
                             "not (mean, variance); drop the GaussianHead or use "
                             "loss='gaussian_nll'")
        return (output - target).pow(2).flatten(1).mean(1)
    if not gaussian:
        raise ValueError(f"loss={loss!r} needs a model that returns (mean, variance), e.g. "
                         "GaussianHead(model)")
    mean, variance = output
    elementwise = _elementwise_nll(mean, variance, target)
    if loss == "beta_nll":
        elementwise = variance.detach().pow(beta) * elementwise
    elif loss != "gaussian_nll":
        raise ValueError(f"loss must be 'gaussian_nll', 'beta_nll' or 'mse', got {loss!r}")
    return elementwise.flatten(1).mean(1)


def _weight_penalty(named: dict[str, torch.Tensor], coefficient: torch.Tensor) -> torch.Tensor:
    """``coefficient[m] * sum ||W||^2`` over the weights (parameters of 2 or more dims per
    member; biases and scalars are not penalised, as Keras' kernel regulariser)."""
    total = 0.0
    for tensor in named.values():
        if tensor.ndim >= 3:
            total = total + tensor.pow(2).flatten(1).sum(1)
    return (coefficient * total).sum()


def _range(x: torch.Tensor) -> torch.Tensor:
    """Per-member, per-channel range of ``x [M, N, C, *S]`` -> ``[M, 1, C, 1, ...]``."""
    dims = [1] + list(range(3, x.ndim))
    return x.amax(dim=dims, keepdim=True) - x.amin(dim=dims, keepdim=True)


def _step_loss(forward, xb, yb, loss, beta, eps) -> torch.Tensor:
    """Per-member loss ``[M]``; with ``eps`` the fast-gradient-sign adversarial term of
    Lakshminarayanan et al. (sec. 2.3): ``l(x, y) + l(x + eps sign(grad_x l), y)``."""
    if eps is None:
        return _per_member_loss(forward(xb), yb, loss, beta)
    xb = xb.detach().requires_grad_(True)
    value = _per_member_loss(forward(xb), yb, loss, beta)
    (grad,) = torch.autograd.grad(value.sum(), xb, retain_graph=True)
    adversarial = (xb + eps * grad.sign()).detach()
    return value + _per_member_loss(forward(adversarial), yb, loss, beta)


def _check_finite(history: torch.Tensor, epoch: int, lr: float) -> None:
    bad = (~torch.isfinite(history[epoch])).nonzero().flatten().tolist()
    if bad:
        raise DivergenceError(f"ensemble member(s) {bad} reached a non-finite training loss in "
                              f"epoch {epoch}; lower the learning rate (lr={lr:g}) or raise "
                              "the variance floor (GaussianHead min_std)")


def _optimiser(parameters, lr: float, schedule: Schedule, steps: int):
    optimiser = torch.optim.Adam(parameters, lr=lr, fused=True)
    if schedule == "constant":
        return optimiser, None
    if schedule == "cosine":
        return optimiser, torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, steps)
    raise ValueError(f"lr_schedule must be 'constant' or 'cosine', got {schedule!r}")


def train_members(ensemble: VectorizedEnsemble, x: torch.Tensor, y: torch.Tensor, *,
                  epochs: int, batch_size: int, lr: float, loss: Loss = "gaussian_nll",
                  beta: float = 0.5, weight_decay: float | torch.Tensor = 0.0,
                  adversarial_eps: float | None = None, lr_schedule: Schedule = "constant",
                  vectorize: bool = True) -> torch.Tensor:
    """Train every member of ``ensemble`` in place with Adam on its own data and batches.

    Member ``i`` trains on ``(x[i], y[i])``, reshuffled every epoch by a generator seeded with
    ``ensemble.shuffle_seeds[i]``; the last batch of an epoch may be smaller. ``vectorize=False``
    trains the members one after another with the same batches (the reference: equal
    parameters up to rounding). Random draws inside the model (dropout masks) come from torch's
    generator seeded from the shuffle seeds, so results do not depend on earlier use of the
    global generator (whose state is restored afterwards); the masks of the two modes differ.

    Args:
        x, y: ``[M, N, ...]`` inputs and targets per member (``x.expand(M, ...)`` shares one
            set without copying); ``y[i]`` has the shape of the model's (mean) output.
        epochs, batch_size, lr: passes over the data, mini-batch size, Adam learning rate.
        lr_schedule: ``"constant"``, or ``"cosine"``: annealed from ``lr`` to 0 over all
            steps (Loshchilov & Hutter, ICLR 2017, without restarts).
        loss: ``"gaussian_nll"`` or ``"beta_nll"`` (model returns ``(mean, variance)``), or
            ``"mse"`` (model returns one tensor).
        beta: exponent of ``"beta_nll"``.
        weight_decay: ``lambda`` of a penalty ``lambda * sum ||W||^2`` on the weights
            (parameters of >= 2 dims, not biases) added to each member's loss; one value, or
            ``[M]`` values (one per member).
        adversarial_eps: fast-gradient-sign step as a fraction of each input channel's range
            over the member's training set (the paper uses 0.01), or None.
        vectorize: one vmap step for all members (True) or member by member (False).

    Returns:
        ``[epochs, M]`` mean training loss of each member per epoch.
    """
    members, n = ensemble.members, x.shape[1]
    if x.shape[0] != members or y.shape[:2] != (members, n):
        raise ShapeError(f"train_members needs x [M, N, ...] and y [M, N, ...] with M = "
                         f"{members}; got x {tuple(x.shape)}, y {tuple(y.shape)}")
    devices = [x.device] if x.device.type == "cuda" else []
    seed = int(np.random.SeedSequence(ensemble.shuffle_seeds).generate_state(1)[0])
    with torch.random.fork_rng(devices=devices):
        torch.random.default_generator.manual_seed(seed)
        if devices:
            torch.cuda.manual_seed(seed)
        return _train(ensemble, x, y, epochs=epochs, batch_size=batch_size, lr=lr, loss=loss,
                      beta=beta, weight_decay=weight_decay, adversarial_eps=adversarial_eps,
                      lr_schedule=lr_schedule, vectorize=vectorize)


def _train(ensemble, x, y, *, epochs, batch_size, lr, loss, beta, weight_decay,
           adversarial_eps, lr_schedule, vectorize) -> torch.Tensor:
    members, n = ensemble.members, x.shape[1]
    device = x.device
    decay = torch.as_tensor(weight_decay, dtype=x.dtype, device=device).expand(members)
    eps = None if adversarial_eps is None else adversarial_eps * _range(x)
    generators = [torch.Generator().manual_seed(s) for s in ensemble.shuffle_seeds]
    history = torch.zeros(epochs, members, dtype=torch.float64)
    steps = epochs * -(-n // batch_size)
    ensemble.train()
    if vectorize:
        optimiser, scheduler = _optimiser(ensemble.parameters(), lr, lr_schedule, steps)
        rows = torch.arange(members, device=device)[:, None]
        penalise = bool(decay.any())
        for epoch in range(epochs):
            order = torch.stack([torch.randperm(n, generator=g) for g in generators]).to(device)
            x_epoch, y_epoch = x[rows, order], y[rows, order]  # each member's shuffled copy
            running = torch.zeros(members, dtype=torch.float64, device=device)
            for start in range(0, n, batch_size):
                xb, yb = x_epoch[:, start:start + batch_size], y_epoch[:, start:start + batch_size]
                value = _step_loss(ensemble.forward_members, xb, yb, loss, beta, eps)
                total = value.sum()
                if penalise:
                    total = total + _weight_penalty(ensemble._tensors()[0], decay)
                optimiser.zero_grad(set_to_none=True)
                total.backward()
                optimiser.step()
                if scheduler is not None:
                    scheduler.step()
                running += value.detach() * xb.shape[1]
            history[epoch] = running.cpu() / n
            _check_finite(history, epoch, lr)
        return history
    for i in range(members):
        module = ensemble.member(i)
        optimiser, scheduler = _optimiser(module.parameters(), lr, lr_schedule, steps)

        def forward(xb, module=module):
            out = module(xb[0])
            return tuple(o[None] for o in out) if isinstance(out, tuple) else out[None]
        member_eps = None if eps is None else eps[i:i + 1]
        for epoch in range(epochs):
            order = torch.randperm(n, generator=generators[i]).to(device)
            x_epoch, y_epoch = x[i, order][None], y[i, order][None]
            for start in range(0, n, batch_size):
                xb, yb = x_epoch[:, start:start + batch_size], y_epoch[:, start:start + batch_size]
                value = _step_loss(forward, xb, yb, loss, beta, member_eps)
                total = value.sum()
                if bool(decay[i] != 0):
                    named = {k: p[None] for k, p in module.named_parameters()}
                    total = total + _weight_penalty(named, decay[i:i + 1])
                optimiser.zero_grad(set_to_none=True)
                total.backward()
                optimiser.step()
                if scheduler is not None:
                    scheduler.step()
                history[epoch, i] += float(value.detach()) * xb.shape[1] / n
            _check_finite(history, epoch, lr)
        ensemble.set_member(i, module)
    return history


# ---- the paper's recipe -----------------------------------------------------------------------

def standardization(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std of ``t [N, C, *S]`` per channel (dim 1) over all other dims, shaped to
    broadcast (``[1, C, 1, ...]``); a 1-D ``t`` gets scalars. Zero stds become 1."""
    dims = [0] + list(range(2, t.ndim)) if t.ndim > 1 else [0]
    mean = t.mean(dim=dims, keepdim=True)
    std = t.std(dim=dims, keepdim=True, unbiased=False)
    return mean, torch.where(std > 0, std, torch.ones_like(std))


class DeepEnsemble(nn.Module):
    """A trained ensemble with the normalisation of its training data.

    Inputs are standardised with ``(x_mean, x_std)`` before the members see them, and the
    members' outputs are mapped back to target units with ``(y_mean, y_std)`` (means scale by
    ``y_std``, variances by ``y_std**2``).

    Shapes:
        :meth:`predict`: ``x [N, ...]`` -> :class:`Prediction` with ``mean, std
        [N, C, *S]`` and ``samples [M, N, C, *S]`` (the members' means).
    """

    def __init__(self, ensemble: VectorizedEnsemble, x_mean: torch.Tensor,
                 x_std: torch.Tensor, y_mean: torch.Tensor, y_std: torch.Tensor,
                 history: torch.Tensor | None = None, train_seconds: float | None = None):
        super().__init__()
        self.ensemble = ensemble
        for name, value in (("x_mean", x_mean), ("x_std", x_std), ("y_mean", y_mean),
                            ("y_std", y_std)):
            self.register_buffer(name, value)
        self.history = history
        self.train_seconds = train_seconds

    def member_outputs(self, x: torch.Tensor) -> Output:
        """The members' outputs in target units: ``[M, N, ...]`` (or ``(mean, variance)``)."""
        out = self.ensemble((x - self.x_mean) / self.x_std)
        if isinstance(out, tuple):
            mean, variance = out
            return mean * self.y_std + self.y_mean, variance * self.y_std**2
        return out * self.y_std + self.y_mean

    @torch.no_grad()
    def predict(self, x: torch.Tensor, batch_size: int = 4096) -> Prediction:
        """The uniform mixture of the members (Lakshminarayanan et al. 2017), in batches."""
        was_training = self.ensemble.training
        self.ensemble.eval()
        try:
            parts = []
            for start in range(0, x.shape[0], batch_size):
                out = self.member_outputs(x[start:start + batch_size])
                if isinstance(out, tuple):
                    parts.append(Prediction.from_samples(out[0], aleatoric_variance=out[1]))
                else:
                    parts.append(Prediction.from_samples(out))
        finally:
            self.ensemble.train(was_training)
        return Prediction.cat(parts)


def fit_ensemble(factory: Callable[[], nn.Module], x: torch.Tensor, y: torch.Tensor, *,
                 members: int = 5, epochs: int = 40, batch_size: int = 100, lr: float = 1e-2,
                 weight_decay: float = 0.0, loss: Loss = "gaussian_nll", beta: float = 0.5,
                 adversarial_eps: float | None = None, lr_schedule: Schedule = "constant",
                 seed: int = 0, vectorize: bool = True, normalize: bool = True,
                 device: str | torch.device = "cpu") -> DeepEnsemble:
    """Train a deep ensemble (Lakshminarayanan et al. 2017, algorithm 1).

    Each member starts from its own random initialisation and sees its own shuffled batches;
    all members train at once (``vectorize=True``) or one after another with identical
    results (``vectorize=False``). Parameters follow the dtype of ``x``.

    Args:
        factory: builds one member, e.g. ``lambda: GaussianHead(MLP(d, 2, 50, 1, "relu"))``
            for the Gaussian losses, or a plain model for ``loss="mse"``.
        x, y: training inputs ``[N, ...]`` and targets ``[N, C, *S]`` (the shape of the
            model's mean output; tabular scalar targets are ``[N, 1]``).
        members, epochs, batch_size, lr: ensemble size, passes, mini-batch, Adam step size.
        weight_decay, loss, beta, adversarial_eps, lr_schedule: see :func:`train_members`.
        seed: ensemble seed (initialisation and batch order of every member).
        normalize: standardise inputs and targets per channel on the training data (the
            predictions are in the original units either way).
        device: where to train.

    Returns:
        the trained :class:`DeepEnsemble` (on ``device``).
    """
    if x.shape[0] != y.shape[0]:
        raise ShapeError(f"x and y need the same number of items along dim 0, got x "
                         f"{tuple(x.shape)} and y {tuple(y.shape)}")
    x, y = x.to(device), y.to(device)
    if normalize:
        x_mean, x_std = standardization(x)
        y_mean, y_std = standardization(y)
    else:
        x_mean, x_std = torch.zeros((), dtype=x.dtype), torch.ones((), dtype=x.dtype)
        y_mean, y_std = torch.zeros((), dtype=y.dtype), torch.ones((), dtype=y.dtype)
    ensemble = VectorizedEnsemble(factory, members, seed).to(device)
    if x.is_floating_point() and next(ensemble.parameters()).dtype != x.dtype:
        ensemble = ensemble.to(x.dtype)
    xn = ((x - x_mean) / x_std).expand(members, *x.shape)
    yn = ((y - y_mean) / y_std).expand(members, *y.shape)
    start = time.perf_counter()
    history = train_members(ensemble, xn, yn, epochs=epochs, batch_size=batch_size, lr=lr,
                            loss=loss, beta=beta, weight_decay=weight_decay,
                            adversarial_eps=adversarial_eps, lr_schedule=lr_schedule,
                            vectorize=vectorize)
    seconds = time.perf_counter() - start
    return DeepEnsemble(ensemble.eval(), x_mean.to(device), x_std.to(device),
                        y_mean.to(device), y_std.to(device), history, seconds)
