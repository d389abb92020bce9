"""Compile experiment records into what assignment reads: once per config version.

The compiled form holds the ``GET /v1/config`` body (already encoded, with its
ETag), the parsed SDK entries of every experiment (drafts too, so a draft
answers "baseline, not_running" rather than 404) and the encoded
``POST /v1/assign`` answer of every possible outcome, so the hot path encodes
nothing.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from service.assignment._sdk import (
    Assignment,
    ConfigError,
    ExperimentConfig,
    parse_config,
    parse_experiment,
)
from service.spec import ExperimentRecord
from service.spec.sdk_config import HASH_VERSION, sdk_entry

__all__ = ["CompiledConfig", "compile_config", "compile_entries", "encode_assignment"]

log = logging.getLogger("sharpen.assignment")


@dataclass(frozen=True, slots=True)
class CompiledConfig:
    """One config version, ready to serve.

    ``experiments`` holds every experiment (drafts included); ``served`` the keys
    the config document lists (every non-draft); ``responses`` maps
    ``id(assignment)`` of every precomputed outcome to its encoded answer.
    """

    version: int
    etag: str
    body: bytes
    experiments: Mapping[str, ExperimentConfig]
    served: frozenset[str]
    responses: Mapping[int, bytes]
    variants: Mapping[str, frozenset[str]]

    def response(self, assignment: Assignment) -> bytes:
        """The encoded answer for ``assignment`` (precomputed for every outcome)."""
        encoded = self.responses.get(id(assignment))
        return encoded if encoded is not None else encode_assignment(assignment)


def encode_assignment(assignment: Assignment) -> bytes:
    return orjson.dumps(assignment.as_dict())


def _outcomes(entry: ExperimentConfig) -> Iterable[Assignment]:
    if entry.fixed is not None:
        yield entry.fixed
    yield from entry.assigned
    yield from entry.excluded.values()


def _document_etag(experiments: Mapping[str, Any]) -> str:
    canonical = orjson.dumps(experiments, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()[:24]


def compile_config(records: Iterable[ExperimentRecord], version: int) -> CompiledConfig:
    """Build the config document and the evaluation tables for stored ``records``."""
    return compile_entries((sdk_entry(r) for r in records), version)


def compile_entries(entries: Iterable[Mapping[str, Any]], version: int) -> CompiledConfig:
    """Build a :class:`CompiledConfig` from SDK config entries (``sdk_entry`` form).

    Drafts are evaluable but not served. An entry the SDK parser refuses is left
    out (and logged): assignment answers 404 for it rather than guessing.
    """
    served: dict[str, Mapping[str, Any]] = {}
    drafts: dict[str, Mapping[str, Any]] = {}
    for entry in sorted(entries, key=lambda e: str(e["key"])):
        key = str(entry["key"])
        if entry.get("status") == "draft":
            # Every unit of a draft gets the baseline; it holds no layer range yet.
            drafts[key] = {**entry, "layer": None, "layer_range": None}
        else:
            served[key] = entry
    etag = _document_etag(served)
    document = {"etag": etag, "hash_version": HASH_VERSION, "experiments": served}
    config = parse_config(document)
    for key, why in config.skipped.items():
        log.error("experiment %r left out of the config: %s", key, why)
    experiments: dict[str, ExperimentConfig] = dict(config.experiments)
    for key, entry in drafts.items():
        try:
            experiments[key] = parse_experiment(entry, key=key)
        except ConfigError as exc:
            log.error("draft %r cannot be evaluated: %s", key, exc)
    responses = {
        id(outcome): encode_assignment(outcome)
        for entry in experiments.values()
        for outcome in _outcomes(entry)
    }
    return CompiledConfig(
        version=version,
        etag=etag,
        body=orjson.dumps(document),
        # Plain dicts (typed read-only): one lookup each on the hot path.
        experiments=experiments,
        served=frozenset(config.experiments),
        responses=responses,
        variants={key: frozenset(v.key for v in e.variants) for key, e in experiments.items()},
    )
