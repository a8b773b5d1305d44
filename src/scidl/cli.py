"""The ``scidl`` command: run studies from configs, evaluate runs, generate data.

Errors that scidl raises on purpose (bad config, missing file, NaN data, divergence) are printed
as one line on stderr with exit status 2; ``python -m scidl`` is the same command (for torchrun).
"""

from __future__ import annotations

import json
import sys
from importlib.resources import files
from pathlib import Path
from typing import Annotated

import typer

import scidl
from scidl.errors import ScidlError

app = typer.Typer(
    name="scidl",
    help="Scientific deep learning: PDE solvers, neural operators and PINNs from one physics.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Generate and inspect datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")

DEMO_CONFIG = "burgers_demo.yaml"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"scidl {scidl.__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """scidl command line."""


@app.command("run")
def run_command(
    config: Annotated[Path, typer.Argument(help="YAML config of the run.")],
    out: Annotated[Path | None, typer.Option(help="Run directory (default runs/NAME).")] = None,
    seed: Annotated[int | None, typer.Option(help="Override the config's seed.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress output.")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted run.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite",
                                            help="Replace an existing run directory.")] = False,
    ray_address: Annotated[str | None, typer.Option(
        help="Train the ensemble members of models with a uq: section as Ray tasks on this "
             "cluster ('auto', 'ray://host:10001'; 'local' starts a local instance).")] = None,
    threads: Annotated[int | None, typer.Option(
        min=1, help="CPU threads for torch (default: torch's, one per core). Small models run "
                    "fastest on 1; use fewer threads than free cores on a shared machine.")
    ] = None,
) -> None:
    """Run the study a config describes; writes metrics, checkpoints, figures and a report."""
    import torch

    from scidl.experiments import load_config, run

    if threads is not None:
        torch.set_num_threads(threads)

    overrides = {"seed": seed} if seed is not None else None
    cfg = load_config(config, overrides)
    if ray_address is not None:
        cfg = _on_ray(cfg, None if ray_address == "local" else ray_address)
    run_dir = run(cfg, out or Path("runs") / cfg.name, resume=resume, overwrite=overwrite,
                  quiet=quiet)
    _summarise(run_dir, quiet)


def _on_ray(cfg, address: str | None):
    """The config with every uq model's members sent to Ray at ``address``."""
    from scidl.errors import ConfigError

    models = {}
    for name, model in getattr(cfg, "models", {}).items():
        uq = getattr(model, "uq", None)
        if uq is not None:
            model = model.model_copy(update={"uq": uq.model_copy(
                update={"backend": "ray", "ray_address": address})})
        models[name] = model
    if not any(getattr(m, "uq", None) is not None for m in models.values()):
        raise ConfigError("--ray-address applies to models with a uq: section; this config "
                          "has none")
    return cfg.model_copy(update={"models": models})


@app.command("demo")
def demo_command(
    out: Annotated[Path, typer.Option(help="Run directory.")] = Path("runs/demo"),
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress output.")] = False,
) -> None:
    """Run the bundled Burgers study (FNO and PINN against the spectral reference)."""
    from scidl.experiments import load_config, run

    config_path = files("scidl") / "configs" / DEMO_CONFIG
    cfg = load_config(Path(str(config_path)))
    run_dir = run(cfg, out, overwrite=True, quiet=quiet)
    _summarise(run_dir, quiet)


@app.command("evaluate")
def evaluate_command(
    run_dir: Annotated[Path, typer.Argument(help="A finished run directory.")],
) -> None:
    """Reload a run's checkpoints, recompute its metrics, and compare with metrics.json."""
    from scidl.experiments import evaluate_run

    metrics = evaluate_run(run_dir)
    typer.echo(json.dumps(metrics, indent=2))
    stored_path = run_dir / "metrics.json"
    if stored_path.exists():
        stored = json.loads(stored_path.read_text())
        same = _close(stored, metrics)
        typer.echo(f"{'matches' if same else 'DIFFERS FROM'} the stored {stored_path}", err=True)
        if not same:
            raise typer.Exit(1)


def _close(a, b, rtol: float = 1e-5) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k], rtol) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y, rtol) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return abs(a - b) <= rtol * max(abs(a), abs(b), 1e-12)
    return a == b


