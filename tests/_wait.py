"""One way for tests to wait for a condition: poll it, and fail loudly with what was last seen.

A fixed sleep before an assertion is a flake waiting to happen; a wait that returns quietly
on timeout is a check that cannot fail. Use :func:`wait_for` (sync) or :func:`await_for`
(async) instead of either.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar, overload

__all__ = ["GiveUp", "WaitTimeout", "await_for", "log_tail", "wait_for"]

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """The condition did not hold in time; the message says what it last returned."""


class GiveUp(Exception):
    """Raised by a probe that knows the condition can no longer hold (a process exited):
    the wait ends at once with this error instead of polling on until its timeout."""


def log_tail(path: Path, chars: int = 4000) -> Callable[[], str]:
    """An ``explain`` for a wait on a process: the end of its log."""
    return lambda: f"log tail ({path}):\n{path.read_text(errors='replace')[-chars:]}"


def _timeout(what: str, timeout_s: float, last: object, explain: Callable[[], str] | None) -> str:
    message = f"timed out after {timeout_s:g} s waiting for {what}; last: {last!r}"
    return message if explain is None else f"{message}\n{explain()}"


@overload
def wait_for(
    probe: Callable[[], T | None],
    *,
    until: None = None,
    what: str,
    timeout_s: float = 30.0,
    interval_s: float = 0.02,
    explain: Callable[[], str] | None = None,
) -> T: ...


@overload
def wait_for(
    probe: Callable[[], T],
    *,
    until: Callable[[T], object],
    what: str,
    timeout_s: float = 30.0,
    interval_s: float = 0.02,
    explain: Callable[[], str] | None = None,
) -> T: ...


def wait_for(
    probe: Callable[[], Any],
    *,
    what: str,
    until: Callable[[Any], object] | None = None,
    timeout_s: float = 30.0,
    interval_s: float = 0.02,
    explain: Callable[[], str] | None = None,
) -> Any:
    """Call ``probe`` until it returns something truthy (or ``until(value)`` holds); return it.

    Exceptions from ``probe`` count as "not yet" (the last one is reported on timeout), so
    the timeout message always shows the last value or error seen, then ``explain()`` (a log
    tail, say) when given. :class:`GiveUp` from ``probe`` ends the wait at once.
    """
    deadline = time.monotonic() + timeout_s
    last: object = None
    while True:
        try:
            value = probe()
        except GiveUp:
            raise
        except Exception as exc:  # reported on timeout
            last = exc
        else:
            if value if until is None else until(value):
                return value
            last = value
        if time.monotonic() >= deadline:
            raise WaitTimeout(_timeout(what, timeout_s, last, explain))
        time.sleep(interval_s)


@overload
async def await_for(
    probe: Callable[[], Awaitable[T | None]],
    *,
    until: None = None,
    what: str,
    timeout_s: float = 30.0,
    interval_s: float = 0.02,
    explain: Callable[[], str] | None = None,
) -> T: ...


@overload
async def await_for(
    probe: Callable[[], Awaitable[T]],
    *,
    until: Callable[[T], object],
    what: str,
    timeout_s: float = 30.0,
    interval_s: float = 0.02,
    explain: Callable[[], str] | None = None,
) -> T: ...


@overload
async def await_for(
    probe: Callable[[], T | None],
    *,
    until: None = None,
    what: str,
    timeout_s: float = 30.0,
    interval_s: float = 0.02,
    explain: Callable[[], str] | None = None,
) -> T: ...


@overload
async def await_for(
    probe: Callable[[], T],
    *,
    until: Callable[[T], object],
    what: str,
    timeout_s: float = 30.0,
    interval_s: float = 0.02,
    explain: Callable[[], str] | None = None,
) -> T: ...


async def await_for(
    probe: Callable[[], Any],
    *,
    what: str,
    until: Callable[[Any], object] | None = None,
    timeout_s: float = 30.0,
    interval_s: float = 0.02,
    explain: Callable[[], str] | None = None,
) -> Any:
    """The async form of :func:`wait_for`; ``probe`` may be sync or async."""
    deadline = time.monotonic() + timeout_s
    last: object = None
    while True:
        try:
            value = probe()
            if inspect.isawaitable(value):
                value = await value
        except GiveUp:
            raise
        except Exception as exc:  # reported on timeout
            last = exc
        else:
            if value if until is None else until(value):
                return value
            last = value
        if time.monotonic() >= deadline:
            raise WaitTimeout(_timeout(what, timeout_s, last, explain))
        await asyncio.sleep(interval_s)
