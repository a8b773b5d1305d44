"""The run directory of DESIGN.md and its safe creation, writing and clean-up."""

from __future__ import annotations

import contextlib
import copy
import json
import shutil
from pathlib import Path

import yaml

from scidl._atomic import write_text_atomic
from scidl.errors import CheckpointError, ConfigError

CONFIG = "config.yaml"
METRICS = "metrics.json"
TIMINGS = "timings.json"


def write_json(path: Path, value) -> None:
    write_text_atomic(path, json.dumps(value, indent=2, sort_keys=False) + "\n")


#: settings of where a run executes, not of what it computes (Ray and in-process members give
#: identical results): a run may resume under different ones
_EXECUTION_KEYS = ("backend", "ray_address")


def _study(config: dict) -> dict:
    """The config without execution settings (the part a resumed run must share)."""
    config = copy.deepcopy(config)
    for model in (config.get("models") or {}).values():
        uq = model.get("uq") if isinstance(model, dict) else None
        if isinstance(uq, dict):
            for key in _EXECUTION_KEYS:
                uq.pop(key, None)
    return config


def open_run_dir(out: Path, resolved_config: dict, *, resume: bool, overwrite: bool) -> bool:
    """Create or reopen ``out``; returns True if this call created it (and so may remove it).

    A new run refuses a non-empty folder unless ``overwrite``; a resumed run must have been
    started with the same resolved config, and loses the temporary files of interrupted writes.
    """
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output path {str(out)!r} exists and is not a directory")
    existing = out.exists() and any(out.iterdir())
    if existing and overwrite:
        shutil.rmtree(out)
        existing = False
    if existing and not resume:
        raise ConfigError(
            f"run directory {str(out)!r} already exists; pass --resume to continue it, "
            "--overwrite to replace it, or choose another --out"
        )
    if existing and (out / CONFIG).exists():
        previous = _study(yaml.safe_load((out / CONFIG).read_text()))
        current = _study(resolved_config)
        if previous != current:
            changed = sorted(k for k in set(previous) | set(current)
                             if previous.get(k) != current.get(k))
            raise CheckpointError(
                f"cannot resume {str(out)!r}: its config differs in {changed}; "
                "start a new run directory instead"
            )
    if existing:
        _remove_temporaries(out)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / CONFIG, yaml.safe_dump(resolved_config, sort_keys=False))
    return created


def _remove_temporaries(out: Path) -> None:
    """Delete the temporary files of atomic writes that a killed run left behind (a SIGKILL
    during a write leaves ``.NAME.XXXX.tmp``); the files they were meant to replace are intact."""
    for path in out.rglob("*.tmp"):
        if path.is_file() and (path.name.startswith(".") or path.name == "report.html.tmp"):
            path.unlink(missing_ok=True)


def read_run_config(run_dir: Path) -> dict:
    path = run_dir / CONFIG
    if not path.is_file():
        raise ConfigError(f"{str(run_dir)!r} is not a run directory: it has no {CONFIG}")
    return yaml.safe_load(path.read_text())


@contextlib.contextmanager
def run_directory(out: Path, resolved_config: dict, *, resume: bool, overwrite: bool):
    """:func:`open_run_dir`, and remove the directory again if this call created it and the
    body fails: no half-written run is left behind."""
    created = open_run_dir(out, resolved_config, resume=resume, overwrite=overwrite)
    try:
        yield out
    except BaseException:
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise


def train_in_run(name: str, model, objective, training, run_dir: Path, *, seed: int, info,
                 resume: bool, quiet: bool, steps_per_epoch: int = 1):
    """Train ``model`` on ``objective`` with a config's ``training`` section, checkpointing to
    ``run_dir/checkpoints/NAME.pt`` and logging to ``run_dir/logs/NAME.jsonl`` (every model
    kind of a run trains through this)."""
    from scidl.train import TrainOptions, train

    return train(
        model, objective, training.to_stages(steps_per_epoch),
        checkpoint=run_dir / "checkpoints" / f"{name}.pt", resume=resume, seed=seed,
        dist_info=info, log_file=run_dir / "logs" / f"{name}.jsonl",
        options=TrainOptions(name=name, log_every=training.log_every,
                             checkpoint_every=training.checkpoint_every, progress=not quiet),
    )
