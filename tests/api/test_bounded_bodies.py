"""Arrays in request bodies are counted before any per-item work (``service/bodies.py``),
through the struct that stops at the limit and, above ``GUARDED_MAX``, the plain list."""

from __future__ import annotations

import pytest

from service.bodies import GUARDED_MAX, TooManyItems, bound_arrays, skim
from service.errors import ValidationFailed


def _body(count: int, item: bytes = b"{}") -> bytes:
    return b'{"items":[' + b",".join([item] * count) + b"]}"


@pytest.mark.parametrize("limit", [3, GUARDED_MAX + 2])
def test_skim_takes_up_to_the_limit_and_refuses_one_more(limit: int) -> None:
    items = skim(_body(limit, b'{"a":[1]}'), "items", limit, noun="items")
    assert [bytes(i) for i in items] == [b'{"a":[1]}'] * limit
    assert [bytes(i) for i in skim(_body(2, b"null"), "items", limit, noun="items")] == [
        b"null",
        b"null",
    ]
    with pytest.raises(TooManyItems) as refused:
        skim(_body(limit + 1), "items", limit, noun="items")
    assert refused.value.details == [
        {"field": "items", "message": f"at most {limit} items per request"}
    ]


@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        (b"{nope", "body", "not valid JSON"),
        (b"[]", "items", "required"),
        (b"{}", "items", "required"),
        (b'{"items": {}}', "items", "must be a list"),
        (b'{"items": []}', "items", "at least one"),
        (b'{"items": [' + b"[" * 50_000 + b"]" * 50_000 + b"]}", "body", "nested too deeply"),
        (b'{"items": [1], "other": 2}', "other", "unknown field"),
    ],
)
def test_skim_names_what_is_wrong_with_the_body(body: bytes, field: str, fragment: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        skim(body, "items", 10, noun="items", forbid_unknown=True)
    assert refused.value.details[0]["field"] == field
    assert fragment in refused.value.details[0]["message"]


def test_bound_arrays_refuses_long_arrays_and_deep_nesting_only() -> None:
    bound_arrays(b'{"looks": [1, 2], "other": {"x": [1, 2, 3]}}', looks=2)
    bound_arrays(b"{not json", looks=2)  # left to the route's parser
    with pytest.raises(TooManyItems):
        bound_arrays(b'{"looks": [1, 2, 3]}', looks=2)
    with pytest.raises(TooManyItems):
        bound_arrays(b'{"rows": [' + b"0," * (GUARDED_MAX + 1) + b"0]}", rows=GUARDED_MAX + 1)
    with pytest.raises(ValidationFailed, match="nested too deeply"):
        bound_arrays(b'{"x": ' + b"[" * 50_000 + b"]" * 50_000 + b"}", looks=2)
