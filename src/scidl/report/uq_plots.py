"""Figures of probabilistic predictions. Each function writes one PNG and returns its path.

Every function takes a :class:`scidl.uq.Prediction` (or ensemble ``samples``) and ``y``
``[N, *shape]``; fields count every point, so a per-pixel calibration needs nothing extra.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display is needed or wanted
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from scidl.metrics import calibration_error, interval_coverage, rank_histogram  # noqa: E402
from scidl.report.plots import _save  # noqa: E402  (one way to write a figure)

NOMINAL_COVERAGES = tuple(np.linspace(0.05, 0.95, 19).tolist())


def reliability_diagram(prediction, y: torch.Tensor, path: Path, levels=None) -> Path:
    """Observed frequency of ``y <= q_p`` against the level ``p`` (Kuleshov et al. 2018), with
    the diagonal of perfect calibration; the title gives the calibration error."""
    curve = calibration_error(prediction, y, levels=levels)
    p = curve.levels.detach().cpu().numpy()
    observed = curve.observed.detach().cpu().numpy()
    fig, ax = plt.subplots(figsize=(4.4, 4.2))
    ax.plot([0, 1], [0, 1], color="k", linestyle=":", linewidth=1, label="calibrated")
    ax.plot(p, observed, marker="o", color="tab:blue", label="prediction")
    ax.fill_between(p, p, observed, color="tab:blue", alpha=0.15)
    ax.set(xlim=(0, 1), ylim=(0, 1), aspect="equal", xlabel="expected level p",
           ylabel="observed frequency of y <= q_p",
           title=f"reliability, calibration error {float(curve.error):.2e}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    return _save(fig, Path(path))


def coverage_plot(prediction, y: torch.Tensor, path: Path,
                  nominal=NOMINAL_COVERAGES) -> Path:
    """Empirical coverage of the central intervals ``prediction.interval(c)`` against their
    nominal coverage ``c`` (by default ``0.05, 0.10, ..., 0.95``). For predictions holding
    quantiles only, the ``c`` whose interval ends fall outside the stored levels are skipped,
    and the title says how many."""
    nominal = [float(c) for c in np.asarray(nominal, dtype=float).ravel()]
    if prediction.quantiles is not None:
        lowest, highest = float(prediction.levels[0]), float(prediction.levels[-1])
        usable = [c for c in nominal
                  if (1 - c) / 2 >= lowest - 1e-12 and (1 + c) / 2 <= highest + 1e-12]
    else:
        usable = nominal
    if not usable:
        raise ValueError("coverage_plot: no nominal coverage fits inside the stored quantile "
                         f"levels [{float(prediction.levels[0]):g}, "
                         f"{float(prediction.levels[-1]):g}]")
    empirical = [float(interval_coverage(*prediction.interval(c), y)) for c in usable]
    title = "central-interval coverage"
    if len(usable) < len(nominal):
        title += f" ({len(nominal) - len(usable)} levels outside the stored quantiles skipped)"
    fig, ax = plt.subplots(figsize=(4.4, 4.2))
    ax.plot([0, 1], [0, 1], color="k", linestyle=":", linewidth=1, label="nominal")
    ax.plot(usable, empirical, marker="o", color="tab:green", label="empirical")
    ax.set(xlim=(0, 1), ylim=(0, 1), aspect="equal", xlabel="nominal coverage",
           ylabel="empirical coverage", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    return _save(fig, Path(path))


def error_vs_std_plot(prediction, y: torch.Tensor, path: Path, bins: int = 10) -> Path:
    """Mean ``|y - mean|`` in bins of equal count of the predicted ``std``, against the bin's
    root mean variance. For Gaussian errors ``E|y - mean| = std sqrt(2 / pi)``: the reference
    line. Points above it are over-confident, below under-confident."""
    if prediction.std is None:
        raise ValueError("error_vs_std_plot needs a Prediction with std")
    std = prediction.std.detach().flatten().to(torch.float64).cpu()
    error = (y - prediction.mean).detach().abs().flatten().to(torch.float64).cpu()
    order = std.argsort()
    groups = [g for g in torch.tensor_split(order, min(bins, std.numel())) if g.numel() > 0]
    binned_std = np.array([float(std[g].square().mean().sqrt()) for g in groups])
    binned_error = np.array([float(error[g].mean()) for g in groups])
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    top = max(float(binned_std.max()), float(binned_error.max()) / math.sqrt(2 / math.pi))
    reference = np.linspace(0.0, top * 1.05, 50)
    ax.plot(reference, reference * math.sqrt(2 / math.pi), color="k", linestyle=":",
            linewidth=1, label="calibrated: std sqrt(2/pi)")
    ax.plot(binned_std, binned_error, marker="o", color="tab:red",
            label=f"{len(groups)} bins of equal count")
    ax.set(xlabel="predicted std (root mean variance in bin)", ylabel="mean |error| in bin",
           title="error against predicted std")
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    return _save(fig, Path(path))


def rank_histogram_plot(samples: torch.Tensor, y: torch.Tensor, path: Path,
                        generator: torch.Generator | None = None) -> Path:
    """Talagrand histogram of the rank of ``y`` among ``S`` members (``S + 1`` bars) with the
    flat count of an exchangeable ensemble; ties broken at random with ``generator``."""
    counts = rank_histogram(samples.detach(), y.detach(), generator=generator).cpu().numpy()
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    ax.bar(np.arange(counts.size), counts, color="tab:purple", alpha=0.8, width=0.9)
    ax.axhline(counts.sum() / counts.size, color="k", linestyle=":", linewidth=1,
               label="flat (exchangeable)")
    ax.set(xlabel="rank of y among the members", ylabel="count",
           title=f"rank histogram, S = {counts.size - 1} members")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    return _save(fig, Path(path))
