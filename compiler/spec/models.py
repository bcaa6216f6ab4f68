"""The spec language: one frozen pydantic model per spec kind, extra keys forbidden.

These models describe what a user may write after composition (defaults lists,
overrides and interpolation are resolved before validation). Cross-references
between sections (a feature's column must exist in its dataset, ...) are checked
in ``loopc.compiler.spec.validate``, not here: a model only knows its own fields.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from loopc.compiler.spec.cron import cron_problem
from loopc.compiler.spec.locations import REGISTRY_SCHEMES, STORE_SCHEMES, location_problem
from loopc.runtime.units import parse_duration, parse_memory_mb  # noqa: F401  (re-exported for the planner)

IDENT = r"^[a-z][a-z0-9_]{0,62}$"
Ident = Annotated[str, Field(pattern=IDENT, description="lower-case identifier: a-z, 0-9, _")]

class Strict(BaseModel):
    """Base for every spec model: immutable, unknown keys rejected."""

    # allow_inf_nan=False: .nan and .inf are refused in every number field (LPC105)
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def cron_schedule(value: str | None, allow_once: bool = False) -> str | None:
    """``value`` when it is a cron schedule every target accepts (see spec/cron.py), else a cron_schedule error."""
    problem = None if value is None else cron_problem(value, allow_once)
    if problem:
        raise PydanticCustomError("cron_schedule", problem)
    return value


Duration = Annotated[str, Field(pattern=r"^(\d+d)?(\d+h)?(\d+m)?(\d+s)?$", min_length=2)]
MemorySize = Annotated[str, Field(pattern=r"^\d+(\.\d+)?\s*([KMGTkmgt]i?[Bb]?)?$")]
# File paths and URIs: any text but control characters (no file system takes NUL; newlines are mistakes).
PathText = Annotated[str, Field(pattern=r"^[^\x00-\x1f\x7f]*$")]
# Names written into #SBATCH lines and Airflow operator arguments: one word, no option-like leading '-'.
_NAME = r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}"
SchedulerName = Annotated[str, Field(pattern=rf"^{_NAME}$")]
PartitionList = Annotated[str, Field(pattern=rf"^{_NAME}(,{_NAME})*$", description="one partition or a comma list")]


# --------------------------------------------------------------------------- pipeline


class Resources(Strict):
    """What one step asks of its scheduler. Unset values fall back to the pipeline's."""

    cpus: int | None = Field(None, ge=1, le=1024)
    gpus: int | None = Field(None, ge=0, le=64)
    memory: MemorySize | None = None
    time: Duration | None = None
    nodes: int | None = Field(None, ge=1, le=1024)
    tasks_per_node: int | None = Field(
        None, ge=1, le=64, exclude=True,  # a launch detail: not part of the spec's hash or step configs
        description="training processes per node (Slurm srun tasks), one JAX process each; default 1",
    )
    partition: PartitionList | None = None
    account: SchedulerName | None = None
    qos: SchedulerName | None = None
    retries: int | None = Field(None, ge=0, le=20)
    retry_delay: Duration | None = None
    pool: SchedulerName | None = None
    queue: SchedulerName | None = None
    priority: int | None = Field(None, ge=-1000, le=1000)


RiskClass = Literal["minimal", "limited", "high", "unacceptable"]
Target = Literal["local", "airflow", "slurm"]


class Pipeline(Strict):
    """Who owns the loop, what it is for, when it runs and where it compiles to."""

    name: Ident
    owner: str | None = None
    description: str = ""
    schedule: str | None = Field(None, description="cron expression or @daily/@hourly/...; null: manual")
    risk_class: RiskClass = "minimal"
    intended_use: str | None = None
    targets: list[Target] = ["local"]
    tags: list[Annotated[str, Field(max_length=100)]] = []
    state_dir: PathText = Field(".loopc", description="registry, artifacts and run records, relative to the spec")
    store: str | None = Field(None, description="artifact store URL (s3://bucket/prefix, gs://, abfs://, hdfs://, "
                              "file://); null: the state folder; $LOOPC_STORE overrides it where jobs run")
    registry: str | None = Field(None, description="model registry URL (postgresql://user@host:port/db, "
                                 "sqlite:///path); null: registry.db in the state folder; $LOOPC_REGISTRY overrides it")
    resources: Resources = Resources()
    secrets: dict[str, str] = Field(
        {}, description="name -> environment variable or Airflow connection id; values are never inlined"
    )

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        return cron_schedule(value, allow_once=True)

    @field_validator("store", "registry")
    @classmethod
    def _location(cls, value: str | None, info) -> str | None:
        schemes = STORE_SCHEMES if info.field_name == "store" else REGISTRY_SCHEMES
        problem = None if value is None else location_problem(value, schemes)
        if problem:
            raise ValueError(problem)
        return value


