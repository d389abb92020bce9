"""The weekly review as Markdown, for a team channel (``sharpen review --markdown``,
``/ui/review``). Every number is formatted for people; what is unknown says so."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from service import format as fmt

__all__ = ["duration", "review_markdown"]


def _pct(x: Any, signed: bool = False) -> str:
    return fmt.pct(x, sign=signed)


def _day(ts: Any) -> str:
    v = fmt.as_float(ts)
    return fmt.MISSING if v is None else dt.datetime.fromtimestamp(v, dt.UTC).strftime("%Y-%m-%d")


duration = fmt.elapsed
"""``3 h``, ``2 d``, ``45 min``; the missing mark when unknown."""


def _then_now(block: Mapping[str, Any] | None, show: Any) -> str:
    block = block or {}
    then, now = block.get("then"), block.get("now")
    if then is None:
        return f"{show(now)} (no summary a week ago)"
    return f"{show(then)} → {show(now)}"


def _list(items: Sequence[str]) -> str:
    return ", ".join(items) if items else "none"


def _changes(line: Mapping[str, Any]) -> list[str]:
    c = line.get("changes") or {}
    out = [
        f"- Newly degraded: {_list(c.get('degraded') or [])}",
        f"- Still degraded: {_list(c.get('still_degraded') or [])}",
        f"- New warnings: {_list(c.get('warning') or [])}",
        f"- Recovered: {_list(c.get('recovered') or [])}",
        f"- Input drift started: {_list(c.get('drift_started') or [])}; stopped: "
        f"{_list(c.get('drift_stopped') or [])}; continuing: "
        f"{_list(c.get('still_drifting') or [])}",
        f"- Label completeness (week): {_then_now(line.get('completeness'), _pct)}; latest "
        f"label {duration(line.get('label_lag_s'))} ago",
        f"- Predictions (week): {_then_now(line.get('records'), fmt.count)}; error rate: "
        f"{_then_now(line.get('error_rate'), _pct)}",
    ]
    return out


def _pattern(pattern: Mapping[str, Any] | None) -> str:
    if not pattern:
        return "- Error pattern to fix now: no analysis"
    if "unavailable" in pattern:
        return f"- Error pattern to fix now: not available ({pattern['unavailable']})"
    fixed = fmt.as_float(pattern.get("expected_fixed"))
    text = f"- Error pattern to fix now: **{pattern['lever']}**: {pattern.get('action') or ''}"
    if fixed is not None:
        errors = fmt.count(pattern.get("errors"))
        text += f" (about {fmt.count(fixed)} of {errors} errors expected fixed)"
    return text


def _experiments(line: Mapping[str, Any]) -> list[str]:
    block = line.get("experiments") or {}
    running = [
        f"{e['experiment']} (since {_day(e.get('started_at'))})" for e in block.get("running") or []
    ]
    out = [f"- Running: {_list(running)}"]
    ended = block.get("ended") or []
    if not ended:
        out.append("- Ended this period: none")
    for e in ended:
        primary = e.get("primary") or {}
        lift = (primary.get("relative") or {}).get("estimate")
        reasons = "; ".join(e.get("reasons") or []) or "no journal reason"
        what = f"{primary.get('metric')} {_pct(lift, signed=True)}" if primary else "no primary"
        out.append(f"- Ended: {e['experiment']} **{e['status']}** ({what}): {reasons}")
    for c in line.get("cumulative") or []:
        lift = (c.get("lift") or {}).get("estimate")
        out.append(
            f"- Cumulative improvement: {c['metric']} {_pct(lift, signed=True)} over "
            f"{len(c.get('experiments') or [])} shipped"
        )
    if not line.get("cumulative"):
        out.append("- Cumulative improvement: nothing shipped on this line yet")
    return out


def _stake(line: Mapping[str, Any]) -> str:
    value = line.get("value_at_stake")
    errors = fmt.as_float(line.get("errors_per_week"))
    if value and fmt.as_float(value.get("estimate")) is not None:
        return (
            f"{fmt.count(value['estimate'])} {value.get('currency') or ''} a week at stake".strip()
        )
    if errors is not None:
        return (
            f"{fmt.count(errors)} errors a week "
            "(no price: set `impact` on an experiment of the line)"
        )
    return "value at stake unknown (no labelled predictions this week)"


def review_markdown(review: Mapping[str, Any]) -> str:
    """The whole review, one section per line in rank order."""
    period = duration(review.get("period_s"))
    lines = review.get("lines") or []
    start, end = _day(review.get("since")), _day(review.get("generated_at"))
    out = [
        f"# Weekly model review ({start} to {end})",
        "",
        f"Lines ranked by value at stake (errors a week x value per error); changes over the "
        f"last {period}.",
        "",
    ]
    if not lines:
        out.append("No model has logged predictions yet.")
        return "\n".join(out) + "\n"
    for line in lines:
        out.append(
            f"## {line['rank']}. {line['model']}: {line.get('status', fmt.MISSING)} "
            f"— {_stake(line)}"
        )
        out.append("")
        if line.get("status") == "pending":
            out.append("- The model monitor has not reported on this line yet.")
        else:
            out += _changes(line)
        out.append(_pattern(line.get("pattern")))
        out += _experiments(line)
        out.append("")
    return "\n".join(out)
