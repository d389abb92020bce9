"""Experiments in Redis: create, read, edit drafts, lifecycle transitions, audit, config version."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson

from service.errors import Conflict, NotFound
from service.spec import (
    ENDED,
    AuditEntry,
    ExperimentRecord,
    ExperimentSpec,
    RolloutState,
    StepEntry,
    next_status,
)
from service.store import keys
from service.store.connection import RedisClient
from service.store.scripts import lua

__all__ = ["BUCKETS", "ExperimentStore"]

BUCKETS = 10_000
_CAS_RETRIES = 20


def _dump(record: ExperimentRecord) -> str:
    return record.model_dump_json(exclude={"audit"})


class ExperimentStore:
    """The only place experiments are written; every write is a compare-and-set with audit."""

    def __init__(self, redis: RedisClient, clock: Callable[[], float] = time.time) -> None:
        self._redis = redis
        self._clock = clock
        self._cas = redis.register_script(lua("cas_experiment"))
        self._allocate = redis.register_script(lua("layer_allocate"))

    async def _raw(self, key: str) -> str | None:
        raw = await self._redis.get(keys.experiment(key))
        return None if raw is None else str(raw)

    async def get(self, key: str) -> ExperimentRecord:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.get(keys.experiment(key))
            pipe.lrange(keys.audit(key), 0, -1)
            raw, audit = await pipe.execute()
        if raw is None:
            raise NotFound(f"experiment {key!r} does not exist")
        data = orjson.loads(raw)
        data["audit"] = [orjson.loads(entry) for entry in audit]
        return ExperimentRecord.model_validate(data)

    async def get_many(self, experiment_keys: list[str]) -> list[ExperimentRecord]:
        if not experiment_keys:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in experiment_keys:
                pipe.get(keys.experiment(key))
            raws = await pipe.execute()
        return [ExperimentRecord.model_validate_json(raw) for raw in raws if raw is not None]

    async def list(self, status: str | None = None) -> list[ExperimentRecord]:
        members = sorted(str(m) for m in await self._redis.smembers(keys.experiments_index()))
        records = await self.get_many(members)
        return [r for r in records if status is None or r.status == status]

    async def version_spec(self, key: str, version: int) -> ExperimentSpec:
        raw = await self._redis.hget(keys.spec_versions(key), str(version))
        if raw is None:
            raise NotFound(f"experiment {key!r} has no version {version}")
        return ExperimentSpec.model_validate_json(raw)

    async def config_version(self) -> int:
        return int(await self._redis.get(keys.config_version()) or 0)

    async def _write(
        self,
        expected: str,
        record: ExperimentRecord,
        entry: AuditEntry,
        new_spec: bool,
    ) -> bool:
        ok = await self._cas(
            keys=[
                keys.experiment(record.key),
                keys.audit(record.key),
                keys.spec_versions(record.key),
            ],
            args=[
                expected,
                _dump(record),
                entry.model_dump_json(),
                str(record.version) if new_spec else "",
                record.spec.model_dump_json() if new_spec else "",
            ],
        )
        return bool(ok)

    async def _config_changed(self, key: str) -> None:
        version = await self._redis.incr(keys.config_version())
        await self._redis.publish(keys.config_channel(), f"{version}:{key}")

    async def create(self, spec: ExperimentSpec, actor: str) -> ExperimentRecord:
        now = self._clock()
        record = ExperimentRecord(key=spec.key, spec=spec, created_at=now, updated_at=now)
        entry = AuditEntry(at=now, actor=actor, action="create", version=1)
        if not await self._write("", record, entry, new_spec=True):
            raise Conflict(f"experiment {spec.key!r} already exists; PUT edits a draft")
        await self._redis.sadd(keys.experiments_index(), spec.key)
        await self._config_changed(spec.key)
        return record.model_copy(update={"audit": [entry]})

    async def update_spec(self, spec: ExperimentSpec, actor: str) -> ExperimentRecord:
        for _ in range(_CAS_RETRIES):
            raw = await self._raw(spec.key)
            if raw is None:
                raise NotFound(f"experiment {spec.key!r} does not exist")
            current = ExperimentRecord.model_validate_json(raw)
            if current.status != "draft":
                raise Conflict(
                    f"experiment {spec.key!r} is {current.status}: its spec was frozen when it "
                    "started; create a new experiment key for a changed design"
                )
            if current.spec == spec:
                return await self.get(spec.key)
            now = self._clock()
            record = current.model_copy(
                update={"spec": spec, "version": current.version + 1, "updated_at": now}
            )
            entry = AuditEntry(
                at=now,
                actor=actor,
                action="update",
                version=record.version,
                detail={"changed": _changed_fields(current.spec, spec)},
            )
            if await self._write(raw, record, entry, new_spec=True):
                await self._config_changed(spec.key)
                return await self.get(spec.key)
        raise Conflict(f"experiment {spec.key!r} is being changed concurrently; retry")

    async def transition(
        self,
        key: str,
        action: str,
        actor: str,
        *,
        variant: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> ExperimentRecord:
        """Apply a lifecycle ``action``; 409 when the current status does not allow it."""
        for _ in range(_CAS_RETRIES):
            raw = await self._raw(key)
            if raw is None:
                raise NotFound(f"experiment {key!r} does not exist")
            current = ExperimentRecord.model_validate_json(raw)
            target = next_status(current.status, action)
            if target is None:
                raise Conflict(f"cannot {action} experiment {key!r}: it is {current.status}")
            now = self._clock()
            update: dict[str, Any] = {"status": target, "updated_at": now}
            info = dict(detail or {})
            spec = current.spec
            if action == "ship":
                shipped = variant or _default_ship_variant(spec)
                if shipped not in spec.variant_keys():
                    raise Conflict(f"cannot ship {shipped!r}: not a variant of {key!r}")
                update["shipped_variant"] = shipped
                info["variant"] = shipped
            if action == "start":
                update["started_at"] = now
                if spec.rollout is not None:
                    first = StepEntry(
                        step=1, traffic=spec.rollout.steps[0].traffic, started_at=now, actor=actor
                    )
                    update["rollout"] = RolloutState(history=[first])
                    info["traffic"] = first.traffic
                if spec.layer is not None:
                    update["layer_range"] = await self._reserve_layer(spec)
                    info["layer_range"] = list(update["layer_range"])
            if target in ENDED:
                update["ended_at"] = now
            record = current.model_copy(update=update)
            entry = AuditEntry(
                at=now, actor=actor, action=action, version=current.version, detail=info
            )
            if await self._write(raw, record, entry, new_spec=False):
                if target in ENDED and spec.layer is not None:
                    await self._redis.hdel(keys.layer(spec.layer), key)
                await self._config_changed(key)
                return await self.get(key)
            if action == "start" and spec.layer is not None:
                await self._redis.hdel(keys.layer(spec.layer), key)
        raise Conflict(f"experiment {key!r} is being changed concurrently; retry")

    async def ramp(
        self,
        key: str,
        actor: str,
        *,
        from_step: int,
        to_step: int,
        units_at_start: int,
        detail: dict[str, Any] | None = None,
    ) -> ExperimentRecord:
        """Move a running experiment's rollout from step ``from_step`` to ``to_step`` (both
        1-based): a new version with the step's traffic, audited. 409 when the experiment is
        not running, has no rollout, or is no longer at ``from_step`` (someone ramped it)."""
        for _ in range(_CAS_RETRIES):
            raw = await self._raw(key)
            if raw is None:
                raise NotFound(f"experiment {key!r} does not exist")
            current = ExperimentRecord.model_validate_json(raw)
            rollout, state = current.spec.rollout, current.rollout
            if current.status != "running" or rollout is None or state is None:
                why = current.status if current.status != "running" else "without a rollout"
                raise Conflict(f"cannot ramp experiment {key!r}: it is {why}")
            if state.step != from_step:
                raise Conflict(
                    f"experiment {key!r} is at step {state.step} of its rollout, not {from_step}"
                )
            if not from_step < to_step <= len(rollout.steps):
                raise Conflict(
                    f"cannot ramp experiment {key!r} from step {from_step} to {to_step} "
                    f"(steps 1-{len(rollout.steps)}; a ramp only goes up)"
                )
            now = self._clock()
            traffic = rollout.steps[to_step - 1].traffic
            entry = StepEntry(
                step=to_step,
                traffic=traffic,
                started_at=now,
                units_at_start=max(0, units_at_start),
                actor=actor,
            )
            record = current.model_copy(
                update={
                    "rollout": RolloutState(history=[*state.history, entry]),
                    "version": current.version + 1,
                    "updated_at": now,
                }
            )
            audit = AuditEntry(
                at=now,
                actor=actor,
                action="ramp",
                version=record.version,
                detail={
                    "from_step": from_step,
                    "to_step": to_step,
                    "from_traffic": state.traffic,
                    "traffic": traffic,
                    "units": entry.units_at_start,
                    **(detail or {}),
                },
            )
            if await self._write(raw, record, audit, new_spec=True):
                await self._config_changed(key)
                return await self.get(key)
        raise Conflict(f"experiment {key!r} is being changed concurrently; retry")

    async def _reserve_layer(self, spec: ExperimentSpec) -> tuple[int, int]:
        assert spec.layer is not None
        width = round(spec.layer_share * BUCKETS)
        start, end = await self._allocate(
            keys=[keys.layer(spec.layer)], args=[spec.key, width, BUCKETS]
        )
        if int(start) < 0:
            raise Conflict(
                f"layer {spec.layer!r} has {int(end) / BUCKETS:.2%} of its units free; "
                f"{spec.key!r} asks for layer_share {spec.layer_share}"
            )
        return int(start), int(end)


def _default_ship_variant(spec: ExperimentSpec) -> str:
    others = [v for v in spec.variant_keys() if v != spec.baseline]
    if len(others) != 1:
        raise Conflict(
            f"experiment {spec.key!r} has {len(others)} candidates: say which to ship "
            '(body {"variant": "..."})'
        )
    return others[0]


def _changed_fields(old: ExperimentSpec, new: ExperimentSpec) -> list[str]:
    before, after = old.model_dump(), new.model_dump()
    return sorted(k for k in after if before.get(k) != after.get(k))