# --------------------------------------------------------------------------- datasets

ColumnType = Literal["int", "float", "bool", "string", "category", "timestamp", "date"]


class Column(Strict):
    """One column's type and the rules every row must satisfy."""

    type: ColumnType
    nullable: bool = True
    unique: bool = False
    min: float | None = None
    max: float | None = None
    allowed: list[str | int | float | bool] | None = None
    description: str = ""

    @model_validator(mode="after")
    def _range(self) -> Column:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        if (self.min is not None or self.max is not None) and self.type not in ("int", "float"):
            raise ValueError(f"min/max apply to int and float columns, not {self.type}")
        return self


class Source(Strict):
    """Where rows come from: a path, a glob or a pyarrow filesystem URI (s3://, gs://, file://)."""

    path: PathText = Field(min_length=1)
    format: Literal["parquet", "csv"] | None = Field(None, description="default: from the file extension")
    partitioning: Literal["hive"] | None = None
    options: dict[str, str | int | float | bool] = {}


class RowCountCheck(Strict):
    kind: Literal["row_count"]
    min: int | None = Field(None, ge=0)
    max: int | None = Field(None, ge=0)


class NullRateCheck(Strict):
    kind: Literal["null_rate"]
    column: str
    max: float = Field(ge=0, le=1)


class FreshnessCheck(Strict):
    kind: Literal["freshness"]
    column: str
    max_age: Duration


class ExpressionCheck(Strict):
    """A boolean expression over columns that must hold for at least ``min_fraction`` of rows."""

    kind: Literal["expression"]
    name: Ident
    expr: str = Field(min_length=1, description="e.g. 'total_charges >= monthly_charges'")
    min_fraction: float = Field(1.0, ge=0, le=1)


Check = Annotated[
    Union[RowCountCheck, NullRateCheck, FreshnessCheck, ExpressionCheck], Field(discriminator="kind")
]


class Split(Strict):
    """How rows are divided into train/valid/test, deterministically."""

    method: Literal["hash", "time", "random"] = "hash"
    key: str | None = Field(None, description="column hashed for method=hash")
    column: str | None = Field(None, description="time column for method=time")
    seed: int = 0
    train: float = Field(0.7, gt=0, lt=1)
    valid: float = Field(0.15, ge=0, lt=1)
    test: float = Field(0.15, gt=0, lt=1)

    @model_validator(mode="after")
    def _fractions(self) -> Split:
        total = round(self.train + self.valid + self.test, 9)
        if total != 1.0:
            raise ValueError(f"train + valid + test must be 1.0, got {total}")
        if self.method == "hash" and not self.key:
            raise ValueError("method 'hash' needs 'key': the column whose hash assigns each row")
        if self.method == "time" and not self.column:
            raise ValueError("method 'time' needs 'column': the timestamp that orders rows")
        return self


class Dataset(Strict):
    """A table the loop reads, its schema, its checks and its split."""

    description: str = ""
    source: Source
    columns: dict[str, Column] = Field(min_length=1)
    checks: list[Check] = []
    split: Split = Split(method="random")


# --------------------------------------------------------------------------- features


class Identity(Strict):
    kind: Literal["identity"]


class Standardize(Strict):
    kind: Literal["standardize"]


class MinMax(Strict):
    kind: Literal["minmax"]


class Log(Strict):
    kind: Literal["log"]
    offset: float = Field(1.0, ge=0)


class Clip(Strict):
    kind: Literal["clip"]
    min: float | None = None
    max: float | None = None


