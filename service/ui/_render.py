"""Jinja2 templates (autoescaped), the dashboard's filters, and the security headers."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import ChainableUndefined, Environment, FileSystemLoader, select_autoescape

from service import format as fmt
from service.spec.duration import format_duration

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


def pct(value: Any, digits: int = 1, signed: bool = True) -> str:
    return fmt.pct(value, sign=signed, digits=digits)


def age(value: Any) -> str:
    x = fmt.as_float(value)
    return fmt.MISSING if x is None else fmt.elapsed(time.time() - x)


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
        self.env.filters.update(
            pct=pct,
            num=fmt.number,
            count=fmt.count,
            pvalue=fmt.p_value,
            when=fmt.timestamp,
            age=age,
            segment=fmt.segment,
            share=fmt.share,
            days=fmt.days,
            readable=fmt.readable,
            interval=fmt.interval_of,
            journal_value=fmt.journal_value,
        )
        self.env.globals.update(MISSING=fmt.MISSING, NO_DATA=fmt.NO_DATA, plural=fmt.plural)
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
