"""Checkpoints: atomic writes, weights-only loading, clear errors for damaged files."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from scidl.errors import CheckpointError
from scidl.train import load_checkpoint, save_checkpoint


class Picklable:
    """A plain Python object: a weights_only load must refuse it."""

    def __init__(self):
        self.value = 3


def test_checkpoint_round_trip_with_weights_only_loading(tmp_path):
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    model(torch.randn(4, 3)).pow(2).sum().backward()
    optimizer.step()
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "nested": {"a": torch.arange(5, dtype=torch.float64), "b": [1, 2.5, "text", None],
                   "c": {"deeper": torch.ones(2, 2, dtype=torch.complex128)}},
        "step": 7,
    }
    path = save_checkpoint(tmp_path / "sub" / "ck.pt", state)
    assert path == tmp_path / "sub" / "ck.pt"
    loaded = load_checkpoint(path)
    assert loaded["step"] == 7 and loaded["nested"]["b"] == [1, 2.5, "text", None]
    assert torch.equal(loaded["nested"]["a"], state["nested"]["a"])
    assert loaded["nested"]["a"].dtype == torch.float64
    assert torch.equal(loaded["nested"]["c"]["deeper"], state["nested"]["c"]["deeper"])
    for key, value in state["model"].items():
        assert torch.equal(loaded["model"][key], value)
    restored = torch.optim.Adam(nn.Linear(3, 2).parameters(), lr=0.5)
    restored.load_state_dict(loaded["optimizer"])
    assert restored.param_groups[0]["lr"] == 0.1
    for key in ("exp_avg", "exp_avg_sq", "step"):
        assert torch.equal(restored.state_dict()["state"][0][key],
                           optimizer.state_dict()["state"][0][key])
    # the file is readable by a plain weights_only load (what DESIGN.md promises) ...
    assert torch.load(path, weights_only=True)["step"] == 7
    # ... and arbitrary pickled objects are refused rather than executed
    save_checkpoint(tmp_path / "object.pt", {"thing": Picklable()})
    with pytest.raises(CheckpointError, match="object.pt"):
        load_checkpoint(tmp_path / "object.pt")


def test_a_failed_write_keeps_the_previous_checkpoint_and_leaves_no_temporary_files(
        tmp_path, monkeypatch):
    path = tmp_path / "ck.pt"
    save_checkpoint(path, {"value": torch.tensor([1.0, 2.0])})
    real_save = torch.save

    def save_then_crash(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 partial bytes of a zip archive")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", save_then_crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"value": torch.tensor([3.0, 4.0])})
    monkeypatch.setattr(torch, "save", real_save)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.pt"]
    assert torch.equal(load_checkpoint(path)["value"], torch.tensor([1.0, 2.0]))
    # a successful write replaces it
    save_checkpoint(path, {"value": torch.tensor([5.0])})
    assert torch.equal(load_checkpoint(path)["value"], torch.tensor([5.0]))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.pt"]


def test_corrupt_truncated_or_missing_checkpoints_raise_checkpoint_error(tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match=re.escape(str(garbage))):
        load_checkpoint(garbage)
    truncated = tmp_path / "truncated.pt"
    save_checkpoint(truncated, {"value": torch.randn(1000)})
    truncated.write_bytes(truncated.read_bytes()[:500])
    with pytest.raises(CheckpointError, match=re.escape(str(truncated))):
        load_checkpoint(truncated)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


