"""What every benchmark records next to its numbers: the machine, versions and date."""

from __future__ import annotations

import copy
import datetime
import json
import os
import platform
import resource
import time
from pathlib import Path

import numpy as np
import scipy
import torch


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(**extra) -> dict:
    return {
        "platform": platform.platform(),
        "processor": cpu_name(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "torch_threads": torch.get_num_threads(),
        **extra,
    }


def cpu_seconds() -> float:
    """CPU seconds (user + system) of this process and of its finished children (e.g. the C++
    compiler ``torch.compile`` runs). On a shared machine this is what a computation costs,
    whatever else runs beside it; wall time is not."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def calibrated_steps(model, objective, minutes: float, lr: float, probe: int = 30) -> int:
    """Optimiser steps that fit ``minutes`` of wall time, timed on a throwaway copy."""
    scratch = copy.deepcopy(model)
    opt = torch.optim.Adam(scratch.parameters(), lr=lr)
    for i in range(probe + 2):
        if i == 2:
            t0 = time.perf_counter()
        loss, _ = objective.loss(scratch, objective.batch(i))
        opt.zero_grad()
        loss.backward()
        opt.step()
    per_step = (time.perf_counter() - t0) / probe
    return max(1, int(60 * minutes / per_step))


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def arguments(args) -> dict:
    """A script's parsed command-line arguments, as JSON can hold them (paths as strings)."""
    return {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}


def write_result(path: str | Path, result: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path
