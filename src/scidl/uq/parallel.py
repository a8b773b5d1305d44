"""Scale uncertainty workloads out over Ray: ensemble members, conformal re-splits and sweeps.

Every task here is a picklable function of keyword arguments that returns a picklable result
(tensors on the CPU). :func:`run_tasks` runs a list of them either one after another in this
process (``backend="sequential"``) or as Ray remote tasks (``backend="ray"``), and returns the
results in the order of the list. Both backends run a task the same way -- with torch limited to
``num_cpus`` threads and the global random generators (torch, numpy, ``random``) seeded from the
task's index -- so a task that seeds what it draws from its arguments gives bit-for-bit the same
result on either backend (on the same kind of CPU), which the tests check.

Ray is an optional dependency (``pip install 'scidl[ray]'``); it is imported only when the Ray
backend is asked for. ``ray_address`` connects to an existing cluster (``"auto"`` for the one
this machine belongs to, ``"ray://host:10001"`` through Ray Client, which needs
``ray[client]``); without it, a local instance is started with ``num_workers`` CPUs. An
instance that is already initialised in this process is reused as it is; one started here is
left running for the next call (Ray shuts it down when the process exits; ``ray.shutdown()``
does it sooner).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

BACKENDS = ("sequential", "ray")

INSTALL_HINT = "pip install 'scidl[ray]'"


class RayUnavailableError(ImportError):
    """The Ray backend was asked for but Ray cannot be imported."""


def import_ray():
    """The ``ray`` module, or a :class:`RayUnavailableError` that says how to install it."""
    try:
        import ray
    except ImportError as err:
        raise RayUnavailableError(
            f"backend='ray' needs Ray, which is not installed ({err}); install it with "
            f"{INSTALL_HINT} (or pip install 'ray>=2.9'), or use backend='sequential'"
        ) from err
    return ray


def _run_task(fn: Callable[..., Any], kwargs: Mapping[str, Any], common: Mapping[str, Any],
              index: int, threads: int) -> Any:
    """``fn(**common, **kwargs)`` with ``threads`` torch threads and the global generators
    seeded from ``index``; the caller's thread count and generator states are restored."""
    # numpy's legacy global generator is seeded on purpose: code that draws from it (rather
    # than from a Generator of its own) gets the same numbers on either backend.
    saved_threads = torch.get_num_threads()
    saved_python, saved_numpy = random.getstate(), np.random.get_state()  # noqa: NPY002
    torch.set_num_threads(threads)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(index)
            random.seed(index)
            np.random.seed(index)  # noqa: NPY002
            return fn(**common, **kwargs)
    finally:
        torch.set_num_threads(saved_threads)
        random.setstate(saved_python)
        np.random.set_state(saved_numpy)  # noqa: NPY002


def _ensure_ray(ray_address: str | None, num_workers: int | None):
    ray = import_ray()
    if not ray.is_initialized():
        if ray_address:
            ray.init(address=ray_address, logging_level="WARNING")
        else:
            ray.init(num_cpus=num_workers, include_dashboard=False, logging_level="WARNING")
    return ray


