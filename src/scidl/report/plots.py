"""Figures of a run. Each function writes one PNG and returns its path."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display is needed or wanted
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def loss_curves(histories: dict[str, list[dict]], path: Path) -> Path:
    """Training loss (and its named terms) against step, one panel per model."""
    n = max(len(histories), 1)
    fig, axes = plt.subplots(1, n, figsize=(5 * n, 3.6), squeeze=False)
    for ax, (name, history) in zip(axes[0], histories.items()):
        steps = [r["step"] for r in history]
        ax.semilogy(steps, [r["loss"] for r in history], label="loss", color="k")
        terms = [k for k in (history[0] if history else {}) if k not in ("step", "stage", "loss",
                                                                         "lr")]
        for term in terms:
            ax.semilogy(steps, [r[term] for r in history], label=term, alpha=0.8)
        for stage_start in _stage_starts(history):
            ax.axvline(stage_start, color="grey", linestyle=":", linewidth=1)
        ax.set(title=name, xlabel="step", ylabel="training loss")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, path)


def _stage_starts(history: list[dict]) -> list[int]:
    return [b["step"] for a, b in zip(history[:-1], history[1:]) if b["stage"] != a["stage"]]


def operator_predictions(x: torch.Tensor, inputs: torch.Tensor, targets: torch.Tensor,
                         predictions: torch.Tensor, errors: list[float], title: str,
                         path: Path) -> Path:
    """Input, reference, prediction and error for a few test samples, ``[S, N]`` each."""
    n = inputs.shape[0]
    fig, axes = plt.subplots(2, n, figsize=(3.6 * n, 5.2), squeeze=False, sharex=True)
    for i in range(n):
        top, bottom = axes[0, i], axes[1, i]
        top.plot(x, targets[i], color="k", label="reference u(T)")
        top.plot(x, predictions[i], color="tab:red", linestyle="--", label="prediction")
        twin = top.twinx()
        twin.plot(x, inputs[i], color="grey", alpha=0.35, linewidth=1)
        twin.set_yticks([])
        top.set_title(f"test {i}: rel. L2 {errors[i]:.2e}", fontsize=9)
        bottom.plot(x, predictions[i] - targets[i], color="tab:blue")
        bottom.set_xlabel("x")
        bottom.grid(alpha=0.3)
    axes[0, 0].set_ylabel("u(x, T)   (grey: u0, own scale)")
    axes[1, 0].set_ylabel("prediction - reference")
    axes[0, 0].legend(fontsize=8, loc="best")
    fig.suptitle(title)
    return _save(fig, path)


def space_time_fields(x: torch.Tensor, t: torch.Tensor, reference: torch.Tensor,
                      prediction: torch.Tensor, title: str, path: Path) -> Path:
    """Reference, prediction and error of a ``[T, N]`` space-time field."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    extent = (float(x[0]), float(x[-1]), float(t[0]), float(t[-1]))
    vmax = float(reference.abs().max())
    panels = [(reference, "reference"), (prediction, "prediction"),
              (prediction - reference, "prediction - reference")]
    for ax, (field, label) in zip(axes, panels):
        limit = vmax if label != "prediction - reference" else float(field.abs().max())
        image = ax.imshow(field, origin="lower", aspect="auto", extent=extent, cmap="RdBu_r",
                          vmin=-limit, vmax=limit, interpolation="nearest")
        ax.set(title=label, xlabel="x", ylabel="t")
        fig.colorbar(image, ax=ax)
    fig.suptitle(title)
    return _save(fig, path)


def scattered_fields(x: torch.Tensor, y: torch.Tensor, reference: torch.Tensor,
                     prediction: torch.Tensor, names: list[str], path: Path) -> Path:
    """Reference, prediction and error of a 2D field given at scattered (or gridded) points."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    vmax = float(reference.abs().max())
    error = prediction - reference
    panels = [(reference, "reference", vmax), (prediction, "prediction", vmax),
              (error, "prediction - reference", float(error.abs().max()))]
    for ax, (field, label, limit) in zip(axes, panels):
        image = ax.tripcolor(x.numpy(), y.numpy(), field.numpy(), cmap="RdBu_r", vmin=-limit,
                             vmax=limit, shading="gouraud")
        ax.set(title=label, xlabel=names[0], ylabel=names[1], aspect="equal")
        fig.colorbar(image, ax=ax)
    fig.suptitle(f"rel. L2 {float(error.norm() / reference.norm()):.2e}")
    return _save(fig, path)


def final_time_comparison(x: torch.Tensor, reference: torch.Tensor,
                          predictions: dict[str, torch.Tensor], title: str, path: Path) -> Path:
    """``u(x, T)`` of the reference and of every model on one trajectory."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 5.5), sharex=True)
    top.plot(x, reference, color="k", linewidth=2, label="reference")
    for name, prediction in predictions.items():
        top.plot(x, prediction, linestyle="--", label=name)
        bottom.plot(x, prediction - reference, label=name)
    top.set(ylabel="u(x, T)")
    bottom.set(xlabel="x", ylabel="error")
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    return _save(fig, path)


