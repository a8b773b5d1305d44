"""Figures and the HTML report of a run."""

from __future__ import annotations

from pathlib import Path

import torch

from scidl.report import plots
from scidl.report.html import render_report


def _operator_figure(name: str, outcome, samples: int, path: Path) -> Path:
    """Predictions of an operator model on a few test samples: curves for 1D fields, images
    for 2D fields, and the last time of a space-time (or 3D) field."""
    m = outcome.metrics
    k = min(samples, outcome.inputs.shape[0])
    x_in, y, p = outcome.inputs[:k, 0], outcome.targets[:k, 0], outcome.prediction[:k, 0]
    errors = m["test_rel_l2_per_sample"][:k]
    title = f"{name}: mean test rel. L2 {m['test_rel_l2']:.2e}"
    while y.ndim > 3:  # [S, T, X, Y] or [S, X, Y, Z]: the last slice of the first axis
        x_in, y, p = x_in[:, -1], y[:, -1], p[:, -1]
        title += " (last slice)"
    if y.ndim == 2:
        grid = torch.arange(y.shape[-1]) / y.shape[-1]
        return plots.operator_predictions(grid, x_in, y, p, errors, title, path)
    return plots.field_panels(x_in, y, p, errors, title, path)


def _uncertainty_figures(name: str, outcome, config, figures_dir: Path) -> list:
    """Intervals or std maps on a few test samples, and the calibration plots."""
    from scidl.report import uq_plots

    prediction, y = outcome.uncertainty, outcome.targets.double()
    coverage = outcome.metrics["uq"]["coverage_nominal"]
    k = min(config.report.samples, y.shape[0])
    figures = []
    mean, target = prediction.mean[:k, 0], y[:k, 0]
    if target.ndim == 2 and (prediction.std is not None or outcome.conformal is not None):
        source = outcome.conformal if outcome.conformal is not None else prediction
        lower, upper = source.interval(coverage)
        figures.append((f"{name}: predictive intervals on test samples", plots.uncertainty_bands(
            target, mean, lower[:k, 0], upper[:k, 0], coverage,
            f"{name}: {coverage:.0%} " + ("conformal " if outcome.conformal is not None else "")
            + "intervals", figures_dir / f"{name}_intervals.png")))
    elif target.ndim == 3 and prediction.std is not None:
        figures.append((f"{name}: error and predicted std", plots.std_panels(
            target, mean, prediction.std[:k, 0], f"{name}: where it is unsure",
            figures_dir / f"{name}_std.png")))
    if prediction.std is not None:
        figures.append((f"{name}: reliability diagram", uq_plots.reliability_diagram(
            prediction, y, figures_dir / f"{name}_reliability.png")))
        figures.append((f"{name}: interval coverage against nominal", uq_plots.coverage_plot(
            prediction, y, figures_dir / f"{name}_coverage.png")))
        figures.append((f"{name}: error against predicted std", uq_plots.error_vs_std_plot(
            prediction, y, figures_dir / f"{name}_error_vs_std.png")))
    return figures


def _forecast_figures(outcomes: dict, figures_dir: Path) -> list:
    """Scores by lead time of every forecast model (one figure per score, models overlaid),
    the rollout of test trajectory 0, invariant drift and the late-time spectra."""
    from scidl.forecast import plots as fplots

    runs = {name: o for name, o in outcomes.items() if o.metrics["kind"] == "forecast"}
    if not runs:
        return []
    dt = next(iter(runs.values())).dt
    figures = []
    for key, label, log in (("pearson", "Pearson correlation", False), ("rmse", "RMSE", True),
                            ("acc", "ACC", False), ("spectrum_error", "spectrum error", True),
                            ("crps", "CRPS", True), ("spread_skill", "spread / skill", False)):
        curves = {name: o.curves[key] for name, o in runs.items() if key in o.curves}
        if not curves:
            continue
        threshold = {"pearson": min(o.metrics["threshold"] for o in runs.values()),
                     "spread_skill": 1.0}.get(key)
        figures.append((f"{label} by lead time", fplots.metric_by_lead(
            curves, dt, figures_dir / f"forecast_{key}.png", ylabel=label, log=log,
            threshold=threshold, title=f"{label} of the test rollouts")))
    for name, o in runs.items():
        if o.reference.ndim == 3:  # [T, C, X]: a space-time picture
            fields = {"reference": o.reference[:, 0], name: o.prediction[:, 0],
                      "difference": o.prediction[:, 0] - o.reference[:, 0]}
            figures.append((f"{name}: test trajectory 0", fplots.space_time(
                fields, dt, o.length, figures_dir / f"{name}_space_time.png",
                title=f"{name}: rollout of test trajectory 0")))
        else:
            last = o.reference.shape[0] - 1
            figures.append((f"{name}: test trajectory 0 at the last lead", plots.field_panels(
                o.reference[:1, 0], o.reference[last:, 0], o.prediction[last:, 0],
                [float((o.prediction[last] - o.reference[last]).norm()
                       / o.reference[last].norm())],
                f"{name}: first and last state of test trajectory 0, and the rollout",
                figures_dir / f"{name}_fields.png")))
        figures.append((f"{name}: invariants along the test rollouts", fplots.invariant_series(
            dict(o.invariants), dt, figures_dir / f"{name}_invariants.png",
            title=f"{name}: mean and range over the test rollouts")))
        if o.spectra is not None:
            figures.append((f"{name}: late-time energy spectrum", fplots.energy_spectra(
                o.spectra, figures_dir / f"{name}_spectra.png",
                title=f"{name}: climatological spectra")))
    return figures


