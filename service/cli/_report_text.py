"""The words of a results report, shared by the terminal and Markdown renderings (pure).

Every function reads the results document of ``GET /v1/experiments/{key}/results``
defensively: a missing or null field shows as ``format.MISSING``, never as an exception.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from service import format as fmt
from service.spec.duration import format_duration

__all__ = [
    "GUARDRAIL_COLUMNS",
    "METRIC_COLUMNS",
    "Progress",
    "decision_lines",
    "guardrail_cells",
    "guardrail_rows",
    "metric_cells",
    "metric_rows",
    "progress",
    "srm_text",
    "title",
    "units_text",
]

METRIC_COLUMNS = (
    "metric",
    "role",
    "variant",
    "segment",
    "baseline",
    "treatment",
    "abs. lift [metric CI]",
    "rel. lift [metric CI]",
    "p (adj.)",
    "status",
)
GUARDRAIL_COLUMNS = (
    "metric",
    "variant",
    "segment",
    "margin",
    "rel. change [guardrail CI]",
    "p",
    "status",
)


def _status(row: Mapping[str, Any]) -> str:
    """The row's status; a row the engine could not compute says why instead."""
    error = row.get("error")
    if error:
        return str(error).replace("_", " ")
    return str(row.get("status") or fmt.MISSING)


