"""What every dynamics study returns, and the set-up a study config names."""

from __future__ import annotations

from dataclasses import dataclass

from scidl.report.study import Section
from scidl.sims.setups import Setup, make_setup


@dataclass(frozen=True)
class StudyOutcome:
    """``metrics`` for ``metrics.json`` (with a one-line ``headline``) and a report section."""

    metrics: dict
    section: Section


def setup_of(study) -> Setup:
    """The system set-up a study config names."""
    return make_setup(study.system.name, **study.system.parameters)
