"""Dataset recipes: which equation, domain, initial conditions and times make a dataset.

A *family* maps a name (``burgers``, ``heat``, ...) to its PDE class, its default parameters,
domain and initial-condition distribution. A :class:`TrajectoryRecipe` is one fully specified
dataset of that family; it is stored in the file's metadata, so a file says how to remake it.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from scidl.numerics import GaussianRandomField, PeriodicGrid, RandomSineSeries
from scidl.pdes import PDES, TimeDependentPDE

InitialSampler = Callable[[int, PeriodicGrid, torch.Generator, dict], torch.Tensor]


def _grf_sampler(n: int, grid: PeriodicGrid, generator: torch.Generator,
                 params: dict) -> torch.Tensor:
    field_ = GaussianRandomField(params["sigma"], params["tau"], params["gamma"])
    return field_.sample(n, grid, generator=generator)


def _sines_sampler(n: int, grid: PeriodicGrid, generator: torch.Generator,
                   params: dict) -> torch.Tensor:
    series = RandomSineSeries(int(params["terms"]), int(params["max_wavenumber"]),
                              (params["amplitude_min"], params["amplitude_max"]))
    u = series.sample(n, grid, generator=generator)
    if params.get("unit_interval", 0.0):  # rescale each sample onto [0, 1] (reaction problems)
        dims = tuple(range(1, u.ndim))
        low, high = u.amin(dim=dims, keepdim=True), u.amax(dim=dims, keepdim=True)
        u = (u - low) / (high - low).clamp_min(1e-12)
    return u


#: Initial-condition kinds: name -> sampler(n, grid, generator, parameters)
INITIAL_CONDITIONS: dict[str, InitialSampler] = {"grf": _grf_sampler, "sines": _sines_sampler}

#: Named settings: name -> (initial-condition kind, its parameters)
SETTINGS: dict[str, tuple[str, dict]] = {
    # The FNO paper's text: N(0, 625 (-Laplacian + 25 I)^-2).
    "fno-paper": ("grf", {"sigma": 25.0, "tau": 5.0, "gamma": 2.0}),
    # The FNO paper's repository generator (gen_burgers1.m): gamma 2.5, tau 7, sigma 49.
    "fno-repository": ("grf", {"sigma": 49.0, "tau": 7.0, "gamma": 2.5}),
    # The FNO paper's Navier-Stokes vorticity: N(0, 7^(3/2) (-Laplacian + 49 I)^-2.5).
    "fno-navier-stokes": ("grf", {"sigma": 7.0**0.75, "tau": 7.0, "gamma": 2.5}),
    # PDEBench-style smooth random sums of sines.
    "sines": ("sines", {"terms": 2.0, "max_wavenumber": 4.0, "amplitude_min": 0.0,
                        "amplitude_max": 1.0}),
    # The same, rescaled onto [0, 1] per sample, for reaction-diffusion (u is a density).
    "sines-unit": ("sines", {"terms": 2.0, "max_wavenumber": 4.0, "amplitude_min": 0.0,
                             "amplitude_max": 1.0, "unit_interval": 1.0}),
}


@dataclass(frozen=True)
class Family:
    """Defaults of one equation family for dataset generation."""

    equation: str
    parameters: dict = field(default_factory=dict)  # overrides of the PDE's own defaults
    setting: str = "fno-paper"
    length: float = 1.0
    t_final: float = 1.0
    dimensions: int = 1
    solver_resolution: int = 1024  # default solver grid (at least the saved resolution)


#: name -> family; the PDE class is ``scidl.pdes.PDES[family.equation]``
FAMILIES: dict[str, Family] = {
    "burgers": Family("burgers", {"nu": 0.1}),  # the FNO paper's text setting
    "heat": Family("heat"),
    "advection": Family("advection", {"c": 0.1}, setting="sines", t_final=2.0),
    "allen_cahn": Family("allen_cahn", setting="sines"),
    "fisher_kpp": Family("fisher_kpp", {"diffusivity": 1e-3, "rate": 1.0}, setting="sines-unit"),
    "kdv": Family("kdv", setting="sines", length=32.0, t_final=5.0),
    # PDE-Refiner's setting: L = 64 (Lippe et al. 2023).
    "kuramoto_sivashinsky": Family("kuramoto_sivashinsky", setting="sines", length=64.0,
                                   t_final=20.0),
    # The FNO paper's forced vorticity on the unit torus (nu = 1e-3).
    "navier_stokes": Family("navier_stokes", {"nu": 1e-3}, setting="fno-navier-stokes",
                            t_final=10.0, dimensions=2, solver_resolution=256),
}


@dataclass(frozen=True)
class TrajectoryRecipe:
    """One dataset of trajectories, fully specified (the defaults come from its family).

    Three grids: the initial states are drawn on ``solver_resolution`` points per dimension (the
    dataset's reference grid, 8,192 for the FNO paper's Burgers sets); the equation is solved
    on ``compute_resolution`` points, which divides it, and the states are saved at
    ``resolution`` points. Left at ``None``, ``dt`` and ``compute_resolution`` are calibrated
    (:func:`scidl.data.calibrate`) so that neither changes the saved states by more than
    ``tolerance`` (relative L2): a smooth solution is solved on the few modes it needs and
    interpolated back, spectrally, onto the saved grid. The saved initial states are always the
    drawn ones, exactly.
    """

    family: str
    parameters: dict = field(default_factory=dict)  # PDE parameters
    initial_condition: str = "grf"
    initial_parameters: dict = field(default_factory=dict)
    resolution: int = 128
    solver_resolution: int = 1024
    length: float = 1.0
    t_final: float = 1.0
    n_times: int = 11
    dt: float | None = None  # None: calibrated to ``tolerance`` (see scidl.data.calibrate)
    # grid the equation is solved on (a divisor of solver_resolution); None: calibrated too
    compute_resolution: int | None = None
    tolerance: float = 1e-6
    seed: int = 0
    chunk_size: int = 64

    @classmethod
    def build(cls, family: str, params: dict | None = None, **options) -> TrajectoryRecipe:
        """A recipe from a family name and ``k=v`` parameters, sorted into PDE parameters and
        initial-condition parameters; ``setting`` picks a named initial-condition setting."""
        if family not in FAMILIES:
            raise ValueError(f"unknown dataset family {family!r}; known: {sorted(FAMILIES)}")
        fam = FAMILIES[family]
        params = dict(params or {})
        setting = str(params.pop("setting", fam.setting))
        if setting not in SETTINGS:
            raise ValueError(f"unknown setting {setting!r}; known: {sorted(SETTINGS)}")
        ic_name, ic_defaults = SETTINGS[setting]
        pde_fields = {f.name for f in dataclasses.fields(PDES[fam.equation])}
        ic_fields = set(ic_defaults)
        unknown = set(params) - pde_fields - ic_fields
        if unknown:
            raise ValueError(
                f"unknown parameter(s) {sorted(unknown)} for {family}; PDE parameters: "
                f"{sorted(pde_fields)}, initial-condition parameters: {sorted(ic_fields)}, "
                "or setting"
            )
        pde_params = {**fam.parameters,
                      **{k: float(v) for k, v in params.items() if k in pde_fields}}
        ic_params = {**ic_defaults,
                     **{k: float(v) for k, v in params.items() if k in ic_fields}}
        options.setdefault("length", fam.length)
        options.setdefault("t_final", fam.t_final)
        resolution = options.get("resolution", 128)
        if options.get("solver_resolution") is None:
            options["solver_resolution"] = max(resolution, fam.solver_resolution)
        return cls(family=family, parameters=pde_params, initial_condition=ic_name,
                   initial_parameters=ic_params, **options)

    def __post_init__(self):
        if self.solver_resolution % self.resolution:
            raise ValueError(f"resolution {self.resolution} must divide the solver resolution "
                             f"{self.solver_resolution}")
        if self.compute_resolution is not None and not (
                8 <= self.compute_resolution <= self.solver_resolution
                and self.solver_resolution % self.compute_resolution == 0):
            raise ValueError(f"compute resolution {self.compute_resolution} must be at least 8 "
                             f"and divide the solver resolution {self.solver_resolution}")
        if self.n_times < 1 or self.t_final <= 0 or self.chunk_size < 1 or self.tolerance <= 0:
            raise ValueError("need n_times >= 1, t_final > 0, chunk_size >= 1 and tolerance > 0")

    def pde(self) -> TimeDependentPDE:
        return PDES[FAMILIES[self.family].equation](**self.parameters)

    def solver_grid(self) -> PeriodicGrid:
        dims = FAMILIES[self.family].dimensions
        return PeriodicGrid((self.solver_resolution,) * dims, self.length)

    def compute_grid(self) -> PeriodicGrid:
        """The grid the equation is solved on: ``compute_resolution`` points per dimension
        (the solver grid while that is not calibrated yet)."""
        dims = FAMILIES[self.family].dimensions
        return PeriodicGrid((self.compute_resolution or self.solver_resolution,) * dims,
                            self.length)

    def times(self) -> torch.Tensor:
        return torch.linspace(0.0, self.t_final, self.n_times, dtype=torch.float64)

    def initial_states(self, chunk: int, n: int) -> torch.Tensor:
        """The initial states of chunk ``chunk`` (``n`` of them) on the solver grid."""
        sampler = INITIAL_CONDITIONS[self.initial_condition]
        return sampler(n, self.solver_grid(), chunk_generator(self.seed, chunk),
                       self.initial_parameters)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def chunk_generator(seed: int, chunk: int) -> torch.Generator:
    """The random generator of one chunk: independent streams for every ``(seed, chunk)``, so a
    dataset can be generated, and resumed, chunk by chunk with the same result."""
    digest = hashlib.sha256(f"scidl:{seed}:{chunk}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)
