"""Typed, frozen form of the ``GET /v1/config`` document.

:func:`parse_config` turns the JSON document into a :class:`Config`.  A
malformed experiment entry is skipped and reported in ``Config.skipped``
(its key → the reason), never fatal; only a document that is not a config at
all (or asks for an unknown hash version) raises :class:`ConfigError`.

Parsing also precomputes everything evaluation needs (variant boundaries,
thresholds, the ready-made :class:`Assignment` of every outcome), so that
evaluating a unit allocates nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, Literal, get_args

from sharpen._canonical import canonical
from sharpen._exceptions import ConfigError
from sharpen._hashing import (
    BUCKETS,
    Hasher,
    check_hash_version,
    hasher_for,
    threshold,
    weight_boundaries,
)
from sharpen._models import EMPTY_PAYLOAD, Assignment, freeze, thaw

__all__ = [
    "STATUSES",
    "Config",
    "ExperimentConfig",
    "Status",
    "Variant",
    "parse_config",
    "parse_experiment",
]

Status = Literal["draft", "running", "shipped", "rolled_back", "stopped"]
STATUSES: Final[frozenset[str]] = frozenset(get_args(Status))

_NO_TARGETING: Final[Mapping[str, frozenset[str]]] = MappingProxyType({})

# Status -> reason of the fixed answer every unit gets (running has none).
_ENDED_REASONS: Final[Mapping[str, str]] = MappingProxyType(
    {"shipped": "shipped", "rolled_back": "rolled_back", "stopped": "stopped"}
)


@dataclass(frozen=True, slots=True)
class Variant:
    """One arm of an experiment: its key, relative weight and payload."""

    key: str
    weight: float
    payload: Mapping[str, Any] = field(default_factory=lambda: EMPTY_PAYLOAD)


def _variant_outcome(key: str, variants: tuple[Variant, ...], exp: str, reason: str) -> Assignment:
    payload = next((v.payload for v in variants if v.key == key), EMPTY_PAYLOAD)
    return Assignment(exp, key, payload, reason == "assigned", reason)


@dataclass(frozen=True, slots=True)
class ExperimentConfig:
    """One experiment entry of the config, validated.

    Build it with :func:`parse_experiment` from the wire form; the constructor
    validates too and raises :class:`ConfigError` on inconsistent values.
    ``traffic`` and ``holdout`` are shares clamped to [0, 1]; ``layer_range``
    is ``(start, end)`` in buckets, end exclusive.
    """

    key: str
    variants: tuple[Variant, ...]
    baseline: str
    status: str = "running"
    version: int = 1
    salt: str = ""
    hash_version: int = 1
    shipped_variant: str | None = None
    traffic: float = 1.0
    targeting: Mapping[str, frozenset[str]] = field(default_factory=lambda: _NO_TARGETING)
    layer: str | None = None
    layer_range: tuple[int, int] | None = None
    holdout: float = 0.0

    # Derived at construction, read by evaluation.
    hasher: Hasher = field(init=False, repr=False, compare=False)
    boundaries: tuple[int, ...] = field(init=False, repr=False, compare=False)
    traffic_threshold: int = field(init=False, repr=False, compare=False)
    holdout_threshold: int = field(init=False, repr=False, compare=False)
    key_prefix: str = field(init=False, repr=False, compare=False)
    gated: bool = field(init=False, repr=False, compare=False)
    layer_prefix: str | None = field(init=False, repr=False, compare=False)
    targeting_items: tuple[tuple[str, frozenset[str]], ...] = field(
        init=False, repr=False, compare=False
    )
    fixed: Assignment | None = field(init=False, repr=False, compare=False)
    assigned: tuple[Assignment, ...] = field(init=False, repr=False, compare=False)
    excluded: Mapping[str, Assignment] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        key = self.key
        keys = [v.key for v in self.variants]
        if not keys:
            raise ConfigError(f"experiment {key!r}: variants is empty", key=key)
        if len(set(keys)) != len(keys):
            raise ConfigError(f"experiment {key!r}: duplicate variant keys {keys}", key=key)
        if self.baseline not in keys:
            raise ConfigError(
                f"experiment {key!r}: baseline {self.baseline!r} is not a variant", key=key
            )
        if self.shipped_variant is not None and self.shipped_variant not in keys:
            raise ConfigError(
                f"experiment {key!r}: shipped_variant {self.shipped_variant!r} is not a variant",
                key=key,
            )
        if self.status == "shipped" and self.shipped_variant is None:
            raise ConfigError(f"experiment {key!r}: shipped without shipped_variant", key=key)
        try:
            boundaries = weight_boundaries([v.weight for v in self.variants])
        except ValueError as exc:
            raise ConfigError(f"experiment {key!r}: variants: {exc}", key=key) from None
        if self.layer is not None:
            start, end = self.layer_range or (-1, -1)
            if not 0 <= start <= end <= BUCKETS:
                raise ConfigError(
                    f"experiment {key!r}: layer_range {self.layer_range!r} must be "
                    f"[start, end] with 0 <= start <= end <= {BUCKETS}",
                    key=key,
                )
        hasher = hasher_for(check_hash_version(self.hash_version, key=key))
        salt = self.salt or key

        def setattr_(name: str, value: object) -> None:
            object.__setattr__(self, name, value)

        setattr_("salt", salt)
        setattr_("hasher", hasher)
        setattr_("boundaries", boundaries)
        traffic_threshold = threshold(self.traffic)
        holdout_threshold = threshold(self.holdout)
        setattr_("traffic_threshold", traffic_threshold)
        setattr_("holdout_threshold", holdout_threshold)
        gated = bool(self.targeting) or self.layer is not None
        setattr_("gated", gated or holdout_threshold > 0 or traffic_threshold < BUCKETS)
        setattr_("key_prefix", salt + ":")
        setattr_("layer_prefix", None if self.layer is None else self.layer + ":")
        setattr_("targeting_items", tuple(self.targeting.items()))
        setattr_(
            "assigned",
            tuple(Assignment(key, v.key, v.payload, True, "assigned") for v in self.variants),
        )
        excluded = {
            reason: _variant_outcome(self.baseline, self.variants, key, reason)
            for reason in (
                "targeting",
                "layer",
                "holdout",
                "traffic",
                "invalid_unit",
                "rolled_back",
                "stopped",
                "not_running",
            )
        }
        setattr_("excluded", MappingProxyType(excluded))
        fixed: Assignment | None = None
        if self.status == "shipped":
            assert self.shipped_variant is not None
            fixed = _variant_outcome(self.shipped_variant, self.variants, key, "shipped")
        elif self.status != "running":
            fixed = excluded[_ENDED_REASONS.get(self.status, "not_running")]
        setattr_("fixed", fixed)

    def as_dict(self) -> dict[str, Any]:
        """The wire form of this entry (as served in ``GET /v1/config``)."""
        return {
            "key": self.key,
            "version": self.version,
            "status": self.status,
            "salt": self.salt,
            "hash_version": self.hash_version,
            "variants": [
                {"key": v.key, "weight": v.weight, "payload": thaw(v.payload)}
                for v in self.variants
            ],
            "baseline": self.baseline,
            "shipped_variant": self.shipped_variant,
            "traffic": self.traffic,
            "targeting": {name: sorted(values) for name, values in self.targeting.items()},
            "layer": self.layer,
            "layer_range": list(self.layer_range) if self.layer_range is not None else None,
            "holdout": self.holdout,
        }


@dataclass(frozen=True, slots=True)
class Config:
    """A parsed config document: the experiments the SDK can evaluate locally.

    ``skipped`` maps the key of every malformed entry to why it was skipped.
    """

    experiments: Mapping[str, ExperimentConfig]
    etag: str | None = None
    hash_version: int = 1
    skipped: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


# --- wire parsing -----------------------------------------------------------


class _Fields:
    """Typed access to the fields of one JSON object, with errors naming them."""

    __slots__ = ("key", "raw")

    def __init__(self, raw: Mapping[str, Any], key: str) -> None:
        self.raw = raw
        self.key = key

    def fail(self, name: str, message: str) -> ConfigError:
        value = self.raw.get(name)
        return ConfigError(
            f"experiment {self.key!r}: {name} {message} (got {value!r})", key=self.key
        )

    def string(self, name: str, default: str | None = None, *, nullable: bool = False) -> Any:
        value = self.raw.get(name, default)
        if value is None and (nullable or default is not None):
            return default
        if not isinstance(value, str) or not value:
            raise self.fail(name, "must be a non-empty string")
        return value

    def integer(self, name: str, default: int) -> int:
        value = self.raw.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(name, "must be an integer")
        return value

    def share(self, name: str, default: float) -> float:
        value = self.raw.get(name, default)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(name, "must be a number")
        if math.isnan(value):
            raise self.fail(name, "must be a number")
        return min(max(float(value), 0.0), 1.0)


def _parse_variants(fields: _Fields) -> tuple[Variant, ...]:
    raw = fields.raw.get("variants")
    if not isinstance(raw, list) or not raw:
        raise fields.fail("variants", "must be a non-empty list")
    variants = []
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping):
            raise fields.fail("variants", f"[{i}] must be an object")
        vkey, weight, payload = item.get("key"), item.get("weight"), item.get("payload")
        if not isinstance(vkey, str) or not vkey:
            raise fields.fail("variants", f"[{i}].key must be a non-empty string")
        if isinstance(weight, bool) or not isinstance(weight, int | float):
            raise fields.fail("variants", f"[{i}].weight must be a number")
        if payload is None:
            payload = {}
        if not isinstance(payload, Mapping):
            raise fields.fail("variants", f"[{i}].payload must be an object")
        variants.append(Variant(vkey, weight, freeze(payload)))
    return tuple(variants)


def _parse_targeting(fields: _Fields) -> Mapping[str, frozenset[str]]:
    raw = fields.raw.get("targeting")
    if raw is None:
        return _NO_TARGETING
    if not isinstance(raw, Mapping):
        raise fields.fail("targeting", "must be an object of attribute -> list of values")
    rules: dict[str, frozenset[str]] = {}
    for name, allowed in raw.items():
        if not isinstance(allowed, list):
            raise fields.fail("targeting", f"[{name!r}] must be a list of values")
        values = {canonical(v) for v in allowed}
        if None in values:
            raise fields.fail("targeting", f"[{name!r}] must hold only scalar values")
        rules[str(name)] = frozenset(v for v in values if v is not None)
    return MappingProxyType(rules)


def _parse_layer_range(fields: _Fields) -> tuple[int, int] | None:
    raw = fields.raw.get("layer_range")
    if raw is None:
        return None
    if (
        not isinstance(raw, list | tuple)
        or len(raw) != 2
        or any(isinstance(b, bool) or not isinstance(b, int) for b in raw)
    ):
        raise fields.fail("layer_range", "must be [start, end] integers")
    return (raw[0], raw[1])


def parse_experiment(
    entry: object, *, key: str | None = None, default_hash_version: int = 1
) -> ExperimentConfig:
    """Validate one wire-form experiment entry; raise :class:`ConfigError` if malformed.

    ``key`` is the entry's key in the document's ``experiments`` object; when
    given, the entry's own ``key`` (if any) must match it.
    """
    if not isinstance(entry, Mapping):
        raise ConfigError(f"experiment {key!r}: entry must be an object", key=key)
    own = entry.get("key", key)
    if not isinstance(own, str) or not own or (key is not None and own != key):
        raise ConfigError(f"experiment {key!r}: key must be {key!r} (got {own!r})", key=key)
    fields = _Fields(entry, own)
    status = fields.string("status")
    hash_version = entry.get("hash_version", default_hash_version)
    check_hash_version(hash_version, key=own)
    return ExperimentConfig(
        key=own,
        variants=_parse_variants(fields),
        baseline=fields.string("baseline"),
        status=status,
        version=fields.integer("version", 1),
        salt=fields.string("salt", own),
        hash_version=hash_version,
        shipped_variant=fields.string("shipped_variant", None, nullable=True),
        traffic=fields.share("traffic", 1.0),
        targeting=_parse_targeting(fields),
        layer=fields.string("layer", None, nullable=True),
        layer_range=_parse_layer_range(fields),
        holdout=fields.share("holdout", 0.0),
    )


def parse_config(document: object, *, etag: str | None = None) -> Config:
    """Parse a ``GET /v1/config`` body; malformed entries land in ``skipped``.

    Raises :class:`ConfigError` when the document itself is unusable (not an
    object, no ``experiments`` object, or an unsupported ``hash_version``).
    ``etag`` (the response header) wins over the document's own ``etag``.
    """
    if not isinstance(document, Mapping):
        raise ConfigError("config document must be a JSON object")
    raw = document.get("experiments")
    if not isinstance(raw, Mapping):
        raise ConfigError("config document: experiments must be an object of key -> entry")
    hash_version = check_hash_version(document.get("hash_version", 1))
    doc_etag = document.get("etag")
    experiments: dict[str, ExperimentConfig] = {}
    skipped: dict[str, str] = {}
    for key, entry in raw.items():
        try:
            experiments[key] = parse_experiment(entry, key=key, default_hash_version=hash_version)
        except ConfigError as exc:
            skipped[str(key)] = str(exc)
    return Config(
        experiments=MappingProxyType(experiments),
        etag=etag if etag is not None else doc_etag if isinstance(doc_etag, str) else None,
        hash_version=hash_version,
        skipped=MappingProxyType(skipped),
    )
