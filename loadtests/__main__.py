"""Every benchmark in one run, summarised in one table: ``python -m loadtests`` (``make bench``).

Each ``loadtests/bench_*.py`` that exists is imported defensively and its ``main(argv)``
run in turn, its printed output captured (and shown). The summary table has one row per
figure: the work, sharpen's figure, the reference measured in the same run, the ratio.

Where does a row come from?

1. ``main()`` returned a list of rows ``(work, sharpen, reference, ratio)`` (tuples or
   dicts with those keys): used as they are;
2. else an adapter below reads the bench's output (``bench_sdk --json``, and the printed
   lines of ``bench_stats`` and ``bench_assign``);
3. else one row points at the bench's printed output, which is shown above the table.

A bench that fails (an exception, a non-zero exit, a missing tool) gets an error row and
the runner goes on; the exit code is 1 if any failed.

    .venv/bin/python -m loadtests [--quick] [--only sdk,stats] [--list]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import inspect
import io
import json
import re
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

BENCHES = (
    "bench_sdk",
    "bench_sdk_js",
    "bench_assign",
    "bench_exposures",
    "bench_push",
    "bench_ingest",
    "bench_stats",
    "bench_taxonomy",
)
QUICK_ARGS: dict[str, list[str]] = {
    "bench_sdk": ["--rounds", "3"],
    "bench_sdk_js": ["--rounds", "3", "--warmup", "1"],
    "bench_assign": ["--duration", "3"],
    "bench_exposures": ["--duration", "5", "--b-requests", "500"],
    "bench_stats": ["--rounds", "3"],
    "bench_push": ["--trials", "20", "--memory-streams", "200"],
    "bench_hostile": ["--quick"],
}
EXTRA_ARGS: dict[str, list[str]] = {"bench_sdk": ["--json"]}


@dataclass
class Row:
    work: str
    sharpen: str
    reference: str
    ratio: str


@dataclass
class Outcome:
    name: str
    rows: list[Row] = field(default_factory=list)
    output: str = ""
    error: str | None = None
    seconds: float = 0.0


def _num(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _ratio(value: object) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:.2f}x"
    return str(value)


def rows_from_return(value: object) -> list[Row]:
    """Rows from what a ``main()`` returned, if it returned rows."""
    if not isinstance(value, list):
        return []
    rows = []
    for item in value:
        if isinstance(item, dict):
            item = [item.get(k, "") for k in ("work", "sharpen", "reference", "ratio")]
        if isinstance(item, list | tuple) and len(item) == 4:
            work, ours, ref, ratio = item
            rows.append(Row(str(work), _num(ours), _num(ref), _ratio(ratio)))
    return rows


# --- adapters: rows from what a bench prints ---------------------------------


def _sdk_rows(output: str) -> list[Row]:
    start = output.find("{")
    if start < 0:
        return []
    summary = json.loads(output[start:])
    ns = summary["ns_per_call"]
    reference_name = min((k for k in ns if k.startswith("growthbook")), key=lambda k: ns[k])
    reference = ns[reference_name]
    labels = {
        "sharpen": "SDK local assign, new unit (ns/call)",
        "sharpen_repeat": "SDK local assign, exposed unit (ns/call)",
        "sharpen_upload": "SDK local assign + background upload (ns/call)",
    }
    return [
        Row(
            f"{labels.get(name, name)} vs {reference_name}",
            _num(value),
            _num(reference),
            f"{reference / value:.1f}x faster",
        )
        for name, value in ns.items()
        if name.startswith("sharpen") and value
    ]


_STATS_OURS = re.compile(r"sharpen \(vectorised page\):\s+best\s+([\d.]+) ms")
_STATS_GB = re.compile(r"gbstats\s+(\S+)\s+\(per cell\):\s+best\s+([\d.]+) ms")


def _stats_rows(output: str) -> list[Row]:
    ours = _STATS_OURS.search(output)
    if ours is None:
        return []
    ours_ms = float(ours.group(1))
    gb = _STATS_GB.search(output)
    work = "stats engine: one results page, 500 comparisons (ms CPU)"
    if gb is None:
        return [Row(work, f"{ours_ms:.2f}", "gbstats not run", "-")]
    gb_ms = float(gb.group(2))
    return [
        Row(
            f"{work} vs gbstats {gb.group(1)}",
            f"{ours_ms:.2f}",
            f"{gb_ms:.2f}",
            f"{gb_ms / ours_ms:.1f}x faster",
        )
    ]


_ASSIGN_LINE = re.compile(
    r"^\s*(?P<name>.+?)\s+(?P<rps>\d+) rps\s+p50\s+(?P<p50>[\d.]+) ms\s+p99\s+(?P<p99>[\d.]+) ms",
    re.MULTILINE,
)


def _assign_rows(output: str) -> list[Row]:
    lines = {m.group("name").strip(): m for m in _ASSIGN_LINE.finditer(output)}
    raw = lines.get("raw ASGI hello-world")
    ours = lines.get("sharpen POST /v1/assign")
    rows: list[Row] = []
    if raw and ours:
        raw_rps, our_rps = float(raw.group("rps")), float(ours.group("rps"))
        rows.append(
            Row(
                "POST /v1/assign at saturation (rps) vs raw ASGI hello-world",
                _num(our_rps),
                _num(raw_rps),
                f"{our_rps / raw_rps:.2f}x",
            )
        )
    raw_half = next((m for n, m in lines.items() if n.startswith("raw ASGI @")), None)
    our_half = next((m for n, m in lines.items() if n.startswith("sharpen @")), None)
    if raw_half and our_half:
        rows.append(
            Row(
                "POST /v1/assign p99 at half of peak (ms) vs raw ASGI",
                our_half.group("p99"),
                raw_half.group("p99"),
                f"{float(our_half.group('p99')) / max(float(raw_half.group('p99')), 1e-9):.2f}x",
            )
        )
    return rows


ADAPTERS: dict[str, Callable[[str], list[Row]]] = {
    "bench_sdk": _sdk_rows,
    "bench_stats": _stats_rows,
    "bench_assign": _assign_rows,
}


# --- running -----------------------------------------------------------------


def _call_main(main: Callable[..., Any], argv: list[str]) -> Any:
    try:
        takes_argv = bool(inspect.signature(main).parameters)
    except (TypeError, ValueError):
        takes_argv = False
    if takes_argv:
        return main(argv)
    saved = sys.argv
    sys.argv = [getattr(main, "__module__", "bench"), *argv]
    try:
        return main()
    finally:
        sys.argv = saved


class _Tee(io.StringIO):
    """Captures what a bench prints and, with --verbose, shows it as it comes."""

    def __init__(self, echo: bool) -> None:
        super().__init__()
        self.echo = echo

    def write(self, text: str) -> int:
        if self.echo and sys.__stdout__ is not None:
            sys.__stdout__.write(text)
        return super().write(text)


def run_bench(name: str, *, quick: bool, verbose: bool) -> Outcome:
    outcome = Outcome(name)
    start = time.perf_counter()
    try:
        module = importlib.import_module(f"loadtests.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"loadtests.{name}":
            outcome.error = "not written yet"
        else:
            outcome.error = f"import failed: {exc}"
        return outcome
    except Exception as exc:
        outcome.error = f"import failed: {type(exc).__name__}: {exc}"
        return outcome
    main = getattr(module, "main", None)
    if not callable(main):
        outcome.error = "has no main()"
        return outcome
    argv = [*EXTRA_ARGS.get(name, []), *(QUICK_ARGS.get(name, []) if quick else [])]
    captured = _Tee(verbose)
    try:
        with contextlib.redirect_stdout(captured):
            returned = _call_main(main, argv)
    except SystemExit as exc:
        returned = exc.code if isinstance(exc.code, int) else 1
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        outcome.output = captured.getvalue()
        last = traceback.extract_tb(exc.__traceback__)[-1:]
        where = f" ({last[0].filename.rsplit('/', 1)[-1]}:{last[0].lineno})" if last else ""
        outcome.error = f"{type(exc).__name__}: {exc}{where}"
        outcome.seconds = time.perf_counter() - start
        return outcome
    outcome.output = captured.getvalue()
    outcome.seconds = time.perf_counter() - start
    if isinstance(returned, int) and returned != 0:
        tail = outcome.output.strip().splitlines()[-1:] or [""]
        outcome.error = f"exit code {returned}: {tail[0][:200]}"
        return outcome
    outcome.rows = rows_from_return(returned)
    if not outcome.rows and name in ADAPTERS:
        try:
            outcome.rows = ADAPTERS[name](outcome.output)
        except (ValueError, KeyError, TypeError, ZeroDivisionError) as exc:
            outcome.error = f"output not understood ({type(exc).__name__}: {exc}); see above"
    if not outcome.rows and outcome.error is None:
        outcome.rows = [Row(f"{name}: see its output above", "-", "-", "-")]
    return outcome


def table(outcomes: Sequence[Outcome]) -> str:
    header = Row("work", "sharpen", "reference (same run)", "ratio")
    rows: list[Row] = []
    for outcome in outcomes:
        if outcome.error is not None:
            rows.append(Row(f"{outcome.name}: ERROR", "-", "-", outcome.error))
        rows.extend(outcome.rows)
    widths = [
        max(len(getattr(r, col)) for r in [header, *rows])
        for col in ("work", "sharpen", "reference", "ratio")
    ]

    def line(r: Row) -> str:
        return (
            f"| {r.work:<{widths[0]}} | {r.sharpen:>{widths[1]}} | "
            f"{r.reference:>{widths[2]}} | {r.ratio:<{widths[3]}} |"
        )

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run every benchmark; one summary table.")
    parser.add_argument("--quick", action="store_true", help="fewer rounds, shorter runs")
    parser.add_argument(
        "--only", default="", help="comma-separated: sdk, sdk_js, assign, ingest, stats"
    )
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument("--verbose", action="store_true", help="show output as it comes")
    args = parser.parse_args(argv)
    names = list(BENCHES)
    if args.only:
        wanted = {n.strip().removeprefix("bench_") for n in args.only.split(",") if n.strip()}
        names = [n for n in names if n.removeprefix("bench_") in wanted]
    if args.list:
        for name in names:
            print(name)
        return 0
    outcomes = []
    for name in names:
        print(f"== {name} ...", flush=True)
        outcome = run_bench(name, quick=args.quick, verbose=args.verbose)
        if outcome.output and not args.verbose:
            print(outcome.output.rstrip())
        status = "failed: " + outcome.error if outcome.error else "done"
        print(f"== {name} {status} ({outcome.seconds:.0f} s)\n", flush=True)
        outcomes.append(outcome)
    print(table(outcomes))
    failed = [o for o in outcomes if o.error is not None and o.error != "not written yet"]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
