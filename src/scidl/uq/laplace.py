"""Last-layer Laplace approximation for regression (Daxberger et al. 2021, "Laplace Redux").

The trained network's last ``nn.Linear`` maps features ``phi(x)`` (its input, with a constant 1
appended for the bias) to outputs ``f_k = w_k^T phi``. With a Gaussian likelihood of noise
variance ``sigma_k^2`` per output and a prior ``w_k ~ N(0, I / lambda)``, the Hessian of the
negative log posterior in the last-layer weights is exact (the GGN of a linear map is its
Hessian) and the same for every sample of the weights:

    H_k = Phi^T Phi / sigma_k^2 + lambda I,      Sigma_k = H_k^{-1},

so the Laplace posterior around the trained weights is Bayesian linear regression on frozen
features (Bishop 2006, sec. 3.3). The predictive variance of output ``k`` is

    Var[y_k | x] = phi^T Sigma_k phi (epistemic) + sigma_k^2 (aleatoric).

``sigma_k^2`` is the mean squared training residual (or given); ``lambda`` maximises the Laplace
log marginal likelihood (Daxberger et al. eq. 3; MacKay 1992)

    log p(D | lambda) = sum_k [log p(D | w_k) + P/2 log lambda - lambda |w_k|^2 / 2
                               - 1/2 log det(Phi^T Phi / sigma_k^2 + lambda I)],

whose stationary point is MacKay's ``lambda = gamma / |w|^2`` with ``gamma = sum_j c_j / (c_j +
lambda)`` (``c_j`` the eigenvalues of ``Phi^T Phi / sigma_k^2``), solved here to machine
precision by root finding in ``log lambda`` (the objective has one maximum). When the
trained weights are the ridge solution for ``lambda``, this equals the closed-form evidence
of Bayesian linear regression.

Outputs are independent given the features and share the eigenbasis of ``Phi^T Phi``; a field
model whose last layer acts pointwise (an FNO projection) contributes one feature row per
output location.
"""

from __future__ import annotations

import math

import torch
from scipy.optimize import brentq
from torch import nn

from scidl.errors import ShapeError
from scidl.uq.prediction import Prediction


