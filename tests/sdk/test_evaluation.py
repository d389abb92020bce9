"""Evaluation semantics and defensive config parsing."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

import sharpen
from sharpen import ConfigError, UnsupportedHashVersionError
from sharpen.core import assign_from_config, evaluate, parse_config, parse_experiment
from tests.sdk.fakes import document, entry

UNITS = [f"unit-{i}" for i in range(2000)]


def test_shipped_serves_the_shipped_variant_with_its_payload_to_everyone() -> None:
    exp = parse_experiment(
        entry(
            status="shipped",
            shipped_variant="candidate",
            traffic=0.0,
            targeting={"country": ["US"]},
        )
    )
    for uid in UNITS[:200]:
        result = evaluate(exp, uid, {"country": "FR"})
        assert (result.variant, result.reason, result.in_experiment) == (
            "candidate",
            "shipped",
            False,
        )
        assert result.payload["model"] == "fraud-v7"


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        ("rolled_back", "rolled_back"),
        ("stopped", "stopped"),
        ("draft", "not_running"),
        ("archived", "not_running"),
    ],
)
def test_ended_or_draft_experiments_serve_the_baseline(status: str, reason: str) -> None:
    exp = parse_experiment(entry(status=status))
    results = {evaluate(exp, uid) for uid in UNITS[:200]}
    assert {(r.variant, r.reason, r.in_experiment) for r in results} == {
        ("baseline", reason, False)
    }


def test_rollback_after_running_sends_every_included_unit_to_the_baseline() -> None:
    running = parse_experiment(entry())
    rolled = parse_experiment(entry(status="rolled_back"))
    assert any(evaluate(running, u).variant == "candidate" for u in UNITS)
    assert all(evaluate(rolled, u).variant == "baseline" for u in UNITS)


@pytest.mark.parametrize(
    ("attributes", "reason"),
    [
        ({"country": "US", "tier": 3}, "assigned"),
        ({"country": "CA", "tier": "3"}, "assigned"),
        ({"country": "CA", "tier": 3.0}, "assigned"),
        ({"country": "DE", "tier": 3}, "targeting"),
        ({"country": "US"}, "targeting"),
        ({"country": "US", "tier": None}, "targeting"),
        ({"country": ["US"], "tier": 3}, "targeting"),
        (None, "targeting"),
        ("not a mapping", "targeting"),
        (42, "targeting"),
    ],
)
def test_targeting(attributes: Any, reason: str) -> None:
    exp = parse_experiment(entry(targeting={"country": ["US", "CA"], "tier": [3]}))
    assert evaluate(exp, "unit-1", attributes).reason == reason


def test_boolean_targeting_uses_lowercase_canonical_strings() -> None:
    exp = parse_experiment(entry(targeting={"beta": [True]}))
    assert evaluate(exp, "u", {"beta": True}).reason == "assigned"
    assert evaluate(exp, "u", {"beta": "true"}).reason == "assigned"
    assert evaluate(exp, "u", {"beta": "True"}).reason == "targeting"
    assert evaluate(exp, "u", {"beta": 1}).reason == "targeting"


def test_empty_allowed_list_admits_nobody() -> None:
    exp = parse_experiment(entry(targeting={"country": []}))
    assert evaluate(exp, "u", {"country": "US"}).reason == "targeting"


@pytest.mark.parametrize("unit_id", ["", None, ["x"], {"a": 1}])
def test_invalid_unit_ids_get_the_baseline(unit_id: Any) -> None:
    result = evaluate(parse_experiment(entry()), unit_id)
    assert (result.variant, result.reason, result.in_experiment) == (
        "baseline",
        "invalid_unit",
        False,
    )


def test_integer_unit_ids_hash_like_their_decimal_string() -> None:
    exp = parse_experiment(entry())
    for n in range(100):
        assert evaluate(exp, n) == evaluate(exp, str(n))  # type: ignore[arg-type]


def test_only_assigned_is_in_the_experiment() -> None:
    exp = parse_experiment(entry(traffic=0.5, holdout=0.1, layer="l", layer_range=[0, 8000]))
    for uid in UNITS:
        result = evaluate(exp, uid)
        assert result.in_experiment == (result.reason == "assigned")


def test_evaluation_returns_shared_immutable_results() -> None:
    exp = parse_experiment(entry())
    result = evaluate(exp, "unit-1")
    assert evaluate(exp, "unit-1") is result  # precomputed, no per-call allocation
    with pytest.raises(TypeError):
        result.payload["model"] = "hacked"  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.variant = "x"  # type: ignore[misc]
    assert hash(result) == hash(evaluate(exp, "unit-1"))


def test_payload_is_deeply_frozen_and_thaws_to_json() -> None:
    payload = {"model": "m", "params": {"thresholds": [0.1, 0.2], "nested": {"a": 1}}}
    exp = parse_experiment(entry(variants=[{"key": "baseline", "weight": 1, "payload": payload}]))
    result = evaluate(exp, "u")
    assert result.payload["params"]["thresholds"] == (0.1, 0.2)
    with pytest.raises(TypeError):
        result.payload["params"]["nested"]["a"] = 2
    assert result.as_dict()["payload"] == payload


def test_wire_round_trip_of_an_entry() -> None:
    raw = entry(
        targeting={"country": ["US", "CA"]},
        layer="l",
        layer_range=[100, 900],
        holdout=0.05,
        traffic=0.25,
    )
    exp = parse_experiment(raw)
    again = parse_experiment(exp.as_dict())
    assert again == exp
    assert exp.as_dict()["targeting"] == {"country": ["CA", "US"]}


def test_shares_are_clamped() -> None:
    exp = parse_experiment(entry(traffic=7, holdout=-1))
    assert (exp.traffic, exp.holdout) == (1.0, 0.0)
    assert all(evaluate(exp, u).reason == "assigned" for u in UNITS[:100])


def test_assign_from_config_unknown_and_fallback() -> None:
    config = parse_config(document(entry()))
    unknown = assign_from_config(config, "nope", "u")
    assert (unknown.variant, unknown.reason, unknown.in_experiment) == (
        None,
        "unknown_experiment",
        False,
    )
    assert dict(unknown.payload) == {}
    assert assign_from_config(config, "nope", "u", default="baseline").variant == "baseline"
    fallback = assign_from_config(None, "fraud-v7", "u", default="baseline")
    assert (fallback.variant, fallback.reason) == ("baseline", "fallback")
    assert assign_from_config(None, "fraud-v7", "u").variant is None


def test_malformed_entries_are_skipped_not_fatal() -> None:
    doc = document(entry("good"), entry("bad", variants=[]), entry("v2", hash_version=2))
    doc["experiments"]["junk"] = "not an object"
    doc["experiments"]["mismatch"] = entry("other")
    config = parse_config(doc)
    assert set(config.experiments) == {"good"}
    assert set(config.skipped) == {"bad", "v2", "junk", "mismatch"}
    assert "unsupported hash_version 2" in config.skipped["v2"]
    assert "'bad'" in config.skipped["bad"] and "variants" in config.skipped["bad"]


@pytest.mark.parametrize("doc", [None, [], "x", {"experiments": []}, {"no": "experiments"}])
def test_unusable_documents_raise_config_error(doc: Any) -> None:
    with pytest.raises(ConfigError):
        parse_config(doc)


def test_unknown_document_hash_version_is_a_clear_error_at_load() -> None:
    with pytest.raises(UnsupportedHashVersionError, match="unsupported hash_version 9"):
        parse_config({"hash_version": 9, "experiments": {}})
    with pytest.raises(UnsupportedHashVersionError):
        sharpen.core.bucket("s", "u", seed=1, version=2)


def test_document_hash_version_is_the_default_for_entries() -> None:
    raw = entry()
    del raw["hash_version"]
    config = parse_config({"hash_version": 1, "experiments": {"fraud-v7": raw}})
    assert config.experiments["fraud-v7"].hash_version == 1


def test_etag_header_wins_over_the_document() -> None:
    assert parse_config(document(entry(), etag='"doc"')).etag == '"doc"'
    assert parse_config(document(entry(), etag='"doc"'), etag='"hdr"').etag == '"hdr"'


def test_constructor_validates_like_the_parser() -> None:
    variants = (sharpen.core.Variant("a", 1), sharpen.core.Variant("b", 1))
    exp = sharpen.core.ExperimentConfig(key="k", variants=variants, baseline="a")
    assert exp.salt == "k"
    with pytest.raises(ConfigError, match="baseline 'zzz'"):
        sharpen.core.ExperimentConfig(key="k", variants=variants, baseline="zzz")
