"""Spectral normalisation of neural operators and CNNs, a stabiliser of long rollouts.

A one-step model whose layers are contractions cannot amplify perturbations without bound
(Miyato et al. 2018 introduced spectral normalisation for GAN discriminators; for learned
dynamics it bounds the growth of rollout errors layer by layer). :func:`apply_spectral_norm`

* applies :func:`torch.nn.utils.parametrizations.spectral_norm` to every real ``nn.Linear``
  and ``nn.Conv1d/2d/3d`` (the weight reshaped to ``[out, in * kernel]`` gets operator norm
  1, estimated by power iteration);
* bounds the complex spectral weights of every :class:`scidl.models.fno_nd.SpectralConv`
  mode by mode: the ``[in, out]`` matrix ``W_k`` of each kept Fourier mode is rescaled to
  ``W_k / max(1, sigma_k)`` with ``sigma_k`` its largest singular value from a batched
  complex power iteration (:class:`ModeSpectralNorm`), so every mode's operator norm is at most 1
  and modes that are already contractive are left alone.

Power iteration runs ``n_power_iterations`` times per forward pass in training mode (its
vectors are buffers, carried in the state dict); :func:`tighten_spectral_norm` runs many more
(e.g. before evaluation or a check), after which the estimates agree with
``torch.linalg.matrix_norm(ord=2)`` to high accuracy. Norm layers (GroupNorm) and activations
are not touched: only the linear maps are bounded.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

from scidl.models.fno_nd import SpectralConv

_REAL = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def _normalize(x: torch.Tensor, dim: int = -1, eps: float = 1e-12) -> torch.Tensor:
    return x / torch.linalg.vector_norm(x, dim=dim, keepdim=True).clamp_min(eps)


class ModeSpectralNorm(nn.Module):
    """Parametrization of a dense :class:`SpectralConv` weight (real ``[in, out, *K, 2]``,
    the trailing 2 the real and imaginary parts) that caps the operator norm of each mode's
    complex ``[in, out]`` matrix at 1: ``W_k -> W_k / max(1, sigma_k)``.

    ``sigma_k = Re(u_k^H W_k v_k)`` with ``u_k, v_k`` left and right singular vector estimates
    updated by power iteration (without gradient) in training mode; the gradient flows through
    ``sigma_k`` as in :func:`torch.nn.utils.parametrizations.spectral_norm`.
    """

    def __init__(self, weight: torch.Tensor, n_power_iterations: int = 1,
                 initial_iterations: int = 30):
        super().__init__()
        if weight.ndim < 4 or weight.shape[-1] != 2:
            raise ValueError(f"expected a real [in, out, *K, 2] spectral weight, got "
                             f"{tuple(weight.shape)}")
        if n_power_iterations < 1:
            raise ValueError(f"n_power_iterations must be positive, got {n_power_iterations}")
        self.n_power_iterations = n_power_iterations
        n_in, n_out = weight.shape[:2]
        modes = weight[0, 0, ..., 0].numel()
        g = torch.Generator().manual_seed(0)
        u = _normalize(torch.view_as_complex(torch.randn(modes, n_in, 2, generator=g)))
        v = _normalize(torch.view_as_complex(torch.randn(modes, n_out, 2, generator=g)))
        # stored as real views so that .double() / .to() move them with the weight
        self.register_buffer("_u", torch.view_as_real(u).to(weight.dtype))
        self.register_buffer("_v", torch.view_as_real(v).to(weight.dtype))
        with torch.no_grad():
            self._power_method(self._matrices(weight), initial_iterations)

    @staticmethod
    def _matrices(weight: torch.Tensor) -> torch.Tensor:
        """``[in, out, *K, 2]`` real -> ``[K, in, out]`` complex."""
        w = torch.view_as_complex(weight.contiguous())
        return w.reshape(w.shape[0], w.shape[1], -1).permute(2, 0, 1)

    @torch.no_grad()
    def _power_method(self, mats: torch.Tensor, iterations: int) -> None:
        u = torch.view_as_complex(self._u)
        v = torch.view_as_complex(self._v)
        for _ in range(iterations):
            v = _normalize(torch.einsum("kio,ki->ko", mats.conj(), u))  # W^H u
            u = _normalize(torch.einsum("kio,ko->ki", mats, v))  # W v
        self._u.copy_(torch.view_as_real(u))
        self._v.copy_(torch.view_as_real(v))

    def sigma(self, weight: torch.Tensor) -> torch.Tensor:
        """Current estimates ``[K]`` of every mode's largest singular value."""
        mats = self._matrices(weight)
        u = torch.view_as_complex(self._u).to(mats.dtype)
        v = torch.view_as_complex(self._v).to(mats.dtype)
        return torch.einsum("ki,kio,ko->k", u.conj(), mats, v).real

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        if self.training:
            self._power_method(self._matrices(weight.detach()), self.n_power_iterations)
        scale = self.sigma(weight).clamp_min(1.0)  # [K]
        shape = [1, 1, *weight.shape[2:-1], 1]
        return weight / scale.reshape(shape)


