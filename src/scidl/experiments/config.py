"""Typed config schema of a run. Unknown keys and wrong types are errors, reported in one sentence.

A run config names the data (a file, or a recipe for scidl's own solver) and one or more models to
train on it: neural operators (``kind: operator``) learn the solution map over the whole dataset,
PINNs (``kind: pinn``) solve one trajectory's initial-value problem from the PDE alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from scidl.errors import ConfigError
from scidl.experiments._schema import _Strict
from scidl.experiments.dynamics_config import STUDY_KINDS, DynamicsRunConfig


class InitialConditionConfig(_Strict):
    """Gaussian random field ``N(0, sigma^2 (-Laplacian + tau^2 I)^-gamma)``."""

    sigma: float = 25.0
    tau: float = 5.0
    gamma: float = 2.0


class DataConfig(_Strict):
    """Where the data come from: ``path`` to a file (scidl's HDF5, or a ``.pt`` file of
    tensors such as neuraloperator's example sets), or a recipe solved by scidl (``equation``:
    any family of ``scidl data generate``, ``darcy`` included).

    ``test_path`` reads the test set from a separate file; ``subsample`` keeps every k-th grid
    point along each spatial axis of both sets (e.g. 8,192 -> 256 with 32).
    """

    path: str | None = None
    test_path: str | None = None
    equation: str = "burgers"
    parameters: dict[str, float] = Field(default_factory=dict)  # the family's defaults
    initial_condition: InitialConditionConfig = InitialConditionConfig()
    resolution: int = Field(128, ge=8)
    solver_resolution: int | None = Field(None, ge=8)
    compute_resolution: int | None = Field(None, ge=8)
    t_final: float = Field(1.0, gt=0)
    n_times: int = Field(11, ge=2)
    dt: float | None = Field(None, gt=0)
    seed: int = 0
    n_train: int = Field(1000, ge=1)
    n_test: int = Field(100, ge=1)
    subsample: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _path_or_recipe(self) -> DataConfig:
        recipe = self.model_fields_set - set(FILE_KEYS)
        if self.path is not None and recipe:
            raise ValueError(
                f"data.path is given, so the generation keys {sorted(recipe)} do not apply"
            )
        if self.test_path is not None and self.path is None:
            raise ValueError("data.test_path needs data.path (the training file)")
        if self.path is None:
            from scidl.data.recipes import FAMILIES
            known = sorted([*FAMILIES, "darcy"])
            if self.equation not in known:
                raise ValueError(f"data.equation must be one of {known}, got {self.equation!r}")
        return self


#: The data keys that apply to a file (the rest describe a recipe).
FILE_KEYS = ("path", "test_path", "n_train", "n_test", "subsample")


class StageConfig(_Strict):
    """One optimiser phase; ``epochs`` (operators) is converted to steps with the batch size."""

    optimizer: Literal["adam", "adamw", "lbfgs"] = "adam"
    steps: int | None = Field(None, ge=1)
    epochs: int | None = Field(None, ge=1)
    lr: float = Field(1e-3, gt=0)
    schedule: Literal["cosine", "step", "onecycle", "constant"] = "cosine"
    weight_decay: float = Field(0.0, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _steps_or_epochs(cls, raw: Any) -> Any:
        if isinstance(raw, dict):
            if raw.get("steps") is not None and raw.get("epochs") is not None:
                raise ValueError("a training stage takes steps or epochs, not both")
            if raw.get("steps") is None and raw.get("epochs") is None:
                raw = {**raw, "steps": 1000}
        return raw


class GalileanConfig(_Strict):
    """Random Galilean boosts ``u0 + c -> u_T(x - a c T) + c`` of each training pair
    (:class:`scidl.numerics.GalileanBoost`), ``|c| <= max_speed``. The runner takes ``a`` from
    the data's equation (:meth:`scidl.pdes.TimeDependentPDE.galilean_coefficient`; an equation
    without the symmetry is an error), ``T`` from the input and target times and the period
    from the data. ``on_grid`` rounds each shift to whole grid spacings (an exact roll: right
    for subsampled fields with shocks)."""

    max_speed: float = Field(gt=0)
    on_grid: bool = True


class TrainingConfig(_Strict):
    stages: list[StageConfig] = Field(default_factory=lambda: [StageConfig()], min_length=1)
    batch_size: int = Field(20, ge=1)
    loss: Literal["relative_l2", "mse", "relative_h1"] = "relative_l2"
    augment: list[Literal["shift", "reflect", "odd_reflect"]] = Field(default_factory=list)
    galilean: GalileanConfig | None = None
    log_every: int = Field(10, ge=1)
    checkpoint_every: int = Field(200, ge=1)

    def to_stages(self, steps_per_epoch: int = 1) -> list:
        """The loop's :class:`~scidl.train.Stage` list, ``epochs`` converted to steps."""
        from scidl.train import Stage

        out = []
        for stage in self.stages:
            values = stage.model_dump()
            epochs = values.pop("epochs")
            if epochs is not None:
                values["steps"] = epochs * steps_per_epoch
            out.append(Stage(**values))
        return out


