"""End to end in headless Chromium: log in, see the breached segment, roll back.

A real uvicorn process with the aggregator on; events go through ``POST /v1/events``.
Screenshots land in ``test-artifacts/ui/`` (gitignored). Skips, saying why, without
``/usr/bin/chromium`` (Debian package ``chromium``) or the ``playwright`` package.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests._live import LiveServer
from tests.conftest import ADMIN, ADMIN_KEY, CLIENT, CLIENT_KEY, ROOT, results_with_units
from tests.ui.scenario import KEY, UNITS, scenario_events, scenario_spec

pytestmark = pytest.mark.needs_chromium

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts" / "ui"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def browser() -> Iterator[Any]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} not found: apt-get install -y chromium (.ci/run does)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright package is not installed (pip install -e '.[dev]')")
    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture
def server(server_env: dict[str, str], tmp_path: Path) -> Iterator[LiveServer]:
    env = {
        **server_env,
        "SHARPEN_RUN_WORKER": "true",
        "SHARPEN_AGGREGATOR_BLOCK_MS": "20",
        "SHARPEN_UI_REFRESH_INTERVAL_S": "1",
    }
    live = LiveServer(env, log=tmp_path / "server.log").start()
    yield live
    live.stop()


def _seed(http: httpx.Client) -> None:
    assert http.post("/v1/experiments", json=scenario_spec(), headers=ADMIN).status_code == 201
    assert http.post(f"/v1/experiments/{KEY}/start", headers=ADMIN).status_code == 200
    res = http.post("/v1/events", json={"events": scenario_events()}, headers=CLIENT)
    assert res.status_code == 202, res.text
    results_with_units(http, KEY, UNITS, timeout_s=60)


def _more_events(http: httpx.Client, count: int) -> None:
    extra = scenario_events(units=UNITS + count)[UNITS:]
    for event in extra:
        event["event_id"] += "-late"
    res = http.post("/v1/events", json={"events": extra}, headers=CLIENT)
    assert res.status_code == 202, res.text


_A11Y = """() => {
  const bad = [];
  if (!document.documentElement.lang) bad.push("html lang");
  for (const el of document.querySelectorAll("input:not([type=hidden]), select, textarea")) {
    if (!el.labels || el.labels.length === 0) bad.push("unlabelled " + (el.name || el.id));
  }
  for (const svg of document.querySelectorAll("svg")) {
    if (svg.getAttribute("role") !== "img" || !svg.getAttribute("aria-label")) bad.push("svg");
  }
  if (document.querySelectorAll("h1").length !== 1) bad.push("one h1");
  return bad;
}"""


def _accessible(page: Any) -> None:
    """Labels on every control, named plots, one h1, a language (cheap structural checks)."""
    assert page.evaluate(_A11Y) == [], page.url


_MEANINGLESS = re.compile(r"(?<![\w/])(nan|NaN|n/a|None|inf|-inf)(?![\w/])")


def _meaningful(page: Any) -> None:
    """Where data exists, no rendered text says nan, n/a, None or inf."""
    text = page.locator("main").inner_text()
    found = [text[max(m.start() - 60, 0) : m.end() + 20] for m in _MEANINGLESS.finditer(text)]
    assert not found, f"{page.url} shows {found}"


def _records() -> list[dict[str, Any]]:
    records = []
    for i in range(600):
        country = ("US", "CA", "MX")[i % 3]
        wrong = (country == "MX" and i % 2 == 0) or i % 11 == 0
        truth = "fraud" if i % 4 else "ok"
        records.append(
            {
                "record_id": f"r{i}",
                "prediction": ("ok" if truth == "fraud" else "fraud") if wrong else truth,
                "label": truth,
                "confidence": 0.55 + (i % 9) * 0.05,
                "attributes": {"country": country, "device": "mobile" if i % 2 else "desktop"},
            }
        )
    return records


def test_log_in_see_the_breach_and_roll_back(browser: Any, server: LiveServer) -> None:
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        _seed(http)
        context = browser.new_context(viewport={"width": 1366, "height": 900})
        page = context.new_page()
        problems: list[str] = []
        # Script errors and CSP violations; the refused login answers 403 on purpose.
        page.on(
            "console",
            lambda m: (
                problems.append(m.text)
                if m.type == "error" and "status of 403" not in m.text
                else None
            ),
        )
        page.on("pageerror", lambda e: problems.append(str(e)))
        try:
            # A client key is refused.
            page.goto(f"{server.url}/ui/experiments/{KEY}")
            expect(page).to_have_url(f"{server.url}/ui/login?next=%2Fui%2Fexperiments%2F{KEY}")
            _accessible(page)
            page.get_by_label("Admin API key").fill(CLIENT_KEY)
            page.get_by_role("button", name="Log in").click()
            expect(page.get_by_role("alert")).to_contain_text("only admin keys can log in")

            # The admin key gets in, and lands where it was going.
            page.get_by_label("Admin API key").fill(ADMIN_KEY)
            page.keyboard.press("Enter")
            expect(page).to_have_url(f"{server.url}/ui/experiments/{KEY}")
            expect(page.get_by_role("heading", level=1)).to_contain_text(KEY)

            # The breached segment is highlighted (red), the healthy one is not.
            forest = page.locator('svg[data-plot="forest"][data-metric="latency_ms"]')
            mobile = forest.locator('g.forest-row[data-segment="device=mobile"]')
            desktop = forest.locator('g.forest-row[data-segment="device=desktop"]')
            expect(mobile).to_have_attribute("data-breached", "true")
            expect(mobile).to_have_class("forest-row breached")
            expect(desktop).to_have_attribute("data-breached", "false")
            assert mobile.locator("text").first.get_attribute("fill") == "#b3261e"
            assert desktop.locator("text").first.get_attribute("fill") != "#b3261e"
            expect(page.locator("#decision")).to_have_attribute("data-decision", "rollback")
            _accessible(page)
            page.keyboard.press("Tab")  # keyboard users start at the skip link
            assert page.evaluate("document.activeElement.textContent") == "Skip to content"
            mobile.scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "experiment.png"), full_page=True)
            _meaningful(page)

            # While it runs, the results refresh by themselves.
            units_before = page.locator("#units").inner_text()
            assert f"{UNITS // 2:,}" in units_before
            _more_events(http, 40)
            results_with_units(http, KEY, UNITS + 40, timeout_s=60)
            expect(page.locator('#units [data-variant="control"]')).to_contain_text(
                f"{UNITS // 2 + 20:,}", timeout=15_000
            )
            expect(page.locator("#live-status")).to_contain_text("updated")

            # Roll back: the confirmation names the decision's reasons.
            page.get_by_role("link", name="Roll back").click()
            expect(page.get_by_role("heading", level=1)).to_contain_text(f"Roll back {KEY}?")
            reasons = page.locator("#confirm-reasons li")
            expect(reasons.first).to_contain_text("breached guardrail latency_ms")
            expect(page.locator("#confirm-reasons")).to_contain_text("device=mobile")
            page.screenshot(path=str(ARTIFACTS / "confirm-rollback.png"), full_page=True)
            _accessible(page)
            page.get_by_label("Reason for the audit log (optional)").fill("mobile latency")
            page.get_by_role("button", name="Confirm: roll back").focus()
            page.keyboard.press("Enter")

            # The status changed, for the page and for the API.
            expect(page).to_have_url(f"{server.url}/ui/experiments/{KEY}?done=rollback")
            expect(page.get_by_role("status").first).to_contain_text("rolled back")
            expect(page.locator("h1 .badge")).to_have_text("rolled back")
            expect(page.locator("#audit tr[data-action='rollback']")).to_contain_text("tester")
            page.screenshot(path=str(ARTIFACTS / "rolled-back.png"), full_page=True)
            record = http.get(f"/v1/experiments/{KEY}", headers=ADMIN).json()
            assert record["status"] == "rolled_back"
            assert record["audit"][-1]["detail"]["reason"] == "mobile latency"

            # The list and the journal agree.
            page.get_by_role("link", name="Experiments").click()
            expect(page.locator(f'tr[data-experiment="{KEY}"]')).to_have_attribute(
                "data-status", "rolled_back"
            )
            page.get_by_role("link", name="Journal").click()
            expect(page.locator(f'#journal tr[data-experiment="{KEY}"]')).to_contain_text(
                "breached guardrail latency_ms"
            )
            page.screenshot(path=str(ARTIFACTS / "journal.png"), full_page=True)
            _meaningful(page)

            # The plan calculator, by keyboard-reachable labels.
            page.get_by_role("link", name="Plan").click()
            page.get_by_label("Baseline rate or mean").fill("0.3")
            page.get_by_label("Minimum detectable effect (relative)").fill("0.1")
            page.get_by_label("Traffic: units per day (all variants)").fill("4000")
            page.get_by_label("Design").select_option("fixed")
            page.get_by_role("button", name="Compute the plan").click()
            expect(page.locator("#plan-total")).not_to_have_text("n/a")
            assert page.locator('svg[data-plot="mde"] .mde-point').count() >= 5
            page.screenshot(path=str(ARTIFACTS / "plan.png"), full_page=True)
            _accessible(page)
            _meaningful(page)

            # A monitored model's error analysis.
            res = http.post(
                "/v1/models/fraud/records", json={"records": _records()}, headers=CLIENT
            )
            assert res.status_code == 202, res.text
            page.get_by_role("link", name="Models").click()
            page.get_by_role("link", name="fraud").click()
            expect(page.locator("h1")).to_contain_text("deployed model")  # the monitor page
            _accessible(page)
            _meaningful(page)
            page.get_by_role("link", name="Error analysis").click()
            expect(page.locator('svg[data-plot="reliability"] g.bin').first).to_be_attached()
            expect(page.locator("#levers tbody tr").first).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "analysis.png"), full_page=True)
            _accessible(page)
            _meaningful(page)
            page.get_by_role("link", name="Models").click()
            expect(page.locator('#models tr[data-model="fraud"] td.labelled')).to_contain_text(
                f"{len(_records()):,}"
            )
            _meaningful(page)

            # Started, no traffic yet: a clear empty state, not numbers that mean nothing.
            empty = scenario_spec("ranker-v3")
            assert http.post("/v1/experiments", json=empty, headers=ADMIN).status_code == 201
            started = http.post("/v1/experiments/ranker-v3/start", headers=ADMIN)
            assert started.status_code == 200, started.text
            page.goto(f"{server.url}/ui/experiments/ranker-v3")
            expect(page.locator("main")).to_contain_text("no data yet")
            expect(page.locator("main")).to_contain_text("not yet testable")
            page.screenshot(path=str(ARTIFACTS / "empty-experiment.png"), full_page=True)
            _meaningful(page)

            # Logging out ends the session.
            page.get_by_role("button", name="Log out").click()
            expect(page).to_have_url(f"{server.url}/ui/login")
            page.goto(f"{server.url}/ui/")
            expect(page).to_have_url(f"{server.url}/ui/login?next=%2Fui%2F")
        finally:
            context.close()
        assert problems == [], problems  # no script errors, no CSP violations
