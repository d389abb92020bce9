"""loadtests/bench_sdk.py still runs (a tiny round; its numbers are not checked here)."""

from __future__ import annotations

import json

import pytest

from loadtests import bench_sdk


def test_bench_sdk_runs_and_reports_both_sdks(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("growthbook")
    assert bench_sdk.main(["--calls", "300", "--gb-calls", "50", "--rounds", "1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["ns_per_call"]) == {
        "sharpen",
        "sharpen_repeat",
        "sharpen_upload",
        "growthbook_feature",
        "growthbook_run",
    }
    assert all(ns > 0 for ns in report["ns_per_call"].values())
    assert report["ratio"] > 0
    # Both SDKs split the 50/50 experiment roughly evenly.
    assert all(0.3 < share < 0.7 for share in report["candidate_share"].values())
