"""Checkpoints written atomically and loaded with ``weights_only=True``."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from scidl._atomic import atomic_write
from scidl.errors import CheckpointError


def save_checkpoint(path: str | os.PathLike, state: dict) -> Path:
    """Write ``state`` to ``path`` so that ``path`` is always either the old or the new file.

    See :func:`scidl._atomic.atomic_write`: a crash never leaves a truncated checkpoint.
    """
    path = Path(path)
    with atomic_write(path) as tmp, open(tmp, "wb") as f:
        torch.save(state, f)
    return path


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """Load a checkpoint written by :func:`save_checkpoint` (tensors and plain values only)."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means the same to a user
        raise CheckpointError(f"checkpoint {str(path)!r} cannot be read ({err})") from None
