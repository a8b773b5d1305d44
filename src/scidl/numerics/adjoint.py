"""Gradients of an adaptive Dormand-Prince solve by the continuous adjoint method, in memory that
does not grow with the number of steps.

:func:`odeint_adjoint` solves ``y' = f(t, y; theta)`` forward with
:func:`~scidl.numerics.dopri5.odeint_adaptive`, keeping only the states at the output times, and
the backward pass integrates the adjoint system (Pontryagin et al. 1962; Chen, Rubanova,
Bettencourt & Duvenaud, "Neural ordinary differential equations", NeurIPS 2018, Eq. (4), App. B)
from ``t[-1]`` back to ``t[0]``::

    y' = f,    a' = -a^T df/dy,    g' = -a^T df/dtheta,    a(t[-1]) = dL/dy(t[-1]),  g(t[-1]) = 0,

re-solving ``y`` backwards, reset to the stored state at each output time, where ``dL/dy(t_i)``
jumps onto ``a``. Then ``a(t[0]) = dL/dy0``, ``g(t[0]) = dL/dtheta`` (optimise-then-discretise).

* One vector-Jacobian product per stage gives ``f``, ``a^T df/dy`` and ``a^T df/dtheta``, on a
  flat ``[y, a]`` state stepped with one ``addmv`` per stage; the step size carries over output
  times (no restart per interval); the first-same-as-last stage is reused.
* Error control on ``y`` and ``a`` only, not on the integrals ``g`` that feed back into nothing
  (the "seminorm" of Kidger, Chen & Lyons, "'Hey, that's not an ODE': faster ODE adjoints via
  seminorms", ICML 2021); ``g`` is summed in float64.
* ``(a, g) / s`` is integrated (the equations are linear) with a power-of-two scale ``s`` kept
  so that ``|a / s| ~ 1`` (as Benettin et al., Meccanica 15, 1980, renormalise tangent vectors):
  ``|a|`` grows like ``e^{lambda (t[-1] - t)}`` in a chaotic system, and products and batch sums
  in the vector-Jacobian product would overflow float32 first. Powers of two round nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from scidl.errors import DivergenceError, ScidlError, ShapeError
from scidl.numerics.butcher import VectorField
from scidl.numerics.dopri5 import DOPRI5, StepLimitError, StepSizeController, odeint_adaptive


class AdjointInputError(ScidlError, ValueError):
    """An argument of :func:`odeint_adjoint` has a wrong value or type."""


@dataclass
class AdjointStats:
    """Step and ``func``-evaluation counts of one :func:`odeint_adjoint` solve, filled in by the
    forward pass and by each backward pass (the caller owns the record: no global state)."""

    forward_steps: int = 0
    forward_rejected: int = 0
    forward_evaluations: int = 0
    backward_steps: int = 0
    backward_rejected: int = 0
    backward_evaluations: int = 0


@dataclass(frozen=True)
class _Problem:
    func: VectorField
    times: list[float]
    rtol: float
    atol: float
    adjoint_rtol: float
    adjoint_atol: float
    max_steps: int
    stats: AdjointStats | None


def odeint_adjoint(
    func: VectorField,
    y0: torch.Tensor,
    t: torch.Tensor | Sequence[float],
    *,
    rtol: float = 1e-7,
    atol: float = 1e-9,
    adjoint_rtol: float | None = None,
    adjoint_atol: float | None = None,
    adjoint_params: Sequence[torch.Tensor] | None = None,
    max_steps: int = 100_000,
    stats: AdjointStats | None = None,
) -> torch.Tensor:
    """Adaptive DOPRI5 solve of ``y' = func(t, y)`` with gradients by the continuous adjoint.

    A drop-in for ``odeint_adaptive(func, y0, t, rtol=rtol, atol=atol).ys`` whose backward
    pass needs memory independent of the number of steps (see the module docstring).

    Args:
        func: ``func(t, y) -> dy/dt``, ``t`` a 0-dim tensor of ``y0``'s dtype.
        y0: initial state, any shape, real floating point.
        t: strictly increasing output times, ``t[0]`` that of ``y0``; not differentiated.
        rtol, atol: local error tolerances of the forward solve; ``adjoint_rtol``,
            ``adjoint_atol`` (default: the same) those of the backward solve, on ``y`` and ``a``.
        adjoint_params: the tensors to differentiate ``func`` with respect to; default
            ``tuple(func.parameters())`` for an ``nn.Module`` (required otherwise; ``()`` for
            none). Those not requiring grad are skipped; one ``func`` never uses gets zero.
        max_steps: most steps of the forward and of the backward solve.
        stats: an :class:`AdjointStats` to fill with step and evaluation counts.

    Raises:
        AdjointInputError: a bad ``t``, tolerance, ``y0`` or ``adjoint_params``.
        StepLimitError: ``max_steps`` was not enough (forward or backward).
        DivergenceError: the step size underflowed, or a gradient exceeds the dtype's range
            (a chaotic system over too long a horizon).

    Shapes:
        y0: ``[*S]``; t: ``[T]``; returns ``[T, *S]``.
    """
    adjoint_rtol = rtol if adjoint_rtol is None else adjoint_rtol
    adjoint_atol = atol if adjoint_atol is None else adjoint_atol
    times = _check_inputs(y0, t)
    for prefix, (r, a) in {"": (rtol, atol), "adjoint_": (adjoint_rtol, adjoint_atol)}.items():
        if not (r >= 0 and a >= 0 and r + a > 0 and math.isfinite(r + a)):
            raise AdjointInputError(f"need finite {prefix}rtol, {prefix}atol >= 0, not both 0; "
                                    f"got {prefix}rtol={r}, {prefix}atol={a}")
    problem = _Problem(func, times, rtol, atol, adjoint_rtol, adjoint_atol, max_steps, stats)
    return _Adjoint.apply(problem, y0, *_adjoint_params(func, adjoint_params))


def _check_inputs(y0, t) -> list[float]:
    if not isinstance(y0, torch.Tensor) or not y0.is_floating_point():
        raise AdjointInputError(f"y0 must be a real floating-point tensor, got "
                                f"{getattr(y0, 'dtype', type(y0).__name__)}")
    if isinstance(t, torch.Tensor) and t.requires_grad:
        raise AdjointInputError("odeint_adjoint does not differentiate t; pass t.detach()")
    t = torch.as_tensor(t, dtype=torch.float64)
    if t.ndim != 1 or len(t) == 0:
        raise ShapeError(f"t must be a non-empty 1-D sequence of times [T], got {tuple(t.shape)}")
    times = t.tolist()
    if not all(map(math.isfinite, times)) or any(b <= a for a, b in zip(times, times[1:])):
        raise AdjointInputError(f"t must be finite and strictly increasing, got {times[:5]}...")
    if not torch.isfinite(y0).all():
        raise AdjointInputError("y0 has non-finite entries")
    return times


def _adjoint_params(func, adjoint_params) -> tuple[torch.Tensor, ...]:
    if adjoint_params is None:
        if not isinstance(func, nn.Module):
            raise AdjointInputError("func is not an nn.Module, so its parameters are unknown: "
                                    "pass adjoint_params=(...) (or () if it has none)")
        adjoint_params = tuple(func.parameters())
    params = tuple(adjoint_params)
    for i, p in enumerate(params):
        if not isinstance(p, torch.Tensor):
            raise AdjointInputError(f"adjoint_params[{i}] is a {type(p).__name__}, not a tensor")
    return tuple(p for p in params if p.requires_grad)


class _Adjoint(torch.autograd.Function):
    @staticmethod
    def forward(ctx, problem: _Problem, y0: torch.Tensor, *params: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            solution = odeint_adaptive(problem.func, y0, problem.times, rtol=problem.rtol,
                                       atol=problem.atol, max_steps=problem.max_steps)
        if problem.stats is not None:
            problem.stats.forward_steps = solution.n_accepted
            problem.stats.forward_rejected = solution.n_rejected
            problem.stats.forward_evaluations = solution.n_evaluations
        steps = torch.diff(solution.step_times)
        ctx.problem = problem
        ctx.first_step = float(steps[-2:].max()) if len(steps) else 0.0
        ctx.save_for_backward(solution.ys, *params)
        return solution.ys

    @staticmethod
    def backward(ctx, grad_ys: torch.Tensor):
        ys, *params = ctx.saved_tensors
        wanted = [p for p, need in zip(params, ctx.needs_input_grad[2:]) if need]
        with torch.no_grad():
            grad_y0, grad_wanted = _AdjointSolve(ctx.problem, ys, wanted).run(grad_ys,
                                                                              ctx.first_step)
        grads = iter(grad_wanted)
        return (None, grad_y0, *(next(grads) if need else None
                                 for need in ctx.needs_input_grad[2:]))


_RESCALE = 8  # keep |a / s| within [2^-8, 2^8]; renormalise to about 1 outside


class _AdjointSolve:
    """The backward DOPRI5 solve of ``[y, a / s]`` (error-controlled, in ``y``'s dtype) with the
    quadrature ``g / s`` (float64 where available), from ``t[-1]`` down to ``t[0]``."""

    def __init__(self, problem: _Problem, ys: torch.Tensor, params: list[torch.Tensor]):
        self.problem, self.ys, self.params = problem, ys, params
        self.n, self.shape = ys[0].numel(), ys.shape[1:]
        like = {"dtype": ys.dtype, "device": ys.device}
        self.sum_dtype = torch.float32 if ys.device.type == "mps" else torch.float64
        wide = {"dtype": self.sum_dtype, "device": ys.device}
        self.a, self.e = torch.tensor(DOPRI5.matrix(), **like), torch.tensor(DOPRI5.b_error, **like)
        self.b = torch.tensor(DOPRI5.b, **wide)
        self.stages = torch.empty(DOPRI5.stages, 2 * self.n, **like)
        self.param_stages = torch.zeros(DOPRI5.stages, sum(p.numel() for p in params), **wide)
        self.quadrature = torch.zeros(self.param_stages.shape[1], **wide)
        self.scale = 1.0  # s: the state holds a / s, the quadrature g / s
        self.evaluations = 0

    def evaluate(self, time: float, state: torch.Tensor, stage: int) -> None:
        """Stage ``stage`` of ``[y, a/s]' = [f, -(a/s)^T df/dy]``, ``(g/s)' = -(a/s)^T df/dp``:
        one vector-Jacobian product."""
        self.evaluations += 1
        y = state[:self.n].view(self.shape).detach().requires_grad_(True)
        minus_a = state[self.n:].neg().view(self.shape)
        with torch.enable_grad():
            f = self.problem.func(torch.tensor(time, dtype=y.dtype, device=y.device), y)
            if f.shape != y.shape:
                raise ShapeError(f"func returned shape {tuple(f.shape)} for a state of shape "
                                 f"{tuple(y.shape)}")
            inputs = (y, *self.params)
            vjps = (torch.autograd.grad(f, inputs, minus_a, allow_unused=True)
                    if f.requires_grad else (None,) * len(inputs))
        vjp_y = torch.zeros_like(y) if vjps[0] is None else vjps[0]
        torch.cat([f.detach().reshape(-1), vjp_y.reshape(-1)], out=self.stages[stage])
        if self.params:
            torch.cat([torch.zeros(p.numel(), dtype=self.sum_dtype, device=p.device)
                       if v is None else v.reshape(-1).to(self.sum_dtype)
                       for p, v in zip(self.params, vjps[1:])], out=self.param_stages[stage])

    def run(self, grad_ys: torch.Tensor, first_step: float
            ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        problem, ys, n, times = self.problem, self.ys, self.n, self.problem.times
        controller, q = StepSizeController(), DOPRI5.embedded_order + 1
        state = torch.cat([ys[-1].reshape(-1), grad_ys[-1].reshape(-1)])
        self.renormalise(state)
        now, h = times[-1], first_step or abs(times[-1] - times[0]) / 100
        self.evaluate(now, state, 0)
        accepted = rejected = 0
        previous_error, just_rejected = 1e-4, False
        for i in range(len(times) - 1, 0, -1):
            target = times[i - 1]
            while now > target:
                if accepted + rejected >= problem.max_steps:
                    raise StepLimitError(f"odeint_adjoint: backward solve at t={now:g} after "
                                         f"max_steps={problem.max_steps}")
                if h <= 16 * math.ulp(max(abs(now), abs(target))):
                    raise DivergenceError(f"odeint_adjoint: backward step size {h:.3g} underflowed "
                                          f"at t={now:g}; the adjoint blows up or is too stiff")
                landing = now - 1.01 * h <= target  # as odeint_adaptive: no sliver left over
                step = target - now if landing else -h  # negative: backwards in time
                new_state = self.step(now, state, step)
                error = self.error_norm(state, new_state, step)
                ok = error <= 1.0  # False for NaN
                factor = controller.factor(error, previous_error, q, grow=ok and not just_rejected)
                if ok:
                    now, state = (target if landing else now + step), new_state
                    self.quadrature += step * (self.param_stages.T @ self.b)
                    self.stages[0].copy_(self.stages[-1])  # first same as last
                    self.param_stages[0].copy_(self.param_stages[-1])
                    self.renormalise(state)
                    accepted += 1
                    previous_error = max(error, 1e-4)
                    h = max(-step * factor, h) if landing else -step * factor
                else:
                    rejected += 1
                    h = -step * factor
                just_rejected = not ok
            # the jump at t_{i-1}: back onto the stored forward state, add dL/dy(t_{i-1})
            state[:n] = ys[i - 1].reshape(-1)
            state[n:] += grad_ys[i - 1].reshape(-1) / self.scale
            self.renormalise(state)
            if i > 1:
                self.evaluate(now, state, 0)
        if problem.stats is not None:
            problem.stats.backward_steps, problem.stats.backward_rejected = accepted, rejected
            problem.stats.backward_evaluations = self.evaluations
        return self.finish(state)

    def step(self, now: float, state: torch.Tensor, step: float) -> torch.Tensor:
        """One DOPRI5 step of ``[y, a/s]``, filling ``self.stages``. Returns the new state, which
        is also the input of the last stage (first same as last)."""
        for i in range(1, DOPRI5.stages):
            stage_state = torch.addmv(state, self.stages[:i].T, self.a[i, :i], alpha=step)
            self.evaluate(now + DOPRI5.c[i] * step, stage_state, i)
        return stage_state

    def error_norm(self, state: torch.Tensor, new_state: torch.Tensor, step: float) -> float:
        """The larger of the RMS scaled local errors of ``y`` and of ``a`` (a seminorm: the
        parameter integrals are left out). ``atol`` applies to ``a``, so to ``a/s`` as
        ``atol / s``."""
        rtol, atol = self.problem.adjoint_rtol, self.problem.adjoint_atol
        error = torch.mv(self.stages.T, self.e).mul_(step).abs_().view(2, self.n)
        bound = torch.maximum(state.abs(), new_state.abs()).mul_(rtol).view(2, self.n)
        bound[0].add_(atol)
        bound[1].add_(atol / self.scale)
        return float(error.div_(bound).square_().mean(dim=1).max().sqrt())

    def renormalise(self, state: torch.Tensor) -> None:
        """Divide ``a/s``, ``g/s`` and the adjoint parts of the reusable first stage by a power
        of two when ``max |a/s|`` leaves ``[2^-R, 2^R]``: exact, no rounding changes."""
        largest = float(state[self.n:].abs().max())
        if not math.isfinite(largest) or largest == 0 or abs(math.log2(largest)) <= _RESCALE:
            return
        factor = 2.0 ** round(math.log2(largest))
        state[self.n:] /= factor
        self.stages[0, self.n:] /= factor
        self.param_stages[0] /= factor
        self.quadrature /= factor
        self.scale *= factor

    def finish(self, state: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``(dL/dy0, [dL/dp])``, unscaled in float64 and checked to fit their dtypes."""
        grads = [state[self.n:].to(self.sum_dtype).view(self.shape) * self.scale]
        sizes = [p.numel() for p in self.params]
        grads += [g.view(p.shape) * self.scale
                  for g, p in zip(self.quadrature.split(sizes), self.params)]
        for k, (grad, like) in enumerate(zip(grads, [self.ys, *self.params])):
            limit = torch.finfo(like.dtype).max
            largest = float(grad.abs().max()) if grad.numel() else 0.0  # NaN fails the test
            if not largest <= limit:
                name = "y0" if k == 0 else f"adjoint_params[{k - 1}]"
                raise DivergenceError(
                    f"odeint_adjoint: the gradient with respect to {name} reaches {largest:.3g}, "
                    f"beyond {like.dtype}'s range ({limit:.3g}); gradients of chaotic systems "
                    "grow like exp(lyapunov exponent x horizon): shorten it, scale the loss down "
                    "or use float64")
        return grads[0].to(self.ys.dtype), [g.to(p.dtype) for g, p in zip(grads[1:], self.params)]
