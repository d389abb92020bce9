"""Exposures carry the unit's attributes: the analysis fixes segments at a unit's entry."""

from __future__ import annotations

import json

from sharpen._wire import exposure_content


def test_exposure_rows_carry_scalar_attributes() -> None:
    body = json.loads(
        exposure_content(
            [
                (
                    "exp",
                    "u1",
                    "candidate",
                    2,
                    1_700_000_000.25,
                    {"country": "DE", "tier": 3, "vip": True, "tags": ["a"], "none": None},
                ),
                ("exp", "u2", "baseline", 2, 1_700_000_000.5, None),
            ]
        )
    )
    first, second = body["exposures"]
    assert first["attributes"] == {"country": "DE", "tier": 3, "vip": True, "none": None}
    assert first["timestamp"].endswith(".250Z")
    assert "attributes" not in second
    assert (second["unit_id"], second["variant"], second["version"]) == ("u2", "baseline", 2)


def test_unit_ids_of_any_text_are_escaped() -> None:
    unit = 'ünï"\\\n🎉'
    body = json.loads(exposure_content([("exp", unit, "v", 1, 1_700_000_000.0, None)]))
    assert body["exposures"][0]["unit_id"] == unit
