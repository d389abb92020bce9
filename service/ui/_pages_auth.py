"""Login and logout. Wrong keys count against the failed-authentication limits."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from service.auth_limits import FailedAuthLimit, client_address
from service.runtime import Runtime
from service.ui._auth import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    UISessionDep,
    check_csrf,
    clear_cookie,
    new_login_token,
    read_form,
    safe_next,
    session_store,
    set_cookie,
    tokens_match,
    valid_session,
)
from service.ui._render import SECURITY_HEADERS, Templates

__all__ = ["register"]

_LOGIN_TOKEN_TTL_S = 3600


def register(router: APIRouter, templates: Templates) -> None:
    def login_form(
        request: Request,
        next_url: str,
        *,
        error: str | None = None,
        status_code: int = 200,
        headers: dict[str, str] | None = None,
    ) -> Response:
        token = new_login_token()
        response = templates.render(
            request,
            "login.html",
            {"session": None, "next": next_url, "csrf": token, "error": error},
            status_code=status_code,
            headers=headers,
        )
        set_cookie(request, response, LOGIN_COOKIE, token, _LOGIN_TOKEN_TTL_S)
        return response

    @router.get("/login", name="ui_login")
    async def login_page(request: Request, next: str | None = None) -> Response:
        runtime: Runtime = request.app.state.runtime
        if await valid_session(runtime, request.cookies.get(SESSION_COOKIE)) is not None:
            return RedirectResponse(safe_next(next), status_code=303, headers=SECURITY_HEADERS)
        return login_form(request, safe_next(next))

    @router.post("/login", name="ui_login_submit")
    async def login_submit(request: Request) -> Response:
        runtime: Runtime = request.app.state.runtime
        form = await read_form(request)
        next_url = safe_next(form.get("next"))
        expected = request.cookies.get(LOGIN_COOKIE)
        if expected is None or not tokens_match(expected, form.get("csrf_token")):
            return login_form(
                request,
                next_url,
                error="The login form expired or was not sent from this page; try again.",
                status_code=403,
            )
        address = client_address(request.scope)  # the address Authenticate counts
        limit = _limit(runtime)
        refused = limit.refusal(address)
        if refused is not None:
            return login_form(
                request,
                next_url,
                error=f"{refused.message[0].upper()}{refused.message[1:]}.",
                status_code=429,
                headers=refused.headers,
            )
        secret = form.get("key", "").strip()
        who = runtime.keyring.resolve(secret) if secret else None
        if who is None:
            if secret:
                limit.failed(address, "login")
            return login_form(request, next_url, error="Unknown API key.", status_code=401)
        limit.succeeded(address)
        if who.scope != "admin":
            return login_form(
                request,
                next_url,
                error=f"Key {who.name!r} has scope {who.scope!r}: only admin keys can log in "
                "to the dashboard.",
                status_code=403,
            )
        store = session_store(runtime)
        previous = request.cookies.get(SESSION_COOKIE)
        if previous:
            await store.delete(previous)  # a login never reuses or keeps an older session
        session_id, _ = await store.create(who.name, runtime.keyring.session_binding(who))
        response = RedirectResponse(next_url, status_code=303, headers=SECURITY_HEADERS)
        set_cookie(request, response, SESSION_COOKIE, session_id, runtime.settings.ui_session_ttl_s)
        clear_cookie(request, response, LOGIN_COOKIE)
        return response

    @router.post("/logout", name="ui_logout")
    async def logout(request: Request, session: UISessionDep) -> Response:
        runtime: Runtime = request.app.state.runtime
        check_csrf(session, await read_form(request))
        await session_store(runtime).delete(session.session_id)
        response = RedirectResponse("/ui/login", status_code=303, headers=SECURITY_HEADERS)
        clear_cookie(request, response, SESSION_COOKIE)
        return response


def _limit(runtime: Runtime) -> FailedAuthLimit:
    if runtime.auth_limit is None:
        raise RuntimeError(
            "no failed-authentication limit: the runtime was not built by create_app"
        )
    return runtime.auth_limit
