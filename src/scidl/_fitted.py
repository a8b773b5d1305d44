"""Modules whose buffers are sized when they are fitted to data (a POD basis, normaliser
statistics), so that a checkpoint loads into a fresh, unfitted instance."""

from __future__ import annotations

import torch
from torch import nn


class FittedBuffersModule(nn.Module):
    """Before loading a state dict, resize the buffers named in ``fitted_buffers`` to the
    checkpoint's shapes (they start empty and ``fit`` replaces them)."""

    fitted_buffers: tuple[str, ...] = ()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name in self.fitted_buffers:
            if prefix + name in state_dict:
                setattr(self, name, torch.empty_like(state_dict[prefix + name]))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
