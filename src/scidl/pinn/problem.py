"""A PINN as a training objective: the PDE's own residual, conditions, unknown parameters.

:class:`PINN` is what :func:`scidl.train.train` trains (it holds the network, the unknown PDE
parameters of an inverse problem, the loss-balancing weights and the points added by adaptive
refinement, so one checkpoint resumes all of it). :class:`PINNProblem` is the objective: it draws
points, evaluates the residual of the PDE's ``rhs`` -- the same method the solvers use, handed
derivatives of the network (DESIGN.md) -- and the condition terms.

Field layout handed to the PDE: a scalar equation sees ``u [P, 1]`` and coordinates ``[P, 1]``; a
system of ``C`` fields (``pde.channels = C``) sees ``u [C, P, 1, ...]`` (channels first, then one
point axis standing for all ``k`` spatial axes, padded with ``k - 1`` unit axes) so that its ``rhs``
finds the channel axis where it would on a grid.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Sequence

import torch
from torch import nn

from scidl.numerics.derivatives import AutogradDerivatives
from scidl.pdes.base import TimeDependentPDE
from scidl.pinn.conditions import Condition, PeriodicBC
from scidl.pinn.jet import JetDerivatives, JetUnsupported, RecordingDerivatives, pair
from scidl.pinn.model import PINN, AdaptiveSampling, Balancing, Refinement, Unknown

DERIVATIVE_MODES = ("forward", "autograd")


class PINNProblem:
    """``pde`` on ``domain`` with soft ``conditions``, as a training objective.

    Args:
        pde: a :class:`~scidl.pdes.TimeDependentPDE` (residual ``u_t - rhs(u)``, the domain a
            :class:`~scidl.pinn.geometry.SpaceTime`) or a :class:`~scidl.pdes.SteadyPDE`
            (its ``residual``, the domain a geometry).
        domain: where the residual is enforced.
        conditions: initial / boundary / data terms.
        collocation: residual points.
        method: their sampling, ``uniform``, ``sobol`` or ``lhs``.
        resample_every: redraw the collocation points every so many steps (``None``: fixed).
        resample_until: stop redrawing at this step (keep the last draw): L-BFGS needs a fixed
            objective, so set it to the end of the Adam stages.
        unknowns: PDE parameters to learn, by field name (an inverse problem).
        derivatives: ``forward`` (Taylor-mode jets, the default; falls back to autograd for a
            network it cannot push jets through) or ``autograd`` (nested reverse mode).
        compile: ``torch.compile`` the residual (forward mode only; fuses the jet arithmetic).
        residual_weight: weight of the residual term.
        channel_weights: for a system, a weight per equation inside the residual term
            (``mean_c w_c^2 r_c^2``), to balance channels of different scales.
        refinement, adaptive_sampling, balancing: :class:`Refinement` (adds points),
            :class:`AdaptiveSampling` (redraws them where the residual is large),
            :class:`Balancing` or ``None``.
        seed, device, dtype: point sampling seed; where and in which precision to work.
    """

    def __init__(self, pde, domain, conditions: Sequence[Condition] = (), *,
                 collocation: int = 4096, method: str = "sobol",
                 resample_every: int | None = None, resample_until: int | None = None,
                 unknowns: dict[str, Unknown] | None = None,
                 derivatives: str = "forward", compile: bool = False,
                 residual_weight: float = 1.0, channel_weights: Sequence[float] | None = None,
                 refinement: Refinement | None = None,
                 adaptive_sampling: AdaptiveSampling | None = None,
                 balancing: Balancing | None = None, seed: int = 0,
                 device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32):
        if derivatives not in DERIVATIVE_MODES:
            raise ValueError(f"derivatives must be one of {DERIVATIVE_MODES}, got "
                             f"{derivatives!r}")
        self.pde, self.domain = pde, domain
        self.conditions = list(conditions)
        names = [c.name for c in self.conditions]
        if len(set(names)) != len(names):
            raise ValueError(f"condition names must be unique, got {names}; set name=...")
        self.time_dependent = isinstance(pde, TimeDependentPDE)
        if self.time_dependent and "t" not in domain.names:
            raise ValueError(f"{type(pde).__name__} is time dependent: give a SpaceTime domain")
        self.names: tuple[str, ...] = tuple(domain.names)
        self.channels = int(getattr(pde, "channels", 1))
        self.collocation, self.method = collocation, method
        self.resample_every, self.resample_until = resample_every, resample_until
        self.unknowns = dict(unknowns or {})
        for name in self.unknowns:
            if name not in {f.name for f in dataclasses.fields(pde)}:
                raise ValueError(f"{type(pde).__name__} has no parameter {name!r}")
        self.derivatives, self.compile = derivatives, compile
        self.residual_weight = residual_weight
        if channel_weights is not None and len(channel_weights) != self.channels:
            raise ValueError(f"channel_weights needs one weight per channel ({self.channels}), "
                             f"got {len(channel_weights)}")
        self.channel_weights = (None if channel_weights is None
                                else torch.tensor(channel_weights, dtype=torch.float64))
        self.refinement, self.balancing = refinement, balancing
        self.adaptive_sampling = adaptive_sampling
        self.seed, self.device, self.dtype = seed, torch.device(device), dtype
        self._fixed: dict[str, torch.Tensor] = {}
        self._orders = self._required_orders()
        self._columns = None  # the orders as jet columns, on first use
        self._compiled = None
        self._cjet_cache: dict = {}
        self._reverse_only: set[int] = set()  # networks forward mode cannot handle
        self._added_cache = self._sampled_cache = None

    # ------------------------------------------------------------------------------- model

    def model(self, net: nn.Module) -> PINN:
        """Wrap ``net`` (``[P, D] -> [P, C]``) with this problem's unknowns and buffers."""
        return PINN(net, self.unknowns, n_terms=len(self.conditions), dim=len(self.names))

    def pde_for(self, model: PINN | None):
        """The PDE with the model's current unknown values substituted."""
        if model is None or not isinstance(model, PINN) or not model.unknowns:
            return self.pde
        values = {k: v.to(self.dtype) for k, v in model.unknown_values().items()}
        return dataclasses.replace(self.pde, **values)

    # ------------------------------------------------------------------------------ points

    def _draw_index(self, step: int) -> int:
        """Which draw of the points ``step`` uses (0 when they are fixed)."""
        if self.resample_every is None:
            return 0
        if self.resample_until is not None:
            step = min(step, max(self.resample_until - 1, 0))
        return step // self.resample_every

    def _refines_at(self, step: int) -> bool:
        r = self.refinement
        return (r is not None and step > 0 and step % r.every == 0
                and (r.until is None or step < r.until))

    def _adapts_at(self, step: int) -> bool:
        a = self.adaptive_sampling
        return (a is not None and step > 0 and step >= a.start
                and (step - a.start) % a.every == 0 and (a.until is None or step < a.until))

    def _balances_at(self, step: int) -> bool:
        b = self.balancing
        return (b is not None and bool(self.conditions) and step % b.every == 0
                and (b.until is None or step < b.until))

    def changes_at(self, step: int) -> bool:
        """Whether the loss at ``step`` may be a different function of the model than at
        ``step - 1`` (new points, refinement or a balancing update). The training loop reuses
        L-BFGS's last evaluation of the previous step when it is not."""
        return (step == 0 or self._draw_index(step) != self._draw_index(step - 1)
                or self._refines_at(step) or self._adapts_at(step)
                or self._balances_at(step))

    def _draw(self, key: str, step: int, sampler) -> torch.Tensor:
        if self.resample_every is None:
            if key not in self._fixed:
                self._fixed[key] = sampler(self.seed).to(self.device, self.dtype)
            return self._fixed[key]
        draw = self._draw_index(step)
        cache = self._fixed.get(key + "@draw")
        if cache is None or cache[0] != draw:
            points = sampler(self.seed + 1_000_003 * draw).to(self.device, self.dtype)
            self._fixed[key + "@draw"] = (draw, points)
            return points
        return cache[1]

    def batch(self, step: int, rank: int = 0, world_size: int = 1) -> dict:
        """Collocation and condition points for ``step``; each rank takes every
        ``world_size``-th point."""
        shard = slice(rank, None, world_size)
        points = self._draw("residual", step, lambda s: self.domain.sample_interior(
            self.collocation, method=self.method, seed=s))
        batch = {"step": step, "shard": shard, "residual": points[shard]}
        for i, condition in enumerate(self.conditions):
            # periodic pairs must stay pairs: shard them as pairs
            X = self._draw(condition.name, step,
                           lambda s, c=condition, i=i: c.sample(self.domain, s + 101 * (i + 1)))
            batch[condition.name] = X if world_size == 1 else _shard_condition(X, condition,
                                                                               rank, world_size)
        return batch

    # ---------------------------------------------------------------------------- residual

    def _required_orders(self) -> set[tuple[str, ...]]:
        coords = {n: torch.zeros(self._coord_shape(3), dtype=torch.float64) for n in self.names}
        recorder = RecordingDerivatives(self.names, coords)
        u = torch.zeros(self._field_shape(3), dtype=torch.float64)
        pde = self.pde
        if self.unknowns:
            pde = dataclasses.replace(pde, **{k: torch.tensor(v.initial, dtype=torch.float64)
                                              for k, v in self.unknowns.items()})
        if self.time_dependent:
            pde.rhs(u, recorder)
            recorder.requested.add(("t",))
        else:
            pde.residual(u, recorder)
        return recorder.requested

    def _coord_shape(self, P: int) -> tuple[int, ...]:
        k = max(len([n for n in self.names if n != "t"]), 1)
        return (P, 1) if self.channels == 1 else (P,) + (1,) * (k - 1)

    def _field_shape(self, P: int) -> tuple[int, ...]:
        k = max(len([n for n in self.names if n != "t"]), 1)
        return (P, 1) if self.channels == 1 else (self.channels, P) + (1,) * (k - 1)

    def _to_field(self, v: torch.Tensor) -> torch.Tensor:
        """``[P, C]`` network layout -> the PDE's field layout."""
        if self.channels == 1:
            return v
        return v.t().reshape(self._field_shape(v.shape[0])).contiguous()

    def _from_field(self, v: torch.Tensor) -> torch.Tensor:
        if self.channels == 1:
            return v
        return v.reshape(self.channels, -1).t()

    def residual(self, model: nn.Module, X: torch.Tensor) -> torch.Tensor:
        """The PDE residual of ``model`` at the points ``X [P, D]``, as ``[P, C]``."""
        pde = self.pde_for(model)
        net = self._net(model)
        if self._use_forward(net):
            try:
                return self._residual_forward(net, pde, X, self._cjets(net, X, residual=True))
            except JetUnsupported:
                self._reverse_only.add(id(net))  # remember: this network needs reverse mode
        return self._residual_autograd(model, pde, X)

    def derivatives_for(self, model) -> str:
        """``forward`` or ``autograd``: the engine this problem uses for ``model``."""
        return "forward" if self._use_forward(self._net(model)) else "autograd"

    def _use_forward(self, net) -> bool:
        return (self.derivatives == "forward" and hasattr(net, "jet")
                and id(net) not in self._reverse_only)

    def _net(self, model):
        return model.net if isinstance(model, PINN) else model

    def _orders_as_columns(self):
        if self._columns is not None:
            return self._columns
        index = {n: i for i, n in enumerate(self.names)}
        if any(len(o) > 2 for o in self._orders):
            raise JetUnsupported("forward mode stops at second derivatives")
        first = sorted({index[o[0]] for o in self._orders if len(o) == 1})
        second = sorted({pair(index[o[0]], index[o[1]]) for o in self._orders if len(o) == 2})
        self._columns = (index, first, second)
        return self._columns

    def _cjets(self, net, X, residual: bool, gradient: bool = False):
        """The hard constraint's jets at ``X``, cached for point sets that do not change."""
        if getattr(net, "constraint", None) is None:
            return None
        if residual:
            _, first, second = self._orders_as_columns()
        else:
            first, second = (list(range(X.shape[1])) if gradient else []), []
        key = (id(X), tuple(first), tuple(second))
        hit = self._cjet_cache.get(key)
        if hit is not None and hit[0] is X:
            return hit[1]
        jets = net.constraint_jets(X, first, second)
        if len(self._cjet_cache) > 64:
            self._cjet_cache.clear()
        self._cjet_cache[key] = (X, jets)
        return jets

    def _residual_forward(self, net, pde, X, cjets):
        index, first, second = self._orders_as_columns()
        jet = net.jet(X, first, second, constraint_jets=cjets) if cjets is not None else \
            net.jet(X, first, second)
        table = {}
        for o in self._orders:
            if len(o) == 1:
                table[o] = self._to_field(jet.d1[index[o[0]]])
            else:
                table[o] = self._to_field(jet.d2[pair(index[o[0]], index[o[1]])])
        u = self._to_field(jet.value)
        coords = {n: X[:, i].reshape(self._coord_shape(X.shape[0])) for n, i in index.items()}
        d = JetDerivatives(self.names, coords, [(u, table)])
        return self._from_field(self._pde_residual(pde, u, d))

    def _residual_autograd(self, model, pde, X):
        with torch.enable_grad():
            columns = [X[:, i:i + 1].detach().requires_grad_(True) for i in range(X.shape[1])]
            u = self._net(model)(torch.cat(columns, dim=1))
            coords = {n: c.reshape(self._coord_shape(X.shape[0]))
                      for n, c in zip(self.names, columns)}
            # derivatives are taken with respect to the leaves; reshape views share them
            d = AutogradDerivatives({n: c for n, c in zip(self.names, columns)})
            d.coordinate = lambda name: coords[name]  # type: ignore[method-assign]
            return self._from_field(self._pde_residual(pde, self._to_field(u), d))

    def _pde_residual(self, pde, u, d):
        if not self.time_dependent:
            return pde.residual(u, d)
        if self.channels == 1:
            return d.t(u) - pde.rhs(u, d)
        ut = torch.stack([d.t(u[c]) for c in range(self.channels)])
        return ut - pde.rhs(u, d)

    def values_and_gradient(self, model, X: torch.Tensor, gradient: bool, cjets=None):
        """``u [M, C]`` and, if asked, ``grad u [M, C, D]`` at ``X``."""
        net = self._net(model)
        if not gradient:
            return net(X), None
        if self._use_forward(net):
            try:
                jet = net.jet(X, range(X.shape[1]), constraint_jets=cjets)
                return jet.value, torch.stack([jet.d1[i] for i in range(X.shape[1])], -1)
            except JetUnsupported:
                pass
        with torch.enable_grad():
            Xg = X.detach().requires_grad_(True)
            u = net(Xg)
            grads = [torch.autograd.grad(u[:, c].sum(), Xg, create_graph=True)[0]
                     for c in range(u.shape[1])]
        return u, torch.stack(grads, 1)

    # -------------------------------------------------------------------------------- loss

    def _parts(self, net, pde, X, cjets, condition_points, condition_cjets):
        """Mean squares of the residual and of every condition (the compiled region)."""
        if cjets is not None or self._use_forward(net):
            residual = self._residual_forward(net, pde, X, cjets)
        else:
            residual = self._residual_autograd(net, pde, X)
        if self.channel_weights is not None:
            residual = residual * self.channel_weights.to(residual)
        parts = [residual.pow(2).mean()]
        D = len(self.names)
        for condition, Xc, cj in zip(self.conditions, condition_points, condition_cjets):
            # (observations carry their values as extra columns)
            coords = Xc if Xc.shape[1] == D else Xc[:, :D]
            u, grad = self.values_and_gradient(net, coords, condition.needs == "gradient", cj)
            parts.append(condition.residual(Xc, u, grad, self.domain).pow(2).mean())
        return parts

    def _own_parts(self):
        """``self._parts`` on a code object of its own. ``torch.compile`` keeps compiled graphs,
        and its recompile limit (8), per code object: every problem of a process would share
        one cache, each new problem (new network, new guards) would recompile into it, and the
        ninth would silently run uncompiled, 1.5-2x slower (a sweep over seeds did)."""
        function = PINNProblem._parts
        own = types.FunctionType(function.__code__.replace(), function.__globals__,
                                 function.__name__, function.__defaults__, function.__closure__)
        return types.MethodType(own, self)

    def loss(self, model: nn.Module, batch: dict):
        step = batch["step"]
        pinn = model.module if hasattr(model, "module") else model
        if not isinstance(pinn, PINN):
            pinn = None
        # the loop calls loss several times per step under L-BFGS, with the same batch dict:
        # refinement, adaptive sampling and balancing act once per step, marked on the batch
        if pinn is not None and not batch.get("_refined"):
            batch["_refined"] = True
            self._refine(pinn, step)
            self._adapt(pinn, step)
        X = batch["residual"]
        if pinn is not None and len(pinn.sampled_points):
            X = self._sampled(pinn.sampled_points, batch["shard"], X)
        if pinn is not None and len(pinn.added_points):
            X = self._with_added(X, pinn.added_points)
        net = self._net(pinn if pinn is not None else model)
        pde = self.pde_for(pinn)
        points = [batch[c.name] for c in self.conditions]
        forward = self._use_forward(net)
        try:
            if forward:  # (computed outside the compiled region, which would guard on it)
                self._orders_as_columns()
            cjets = self._cjets(net, X, residual=True) if forward else None
            D = len(self.names)
            ccjets = [self._cjets(net, Xc if Xc.shape[1] == D else Xc[:, :D], residual=False,
                                  gradient=c.needs == "gradient")
                      if forward else None for c, Xc in zip(self.conditions, points)]
        except JetUnsupported:
            self._reverse_only.add(id(net))
            forward, cjets, ccjets = False, None, [None] * len(points)
        def evaluate(owner):
            inner = owner.net if isinstance(owner, PINN) else net
            if forward and self.compile:
                if self._compiled is None:
                    self._compiled = torch.compile(self._own_parts())
                return self._compiled(inner, pde, X, cjets, points, ccjets)
            try:
                return self._parts(inner, pde, X, cjets, points, ccjets)
            except JetUnsupported:
                self._reverse_only.add(id(inner))
                return self._parts(inner, pde, X, None, points, [None] * len(points))

        if hasattr(model, "module") and pinn is not None:  # DistributedDataParallel
            values = model(None, evaluate=evaluate)
        else:
            values = evaluate(pinn if pinn is not None else model)
        parts = dict(zip(["residual"] + [c.name for c in self.conditions], values))
        weights = self._weights(pinn, parts, step, batch)
        total = self.residual_weight * parts["residual"]
        for i, condition in enumerate(self.conditions):
            total = total + condition.weight * weights[i] * parts[condition.name]
        terms = {k: v.detach() for k, v in parts.items()}
        if pinn is not None:
            for name, value in pinn.unknown_values().items():
                terms[name] = value.detach()
        return total, terms

    def _sampled(self, sampled, shard: slice, like):
        """This rank's share of the adaptively drawn points, converted once per draw (a new
        draw is a new tensor), so that L-BFGS's repeated evaluations reuse it."""
        hit = self._sampled_cache
        if hit is not None and hit[0] is sampled and hit[1] == shard:
            return hit[2]
        out = sampled[shard].to(like)
        self._sampled_cache = (sampled, shard, out)
        return out

    def _with_added(self, X, added):
        hit = self._added_cache
        if hit is not None and hit[0] is X and hit[1] == len(added):
            return hit[2]
        out = torch.cat([X, added.to(X)])
        self._added_cache = (X, len(added), out)
        return out

    def _weights(self, pinn: PINN | None, parts: dict, step: int, batch: dict):
        if pinn is None:
            return [1.0] * len(self.conditions)
        b = self.balancing
        active = (self._balances_at(step) and torch.is_grad_enabled()
                  and not batch.get("_balanced"))
        if active:
            batch["_balanced"] = True
            params = [p for p in pinn.net.parameters() if p.requires_grad]
            g_res = torch.autograd.grad(parts["residual"], params, retain_graph=True,
                                        allow_unused=True)
            top = max(float(g.abs().max()) for g in g_res if g is not None)
            for i, condition in enumerate(self.conditions):
                g = torch.autograd.grad(parts[condition.name], params, retain_graph=True,
                                        allow_unused=True)
                flat = torch.cat([x.abs().flatten() for x in g if x is not None])
                mean = float(flat.mean()) * condition.weight
                if mean > 0:
                    target = top / mean if b.max_weight is None else min(top / mean,
                                                                         b.max_weight)
                    pinn.term_weights[i] = (1 - b.alpha) * pinn.term_weights[i] + b.alpha * target
        return [pinn.term_weights[i].to(self.dtype) for i in range(len(self.conditions))]

    def _candidates(self, pinn: PINN, n: int, generator: torch.Generator):
        """``n`` uniform random points and the norm of the residual at each."""
        seed = int(torch.randint(0, 2**31, (1,), generator=generator))
        candidates = self.domain.sample_interior(n, method="uniform", seed=seed)
        candidates = candidates.to(self.device, self.dtype)
        norms = [self.residual(pinn, part).detach().pow(2).sum(-1).sqrt()
                 for part in candidates.split(4096)]
        return candidates, torch.cat(norms)

    def _refine(self, pinn: PINN, step: int) -> None:
        if not self._refines_at(step):
            return
        r = self.refinement
        generator = torch.Generator().manual_seed(self.seed * 7 + step)
        candidates, norms = self._candidates(pinn, r.candidates, generator)
        worst = norms.topk(min(r.add, len(candidates))).indices
        pinn.added_points = torch.cat([pinn.added_points, candidates[worst].double()])

    def _adapt(self, pinn: PINN, step: int) -> None:
        if not self._adapts_at(step):
            return
        a = self.adaptive_sampling
        generator = torch.Generator().manual_seed(self.seed * 7919 + step)
        candidates, norms = self._candidates(pinn, max(a.candidates, self.collocation),
                                             generator)
        density = norms.double().pow(a.k)
        density = density / density.mean().clamp_min(1e-300) + a.c
        chosen = torch.multinomial(density, self.collocation, replacement=False,
                                   generator=generator)
        pinn.sampled_points = candidates[chosen].double()

    # ----------------------------------------------------------------------------- predict

    @torch.no_grad()
    def predict(self, model: nn.Module, X: torch.Tensor, batch_size: int = 65536):
        """The network at ``X [P, D]`` -> ``[P, C]``, in chunks."""
        net = self._net(model)
        X = X.to(self.device, self.dtype)
        return torch.cat([net(part) for part in X.split(batch_size)])


def _shard_condition(X: torch.Tensor, condition: Condition, rank: int, world: int):
    if isinstance(condition, PeriodicBC):
        half = X.shape[0] // 2
        return torch.cat([X[:half][rank::world], X[half:][rank::world]])
    return X[rank::world]
