"""Shared test fixtures: reference data location and a tiny end-to-end config."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    """``$SCIDL_DATA`` if set and present, else ``../shared/data`` beside the repo, else None."""
    candidates = [os.environ.get("SCIDL_DATA"), REPO.parent / "shared" / "data"]
    for candidate in candidates:
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


@pytest.fixture
def shared_data() -> Path:
    """The read-only reference datasets; tests using it skip when they are absent."""
    root = shared_data_dir()
    if root is None:
        pytest.skip(
            "reference data not found: set SCIDL_DATA or place ../shared/data beside the repo"
        )
    return root


TINY_CONFIG = {
    "name": "tiny",
    "seed": 0,
    "device": "cpu",
    "data": {"resolution": 32, "solver_resolution": 64, "dt": 0.01, "n_train": 16, "n_test": 4},
    "models": {
        "fno": {
            "kind": "operator",
            "model": {"modes": 6, "width": 8, "layers": 2},
            "training": {"batch_size": 4, "stages": [{"steps": 30, "lr": 0.003}],
                         "log_every": 5, "checkpoint_every": 10},
        },
        "pinn": {
            "kind": "pinn",
            "network": {"width": 8, "hidden_layers": 2},
            "collocation": 64,
            "training": {"stages": [{"steps": 20}, {"optimizer": "lbfgs", "steps": 5, "lr": 1.0}],
                         "log_every": 5, "checkpoint_every": 10},
        },
    },
}


@pytest.fixture
def tiny_config(tmp_path) -> Path:
    """A config file for a run that takes a few seconds: 20 small trajectories, FNO and PINN."""
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY_CONFIG, sort_keys=False))
    return path


@pytest.fixture(autouse=True, scope="session")
def single_thread():
    """The tests' problems are small; on a shared 2-core machine extra OpenMP threads mostly
    wait for a busy core (a batched FFT can take milliseconds instead of microseconds)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