def apply_spectral_norm(model: nn.Module, *, n_power_iterations: int = 1,
                        real: bool = True, spectral: bool = True,
                        exclude: tuple[str, ...] = ()) -> nn.Module:
    """Bound the operator norm of every linear map of ``model`` (in place; returns it).

    Args:
        model: e.g. :class:`scidl.models.FNO` or :class:`scidl.models.unet.UNet`.
        n_power_iterations: power-iteration steps per training forward pass.
        real: normalise ``nn.Linear`` / ``nn.ConvNd`` weights (torch's ``spectral_norm``).
        spectral: cap the per-mode norms of dense :class:`SpectralConv` weights.
        exclude: names (or name prefixes) of submodules to leave alone, e.g. ``("project",)``
            to keep an unconstrained output layer.

    Raises:
        ValueError: a factorised (CP / Tucker) spectral weight, which this does not bound.
    """
    for name, module in list(model.named_modules()):
        if any(name == e or name.startswith(e + ".") for e in exclude):
            continue
        if parametrize.is_parametrized(module):
            continue
        if real and isinstance(module, _REAL):
            spectral_norm(module, n_power_iterations=n_power_iterations)
        elif spectral and isinstance(module, SpectralConv):
            if module.factorization != "dense":
                raise ValueError(f"spectral normalisation of the {module.factorization!r}-"
                                 f"factorised spectral weights of {name!r} is not supported; "
                                 "use factorization='dense'")
            parametrize.register_parametrization(
                module, "weight", ModeSpectralNorm(module.weight.detach(), n_power_iterations))
    return model


@torch.no_grad()
def tighten_spectral_norm(model: nn.Module, iterations: int = 200) -> nn.Module:
    """Run ``iterations`` more power-iteration steps on every spectral-norm parametrization of
    ``model`` (torch's and :class:`ModeSpectralNorm`), so the normalised weights have operator
    norm 1 (resp. at most 1) to within the convergence of power iteration. Restores the
    model's train/eval mode."""
    was_training = model.training
    for module in model.modules():
        if not parametrize.is_parametrized(module):
            continue
        for pname, plist in module.parametrizations.items():
            for p in plist:
                if isinstance(p, ModeSpectralNorm):
                    p._power_method(p._matrices(plist.original), iterations)
                elif type(p).__name__ == "_SpectralNorm":
                    p.train()
                    for _ in range(max(1, iterations // max(p.n_power_iterations, 1))):
                        getattr(module, pname)  # one forward of the parametrization iterates
    model.train(was_training)
    return model


def layer_operator_norms(model: nn.Module) -> dict[str, float]:
    """Exact operator norms of the (parametrized) linear maps of ``model``, from
    ``torch.linalg.matrix_norm(ord=2)``: the weight of each ``nn.Linear`` / ``nn.ConvNd``
    reshaped to ``[out, in * kernel]`` (the matrix spectral normalisation bounds) and the
    largest over modes of each :class:`SpectralConv`. For checks and reports."""
    out: dict[str, float] = {}
    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, _REAL):
                w = module.weight
                out[name] = float(torch.linalg.matrix_norm(w.reshape(w.shape[0], -1), ord=2))
            elif isinstance(module, SpectralConv):
                weight = torch.view_as_real(module.full_weight().detach())
                mats = ModeSpectralNorm._matrices(weight)
                out[name] = float(torch.linalg.matrix_norm(mats, ord=2).max())
    return out


__all__ = ["ModeSpectralNorm", "apply_spectral_norm", "layer_operator_norms",
           "tighten_spectral_norm"]
