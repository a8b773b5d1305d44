"""Config schemas and the runner that turns a config into a run directory."""

from scidl.experiments.config import RunConfig, load_config, parse_config
from scidl.experiments.runner import evaluate_run, run

__all__ = ["RunConfig", "evaluate_run", "load_config", "parse_config", "run"]
