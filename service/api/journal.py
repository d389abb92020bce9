"""``GET /v1/journal``: every ended experiment, what it found, what was decided (admin)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from service.api.deps import AdminDep, JournalDep
from service.api.responses import JSON
from service.errors import NotFound
from service.journal import (
    JournalEntry,
    LeverSummary,
    LineSummary,
    lever_summaries,
    line_summaries,
)
from service.spec import EndedStatus

__all__ = ["router"]

router = APIRouter(prefix="/v1/journal", tags=["journal"])

_ERRORS: dict[int | str, dict[str, str]] = {
    401: {"description": "Missing or unknown API key"},
    403: {"description": "Key lacks the admin scope"},
    422: {"description": "Invalid query parameter; `error.details` names it"},
}


class JournalPage(BaseModel):
    entries: list[JournalEntry] | None = Field(
        default=None, description="Newest first; `results` only with ?results=true."
    )
    total: int | None = Field(default=None, description="Entries matching the filters.")
    lines: list[LineSummary] | None = Field(
        default=None, description="Per model line: current baseline, cumulative improvement."
    )
    levers: list[LeverSummary] | None = Field(
        default=None, description="Per lever: how often it shipped, mean lift, yearly value."
    )
    backtests: list[dict[str, Any]] | None = Field(
        default=None, description="Backtest verdicts on historical data (POST /v1/backtest)."
    )


def _page(**sections: list[Any] | int) -> JSON:
    """Only the sections asked for (a model with null sections would blur the shape)."""
    return JSON(
        {
            name: [
                item if isinstance(item, dict) else item.model_dump(mode="json") for item in value
            ]
            if isinstance(value, list)
            else value
            for name, value in sections.items()
        }
    )


@router.get(
    "",
    response_model=None,
    responses={200: {"model": JournalPage}, **_ERRORS},
    summary="The experiment journal, with the lines' and levers' summaries",
)
async def list_journal(
    _: AdminDep,
    journal: JournalDep,
    summary: Literal["levers", "lines"] | None = Query(
        default=None, description="Only this summary, without entries."
    ),
    line: str | None = Query(default=None, max_length=64),
    lever: Literal["data", "features", "architecture", "serving", "threshold", "unspecified"]
    | None = None,
    status: EndedStatus | None = None,
    results: bool = Query(default=False, description="Include each entry's final results."),
    limit: int = Query(default=100, ge=1, le=1000),
    offset: int = Query(default=0, ge=0),
) -> JSON:
    entries = await journal.entries()
    if summary == "levers":
        return _page(levers=lever_summaries(entries))
    baselines = await journal.baselines()
    if summary == "lines":
        return _page(lines=line_summaries(entries, baselines))
    chosen = [
        e
        for e in reversed(entries)
        if (line is None or e.line == line)
        and (lever is None or (e.lever or "unspecified") == lever)
        and (status is None or e.status == status)
    ]
    page = chosen[offset : offset + limit]
    if not results:
        page = [e.model_copy(update={"results": None}) for e in page]
    return _page(
        entries=page,
        total=len(chosen),
        lines=line_summaries(entries, baselines),
        levers=lever_summaries(entries),
        backtests=await journal.backtests(limit) if (line, lever, status) == (None,) * 3 else [],
    )


@router.get(
    "/{key}",
    response_model=JournalEntry,
    responses={**_ERRORS, 404: {"description": "No journal entry for this experiment"}},
    summary="One experiment's journal entry, with its final results",
)
async def get_entry(_: AdminDep, journal: JournalDep, key: str) -> JournalEntry:
    entry = await journal.get(key)
    if entry is None:
        raise NotFound(f"experiment {key!r} has no journal entry (it has not ended)")
    return entry
