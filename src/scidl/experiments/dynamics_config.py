"""Config schema of a dynamics run (``task: dynamics``): named studies of simulated systems.

A study names a set-up of :mod:`scidl.sims.setups` (``system: {name: kepler, eccentricity: 0.5}``)
and what to do with it:

* ``kind: stability`` -- integrate with several methods at one step and track the energy error;
* ``kind: inverse`` -- recover physical constants from a simulated observation;
* ``kind: learned`` -- fit a Hamiltonian NN and a neural ODE to trajectories, compare energy drift;
* ``kind: swing_up`` -- optimise a torque sequence that raises a pendulum;
* ``kind: simulator`` -- train a learned particle simulator (GNS) and roll it out against the
  true one.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from scidl.experiments._schema import _Strict

SECOND_ORDER_METHODS = Literal["verlet", "leapfrog", "symplectic_euler", "rk4", "midpoint",
                               "euler"]


class SystemConfig(_Strict):
    """A named set-up and its parameters (see ``scidl.sims.setups.SETUPS``)."""

    name: str
    parameters: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known(self) -> SystemConfig:
        import inspect

        from scidl.sims.setups import SETUPS

        if self.name not in SETUPS:
            raise ValueError(f"unknown system {self.name!r}; known: {sorted(SETUPS)}")
        allowed = set(inspect.signature(SETUPS[self.name]).parameters)
        unknown = sorted(set(self.parameters) - allowed)
        if unknown:
            raise ValueError(f"unknown parameter(s) {unknown} for system {self.name!r}; "
                             f"it takes {sorted(allowed)}")
        return self


class StabilityStudy(_Strict):
    """Energy error of each method at one step over ``steps`` steps (mechanical systems)."""

    kind: Literal["stability"]
    system: SystemConfig
    methods: list[SECOND_ORDER_METHODS] = Field(default_factory=lambda: ["verlet", "rk4"],
                                                min_length=1)
    step_size: float = Field(gt=0)
    steps: int = Field(100_000, ge=10)
    records: int = Field(60, ge=4)  # energy read at this many log-spaced step counts


class InverseStudy(_Strict):
    """Recover ``unknown`` constants, started ``initial_factor`` away from the truth, from the
    simulated trajectory at ``n_times`` times in ``[0, t_final]`` (with optional noise)."""

    kind: Literal["inverse"]
    system: SystemConfig
    unknown: list[str] = Field(min_length=1)
    initial_factor: float = Field(1.3, gt=0)
    t_final: float = Field(gt=0)
    n_times: int = Field(101, ge=2)
    noise: float = Field(0.0, ge=0)  # std of Gaussian noise, relative to the state's RMS
    method: Literal["rk4", "dopri5", "midpoint", "euler"] = "rk4"
    step_size: float | None = Field(None, gt=0)
    optimizer: Literal["lbfgs", "adam"] = "lbfgs"
    iterations: int = Field(100, ge=1)
    lr: float = Field(1.0, gt=0)


class LearnedStudy(_Strict):
    """A Hamiltonian NN and a neural ODE fitted to the same data, rolled out far beyond it."""

    kind: Literal["learned"]
    system: SystemConfig
    trajectories: int = Field(25, ge=1)
    t_final: float = Field(3.0, gt=0)
    n_times: int = Field(31, ge=2)
    noise: float = Field(0.0, ge=0)
    width: int = Field(200, ge=1)
    steps: int = Field(2000, ge=1)
    lr: float = Field(1e-3, gt=0)
    rollout_time: float = Field(100.0, gt=0)
    rollout_step: float = Field(0.01, gt=0)


class SwingUpStudy(_Strict):
    """A piecewise-constant torque sequence that raises the pendulum to upright."""

    kind: Literal["swing_up"]
    system: SystemConfig = SystemConfig(name="pendulum", parameters={"angle": 0.0})
    horizon: float = Field(3.0, gt=0)
    controls: int = Field(30, ge=1)
    max_torque: float = Field(5.0, gt=0)
    effort_weight: float = Field(1e-3, ge=0)
    iterations: int = Field(200, ge=1)


class SimulatorStudy(_Strict):
    """A learned particle simulator (GNS, :mod:`scidl.geometric.gns`) trained on one-step
    accelerations of a particle system's trajectories (a set-up with a ``seed`` parameter:
    trajectory ``k`` uses ``seed + k``) and rolled out against the true simulator."""

    kind: Literal["simulator"]
    system: SystemConfig = SystemConfig(name="soft_spheres")
    train_trajectories: int = Field(16, ge=1)
    test_trajectories: int = Field(4, ge=1)
    frames: int = Field(100, ge=8)  # training frames per trajectory (after the burn-in)
    burn_in: int = Field(20, ge=0)  # frames dropped at the start of every trajectory
    frame_dt: float = Field(0.05, gt=0)  # time between frames (the GNS step)
    substeps: int = Field(10, ge=1)  # velocity-Verlet steps per frame
    history: int = Field(5, ge=1)  # velocities in the node features
    radius: float = Field(1.5, gt=0)  # connectivity radius
    hidden: int = Field(64, ge=1)
    message_passing: int = Field(4, ge=0)
    mlp_layers: int = Field(2, ge=1)
    noise_std: float = Field(3e-3, ge=0)  # random-walk noise, std of the last input velocity
    batch_size: int = Field(8, ge=1)  # windows (graphs) per training step
    steps: int = Field(2000, ge=1)
    lr: float = Field(1e-3, gt=0)
    rollout_steps: int = Field(100, ge=1)
    strip_frames: int = Field(6, ge=2)  # panels of the rollout frame strip


Study = Annotated[StabilityStudy | InverseStudy | LearnedStudy | SwingUpStudy | SimulatorStudy,
                  Field(discriminator="kind")]
STUDY_KINDS = ("stability", "inverse", "learned", "swing_up", "simulator")


class DynamicsRunConfig(_Strict):
    """A run of one or more dynamics studies, written to one run directory and report."""

    task: Literal["dynamics"]
    name: str = "dynamics"
    seed: int = 0
    studies: dict[str, Study] = Field(min_length=1)

    def to_dict(self) -> dict[str, Any]:
        """The resolved config (defaults filled in), as plain YAML-ready values."""
        return self.model_dump(mode="json")
