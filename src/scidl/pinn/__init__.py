"""Physics-informed neural networks: the PDE's own residual as a loss."""

from scidl.pinn.network import SpaceTimeNetwork
from scidl.pinn.problem import LossWeights, PINNProblem

__all__ = ["LossWeights", "PINNProblem", "SpaceTimeNetwork"]
