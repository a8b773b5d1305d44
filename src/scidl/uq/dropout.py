"""Monte Carlo dropout (Gal & Ghahramani, "Dropout as a Bayesian Approximation: Representing
Model Uncertainty in Deep Learning", ICML 2016).

A network trained with dropout and L2 weight decay is a variational approximation of a deep
Gaussian process; keeping dropout on at test time samples its approximate posterior. The
predictive distribution is the mixture of ``T`` stochastic passes, each widened by the model
precision ``tau`` (the inverse observation-noise variance): mean ``mean_t f_t(x)``, variance
``var_t f_t(x) + 1 / tau``, and test log-likelihood
``logsumexp_t(-tau (y - f_t)^2 / 2) - log T - log(2 pi) / 2 + log(tau) / 2`` (section 4 of
the paper, "Obtaining model uncertainty").

UCI recipe (:func:`fit_mc_dropout`, :func:`mc_dropout_grid_search`), from the code behind the
paper's regression table, github.com/yaringal/DropoutUncertaintyExps (``net/net.py``,
``experiment.py``):

* inputs and targets standardised on the data the network is fitted on (zero-variance
  features keep scale 1);
* dropout with rate ``p`` on the input and before every linear layer (the output layer too),
  ReLU hidden layers, Glorot-uniform weights and zero biases (Keras defaults);
* loss: mean squared error on the standardised targets plus ``reg * sum ||W||^2`` over the
  weight matrices (not biases), ``reg = l^2 (1 - p) / (2 N tau)`` (:func:`gal_weight_decay`;
  the 2016 code writes ``(1 - p) / (2 N L^2 tau)`` with ``L = 1 / l``), ``N`` the number of
  training points, ``tau`` as given (in target units, though the network sees standardised
  targets -- as in the code);
* Adam (lr 1e-3, Keras' defaults), batch size 32 and 400 epochs: the 2016 repository
  (commit 0eeeb7f) trains ``n_epochs.txt x 10`` epochs at batch 32; with 40 epochs our
  networks are far from converged on the small sets (yacht RMSE 6.5 instead of 1.1), with 400
  they reproduce the paper's Table 1 (see benchmarks/uq_uci.py);
* hyperparameters: the paper took ``p`` per dataset and ``tau`` from Bayesian optimisation
  (those values are in benchmarks/uq_uci.py); :func:`mc_dropout_grid_search` is the
  repository's later grid search (``experiment.py`` at HEAD): every ``(p, tau)`` of
  ``dropout_rates.txt x tau_values.txt`` fitted on the first 80 % of the training rows, the one
  with the best MC log-likelihood on the last 20 % kept (not refitted on all rows, as there);
  the repository used batch 128 there;
* predictions: ``T = 10,000`` stochastic passes in the original units.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from scidl.errors import ShapeError
from scidl.models.mlp import ACTIVATIONS
from scidl.uq.ensemble import VectorizedEnsemble, standardization, train_members
from scidl.uq.prediction import Prediction


class RateDropout(nn.Dropout):
    """``nn.Dropout`` whose rate is a buffer, so that members of a
    :class:`~scidl.uq.ensemble.VectorizedEnsemble` can drop at different rates (a grid search
    trained in one vectorised loop). Same semantics: zero with probability ``p``, scale the
    rest by ``1 / (1 - p)``, identity in eval mode."""

    def __init__(self, p: float = 0.5):
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout rate must be in [0, 1), got {p}")
        super().__init__(p)
        self.register_buffer("rate", torch.tensor(float(p)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        keep = (torch.rand_like(x) >= self.rate).to(x.dtype)
        return x * keep / (1.0 - self.rate)


class DropoutMLP(nn.Module):
    """MLP with dropout before every linear layer, as in Gal's UCI networks.

    ``Dropout(p) -> Linear -> act`` for each of the ``hidden_layers`` hidden layers, then
    ``Dropout(p) -> Linear`` to the output. Glorot-uniform weights, zero biases.

    Shapes:
        input ``[N, in_features]`` -> output ``[N, out_features]``.
    """

    def __init__(self, in_features: int, out_features: int, width: int = 50,
                 hidden_layers: int = 1, p: float = 0.05, activation: str = "relu"):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got "
                             f"{activation!r}")
        sizes = [in_features] + [width] * hidden_layers + [out_features]
        layers: list[nn.Module] = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            linear = nn.Linear(n_in, n_out)
            nn.init.xavier_uniform_(linear.weight)
            nn.init.zeros_(linear.bias)
            layers += [RateDropout(p), linear]
            if i < len(sizes) - 2:
                layers.append(ACTIVATIONS[activation]())
        self.net = nn.Sequential(*layers)
        self.in_features, self.p = in_features, p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ShapeError(f"DropoutMLP input must be [N, {self.in_features}], got "
                             f"{tuple(x.shape)}")
        return self.net(x)


_DROPOUT_TYPES = (nn.modules.dropout._DropoutNd,)


class Standardized(nn.Module):
    """``model`` on standardised inputs, its output mapped back to target units:
    ``model((x - x_mean) / x_std) * y_std + y_mean``."""

    def __init__(self, model: nn.Module, x_mean, x_std, y_mean, y_std):
        super().__init__()
        self.model = model
        for name, value in (("x_mean", x_mean), ("x_std", x_std), ("y_mean", y_mean),
                            ("y_std", y_std)):
            self.register_buffer(name, torch.as_tensor(value))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model((x - self.x_mean) / self.x_std) * self.y_std + self.y_mean


class MCDropout:
    """Predict with dropout kept on: ``samples`` stochastic passes of ``model``.

    Only the dropout modules are switched to train mode during :meth:`predict` (BatchNorm and
    the rest stay in eval mode); every module's mode is restored afterwards.

    Args:
        model: a module containing dropout layers (any ``nn.Dropout*`` subclass).
        samples: number ``T`` of stochastic passes.
        tau: model precision (inverse noise variance, in output units), or None for no
            aleatoric term.

    Shapes:
        :meth:`predict`: ``x [N, ...]`` -> :class:`Prediction` with ``samples [T, N, ...]`` and
        ``mean, std [N, ...]``.
    """

    def __init__(self, model: nn.Module, samples: int = 100, tau: float | None = None):
        if samples < 1:
            raise ValueError(f"need at least one sample, got samples={samples}")
        if tau is not None and tau <= 0:
            raise ValueError(f"tau (model precision) must be positive, got {tau}")
        self.model, self.samples, self.tau = model, samples, tau

    @torch.no_grad()
    def sample(self, x: torch.Tensor, samples: int | None = None,
               chunk: int = 2**22) -> torch.Tensor:
        """``T`` stochastic passes ``[T, N, ...]``; passes are batched (the input repeated)
        in chunks of about ``chunk`` input elements."""
        samples = samples or self.samples
        modes = {m: m.training for m in self.model.modules()}
        self.model.eval()
        for m in self.model.modules():
            if isinstance(m, _DROPOUT_TYPES):
                m.train()
        try:
            per_chunk = max(1, chunk // max(1, x.numel()))
            out = []
            for start in range(0, samples, per_chunk):
                t = min(per_chunk, samples - start)
                y = self.model(x.repeat(t, *([1] * (x.ndim - 1))))
                out.append(y.reshape(t, x.shape[0], *y.shape[1:]))
        finally:
            for m, mode in modes.items():
                m.training = mode
        return torch.cat(out)

    def predict(self, x: torch.Tensor, samples: int | None = None) -> Prediction:
        """Mean and std of the predictive mixture (std includes ``1 / tau`` if given)."""
        draws = self.sample(x, samples)
        mean = draws.mean(0)
        epistemic = draws.var(0, unbiased=False).sqrt()
        if self.tau is None:
            return Prediction(mean=mean, std=epistemic, samples=draws, epistemic_std=epistemic)
        aleatoric = torch.full_like(mean, 1.0 / math.sqrt(self.tau))
        std = (epistemic**2 + aleatoric**2).sqrt()
        return Prediction(mean=mean, std=std, samples=draws, aleatoric_std=aleatoric,
                          epistemic_std=epistemic)

    def log_likelihood(self, x: torch.Tensor, y: torch.Tensor,
                       samples: int | None = None) -> torch.Tensor:
        """Per-element predictive log density of ``y`` (Gal's MC estimate, module doc)."""
        if self.tau is None:
            raise ValueError("the MC dropout log-likelihood needs the model precision tau")
        return mc_log_likelihood(self.sample(x, samples), y, self.tau)


def mc_log_likelihood(draws: torch.Tensor, y: torch.Tensor, tau: float) -> torch.Tensor:
    """``log (1/T) sum_t N(y; f_t, 1/tau)`` per element: ``draws [T, N, ...]``,
    ``y [N, ...]`` -> ``[N, ...]``."""
    if tuple(draws.shape[1:]) != tuple(y.shape):
        raise ShapeError(f"draws {tuple(draws.shape)} must be [T, *y.shape], y "
                         f"{tuple(y.shape)}")
    t = draws.shape[0]
    return (torch.logsumexp(-0.5 * tau * (y - draws) ** 2, dim=0) - math.log(t)
            - 0.5 * math.log(2 * math.pi) + 0.5 * math.log(tau))


def gal_weight_decay(p: float, tau: float, n: int, lengthscale: float = 1e-2) -> float:
    """Gal's L2 coefficient ``l^2 (1 - p) / (2 N tau)`` (DropoutUncertaintyExps net.py)."""
    return lengthscale**2 * (1.0 - p) / (2.0 * n * tau)


def dropout_ensemble(in_features: int, settings: Sequence[tuple[float, float]], *,
                     width: int = 50, hidden_layers: int = 1, seed: int = 0
                     ) -> VectorizedEnsemble:
    """One :class:`DropoutMLP` (one output) per ``(p, tau)`` setting, stacked for vectorised
    training (member ``k`` drops at rate ``settings[k][0]``)."""
    parts = [VectorizedEnsemble(lambda p=p: DropoutMLP(in_features, 1, width, hidden_layers, p),
                                1, seed=seed * 1000 + k)
             for k, (p, _) in enumerate(settings)]
    return VectorizedEnsemble.concat(parts)


def _fit_settings(x: torch.Tensor, y: torch.Tensor, settings, *, width, hidden_layers, epochs,
                  batch_size, lr, lengthscale, seed) -> list[Standardized]:
    """Fit one network per ``(p, tau)`` on ``(x, y)`` (raw units), all at once."""
    if y.ndim != 1 or x.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ShapeError(f"MC dropout fitting needs x [N, d] and y [N], got "
                         f"{tuple(x.shape)} and {tuple(y.shape)}")
    x_mean, x_std = standardization(x)
    y_mean, y_std = standardization(y)
    n, k = x.shape[0], len(settings)
    xn = ((x - x_mean) / x_std).expand(k, *x.shape)
    yn = ((y - y_mean) / y_std)[:, None].expand(k, n, 1)
    ensemble = dropout_ensemble(x.shape[1], settings, width=width, hidden_layers=hidden_layers,
                                seed=seed).to(x.dtype)
    decay = torch.tensor([gal_weight_decay(p, tau, n, lengthscale) for p, tau in settings],
                         dtype=x.dtype)
    train_members(ensemble, xn, yn, epochs=epochs, batch_size=batch_size, lr=lr, loss="mse",
                  weight_decay=decay)
    return [Standardized(ensemble.member(i), x_mean, x_std, y_mean[0], y_std[0])
            for i in range(k)]


def fit_mc_dropout(x: torch.Tensor, y: torch.Tensor, *, p: float, tau: float, width: int = 50,
                   hidden_layers: int = 1, epochs: int = 400, batch_size: int = 32,
                   lr: float = 1e-3, lengthscale: float = 1e-2, samples: int = 10_000,
                   seed: int = 0) -> MCDropout:
    """Fit one MC-dropout network by Gal's recipe (module doc) on ``x [N, d]``, ``y [N]``;
    returns an :class:`MCDropout` whose model takes and returns raw units (``[N, 1]``)."""
    (model,) = _fit_settings(x, y, [(p, tau)], width=width, hidden_layers=hidden_layers,
                             epochs=epochs, batch_size=batch_size, lr=lr,
                             lengthscale=lengthscale, seed=seed)
    return MCDropout(model, samples=samples, tau=tau)


def mc_dropout_grid_search(x: torch.Tensor, y: torch.Tensor, *, p_values: Sequence[float],
                           tau_values: Sequence[float], validation_fraction: float = 0.2,
                           validation_samples: int = 1000, samples: int = 10_000,
                           width: int = 50, hidden_layers: int = 1, epochs: int = 400,
                           batch_size: int = 32, lr: float = 1e-3, lengthscale: float = 1e-2,
                           seed: int = 0) -> tuple[MCDropout, list[dict]]:
    """Gal's grid search: fit every ``(p, tau)`` on the first ``1 - validation_fraction`` of
    the rows (all settings trained at once), score the MC log-likelihood on the rest, and
    return the best model (fitted on the first part, as the repository's ``experiment.py``)
    with a table of ``{"p", "tau", "validation_ll"}``."""
    n_fit = int((1 - validation_fraction) * x.shape[0])
    settings = [(float(p), float(t)) for p in p_values for t in tau_values]
    models = _fit_settings(x[:n_fit], y[:n_fit], settings, width=width,
                           hidden_layers=hidden_layers, epochs=epochs, batch_size=batch_size,
                           lr=lr, lengthscale=lengthscale, seed=seed)
    table = []
    for (p, tau), model in zip(settings, models):
        ll = MCDropout(model, validation_samples, tau).log_likelihood(
            x[n_fit:], y[n_fit:, None]).mean()
        table.append({"p": p, "tau": tau, "validation_ll": float(ll)})
    best = max(range(len(settings)), key=lambda i: table[i]["validation_ll"])
    return MCDropout(models[best], samples=samples, tau=settings[best][1]), table
