"""Fully connected networks for functions of coordinates (PINNs, DeepONet trunks)."""

from __future__ import annotations

import torch
from torch import nn

from scidl._shapes import check_ndim, check_size

ACTIVATIONS = {"tanh": nn.Tanh, "gelu": nn.GELU, "silu": nn.SiLU, "relu": nn.ReLU}


class MLP(nn.Module):
    """``hidden_layers`` hidden layers of ``width`` units, Xavier-initialised
    (Glorot & Bengio 2010).

    Args:
        in_features, out_features: sizes of input and output.
        width: units per hidden layer.
        hidden_layers: number of hidden layers.
        activation: one of ``tanh, gelu, silu, relu``.

    Shapes:
        input ``[P, in_features]`` -> output ``[P, out_features]``.
    """

    def __init__(self, in_features: int, out_features: int, width: int = 64,
                 hidden_layers: int = 4, activation: str = "tanh"):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        sizes = [in_features] + [width] * hidden_layers + [out_features]
        layers: list[nn.Module] = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            linear = nn.Linear(n_in, n_out)
            nn.init.xavier_normal_(linear.weight)
            nn.init.zeros_(linear.bias)
            layers.append(linear)
            if i < len(sizes) - 2:
                layers.append(ACTIVATIONS[activation]())
        self.net = nn.Sequential(*layers)
        self.in_features = in_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_ndim(x, (2,), "MLP input", "[P, in_features]")
        check_size(x, 1, self.in_features, "MLP input", "features")
        return self.net(x)
