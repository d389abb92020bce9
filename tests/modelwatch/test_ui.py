"""The dashboard's model pages: trend plots carrying the report's exact numbers, the list
by what needs attention, the review, and their empty states."""

from __future__ import annotations

import asyncio
import re
import xml.etree.ElementTree as ET

from scripts.model_line import Line
from service.modelwatch import ModelWatch
from service.store.model_watch import WatchStore
from service.ui.plots import TrendDay, trend_plot
from tests.conftest import make_settings, running_app
from tests.modelwatch.test_watch import SETTINGS, _degraded_line, _log
from tests.monitor._support import runtime_on
from tests.ui.helpers import elements, login, plotted

EVIL = '<script>alert("x")</script>&'


def test_trend_plot_carries_exact_numbers_and_escapes() -> None:
    days = [TrendDay(86_400.0 * d, 0.1 + 0.2 if d != 3 else None, 100 + d) for d in range(1, 6)]
    svg = trend_plot(
        days, segment=EVIL, metric="accuracy", reference=0.75, band=(0.7125, 0.7875),
        status="degraded",
    )  # fmt: skip
    ET.fromstring(svg)  # well-formed, the label escaped
    assert "<script>" not in svg
    points = plotted(svg, "trend", "day", metric="accuracy")
    assert [(p.num("day"), p.num("value"), p.num("labelled")) for p in points] == [
        (86_400.0 * d, 0.30000000000000004, 100 + d) for d in (1, 2, 4, 5)
    ]
    (band,) = plotted(svg, "trend", "band")
    assert (band.num("low"), band.num("high")) == (0.7125, 0.7875)
    (ref,) = plotted(svg, "trend", "reference")
    assert ref.num("reference") == 0.75
    empty = trend_plot(
        [TrendDay(0.0, None, 0)], segment="all", metric="mae", reference=None, band=None,
        status="insufficient",
    )  # fmt: skip
    assert "no labelled predictions in these days" in empty


def _watch(redis_url: str) -> dict[str, object]:
    async def run() -> dict[str, object]:
        async with runtime_on(redis_url, **SETTINGS) as runtime:
            await _log(runtime, "zeta", _degraded_line(seed=51))  # degraded, named last
            await _log(runtime, "alpha", Line(segments=2, per_day=200, days=14, seed=52))
            await ModelWatch(runtime).run_once()
            report = await WatchStore(runtime.redis).report("zeta")
            assert report is not None
            return report

    return asyncio.run(run())


def test_model_pages_list_and_review(redis_url: str) -> None:
    report = _watch(redis_url)
    with running_app(make_settings(redis_url, **SETTINGS)) as ui:
        login(ui)
        listed = ui.get("/ui/models")
        assert listed.status_code == 200
        rows = [e.attrs for e in elements(listed.text) if e.tag == "tr" and "data-model" in e.attrs]
        assert [(r["data-model"], r["data-status"]) for r in rows] == [
            ("zeta", "degraded"),
            ("alpha", "ok"),
        ]
        assert "accuracy degraded in region=r2" in listed.text

        page = ui.get("/ui/models/zeta/monitor")
        assert page.status_code == 200
        cells = {
            (e.attrs["data-metric"], e.attrs["data-status"])
            for e in elements(page.text)
            if e.tag == "td" and "data-status" in e.attrs
        }
        assert ("accuracy", "degraded") in cells
        trend = report["trend"]
        assert isinstance(trend, dict)
        series = next(
            s for s in trend["series"] if (s["segment"], s["metric"]) == ("region=r2", "accuracy")
        )
        points = plotted(page.text, "trend", "day", segment="region=r2", metric="accuracy")
        assert [p.num("value") for p in points] == [v for v in series["values"] if v is not None]
        assert len(plotted(page.text, "trend", "band")) == len(report["segments"])  # type: ignore[arg-type]
        assert "Evidence" in page.text and "region=r2" in page.text
        other = ui.get("/ui/models/zeta/monitor", params={"metric": "log_loss"})
        assert plotted(other.text, "trend", "day", metric="log_loss")
        for page_text in (page.text, listed.text):
            assert not re.search(r"\b(nan|NaN|None|inf)\b", page_text)

        review = ui.get("/ui/review")
        assert review.status_code == 200
        ranked = [e.attrs["data-model"] for e in elements(review.text) if "data-rank" in e.attrs]
        assert ranked == ["zeta", "alpha"]
        assert "# Weekly model review" in review.text
        bad = ui.get("/ui/review", params={"since": "forever"})
        assert bad.status_code == 200 and 'value="7d"' in bad.text


def test_empty_states(redis_url: str) -> None:
    with running_app(make_settings(redis_url)) as ui:
        login(ui)
        assert "No model has logged predictions yet." in ui.get("/ui/review").text
        page = ui.get("/ui/models/ghost/monitor")
        assert page.status_code == 200
        assert "has not reported on ghost yet" in page.text
