"""The journal: who ended what and why, lines' cumulative improvement, levers, yearly value."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from service import format as fmt
from service.cli import app as cli
from service.journal import Journal, line_of
from service.spec import ExperimentSpec
from service.store import ExperimentStore, RedisClient, RedisSettings, close, connect
from tests._factories import guarded_spec
from tests._live import LiveServer
from tests.conftest import ADMIN, ADMIN_KEY, CLIENT
from tests.monitor._support import primary_row, results_doc

DAY = 86_400.0


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[RedisClient]:
    client = await connect(RedisSettings(url=redis_url))
    yield client
    await close(client)


async def _run(
    store: ExperimentStore,
    clock: Clock,
    action: str,
    *,
    days: float = 2.0,
    reason: str | None = None,
    actor: str = "alice",
    **spec: Any,
) -> Any:
    """Create, start, let ``days`` pass, then end the experiment with ``action``."""
    parsed = ExperimentSpec.model_validate(guarded_spec(**spec))
    await store.create(parsed, actor=actor)
    await store.transition(parsed.key, "start", actor)
    clock.now += days * DAY
    detail = {"reason": reason} if reason else {}
    return await store.transition(parsed.key, action, actor, detail=detail)


def _results(
    rel: float, rel_ci: tuple[float, float], ab: float, ab_ci: tuple[float, float]
) -> dict[str, Any]:
    return results_doc(primary=primary_row(rel, rel_ci, ab, ab_ci), decision="ship")


async def test_a_shipped_experiment_is_journaled_once_and_becomes_the_baseline(
    redis: RedisClient,
) -> None:
    clock = Clock()
    store, journal = ExperimentStore(redis, clock=clock), Journal(redis, clock=clock)
    record = await _run(store, clock, "ship", reason="precision +5%, recall flat")
    results = _results(0.05, (0.01, 0.09), 0.03, (0.01, 0.05))
    entry = await journal.record(record, results, "alice")
    assert entry is not None
    assert (entry.experiment, entry.status, entry.actor) == ("fraud-v7", "shipped", "alice")
    assert entry.hypothesis == "merchant features lift precision without hurting recall"
    assert entry.spec_version == 1 and entry.lever == "features" and entry.line == "fraud"
    assert entry.decision.action == "ship"
    assert entry.decision.reasons == ["precision +5%, recall flat"]
    assert entry.decision.recommended == {"action": "ship", "reasons": ["engine says ship"]}
    assert entry.variant == "candidate" and entry.payload == {"model": "v7"}
    assert entry.results == results
    assert entry.primary is not None and entry.primary.relative.estimate == 0.05
    assert await journal.record(record, results, "bob") is None  # written once
    assert (await journal.get("fraud-v7")).actor == "alice"  # type: ignore[union-attr]
    baseline = await journal.baseline_of(record)
    assert baseline is not None
    assert (baseline["experiment"], baseline["variant"]) == ("fraud-v7", "candidate")
    assert baseline["payload"] == {"model": "v7"}


async def test_rollbacks_and_stops_say_who_and_why(redis: RedisClient) -> None:
    clock = Clock()
    store, journal = ExperimentStore(redis, clock=clock), Journal(redis, clock=clock)
    rolled = await _run(store, clock, "rollback", key="rank-v2", actor="monitor",
                        reason="guardrail recall breached in country=DE")  # fmt: skip
    stopped = await _run(store, clock, "stop", key="rank-v3", actor="bob")
    await journal.record(rolled, results_doc(decision="rollback"), "monitor")
    await journal.record(stopped, None, "bob", results_error="no results")
    by_key = {e.experiment: e for e in await journal.entries()}
    assert by_key["rank-v2"].status == "rolled_back"
    assert by_key["rank-v2"].actor == "monitor"
    assert by_key["rank-v2"].decision.reasons == ["guardrail recall breached in country=DE"]
    assert by_key["rank-v3"].status == "stopped" and by_key["rank-v3"].actor == "bob"
    assert by_key["rank-v3"].decision.reasons == ["no reason given"]
    assert by_key["rank-v3"].results is None and by_key["rank-v3"].results_error == "no results"
    assert await journal.baselines() == {}  # nothing shipped: no line moved


async def test_cumulative_improvement_along_a_line(redis: RedisClient) -> None:
    clock = Clock()
    store, journal = ExperimentStore(redis, clock=clock), Journal(redis, clock=clock)
    plan: list[tuple[str, str, tuple[float, tuple[float, float]]]] = [
        ("fraud-v5", "ship", (0.05, (0.01, 0.09))),
        ("fraud-v6", "rollback", (-0.03, (-0.06, 0.0))),
        ("fraud-v7", "ship", (0.10, (0.04, 0.16))),
    ]
    for key, action, (rel, ci) in plan:
        record = await _run(store, clock, action, key=key)
        await journal.record(record, _results(rel, ci, rel * 0.6, (ci[0] * 0.6, ci[1] * 0.6)), "a")
    other = await _run(store, clock, "ship", key="churn-v1", layer="churn-models")
    await journal.record(other, _results(0.2, (0.1, 0.3), 0.1, (0.05, 0.15)), "a")

    lines = {line.line: line for line in await journal.lines()}
    assert set(lines) == {"fraud", "churn-models"}
    fraud = lines["fraud"]
    assert (fraud.experiments, fraud.shipped) == (3, 2)
    assert fraud.baseline is not None and fraud.baseline["experiment"] == "fraud-v7"
    (cumulative,) = fraud.cumulative
    assert cumulative.metric == "precision" and cumulative.experiments == ["fraud-v5", "fraud-v7"]
    assert cumulative.lift.estimate == pytest.approx(1.05 * 1.10 - 1)
    assert cumulative.lift.ci[0] == pytest.approx(1.01 * 1.04 - 1)
    assert cumulative.lift.ci[1] == pytest.approx(1.09 * 1.16 - 1)
    assert lines["churn-models"].cumulative[0].lift.estimate == pytest.approx(0.2)


def test_line_of_a_spec() -> None:
    def spec(**changes: Any) -> ExperimentSpec:
        return ExperimentSpec.model_validate(guarded_spec(**changes))

    assert line_of(spec(key="fraud-v7")) == "fraud"
    assert line_of(spec(key="fraud-scoring-v12")) == "fraud-scoring"
    assert line_of(spec(key="fraud-v7", layer="fraud-models")) == "fraud-models"
    assert line_of(spec(key="homepage")) == "homepage"
    # The demo's keys name the line, not the run: fraud-v7-win-s7 iterates on "fraud".
    assert line_of(spec(key="fraud-v7-win-s7")) == "fraud"
    assert line_of(spec(key="fraud-v7-regression-s11")) == "fraud"


async def test_yearly_value_with_its_interval(redis: RedisClient) -> None:
    clock = Clock()
    store, journal = ExperimentStore(redis, clock=clock), Journal(redis, clock=clock)
    record = await _run(
        store,
        clock,
        "ship",
        days=2.0,
        traffic=0.5,
        impact={"value_per_unit": 0.8, "currency": "EUR"},
    )
    # 2000 units in 2 days at 50 % traffic: 2000 eligible units a day.
    entry = await journal.record(record, _results(0.05, (0.02, 0.08), 0.03, (0.01, 0.05)), "a")
    assert entry is not None and entry.value is not None
    assert entry.value.currency == "EUR"
    assert entry.value.daily_units == pytest.approx(2000)
    assert entry.value.yearly.estimate == pytest.approx(0.03 * 0.8 * 2000 * 365)
    assert entry.value.yearly.ci[0] == pytest.approx(0.01 * 0.8 * 2000 * 365)
    assert entry.value.yearly.ci[1] == pytest.approx(0.05 * 0.8 * 2000 * 365)


async def test_yearly_value_needs_a_day_of_traffic(redis: RedisClient) -> None:
    """Minutes of traffic say nothing about a year: below one day the spec's expected
    daily units stand in, and without them the value is not estimable (never billions)."""
    clock = Clock()
    store, journal = ExperimentStore(redis, clock=clock), Journal(redis, clock=clock)
    doc = _results(0.05, (0.02, 0.08), 0.03, (0.01, 0.05))
    impact = {"value_per_unit": 0.8, "currency": "USD"}
    seconds = 90.0  # 2000 units in a minute and a half: 1.9 billion a day if extrapolated
    short = await _run(store, clock, "ship", days=seconds / DAY, impact=impact)
    entry = await journal.record(short, doc, "a")
    assert entry is not None and entry.value is None
    assert entry.value_note is not None and entry.value_note.startswith("not estimable")
    assert "2 minutes of traffic observed" in entry.value_note
    assert fmt.journal_value(entry.model_dump(mode="json")) == entry.value_note

    expected = await _run(
        store,
        clock,
        "ship",
        key="fraud-v8",
        days=seconds / DAY,
        impact=impact,
        analysis={"expected_daily_units": 20_000},
    )
    entry = await journal.record(expected, doc, "a")
    assert entry is not None and entry.value is not None
    assert entry.value.daily_units_source == "expected" and entry.value.daily_units == 20_000
    assert entry.value.yearly.estimate == pytest.approx(0.03 * 0.8 * 20_000 * 365)
    assert "(at 20,000 units/day, expected)" in fmt.journal_value(entry.model_dump(mode="json"))

    long = await _run(store, clock, "ship", key="fraud-v9", days=1.0, impact=impact)
    entry = await journal.record(long, doc, "a")
    assert entry is not None and entry.value is not None
    assert entry.value.daily_units_source == "observed"


async def test_levers_summary(redis: RedisClient) -> None:
    clock = Clock()
    store, journal = ExperimentStore(redis, clock=clock), Journal(redis, clock=clock)
    impact = {"value_per_unit": 1.0, "currency": "USD"}
    runs: list[tuple[str, str, dict[str, Any], float]] = [
        ("feat-v1", "ship", {"lever": "features", "impact": impact}, 0.04),
        ("feat-v2", "ship", {"lever": "features", "impact": impact}, 0.08),
        ("feat-v3", "rollback", {"lever": "features"}, -0.02),
        ("data-v1", "stop", {"lever": "data"}, 0.0),
        ("cut-v1", "ship", {"lever": "threshold"}, 0.01),
        ("misc-v1", "stop", {"lever": None}, 0.0),
    ]
    for key, action, spec, rel in runs:
        record = await _run(store, clock, action, key=key, **spec)
        doc = _results(rel, (rel - 0.02, rel + 0.02), rel, (rel - 0.02, rel + 0.02))
        await journal.record(record, doc, "a")
    levers = {lever.lever: lever for lever in await journal.levers()}
    assert set(levers) == {"features", "data", "threshold", "unspecified"}
    assert levers["threshold"].shipped == 1
    features = levers["features"]
    assert (features.experiments, features.shipped, features.rolled_back) == (3, 2, 1)
    assert features.win_rate == pytest.approx(2 / 3)
    assert features.mean_shipped_lift == pytest.approx(0.06)
    usd = features.yearly_value["USD"]
    per_unit_year = 2000 / 2 * 365  # 1000 units a day, 365 days, value 1 per unit
    assert usd.estimate == pytest.approx((0.04 + 0.08) * per_unit_year)
    assert usd.ci[0] == pytest.approx((0.02 + 0.06) * per_unit_year)
    assert levers["data"].win_rate == 0 and levers["data"].stopped == 1
    assert levers["data"].yearly_value == {}


def _lifecycle(client: TestClient | httpx.Client, key: str, action: str, **body: Any) -> None:
    spec = guarded_spec(key=key)
    assert client.post("/v1/experiments", json=spec, headers=ADMIN).status_code == 201
    assert client.post(f"/v1/experiments/{key}/start", headers=ADMIN).status_code == 200
    response = client.post(f"/v1/experiments/{key}/{action}", json=body or None, headers=ADMIN)
    assert response.status_code == 200, response.text


def test_the_api_journals_every_end(api: TestClient) -> None:
    _lifecycle(api, "fraud-v7", "ship", reason="primary significant, guardrails ok")
    _lifecycle(api, "rank-v2", "rollback", reason="latency up 30%")
    _lifecycle(api, "churn-v1", "stop")
    assert api.post("/v1/experiments/fraud-v7/stop", headers=ADMIN).status_code == 409

    page = api.get("/v1/journal", headers=ADMIN).json()
    assert page["total"] == 3
    assert [e["experiment"] for e in page["entries"]] == ["churn-v1", "rank-v2", "fraud-v7"]
    first = page["entries"][2]
    assert (first["status"], first["actor"]) == ("shipped", "tester")
    assert first["decision"]["reasons"] == ["primary significant, guardrails ok"]
    assert "results" not in first or first["results"] is None  # only with ?results=true
    assert page["entries"][1]["decision"]["reasons"] == ["latency up 30%"]
    assert {line["line"] for line in page["lines"]} == {"fraud", "rank", "churn"}
    assert {lever["lever"] for lever in page["levers"]} == {"features"}

    one = api.get("/v1/journal/fraud-v7", headers=ADMIN).json()
    assert one["results"] is not None or one["results_error"]
    assert api.get("/v1/journal?summary=levers", headers=ADMIN).json().keys() == {"levers"}
    assert api.get("/v1/journal?summary=lines", headers=ADMIN).json().keys() == {"lines"}
    filtered = api.get("/v1/journal?status=rolled_back", headers=ADMIN).json()
    assert [e["experiment"] for e in filtered["entries"]] == ["rank-v2"]


def test_journal_api_errors(api: TestClient) -> None:
    assert api.get("/v1/journal").status_code == 401
    assert api.get("/v1/journal", headers=CLIENT).status_code == 403
    missing = api.get("/v1/journal/nope", headers=ADMIN)
    assert missing.status_code == 404 and "nope" in missing.json()["error"]["message"]
    bad = api.get("/v1/journal?summary=everything", headers=ADMIN)
    assert bad.status_code == 422
    assert "summary" in json.dumps(bad.json()["error"]["details"])


def test_cli_journal(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.url) as client:
        _lifecycle(client, "fraud-v7", "ship", reason="good")
        _lifecycle(client, "fraud-v8", "rollback", reason="recall breached")
    runner = CliRunner()
    args = ["journal", "--url", live_server.url, "--api-key", ADMIN_KEY]
    shown = runner.invoke(cli, args, env={"COLUMNS": "300"})
    assert shown.exit_code == 0, shown.output
    for text in ("fraud-v7", "fraud-v8", "rolled_back", "recall breached", "model lines", "levers"):
        assert text in shown.output
    raw = runner.invoke(cli, [*args, "--json"])
    assert raw.exit_code == 0, raw.output
    assert json.loads(raw.output)["total"] == 2
    levers = runner.invoke(cli, [*args, "--summary", "levers", "--json"])
    assert json.loads(levers.output)["levers"][0]["lever"] == "features"


_: Callable[..., Any] = _run  # keep the helper's signature checked


def test_backtest_verdicts_show_in_the_journal(api: TestClient, redis_sync: Any) -> None:
    from service.store import keys

    verdict = {"action": "ship", "approved": True, "reasons": ["non-inferior everywhere"]}
    entry = {"kind": "backtest", "id": "bt_1", "at": 1.0, "experiment": "fraud-v9",
             "candidate": "candidate", "verdict": verdict}  # fmt: skip
    redis_sync.rpush(keys.journal(), json.dumps(entry))
    page = api.get("/v1/journal", headers=ADMIN).json()
    assert page["backtests"] == [entry]
    assert page["entries"] == [] and page["total"] == 0
    filtered = api.get("/v1/journal?lever=data", headers=ADMIN).json()
    assert filtered["backtests"] == []
