"""Seeded validation of the model monitor's decisions: false alarms and power.

    .venv/bin/python scripts/validate_model_monitor.py [--runs 400] [--seed 20240601]

Each run simulates a deployed binary model (``scripts/model_line.py``: 10 regions of equal
volume, labels arriving after an exponential delay of 2 h on average) for the reference
period plus two weeks, and runs the monitor's report (``service.modelwatch``: the
reference period against the last day and the last week, 11 segments x 4 decided metrics
x 2 windows = 88 cells) at 20 hourly passes while traffic and labels keep arriving:

* **A/A**: nothing changes. A false alarm is any cell ``warning`` or ``degraded`` at any
  pass; the family-wise rate over runs must stay <= alpha (5 %).
* **Degradation**: one region's accuracy drops by 20 % relative from a day before the
  first pass (``drop`` records of it get the wrong label), with ``--per-day`` records a
  day (so about 5,000 labelled records in its day window). Found when its accuracy is
  ``degraded`` at some pass (and, stricter, already at the first). The same with
  ``--small-per-day`` records a day (about 1,000 labelled) shows where power runs out.

The sums are the buckets' own (``model_line.Sums``, held equal to the per-record path by
the tests); the decisions are ``build_report``'s. Prints one table.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Sequence

from scripts.model_line import Line, Sums, arrays
from service.modelwatch._report import Facts, ReportConfig, build_report

_END = 1_717_200_000.0 + 7 * 3600.0  # a Saturday 07:00 UTC: passes cross midnight
_FACTS = Facts(labels_seen=("0", "1"))


def _wilson(hits: int, n: int) -> tuple[float, float]:
    if n == 0:
        return (math.nan, math.nan)
    z, p = 1.959964, hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(centre - half, 0.0), min(centre + half, 1.0))


def _passes(line: Line, passes: int, config: ReportConfig) -> list[dict[str, object]]:
    traffic = arrays(line, _END)
    sums = Sums(traffic, line.segments, config.reference_days, calibration=False)
    reports = []
    for k in range(passes):
        at = _END - (passes - 1 - k) * 3600.0
        reports.append(build_report("sim", sums.windows(at), _FACTS, config, now=at))
    return reports


def _flagged(report: dict[str, object]) -> list[tuple[str, str]]:
    rows = report["statuses"]
    assert isinstance(rows, list)
    return [(r["segment"], r["metric"]) for r in rows if r["status"] in ("warning", "degraded")]


def _found(
    seed: int, per_day: int, days: int, passes: int, drop: float, config: ReportConfig
) -> tuple[bool, bool, bool, list[int]]:
    """(degraded at some pass, at the first, another region alarmed, labelled counts)."""
    first_pass = _END - (passes - 1) * 3600.0
    line = Line(segments=10, per_day=per_day, days=days, seed=seed, degrade_segment=3,
                degrade_since=first_pass - 86_400.0, drop=drop)  # fmt: skip
    reports = _passes(line, passes, config)
    target = "region=r3"
    status = [
        {(s["segment"], s["metric"]): s["status"] for s in rep["statuses"]}  # type: ignore[attr-defined]
        for rep in reports
    ]
    degraded = [s.get((target, "accuracy")) == "degraded" for s in status]
    other = any(
        seg not in (target, "all") for f in (_flagged(rep) for rep in reports) for seg, _ in f
    )
    labelled = [
        c["labelled"]
        for c in reports[0]["cells"]  # type: ignore[attr-defined]
        if c["segment"] == target and c["metric"] == "accuracy" and c["window"] == "day"
    ]
    return any(degraded), degraded[0], other, labelled


def run(
    runs: int,
    seed: int,
    passes: int,
    per_day: int,
    small_per_day: int,
    ref_days: int,
    drop: float,
) -> None:
    config = ReportConfig(reference_days=ref_days)
    days = ref_days + 7 + 2
    started = time.monotonic()
    aa_runs = aa_pass_alarms = cells = 0
    found_any = found_first = other_alarms = 0
    labelled: list[int] = []
    small_any = 0
    small_labelled: list[int] = []
    for r in range(runs):
        base = Line(segments=10, per_day=per_day, days=days, seed=seed + 3 * r)
        reports = _passes(base, passes, config)
        cells = len(reports[0]["cells"])  # type: ignore[arg-type]
        flags = [_flagged(rep) for rep in reports]
        aa_runs += any(flags)
        aa_pass_alarms += sum(bool(f) for f in flags)
        hit = _found(seed + 3 * r + 1, per_day, days, passes, drop, config)
        found_any += hit[0]
        found_first += hit[1]
        other_alarms += hit[2]
        labelled += hit[3]
        small = _found(seed + 3 * r + 2, small_per_day, days, passes, drop, config)
        small_any += small[0]
        small_labelled += small[3]
    elapsed = time.monotonic() - started
    rows: Sequence[tuple[str, int, int]] = (
        ("A/A: runs with any false alarm (FWER)", aa_runs, runs),
        ("A/A: passes with a false alarm", aa_pass_alarms, runs * passes),
        (f"-{drop:.0%} accuracy in one region: degraded at some pass", found_any, runs),
        (f"-{drop:.0%} accuracy in one region: degraded at the first pass", found_first, runs),
        ("degradation runs with an alarm in another region", other_alarms, runs),
        (
            f"-{drop:.0%} in a region of ~{sum(small_labelled) / len(small_labelled):,.0f} "
            "labelled/day: degraded at some pass",
            small_any,
            runs,
        ),
    )
    print(
        f"model monitor: {runs} runs x {passes} hourly passes, 10 regions x 4 metrics x 2 "
        f"windows ({cells} cells), alpha 0.05, reference {ref_days} days, "
        f"{per_day} records/region/day; labelled records in the degraded region's day "
        f"window: {min(labelled)}-{max(labelled)} (mean {sum(labelled) / len(labelled):.0f})"
    )
    print(f"{'':66s} {'rate':>7s}  95% CI")
    for name, hits, n in rows:
        lo, hi = _wilson(hits, n)
        print(f"{name:66s} {hits / n:7.1%}  [{lo:.1%}, {hi:.1%}]  ({hits}/{n})")
    print(f"({elapsed:.0f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=400)
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--passes", type=int, default=20)
    parser.add_argument("--per-day", type=int, default=5800)
    parser.add_argument("--small-per-day", type=int, default=1150)
    parser.add_argument("--reference-days", type=int, default=7)
    parser.add_argument("--drop", type=float, default=0.2)
    args = parser.parse_args()
    run(
        args.runs,
        args.seed,
        args.passes,
        args.per_day,
        args.small_per_day,
        args.reference_days,
        args.drop,
    )


if __name__ == "__main__":
    main()