class Bucketize(Strict):
    kind: Literal["bucketize"]
    boundaries: list[float] | None = Field(None, min_length=1)
    quantiles: int | None = Field(None, ge=2, le=1000)

    @model_validator(mode="after")
    def _one_of(self) -> Bucketize:
        if (self.boundaries is None) == (self.quantiles is None):
            raise ValueError("give exactly one of 'boundaries' (fixed edges) or 'quantiles' (fitted edges)")
        if self.boundaries is not None and self.boundaries != sorted(self.boundaries):
            raise ValueError("boundaries must be sorted ascending")
        return self


class OneHot(Strict):
    kind: Literal["onehot"]
    vocabulary: list[str] | None = Field(None, description="fixed vocabulary; default: fitted on train")
    max_categories: int = Field(100, ge=1, le=100_000)
    min_frequency: int = Field(1, ge=1)


class Hash(Strict):
    kind: Literal["hash"]
    buckets: int = Field(32, ge=2, le=1_000_000)


class Impute(Strict):
    kind: Literal["impute"]
    strategy: Literal["mean", "median", "constant"] = "mean"
    value: float | None = Field(None, description="the fill value; required by strategy 'constant'")

    @model_validator(mode="after")
    def _constant_has_value(self) -> Impute:
        if self.strategy == "constant" and self.value is None:
            raise ValueError("impute strategy 'constant' needs 'value' (the number that fills a missing value)")
        return self


ENCODING_TRANSFORMS = ("bucketize", "onehot", "hash")  # each makes one-hot columns: a chain's last transform

Transform = Annotated[
    Union[Identity, Standardize, MinMax, Log, Clip, Bucketize, OneHot, Hash, Impute],
    Field(discriminator="kind"),
]


class Feature(Strict):
    """A typed model input computed from one column or an expression over columns.

    ``transform: NAME`` (or a list of names) is shorthand for ``transforms``; give one of the two.
    """

    column: str | None = None
    expr: str | None = Field(None, description="arithmetic over numeric columns, e.g. 'a / (b + 1)'")
    transforms: list[Transform] = Field([], description="applied in order, fitted on the train split")
    description: str = ""

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        """Accept ``transform: standardize`` or a list of names as shorthand for ``transforms``."""
        if isinstance(data, dict) and "transform" in data:
            if "transforms" in data:
                raise ValueError("give 'transform' (one name or a list) or 'transforms', not both")
            data = dict(data)
            one = data.pop("transform")
            data["transforms"] = one if isinstance(one, list) else [one]
        if isinstance(data, dict) and isinstance(data.get("transforms"), list):
            data["transforms"] = [{"kind": t} if isinstance(t, str) else t for t in data["transforms"]]
        return data

    @model_validator(mode="after")
    def _source(self) -> Feature:
        if (self.column is None) == (self.expr is None):
            raise ValueError("give exactly one of 'column' or 'expr'")
        for transform in self.transforms[:-1]:
            if transform.kind in ENCODING_TRANSFORMS:
                raise ValueError(f"'{transform.kind}' must be the last transform: it turns the value into "
                                 "one-hot columns, which no transform takes; move it to the end of 'transforms'")
        return self


# --------------------------------------------------------------------------- models

Task = Literal["binary_classification", "multiclass_classification", "regression"]


class Linear(Strict):
    """Linear regression or logistic/softmax regression, depending on the task."""

    kind: Literal["linear"]


class MLP(Strict):
    kind: Literal["mlp"]
    hidden: list[int] = Field([64, 64], min_length=1)
    activation: Literal["relu", "gelu", "tanh", "silu"] = "relu"
    dropout: float = Field(0.0, ge=0, lt=1)

    @field_validator("hidden")
    @classmethod
    def _positive(cls, value: list[int]) -> list[int]:
        if any(width < 1 or width > 65536 for width in value):
            raise ValueError("hidden widths must be between 1 and 65536")
        return value


Architecture = Annotated[Union[Linear, MLP], Field(discriminator="kind")]


class Optimizer(Strict):
    """An optax optimizer by name, with its keyword arguments."""

    name: Literal["sgd", "momentum", "adam", "adamw", "rmsprop", "adagrad", "lamb", "lion", "adafactor"] = "adamw"
    lr: float = Field(1e-3, gt=0, le=10)
    params: dict[Ident, float | int | bool] = Field({}, description="extra optax keyword arguments")
    clip_norm: float | None = Field(None, gt=0)


