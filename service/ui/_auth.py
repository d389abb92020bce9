"""Dashboard sessions and CSRF.

* Logging in takes an *admin* key once; the browser then holds only a random session
  id in the ``sharpen_session`` cookie (HttpOnly, SameSite=Strict, Path=/ui, Secure when
  the request came over https). Redis maps the id's SHA-256 to the key's name, with a
  TTL (``SHARPEN_UI_SESSION_TTL_S``); logging out deletes it.
* Every request re-checks the session against the current key ring: once its key is
  removed or replaced (a restart with other keys), the session is deleted and refused,
  so nothing is ever done, or audited, in the name of a key that is gone.
* Wrong keys in the login form count against the failed-authentication limits of the
  API (:mod:`service.auth_limits`), by the client address ``Authenticate`` recorded.
* Every POST carries the session's CSRF token in a hidden ``csrf_token`` field, checked
  in constant time (403 otherwise). The login form itself is protected by a
  double-submit token: a short-lived ``sharpen_login`` cookie that must equal the form's.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import parse_qsl, quote

from fastapi import Depends, Request
from fastapi.responses import Response

from service.errors import BadRequest, Forbidden, SharpenServiceError
from service.runtime import Runtime
from service.store.sessions import Session, SessionStore

__all__ = [
    "LOGIN_COOKIE",
    "SESSION_COOKIE",
    "LoginRequired",
    "UISession",
    "UISessionDep",
    "check_csrf",
    "clear_cookie",
    "login_url",
    "new_login_token",
    "read_form",
    "safe_next",
    "session_store",
    "set_cookie",
    "tokens_match",
    "valid_session",
]

SESSION_COOKIE = "sharpen_session"
LOGIN_COOKIE = "sharpen_login"
COOKIE_PATH = "/ui"
_MAX_FORM_FIELDS = 50


class LoginRequired(SharpenServiceError):
    """No valid session: pages answer with a redirect to the login form."""

    status, code = 401, "login_required"


@dataclass(frozen=True, slots=True)
class UISession:
    session_id: str
    name: str
    csrf: str


def session_store(runtime: Runtime) -> SessionStore:
    return SessionStore(runtime.redis, runtime.settings.ui_session_ttl_s)


async def valid_session(runtime: Runtime, session_id: str | None) -> UISession | None:
    """The session of cookie ``session_id`` if it exists and its key is still configured;
    a session whose key is gone is deleted."""
    if not session_id:
        return None
    store = session_store(runtime)
    session: Session | None = await store.get(session_id)
    if session is None:
        return None
    who = runtime.keyring.session_identity(session.name, session.binding)
    if who is None:
        await store.delete(session_id)
        return None
    return UISession(session_id=session_id, name=who.name, csrf=session.csrf)


async def current_session(request: Request) -> UISession:
    runtime: Runtime = request.app.state.runtime
    session = await valid_session(runtime, request.cookies.get(SESSION_COOKIE))
    if session is None:
        raise LoginRequired("log in with an admin key")
    return session


UISessionDep = Annotated[UISession, Depends(current_session)]


def login_url(request: Request) -> str:
    target = request.url.path
    if request.url.query:
        target += "?" + request.url.query
    return "/ui/login?next=" + quote(target, safe="")


def safe_next(value: str | None) -> str:
    """Only local dashboard paths: no scheme, no host, no ``//`` or backslash tricks."""
    if (
        not value
        or not value.startswith("/ui")
        or value.startswith("//")
        or "\\" in value
        or "/../" in value + "/"
        or any(ord(c) < 32 for c in value)
    ):
        return "/ui/"
    return value


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=COOKIE_PATH,
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )


def clear_cookie(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(
        name,
        path=COOKIE_PATH,
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )


async def read_form(request: Request) -> dict[str, str]:
    """The url-encoded form body (the only kind the dashboard sends)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = await request.body()
    if not raw:
        return {}
    if kind != "application/x-www-form-urlencoded":
        raise BadRequest(
            "forms must be sent as application/x-www-form-urlencoded",
            details=[{"field": "content-type", "message": f"got {kind or 'nothing'!r}"}],
        )
    body = raw.decode("utf-8", errors="replace")
    try:
        pairs = parse_qsl(body, keep_blank_values=True, max_num_fields=_MAX_FORM_FIELDS)
    except ValueError as exc:
        raise BadRequest(f"unreadable form: {exc}") from None
    return dict(pairs)


def tokens_match(expected: str, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(
        expected.encode("utf-8"), (presented or "").encode("utf-8")
    )


def check_csrf(session: UISession, form: dict[str, str]) -> None:
    if not tokens_match(session.csrf, form.get("csrf_token")):
        raise Forbidden(
            "missing or wrong CSRF token: reload the page and try again",
            details=[{"field": "csrf_token", "message": "does not match this session"}],
        )


def new_login_token() -> str:
    return secrets.token_urlsafe(24)