def write_report(out: Path, config, data, outcomes: dict, metrics: dict,
                 timings: dict) -> Path:
    """Draw the run's figures into ``out/figures`` and write ``out/report.html``."""
    figures_dir = out / "figures"
    dataset = data.trajectories
    x, t = (dataset.x, dataset.t) if dataset is not None else (None, None)
    test_u = data.test.get("u")
    figures = []
    histories = {name: o.train_result.history for name, o in outcomes.items()
                 if o.train_result is not None and o.train_result.history}
    if histories:
        figures.append(("Training loss", plots.loss_curves(histories, figures_dir / "loss.png")))
    pinn_samples = {}
    for name, outcome in outcomes.items():
        m = outcome.metrics
        if m["kind"] == "operator":
            figures.append((f"{name}: test predictions", _operator_figure(
                name, outcome, config.report.samples, figures_dir / f"{name}_predictions.png")))
        elif m["kind"] == "forecast":
            continue
        else:
            pinn_samples[name] = m["sample"]
            figures.append((f"{name}: space-time solution of test trajectory {m['sample']}",
                            plots.space_time_fields(
                                x, t, test_u[m["sample"]], outcome.prediction,
                                f"{name}: rel. L2 {m['rel_l2']:.2e} over (x, t)",
                                figures_dir / f"{name}_fields.png")))
    comparison = ""
    for pinn_name, sample in pinn_samples.items():
        predictions = {}
        parts = []
        for name, outcome in outcomes.items():
            m = outcome.metrics
            if m["kind"] == "operator":
                if outcome.prediction.ndim != 3:
                    continue
                predictions[name] = outcome.prediction[sample, -1]
                parts.append(f"{name} {m['test_rel_l2_per_sample'][sample]:.2e}")
            elif name == pinn_name:
                predictions[name] = outcome.prediction[-1]
                parts.append(f"{name} {m['rel_l2_final']:.2e}")
        figures.append((f"All models on test trajectory {sample} at T", plots.final_time_comparison(
            x, test_u[sample, -1], predictions, f"test trajectory {sample}, t = {float(t[-1]):g}",
            figures_dir / f"comparison_{pinn_name}.png")))
        comparison = (f"On test trajectory {sample}, relative L2 error of u(x, T): "
                      + ", ".join(parts) + ".")
    figures.extend(_forecast_figures(outcomes, figures_dir))
    for name, outcome in outcomes.items():
        if getattr(outcome, "uncertainty", None) is not None:
            figures.extend(_uncertainty_figures(name, outcome, config, figures_dir))
    tables = {name: o.metrics["test_rel_l2_by_resolution"] for name, o in outcomes.items()
              if o.metrics.get("test_rel_l2_by_resolution")}
    if tables:
        figures.append(("Test error by evaluation resolution", plots.resolution_errors(
            tables, "zero-shot evaluation at other resolutions",
            figures_dir / "resolutions.png")))
    summary = data.describe(config.data.n_train, config.data.n_test)
    return render_report(out, name=config.name, seed=config.seed, metrics=metrics,
                         timings=timings, figures=figures, config=config.to_dict(),
                         data_summary=summary, comparison=comparison)


__all__ = ["plots", "render_report", "write_report"]
