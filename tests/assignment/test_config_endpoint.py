"""GET /v1/config: the SDK document with an ETag, 304 when unchanged, no drafts."""

from __future__ import annotations

from fastapi.testclient import TestClient

import sharpen
from tests._wait import wait_for
from tests.assignment._helpers import act, create, launch, wait_status
from tests.conftest import ADMIN, CLIENT


def test_config_has_an_etag_and_answers_304(api: TestClient) -> None:
    launch(api, "conf-a")
    first = api.get("/v1/config", headers=CLIENT)
    assert first.status_code == 200
    etag = first.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"')
    assert first.json()["etag"] == etag.strip('"')
    assert first.json()["hash_version"] == 1

    for condition in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        again = api.get("/v1/config", headers={**CLIENT, "If-None-Match": condition})
        assert again.status_code == 304, condition
        assert again.content == b"" and again.headers["ETag"] == etag
    stale = api.get("/v1/config", headers={**CLIENT, "If-None-Match": '"stale"'})
    assert stale.status_code == 200 and stale.json() == first.json()

    act(api, "conf-a", "stop")
    wait_status(api, "conf-a", "stopped")
    changed = api.get("/v1/config", headers={**CLIENT, "If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag


def test_config_lists_running_and_ended_but_not_drafts(api: TestClient) -> None:
    for key in ("c-run", "c-ship", "c-roll", "c-stop"):
        launch(api, key)
    act(api, "c-ship", "ship", variant="candidate")
    act(api, "c-roll", "rollback")
    act(api, "c-stop", "stop")
    create(api, "c-draft")
    wait_status(api, "c-stop", "stopped")
    document = api.get("/v1/config", headers=CLIENT).json()
    statuses = {k: e["status"] for k, e in document["experiments"].items()}
    assert statuses == {
        "c-run": "running",
        "c-ship": "shipped",
        "c-roll": "rolled_back",
        "c-stop": "stopped",
    }
    # The SDK parses every entry.
    config = sharpen.core.parse_config(document)
    assert not config.skipped and set(config.experiments) == set(statuses)
    assert config.experiments["c-ship"].shipped_variant == "candidate"


def test_identical_configs_share_an_etag_across_versions(api: TestClient) -> None:
    """The ETag is a digest of the content, so two processes (or a version bump that
    changes nothing the SDK sees) agree on it."""
    launch(api, "c-one")
    etag = api.get("/v1/config", headers=CLIENT).headers["ETag"]
    create(api, "c-draft")  # not served: the document is unchanged
    runtime = api.app.state.runtime  # type: ignore[attr-defined]
    wait_for(
        lambda: "c-draft" in runtime.assigner.config().experiments,
        what="the cache to hold the draft",
    )
    assert api.get("/v1/config", headers=CLIENT).headers["ETag"] == etag


def test_config_needs_a_client_key(api: TestClient) -> None:
    assert api.get("/v1/config").status_code == 401
    denied = api.get("/v1/config", headers=ADMIN)
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "forbidden"
