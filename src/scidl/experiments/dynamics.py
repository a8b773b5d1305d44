"""``task: dynamics`` runs: each study of the config becomes metrics, figures and a report section.

The studies themselves live in :mod:`scidl.experiments.dynamics_studies`; this module owns the run
directory (created, filled, removed again on failure) and the report.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

import scidl
from scidl.experiments.dynamics_config import DynamicsRunConfig
from scidl.experiments.dynamics_studies import STUDIES
from scidl.experiments.rundir import METRICS, TIMINGS, run_directory, write_json
from scidl.report.study import render_study_report


def run_dynamics(config: DynamicsRunConfig, out: str | Path, *, resume: bool = False,
                 overwrite: bool = False, quiet: bool = False) -> Path:
    """Carry out every study of ``config`` into the run directory ``out`` and return it.

    Writes ``config.yaml``, ``metrics.json`` (deterministic for a seed on CPU), ``timings.json``,
    ``figures/`` and ``report.html``. A directory this call created is removed again if
    anything fails. Studies are short and rerun in full on ``--resume``.
    """
    out = Path(out)
    with run_directory(out, config.to_dict(), resume=resume, overwrite=overwrite):
        started = time.perf_counter()
        timings: dict[str, float] = {}
        metrics = {"scidl_version": scidl.__version__, "seed": config.seed, "studies": {}}
        sections = []
        for name, study in config.studies.items():
            clock = time.perf_counter()
            torch.manual_seed(config.seed)
            outcome = STUDIES[study.kind](name, study, config.seed, out / "figures", quiet)
            metrics["studies"][name] = {"kind": study.kind, **outcome.metrics}
            sections.append(outcome.section)
            timings[name] = time.perf_counter() - clock
        write_json(out / METRICS, metrics)
        timings["total_before_report"] = time.perf_counter() - started
        clock = time.perf_counter()
        render_study_report(out, name=config.name, seed=config.seed, sections=sections,
                            metrics=metrics, timings=timings, config=config.to_dict())
        timings["report"] = time.perf_counter() - clock
        timings["total"] = time.perf_counter() - started
        write_json(out / TIMINGS, timings)
    return out
