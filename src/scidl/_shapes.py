"""Shape checks used at public boundaries (one clear sentence on failure)."""

from __future__ import annotations

import torch

from scidl.errors import ShapeError


def check_ndim(tensor: torch.Tensor, allowed: tuple[int, ...], name: str, layout: str) -> None:
    """Raise ShapeError unless ``tensor.ndim`` is in ``allowed``; ``layout`` describes the shape."""
    if tensor.ndim not in allowed:
        raise ShapeError(
            f"{name} must have shape {layout}, got a tensor of shape {tuple(tensor.shape)}"
        )


def check_size(tensor: torch.Tensor, dim: int, size: int, name: str, what: str) -> None:
    """Raise ShapeError unless ``tensor.shape[dim] == size``."""
    if tensor.shape[dim] != size:
        raise ShapeError(
            f"{name} must have {size} {what} along dim {dim}, got shape {tuple(tensor.shape)}"
        )