class ModelConfig(_Strict):
    """A registered model by ``name`` and its keyword arguments (checked against the model's
    signature when it is built); the runner fills in channels, dimensions and sensors."""

    model_config = {"extra": "allow"}
    name: str = "fno1d"

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, raw: Any) -> Any:
        """Fill in the model's own defaults, so the resolved config shows every option."""
        if isinstance(raw, dict) and raw.get("name", "fno1d") in OPERATOR_MODELS:
            import inspect

            signature = inspect.signature(model_class(raw.get("name", "fno1d"))).parameters
            defaults = {k: p.default for k, p in signature.items()
                        if k not in FILLED and p.default is not inspect.Parameter.empty}
            raw = {**defaults, **raw}
        return raw

    @model_validator(mode="after")
    def _known(self) -> ModelConfig:
        if self.name not in OPERATOR_MODELS:
            raise ValueError(f"config key 'model.name' must be one of {list(OPERATOR_MODELS)}, "
                             f"got {self.name!r}")
        import inspect

        signature = inspect.signature(model_class(self.name)).parameters
        accepted = set(signature) - FILLED
        for key, value in (self.model_extra or {}).items():
            if key not in accepted:
                raise ValueError(f"{UNKNOWN_OPTION}{key}|{self.name} takes {sorted(accepted)}")
            default = signature[key].default
            annotation = str(signature[key].annotation)
            if isinstance(value, list) and "tuple" in annotation:
                continue  # one value per axis
            if isinstance(value, float) and "float" in annotation:
                continue
            for kind, words in ((bool, "true or false"), (int, "an integer"),
                                (float, "a number (float)"), (str, "a string")):
                if type(default) is kind:
                    ok = (type(value) is bool if kind is bool else
                          isinstance(value, (int, float)) and type(value) is not bool
                          if kind is float else type(value) is kind)
                    if not ok:
                        raise ValueError(f"{WRONG_TYPE}{key}|{words}|{value!r}")
                    break
        return self


#: models an operator run can train
OPERATOR_MODELS = ("fno1d", "fno", "deeponet", "pod_deeponet", "unet", "resnet_cnn")
#: model arguments the runner fills in from the data
FILLED = {"ndim", "in_channels", "out_channels", "grid", "sensors", "coordinates"}
UNKNOWN_OPTION = "unknown model option:"
WRONG_TYPE = "wrong model option type:"


def model_class(name: str) -> type:
    """The class an operator run builds for model ``name`` (DeepONets on grids)."""
    from scidl.models import MODELS
    from scidl.models.deeponet import GridDeepONet, GridPODDeepONet

    return {"deeponet": GridDeepONet, "pod_deeponet": GridPODDeepONet}.get(name, MODELS[name])


class PINOConfig(_Strict):
    """Physics-informed operator loss: the data's PDE residual on predicted trajectories,
    through spectral derivatives (``scidl.pdes.residual_loss``), added with ``weight``."""

    weight: float = Field(1.0, ge=0)