class LRSchedule(Strict):
    kind: Literal["constant", "cosine", "warmup_cosine", "exponential"] = "constant"
    warmup_steps: int = Field(0, ge=0)
    decay_rate: float | None = Field(None, gt=0, le=1)


class EarlyStopping(Strict):
    metric: Literal["val_loss"] = "val_loss"
    patience: int = Field(3, ge=1)
    min_delta: float = Field(0.0, ge=0)


class Training(Strict):
    epochs: int = Field(10, ge=1, le=100_000)
    batch_size: int = Field(256, ge=1, le=10_000_000)
    seed: int = 0
    early_stopping: EarlyStopping | None = None
    checkpoint_every: int = Field(1, ge=1, description="epochs between checkpoints")
    class_weight: Literal["balanced"] | None = None


class Sweep(Strict):
    """A grid over model fields; each point trains separately, the best by ``metric`` is kept."""

    parameters: dict[str, list[Any]] = Field(min_length=1, description="dotted model path -> values")
    metric: str = "val_loss"
    direction: Literal["minimize", "maximize"] = "minimize"
    concurrency: int = Field(4, ge=1, le=10_000)


class Model(Strict):
    """What is trained, on what, and how."""

    name: Ident
    task: Task
    dataset: Ident
    label: str
    features: list[Ident] = Field(min_length=1)
    architecture: Architecture = Linear(kind="linear")
    optimizer: Optimizer = Optimizer()
    schedule: LRSchedule = LRSchedule()
    training: Training = Training()
    precision: Literal["float32", "bfloat16", "float16"] = "float32"
    resources: Resources = Resources()
    sweep: Sweep | None = None
    description: str = ""


# --------------------------------------------------------------------------- gate


class Threshold(Strict):
    """An absolute bound on a metric of the candidate."""

    metric: str
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _bound(self) -> Threshold:
        if self.min is None and self.max is None:
            raise ValueError(f"threshold on '{self.metric}' needs 'min' or 'max'")
        return self


class ChampionComparison(Strict):
    """The candidate against the current champion on the same evaluation rows.

    ``min_delta`` is the improvement required in the metric's good direction;
    a negative value tolerates a small regression.
    """

    metric: str
    min_delta: float = 0.0
    relative: bool = False


class SliceThreshold(Strict):
    column: str
    metric: str
    min: float | None = None
    max: float | None = None
    min_rows: int = Field(30, ge=1)


class FairnessThreshold(Strict):
    column: str
    metric: Literal["demographic_parity_difference", "equal_opportunity_difference"]
    max: float = Field(ge=0, le=1)


class Override(Strict):
    allowed: bool = True
    require_reason: bool = True


class Gate(Strict):
    """What a candidate must show before it may replace the champion."""

    split: Literal["valid", "test"] = "test"
    thresholds: list[Threshold] = []
    champion: list[ChampionComparison] = []
    slices: list[SliceThreshold] = []
    fairness: list[FairnessThreshold] = []
    no_champion: Literal["promote", "reject", "require_approval"] = "promote"
    override: Override = Override()


# --------------------------------------------------------------------------- deploy


class Shadow(Strict):
    """Champion and challenger score the same rows before promotion."""

    enabled: bool = True
    min_rows: int = Field(100, ge=1)
    min_agreement: float = Field(0.9, ge=0, le=1)
    max_metric_drop: dict[str, float] = {}
    regression_tolerance: float = Field(0.1, ge=0, description="regression: two predictions agree within this "
                                                              "fraction of the larger magnitude")


class Deploy(Strict):
    """How a candidate that passed the gate becomes the champion (the registry alias serving uses)."""

    shadow: Shadow = Shadow()
    approval: Literal["auto", "manual"] = "auto"


# --------------------------------------------------------------------------- monitors

DriftMethod = Literal["psi", "ks", "chi2", "js"]


