"""Pydantic models of the experiment spec (YAML for people, JSON on the wire)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StringConstraints,
    model_serializer,
    model_validator,
)

from service.spec.duration import Duration, format_duration
from service.spec.rollout import Rollout
from service.webhook_targets import check_url_syntax
from sharpen.core import canonical

__all__ = [
    "KEY_PATTERN",
    "NAME_PATTERN",
    "Analysis",
    "ExperimentSpec",
    "GuardrailPolicy",
    "Impact",
    "Metric",
    "Segment",
    "Variant",
]

KEY_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$"

_NAME = re.compile(NAME_PATTERN)
Key = Annotated[str, StringConstraints(pattern=KEY_PATTERN)]
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
Text = Annotated[str, StringConstraints(max_length=4000)]
TargetValue = str | int | float | bool
MAX_SEGMENT_VALUES = 100


MIN_LOOK_EVERY_S = 300
HOUR_S, DAY_S = 3600, 86_400


def _look_every(seconds: float) -> float:
    """A cadence whose windows tile hours (<= 1h) or days (> 1h), so every reader cuts time
    at the same instants: 5m, 6m, 10m, 12m, 15m, 20m, 30m, 1h, 2h, 3h, 4h, 6h, 8h, 12h, 1d."""
    fits = seconds == int(seconds) and (
        (seconds <= HOUR_S and seconds % 60 == 0 and HOUR_S % seconds == 0)
        or (HOUR_S < seconds <= DAY_S and seconds % HOUR_S == 0 and DAY_S % seconds == 0)
    )
    if seconds < MIN_LOOK_EVERY_S or not fits:
        raise ValueError(
            f"{format_duration(seconds)} is not a look cadence: give at least 5m, dividing an "
            "hour (5m, 6m, 10m, 12m, 15m, 20m, 30m, 1h) or a day (2h, 3h, 4h, 6h, 8h, 12h, 1d)"
        )
    return seconds


def _webhook_url(url: str) -> str:
    check_url_syntax(url)  # addresses are checked on submission and at delivery
    return url


WebhookURL = Annotated[
    str, StringConstraints(pattern=r"^https?://", max_length=2000), AfterValidator(_webhook_url)
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Variant(_Model):
    key: Key
    weight: float = Field(gt=0, le=1_000_000)
    payload: dict[str, Any] = Field(default_factory=dict)


class Impact(_Model):
    value_per_unit: float
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "USD"


class Metric(_Model):
    name: Name
    kind: Literal["mean", "proportion", "ratio"]
    value: Name | None = Field(
        default=None, description="Event value summed per unit (mean, proportion)."
    )
    numerator: Name | None = None
    denominator: Name | None = None
    covariate: Name | None = Field(
        default=None, description="Pre-period covariate name in events' `covariates` (CUPED)."
    )
    role: Literal["primary", "guardrail", "secondary"] = "secondary"
    direction: Literal["increase", "decrease"] = "increase"
    mde: float | None = Field(default=None, gt=0, le=10, description="Relative (0.05 = 5%).")
    margin: float | None = Field(default=None, gt=0, le=10, description="Relative (0.02 = 2%).")
    baseline_mean: float | None = None
    baseline_sd: float | None = Field(default=None, gt=0)


class Analysis(_Model):
    alpha: float = Field(default=0.05, gt=0, le=0.5)
    power: float = Field(default=0.8, ge=0.5, lt=1)
    design: Literal["group_sequential", "fixed", "always_valid"] = "group_sequential"
    looks: int = Field(default=14, ge=1, le=200)
    min_days: int = Field(default=14, ge=0, le=365)
    expected_daily_units: float | None = Field(default=None, gt=0)
    correction: Literal["holm", "bh", "none"] = "holm"
    look_every: Annotated[Duration, AfterValidator(_look_every)] = Field(
        default=float(HOUR_S),
        description="Cadence of the planned looks: a look is taken at the end of the first "
        "window of this length in which the units reach it (5m up to 1d; default 1h).",
    )

    @property
    def cell_seconds(self) -> int:
        """Width of the time cells the aggregator keeps: the cadence, at most an hour (longer
        cadences take their looks on whole hours)."""
        return int(min(self.look_every, HOUR_S))


class Segment(_Model):
    """A segment: an attribute whose values get rows of their own in the results.

    ``values`` are declared: each always gets its own row (a guardrail watches it from
    the first unit). Other values get rows by volume, up to ``SHARPEN_SEGMENT_MAX_VALUES``.
    Written as a plain name when it declares no values.
    """

    name: Name
    values: list[TargetValue] = Field(default_factory=list, max_length=MAX_SEGMENT_VALUES)

    @model_validator(mode="before")
    @classmethod
    def _plain_name(cls, data: Any) -> Any:
        if not isinstance(data, str):
            return data
        if not _NAME.match(data):
            raise ValueError(f"{data[:100]!r} is not a segment name ({NAME_PATTERN})")
        return {"name": data}

    @model_serializer(mode="wrap")
    def _as_written(self, handler: SerializerFunctionWrapHandler) -> Any:
        return self.name if not self.values else handler(self)

    def canonical_values(self) -> list[str]:
        """The declared values as attributes are compared (``canonical`` form)."""
        return [text for text in (canonical(v) for v in self.values) if text is not None]


class GuardrailPolicy(_Model):
    auto_rollback: bool = False


class ExperimentSpec(_Model):
    key: Key
    description: Text = ""
    hypothesis: Text = ""
    lever: Literal["data", "features", "architecture", "serving", "threshold"] | None = None
    impact: Impact | None = None
    unit: Name = "user"
    salt: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = None
    variants: list[Variant] = Field(min_length=2, max_length=20)
    baseline: Key
    traffic: float = Field(default=1.0, gt=0, le=1)
    targeting: dict[Name, list[TargetValue]] = Field(default_factory=dict, max_length=20)
    layer: Key | None = None
    layer_share: float = Field(
        default=1.0, gt=0, le=1, description="Share of the layer's unit space reserved."
    )
    holdout: float = Field(default=0.0, ge=0, lt=1, description="Share of the global holdout.")
    segments: list[Segment] = Field(
        default_factory=list,
        max_length=10,
        description="Attributes to break results down by: a name, or {name, values} to "
        "declare values that always get their own row.",
    )
    metrics: list[Metric] = Field(min_length=1, max_length=50)
    analysis: Analysis = Field(default_factory=Analysis)
    guardrails: GuardrailPolicy = Field(default_factory=GuardrailPolicy)
    webhooks: list[WebhookURL] = Field(default_factory=list, max_length=5)
    rollout: Rollout | None = Field(
        default=None, description="Ramp `traffic` up in steps, with a guardrail gate at each."
    )

    @property
    def hash_salt(self) -> str:
        return self.salt or self.key

    @property
    def primary(self) -> Metric:
        return next(m for m in self.metrics if m.role == "primary")

    @property
    def per_request(self) -> bool:
        return self.unit == "request"

    def variant_keys(self) -> list[str]:
        return [v.key for v in self.variants]

    @property
    def segment_names(self) -> list[str]:
        return [s.name for s in self.segments]

    def declared_values(self, name: str) -> list[str]:
        """The declared values of segment ``name`` (canonical strings; [] when none)."""
        return next((s.canonical_values() for s in self.segments if s.name == name), [])
