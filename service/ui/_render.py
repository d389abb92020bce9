"""Jinja2 templates (autoescaped), the dashboard's filters, and the security headers."""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import ChainableUndefined, Environment, FileSystemLoader, select_autoescape

from service.spec.duration import format_duration
from service.spec.rollout import format_share

__all__ = ["SECURITY_HEADERS", "Templates"]

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"

# No inline scripts or styles anywhere: everything comes from /ui/static on this origin.
SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def pct(value: Any, digits: int = 1, signed: bool = True) -> str:
    x = _finite(value)
    if x is None:
        return "n/a"
    return f"{x * 100:{'+' if signed else ''}.{digits}f}%"


def num(value: Any) -> str:
    x = _finite(value)
    if x is None:
        return "n/a"
    if isinstance(value, int) or (x == int(x) and abs(x) < 1e15):
        return f"{int(x):,}"
    if abs(x) >= 100:
        return f"{x:,.1f}"
    return f"{x:.4g}"


def pvalue(value: Any) -> str:
    x = _finite(value)
    if x is None:
        return "n/a"
    return "< 0.0001" if x < 1e-4 else f"{x:.4f}"


def when(value: Any) -> str:
    x = _finite(value)
    if x is None:
        return "n/a"
    return dt.datetime.fromtimestamp(x, tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def age(value: Any) -> str:
    x = _finite(value)
    if x is None:
        return "n/a"
    seconds = max(time.time() - x, 0.0)
    for size, unit in ((86_400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


def segment(value: Any) -> str:
    if not value:
        return "all"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


class Templates:
    """The dashboard's template environment; ``render`` answers with the security headers."""

    def __init__(self, directory: Path = TEMPLATES_DIR) -> None:
        self.env = Environment(
            loader=FileSystemLoader(directory),
            autoescape=select_autoescape(["html"]),
            undefined=ChainableUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(pct=pct, num=num, pvalue=pvalue, when=when, age=age)
        self.env.filters["segment"] = segment
        self.env.filters["share"] = format_share
        self.env.filters["duration"] = format_duration

    def render(
        self,
        request: Request,
        name: str,
        context: Mapping[str, Any],
        *,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> HTMLResponse:
        body = self.env.get_template(name).render(request=request, **context)
        return HTMLResponse(
            body, status_code=status_code, headers={**SECURITY_HEADERS, **(headers or {})}
        )
