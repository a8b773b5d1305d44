"""scidl: scientific deep learning on PyTorch.

Physics is written once, as a right-hand side over derivative operators, and serves solvers,
PINNs, physics-informed operators and checks alike.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("scidl")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
