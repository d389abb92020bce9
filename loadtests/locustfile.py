"""Load scenarios for a running sharpen, at production ratios, in the SDK's wire format.

Two kinds of users:

* ``ProductionService`` (weight 20): a service in front of a model. Per 10 remote
  assignments (``POST /v1/assign``) it sends 1 outcome batch of 100 events
  (``POST /v1/events``, built by the SDK's own ``event_body``, so the wire format is the
  SDK's), and now and then polls ``GET /v1/config`` with its ETag as an SDK does.
* ``Engineer`` (weight 1): reads results and plans of the experiment, rarely.

Set up once per run (``on_test_start``): the experiment ``SHARPEN_LOAD_EXPERIMENT``
(default ``load-test``) is created and started with the admin key if it does not exist.

    .venv/bin/sharpen serve --dev            # prints the keys
    SHARPEN_API_KEY=... SHARPEN_CLIENT_KEY=... .venv/bin/locust -f loadtests/locustfile.py \\
        --host http://127.0.0.1:8000 --headless -u 50 -r 10 -t 60s

Only ever point it at a service on this machine or your own test hosts.
"""

from __future__ import annotations

import itertools
import os
import random
import time
import uuid
from typing import Any

from locust import HttpUser, between, events, task
from locust.env import Environment

from sharpen._wire import (
    ASSIGN_PATH,
    CONFIG_PATH,
    EVENTS_PATH,
    assign_body,
    auth_headers,
    event_body,
)

EXPERIMENT = os.environ.get("SHARPEN_LOAD_EXPERIMENT", "load-test")
CLIENT_KEY = os.environ.get("SHARPEN_CLIENT_KEY", "")
ADMIN_KEY = os.environ.get("SHARPEN_API_KEY", "")
BATCH = int(os.environ.get("SHARPEN_LOAD_BATCH", "100"))
UNITS = int(os.environ.get("SHARPEN_LOAD_UNITS", "1000000"))
USER_AGENT = "sharpen-locust/1"
COUNTRIES = ("US", "US", "US", "CA", "GB", "DE")
DEVICES = ("mobile", "mobile", "web")

SPEC: dict[str, Any] = {
    "key": EXPERIMENT,
    "description": "load test (locustfile)",
    "unit": "user",
    "variants": [
        {"key": "baseline", "weight": 50, "payload": {"model": "v6"}},
        {"key": "candidate", "weight": 50, "payload": {"model": "v7"}},
    ],
    "baseline": "baseline",
    "segments": ["country", "device"],
    "metrics": [
        {
            "name": "precision",
            "kind": "ratio",
            "numerator": "true_positive",
            "denominator": "flagged",
            "role": "primary",
            "direction": "increase",
            "mde": 0.05,
            "baseline_mean": 0.62,
        },
        {
            "name": "latency_ms",
            "kind": "mean",
            "value": "latency_ms",
            "role": "guardrail",
            "direction": "decrease",
            "margin": 0.1,
        },
    ],
    "analysis": {"expected_daily_units": 100_000, "min_days": 7},
}


@events.test_start.add_listener  # type: ignore[untyped-decorator]
def on_test_start(environment: Environment, **_: Any) -> None:
    """Create and start the experiment (idempotent), with the admin key if one is given."""
    if not ADMIN_KEY or environment.host is None:
        return
    import httpx

    headers = auth_headers(ADMIN_KEY, USER_AGENT)
    with httpx.Client(base_url=environment.host, headers=headers, timeout=10) as admin:
        if admin.get(f"/v1/experiments/{EXPERIMENT}").status_code == 404:
            admin.post("/v1/experiments", json=SPEC).raise_for_status()
        if admin.get(f"/v1/experiments/{EXPERIMENT}").json()["status"] == "draft":
            admin.post(f"/v1/experiments/{EXPERIMENT}/start").raise_for_status()


def _attributes(rng: random.Random) -> dict[str, str]:
    return {"country": rng.choice(COUNTRIES), "device": rng.choice(DEVICES)}


class ProductionService(HttpUser):
    """10 assigns : 1 events batch of 100 : a config poll now and then."""

    weight = 20
    wait_time = between(0.001, 0.01)

    def on_start(self) -> None:
        self.rng = random.Random(uuid.uuid4().int)
        self.headers = auth_headers(CLIENT_KEY, USER_AGENT)
        self.assigned: list[tuple[str, str | None, dict[str, str]]] = []
        self.etag: str | None = None
        self.seq = itertools.count()

    @task(10)
    def assign(self) -> None:
        unit = f"user-{self.rng.randrange(UNITS)}"
        attributes = _attributes(self.rng)
        body = assign_body(EXPERIMENT, unit, attributes)
        with self.client.post(
            ASSIGN_PATH, json=body, headers=self.headers, name="assign", catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}: {response.text[:200]}")
                return
            variant = response.json().get("variant")
            self.assigned.append((unit, variant, attributes))
            del self.assigned[:-BATCH]

    @task(1)
    def events_batch(self) -> None:
        now = time.time()
        batch = []
        for i in range(BATCH):
            if self.assigned:
                unit, variant, attributes = self.assigned[i % len(self.assigned)]
            else:
                unit, variant, attributes = f"user-{self.rng.randrange(UNITS)}", None, {}
            flagged = self.rng.random() < 0.3
            batch.append(
                event_body(
                    experiment=EXPERIMENT,
                    unit_id=unit,
                    values={
                        "flagged": int(flagged),
                        "true_positive": int(flagged and self.rng.random() < 0.62),
                        "latency_ms": self.rng.lognormvariate(3.5, 0.3),
                    },
                    variant=variant,
                    attributes=attributes,
                    timestamp=now,
                    event_id=f"{uuid.uuid4().hex}-{next(self.seq)}",
                    covariates=None,
                )
            )
        with self.client.post(
            EVENTS_PATH,
            json={"events": batch},
            headers=self.headers,
            name=f"events x{BATCH}",
            catch_response=True,
        ) as response:
            if response.status_code != 202:
                response.failure(f"HTTP {response.status_code}: {response.text[:200]}")

    @task(1)
    def poll_config(self) -> None:
        if self.rng.random() > 0.1:  # an SDK polls every few seconds, not per request
            return
        headers = dict(self.headers)
        if self.etag:
            headers["If-None-Match"] = self.etag
        with self.client.get(
            CONFIG_PATH, headers=headers, name="config", catch_response=True
        ) as response:
            if response.status_code == 200:
                self.etag = response.headers.get("ETag")
            elif response.status_code == 304:
                response.success()
            else:
                response.failure(f"HTTP {response.status_code}")


class Engineer(HttpUser):
    """Someone refreshing the results page and the plan."""

    weight = 1
    wait_time = between(1, 3)

    def on_start(self) -> None:
        self.headers = auth_headers(ADMIN_KEY, USER_AGENT)

    @task(5)
    def results(self) -> None:
        self.client.get(
            f"/v1/experiments/{EXPERIMENT}/results", headers=self.headers, name="results"
        )

    @task(1)
    def plan(self) -> None:
        self.client.get(f"/v1/experiments/{EXPERIMENT}/plan", headers=self.headers, name="plan")