@data_app.command("generate")
def data_generate_command(
    family: Annotated[str, typer.Argument(
        help="Dataset family: burgers, heat, advection, allen_cahn, fisher_kpp, kdv, "
             "kuramoto_sivashinsky, navier_stokes (2D) or darcy (steady 2D).")],
    out: Annotated[Path, typer.Option(help="HDF5 file to write.")],
    param: Annotated[list[str] | None, typer.Option(
        "--param", help="k=v: a PDE parameter (nu=0.001), an initial-condition parameter "
                        "(sigma, tau, gamma) or setting=fno-paper|fno-repository. Repeatable.")
    ] = None,
    n: Annotated[int, typer.Option(help="Number of trajectories.")] = 100,
    res: Annotated[int | None, typer.Option(
        help="Saved grid points per dimension (default 128; darcy: 85 nodes).")] = None,
    steps: Annotated[int, typer.Option(help="Saved times, including t=0.")] = 11,
    t_final: Annotated[float | None, typer.Option(help="Final time.")] = None,
    solver_res: Annotated[int | None, typer.Option(
        help="Solver grid points (default: at least 1024 in 1D, 256 in 2D).")] = None,
    compute_res: Annotated[int | None, typer.Option(
        help="Grid the equation is solved on, a divisor of --solver-res (default: the "
             "coarsest within --tolerance).")] = None,
    dt: Annotated[float | None, typer.Option(
        help="Solver step (default: calibrated to --tolerance by step halving).")] = None,
    tolerance: Annotated[float, typer.Option(
        help="Relative L2 change of the saved states allowed to the calibrated dt and "
             "compute grid.")] = 1e-6,
    seed: Annotated[int, typer.Option(help="Seed of the initial conditions.")] = 0,
    chunk_size: Annotated[int, typer.Option(help="Trajectories solved and saved at once.")] = 64,
    subsample: Annotated[list[int] | None, typer.Option(
        help="Also write res/F from the same solve to OUT_r{res/F}.h5. Repeatable.")] = None,
    also_res: Annotated[list[int] | None, typer.Option(
        help="darcy: also write this many nodes per side (subsampling --solver-res) from the "
             "same solves to OUT_r{N}.h5, e.g. --res 85 --also-res 141. Repeatable.")] = None,
    resume: Annotated[bool, typer.Option(
        help="Continue an interrupted generation (OUT.partial) with the same recipe.")] = True,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress output.")] = False,
) -> None:
    """Solve FAMILY from random initial conditions into self-describing HDF5 file(s)."""
    from tqdm.auto import tqdm

    from scidl.data import TrajectoryRecipe, write_trajectories

    if n < 1 or (res is not None and res < 8):
        raise typer.BadParameter("--n must be at least 1 and --res at least 8")
    params = {}
    for item in param or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"--param takes k=v, got {item!r}")
        params[key.strip()] = value.strip()
    if family == "darcy":
        paths = _generate_darcy(params, n=n, res=res, solver_res=solver_res, seed=seed,
                                chunk_size=chunk_size, out=out, resume=resume, quiet=quiet,
                                also=tuple(also_res or ()))
        if not quiet:
            for path in paths:
                typer.echo(f"wrote {path}")
        return
    if also_res:
        raise typer.BadParameter("--also-res applies to darcy; use --subsample here")
    if not tolerance > 0:
        raise typer.BadParameter("--tolerance must be positive")
    options = {"resolution": res or 128, "n_times": steps, "solver_resolution": solver_res,
               "compute_resolution": compute_res, "dt": dt, "tolerance": tolerance,
               "seed": seed, "chunk_size": chunk_size}
    if t_final is not None:
        options["t_final"] = t_final
    try:
        recipe = TrajectoryRecipe.build(family, params, **options)
    except ValueError as err:
        raise ScidlError(str(err)) from None
    with tqdm(total=n, desc=family, unit="traj", disable=quiet) as bar:
        paths = write_trajectories(recipe, n, out, subsample=tuple(subsample or ()),
                                   resume=resume, progress=lambda done: bar.update(done - bar.n))
    if not quiet:
        for path in paths:
            typer.echo(f"wrote {path}")


def _generate_darcy(params: dict, *, n: int, res: int | None, solver_res: int | None, seed: int,
                    chunk_size: int, out: Path, resume: bool, quiet: bool,
                    also: tuple[int, ...] = ()) -> list[Path]:
    from tqdm.auto import tqdm

    from scidl.data import DarcyRecipe, write_darcy

    allowed = {"high", "low", "source", "average"}
    unknown = set(params) - allowed
    if unknown:
        raise ScidlError(f"unknown parameter(s) {sorted(unknown)} for darcy; use {sorted(allowed)}")
    values = {k: (v if k == "average" else float(v)) for k, v in params.items()}
    try:
        recipe = DarcyRecipe(resolution=res or 85, solver_resolution=solver_res or 421,
                             seed=seed, chunk_size=chunk_size, **values)
        for s in also:
            recipe.stride_for(s)
    except ValueError as err:
        raise ScidlError(str(err)) from None
    with tqdm(total=n, desc="darcy", unit="sample", disable=quiet) as bar:
        return write_darcy(recipe, n, out, resume=resume, also=also,
                           progress=lambda done: bar.update(done - bar.n))


@data_app.command("info")
def data_info_command(
    path: Annotated[Path, typer.Argument(help="An HDF5 dataset.")],
    verify: Annotated[bool, typer.Option(help="Check the stored checksum.")] = True,
) -> None:
    """Print a dataset's shapes and metadata (and check its checksum)."""
    import h5py

    from scidl.data import resolve_data_path, verify_checksum

    resolved = resolve_data_path(path)
    with h5py.File(resolved, "r") as f:
        typer.echo(f"{resolved}")
        for name, array in f.items():
            typer.echo(f"  {name}: {tuple(array.shape)} {array.dtype}")
        for key, value in f.attrs.items():
            value = value.decode() if isinstance(value, bytes) else value
            typer.echo(f"  {key}: {value}")
    if verify:
        status = verify_checksum(resolved)
        typer.echo("  checksum: " + {True: "ok", False: "MISMATCH", None: "none stored"}[status])
        if status is False:
            raise typer.Exit(1)


def _summarise(run_dir: Path, quiet: bool) -> None:
    if quiet:
        return
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for name, m in metrics.get("models", {}).items():
        if m["kind"] == "forecast":
            typer.echo(f"{name:>10s} (forecast): high-correlation time "
                       f"{m['high_correlation_time_mean']:.4g}, RMSE at lead {m['leads']} "
                       f"{m['rmse_last']:.3e}")
            continue
        error = m.get("test_rel_l2", m.get("rel_l2"))
        typer.echo(f"{name:>10s} ({m['kind']}): relative L2 {error:.3e}")
    for name, m in metrics.get("studies", {}).items():
        typer.echo(f"{name:>10s} ({m['kind']}): {m.get('headline', 'see the report')}")
    typer.echo(f"report: {run_dir / 'report.html'}")


def main(argv: list[str] | None = None) -> None:
    """Entry point. Errors scidl raises on purpose become one line on stderr and exit status 2;
    usage errors are reported by the argument parser (also status 2)."""
    try:
        app(args=argv)
    except ScidlError as err:
        typer.echo(f"error: {err}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
