"""Dashboard sessions: login, logout, redirects, cookie flags, CSRF, client keys refused."""

from __future__ import annotations

import hashlib
from urllib.parse import quote

import pytest
import redis
from fastapi.testclient import TestClient

from service.settings import Settings
from tests._factories import simple_spec
from tests.conftest import ADMIN, ADMIN_KEY, CLIENT_KEY, AppFactory, make_settings, running_app
from tests.ui.helpers import csrf_token, login

PAGES = [
    "/ui/",
    "/ui/?status=running",
    "/ui/experiments/exp-a",
    "/ui/experiments/exp-a/live",
    "/ui/experiments/exp-a/confirm/stop",
    "/ui/plan",
    "/ui/journal",
    "/ui/models",
    "/ui/models/fraud/analysis",
]


@pytest.fixture
def running(api: TestClient) -> str:
    assert api.post("/v1/experiments", json=simple_spec("exp-a"), headers=ADMIN).status_code == 201
    assert api.post("/v1/experiments/exp-a/start", headers=ADMIN).status_code == 200
    return "exp-a"


@pytest.mark.parametrize("path", PAGES)
def test_every_page_without_a_session_redirects_to_login(api: TestClient, path: str) -> None:
    res = api.get(path, follow_redirects=False)
    assert res.status_code == 303
    assert res.headers["location"] == "/ui/login?next=" + quote(path, safe="")


@pytest.mark.parametrize("path", ["/ui/experiments/exp-a/stop", "/ui/logout"])
def test_posts_without_a_session_redirect_to_login(api: TestClient, path: str) -> None:
    res = api.post(path, data={"csrf_token": "x"}, follow_redirects=False)
    assert res.status_code == 303
    assert res.headers["location"] == "/ui/login"


def test_a_forged_session_cookie_is_not_a_session(api: TestClient) -> None:
    api.cookies.set("sharpen_session", "A" * 43, path="/ui")
    assert api.get("/ui/", follow_redirects=False).status_code == 303


def test_login_then_the_page_and_back_to_next(api: TestClient, running: str) -> None:
    page = api.get("/ui/experiments/exp-a")
    assert page.url.path == "/ui/login"
    res = api.post(
        "/ui/login",
        data={
            "key": ADMIN_KEY,
            "csrf_token": csrf_token(page.text),
            "next": "/ui/experiments/exp-a",
        },
        follow_redirects=False,
    )
    assert res.status_code == 303
    assert res.headers["location"] == "/ui/experiments/exp-a"
    shown = api.get("/ui/experiments/exp-a")
    assert shown.status_code == 200
    assert "Signed in as <strong>tester</strong>" in shown.text


def test_a_client_key_cannot_log_in(api: TestClient) -> None:
    form = api.get("/ui/login")
    res = api.post(
        "/ui/login",
        data={"key": CLIENT_KEY, "csrf_token": csrf_token(form.text), "next": "/ui/"},
        follow_redirects=False,
    )
    assert res.status_code == 403
    assert "only admin keys can log in" in res.text
    assert "sharpen_session" not in res.headers.get("set-cookie", "")
    assert api.get("/ui/", follow_redirects=False).status_code == 303


def test_an_unknown_key_cannot_log_in(api: TestClient) -> None:
    form = api.get("/ui/login")
    res = api.post(
        "/ui/login",
        data={"key": "not-a-key-at-all", "csrf_token": csrf_token(form.text)},
        follow_redirects=False,
    )
    assert res.status_code == 401
    assert "Unknown API key" in res.text
    assert api.get("/ui/", follow_redirects=False).status_code == 303


