"""Figures and the HTML report of a run."""

from __future__ import annotations

from pathlib import Path

from scidl.report import plots
from scidl.report.html import render_report


def write_report(out: Path, config, dataset, test_u, outcomes: dict, metrics: dict,
                 timings: dict) -> Path:
    """Draw the run's figures into ``out/figures`` and write ``out/report.html``."""
    figures_dir = out / "figures"
    x, t = dataset.x, dataset.t
    figures = []
    histories = {name: o.train_result.history for name, o in outcomes.items()
                 if o.train_result is not None and o.train_result.history}
    if histories:
        figures.append(("Training loss", plots.loss_curves(histories, figures_dir / "loss.png")))
    pinn_samples = {}
    for name, outcome in outcomes.items():
        m = outcome.metrics
        if m["kind"] == "operator":
            cfg = config.models[name]
            k = min(config.report.samples, test_u.shape[0])
            figures.append((f"{name}: test predictions at T", plots.operator_predictions(
                x, test_u[:k, cfg.input_time_index], test_u[:k, cfg.target_time_index],
                outcome.prediction[:k], m["test_rel_l2_per_sample"][:k],
                f"{name}: mean test rel. L2 {m['test_rel_l2']:.2e}",
                figures_dir / f"{name}_predictions.png")))
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
                predictions[name] = outcome.prediction[sample]
                parts.append(f"{name} {m['test_rel_l2_per_sample'][sample]:.2e}")
            elif name == pinn_name:
                predictions[name] = outcome.prediction[-1]
                parts.append(f"{name} {m['rel_l2_final']:.2e}")
        figures.append((f"All models on test trajectory {sample} at T", plots.final_time_comparison(
            x, test_u[sample, -1], predictions, f"test trajectory {sample}, t = {float(t[-1]):g}",
            figures_dir / f"comparison_{pinn_name}.png")))
        comparison = (f"On test trajectory {sample}, relative L2 error of u(x, T): "
                      + ", ".join(parts) + ".")
    attrs = dataset.attrs
    summary = (f"{attrs.get('equation', '?')} {attrs.get('parameters', '')}, "
               f"{dataset.u.shape[0]} trajectories of {dataset.u.shape[1]} times on "
               f"{dataset.u.shape[-1]} points ({config.data.n_train} train / "
               f"{config.data.n_test} test); solver: {attrs.get('solver', 'n/a')} at "
               f"{attrs.get('solver_resolution', 'n/a')} points, dt {attrs.get('dt', 'n/a')}; "
               f"initial conditions {attrs.get('initial_condition', 'n/a')}; seed "
               f"{attrs.get('seed', 'n/a')}.")
    return render_report(out, name=config.name, seed=config.seed, metrics=metrics,
                         timings=timings, figures=figures, config=config.to_dict(),
                         data_summary=summary, comparison=comparison)


__all__ = ["plots", "render_report", "write_report"]
