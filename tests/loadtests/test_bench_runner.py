"""``python -m loadtests``: rows from returns or printed output; failures become rows."""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Iterator

import pytest

runner = importlib.import_module("loadtests.__main__")


@pytest.fixture
def fake_benches() -> Iterator[dict[str, types.ModuleType]]:
    made: dict[str, types.ModuleType] = {}

    def add(name: str, main: object) -> None:
        module = types.ModuleType(f"loadtests.{name}")
        module.main = main  # type: ignore[attr-defined]
        sys.modules[f"loadtests.{name}"] = module
        made[name] = module

    def rows(argv: list[str]) -> list[tuple[str, float, float, float]]:
        return [("work (ms)", 1.5, 3.0, 2.0)]

    def prints(argv: list[str]) -> int:
        print("some figures: 12 rps")
        return 0

    def explodes(argv: list[str]) -> int:
        raise RuntimeError("boom")

    def refuses(argv: list[str]) -> int:
        print("missing wrk")
        return 2

    for name, main in [
        ("fake_rows", rows),
        ("fake_prints", prints),
        ("fake_boom", explodes),
        ("fake_exit", refuses),
    ]:
        add(name, main)
    yield made
    for name in made:
        sys.modules.pop(f"loadtests.{name}", None)


def test_each_kind_of_bench_gives_a_row(fake_benches: dict[str, types.ModuleType]) -> None:
    ok = runner.run_bench("fake_rows", quick=True, verbose=False)
    assert ok.error is None and ok.rows == [runner.Row("work (ms)", "1.5", "3", "2.00x")]
    printed = runner.run_bench("fake_prints", quick=True, verbose=False)
    assert printed.error is None and "12 rps" in printed.output
    assert "see its output" in printed.rows[0].work
    boom = runner.run_bench("fake_boom", quick=True, verbose=False)
    assert boom.error is not None and boom.error.startswith("RuntimeError: boom")
    refused = runner.run_bench("fake_exit", quick=True, verbose=False)
    assert refused.error == "exit code 2: missing wrk"
    missing = runner.run_bench("bench_does_not_exist", quick=True, verbose=False)
    assert missing.error == "not written yet"
    table = runner.table([ok, printed, boom, refused, missing])
    lines = table.splitlines()
    assert lines[0].startswith("| work") and "reference (same run)" in lines[0]
    assert len(lines) == 2 + 5
    assert "fake_boom: ERROR" in table and "RuntimeError: boom" in table


def test_adapters_read_the_benches_printed_figures() -> None:
    stats = runner._stats_rows(
        "sharpen (vectorised page):   best     3.76 ms   median 4.10 ms\n"
        "gbstats 0.8.0 (per cell):    best   364.22 ms   median 367.27 ms\n"
    )
    assert stats[0].sharpen == "3.76" and stats[0].reference == "364.22"
    assert stats[0].ratio == "96.9x faster"
    assign = runner._assign_rows(
        "  raw ASGI hello-world                4963 rps   p50   8.27 ms   p99  52.24 ms   (1 ok)\n"
        "  sharpen POST /v1/assign             2500 rps   p50  45.24 ms   p99 286.72 ms   (1 ok)\n"
        "  raw ASGI @ 2482/s                   2131 rps   p50   4.00 ms   p99  2.00 ms\n"
        "  sharpen @ 1250/s                    1250 rps   p50   7.90 ms   p99  3.00 ms\n"
    )
    assert [r.ratio for r in assign] == ["0.50x", "1.50x"]
    sdk = runner._sdk_rows(
        'header\n{"ns_per_call": {"sharpen": 1000.0, "growthbook_run": 20000.0, '
        '"growthbook_feature": 30000.0}}'
    )
    assert sdk == [
        runner.Row(
            "SDK local assign, new unit (ns/call) vs growthbook_run",
            "1,000",
            "20,000",
            "20.0x faster",
        )
    ]