def test_login_needs_the_form_token(api: TestClient) -> None:
    api.get("/ui/login")
    missing = api.post("/ui/login", data={"key": ADMIN_KEY}, follow_redirects=False)
    assert missing.status_code == 403
    wrong = api.post(
        "/ui/login", data={"key": ADMIN_KEY, "csrf_token": "forged"}, follow_redirects=False
    )
    assert wrong.status_code == 403
    api.cookies.clear()
    no_cookie = api.post(
        "/ui/login", data={"key": ADMIN_KEY, "csrf_token": "forged"}, follow_redirects=False
    )
    assert no_cookie.status_code == 403
    assert api.get("/ui/", follow_redirects=False).status_code == 303


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/x", "/v1/config", "/ui/../v1/config"]
)
def test_next_stays_on_the_dashboard(api: TestClient, target: str) -> None:
    form = api.get("/ui/login")
    res = api.post(
        "/ui/login",
        data={"key": ADMIN_KEY, "csrf_token": csrf_token(form.text), "next": target},
        follow_redirects=False,
    )
    assert res.headers["location"] == "/ui/"


def test_session_cookie_holds_a_random_id_and_redis_its_digest(
    api: TestClient, redis_sync: redis.Redis, settings: Settings
) -> None:
    form = api.get("/ui/login")
    res = api.post(
        "/ui/login",
        data={"key": ADMIN_KEY, "csrf_token": csrf_token(form.text)},
        follow_redirects=False,
    )
    header = next(h for h in res.headers.get_list("set-cookie") if h.startswith("sharpen_session="))
    attributes = [a.strip().lower() for a in header.split(";")]
    assert "httponly" in attributes
    assert "samesite=strict" in attributes
    assert "path=/ui" in attributes
    assert "secure" not in attributes  # plain http (localhost): see the README
    session_id = header.split(";")[0].split("=", 1)[1]
    assert ADMIN_KEY not in header and len(session_id) >= 40
    stored = redis_sync.keys("sharpen:ui:session:*")
    digest = hashlib.sha256(session_id.encode()).hexdigest()
    assert stored == [f"sharpen:ui:session:{digest}"]
    value = str(redis_sync.get(stored[0]))
    assert '"name":"tester"' in value
    assert ADMIN_KEY not in value and session_id not in value
    assert 0 < redis_sync.ttl(stored[0]) <= settings.ui_session_ttl_s


@pytest.fixture
def https_api(settings: Settings, make_api: AppFactory) -> TestClient:
    return make_api(settings, base_url="https://testserver")


def test_cookies_are_secure_over_https(https_api: TestClient) -> None:
    form = https_api.get("/ui/login")
    assert "secure" in form.headers["set-cookie"].lower()
    res = https_api.post(
        "/ui/login",
        data={"key": ADMIN_KEY, "csrf_token": csrf_token(form.text)},
        follow_redirects=False,
    )
    header = next(h for h in res.headers.get_list("set-cookie") if h.startswith("sharpen_session="))
    assert "secure" in [a.strip().lower() for a in header.split(";")]
    assert https_api.get("/ui/").status_code == 200


