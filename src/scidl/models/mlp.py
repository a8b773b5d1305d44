"""Fully connected networks for functions of coordinates (PINNs, DeepONet trunks)."""

from __future__ import annotations

import math

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

    def jet(self, jet):
        """Forward-mode derivatives (see :mod:`scidl.pinn.jet`)."""
        from scidl.pinn.jet import jet_forward

        return jet_forward(self.net, jet)


class Sine(nn.Module):
    """``sin(omega_0 z)``, the SIREN activation (Sitzmann et al., NeurIPS 2020)."""

    def __init__(self, omega_0: float = 30.0):
        super().__init__()
        self.omega_0 = float(omega_0)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sin(self.omega_0 * z)

    def jet(self, jet):
        w = self.omega_0
        s, c = torch.sin(w * jet.value), torch.cos(w * jet.value)
        return jet.apply(s, w * c, -w * w * s)


class SIREN(nn.Module):
    """A sine network (Sitzmann et al. 2020): ``sin(omega_0 (W x + b))`` layers with their
    initialisation, first layer ``U(-1/n, 1/n)``, later ones ``U(-sqrt(6/n)/omega_0, ...)``, so
    activations stay distributed the same way through depth.

    Shapes:
        ``[P, in_features] -> [P, out_features]``.
    """

    def __init__(self, in_features: int, out_features: int, width: int = 64,
                 hidden_layers: int = 4, omega_0: float = 30.0):
        super().__init__()
        sizes = [in_features] + [width] * hidden_layers + [out_features]
        layers: list[nn.Module] = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            linear = nn.Linear(n_in, n_out)
            bound = 1.0 / n_in if i == 0 else math.sqrt(6.0 / n_in) / omega_0
            nn.init.uniform_(linear.weight, -bound, bound)
            nn.init.uniform_(linear.bias, -bound, bound)
            layers.append(linear)
            if i < len(sizes) - 2:
                layers.append(Sine(omega_0))
        self.net = nn.Sequential(*layers)
        self.in_features = in_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_ndim(x, (2,), "SIREN input", "[P, in_features]")
        check_size(x, 1, self.in_features, "SIREN input", "features")
        return self.net(x)

    def jet(self, jet):
        from scidl.pinn.jet import jet_forward

        return jet_forward(self.net, jet)


class FourierFeatures(nn.Module):
    """Random Fourier features ``[cos 2 pi B x, sin 2 pi B x]`` with a fixed Gaussian
    ``B ~ N(0, sigma^2)`` of shape ``[features, in_features]`` (Tancik et al., NeurIPS 2020;
    Wang, Wang & Perdikaris 2021 for PINNs): they let a network fit high frequencies that plain
    MLPs learn only slowly (spectral bias). ``B`` is a buffer, not trained.

    Args:
        include_input: also pass ``x`` itself through (output ``2 features + in_features``).

    Shapes:
        ``[P, in_features] -> [P, out_features]``.
    """

    def __init__(self, in_features: int, features: int = 64, sigma: float = 1.0, seed: int = 0,
                 include_input: bool = True):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.register_buffer("B", sigma * torch.randn(features, in_features, generator=generator))
        self.include_input = include_input
        self.out_features = 2 * features + (in_features if include_input else 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        phase = 2 * math.pi * x @ self.B.to(x.dtype).t()
        parts = [torch.cos(phase), torch.sin(phase)] + ([x] if self.include_input else [])
        return torch.cat(parts, dim=-1)

    def jet(self, jet):
        from scidl.pinn.jet import Jet, elementwise

        phase = jet.map(lambda v: 2 * math.pi * v @ self.B.to(v.dtype).t())
        parts = [elementwise(phase, "cos"), elementwise(phase, "sin")]
        return Jet.cat(parts + ([jet] if self.include_input else []))
