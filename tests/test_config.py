"""The run-config schema: defaults, one-sentence errors naming the key, round trips."""

from __future__ import annotations

import copy

import pytest
import yaml
from conftest import TINY_CONFIG

from scidl.errors import ConfigError
from scidl.experiments import RunConfig, load_config, parse_config

MINIMAL = {"models": {"fno": {"kind": "operator"}}}


def _with(base: dict, dotted: str, value) -> dict:
    """A deep copy of ``base`` with the key at ``dotted`` (list indices as numbers) set."""
    raw = copy.deepcopy(base)
    *parents, last = dotted.split(".")
    node = raw
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    node[int(last) if isinstance(node, list) else last] = value
    return raw


def _error(raw) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(raw)
    message = str(info.value)
    assert "\n" not in message, "config errors are one line"
    return message


def test_defaults_are_filled():
    cfg = parse_config(MINIMAL)
    assert isinstance(cfg, RunConfig)
    assert cfg.name == "run" and cfg.seed == 0 and cfg.device == "auto"
    assert cfg.data.path is None
    assert cfg.data.resolution == 128 and cfg.data.n_times == 11 and cfg.data.t_final == 1.0
    assert cfg.data.parameters == {}  # the family's defaults (Burgers: nu = 0.1)
    assert (cfg.data.n_train, cfg.data.n_test) == (1000, 100)
    fno = cfg.models["fno"]
    assert fno.model.name == "fno1d" and fno.model.modes == 16 and fno.model.width == 64
    assert fno.training.batch_size == 20 and len(fno.training.stages) == 1
    assert fno.training.stages[0].optimizer == "adam" and fno.training.stages[0].lr == 1e-3
    assert (fno.input_time_index, fno.target_time_index) == (0, -1)
    assert cfg.report.samples == 4

    resolved = cfg.to_dict()
    assert resolved["data"]["initial_condition"] == {"sigma": 25.0, "tau": 5.0, "gamma": 2.0}
    assert resolved["models"]["fno"]["training"]["checkpoint_every"] == 200
    assert resolved["models"]["fno"]["model"]["grid_channel"] is True

    pinn = parse_config({"models": {"p": {"kind": "pinn"}}}).models["p"]
    assert pinn.sample == 0 and pinn.boundary == "hard-periodic" and pinn.collocation == 2048
    assert pinn.network.activation == "tanh" and pinn.weights.initial == 10.0


@pytest.mark.parametrize("dotted", [
    "colour",
    "data.nu",
    "data.initial_condition.sigmaa",
    "report.sample",
    "models.fno.optimizer",
    "models.fno.model.widht",
    "models.fno.training.lr",
    "models.fno.training.stages.0.momentum",
    "models.pinn.network.widht",
    "models.pinn.weights.data",
])
def test_unknown_keys_name_the_full_dotted_key(dotted):
    # TINY_CONFIG names its models 'fno' and 'pinn'; 'pinn' is also a discriminator tag, which
    # must not be confused with the model's name.
    message = _error(_with(TINY_CONFIG, dotted, 1))
    assert f"'{dotted}'" in message
    assert "unknown" in message


@pytest.mark.parametrize("name", ["operator", "pinn", "my_model"])
def test_model_named_like_a_kind_keeps_its_name_in_the_key(name):
    for kind, key in (("operator", "model"), ("pinn", "network")):
        message = _error({"models": {name: {"kind": kind, key: {"widht": 3}}}})
        assert f"'models.{name}.{key}.widht'" in message


@pytest.mark.parametrize(("dotted", "value", "words"), [
    ("models.fno.training.stages.0.lr", "abc", "a number"),
    ("models.fno.training.batch_size", "four", "an integer"),
    ("models.fno.training.batch_size", 1.5, "an integer"),
    ("models.fno.model.grid_channel", "maybe", "true or false"),
    ("data.parameters.nu", "viscous", "a number"),
    ("data.initial_condition", 3, "a mapping"),
    ("seed", "zero", "an integer"),
    ("name", 3, "a string"),
    ("models.pinn.collocation", "many", "an integer"),
    ("models.fno.training.stages", "adam", "a list"),
])
def test_wrong_types_name_key_and_expected_type(dotted, value, words):
    message = _error(_with(TINY_CONFIG, dotted, value))
    assert f"'{dotted}'" in message
    assert f"must be {words}" in message
    assert repr(value) in message


