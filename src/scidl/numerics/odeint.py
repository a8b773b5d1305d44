"""One entry point for initial-value problems ``y' = f(t, y)``: :func:`odeint`.

The call mirrors torchdiffeq's ``odeint(func, y0, t, method=...)``: ``func(t, y)`` receives ``t``
as a 0-dim tensor and the solution comes back at every requested time, ``[T, *y0.shape]``.
Fixed-step methods are their Butcher tableau (:mod:`scidl.numerics.butcher`); ``"dopri5"`` is
:func:`scidl.numerics.dopri5.odeint_adaptive`. Every method is differentiable by backpropagation
through the steps (discretise-then-optimise). For long fixed-step rollouts ``checkpoint_every=k``
trades one extra forward pass for memory (Chen et al., "Training deep nets with sublinear memory
cost", arXiv:1604.06174, 2016): only every ``k``-th state is kept and each segment of ``k`` steps
is recomputed during the backward pass, so memory holds ``O(T/k + k)`` states instead of
``O(T)``, with the same numbers and gradients.

The private helpers :func:`_steps` (how output intervals are split into steps) and
:func:`_rollout` (plain or checkpointed stepping) are shared with
:mod:`scidl.numerics.symplectic`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence

import torch
from torch.utils.checkpoint import checkpoint

from scidl.numerics.butcher import (
    CLASSIC_RK4,
    ButcherTableau,
    VectorField,
    rk_step,
    with_tensor_time,
)
from scidl.numerics.dopri5 import odeint_adaptive

#: Forward Euler (1768), ``y_{n+1} = y_n + h f(t_n, y_n)``.
EXPLICIT_EULER = ButcherTableau("Euler", c=(0,), a=(), b=(1,), order=1)

#: The explicit midpoint rule (Runge 1895), second order.
EXPLICIT_MIDPOINT = ButcherTableau("midpoint", c=(0, 1 / 2), a=((1 / 2,),), b=(0, 1), order=2)

FIXED_STEP_METHODS: dict[str, ButcherTableau] = {
    "euler": EXPLICIT_EULER,
    "midpoint": EXPLICIT_MIDPOINT,
    "rk4": CLASSIC_RK4,
}
ADAPTIVE_METHODS = ("dopri5",)

#: ``step(t, h, state) -> state``: one step of size ``h`` from time ``t``; a state is a tuple of
#: tensors (``(y,)`` for a first-order method, ``(q, v)`` or ``(q, v, a)`` for a symplectic one).
Step = Callable[[float, float, tuple[torch.Tensor, ...]], tuple[torch.Tensor, ...]]


def odeint(
    func: VectorField,
    y0: torch.Tensor,
    t: torch.Tensor | Sequence[float],
    *,
    method: str | ButcherTableau = "dopri5",
    step_size: float | None = None,
    rtol: float = 1e-7,
    atol: float = 1e-9,
    checkpoint_every: int | None = None,
    max_steps: int = 100_000,
) -> torch.Tensor:
    """Solve ``y' = func(t, y)``, ``y(t[0]) = y0``; the solution at every time in ``t``.

    Args:
        func: ``func(t, y) -> dy/dt`` with ``t`` a 0-dim tensor of ``y0``'s real dtype; any
            callable, e.g. a :class:`scidl.sims.DynamicalSystem`.
        y0: the initial state, any shape, real or complex.
        t: strictly increasing output times; ``t[0]`` is the time of ``y0``.
        method: ``"euler"``, ``"midpoint"``, ``"rk4"`` (fixed step), ``"dopri5"`` (adaptive
            Dormand-Prince 5(4)), or any explicit :class:`ButcherTableau` (fixed step).
        step_size: fixed-step methods: the largest step; each output interval ``[t_i, t_i+1]``
            is split into ``ceil((t_i+1 - t_i) / step_size)`` equal steps, so outputs land
            exactly on ``t``. ``dopri5``: the first step (default: estimated).
        rtol, atol: ``dopri5`` only: the local error tolerances.
        checkpoint_every: fixed-step methods: recompute segments of this many steps in the
            backward pass instead of storing them (gradient checkpointing). Default: store all.
        max_steps: ``dopri5`` only: most steps before
            :class:`~scidl.numerics.dopri5.StepLimitError`.

    Returns:
        The solution ``[T, *y0.shape]``; ``[0]`` is ``y0``.

    Raises:
        ValueError: unknown method, a fixed-step method without a positive ``step_size``,
            ``checkpoint_every`` with ``dopri5`` or not a positive integer, or ``t`` not strictly
            increasing.

    Shapes:
        y0: ``[*S]``; t: ``[T]``; returns ``[T, *S]``.
    """
    if not isinstance(y0, torch.Tensor):
        raise TypeError(f"y0 must be a tensor, got {type(y0).__name__}")
    if isinstance(method, str) and method in ADAPTIVE_METHODS:
        if checkpoint_every is not None:
            raise ValueError("checkpoint_every applies to the fixed-step methods "
                             f"{sorted(FIXED_STEP_METHODS)}, not to {method!r}")
        return odeint_adaptive(func, y0, t, rtol=rtol, atol=atol, first_step=step_size,
                               max_steps=max_steps).ys
    tableau = _tableau(method)
    rhs = with_tensor_time(func, y0)

    def step(time: float, h: float, state: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor]:
        return (rk_step(rhs, time, state[0], h, tableau)[0],)

    return _rollout(step, (y0,), t, step_size, checkpoint_every)[0]


def _tableau(method: str | ButcherTableau) -> ButcherTableau:
    if isinstance(method, ButcherTableau):
        return method
    if method not in FIXED_STEP_METHODS:
        known = sorted(FIXED_STEP_METHODS) + list(ADAPTIVE_METHODS)
        raise ValueError(f"unknown ODE method {method!r}; expected one of {known} "
                         "or a ButcherTableau")
    return FIXED_STEP_METHODS[method]


def _output_times(t: torch.Tensor | Sequence[float]) -> list[float]:
    times = torch.as_tensor(t, dtype=torch.float64).flatten().tolist()
    if not times or any(b <= a for a, b in zip(times, times[1:])):
        raise ValueError("t must be a non-empty, strictly increasing sequence of times")
    return times


def _steps(times: list[float], step_size: float | None) -> Iterator[tuple[float, float, bool]]:
    """``(start, h, lands_on_output)`` for every step; each interval in ``ceil(L / step_size)``
    equal steps. A ratio within 1e-12 above an integer (round-off in ``L / step_size``, as in
    ``3.1 / 1e-3``) counts as that integer."""
    if step_size is None or not step_size > 0 or not math.isfinite(step_size):
        raise ValueError(f"fixed-step methods need a positive, finite step_size, got {step_size}")
    for start, end in zip(times, times[1:]):
        ratio = (end - start) / step_size
        n = max(1, math.ceil(ratio * (1 - 1e-12)))
        h = (end - start) / n
        for i in range(n):
            yield start + i * h, h, i == n - 1


def _rollout(step: Step, state: tuple[torch.Tensor, ...], t: torch.Tensor | Sequence[float],
             step_size: float | None, checkpoint_every: int | None,
             n_outputs: int | None = None) -> tuple[torch.Tensor, ...]:
    """Step ``state`` along ``t``; each of its first ``n_outputs`` (default all) components
    stacked at the output times, ``[T, *component.shape]``."""
    times = _output_times(t)
    steps = _steps(times, step_size)
    n_outputs = len(state) if n_outputs is None else n_outputs
    outputs = [state[:n_outputs]]
    if checkpoint_every is not None and (not isinstance(checkpoint_every, int)
                                         or checkpoint_every < 1):
        raise ValueError(f"checkpoint_every must be a positive integer, got {checkpoint_every!r}")
    if checkpoint_every is None or not torch.is_grad_enabled():
        for start, h, lands in steps:
            state = step(start, h, state)
            if lands:
                outputs.append(state[:n_outputs])
    else:
        for segment in _segments(steps, checkpoint_every):
            flat = checkpoint(_run_segment, step, segment, n_outputs, *state,
                              use_reentrant=False)
            landed = sum(lands for _, _, lands in segment)
            for i in range(landed):
                outputs.append(tuple(flat[i * n_outputs:(i + 1) * n_outputs]))
            state = tuple(flat[landed * n_outputs:])
    return tuple(torch.stack([out[i] for out in outputs]) for i in range(n_outputs))


def _segments(steps: Iterator[tuple[float, float, bool]], size: int
              ) -> Iterator[list[tuple[float, float, bool]]]:
    segment: list[tuple[float, float, bool]] = []
    for item in steps:
        segment.append(item)
        if len(segment) == size:
            yield segment
            segment = []
    if segment:
        yield segment


def _run_segment(step: Step, segment: list[tuple[float, float, bool]], n_outputs: int,
                 *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The outputs landed on inside ``segment`` (flattened), then the final state."""
    landed: list[torch.Tensor] = []
    for start, h, lands in segment:
        state = step(start, h, state)
        if lands:
            landed.extend(state[:n_outputs])
    return (*landed, *state)
