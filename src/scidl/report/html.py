"""The self-contained HTML report: tables of numbers and the figures embedded as PNG."""

from __future__ import annotations

import base64
import datetime as _dt
import json
import platform
from pathlib import Path

import torch
import yaml
from jinja2 import Environment, PackageLoader, select_autoescape

import scidl
from scidl._atomic import write_text_atomic
from scidl.report import plots


def _environment() -> Environment:
    return Environment(loader=PackageLoader("scidl.report", "templates"),
                       autoescape=select_autoescape(["html"]))


def _rows(metrics: dict, timings: dict) -> list[dict]:
    rows = []
    for name, m in metrics["models"].items():
        if m["kind"] == "operator":
            measured = f"u(T) on {metrics['data']['n_test']} held-out trajectories (mean)"
            error = f"{m['test_rel_l2']:.3e}"
        elif m["kind"] == "forecast":
            measured = (f"rollouts of {metrics['data']['n_test']} test trajectories over "
                        f"{m['leads']} steps: high-correlation time / RMSE at the last lead")
            error = f"{m['high_correlation_time_mean']:.4g} / {m['rmse_last']:.3e}"
        else:
            measured = f"u(x, t) of test trajectory {m['sample']} (all times / at T)"
            error = f"{m['rel_l2']:.3e} / {m['rel_l2_final']:.3e}"
        rows.append({"name": name, "kind": m["kind"], "measured": measured, "error": error,
                     "parameters": f"{m['parameters']:,}", "steps": m.get("steps", ""),
                     "seconds": f"{timings.get(f'{name}.train_total', 0.0):.1f}"})
    return rows


def render_report(out: Path, *, name: str, seed: int, metrics: dict, timings: dict,
                  figures: list[tuple[str, Path]], config: dict, data_summary: str,
                  comparison: str = "") -> Path:
    """Write ``out/report.html`` with everything embedded (one file to mail or archive)."""
    encoded = [{"title": title, "data": base64.b64encode(path.read_bytes()).decode()}
               for title, path in figures]
    html = _environment().get_template("report.html").render(
        name=name, seed=seed, version=scidl.__version__,
        created=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        machine=(f"{platform.machine()}, {torch.get_num_threads()} threads, "
                 f"torch {torch.__version__}"),
        data_summary=data_summary, rows=_rows(metrics, timings), comparison=comparison,
        timings=sorted(timings.items()), figures=encoded,
        metrics_json=json.dumps(_brief(metrics), indent=2), config_yaml=yaml.safe_dump(config,
                                                                                    sort_keys=False),
    )
    path = out / "report.html"
    write_text_atomic(path, html)
    return path


def _brief(metrics: dict) -> dict:
    """Metrics without the long per-sample lists (they stay in metrics.json)."""
    brief = json.loads(json.dumps(metrics))
    for m in brief["models"].values():
        m.pop("test_rel_l2_per_sample", None)
        for key in [k for k in m if k.endswith("_by_lead")]:
            m.pop(key)
        if isinstance(m.get("ensemble"), dict):
            for key in ("crps_by_lead", "spread_skill_by_lead"):
                m["ensemble"].pop(key, None)
    return brief


__all__ = ["render_report", "plots"]
