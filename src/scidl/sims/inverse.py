"""Inverse problems and design through differentiable simulation (discretise-then-optimise).

* :func:`fit_parameters` -- physical constants of a system from an observed trajectory;
* :func:`hit_target` -- the launch velocity that brings a body to a target at a given (or
  optimised) time;
* :func:`scidl.sims.control.swing_up` (its own module) -- a bounded torque sequence for a
  pendulum.

Each integrates the system with :func:`scidl.numerics.odeint.odeint` (or, for conservative
mechanical systems, a symplectic method of :mod:`scidl.numerics.symplectic`), backpropagates
through the steps, and returns a frozen result holding the per-iteration history and a message
saying why the optimiser stopped. The loops are plain (not :func:`scidl.train.train`): ``train``
lives in a lower layer, and these problems need per-iteration records of transformed variables
and stopping on a tolerance, which the training loop does not do.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn
from torch.nn.utils import parametrize

from scidl.errors import DivergenceError, ShapeError
from scidl.numerics.butcher import VectorField
from scidl.numerics.odeint import odeint
from scidl.numerics.symplectic import SYMPLECTIC_METHODS, integrate_second_order
from scidl.sims.base import DynamicalSystem, MechanicalSystem

#: Constants with a sign: never log-parametrised (NRI charges are +-1).
SIGNED_CONSTANTS = frozenset({"charges"})


class _Exp(nn.Module):
    """``value = exp(raw)``: keeps a positive constant positive while it is optimised."""

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        return raw.exp()

    def right_inverse(self, value: torch.Tensor) -> torch.Tensor:
        return value.log()


@dataclass(frozen=True)
class OptimisationLog:
    """``losses [iterations + 1]`` (the first before any step) and why the optimiser stopped."""

    losses: torch.Tensor
    iterations: int
    message: str


@dataclass(frozen=True)
class ParameterFit:
    """Result of :func:`fit_parameters`.

    Attributes:
        estimates: name -> final value. history: name -> ``[iterations + 1, *shape]``, the
        estimate before every iteration and after the last. system: a copy of the system holding
        the estimates. trajectory: its rollout ``[T, ...]``. log: losses and stopping reason.
    """

    estimates: dict[str, torch.Tensor]
    history: dict[str, torch.Tensor]
    system: DynamicalSystem
    trajectory: torch.Tensor
    log: OptimisationLog


def rollout(system: DynamicalSystem | VectorField, y0: torch.Tensor,
            t: torch.Tensor | Sequence[float], method: str = "rk4", step_size: float | None = None,
            time_scale: torch.Tensor | None = None) -> torch.Tensor:
    """``system``'s trajectory at ``time_scale * t`` (default scale 1) in first-order form.

    ``method`` is an :func:`~scidl.numerics.odeint.odeint` method or, for a
    :class:`MechanicalSystem` whose field is ``(v, a(q))``, a symplectic one (``"verlet"``,
    ``"leapfrog"``, ``"symplectic_euler"``). With a tensor ``time_scale`` ``s`` the solve runs
    in the rescaled time ``tau`` (physical time ``s tau``), ``dy/dtau = s f(s tau, y)``, so that
    ``s`` receives gradients; ``t`` and ``step_size`` are then in units of ``tau``.

    Shapes:
        y0: ``[..., state_dim]``; t: ``[T]``; returns ``[T, ..., state_dim]``.
    """
    scale = torch.ones((), dtype=y0.dtype) if time_scale is None else time_scale
    if method in SYMPLECTIC_METHODS:
        if not isinstance(system, MechanicalSystem) or (
                type(system).forward is not MechanicalSystem.forward):
            raise ValueError(f"symplectic method {method!r} needs a MechanicalSystem whose "
                             f"field is (v, a(q)); {type(system).__name__} is not; use 'rk4'")
        q0, v0 = system.unpack(y0)
        q, v = integrate_second_order(lambda q: scale**2 * system.acceleration(q), q0,
                                      scale * v0, t, step_size, method=method)
        return system.pack(q, v / scale)
    if time_scale is None:
        return odeint(system, y0, t, method=method, step_size=step_size)
    return odeint(lambda tau, y: scale * system(scale * tau, y), y0, t, method=method,
                  step_size=step_size)


def minimise(loss_fn: Callable[[], torch.Tensor], params: list[torch.Tensor], *,
             optimizer: str = "lbfgs", steps: int = 100, lr: float | None = None,
             tolerance: float = 0.0, on_iteration: Callable[[], None] | None = None,
             name: str = "optimisation") -> OptimisationLog:
    """Minimise ``loss_fn()`` over ``params``; ``on_iteration`` runs before every iteration and
    after the last (to record estimates). L-BFGS (strong-Wolfe line search, one iteration per
    step, as in :func:`scidl.train.train`) or Adam. Stops after ``steps`` iterations, when the
    loss is ``<= tolerance``, or when L-BFGS stalls (no decrease in 5 iterations); says which.

    Raises:
        DivergenceError: the loss or a parameter became non-finite.
    """
    if optimizer == "lbfgs":
        opt = torch.optim.LBFGS(params, lr=lr or 1.0, max_iter=1, max_eval=26, history_size=50,
                                tolerance_grad=0.0, tolerance_change=0.0,
                                line_search_fn="strong_wolfe")
    elif optimizer == "adam":
        opt = torch.optim.Adam(params, lr=lr or 1e-2)
    else:
        raise ValueError(f"unknown optimizer {optimizer!r}; use 'lbfgs' or 'adam'")

    def closure() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        return loss

    def check(loss: float, iteration: int) -> float:
        if not math.isfinite(loss) or not all(bool(torch.isfinite(p).all()) for p in params):
            raise DivergenceError(f"{name} diverged at iteration {iteration}: the loss is {loss}"
                                  "; try a better initial guess, a smaller lr or step_size")
        return loss

    losses: list[float] = []
    message = f"reached steps={steps}"
    for iteration in range(steps):
        if on_iteration is not None:
            on_iteration()
        # the loss at the parameters just recorded, before the step moves them
        losses.append(check(float(opt.step(closure).detach()), iteration))
        if losses[-1] <= tolerance:
            message = f"loss {losses[-1]:.3g} <= tolerance {tolerance:.3g}"
            break
        if optimizer == "lbfgs" and len(losses) > 5 and min(losses[-5:]) >= min(losses[:-5]):
            message = f"stalled: no decrease in 5 iterations (loss {min(losses):.3g})"
            break
    if on_iteration is not None:
        on_iteration()
    with torch.no_grad():
        losses.append(check(float(loss_fn()), len(losses)))
    return OptimisationLog(torch.tensor(losses, dtype=torch.float64), len(losses) - 1, message)


def fit_parameters(system: DynamicalSystem, names: Sequence[str], y0: torch.Tensor,
                   t: torch.Tensor | Sequence[float], observed: torch.Tensor, *,
                   method: str = "rk4", step_size: float | None = None, steps: int = 100,
                   optimizer: str = "lbfgs", lr: float | None = None,
                   initial: dict[str, float | torch.Tensor] | None = None,
                   positive: Sequence[str] | None = None,
                   tolerance: float = 1e-24) -> ParameterFit:
    """Recover the constants ``names`` of ``system`` from a trajectory observed from ``y0``.

    Minimises the relative squared error ``sum |y(t_k) - observed_k|^2 / sum |observed_k|^2``
    over the named constants (``nn.Parameter`` s of the system; every other constant is held
    fixed). Positive constants are optimised through their logarithm; by default every name
    whose initial value is all positive, except :data:`SIGNED_CONSTANTS` (charges: note that
    flipping every charge leaves the dynamics unchanged, so charges are found up to one global
    sign, the one nearer the initial guess). ``system`` is not modified; the result holds a copy.

    Args:
        system: any :class:`DynamicalSystem` (a copy is optimised).
        names: attribute names of constants, e.g. ``["stiffness"]``, ``["alpha", "beta"]``.
        y0, t, observed: the initial state, the observation times (``t[0]`` is ``y0``'s), and
            the observed states (``observed[0]`` is included in the loss, harmlessly).
        method, step_size: see :func:`rollout`; default step: the smallest interval of ``t``.
        steps, optimizer, lr, tolerance: see :func:`minimise`.
        initial: name -> starting value (default: the system's current value).
        positive: names to log-parametrise, overriding the default rule.

    Shapes:
        y0: ``[..., state_dim]``; t: ``[T]``; observed: ``[T, ..., state_dim]``.
    """
    times = torch.as_tensor(t, dtype=torch.float64).flatten()
    if observed.shape != (times.numel(), *y0.shape):
        raise ShapeError(f"observed must have shape [T, *y0.shape] = "
                         f"{[times.numel(), *y0.shape]}, got {list(observed.shape)}")
    model = copy.deepcopy(system)
    constants = dict(model.named_parameters())
    for name in names:
        if name not in constants or "." in name:
            raise ValueError(f"{name!r} is not a learnable constant of {type(system).__name__}; "
                             f"it has {sorted(constants)}")
    for param in model.parameters():
        param.requires_grad_(False)
    initial = initial or {}
    if positive is not None and not set(positive) <= set(names):
        raise ValueError(f"positive names {sorted(set(positive) - set(names))} are not among "
                         f"the fitted names {list(names)}")
    if not set(initial) <= set(names):
        raise ValueError(f"initial values given for {sorted(set(initial) - set(names))}, "
                         f"which are not among the fitted names {list(names)}")
    with torch.no_grad():
        for name, value in initial.items():
            getattr(model, name).copy_(torch.as_tensor(value, dtype=torch.float64))
    if positive is None:
        positive = [n for n in names
                    if n not in SIGNED_CONSTANTS and bool((getattr(model, n) > 0).all())]
    params = []
    for name in names:
        if name in positive:
            if not bool((getattr(model, name) > 0).all()):
                raise ValueError(f"{name!r} is to be log-parametrised but its initial value "
                                 f"{getattr(model, name).tolist()} is not all positive")
            parametrize.register_parametrization(model, name, _Exp())
            params.append(model.parametrizations[name].original)
        else:
            params.append(getattr(model, name))
    for param in params:
        param.requires_grad_(True)
    step = step_size if step_size is not None else float(times.diff().min())
    scale = observed.square().sum()
    history: dict[str, list[torch.Tensor]] = {name: [] for name in names}

    def loss_fn() -> torch.Tensor:
        prediction = rollout(model, y0, times.to(y0), method, step)
        return (prediction - observed).square().sum() / scale

    def record() -> None:
        for name in names:
            history[name].append(getattr(model, name).detach().clone())

    log = minimise(loss_fn, params, optimizer=optimizer, steps=steps, lr=lr,
                   tolerance=tolerance, on_iteration=record, name="fit_parameters")
    for name in names:
        if parametrize.is_parametrized(model, name):
            parametrize.remove_parametrizations(model, name, leave_parametrized=True)
    for name, original in system.named_parameters():
        model.get_parameter(name).requires_grad_(original.requires_grad)
    with torch.no_grad():
        trajectory = rollout(model, y0, times.to(y0), method, step)
    estimates = {name: getattr(model, name).detach().clone() for name in names}
    return ParameterFit(estimates, {n: torch.stack(h) for n, h in history.items()}, model,
                        trajectory, log)


@dataclass(frozen=True)
class TargetShot:
    """Result of :func:`hit_target`.

    Attributes:
        v0: the optimised initial velocities ``[*config_shape]`` (only ``body`` changed).
        t_final: the arrival time (optimised if ``free_time``). miss: ``|x(t_final) - target|``.
        times ``[F]``, positions and velocities ``[F, *config_shape]``: the trajectory.
        log: losses and stopping reason (of the last round with ``free_time``).
    """

    v0: torch.Tensor
    t_final: float
    miss: float
    times: torch.Tensor
    positions: torch.Tensor
    velocities: torch.Tensor
    log: OptimisationLog


def hit_target(system: MechanicalSystem, q0: torch.Tensor, v0_guess: torch.Tensor,
               target: torch.Tensor, t_final: float, *, body: int | None = None,
               free_time: bool = False, method: str = "rk4", step_size: float = 1e-2,
               steps: int = 100, rounds: int = 8, frames: int = 101,
               tolerance: float = 1e-20) -> TargetShot:
    """The initial velocity that brings ``q`` (or body ``body``'s position) to ``target``.

    With a fixed ``t_final`` the miss ``|x(t_final) - target|^2`` is minimised by L-BFGS
    (single shooting). With ``free_time=True`` the arrival time is optimised too and, among all
    hitting shots, the slowest launch is chosen: ``min |v0|^2`` subject to ``x(T) = target``,
    solved by the augmented Lagrangian method (Nocedal & Wright, "Numerical Optimization", 2nd
    ed., 2006, Alg. 17.4; ``rounds`` multiplier updates). Time enters through the rescaling of
    :func:`rollout`, so the step count is fixed by ``t_final / step_size``.

    Args:
        system: e.g. :class:`~scidl.sims.projectile.Projectile` or :class:`~scidl.sims.NBody`.
        q0, v0_guess: initial positions and the starting guess of the velocities.
        target: where the body must be at ``t_final``.
        body: index along the first configuration dim whose velocity is optimised and whose
            position must hit; None: the whole configuration (a single projectile).

    Shapes:
        q0, v0_guess: ``[*config_shape]``; target: ``config_shape[1:]`` with ``body``, else
        ``config_shape``.
    """
    system = copy.deepcopy(system).requires_grad_(False)  # only the velocity is optimised
    target = target.to(q0)
    mask = torch.ones_like(q0, dtype=torch.bool)
    if body is not None:
        mask = torch.zeros_like(mask)
        mask[body] = True
    if tuple(target.shape) != tuple(q0[body].shape if body is not None else q0.shape):
        raise ShapeError(f"target must have the shape of the hitting body's position, got "
                         f"{tuple(target.shape)} for q0 {tuple(q0.shape)} and body={body}")
    control = (v0_guess[body] if body is not None else v0_guess).detach().clone()
    control.requires_grad_(True)
    log_time = torch.zeros((), dtype=q0.dtype, requires_grad=free_time)
    tau = torch.linspace(0, 1, frames, dtype=q0.dtype)
    n_steps = max(1, math.ceil(t_final / step_size))

    def shoot(times: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        v0 = torch.where(mask, control, v0_guess.to(q0))
        scale = t_final * log_time.exp()
        y = rollout(system, system.pack(q0, v0), times, method, 1 / n_steps, scale)
        q, v = system.unpack(y)
        return v0, q, v

    def miss_vector() -> torch.Tensor:
        q_final = shoot(tau[[0, -1]])[1][-1]
        return (q_final[body] if body is not None else q_final) - target

    length = float(torch.linalg.vector_norm(target - (q0[body] if body is not None else q0)))
    length = length or 1.0
    params = [control, log_time] if free_time else [control]
    if not free_time:
        log = minimise(lambda: miss_vector().square().sum() / length**2, params, steps=steps,
                       tolerance=tolerance, name="hit_target")
    else:
        speed = float(torch.linalg.vector_norm(control.detach())) or 1.0
        multiplier, penalty = torch.zeros_like(target), 10.0

        def lagrangian(multiplier: torch.Tensor, penalty: float) -> torch.Tensor:
            c = miss_vector() / length
            return (control.square().sum() / speed**2 + (multiplier * c).sum()
                    + 0.5 * penalty * c.square().sum())

        for _ in range(rounds):
            log = minimise(partial(lagrangian, multiplier, penalty), params, steps=steps,
                           name="hit_target")
            with torch.no_grad():
                multiplier = multiplier + penalty * miss_vector() / length
            penalty *= 4.0
    with torch.no_grad():
        v0, q, v = shoot(tau)
        t_end = t_final * float(log_time.exp())
        miss = float(torch.linalg.vector_norm(miss_vector()))
    return TargetShot(v0, t_end, miss, tau * t_end, q, v, log)
