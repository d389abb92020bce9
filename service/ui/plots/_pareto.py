"""Pareto curve of error slices: cumulative share of errors against cumulative share of records.

Regions come worst error rate first, so the curve bends up steeply when a few slices
hold most of the errors; the diagonal is "errors spread evenly".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from service.ui.plots._svg import (
    INK,
    MUTED,
    PALETTE,
    RED,
    Scale,
    close_svg,
    data_num,
    esc,
    open_svg,
    text,
    x_axis,
    y_axis,
)

__all__ = ["ParetoRegion", "pareto_curve"]

_W, _H = 560, 400
_LEFT, _RIGHT, _TOP, _BOTTOM = 60, 30, 20, 50
_TICKS = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]


@dataclass(frozen=True, slots=True)
class ParetoRegion:
    label: str
    records: int
    errors: int
    error_rate: float | None
    record_share: float
    error_share: float
    cumulative_record_share: float
    cumulative_error_share: float


def pareto_curve(regions: Sequence[ParetoRegion]) -> str:
    """The curve through (cumulative record share, cumulative error share) of each region.

    Each region is a ``<g class="region">`` with ``data-slice``, ``data-records``,
    ``data-errors``, ``data-error-rate``, ``data-record-share``, ``data-error-share``,
    ``data-cumulative-record-share`` and ``data-cumulative-error-share``.
    """
    parts = [open_svg(_W, _H, "Pareto curve of errors over slices", "pareto")]
    sx = Scale(0.0, 1.0, _LEFT, _W - _RIGHT)
    sy = Scale(0.0, 1.0, _H - _BOTTOM, _TOP)
    pct = "{:.0%}".format
    parts.append(x_axis(sx, _TICKS, y=_H - _BOTTOM, top=_TOP, fmt=pct, label="share of records"))
    parts.append(y_axis(sy, _TICKS, x=_LEFT, right=_W - _RIGHT, fmt=pct, label="share of errors"))
    parts.append(
        f'<line class="diagonal" x1="{sx(0):.1f}" y1="{sy(0):.1f}" x2="{sx(1):.1f}" '
        f'y2="{sy(1):.1f}" stroke="{MUTED}" stroke-dasharray="4 4"/>'
    )
    if not regions:
        parts.append(text(_LEFT + 12, _TOP + 24, "no labelled records", fill=MUTED))
        parts.append(close_svg())
        return "".join(parts)
    d = [f"M{sx(0):.1f},{sy(0):.1f}"]
    d += [
        f"L{sx(r.cumulative_record_share):.1f},{sy(r.cumulative_error_share):.1f}" for r in regions
    ]
    parts.append(
        f'<path class="curve" d="{" ".join(d)}" fill="none" stroke="{PALETTE[0]}" '
        'stroke-width="2"/>'
    )
    for i, r in enumerate(regions, start=1):
        x, y = sx(r.cumulative_record_share), sy(r.cumulative_error_share)
        is_rest = r.label == "everything else"
        tip = (
            f"{r.label}: {r.errors} errors in {r.records} records; first {i} regions hold "
            f"{r.cumulative_record_share:.1%} of records and {r.cumulative_error_share:.1%} "
            "of errors"
        )
        parts.append(
            f'<g class="region" data-slice="{esc(r.label)}" data-records="{data_num(r.records)}" '
            f'data-errors="{data_num(r.errors)}" data-error-rate="{data_num(r.error_rate)}" '
            f'data-record-share="{data_num(r.record_share)}" '
            f'data-error-share="{data_num(r.error_share)}" '
            f'data-cumulative-record-share="{data_num(r.cumulative_record_share)}" '
            f'data-cumulative-error-share="{data_num(r.cumulative_error_share)}">'
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{MUTED if is_rest else RED}" '
            f'stroke="{INK}" stroke-width="0.5"><title>{esc(tip)}</title></circle>'
            + ("" if is_rest else text(x + 6, y + 14, str(i), fill=INK, size=11))
            + "</g>"
        )
    parts.append(close_svg())
    return "".join(parts)
