"""The one training loop: every scidl model trains through :func:`train`.

What is trained is described by an *objective*, any object with two methods:

* ``batch(step, rank, world_size)`` -- this rank's batch for a global step; it must depend only on
  its arguments (and the objective's seed), which makes runs reproducible and resumable;
* ``loss(model, batch) -> (loss, terms)`` -- a scalar loss and a dict of named scalar parts;
* optionally ``changes_at(step) -> bool`` -- whether the loss at ``step`` may be a different
  function of the model than at ``step - 1``. An objective that says when it does not lets an
  L-BFGS stage start each iteration from the previous line search's last evaluation instead of
  evaluating the same point again (which would double the cost of an iteration).

The loop owns the rest: optimiser stages (e.g. Adam then L-BFGS), learning-rate schedules,
DistributedDataParallel, divergence detection, progress, a metrics log and atomic checkpoints from
which ``resume=True`` continues bit-for-bit.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn
from tqdm.auto import tqdm

import scidl
from scidl.errors import CheckpointError, DivergenceError
from scidl.train.checkpoint import load_checkpoint, save_checkpoint
from scidl.train.distributed import DistInfo, mean_across_ranks


class Objective(Protocol):
    def batch(self, step: int, rank: int, world_size: int) -> Any: ...

    def loss(self, model: nn.Module, batch: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        ...


@dataclass(frozen=True)
class Stage:
    """One optimiser phase.

    Args:
        optimizer: ``adam``, ``adamw`` or ``lbfgs`` (strong-Wolfe line search).
        steps: optimiser steps in this stage (for L-BFGS: iterations, at most: a stage whose
            line search can no longer decrease the loss ends early, see ``TrainResult.stalled``).
        lr: (initial) learning rate.
        schedule: ``cosine`` (to zero over the stage), ``step`` (halve every quarter),
            ``onecycle`` (warm up to ``lr`` over 30% of the stage, then anneal; Smith 2018) or
            ``constant``.
        weight_decay: for ``adam`` / ``adamw``.
    """

    optimizer: str = "adam"
    steps: int = 1000
    lr: float = 1e-3
    schedule: str = "cosine"
    weight_decay: float = 0.0


@dataclass
class TrainResult:
    """What a training run leaves: its loss history and how it went."""

    history: list[dict[str, float]] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0
    optimizer_iterations: dict[str, int] = field(default_factory=dict)
    #: L-BFGS stages (``"index:lbfgs"``) that ended early, at this global step, because no
    #: step could decrease the loss any more, even after a restart from steepest descent; the
    #: steps left in the stage are skipped (``steps`` still counts them), so later stages start
    #: at the step they were planned to
    stalled: dict[str, int] = field(default_factory=dict)
    #: how often each L-BFGS stage restarted from steepest descent after a failed line search
    restarts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainOptions:
    """How to train, as opposed to what: logging, checkpoints, safety."""

    name: str = "model"
    log_every: int = 10
    checkpoint_every: int = 200
    divergence_factor: float = 1e6
    progress: bool = True


def _make_optimizer(stage: Stage, params) -> torch.optim.Optimizer:
    if stage.optimizer == "adam":
        return torch.optim.Adam(params, lr=stage.lr, weight_decay=stage.weight_decay)
    if stage.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=stage.lr, weight_decay=stage.weight_decay)
    if stage.optimizer == "lbfgs":
        # One L-BFGS iteration per loop step, so checkpoints and progress work as for Adam; the
        # tolerances are zeroed so that it never stops silently (see PROTOCOLS.md on DeepXDE).
        # torch gives the line search max_eval minus the evaluations already made; the default
        # max_eval for max_iter=1 is 1, which leaves no line search at all: one rejected trial
        # step (t = 0) then repeats forever. 1 + 25 restores torch's usual 25 line-search steps.
        return torch.optim.LBFGS(params, lr=stage.lr, max_iter=1, max_eval=1 + 25,
                                 history_size=50, tolerance_grad=0.0, tolerance_change=0.0,
                                 line_search_fn="strong_wolfe")
    raise ValueError(f"unknown optimizer {stage.optimizer!r}; use adam, adamw or lbfgs")


def _make_schedule(stage: Stage, optimizer) -> torch.optim.lr_scheduler.LRScheduler:
    if stage.schedule == "cosine" and stage.optimizer != "lbfgs":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(stage.steps, 1))
    if stage.schedule == "step" and stage.optimizer != "lbfgs":
        return torch.optim.lr_scheduler.StepLR(optimizer, max(stage.steps // 4, 1), gamma=0.5)
    if stage.schedule == "onecycle" and stage.optimizer != "lbfgs":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=stage.lr,
                                                   total_steps=max(stage.steps, 1))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)


def train(
    model: nn.Module,
    objective: Objective,
    stages: list[Stage],
    *,
    checkpoint: str | Path | None = None,
    resume: bool = False,
    seed: int = 0,
    dist_info: DistInfo | None = None,
    options: TrainOptions | None = None,
    log_file: str | Path | None = None,
) -> TrainResult:
    """Train ``model`` on ``objective`` through ``stages``; returns the loss history.

    Args:
        model: the module, already on ``dist_info.device``; trained in place.
        objective: see the module docstring.
        stages: optimiser phases run one after another.
        checkpoint: file for atomic checkpoints (model, optimiser, schedule, step, RNG, history).
        resume: continue from ``checkpoint`` if it exists; a finished run is not retrained.
        seed: seeds torch's global RNG (dropout etc.) at the start of training.
        dist_info: rank, world size and device; under ``torchrun`` the model is wrapped in
            DistributedDataParallel and each rank gets its share of every batch.
        options: logging, checkpointing and divergence settings.
        log_file: JSON-lines file receiving one record per logged step.

    Raises:
        DivergenceError: the loss became non-finite or grew ``divergence_factor`` times above its
            first value, or an update made a parameter non-finite. Nothing is checkpointed after
            that point.
    """
    info = dist_info or DistInfo()
    opts = options or TrainOptions()
    checkpoint = Path(checkpoint) if checkpoint is not None else None
    total_steps = sum(s.steps for s in stages)
    state = _initial_state(seed)
    if resume and checkpoint is not None and checkpoint.exists():
        state = load_checkpoint(checkpoint, map_location=info.device)
        model.load_state_dict(state["model"])
    if state.get("complete"):
        return _result(state)

    net = _wrap(model, info)
    torch.set_rng_state(state["rng"].cpu())
    log = _open_log(log_file, state["history"], info)
    bar = tqdm(total=total_steps, initial=state["step"], desc=opts.name, unit="step",
               disable=not (opts.progress and info.is_main), dynamic_ncols=True, leave=False)
    started = time.perf_counter() - state["seconds"]
    try:
        for index, stage in enumerate(stages):
            if index < state["stage"]:
                continue
            optimizer = _make_optimizer(stage, model.parameters())
            schedule = _make_schedule(stage, optimizer)
            cache = (_EvaluationCache(model) if stage.optimizer == "lbfgs"
                     and hasattr(objective, "changes_at") else None)
            if index == state["stage"] and state.get("optimizer") is not None:
                optimizer.load_state_dict(state["optimizer"])
                schedule.load_state_dict(state["schedule"])
            while state["stage_step"] < stage.steps:
                before = _values(model) if stage.optimizer == "lbfgs" else None
                loss, terms = _step(net, objective, optimizer, state["step"], info, cache)
                schedule.step()
                state["step"] += 1
                state["stage_step"] += 1
                _check_divergence(loss, state, opts)
                if before is not None and not _moved(model, before):
                    remaining = range(state["step"],
                                      state["step"] + stage.steps - state["stage_step"])
                    stalled = _stalled(optimizer, objective, remaining, state,
                                       f"{index}:{stage.optimizer}")
                    if stalled:  # the rest would be no-ops: skip them, so that the steps of
                        # later stages (and step-indexed schedules of the objective) stay put
                        bar.update(len(remaining))
                        state["step"], state["stage_step"] = remaining.stop, stage.steps
                last = state["stage_step"] == stage.steps
                saving = checkpoint is not None and state["step"] % opts.checkpoint_every == 0
                if saving or last:
                    # between checks, a poisoned parameter shows in the next step's loss
                    _check_parameters(model, state, opts)
                if state["step"] % opts.log_every == 0 or last:
                    record = {"step": state["step"], "stage": index, "loss": loss,
                              "lr": optimizer.param_groups[0]["lr"], **terms}
                    state["history"].append(record)
                    if log is not None:
                        log.write(json.dumps(record) + "\n")
                        log.flush()
                    bar.set_postfix(loss=f"{loss:.3e}")
                bar.update(1)
                state["seconds"] = time.perf_counter() - started
                if saving:
                    _save(checkpoint, model, optimizer, schedule, state, info)
            state["iterations"][f"{index}:{stage.optimizer}"] = _iterations(optimizer, stage)
            state.update(stage=index + 1, stage_step=0, optimizer=None, schedule=None)
        state["complete"] = True
        state["seconds"] = time.perf_counter() - started
        if checkpoint is not None:
            _save(checkpoint, model, None, None, state, info)
    finally:
        bar.close()
        if log is not None:
            log.close()
    return _result(state)


def _initial_state(seed: int) -> dict:
    generator_state = torch.Generator().manual_seed(seed).get_state()
    return {"step": 0, "stage": 0, "stage_step": 0, "history": [], "seconds": 0.0,
            "rng": generator_state, "iterations": {}, "complete": False,
            "optimizer": None, "schedule": None, "restarts": {}, "stalled": {}}


def _values(model: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters() if p.requires_grad]


def _moved(model: nn.Module, before: list[torch.Tensor]) -> bool:
    after = [p for p in model.parameters() if p.requires_grad]
    return any(not torch.equal(a.detach(), b) for a, b in zip(after, before))


def _stalled(optimizer, objective, remaining: range, state: dict, key: str) -> bool:
    """After an L-BFGS step that left every parameter as it was: whether to end the stage.

    Its line search found no decrease along the quasi-Newton direction, and as torch's L-BFGS
    learns nothing from a zero step it would repeat the same failed search forever (in float32
    near a minimum this is common). Restart from steepest descent by clearing the curvature
    memory. A stall right after a restart means that no direction the optimiser can take
    decreases the loss at this precision: every further iteration would be the same no-op, so
    the stage ends (``TrainResult.stalled``) -- if the objective declares (``changes_at``) that
    it stays the same function for the rest of the stage; otherwise a later batch may move it.
    Parameters are identical on every rank, so every rank decides the same."""
    lbfgs = next(iter(optimizer.state.values()), {})
    if lbfgs.get("old_dirs"):
        for name in ("old_dirs", "old_stps", "ro"):
            lbfgs[name].clear()
        lbfgs["H_diag"] = 1
        restarts = state.setdefault("restarts", {})
        restarts[key] = restarts.get(key, 0) + 1
        return False
    changes_at = getattr(objective, "changes_at", None)
    if changes_at is None or any(changes_at(step) for step in remaining):
        return False
    state.setdefault("stalled", {})[key] = state["step"]
    return True


def _wrap(model: nn.Module, info: DistInfo) -> nn.Module:
    if not info.distributed:
        return model
    device_ids = [info.device.index] if info.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


class _EvaluationCache:
    """The last and the lowest closure evaluations of an L-BFGS stage, keyed by the exact
    parameter (and buffer) values they were made at.

    ``torch.optim.LBFGS`` run one iteration per call evaluates the loss at the start of every
    call, at the point its previous line search has just evaluated: the closure looks that
    evaluation up here instead, which leaves the iterates bit for bit as they were and halves
    the cost of an iteration. A hit needs the same values exactly, so a changed parameter can
    never return a stale loss; a changed objective is ruled out by ``changes_at``.
    """

    def __init__(self, model: nn.Module):
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.buffers = list(model.buffers())
        self.entries: dict[str, tuple] = {}

    def _key(self) -> torch.Tensor:
        tensors = self.params + self.buffers
        return torch.cat([t.detach().reshape(-1).double() for t in tensors])

    def store(self, loss: torch.Tensor, returned: torch.Tensor, terms: dict) -> None:
        grads = [None if p.grad is None else p.grad.detach().clone() for p in self.params]
        entry = (self._key(), loss.detach(), returned.detach(), terms, grads)
        self.entries["last"] = entry
        best = self.entries.get("best")
        if best is None or float(entry[2]) <= float(best[2]):
            self.entries["best"] = entry

    def lookup(self):
        """``(loss, returned, terms)`` with the gradients restored, or ``None``."""
        if not self.entries:
            return None
        key = self._key()
        for entry in self.entries.values():
            if torch.equal(entry[0], key):
                for p, g in zip(self.params, entry[4]):
                    p.grad = None if g is None else g.clone()
                return entry[1], entry[2], entry[3]
        return None

    def clear(self) -> None:
        self.entries.clear()


def _step(net, objective: Objective, optimizer, step: int, info: DistInfo,
          cache: _EvaluationCache | None = None):
    batch = objective.batch(step, info.rank, info.world_size)
    captured: dict[str, Any] = {}
    if cache is not None and objective.changes_at(step):
        cache.clear()

    def closure():
        if cache is not None and "loss" not in captured:
            hit = cache.lookup()
            if hit is not None:
                captured["loss"], returned, captured["terms"] = hit
                return returned
        optimizer.zero_grad(set_to_none=True)
        loss, terms = objective.loss(net, batch)
        loss.backward()
        if "loss" not in captured:  # report the loss at the start of the step
            captured["loss"], captured["terms"] = loss.detach(), terms
        # The optimiser must see the loss whose gradient DDP averaged, the same on every rank:
        # L-BFGS's line search decides on it, and ranks that decided differently would run
        # different numbers of backward passes (mismatched collectives) and drift apart.
        returned = mean_across_ranks(loss.detach(), info) if info.distributed else loss
        if cache is not None:
            cache.store(loss, returned, terms)
        return returned

    optimizer.step(closure)
    loss = float(mean_across_ranks(captured["loss"], info))
    terms = {k: float(mean_across_ranks(v.detach(), info)) for k, v in captured["terms"].items()}
    return loss, terms


def _check_divergence(loss: float, state: dict, opts: TrainOptions) -> None:
    state.setdefault("first_loss", loss)
    first = state["first_loss"]
    exploded = abs(loss) > opts.divergence_factor * max(abs(first), 1e-12)
    if not math.isfinite(loss) or exploded:
        what = "not finite" if not math.isfinite(loss) else (
            f"{abs(loss):.3g}, over {opts.divergence_factor:g} times its first value {first:.3g}")
        raise DivergenceError(
            f"training of {opts.name!r} diverged at step {state['step']}: the loss is {what}; "
            "try a smaller learning rate"
        )


def _check_parameters(model: nn.Module, state: dict, opts: TrainOptions) -> None:
    # A finite loss can come with a NaN or infinite gradient (a square root or norm at zero);
    # the update then poisons the weights, which must not reach the next checkpoint.
    finite = [torch.isfinite(p).all() for p in model.parameters()]
    if not finite or bool(torch.stack(finite).all()):
        return
    name = next(n for n, p in model.named_parameters() if not torch.isfinite(p).all())
    raise DivergenceError(
        f"training of {opts.name!r} diverged at step {state['step']}: the update made parameter "
        f"{name!r} NaN or infinite (a non-finite gradient); try a smaller learning rate"
    )


def _iterations(optimizer, stage: Stage) -> int:
    if stage.optimizer == "lbfgs":
        states = list(optimizer.state.values())
        return int(states[0].get("n_iter", 0)) if states else 0
    return stage.steps


def _save(path: Path, model, optimizer, schedule, state: dict, info: DistInfo) -> None:
    if not info.is_main:
        return
    payload = {
        **{k: v for k, v in state.items() if k not in ("optimizer", "schedule", "rng")},
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "schedule": schedule.state_dict() if schedule is not None else None,
        "rng": torch.get_rng_state(),
        "scidl_version": scidl.__version__,
    }
    save_checkpoint(path, payload)


def _open_log(path, history: list[dict], info: DistInfo):
    if path is None or not info.is_main:
        return None
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    log = open(path, "w")  # rewritten from the checkpoint's history on resume
    for record in history:
        log.write(json.dumps(record) + "\n")
    return log


def _result(state: dict) -> TrainResult:
    return TrainResult(history=list(state["history"]), steps=state["step"],
                       seconds=float(state["seconds"]),
                       optimizer_iterations=dict(state["iterations"]),
                       stalled=dict(state.get("stalled", {})),
                       restarts=dict(state.get("restarts", {})))


def load_trained(model: nn.Module, path: str | Path) -> TrainResult:
    """Load the weights of a finished training run into ``model``; returns its history."""
    state = load_checkpoint(path)
    if not state.get("complete"):
        raise CheckpointError(
            f"checkpoint {str(path)!r} is from an unfinished run; resume it first"
        )
    model.load_state_dict(state["model"])
    return _result(state)


__all__ = ["Objective", "Stage", "TrainOptions", "TrainResult", "load_trained", "train"]