class UQConfig(_Strict):
    """Uncertainty for an operator run (docs/uq.md).

    ``members`` independently seeded copies of the model are trained (a deep ensemble;
    Lakshminarayanan et al. 2017) and predict a per-point mean and std. ``conformal`` holds out
    ``calibration`` of the training pairs and turns the predictions into split-conformal
    intervals of ``coverage`` at every grid point (normalised by the ensemble's std when there
    are several members). ``backend: ray`` trains the members as Ray tasks (``ray_address``:
    an existing cluster, else a local instance; ``pip install 'scidl[ray]'``).
    """

    members: int = Field(5, ge=1)
    conformal: bool = False
    calibration: float = Field(0.2, gt=0, lt=1)
    coverage: float = Field(0.9, gt=0, lt=1)
    backend: Literal["sequential", "ray"] = "sequential"
    ray_address: str | None = None

    @model_validator(mode="after")
    def _something(self) -> UQConfig:
        if self.members == 1 and not self.conformal:
            raise ValueError("uq needs members >= 2 (an ensemble) or conformal: true")
        return self


class OperatorRunConfig(_Strict):
    """A neural operator mapping an input field to a target field.

    For trajectories, ``input_time_index`` and ``target_time_index`` pick times (a list of
    indices stacks several as channels, a string ``"start:stop"`` is a slice); a field without
    a time axis (Darcy's ``a`` and ``u``) is used whole. ``space_time`` learns the whole
    target trajectory as one field over ``(t, *x)`` (the FNO paper's FNO-3D), the input
    repeated along time. ``rollout`` learns one step from the input times as history (the
    paper's recurrent FNO-2D) and predicts the target times by feeding predictions back, in
    training too (backpropagation through the whole rollout). ``normalizer``
    standardises inputs and targets with statistics of the training set (``global``: one mean
    and std per channel; ``pointwise``: per grid point, the paper's Darcy setting, only at the
    training resolution). ``evaluate_subsample`` and ``evaluate_paths`` add test errors at
    other resolutions (zero-shot super-resolution). ``init`` starts from the weights of a
    finished run's checkpoint (e.g. ``runs/darcy85/checkpoints/fno.pt``: fine-tuning a model
    trained on a coarser grid, or a curriculum). ``uq`` adds calibrated uncertainty
    (:class:`UQConfig`).
    """

    kind: Literal["operator"]
    model: ModelConfig = ModelConfig()
    training: TrainingConfig = TrainingConfig()
    input: str = "u"
    target: str = "u"
    input_time_index: int | list[int] | str = 0
    target_time_index: int | list[int] | str = -1
    space_time: bool = False
    rollout: bool = False
    normalizer: Literal["none", "global", "pointwise"] = "none"
    pino: PINOConfig | None = None
    evaluate_subsample: list[int] = Field(default_factory=list)
    evaluate_paths: dict[str, str] = Field(default_factory=dict)
    init: str | None = None
    uq: UQConfig | None = None

    @model_validator(mode="after")
    def _consistent(self) -> OperatorRunConfig:
        if any(k < 1 for k in self.evaluate_subsample):
            raise ValueError("evaluate_subsample strides must be positive")
        if self.space_time and self.rollout:
            raise ValueError("choose one of space_time and rollout")
        if self.space_time and self.training.augment:
            raise ValueError("training.augment acts on spatial axes; it does not apply to "
                             "space_time fields")
        if self.training.galilean is not None and (self.space_time or self.rollout
                                                   or self.normalizer != "none"):
            raise ValueError("training.galilean boosts one input field and one target field in "
                             "physical units: it does not combine with space_time, rollout or "
                             "a normalizer")
        if self.normalizer == "pointwise" and (self.evaluate_subsample or self.evaluate_paths):
            raise ValueError("a pointwise normalizer only applies at the training resolution; "
                             "use normalizer: global to evaluate at other resolutions")
        return self


class PINNNetworkConfig(_Strict):
    width: int = Field(64, ge=1)
    hidden_layers: int = Field(4, ge=1)
    activation: Literal["tanh", "gelu", "silu", "relu"] = "tanh"
    periodic_modes: int = Field(4, ge=1)


class PINNWeightsConfig(_Strict):
    residual: float = Field(1.0, ge=0)
    initial: float = Field(10.0, ge=0)
    boundary: float = Field(1.0, ge=0)