def energy_errors(series: dict[str, tuple[list[int], list[float]]], title: str,
                  path: Path) -> Path:
    """Relative energy error against step number (log-log), one line per method."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for method, (steps, errors) in series.items():
        ax.loglog(steps, [max(e, 1e-17) for e in errors], marker=".", label=method)
    ax.set(title=title, xlabel="step", ylabel="|E(t) - E(0)| / |E(0)|")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    return _save(fig, path)


def parameter_estimates(history: dict[str, list[float]], truth: dict[str, float], title: str,
                        path: Path) -> Path:
    """Each estimated parameter relative to its true value against iteration."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for name, values in history.items():
        ax.plot(range(len(values)), [v / truth[name] for v in values], label=name)
    ax.axhline(1.0, color="k", linestyle=":", linewidth=1)
    ax.set(title=title, xlabel="iteration", ylabel="estimate / true value")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def curves(panels: list[tuple[str, dict[str, tuple[list[float], list[float]]]]], xlabel: str,
           title: str, path: Path, *, logy: bool = False) -> Path:
    """Stacked panels sharing the x axis; each panel is ``(ylabel, {label: (x, y)})``."""
    fig, axes = plt.subplots(len(panels), 1, figsize=(6.4, 2.6 * len(panels)), sharex=True,
                             squeeze=False)
    for ax, (ylabel, lines) in zip(axes[:, 0], panels):
        for label, (x, y) in lines.items():
            ax.plot(x, y, label=label)
        if logy:
            ax.set_yscale("log")
        ax.set(ylabel=ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0, 0].set_title(title)
    axes[-1, 0].set_xlabel(xlabel)
    return _save(fig, path)


def field_panels(inputs: torch.Tensor, targets: torch.Tensor, predictions: torch.Tensor,
                 errors: list[float], title: str, path: Path) -> Path:
    """Input, reference, prediction and error images of a few 2D test samples, ``[S, X, Y]``
    each (one row per sample; the first input channel is shown)."""
    n = inputs.shape[0]
    fig, axes = plt.subplots(n, 4, figsize=(11.5, 2.8 * n), squeeze=False)
    for i in range(n):
        ref = targets[i]
        vmin, vmax = float(ref.min()), float(ref.max())
        _image_row(fig, axes[i], i, [
            (inputs[i], "input", "viridis", None),
            (ref, "reference", "RdBu_r", (vmin, vmax)),
            (predictions[i], "prediction", "RdBu_r", (vmin, vmax)),
            (predictions[i] - ref, f"error (rel. L2 {errors[i]:.2e})", "PuOr", None)])
    fig.suptitle(title)
    return _save(fig, path)


def _image_row(fig, axes, i: int, panels) -> None:
    """One row of 2D fields ``(field [X, Y], label, colormap, (vmin, vmax) or None)``."""
    for ax, (field, label, cmap, limits) in zip(axes, panels):
        image = ax.imshow(field.T.numpy(), origin="lower", cmap=cmap,
                          **({"vmin": limits[0], "vmax": limits[1]} if limits else {}))
        ax.set_title(f"test {i}: {label}", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.02)


def resolution_errors(table: dict[str, dict[str, float | None]], title: str, path: Path) -> Path:
    """Test error against evaluation resolution, one line per model (zero-shot
    super-resolution)."""
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for name, errors in table.items():
        labels = [k for k, v in errors.items() if v is not None]
        ax.plot(range(len(labels)), [errors[k] for k in labels], marker="o", label=name)
        ax.set_xticks(range(len(labels)), labels)
    ax.set_xlabel("evaluation grid")
    ax.set_ylabel("mean test rel. L2")
    ax.set_yscale("log")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    ax.set_title(title)
    return _save(fig, path)


def uncertainty_bands(targets: torch.Tensor, mean: torch.Tensor, lower: torch.Tensor,
                      upper: torch.Tensor, coverage: float, title: str, path: Path) -> Path:
    """Predicted mean and central ``coverage`` interval against the reference, for a few 1D
    test fields ``[S, X]`` (one column per sample); the lower row shows the same relative to
    the mean, where intervals much narrower than the field are visible."""
    n = targets.shape[0]
    x = torch.arange(targets.shape[-1]) / targets.shape[-1]
    fig, axes = plt.subplots(2, n, figsize=(3.6 * n, 5.4), squeeze=False, sharex=True)
    for i in range(n):
        top, bottom = axes[0][i], axes[1][i]
        top.fill_between(x.numpy(), lower[i].numpy(), upper[i].numpy(), color="C0", alpha=0.3,
                         lw=0, label=f"{coverage:.0%} interval")
        top.plot(x, mean[i], color="C0", lw=1.2, label="mean")
        top.plot(x, targets[i], "k--", lw=1.0, label="reference")
        inside = float(((targets[i] >= lower[i]) & (targets[i] <= upper[i])).double().mean())
        top.set_title(f"test {i}: {inside:.0%} of points inside", fontsize=8)
        bottom.fill_between(x.numpy(), (lower[i] - mean[i]).numpy(),
                            (upper[i] - mean[i]).numpy(), color="C0", alpha=0.3, lw=0)
        bottom.plot(x, targets[i] - mean[i], "k", lw=0.8, label="reference - mean")
        bottom.axhline(0.0, color="C0", lw=0.8)
        bottom.set_xlabel("x")
    axes[0][0].legend(fontsize=7)
    axes[1][0].legend(fontsize=7)
    axes[1][0].set_ylabel("relative to the mean")
    fig.suptitle(title)
    return _save(fig, path)


def std_panels(targets: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, title: str,
               path: Path) -> Path:
    """Reference, absolute error and predicted std images of a few 2D test fields
    ``[S, X, Y]``: where the std is high, the error should be too."""
    n = targets.shape[0]
    fig, axes = plt.subplots(n, 3, figsize=(9, 2.8 * n), squeeze=False)
    for i in range(n):
        error = (mean[i] - targets[i]).abs()
        top = float(torch.maximum(error.max(), 2 * std[i].max()))
        _image_row(fig, axes[i], i, [(targets[i], "reference", "RdBu_r", None),
                                     (error, "|error|", "magma", (0.0, top)),
                                     (2 * std[i], "2 x predicted std", "magma", (0.0, top))])
    fig.suptitle(title)
    return _save(fig, path)
