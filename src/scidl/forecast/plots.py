"""Figures of long-horizon forecasts. Each function writes one PNG and returns its path."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display is needed or wanted
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def _np(x):
    return torch.as_tensor(x).detach().cpu().double().numpy()


def metric_by_lead(curves: Mapping[str, torch.Tensor], dt: float, path: str | Path, *,
                   ylabel: str, title: str = "", threshold: float | None = None,
                   log: bool = False) -> Path:
    """One line per model of a score against lead time ``(k + 1) dt``; ``curves`` maps a
    label to a ``[T]`` series (e.g. ``rmse``, ``acc`` or ``pearson`` of
    :func:`scidl.forecast.evaluate_rollout`). ``threshold`` draws a horizontal line (e.g. 0.8
    for the high-correlation time)."""
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for label, series in curves.items():
        y = _np(series)
        ax.plot(dt * (1 + torch.arange(len(y))).numpy(), y, label=label)
    if threshold is not None:
        ax.axhline(threshold, color="grey", linestyle=":", linewidth=1)
    if log:
        ax.set_yscale("log")
    ax.set(xlabel="lead time", ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def energy_spectra(spectra: Mapping[str, torch.Tensor], path: str | Path, *,
                   title: str = "", wavenumber_scale: float = 1.0) -> Path:
    """Energy spectra ``E(K)`` (``[K]`` each, e.g. :func:`scidl.forecast.mean_spectrum` of the
    reference and of late-time model rollouts) on log axes; ``K = 0`` is left out.
    ``wavenumber_scale`` converts integer wavenumbers (e.g. ``2 pi / L``)."""
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for i, (label, spectrum) in enumerate(spectra.items()):
        e = _np(spectrum)
        k = wavenumber_scale * torch.arange(len(e)).numpy()
        ax.loglog(k[1:], e[1:], label=label, linestyle="-" if i == 0 else "--",
                  color="k" if i == 0 else None)
    ax.set(xlabel="wavenumber", ylabel="E(K)", title=title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return _save(fig, path)


def space_time(fields: Mapping[str, torch.Tensor], dt: float, length: float,
               path: str | Path, *, title: str = "") -> Path:
    """Space-time images of 1D rollouts: ``fields`` maps a label to ``[T, X]`` (time down the
    vertical axis, e.g. the reference, a forecast and their difference), on a shared colour
    scale."""
    n = len(fields)
    arrays = {k: _np(v) for k, v in fields.items()}
    vmax = max(float(abs(a).max()) for a in arrays.values()) or 1.0
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 4.2), squeeze=False, sharey=True)
    for ax, (label, a) in zip(axes[0], arrays.items()):
        image = ax.imshow(a, aspect="auto", origin="lower", cmap="RdBu_r", vmin=-vmax,
                          vmax=vmax, extent=(0, length, 0, dt * a.shape[0]))
        ax.set(title=label, xlabel="x")
    axes[0][0].set_ylabel("t")
    fig.colorbar(image, ax=axes[0].tolist(), shrink=0.8)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def invariant_series(series: Mapping[str, torch.Tensor], dt: float, path: str | Path, *,
                     ylabel: str = "invariant", title: str = "") -> Path:
    """Conserved quantities along rollouts: ``series`` maps a label to ``[N, T + 1]`` (as
    :attr:`scidl.forecast.RolloutResult.invariants`); the mean over trajectories is drawn with
    the range as a band."""
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for label, s in series.items():
        a = _np(s)
        t = dt * torch.arange(a.shape[1]).numpy()
        line, = ax.plot(t, a.mean(axis=0), label=label)
        ax.fill_between(t, a.min(axis=0), a.max(axis=0), color=line.get_color(), alpha=0.2)
    ax.set(xlabel="time", ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


__all__ = ["energy_spectra", "invariant_series", "metric_by_lead", "space_time"]
