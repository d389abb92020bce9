"""Request bodies bounded before any work: arrays counted, nesting limited, in C.

Routes that carry one array of items (events, records, labels) skim it; routes with a
pydantic model and arrays inside (``/v1/analyze``, ``/v1/backtest``) bound those arrays
first and then parse (:func:`parse_model`).

:func:`skim` checks the body's shape and counts the items in C and refuses more than the
route's limit before a single item is validated. Up to ``GUARDED_MAX`` the array is read
into an array-like struct with one field per allowed item: msgspec stops at the first item
too many, so a refused body costs what its first ``limit`` items cost, whatever follows (a
million ``{}`` or eight million bytes of ``0,``). Larger limits fall back to a list of raw
items, bounded by the body's size (about 45 ns an item). Items are :class:`msgspec.Raw`
slices of the body, decoded one by one by the route; JSON nested too deeply is a 422,
never a RecursionError.
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
    "GUARDED_MAX",
    "INLINE_ITEMS",
    "MsgspecError",
    "TooManyItems",
    "bound_arrays",
    "explain",
    "off_loop",
    "parse_model",
    "prepare",
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
_TOO_LONG = re.compile(r"^Expected `array` of (length <=|at most length) \d+$")

GUARDED_MAX: Final = 10_000
"""Largest limit read through a struct of one field per item (about 600 B a field, built
once per limit): beyond it, items are counted by building the list."""


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


@functools.lru_cache(maxsize=8)
def _guard(limit: int) -> type[msgspec.Struct]:
    fields = [(f"i{i}", msgspec.Raw | msgspec.UnsetType, msgspec.UNSET) for i in range(limit)]
    return msgspec.defstruct(
        f"Items{limit}", fields, array_like=True, forbid_unknown_fields=True, gc=False
    )


def prepare(*limits: int) -> None:
    """Build the item structs of these limits now (tens of ms each), not on a request."""
    for limit in limits:
        _array(limit)


def _array(limit: int) -> Any:
    """The type of an array of at most ``limit`` raw items (see the module docstring)."""
    if limit <= GUARDED_MAX:
        return _guard(limit)
    return Annotated[list[msgspec.Raw], msgspec.Meta(max_length=limit)]


def _items(value: Any) -> list[msgspec.Raw]:
    if isinstance(value, list):
        return value
    items = msgspec.structs.astuple(value)
    try:
        return list(items[: items.index(msgspec.UNSET)])
    except ValueError:  # exactly ``limit`` items
        return list(items)


@functools.lru_cache(maxsize=32)
def _skimmer(name: str, limit: int, forbid_unknown: bool) -> msgspec.json.Decoder[Any]:
    shape = msgspec.defstruct(
        f"Skim_{name}", [(name, _array(limit))], forbid_unknown_fields=forbid_unknown
    )
    return msgspec.json.Decoder(shape)


def skim(
    body: bytes, name: str, limit: int, *, noun: str, forbid_unknown: bool = False
) -> list[msgspec.Raw]:
    """The raw items of ``{name: [...]}``: 1 to ``limit`` of them, or a 422 naming the field.

    ``noun`` names the items in messages (``events``). Unknown top-level fields are
    ignored, or refused with ``forbid_unknown``.
    """
    try:
        items = _items(getattr(_skimmer(name, limit, forbid_unknown).decode(body), name))
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
def _bounder(name: str, limit: int) -> msgspec.json.Decoder[Any]:
    shape = msgspec.defstruct(f"Bound_{name}", [(name, _array(limit) | None, None)])
    return msgspec.json.Decoder(shape)


def bound_arrays(body: bytes, **limits: int) -> None:
    """Refuse a body (422) whose named arrays are longer than their limits, or that is
    nested too deeply, before a parser builds any of it; other problems are left to the
    route's own validation. (One pass per array: msgspec does not say which array of a
    struct was too long.)"""
    for name, limit in limits.items():
        try:
            _bounder(name, limit).decode(body)
        except RecursionError:
            raise ValidationFailed(
                "body is nested too deeply", [field_error("body", "JSON nested too deeply")]
            ) from None
        except msgspec.ValidationError as exc:
            if _TOO_LONG.match(MsgspecError(exc).message):
                message = f"at most {limit} items"
                raise TooManyItems(f"too many {name}", [field_error(name, message)]) from None
        except (msgspec.DecodeError, UnicodeDecodeError):
            return  # the route's parser says what is wrong, in its words


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