def test_out_of_range_and_bad_choice_name_the_key():
    message = _error(_with(TINY_CONFIG, "data.resolution", 4))
    assert "'data.resolution'" in message and "8" in message
    message = _error(_with(TINY_CONFIG, "models.fno.training.stages.0.optimizer", "sgd"))
    assert "'models.fno.training.stages.0.optimizer'" in message and "adam" in message


@pytest.mark.parametrize("recipe", [
    {"resolution": 64}, {"parameters": {"nu": 0.01}}, {"seed": 3}, {"dt": 0.001},
])
def test_data_path_with_generation_keys_is_rejected(recipe):
    raw = {**MINIMAL, "data": {"path": "burgers.h5", "n_train": 10, "n_test": 2, **recipe}}
    message = _error(raw)
    assert "data.path" in message
    assert all(key in message for key in recipe)
    assert "do not apply" in message
    # path with only the split sizes is fine
    cfg = parse_config({**MINIMAL, "data": {"path": "burgers.h5", "n_train": 10, "n_test": 2}})
    assert cfg.data.path == "burgers.h5"


def test_pinn_sample_must_be_in_the_test_set():
    raw = {"data": {"n_test": 4}, "models": {"p": {"kind": "pinn", "sample": 4}}}
    message = _error(raw)
    assert "models.p.sample" in message and "4" in message
    assert parse_config(_with(raw, "models.p.sample", 3)).models["p"].sample == 3
    message = _error(_with(raw, "models.p.sample", -1))
    assert "'models.p.sample'" in message


@pytest.mark.parametrize("model", [{}, {"model": {"width": 8}}])
def test_missing_kind_gives_a_clear_message(model):
    message = _error({"models": {"fno": model}})
    assert "models.fno.kind" in message
    assert "'operator'" in message and "'pinn'" in message


@pytest.mark.parametrize("kind", ["fno", "Operator", 3])
def test_invalid_kind_gives_a_clear_message(kind):
    message = _error({"models": {"fno": {"kind": kind}}})
    assert "models.fno.kind" in message
    assert "'operator'" in message and "'pinn'" in message


def test_models_are_required_and_the_config_must_be_a_mapping():
    assert "'models'" in _error({})
    assert "'models'" in _error({"models": {}})
    assert "mapping" in _error(["models"])
    assert "mapping" in _error("models: {}")


def test_yaml_exponent_strings_are_accepted_as_floats(tmp_path):
    text = """
models:
  fno:
    kind: operator
    training:
      stages:
        - lr: 1e-3
          weight_decay: 1e-4
data:
  dt: 5e-3
"""
    raw = yaml.safe_load(text)
    assert raw["models"]["fno"]["training"]["stages"][0]["lr"] == "1e-3"  # PyYAML's YAML 1.1
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    cfg = load_config(path)
    stage = cfg.models["fno"].training.stages[0]
    assert stage.lr == 1e-3 and isinstance(stage.lr, float)
    assert stage.weight_decay == 1e-4 and cfg.data.dt == 5e-3
    assert cfg.to_dict()["models"]["fno"]["training"]["stages"][0]["lr"] == 1e-3


@pytest.mark.parametrize("raw", [
    MINIMAL,
    TINY_CONFIG,
    {"models": {"pinn": {"kind": "pinn", "boundary": "soft-periodic"}}, "seed": 7},
    {"data": {"path": "burgers.h5", "n_train": 10, "n_test": 2}, "models": TINY_CONFIG["models"]},
])
def test_resolved_config_round_trips(raw, tmp_path):
    cfg = parse_config(raw)
    assert parse_config(cfg.to_dict()) == cfg
    # ... also through YAML, as config.yaml of a run directory is read back by `scidl evaluate`
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    assert load_config(path) == cfg
    assert load_config(path).to_dict() == cfg.to_dict()


def test_load_config_errors_and_overrides(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  fno: {kind: operator\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(ConfigError, match="'models' is required"):
        load_config(empty)
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(TINY_CONFIG))
    assert load_config(good, {"seed": 5}).seed == 5
    assert load_config(good).seed == TINY_CONFIG["seed"]
