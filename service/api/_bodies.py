"""Request bodies bounded before any work: arrays counted, nesting limited, in C.

Routes that carry one array of items (events, records, labels) skim it; routes with a
pydantic model and arrays inside (``/v1/analyze``, ``/v1/backtest``) bound those arrays
first and then parse (:func:`parse_model`).

:func:`skim` checks the body's shape and counts the items in C (msgspec decodes each item
only as a :class:`msgspec.Raw` slice of the body) and refuses more than the route's limit
before a single item is validated, so the cost of a refused body is bounded by its size,
whatever it holds: a million ``{}``, or JSON nested a hundred thousand levels deep (a 422,
never a RecursionError). Each item is then decoded on its own by the route.
:func:`off_loop` runs the per-item work of a big array in a worker thread, so that other
requests keep being served while it runs.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Callable
from typing import Annotated, Any, Final, TypeVar

import msgspec
from pydantic import BaseModel, ValidationError

from service.errors import FieldError, ValidationFailed, field_error
from service.spec.validation import pydantic_details

__all__ = [
    "INLINE_ITEMS",
    "MsgspecError",
    "TooManyItems",
    "bound_arrays",
    "explain",
    "off_loop",
    "parse_model",
    "skim",
]

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

INLINE_ITEMS: Final = 1000
"""Arrays up to this long are validated on the event loop (a thread hop costs more)."""

_AT = re.compile(r"^(?P<message>.*?)(?: - at (?P<key>`key` in )?`\$(?P<path>[^`]*)`)?$", re.DOTALL)
_STEP = re.compile(r"\.([^.\[]+)|\[(\d+|\.\.\.)\]")
_MISSING = re.compile(r"^Object missing required field `(?P<name>[^`]+)`$")
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<name>[^`]+)`$")
_TOO_LONG = re.compile(r"^Expected `array` of length <= \d+$")


class TooManyItems(ValidationFailed):
    """More items than the route takes (how many more is not known: they were not counted)."""


class MsgspecError:
    """A msgspec error taken apart: its message, the path of the value at fault (``[...]``
    for a dict entry msgspec does not name), and whether a dict *key* is at fault."""

    __slots__ = ("in_key", "message", "path")

    def __init__(self, exc: Exception) -> None:
        text = str(exc)
        match = _AT.match(text)
        self.message = match.group("message") if match else text
        self.in_key = bool(match and match.group("key"))
        self.path: list[str] = []
        if match and match.group("path"):
            for name, index in _STEP.findall(match.group("path")):
                self.path.append(name or index)
        named = _MISSING.match(self.message) or _UNKNOWN.match(self.message)
        if named:
            self.path.append(named.group("name"))
            self.message = "required" if _MISSING.match(self.message) else "unknown field"

    def field(self, prefix: str) -> str:
        """The dotted field, under ``prefix`` (``events.3``), without unnamed dict entries."""
        parts = [prefix] if prefix else []
        parts += [p for p in self.path if p != "..."]
        return ".".join(parts) or "body"


@functools.lru_cache(maxsize=32)
def _skimmer(name: str, limit: int, forbid_unknown: bool) -> msgspec.json.Decoder[Any]:
    items = Annotated[list[msgspec.Raw], msgspec.Meta(max_length=limit)]
    shape = msgspec.defstruct(f"Skim_{name}", [(name, items)], forbid_unknown_fields=forbid_unknown)
    return msgspec.json.Decoder(shape)


def skim(
    body: bytes, name: str, limit: int, *, noun: str, forbid_unknown: bool = False
) -> list[msgspec.Raw]:
    """The raw items of ``{name: [...]}``: 1 to ``limit`` of them, or a 422 naming the field.

    ``noun`` names the items in messages (``events``). Unknown top-level fields are
    ignored, or refused with ``forbid_unknown``.
    """
    try:
        items: list[msgspec.Raw] = getattr(_skimmer(name, limit, forbid_unknown).decode(body), name)
    except RecursionError:
        raise ValidationFailed(
            "body is nested too deeply", [field_error("body", "JSON nested too deeply")]
        ) from None
    except msgspec.ValidationError as exc:
        error = MsgspecError(exc)
        if _TOO_LONG.match(error.message):
            message = f"at most {limit} {noun} per request"
            raise TooManyItems(f"too many {noun}", [field_error(name, message)]) from None
        if not error.path:
            raise ValidationFailed(
                f"body must be an object with an {name} list",
                [field_error(name, f'required: {{"{name}": [...]}}')],
            ) from None
        if error.path == [name]:
            message = "required" if error.message == "required" else "must be a list"
            raise ValidationFailed(f"{name} must be a list", [field_error(name, message)]) from None
        details = [field_error(error.field(""), error.message)]
        raise ValidationFailed("invalid request", details) from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # bad UTF-8 in a string
        raise ValidationFailed(
            "body is not valid JSON", [field_error("body", f"not valid JSON: {exc}")]
        ) from None
    if not items:
        raise ValidationFailed(f"no {noun}", [field_error(name, f"at least one of the {noun}")])
    return items


@functools.lru_cache(maxsize=32)
def _bounder(limits: tuple[tuple[str, int], ...]) -> msgspec.json.Decoder[Any]:
    fields = [
        (name, Annotated[list[msgspec.Raw], msgspec.Meta(max_length=limit)] | None, None)
        for name, limit in limits
    ]
    return msgspec.json.Decoder(msgspec.defstruct("Bounds", fields))


def bound_arrays(body: bytes, **limits: int) -> None:
    """Refuse a body (422) whose named arrays are longer than their limits, or that is
    nested too deeply, before a parser builds any of it; other problems are left to the
    route's own validation."""
    try:
        _bounder(tuple(sorted(limits.items()))).decode(body)
    except RecursionError:
        raise ValidationFailed(
            "body is nested too deeply", [field_error("body", "JSON nested too deeply")]
        ) from None
    except msgspec.ValidationError as exc:
        error = MsgspecError(exc)
        if _TOO_LONG.match(error.message) and error.path and error.path[0] in limits:
            name = error.path[0]
            message = f"at most {limits[name]} items"
            raise TooManyItems(f"too many {name}", [field_error(name, message)]) from None
    except (msgspec.DecodeError, UnicodeDecodeError):
        pass  # the route's parser says what is wrong, in its words


def parse_model(body: bytes, model: type[M], **limits: int) -> M:
    """``model`` from a JSON body whose arrays were bounded first (:func:`bound_arrays`);
    a 422 naming each field at fault."""
    bound_arrays(body, **limits)
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise ValidationFailed("invalid request", pydantic_details(exc)) from None


def explain(exc: Exception, prefix: str, index: int) -> FieldError:
    """The field error of one item msgspec refused (``RecursionError``: nested too deeply)."""
    if isinstance(exc, RecursionError):
        return field_error(prefix, "JSON nested too deeply", index=index)
    error = MsgspecError(exc)
    return field_error(error.field(prefix), error.message, index=index)


async def off_loop(count: int, work: Callable[[], T]) -> T:
    """``work()`` inline for small arrays, in a worker thread for long ones."""
    if count <= INLINE_ITEMS:
        return work()
    return await asyncio.to_thread(work)