def test_actions_without_the_csrf_token_fail(api: TestClient, running: str) -> None:
    token = login(api)
    for data in ({}, {"csrf_token": ""}, {"csrf_token": "forged"}):
        res = api.post("/ui/experiments/exp-a/stop", data=data, follow_redirects=False)
        assert res.status_code == 403, data
        assert "CSRF" in res.text
    assert api.get("/v1/experiments/exp-a", headers=ADMIN).json()["status"] == "running"
    done = api.post(
        "/ui/experiments/exp-a/stop",
        data={"csrf_token": token, "reason": "enough"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/ui/experiments/exp-a?done=stop"
    record = api.get("/v1/experiments/exp-a", headers=ADMIN).json()
    assert record["status"] == "stopped"
    last = record["audit"][-1]
    assert last["actor"] == "tester"
    assert last["detail"]["reason"] == "enough"
    assert last["detail"]["via"] == "dashboard"


def test_logging_in_again_replaces_the_old_session(
    api: TestClient, redis_sync: redis.Redis
) -> None:
    login(api)
    first = api.cookies.get("sharpen_session") or ""
    api.cookies.clear()
    form = api.get("/ui/login")  # e.g. another tab, with the old cookie still around
    api.cookies.set("sharpen_session", first, path="/ui")
    res = api.post(
        "/ui/login",
        data={"key": ADMIN_KEY, "csrf_token": csrf_token(form.text)},
        follow_redirects=False,
    )
    assert res.status_code == 303
    assert f"sharpen_session={first}" not in res.headers["set-cookie"]
    assert len(redis_sync.keys("sharpen:ui:session:*")) == 1


def test_a_token_from_another_session_is_refused(
    api: TestClient, settings: Settings, running: str
) -> None:
    with running_app(settings) as other:
        foreign = login(other)
    login(api)
    res = api.post("/ui/experiments/exp-a/stop", data={"csrf_token": foreign})
    assert res.status_code == 403


def test_forms_must_be_url_encoded(api: TestClient, running: str) -> None:
    token = login(api)
    res = api.post("/ui/experiments/exp-a/stop", json={"csrf_token": token})
    assert res.status_code == 400
    assert "x-www-form-urlencoded" in res.text


def test_logout_needs_the_token_and_ends_the_session(
    api: TestClient, redis_sync: redis.Redis
) -> None:
    token = login(api)
    old = api.cookies.get("sharpen_session")
    assert api.post("/ui/logout", data={}, follow_redirects=False).status_code == 403
    res = api.post("/ui/logout", data={"csrf_token": token}, follow_redirects=False)
    assert res.status_code == 303 and res.headers["location"] == "/ui/login"
    assert redis_sync.keys("sharpen:ui:session:*") == []
    assert api.get("/ui/", follow_redirects=False).status_code == 303
    api.cookies.set("sharpen_session", old or "", path="/ui")
    assert api.get("/ui/", follow_redirects=False).status_code == 303


def test_pages_carry_security_headers(api: TestClient) -> None:
    login(api)
    for path in ("/ui/", "/ui/login", "/ui/plan"):
        headers = api.get(path).headers
        assert "script-src 'self'" in headers["content-security-policy"]
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["cache-control"] == "no-store"


OTHER_ADMIN_KEY = "other-admin-key-0002"


def _restarted(redis_url: str, admin_keys: list[str], cookie: str) -> TestClient:
    """The service restarted on the same Redis with ``admin_keys``; the browser's cookie."""
    settings = make_settings(redis_url, admin_keys=admin_keys)
    client = running_app(settings)
    client.cookies.set("sharpen_session", cookie, path="/ui")
    return client


@pytest.mark.parametrize(
    "admin_keys",
    [[f"other={OTHER_ADMIN_KEY}"], [f"tester={OTHER_ADMIN_KEY}"]],
    ids=["key-removed", "key-replaced-under-its-name"],
)
def test_a_session_whose_key_is_gone_is_refused_and_deleted(
    redis_url: str, redis_sync: redis.Redis, running: str, api: TestClient, admin_keys: list[str]
) -> None:
    token = login(api)
    cookie = api.cookies["sharpen_session"]
    assert redis_sync.keys("sharpen:ui:session:*")
    with _restarted(redis_url, admin_keys, cookie) as restarted:
        page = restarted.get("/ui/", follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"].startswith("/ui/login")
        assert redis_sync.keys("sharpen:ui:session:*") == []  # deleted, not just ignored
        restarted.cookies.set("sharpen_session", cookie, path="/ui")
        stop = restarted.post(
            "/ui/experiments/exp-a/stop", data={"csrf_token": token}, follow_redirects=False
        )
        assert stop.status_code == 303 and stop.headers["location"] == "/ui/login"
        record = restarted.get(
            "/v1/experiments/exp-a", headers={"Authorization": f"Bearer {OTHER_ADMIN_KEY}"}
        ).json()
    assert record["status"] == "running"
    assert [entry["actor"] for entry in record["audit"]] == ["tester", "tester"]  # create, start


def test_a_session_survives_a_restart_with_the_same_keys(
    redis_url: str, running: str, api: TestClient
) -> None:
    login(api)
    cookie = api.cookies["sharpen_session"]
    with _restarted(redis_url, [f"tester={ADMIN_KEY}"], cookie) as restarted:
        page = restarted.get("/ui/")
        assert page.status_code == 200 and "Signed in as <strong>tester</strong>" in page.text