class PINNRunConfig(_Strict):
    """A PINN solving the initial-value problem of test trajectory ``sample``."""

    kind: Literal["pinn"]
    sample: int = Field(0, ge=0)
    network: PINNNetworkConfig = PINNNetworkConfig()
    boundary: Literal["hard-periodic", "soft-periodic"] = "hard-periodic"
    collocation: int = Field(2048, ge=1)
    boundary_points: int = Field(256, ge=1)
    resample_every: int = Field(1, ge=1)
    weights: PINNWeightsConfig = PINNWeightsConfig()
    training: TrainingConfig = TrainingConfig()


class ForecastSchemeConfig(_Strict):
    """How the one-step model is trained (:class:`scidl.forecast.AutoregressiveObjective`)."""

    mode: Literal["one-step", "unrolled", "pushforward"] = "one-step"
    unroll: int = Field(1, ge=1)
    random_unroll: bool = False
    noise_std: float = Field(0.0, ge=0)
    residual: bool = True
    augment: list[Literal["shift", "odd_reflect"]] = Field(default_factory=list)
    galilean: float | None = Field(None, gt=0)


class ForecastEnsembleConfig(_Strict):
    """An ensemble over perturbed initial states (:func:`scidl.forecast.perturbed_ensemble`):
    Gaussian noise of ``std`` (in field units) smoothed to the lowest ``smoothing`` modes."""

    members: int = Field(8, ge=2)
    std: float = Field(0.01, gt=0)
    smoothing: int | None = Field(20, ge=1)
    trajectories: int = Field(8, ge=1)


class ForecastRunConfig(_Strict):
    """A learned time stepper rolled out autoregressively (docs/forecasting.md).

    The model maps the state at one saved time to the next (``residual``: to the normalised
    increment); it is trained on windows of the training trajectories with the ``scheme``
    (one-step, unrolled or pushforward, input noise, symmetry augmentation, Galilean boosts)
    and rolled out from the first state of every test trajectory over all its saved times.
    Reported against lead time: RMSE, Pearson correlation, ACC (against the training mean
    state), spectrum error and the high-correlation time (correlation above ``threshold``);
    the drift of the spatial mean and mean square over a ``long_steps`` rollout (with its
    late-time energy spectrum against the test data's); with ``ensemble``, CRPS and
    spread-skill by lead. ``epochs`` of a stage count windows: ``N (T - k) / batch_size``
    steps each. ``skip_frames`` drops the first saved frames of every trajectory, training and
    test alike (a burn-in: the transient from the initial states to a chaotic attractor).
    """

    kind: Literal["forecast"]
    model: ModelConfig = ModelConfig()
    scheme: ForecastSchemeConfig = ForecastSchemeConfig()
    training: TrainingConfig = TrainingConfig()
    skip_frames: int = Field(0, ge=0)
    threshold: float = Field(0.8, gt=0, lt=1)
    long_steps: int = Field(0, ge=0)
    long_trajectories: int = Field(4, ge=1)
    ensemble: ForecastEnsembleConfig | None = None

    @model_validator(mode="after")
    def _plain_training(self) -> ForecastRunConfig:
        if self.training.augment or self.training.galilean is not None:
            raise ValueError("a forecast model takes its augmentation from scheme.augment and "
                             "scheme.galilean, not training.augment / training.galilean")
        if self.training.loss != "relative_l2":
            raise ValueError("a forecast model is trained on the MSE of its (normalised) "
                             "steps; training.loss does not apply")
        return self


ModelRunConfig = Annotated[OperatorRunConfig | PINNRunConfig | ForecastRunConfig,
                           Field(discriminator="kind")]


class ReportConfig(_Strict):
    samples: int = Field(4, ge=1)


