"""The SDK reproduces the language-neutral golden vectors in tests/spec/hashing.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import sharpen
from sharpen.core import (
    BUCKETS,
    HOLDOUT_SALT,
    HOLDOUT_SEED,
    LAYER_SEED,
    TRAFFIC_SEED,
    VARIANT_SEED,
    bucket,
    canonical,
    evaluate,
    parse_experiment,
    threshold,
    unit_hash,
    weight_boundaries,
)
from tests.sdk.murmur3_reference import murmur3_32

SPEC = json.loads(
    (Path(__file__).resolve().parents[1] / "spec" / "hashing.json").read_text(encoding="utf-8")
)


def _id(case: dict[str, Any]) -> str:
    return str(case.get("name") or case.get("note") or case.get("why") or case.get("unit_id"))


def test_constants_match_the_spec() -> None:
    assert SPEC["hash_version"] in sharpen.core.SUPPORTED_HASH_VERSIONS
    assert SPEC["buckets"] == BUCKETS
    assert SPEC["holdout_salt"] == HOLDOUT_SALT
    assert SPEC["seeds"] == {
        "traffic": TRAFFIC_SEED,
        "variant": VARIANT_SEED,
        "layer": LAYER_SEED,
        "holdout": HOLDOUT_SEED,
    }
    assert len(set(SPEC["seeds"].values())) == 4


@pytest.mark.parametrize("case", SPEC["hash_cases"], ids=_id)
def test_hash_cases(case: dict[str, Any]) -> None:
    key_bytes = bytes.fromhex(case["key_utf8_hex"])
    # The vector itself agrees with an independent implementation...
    assert murmur3_32(key_bytes, case["seed"]) == case["hash"]
    assert case["hash"] % BUCKETS == case["bucket"]
    # ...and with the SDK.
    args = (case["salt"], case["unit_id"])
    assert unit_hash(*args, seed=case["seed"], version=case["version"]) == case["hash"]
    assert bucket(*args, seed=case["seed"], version=case["version"]) == case["bucket"]


def test_hash_cases_cover_the_awkward_inputs() -> None:
    units = [c["unit_id"] for c in SPEC["hash_cases"]]
    assert "" in units
    assert any(not u.isascii() for u in units)
    assert any(any(ord(ch) > 0xFFFF for ch in u) for u in units)  # emoji
    assert {len(u) % 4 for u in units} == {0, 1, 2, 3}  # every murmur tail length


@pytest.mark.parametrize("case", SPEC["range_cases"], ids=lambda c: str(c["weights"]))
def test_range_cases(case: dict[str, Any]) -> None:
    bounds = weight_boundaries(case["weights"])
    assert [list(r) for r in zip((0, *bounds[:-1]), bounds, strict=True)] == case["ranges"]


@pytest.mark.parametrize("case", SPEC["threshold_cases"], ids=lambda c: str(c["share"]))
def test_threshold_cases(case: dict[str, Any]) -> None:
    assert threshold(case["share"]) == case["threshold"]


@pytest.mark.parametrize("case", SPEC["canonical_cases"], ids=lambda c: repr(c["value"]))
def test_canonical_cases(case: dict[str, Any]) -> None:
    assert canonical(case["value"]) == case["canonical"]


@pytest.mark.parametrize("case", SPEC["evaluation_cases"], ids=_id)
def test_evaluation_cases(case: dict[str, Any]) -> None:
    experiment = parse_experiment(case["experiment"])
    result = evaluate(experiment, case["unit_id"], case["attributes"])
    assert result.experiment == case["experiment"]["key"]
    assert result.variant == case["variant"]
    assert result.reason == case["reason"]
    assert result.in_experiment == case["in_experiment"]
    assert result.as_dict()["payload"] == case["payload"]
    salt = experiment.salt
    buckets = case.get("buckets", {})
    seeds = {
        "traffic": (salt, TRAFFIC_SEED),
        "variant": (salt, VARIANT_SEED),
        "layer": (experiment.layer, LAYER_SEED),
        "holdout": (HOLDOUT_SALT, HOLDOUT_SEED),
    }
    for draw, value in buckets.items():
        draw_salt, seed = seeds[draw]
        assert draw_salt is not None
        assert bucket(draw_salt, case["unit_id"], seed=seed) == value, draw


def test_evaluation_cases_cover_every_reason() -> None:
    reasons = {c["reason"] for c in SPEC["evaluation_cases"]}
    assert reasons >= {
        "assigned",
        "shipped",
        "rolled_back",
        "stopped",
        "not_running",
        "targeting",
        "layer",
        "holdout",
        "traffic",
        "invalid_unit",
    }


@pytest.mark.parametrize("case", SPEC["invalid_experiments"], ids=_id)
def test_invalid_experiments_are_rejected(case: dict[str, Any]) -> None:
    expected = (
        sharpen.UnsupportedHashVersionError
        if case["error"] == "unsupported_hash_version"
        else sharpen.ConfigError
    )
    with pytest.raises(expected):
        parse_experiment(case["experiment"])
    # Inside a whole document the entry is skipped, not fatal.
    config = sharpen.core.parse_config(
        {"experiments": {case["experiment"]["key"]: case["experiment"]}}
    )
    assert not config.experiments
    assert case["experiment"]["key"] in config.skipped