def find_last_linear(model: nn.Module) -> nn.Linear:
    """The last registered ``nn.Linear`` of ``model`` (the output layer of an MLP, FNO, ...)."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"{type(model).__name__} has no nn.Linear layer; pass last_layer=")
    return linears[-1]


class LastLayerLaplace:
    """Gaussian last-layer Laplace posterior of a trained regression model.

    Args:
        model: a trained network whose output is its last ``nn.Linear``'s output, up to a
            reshape or permutation (``movedim`` of channels, say).
        last_layer: that layer (default: the last registered ``nn.Linear``).
        prior_precision: ``lambda``; None (default) maximises the marginal likelihood in
            :meth:`fit`.
        noise_std: ``sigma``, one number or one per output ``[K]``; None (default) estimates
            it per output from the training residuals (``sigma_k^2 = RSS_k / M``).

    Shapes:
        ``fit(x, y)``: ``x`` the model's input ``[N, ...]``, ``y`` its output ``[N, *shape]``;
        ``predict(x)`` -> Prediction of ``[N, *shape]``. ``K`` outputs of the last layer, ``P``
        its inputs (+1 for the bias), ``M`` feature rows (``N`` times the locations where the
        layer is applied).
    """

    def __init__(self, model: nn.Module, last_layer: nn.Linear | None = None,
                 prior_precision: float | None = None,
                 noise_std: float | torch.Tensor | None = None):
        self.model = model
        self.last_layer = last_layer if last_layer is not None else find_last_linear(model)
        if not isinstance(self.last_layer, nn.Linear):
            raise ValueError(f"last_layer must be an nn.Linear, got "
                             f"{type(self.last_layer).__name__}")
        if prior_precision is not None and not prior_precision > 0:
            raise ValueError(f"prior_precision must be > 0, got {prior_precision}")
        self.prior_precision = prior_precision
        self._given_noise = noise_std
        self.noise_std: torch.Tensor | None = None
        self.n_observations = 0

    # ---- features --------------------------------------------------------------------------

    @property
    def weights(self) -> torch.Tensor:
        """Trained last-layer weights ``[K, P]`` (bias as the last column), float64."""
        layer = self.last_layer
        w = layer.weight.detach().to(torch.float64)
        if layer.bias is not None:
            w = torch.cat([w, layer.bias.detach().to(torch.float64)[:, None]], dim=1)
        return w

    @torch.no_grad()
    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Model output ``[N, *shape]``, features ``[M, P]`` (float64), and the layout
        ``[N, *shape]``: for each output element its flat index into the last layer's output
        ``[M, K]``."""
        captured: list[tuple[torch.Tensor, torch.Tensor]] = []
        handle = self.last_layer.register_forward_hook(
            lambda module, inputs, output: captured.append((inputs[0], output)))
        try:
            output = self.model(x)
        finally:
            handle.remove()
        if len(captured) != 1:
            raise ValueError(f"the last layer ran {len(captured)} times in one forward pass; "
                             "LastLayerLaplace needs it to run exactly once")
        phi, last = captured[0]
        phi = phi.reshape(-1, phi.shape[-1]).to(torch.float64)
        if self.last_layer.bias is not None:
            phi = torch.cat([phi, phi.new_ones(phi.shape[0], 1)], dim=1)
        if output.shape == last.shape and torch.equal(output, last):
            layout = torch.arange(last.numel(), device=x.device).reshape(last.shape)
        else:
            layout = self._layout(x, last, output)
        return output, phi, layout

    def _layout(self, x: torch.Tensor, last: torch.Tensor, output: torch.Tensor
                ) -> torch.Tensor:
        """Trace how the last layer's output elements land in the model's output: run the
        model again with that output replaced by its element indices."""
        if last.numel() != output.numel() or last.numel() >= 2 ** 24:
            raise ShapeError(f"the model's output {tuple(output.shape)} is not a reshape of its "
                             f"last layer's output {tuple(last.shape)} (or a batch is too large "
                             "to trace: use a smaller batch_size)")
        index = torch.arange(last.numel(), dtype=last.dtype, device=last.device)
        handle = self.last_layer.register_forward_hook(
            lambda module, inputs, out: index.reshape(out.shape))
        try:
            traced = self.model(x)
        finally:
            handle.remove()
        layout = traced.round().long()
        valid = (traced == layout.to(traced.dtype)).all() and torch.equal(
            layout.flatten().sort().values, torch.arange(last.numel(), device=last.device))
        if not valid or not torch.equal(last.flatten()[layout], output):
            raise ValueError("the model's output is not its last nn.Linear's output up to a "
                             "reshape or permutation (an activation or scaling follows it?); "
                             "pass the layer that produces the output as last_layer=")
        return layout

    # ---- fitting ---------------------------------------------------------------------------

    @torch.no_grad()
    def fit(self, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024) -> LastLayerLaplace:
        """Accumulate ``Phi^T Phi`` and the residuals over the training data, estimate
        ``sigma`` (unless given) and ``lambda`` (unless given); returns ``self``.

        Shapes:
            x ``[N, ...]`` (model input); y ``[N, *shape]``, the model's output shape (or the
            same number of elements per item, e.g. ``[N]`` for outputs ``[N, 1]``).
        """
        if x.shape[0] != y.shape[0]:
            raise ShapeError(f"x has {x.shape[0]} items, y has {y.shape[0]}")
        k = self.last_layer.out_features
        p = self.weights.shape[1]
        gram = torch.zeros(p, p, dtype=torch.float64, device=x.device)
        rss = torch.zeros(k, dtype=torch.float64, device=x.device)
        rows = 0
        training = self.model.training
        self.model.eval()
        try:
            for xb, yb in zip(x.split(batch_size), y.split(batch_size)):
                output, phi, layout = self._forward(xb)
                if yb.numel() != output.numel():
                    raise ShapeError(f"targets have {yb[0].numel()} elements per item, the "
                                     f"model's outputs {tuple(output.shape[1:])}")
                residual = yb.reshape(output.shape).to(torch.float64) - output.to(torch.float64)
                rss += torch.bincount((layout % k).flatten(), weights=residual.square().flatten(),
                                      minlength=k)
                gram += phi.T @ phi
                rows += phi.shape[0]
        finally:
            self.model.train(training)
        self.n_observations, self._rss = rows, rss
        if self._given_noise is None:
            variance = rss / rows
            if not bool((variance > 0).all()):
                raise ValueError("the model fits the training data exactly, so the noise cannot "
                                 "be estimated from residuals; pass noise_std=")
            self.noise_std = variance.sqrt()
        else:
            noise = torch.as_tensor(self._given_noise, dtype=torch.float64, device=x.device)
            self.noise_std = noise.expand(k).clone()
            if not bool((self.noise_std > 0).all()):
                raise ValueError(f"noise_std must be > 0, got {self._given_noise}")
        eigenvalues, self._eigenvectors = torch.linalg.eigh(gram)
        self._eigenvalues = eigenvalues.clamp_min(0.0)
        if self.prior_precision is None:
            self.prior_precision = self.optimize_prior_precision()
        return self

    def _check_fitted(self) -> None:
        if self.noise_std is None:
            raise RuntimeError("LastLayerLaplace used before fit(x, y)")

    def _curvatures(self) -> torch.Tensor:
        """``c_kj``: eigenvalues of ``Phi^T Phi / sigma_k^2``, ``[K, P]``."""
        return self._eigenvalues[None, :] / self.noise_std[:, None] ** 2

    def log_marginal_likelihood(self, prior_precision: float | None = None) -> float:
        """The Laplace log evidence ``log p(D | lambda, sigma)`` around the trained weights
        (default ``lambda``: the fitted one)."""
        self._check_fitted()
        lam = self.prior_precision if prior_precision is None else prior_precision
        curv, w, s2 = self._curvatures(), self.weights, self.noise_std ** 2
        p = w.shape[1]
        log_lik = -0.5 * (self.n_observations * torch.log(2 * math.pi * s2) + self._rss / s2)
        log_prior_det = 0.5 * p * math.log(lam) - 0.5 * lam * w.square().sum(1) \
            - 0.5 * torch.log(curv + lam).sum(1)
        return float((log_lik + log_prior_det).sum())

    def optimize_prior_precision(self) -> float:
        """The ``lambda`` maximising :meth:`log_marginal_likelihood`: the root of
        ``sum_k gamma_k(lambda) / lambda = sum_k |w_k|^2`` (MacKay's fixed point)."""
        self._check_fitted()
        curv, norm = self._curvatures(), float(self.weights.square().sum())
        if norm == 0 or float(curv.max()) == 0:
            raise ValueError("cannot optimise the prior precision: the last-layer weights or "
                             "the features are all zero; pass prior_precision=")

        def excess(log_lam: float) -> float:  # log(gamma / lambda) - log |w|^2, decreasing
            lam = math.exp(log_lam)
            gamma = float((curv / (curv + lam)).sum())
            return math.log(gamma) - log_lam - math.log(norm)

        lo, hi = -60.0, 60.0
        if not excess(lo) > 0 > excess(hi):
            raise ValueError("the marginal likelihood has no maximum for lambda in "
                             "[1e-26, 1e26]; pass prior_precision=")
        return math.exp(brentq(excess, lo, hi, xtol=1e-12, rtol=1e-12))

    @property
    def posterior_covariance(self) -> torch.Tensor:
        """``Sigma_k = (Phi^T Phi / sigma_k^2 + lambda I)^{-1}``, ``[K, P, P]`` float64."""
        self._check_fitted()
        v = self._eigenvectors
        return torch.einsum("ij,kj,lj->kil", v, 1.0 / (self._curvatures() + self.prior_precision),
                            v)

    # ---- prediction ------------------------------------------------------------------------

    @torch.no_grad()
    def predict(self, x: torch.Tensor, batch_size: int = 1024) -> Prediction:
        """Predictive mean (the network's output) and std with its epistemic and aleatoric
        parts, each ``[N, *shape]`` in the output's dtype."""
        self._check_fitted()
        inverse = 1.0 / (self._curvatures() + self.prior_precision)  # [K, P]
        k = inverse.shape[0]
        training = self.model.training
        self.model.eval()
        parts = []
        try:
            for xb in x.split(batch_size):
                output, phi, layout = self._forward(xb)
                z = phi @ self._eigenvectors  # features in the eigenbasis, [M, P]
                epistemic = (z.square() @ inverse.T).flatten()[layout]  # [N, *shape]
                aleatoric = (self.noise_std ** 2)[layout % k]
                parts.append(Prediction(
                    mean=output, std=(epistemic + aleatoric).sqrt().to(output.dtype),
                    aleatoric_std=aleatoric.sqrt().to(output.dtype),
                    epistemic_std=epistemic.sqrt().to(output.dtype)))
        finally:
            self.model.train(training)
        return Prediction.cat(parts)
