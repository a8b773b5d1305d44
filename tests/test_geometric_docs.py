"""docs/geometric.md's example is executed, so it cannot rot."""

from __future__ import annotations

import re

from conftest import REPO


def test_the_geometric_docs_example_runs():
    text = (REPO / "docs" / "geometric.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    namespace: dict = {}
    exec(compile(code.replace("print(", "str("), "docs/geometric.md", "exec"), namespace)
    assert namespace["report"].passed(1e-10)
