"""Config schema of a PINN run (``task: pinn``): one PDE problem, solved (or inverted) by a PINN.

```yaml
task: pinn
problem:
  equation: burgers
  parameters: {nu: 0.0031830988618379067}
  domain: {geometry: {type: interval, lo: -1, hi: 1}, time: [0, 0.99]}
  conditions:
    - {type: initial, value: "-sin(pi*x)", points: 50}
    - {type: dirichlet, value: 0, points: 50}
  reference: {dataset: burgers}            # or {formula: "...", grid: {x: 256, t: 100}}
network: {width: 20, hidden_layers: 8}
collocation: {points: 10000, method: lhs}
training: {stages: [{optimizer: lbfgs, steps: 8000}]}
```

Formulas are strings over the coordinate names (``x, y, z, t``), ``pi`` and the functions of
:mod:`scidl.pinn.expressions`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from scidl.experiments._schema import _Strict
from scidl.experiments.config import TrainingConfig

Formula = str | float


class GeometryConfig(_Strict):
    """``interval`` (lo, hi numbers), ``rectangle`` / ``box`` (lo, hi lists), ``disk`` (center,
    radius) or ``polygon`` (vertices)."""

    type: Literal["interval", "rectangle", "box", "disk", "polygon"]
    lo: float | list[float] | None = None
    hi: float | list[float] | None = None
    center: list[float] | None = None
    radius: float | None = None
    vertices: list[list[float]] | None = None

    @model_validator(mode="after")
    def _complete(self) -> GeometryConfig:
        needs = {"interval": ("lo", "hi"), "rectangle": ("lo", "hi"), "box": ("lo", "hi"),
                 "disk": ("center", "radius"), "polygon": ("vertices",)}[self.type]
        missing = [k for k in needs if getattr(self, k) is None]
        if missing:
            raise ValueError(f"a {self.type} needs {', '.join(needs)}; missing {missing}")
        return self


class DomainConfig(_Strict):
    geometry: GeometryConfig
    #: ``[t0, t1]`` for a time-dependent equation
    time: tuple[float, float] | None = None


class ConditionConfig(_Strict):
    """A soft condition. ``value`` is a formula (for a system, one formula per channel);
    ``where`` a formula that is positive on the part of the boundary it applies to."""

    type: Literal["initial", "dirichlet", "neumann", "periodic"]
    value: Formula | list[Formula] = 0.0
    points: int = Field(256, ge=1)
    method: Literal["uniform", "sobol", "lhs"] = "sobol"
    weight: float = Field(1.0, ge=0)
    where: str | None = None
    #: periodic: the coordinate (``x``, ``y``...); the derivative matches too
    dim: str = "x"
    channels: list[int] | None = None
    name: str | None = None


class HardConfig(_Strict):
    """Output transform ``u = offset + factor * N`` satisfying conditions exactly; ``factor``
    ``distance`` means the geometry's distance function (times ``t - t0`` with time)."""

    offset: Formula | list[Formula] | None = None
    factor: str


class ReferenceConfig(_Strict):
    """What the PINN is scored against: a bundled dataset file (``burgers``, ``allen_cahn``
    under ``$SCIDL_DATA/pinn`` or ``path``) or an exact ``formula`` on a ``grid``."""

    dataset: Literal["burgers", "allen_cahn"] | None = None
    path: str | None = None
    formula: Formula | list[Formula] | None = None
    grid: dict[str, int] = {"x": 128, "y": 128, "t": 64}

    @model_validator(mode="after")
    def _one_source(self) -> ReferenceConfig:
        if (self.dataset is None) == (self.formula is None):
            raise ValueError("a reference needs exactly one of dataset and formula")
        return self


class UnknownConfig(_Strict):
    initial: float
    positive: bool = True
    #: the true value, when known, to report the estimate's relative error
    truth: float | None = None


class ObservationsConfig(_Strict):
    """Measurements for an inverse problem, drawn from the reference: ``points`` random points
    of its grid (seeded), with Gaussian noise of ``noise`` times the std of the values."""

    points: int = Field(2000, ge=1)
    noise: float = Field(0.0, ge=0)
    weight: float = Field(1.0, ge=0)
    seed: int = 0


class ProblemConfig(_Strict):
    equation: str
    #: PDE parameters: numbers, or formulas of the coordinates (e.g. a Poisson ``source``)
    parameters: dict[str, Formula] = {}
    domain: DomainConfig
    conditions: list[ConditionConfig] = []
    hard: HardConfig | None = None
    reference: ReferenceConfig | None = None
    unknowns: dict[str, UnknownConfig] = {}
    observations: ObservationsConfig | None = None

    @model_validator(mode="after")
    def _inverse_needs_data(self) -> ProblemConfig:
        if self.unknowns and (self.observations is None or self.reference is None):
            raise ValueError("unknown parameters need observations (and a reference to draw "
                             "them from)")
        return self


class NetworkConfig(_Strict):
    kind: Literal["mlp", "siren"] = "mlp"
    width: int = Field(64, ge=1)
    hidden_layers: int = Field(4, ge=1)
    activation: Literal["tanh", "gelu", "silu", "sigmoid"] = "tanh"
    omega_0: float = Field(30.0, gt=0)
    fourier_features: int = Field(0, ge=0)
    fourier_sigma: float = Field(1.0, gt=0)
    #: coordinates the network is exactly periodic in (a hard periodic condition)
    periodic: list[str] = []
    periodic_modes: int = Field(1, ge=1)


class CollocationConfig(_Strict):
    points: int = Field(4096, ge=1)
    method: Literal["uniform", "sobol", "lhs"] = "sobol"
    resample_every: int | None = Field(None, ge=1)


class RefinementConfig(_Strict):
    every: int = Field(1000, ge=1)
    candidates: int = Field(10000, ge=1)
    add: int = Field(100, ge=1)
    until: int | None = None


class AdaptiveSamplingConfig(_Strict):
    """RAD: redraw the collocation points where the residual is large
    (:class:`scidl.pinn.AdaptiveSampling`)."""

    every: int = Field(1000, ge=1)
    candidates: int = Field(100000, ge=1)
    k: float = Field(1.0, ge=0)
    c: float = Field(1.0, ge=0)
    until: int | None = None
    start: int = Field(0, ge=0)


class BalancingConfig(_Strict):
    every: int = Field(100, ge=1)
    alpha: float = Field(0.1, gt=0, le=1)
    until: int | None = None
    max_weight: float | None = Field(None, gt=0)


class PINNTaskConfig(_Strict):
    """A whole ``task: pinn`` run."""

    task: Literal["pinn"]
    name: str = "pinn"
    seed: int = 0
    device: str = "auto"
    dtype: Literal["float32", "float64"] = "float32"
    problem: ProblemConfig
    network: NetworkConfig = NetworkConfig()
    collocation: CollocationConfig = CollocationConfig()
    derivatives: Literal["forward", "autograd"] = "forward"
    #: a weight per equation of a system inside the residual term
    channel_weights: list[float] | None = None
    #: torch.compile the loss (forward mode); ``auto``: on CPU/GPU when training is long
    compile: Literal["auto", "on", "off"] = "auto"
    refinement: RefinementConfig | None = None
    adaptive_sampling: AdaptiveSamplingConfig | None = None
    balancing: BalancingConfig | None = None
    training: TrainingConfig = TrainingConfig()

    def to_dict(self) -> dict:
        return self.model_dump(mode="json")
