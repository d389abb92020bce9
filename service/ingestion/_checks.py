"""Checking decoded events against their experiments, and the stored form of the valid ones.

An event is refused (with every rule it breaks, named by index and field) when its
experiment does not exist, is a draft or ended more than ``event_grace_s`` ago, when its
timestamp is unreadable or outside the accepted window, when it has no value, or names a
variant the experiment does not have. The others are grouped by experiment in the form the
aggregator reads (:class:`StoredEvent`); an event without a variant gets the one the
SDK's evaluation gives its unit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from service.errors import FieldError, field_error
from service.ingestion._decode import EventFields
from service.settings import Settings
from service.spec import ENDED, ExperimentRecord
from service.spec.sdk_config import sdk_entry
from service.store import ExperimentStore, StoredEvent
from service.store.event_codec import TIMESTAMP_RANGE, epoch_seconds
from sharpen.core import ExperimentConfig, canonical, evaluate, parse_experiment

__all__ = ["Checked", "Target", "Targets", "check_events"]

_TARGET_TTL_S = 1.0


@dataclass(slots=True)
class Target:
    """One experiment of the batch, as ingestion sees it."""

    record: ExperimentRecord
    refusal: str | None
    variants: frozenset[str]
    segments: tuple[str, ...]
    _config: ExperimentConfig | None = None

    def assignment(self, unit_id: str, attributes: Mapping[str, object] | None) -> str:
        """The variant the SDK's evaluation gives while running ("" = not in the experiment)."""
        if self._config is None:
            # Evaluated as running: after the end, events still belong to the old assignment.
            self._config = parse_experiment({**sdk_entry(self.record), "status": "running"})
        result = evaluate(self._config, unit_id, attributes)
        return result.variant or "" if result.in_experiment else ""


def _target(record: ExperimentRecord, settings: Settings, now: float) -> Target:
    refusal = None
    if record.status == "draft":
        refusal = f"experiment {record.key!r} is a draft: events are accepted once it runs"
    elif record.status in ENDED:
        ended = record.ended_at or record.updated_at
        if ended < now - settings.event_grace_s:
            refusal = (
                f"experiment {record.key!r} ended ({record.status}) more than "
                f"{settings.event_grace_s} s ago"
            )
    spec = record.spec
    return Target(record, refusal, frozenset(spec.variant_keys()), tuple(spec.segment_names))


@dataclass(slots=True)
class Checked:
    by_experiment: dict[str, tuple[list[str], list[StoredEvent]]] = field(default_factory=dict)
    errors: list[FieldError] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Limits:
    oldest: float
    newest: float
    max_age_s: int
    max_future_s: int

    @classmethod
    def of(cls, settings: Settings, now: float) -> _Limits:
        return cls(
            oldest=now - settings.event_max_age_s,
            newest=now + settings.event_max_future_s,
            max_age_s=settings.event_max_age_s,
            max_future_s=settings.event_max_future_s,
        )


def _explain(
    i: int, event: EventFields, target: Target | None, ts: float | None, limits: _Limits
) -> list[FieldError]:
    """Every rule ``event`` breaks (called only for events the fast checks refused)."""
    where = f"events.{i}"
    if target is None:
        return [
            field_error(
                f"{where}.experiment",
                f"experiment {event.experiment!r} does not exist",
                index=i,
                code="not_found",
                status=404,
            )
        ]
    errors = []
    if target.refusal is not None:
        errors.append(
            field_error(f"{where}.experiment", target.refusal, index=i, code="not_running")
        )
    if ts is None:
        message = f"{event.timestamp!r} is neither ISO-8601 nor epoch seconds {TIMESTAMP_RANGE}"
        errors.append(field_error(f"{where}.timestamp", message, index=i))
    elif not limits.oldest <= ts <= limits.newest:
        message = (
            f"{event.timestamp!r} is outside the accepted window (at most "
            f"{limits.max_age_s} s old, {limits.max_future_s} s ahead)"
        )
        errors.append(field_error(f"{where}.timestamp", message, index=i))
    if not event.values:
        errors.append(field_error(f"{where}.values", "needs at least one value", index=i))
    variant = event.variant
    if variant is not None and variant not in target.variants:
        message = f"{variant!r} is not a variant of {event.experiment!r}: {sorted(target.variants)}"
        errors.append(field_error(f"{where}.variant", message, index=i))
    return errors


def check_events(
    events: list[EventFields | None],
    targets: Mapping[str, Target],
    settings: Settings,
    now: float,
) -> Checked:
    """Validate every event; build the stored form of the valid ones (the hot loop)."""
    out = Checked()
    limits = _Limits.of(settings, now)
    oldest, newest = limits.oldest, limits.newest
    stamps: dict[str | float, float | None] = {}  # a batch's events often share timestamps
    by_experiment = out.by_experiment
    for i, event in enumerate(events):
        if event is None:
            continue
        target = targets.get(event.experiment)
        raw = event.timestamp
        ts = stamps.get(raw, -1.0)
        if ts == -1.0:
            ts = stamps[raw] = epoch_seconds(raw)
        values, covariates, attributes = event.values, event.covariates, event.attributes
        variant = event.variant
        if (
            target is None
            or target.refusal is not None
            or ts is None
            or not oldest <= ts <= newest
            or not values
            or (variant is not None and variant not in target.variants)
        ):
            out.errors += _explain(i, event, target, ts, limits)
            continue
        unit_id = event.unit_id if type(event.unit_id) is str else str(event.unit_id)
        if variant is None:
            variant = target.assignment(unit_id, attributes)
        segments = target.segments
        if not segments:
            segment_values_: list[str | None] | None = None
        elif attributes:
            segment_values_ = []
            for name in segments:
                value = attributes.get(name)
                segment_values_.append(value if type(value) is str else canonical(value))
        else:
            segment_values_ = [None] * len(segments)
        share = by_experiment.get(event.experiment)
        if share is None:
            share = by_experiment[event.experiment] = ([], [])
        share[0].append(event.event_id)
        share[1].append(
            StoredEvent(unit_id, variant, ts, values, covariates or None, segment_values_)
        )
    return out


class Targets:
    """Experiments as ingestion sees them, cached briefly while they run.

    Only running experiments are cached (``_TARGET_TTL_S``): the spec of a running
    experiment is frozen, and the only way out of running is an end after which events are
    still accepted for ``event_grace_s``, so a slightly stale entry never refuses or admits
    an event wrongly. Anything else is read from Redis on every request.
    """

    def __init__(self) -> None:
        self._cache: dict[str, tuple[float, Target]] = {}

    async def get(
        self, experiments: ExperimentStore, names: set[str], settings: Settings, now: float
    ) -> dict[str, Target]:
        found: dict[str, Target] = {}
        missing = []
        for name in names:
            cached = self._cache.get(name)
            if cached is not None and now - cached[0] < _TARGET_TTL_S:
                found[name] = cached[1]
            else:
                missing.append(name)
        if missing:
            for record in await experiments.get_many(sorted(missing)):
                target = found[record.key] = _target(record, settings, now)
                if record.status == "running":
                    self._cache[record.key] = (now, target)
                else:
                    self._cache.pop(record.key, None)
        return found
