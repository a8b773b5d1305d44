"""The README's quickstart is executed, so it cannot rot."""

from __future__ import annotations

import re

import torch
from conftest import REPO


def _quickstart() -> str:
    text = (REPO / "README.md").read_text()
    section = text.split("## Quickstart", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_quickstart_is_at_most_ten_lines_of_code():
    code = [line for line in _quickstart().splitlines() if line.strip()]
    assert len(code) <= 10


def test_quickstart_runs_and_its_numbers_make_sense():
    namespace: dict = {}
    exec(compile(_quickstart(), "README.md:quickstart", "exec"), namespace)
    trajectory, u0, error = namespace["trajectory"], namespace["u0"], namespace["error"]
    assert trajectory.shape == (8, 11, 256)
    assert torch.equal(trajectory[:, 0], u0)
    # Viscous decay at nu = 0.1: u(T = 1) keeps only a few percent of the initial amplitude.
    decay = trajectory[:, -1].abs().amax(dim=-1) / u0.abs().amax(dim=-1)
    assert bool((decay < 0.1).all())
    assert error.shape == (8,) and bool(torch.isfinite(error).all())