class DataDrift(Strict):
    columns: list[str] | None = Field(None, description="default: every column the model's features read; a name "
                                       "with *, ? or [ is a pattern over the dataset's columns (the label aside)")
    methods: list[DriftMethod] = ["psi", "ks", "chi2"]
    psi_max: float = Field(0.2, gt=0)
    js_max: float = Field(0.1, gt=0, le=1)
    p_value: float = Field(0.01, gt=0, lt=1)
    min_drifted: int = Field(1, ge=1, description="breach when at least this many columns drift")


class PredictionDrift(Strict):
    method: Literal["psi", "ks", "js"] = "psi"
    max: float = Field(0.2, gt=0)


class Action(Strict):
    on_breach: Literal["alert", "retrain"] = "alert"
    cooldown: Duration = "24h"


class Labels(Strict):
    """Labels that arrive after scoring: joined by ``keys`` with the stored predictions of the scoring
    plan, they give realized metrics per model version (docs/scoring.md)."""

    source: Source = Field(description="rows holding the key columns and the model's label column")
    predictions: PathText | None = Field(None, min_length=1, description="the scoring output folder "
                                         "(default: scoring.output; required without a scoring section)")
    keys: list[str] = Field(min_length=1, description="columns that identify a scored row in both")
    window: Duration | None = Field(None, description="only predictions scored this recently (default: all)")
    min_rows: int = Field(50, ge=1, description="labelled predictions a version needs before it is judged")
    max_drop: dict[str, float] = Field({}, description="metric -> the largest drop below the metric the "
                                                       "version was registered with (in the worse direction)")


class Monitor(Strict):
    """Watches live rows against the champion's training reference."""

    source: Source
    schedule: str | None = None
    window: Duration | None = Field(None, description="only rows newer than this (needs time_column)")
    time_column: str | None = None
    min_rows: int = Field(100, ge=1)
    data_drift: DataDrift | None = DataDrift()
    prediction_drift: PredictionDrift | None = None
    performance: list[Threshold] = Field([], description="checked on the champion's realized metrics: from "
                                                         "'labels' when set, else live rows with the label column")
    labels: Labels | None = None
    max_null_rate: float | None = Field(None, ge=0, le=1)
    action: Action = Action()

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        return cron_schedule(value)


# --------------------------------------------------------------------------- scoring

ScoringOutput = Literal["score", "label", "probabilities", "model_version", "timestamp"]


class Scoring(Strict):
    """Batch scoring: the model behind ``alias`` (resolved when the scoring plan runs) scores ``source``;
    predictions go to ``output`` as Parquet partitioned by model version and batch (docs/scoring.md)."""

    source: Source
    output: PathText = Field(min_length=1, description="folder of the predictions, relative to the spec")
    schedule: str | None = None
    alias: Ident = Field("champion", description="the registry alias (or 'champion') whose version scores")
    keys: list[str] = Field([], description="input columns copied to every prediction row (to join labels later)")
    write: list[ScoringOutput] = Field(["score", "label", "model_version", "timestamp"], min_length=1)

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        return cron_schedule(value)


# --------------------------------------------------------------------------- the spec


class Spec(Strict):
    """One pipeline: the whole loop from data to monitoring."""

    loopc: Literal[1] = Field(description="spec language version")
    pipeline: Pipeline
    datasets: dict[Ident, Dataset] = Field(min_length=1)
    features: dict[Ident, Feature] = Field(min_length=1)
    model: Model
    gate: Gate = Gate()
    deploy: Deploy = Deploy()
    monitors: dict[Ident, Monitor] = {}
    scoring: Scoring | None = None

    @model_validator(mode="before")
    @classmethod
    def _labels_read_the_scoring_output(cls, data: Any) -> Any:
        """A monitor's ``labels.predictions`` defaults to ``scoring.output`` (the input tree is not changed)."""
        output = _get(data, "scoring", "output")
        monitors = _get(data, "monitors")
        if not isinstance(output, str) or not isinstance(monitors, dict):
            return data
        filled = {name: _with_predictions(monitor, output) for name, monitor in monitors.items()}
        return {**data, "monitors": filled} if filled != monitors else data


def _get(data: Any, *keys: str) -> Any:
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def _with_predictions(monitor: Any, output: str) -> Any:
    labels = _get(monitor, "labels")
    if not isinstance(labels, dict) or "predictions" in labels:
        return monitor
    return {**monitor, "labels": {**labels, "predictions": output}}
