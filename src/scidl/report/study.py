"""A report made of sections (text, a table, figures): the report of runs that are not field
studies, e.g. ``task: dynamics``."""

from __future__ import annotations

import base64
import datetime as _dt
import json
import platform
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml

import scidl
from scidl._atomic import write_text_atomic
from scidl.report.html import _environment


@dataclass(frozen=True)
class Section:
    """One part of a report: a title, paragraphs, an optional table and figures (PNG files)."""

    title: str
    paragraphs: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    figures: list[tuple[str, Path]] = field(default_factory=list)


def render_study_report(out: Path, *, name: str, seed: int, sections: list[Section],
                        metrics: dict, timings: dict, config: dict) -> Path:
    """Write ``out/report.html`` with everything embedded (one file to mail or archive)."""
    rendered = [{
        "title": s.title, "paragraphs": s.paragraphs, "columns": s.columns, "rows": s.rows,
        "figures": [{"title": title, "data": base64.b64encode(path.read_bytes()).decode()}
                    for title, path in s.figures],
    } for s in sections]
    html = _environment().get_template("study.html").render(
        name=name, seed=seed, version=scidl.__version__,
        created=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        machine=(f"{platform.machine()}, {torch.get_num_threads()} threads, "
                 f"torch {torch.__version__}"),
        sections=rendered, timings=sorted(timings.items()),
        metrics_json=json.dumps(metrics, indent=2),
        config_yaml=yaml.safe_dump(config, sort_keys=False),
    )
    path = out / "report.html"
    write_text_atomic(path, html)
    return path
