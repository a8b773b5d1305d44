"""docs/geometric.md's examples are executed, so they cannot rot."""

from __future__ import annotations

import re

import pytest
from conftest import REPO

BLOCKS = re.findall(r"```python\n(.*?)```", (REPO / "docs" / "geometric.md").read_text(), re.S)


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_the_geometric_docs_examples_run(code):
    namespace: dict = {}
    exec(compile(code.replace("print(", "str("), "docs/geometric.md", "exec"), namespace)
    if "report" in namespace:
        assert namespace["report"].passed(1e-10)
