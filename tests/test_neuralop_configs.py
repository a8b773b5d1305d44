"""The neuraloperator side-by-side configs parse, and a shortened Darcy run trains and scores.

The full runs are in benchmarks/neuralop_compare.py; here the Darcy config is cut to one epoch on
a few samples (same model and recipe), which checks the data paths, the ``.pt`` reader and the
zero-shot evaluation at 32², not the error level.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
import torch
import yaml

from scidl.experiments import load_config, run
from scidl.experiments.config import OperatorRunConfig

REPO = Path(__file__).resolve().parents[1]
CONFIGS = {name: REPO / "configs" / f"neuralop_{name}16.yaml" for name in ("darcy", "burgers")}


def _operators_dir() -> Path:
    """neuraloperator's example sets in ``$SCIDL_DATA/operators``; skip if absent."""
    root = os.environ.get("SCIDL_DATA")
    if not root:
        pytest.skip("SCIDL_DATA is not set: neuraloperator's example sets "
                    "(../shared/data/operators) cannot be located")
    operators = Path(root) / "operators"
    needed = ["darcy_train_16.pt", "darcy_test_16.pt", "darcy_test_32.pt"]
    if not all((operators / name).is_file() for name in needed):
        pytest.skip(f"neuraloperator's example sets are missing from {operators} "
                    f"(need {', '.join(needed)})")
    return operators


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_config_parses(name):
    config = load_config(CONFIGS[name])
    (model,) = config.models.values()
    assert isinstance(model, OperatorRunConfig)
    assert model.model.name == "fno"
    assert config.data.path.startswith("operators/") and config.data.test_path is not None
    assert sum(stage.epochs for stage in model.training.stages) == 20


def test_darcy_config_short_run(tmp_path):
    _operators_dir()
    torch.set_num_threads(1)
    raw = yaml.safe_load(CONFIGS["darcy"].read_text())
    data = {**raw["data"], "n_train": 32, "n_test": 8}
    models = raw["models"]
    for model in models.values():
        model["training"]["stages"] = [{**stage, "epochs": 1}
                                       for stage in model["training"]["stages"][:1]]
        model["training"]["batch_size"] = min(model["training"]["batch_size"], 16)
    config = load_config(CONFIGS["darcy"], overrides={"data": data, "models": models})
    run_dir = run(config, tmp_path / "run", quiet=True)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    (name,) = config.models
    result = metrics["models"][name]
    assert result["resolution"] == [16, 16]
    assert result["steps"] == 2
    assert math.isfinite(result["test_rel_l2"]) and result["test_rel_l2"] > 0
    zero_shot = result["test_rel_l2_by_resolution"]["32x32"]
    assert zero_shot is not None and math.isfinite(zero_shot)