def run_tasks(fn: Callable[..., Any], kwargs_list: Sequence[Mapping[str, Any]], *,
              common: Mapping[str, Any] | None = None, backend: str = "sequential",
              ray_address: str | None = None, num_cpus: int = 1,
              num_workers: int | None = None) -> list[Any]:
    """``[fn(**common, **kwargs) for kwargs in kwargs_list]``, in process or as Ray tasks.

    Args:
        fn: a picklable function (module level, or defined in the script being run).
        kwargs_list: one dict of keyword arguments per task.
        common: keyword arguments shared by every task (e.g. the training data); with Ray they
            are put in the object store once instead of being sent with every task.
        backend: ``"sequential"`` or ``"ray"``.
        ray_address: an existing Ray cluster (``"auto"``, ``"ray://host:port"``); None starts
            a local instance unless one is already initialised.
        num_cpus: CPUs (and torch threads) per task.
        num_workers: CPUs of a local Ray instance started here (None: all of this machine's).

    Returns:
        The results, in the order of ``kwargs_list``.

    Raises:
        RayUnavailableError: ``backend="ray"`` without Ray installed.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if num_cpus < 1 or (num_workers is not None and num_workers < 1):
        raise ValueError(f"num_cpus and num_workers must be at least 1, got {num_cpus} and "
                         f"{num_workers}")
    common = dict(common or {})
    overlap = [sorted(set(common) & set(kwargs)) for kwargs in kwargs_list]
    clashes = sorted({key for keys in overlap for key in keys})
    if clashes:
        raise ValueError(f"keyword(s) {clashes} are given both in common and per task")
    if backend == "sequential":
        return [_run_task(fn, kwargs, common, index, num_cpus)
                for index, kwargs in enumerate(kwargs_list)]
    ray = _ensure_ray(ray_address, num_workers)
    remote = ray.remote(num_cpus=num_cpus)(_run_task)
    fn_ref, common_ref = ray.put(fn), ray.put(common)
    # Object references passed as top-level arguments are resolved in the worker.
    futures = [remote.remote(fn_ref, dict(kwargs), common_ref, index, num_cpus)
               for index, kwargs in enumerate(kwargs_list)]
    return ray.get(futures)


def train_ensemble_members(train_member: Callable[..., Mapping[str, torch.Tensor]],
                           seeds: Sequence[int], *, common: Mapping[str, Any] | None = None,
                           backend: str = "sequential", ray_address: str | None = None,
                           num_cpus: int = 1,
                           num_workers: int | None = None) -> list[dict[str, torch.Tensor]]:
    """Train one ensemble member per seed: ``train_member(seed=s, **common)`` returns the
    member's ``state_dict``. Returns them in the order of ``seeds``, on the CPU; load each into
    a fresh model to predict (e.g. through :meth:`scidl.uq.Prediction.from_samples`)."""
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"ensemble members need distinct seeds, got {list(seeds)}")
    states = run_tasks(train_member, [{"seed": int(seed)} for seed in seeds], common=common,
                       backend=backend, ray_address=ray_address, num_cpus=num_cpus,
                       num_workers=num_workers)
    members = []
    for seed, state in zip(seeds, states):
        if not isinstance(state, Mapping) or not all(
                isinstance(v, torch.Tensor) for v in state.values()):
            raise TypeError(f"train_member(seed={seed}) must return a state_dict (a mapping "
                            f"of names to tensors), got {type(state).__name__}")
        members.append({name: value.detach().cpu() for name, value in state.items()})
    return members


def sweep(fn: Callable[..., Any], grid: Mapping[str, Sequence[Any]], *,
          common: Mapping[str, Any] | None = None, backend: str = "sequential",
          ray_address: str | None = None, num_cpus: int = 1,
          num_workers: int | None = None) -> list[dict[str, Any]]:
    """Run ``fn(**params, **common)`` for every point of the Cartesian product of ``grid``.

    Args:
        grid: hyper-parameter name -> the values to try (the last name varies fastest).

    Returns:
        ``[{"params": params, "result": result}, ...]`` in the order of the product.
    """
    if not grid:
        raise ValueError("sweep needs a grid with at least one hyper-parameter")
    for name, values in grid.items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
            raise ValueError(f"grid[{name!r}] must be a non-empty list of values, got {values!r}")
    names = list(grid)
    points = [dict(zip(names, values)) for values in itertools.product(*grid.values())]
    results = run_tasks(fn, points, common=common, backend=backend, ray_address=ray_address,
                        num_cpus=num_cpus, num_workers=num_workers)
    return [{"params": point, "result": result} for point, result in zip(points, results)]


def conformal_runs(fn: Callable[..., Any], seeds: Sequence[int], *,
                   common: Mapping[str, Any] | None = None, backend: str = "sequential",
                   ray_address: str | None = None, num_cpus: int = 1,
                   num_workers: int | None = None) -> list[Any]:
    """Repeat a conformal calibration over random calibration/test re-splits:
    ``fn(seed=s, **common)`` draws its split from ``s``, calibrates and returns what it
    measured (e.g. the test coverage and interval width). Returns the results in the order of
    ``seeds``; their spread is the split-to-split variability of the calibration."""
    return run_tasks(fn, [{"seed": int(seed)} for seed in seeds], common=common,
                     backend=backend, ray_address=ray_address, num_cpus=num_cpus,
                     num_workers=num_workers)
