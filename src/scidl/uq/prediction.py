"""One type for every probabilistic prediction scidl makes: :class:`Prediction`.

Every uncertainty method (ensembles, MC dropout, Gaussian heads, Laplace, conformal) returns a
``Prediction``; every probabilistic metric and plot takes one. It holds what the method knows,
and derives the rest: a Gaussian summary (``mean``, ``std``), quantiles at given ``levels``, or
samples. Leading dimension ``N`` indexes the predicted items (rows of a table, fields of a
batch); the rest is the item's shape (``[]`` for a scalar target, ``[C, *S]`` for a field), so
everything works pointwise on fields: a per-pixel std map is ``prediction.std[i]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

import torch

from scidl.errors import ShapeError


def normal_quantile(level: float | torch.Tensor) -> torch.Tensor:
    """Standard normal quantile ``Phi^-1(level)``."""
    level = torch.as_tensor(level, dtype=torch.float64)
    return math.sqrt(2.0) * torch.special.erfinv(2.0 * level - 1.0)


@dataclass(frozen=True)
class Prediction:
    """A predictive distribution per item.

    Attributes:
        mean: ``[N, *shape]`` point prediction (the predictive mean, or the median for
            quantile-only predictions).
        std: ``[N, *shape]`` total predictive standard deviation, or None.
        quantiles: ``[Q, N, *shape]`` predictive quantiles at ``levels``, or None.
        levels: ``[Q]`` ascending levels in (0, 1) of ``quantiles``.
        samples: ``[S, N, *shape]`` draws (ensemble members' means, dropout passes), or None.
        aleatoric_std, epistemic_std: ``[N, *shape]`` parts of ``std`` where the method
            separates them (``std**2 = aleatoric_std**2 + epistemic_std**2``), or None.
    """

    mean: torch.Tensor
    std: torch.Tensor | None = None
    quantiles: torch.Tensor | None = None
    levels: torch.Tensor | None = None
    samples: torch.Tensor | None = None
    aleatoric_std: torch.Tensor | None = None
    epistemic_std: torch.Tensor | None = None

    def __post_init__(self):
        shape = tuple(self.mean.shape)
        for name in ("std", "aleatoric_std", "epistemic_std"):
            value = getattr(self, name)
            if value is not None and tuple(value.shape) != shape:
                raise ShapeError(f"Prediction.{name} has shape {tuple(value.shape)}, "
                                 f"mean has {shape}")
        if (self.quantiles is None) != (self.levels is None):
            raise ValueError("Prediction needs quantiles and levels together")
        if self.quantiles is not None:
            if tuple(self.quantiles.shape[1:]) != shape:
                raise ShapeError(f"Prediction.quantiles has shape {tuple(self.quantiles.shape)}"
                                 f", expected [Q, {', '.join(map(str, shape))}]")
            if self.levels.ndim != 1 or self.levels.numel() != self.quantiles.shape[0]:
                raise ShapeError("Prediction.levels must be [Q], one level per quantile")
            if not bool(((self.levels > 0) & (self.levels < 1)).all()) or bool(
                    (self.levels.diff() <= 0).any()):
                raise ValueError("Prediction.levels must be ascending and inside (0, 1)")
            if bool((self.quantiles.diff(dim=0) < 0).any()):
                raise ValueError("Prediction.quantiles cross: they must not decrease with the "
                                 "level (sort them, or use a non-crossing quantile head)")
        if self.samples is not None and tuple(self.samples.shape[1:]) != shape:
            raise ShapeError(f"Prediction.samples has shape {tuple(self.samples.shape)}, "
                             f"expected [S, {', '.join(map(str, shape))}]")

    # ---- construction ---------------------------------------------------------------------

    @classmethod
    def from_samples(cls, samples: torch.Tensor,
                     aleatoric_variance: torch.Tensor | None = None) -> Prediction:
        """A uniform mixture of ``S`` members: ``samples`` ``[S, N, *shape]`` are their means and
        ``aleatoric_variance`` (same shape, or None for point members) their variances. The
        mixture's mean and variance are ``mean_s mu_s`` and ``mean_s (sigma_s^2 + mu_s^2) -
        mu^2`` (Lakshminarayanan et al. 2017, eq. 6 after the paper)."""
        mean = samples.mean(0)
        epistemic = samples.var(0, unbiased=False)
        if aleatoric_variance is None:
            return cls(mean=mean, std=epistemic.sqrt(), samples=samples,
                       epistemic_std=epistemic.sqrt())
        if aleatoric_variance.shape != samples.shape:
            raise ShapeError(f"aleatoric_variance {tuple(aleatoric_variance.shape)} must match "
                             f"samples {tuple(samples.shape)}")
        aleatoric = aleatoric_variance.mean(0)
        return cls(mean=mean, std=(epistemic + aleatoric).sqrt(), samples=samples,
                   aleatoric_std=aleatoric.sqrt(), epistemic_std=epistemic.sqrt())

    # ---- derived quantities ---------------------------------------------------------------

    @property
    def variance(self) -> torch.Tensor:
        if self.std is None:
            raise ValueError("this Prediction has no std (it holds quantiles or samples only)")
        return self.std.pow(2)

    def __len__(self) -> int:
        return self.mean.shape[0]

    def quantile(self, level: float) -> torch.Tensor:
        """The predictive ``level``-quantile, ``[N, *shape]``: from stored quantiles
        (interpolated linearly between levels), else from the Gaussian ``mean, std``, else
        from the samples."""
        if not 0.0 < level < 1.0:
            raise ValueError(f"quantile level must be inside (0, 1), got {level}")
        if self.quantiles is not None:
            levels = self.levels.to(torch.float64)
            if level < float(levels[0]) - 1e-6 or level > float(levels[-1]) + 1e-6:
                raise ValueError(f"level {level} lies outside the stored quantile levels "
                                 f"[{float(levels[0]):g}, {float(levels[-1]):g}]")
            j = int(torch.searchsorted(levels, torch.tensor(level, dtype=torch.float64)))
            j = min(max(j, 1), len(levels) - 1)
            lo, hi = float(levels[j - 1]), float(levels[j])
            w = 0.0 if hi == lo else min(max((level - lo) / (hi - lo), 0.0), 1.0)
            return (1 - w) * self.quantiles[j - 1] + w * self.quantiles[j]
        if self.std is not None:
            z = float(normal_quantile(level))
            return self.mean + z * self.std
        if self.samples is not None:
            return torch.quantile(self.samples.to(torch.float64), level, dim=0).to(
                self.samples.dtype)
        raise ValueError("this Prediction holds only a mean: no quantiles can be derived")

    def interval(self, coverage: float = 0.9) -> tuple[torch.Tensor, torch.Tensor]:
        """The central ``coverage`` interval ``(lower, upper)``, each ``[N, *shape]``."""
        if not 0.0 < coverage < 1.0:
            raise ValueError(f"coverage must be inside (0, 1), got {coverage}")
        alpha = 1.0 - coverage
        return self.quantile(alpha / 2), self.quantile(1 - alpha / 2)

    # ---- tensor plumbing ------------------------------------------------------------------

    def _map(self, fn, *, batch_dim: bool = False) -> Prediction:
        values = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if v is None:
                values[f.name] = None
            elif f.name == "levels":
                values[f.name] = v if batch_dim else fn(v)
            elif batch_dim and f.name in ("quantiles", "samples"):
                values[f.name] = fn(v, 1)
            elif batch_dim:
                values[f.name] = fn(v, 0)
            else:
                values[f.name] = fn(v)
        return replace(self, **values)

    def to(self, *args, **kwargs) -> Prediction:
        return self._map(lambda v: v.to(*args, **kwargs))

    def cpu(self) -> Prediction:
        return self.to("cpu")

    def detach(self) -> Prediction:
        return self._map(lambda v: v.detach())

    def __getitem__(self, index) -> Prediction:
        """Select items along ``N`` (an int keeps the dimension: ``p[3]`` is ``p[3:4]``)."""
        if isinstance(index, int):
            index = slice(index, index + 1 if index != -1 else None)

        def take(v, dim):
            return v[index] if dim == 0 else v[:, index]
        return self._map(take, batch_dim=True)

    @staticmethod
    def cat(predictions: list[Prediction]) -> Prediction:
        """Concatenate predictions along ``N`` (they must hold the same kinds of fields)."""
        first = predictions[0]
        values = {}
        for f in fields(first):
            parts = [getattr(p, f.name) for p in predictions]
            if any((v is None) != (parts[0] is None) for v in parts):
                raise ValueError(f"cannot concatenate: Prediction.{f.name} is set in some parts "
                                 "only")
            if parts[0] is None:
                values[f.name] = None
            elif f.name == "levels":
                if any(not torch.equal(v, parts[0]) for v in parts):
                    raise ValueError("cannot concatenate predictions with different quantile "
                                     "levels")
                values[f.name] = parts[0]
            else:
                values[f.name] = torch.cat(parts, dim=1 if f.name in ("quantiles", "samples")
                                           else 0)
        return Prediction(**values)