def _dict(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> list[Mapping[str, Any]]:
    if not isinstance(value, list):
        return []
    return [row for row in value if isinstance(row, Mapping)]


def title(results: Mapping[str, Any]) -> str:
    parts = [str(results.get("experiment") or fmt.MISSING), str(results.get("status") or "")]
    if results.get("version") is not None:
        parts.append(f"version {results['version']}")
    return " · ".join(parts)


def units_text(results: Mapping[str, Any]) -> str:
    units = _dict(results.get("units"))
    if not units:
        return "no units yet"
    return " · ".join(f"{variant} {fmt.count(n)}" for variant, n in units.items())


@dataclass(frozen=True, slots=True)
class Progress:
    """Where the experiment stands against its plan."""

    share: float | None  # smallest variant's units / planned units per variant, 0..1+
    sentences: list[str]


def progress(results: Mapping[str, Any]) -> Progress:
    units = _dict(results.get("units"))
    counts = [c for c in (fmt.as_float(n) for n in units.values()) if c is not None]
    planned = fmt.as_float(results.get("planned_units_per_variant"))
    plan = _dict(results.get("plan"))
    sentences: list[str] = []
    share: float | None = None
    if planned and counts:
        least = min(counts)
        share = least / planned
        source = results.get("planned_units_source")
        where = "" if source in (None, "plan") else f" ({source})"
        sentences.append(
            f"{fmt.count(least)} of {fmt.count(planned)} units per variant{where} "
            f"({fmt.pct(share, sign=False, digits=0)})"
        )
    elapsed = fmt.as_float(results.get("days_elapsed"))
    planned_days = fmt.as_float(plan.get("days"))
    if elapsed is not None:
        of = f" of {fmt.count(planned_days)}" if planned_days else ""
        sentences.append(f"day {elapsed:,.1f}{of}")
    for seq in _list(results.get("sequential")):
        looks = seq.get("looks")
        done = len(looks) if isinstance(looks, list) else 0
        planned_looks = seq.get("planned_looks")
        text = f"{seq.get('design', 'design')}"
        if planned_looks:
            text += f": look {done} of {planned_looks}"
        next_units = fmt.as_float(seq.get("next_look_units"))
        seq_planned = fmt.as_float(seq.get("planned_units_per_variant")) or planned
        horizon = seq.get("horizon_reached_at")
        reached = next_units is None or bool(seq_planned and counts and min(counts) >= seq_planned)
        if horizon or seq.get("design") == "always_valid":
            pass  # the horizon's own sentence below, or no planned looks at all
        elif reached:
            every = fmt.as_float(seq.get("look_every_s")) or 3600.0
            text += (
                "; the plan's sample is reached: the final look comes at the end of the "
                f"current {format_duration(every)} window"
            )
        else:
            text += f", next at {fmt.count(next_units)} units per variant"
        if horizon:
            text += f"; plan reached at look {horizon}, verdict final"
            if seq.get("decided_at") not in (None, horizon):
                text += f" since look {seq['decided_at']}"
        if len(_list(results.get("sequential"))) > 1:
            text += f" ({seq.get('variant')})"
        sentences.append(text)
        sentences.extend(_past_plan(results, seq.get("variant")))
    return Progress(share=share, sentences=sentences)


def _past_plan(results: Mapping[str, Any], variant: object) -> list[str]:
    """The primary's data after the horizon: shown, labelled, never tested."""
    for row in _list(results.get("metrics")):
        latest = _dict(row.get("latest"))
        if row.get("role") == "primary" and row.get("variant") == variant and latest:
            if latest.get("past_plan") is True:
                return [
                    f"past the plan: {row.get('metric', 'primary')} "
                    f"{fmt.lift(latest.get('relative'), percent=True)} now "
                    "(always-valid interval; not tested, the verdict stands)"
                ]
    return []


def srm_text(results: Mapping[str, Any]) -> tuple[bool | None, str]:
    """(ok, words): ok is None when the document has no SRM check or no data to test yet."""
    srm = _dict(results.get("srm"))
    if not srm:
        return None, "no sample-ratio check"
    p_text, verdict = fmt.srm(srm)
    if verdict == "not yet testable":
        return None, "sample ratio: not yet testable (no data yet)"
    ok = srm.get("ok")
    bad_segments = [
        fmt.segment(s.get("segment"))
        for s in _list(srm.get("segments"))
        if (fmt.as_float(s.get("p_value")) or 1.0) < (fmt.as_float(srm.get("threshold")) or 0.001)
    ]
    if ok is True:
        return True, f"traffic split as configured ({p_text})"
    words = f"sample ratio mismatch ({p_text})"
    if bad_segments:
        words += f"; off in {', '.join(bad_segments)}"
    return False, words + ": results are suspect"


def metric_rows(results: Mapping[str, Any], *, segments: bool = True) -> list[Mapping[str, Any]]:
    rows = _list(results.get("metrics"))
    return rows if segments else [r for r in rows if not r.get("segment")]


def guardrail_rows(results: Mapping[str, Any], *, segments: bool = True) -> list[Mapping[str, Any]]:
    rows = _list(results.get("guardrails"))
    return rows if segments else [r for r in rows if not r.get("segment")]


def metric_cells(row: Mapping[str, Any]) -> list[str]:
    return [
        str(row.get("metric") or fmt.MISSING),
        str(row.get("role", "")),
        str(row.get("variant", "")),
        fmt.segment(row.get("segment")),
        fmt.number(_dict(row.get("baseline")).get("mean")),
        fmt.number(_dict(row.get("treatment")).get("mean")),
        fmt.lift(row.get("absolute"), percent=False),
        fmt.lift(row.get("relative"), percent=True),
        fmt.p_with_adjusted(row),
        _status(row),
    ]


def guardrail_cells(row: Mapping[str, Any]) -> list[str]:
    margin = fmt.as_float(row.get("margin"))
    return [
        str(row.get("metric") or fmt.MISSING),
        str(row.get("variant", "")),
        fmt.segment(row.get("segment")),
        fmt.MISSING if margin is None else fmt.pct(margin, sign=False),
        fmt.lift(row.get("relative"), percent=True, label=fmt.guardrail_confidence(row)),
        fmt.p_with_adjusted(row),
        _status(row),
    ]


def decision_lines(results: Mapping[str, Any]) -> tuple[str, list[str]]:
    """(headline, reasons) of the overall decision, plus per-variant ones if several."""
    decision = _dict(results.get("decision"))
    action = str(decision.get("action", "unknown"))
    headline = action
    if decision.get("variant"):
        headline += f" ({decision['variant']})"
    reasons = [str(r) for r in decision.get("reasons", []) if r]
    per_variant = _dict(results.get("decisions"))
    if len(per_variant) > 1:
        for variant, other in per_variant.items():
            other_d = _dict(other)
            why = "; ".join(str(r) for r in other_d.get("reasons", []))
            reasons.append(
                f"{variant}: {other_d.get('action') or fmt.MISSING}" + (f" ({why})" if why else "")
            )
    return headline, reasons