class RunConfig(_Strict):
    """The whole run: data, models and report."""

    name: str = "run"
    seed: int = 0
    device: str = "auto"
    data: DataConfig = DataConfig()
    models: dict[str, ModelRunConfig] = Field(min_length=1)
    report: ReportConfig = ReportConfig()

    @model_validator(mode="after")
    def _pinn_sample_in_test_set(self) -> RunConfig:
        for name, model in self.models.items():
            if isinstance(model, PINNRunConfig) and model.sample >= self.data.n_test:
                raise ValueError(
                    f"models.{name}.sample is {model.sample}, but the test set has only "
                    f"{self.data.n_test} trajectories"
                )
        return self

    def to_dict(self) -> dict[str, Any]:
        """The resolved config (defaults filled in), as plain YAML-ready values.

        With ``data.path`` the generation keys do not apply and are left out, so that the
        result is a valid config again (``parse_config(cfg.to_dict()) == cfg``).
        """
        resolved = self.model_dump(mode="json")
        if self.data.path is not None:
            resolved["data"] = {k: v for k, v in resolved["data"].items() if k in FILE_KEYS}
        return resolved


_TYPE_WORDS = {
    "float": "a number (float)", "int": "an integer", "bool": "true or false",
    "string": "a string", "dict": "a mapping", "list": "a list", "model": "a mapping",
}


_TAGS = ("operator", "pinn", "forecast", *STUDY_KINDS)


def _describe(error: dict) -> str:
    loc = list(error["loc"])
    if len(loc) > 2 and loc[0] in ("models", "studies") and isinstance(loc[2], str) \
            and loc[2] in _TAGS:
        del loc[2]  # the union's tag, not a key; a model may itself be named 'pinn'
    loc = [str(p) for p in loc]
    key = ".".join(loc) if loc else "(top level)"
    kind = error["type"]
    got = error.get("input")
    if kind == "extra_forbidden":
        return f"unknown config key {key!r}"
    if kind == "missing":
        return f"config key {key!r} is required"
    if kind == "union_tag_invalid" or kind == "union_tag_not_found":
        tags = error.get("ctx", {}).get("expected_tags") or "'operator', 'pinn', 'forecast'"
        return f"config key {key}.kind must be one of {tags}"
    for prefix, words in _TYPE_WORDS.items():
        if kind.startswith(prefix + "_") or kind == f"{prefix}_type":
            return f"config key {key!r} must be {words}, got {got!r}"
    message = error["msg"].removeprefix("Value error, ")
    if kind == "value_error" and message.startswith(WRONG_TYPE):
        option, words, value = message.removeprefix(WRONG_TYPE).split("|", 2)
        return f"config key {key + '.' + option!r} must be {words}, got {value}"
    if kind == "value_error" and message.startswith(UNKNOWN_OPTION):
        option, _, takes = message.removeprefix(UNKNOWN_OPTION).partition("|")
        return f"unknown config key {key + '.' + option!r} (model {takes})"
    if kind == "value_error":
        return message
    return f"config key {key!r}: {message[0].lower() + message[1:]} (got {got!r})"


def parse_config(raw: Any) -> RunConfig | DynamicsRunConfig:
    """Validate a mapping against :class:`RunConfig` (a field study) or, with
    ``task: dynamics``, :class:`DynamicsRunConfig`; raise :class:`ConfigError` in one sentence."""
    if not isinstance(raw, dict):
        raise ConfigError("the config must be a YAML mapping of keys to values")
    task = raw.get("task", "fields")
    if task not in ("fields", "dynamics", "pinn"):
        raise ConfigError(f"config key 'task' must be 'dynamics' or 'pinn', or left out for a "
                          f"field study, got {task!r}")
    from scidl.experiments.pinn_config import PINNTaskConfig

    schema = {"dynamics": DynamicsRunConfig, "pinn": PINNTaskConfig}.get(task, RunConfig)
    if task == "fields":
        raw = {k: v for k, v in raw.items() if k != "task"}
    try:
        return schema.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_describe(err.errors()[0])) from None


def load_config(path: str | Path,
                overrides: dict[str, Any] | None = None) -> RunConfig | DynamicsRunConfig:
    """Read and validate a YAML config file; ``overrides`` replace top-level keys (e.g. seed)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"config file {str(path)!r} is not valid YAML{where}") from None
    raw = {} if raw is None else raw
    if overrides and isinstance(raw, dict):
        raw = {**raw, **overrides}
    return parse_config(raw)

