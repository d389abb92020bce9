"""Exposures carry the unit's attributes: the analysis fixes segments at a unit's entry."""

from __future__ import annotations

from sharpen._wire import exposure_body


def test_exposure_rows_carry_scalar_attributes() -> None:
    body = exposure_body(
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
    first, second = body["exposures"]
    assert first["attributes"] == {"country": "DE", "tier": 3, "vip": True, "none": None}
    assert first["timestamp"].endswith(".250Z")
    assert "attributes" not in second
