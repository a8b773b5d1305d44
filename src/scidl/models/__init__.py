"""Models: one registry maps config names to classes."""

from torch import nn

from scidl.models.deeponet import DeepONet, PODDeepONet
from scidl.models.dynamics import (
    DerivativeMatching,
    HamiltonianNN,
    NeuralODE,
    TrajectoryMatching,
    finite_difference_pairs,
)
from scidl.models.fno import FNO1d, SpectralConv1d
from scidl.models.fno_nd import FNO, SpectralConv
from scidl.models.mlp import MLP
from scidl.models.unet import ResNetCNN, UNet

#: config name -> model class
MODELS: dict[str, type[nn.Module]] = {
    "fno1d": FNO1d, "fno": FNO, "deeponet": DeepONet, "pod_deeponet": PODDeepONet, "mlp": MLP,
    "unet": UNet, "resnet_cnn": ResNetCNN, "neural_ode": NeuralODE, "hnn": HamiltonianNN,
}


def build_model(name: str, **kwargs) -> nn.Module:
    """Instantiate a registered model, e.g. ``build_model("fno1d", modes=16, width=32)``."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known: {sorted(MODELS)}")
    return MODELS[name](**kwargs)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable real scalars."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = [
    "DeepONet",
    "DerivativeMatching",
    "FNO",
    "FNO1d",
    "HamiltonianNN",
    "MLP",
    "MODELS",
    "NeuralODE",
    "PODDeepONet",
    "ResNetCNN",
    "SpectralConv",
    "SpectralConv1d",
    "TrajectoryMatching",
    "UNet",
    "build_model",
    "count_parameters",
    "finite_difference_pairs",
]
