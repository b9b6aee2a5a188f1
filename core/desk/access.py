"""Signing in and out of the desk.

The sign-in form has no session to tie a CSRF token to yet, so it uses a double-submit
token instead: a random value in a short-lived cookie and in the form, which a page on
another site cannot read or set.
"""

import hmac
import logging
import secrets

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from core.desk.auth import (
    COOKIE,
    LOGIN_CSRF_COOKIE,
    Viewer,
    authenticate,
    client_address,
    close_session,
    lock_user,
    open_session,
    set_session_cookie,
    throttled,
)
from core.desk.templating import render
from core.services import Services

logger = logging.getLogger(__name__)

router = APIRouter()


@router.get("/", include_in_schema=False)
async def home(user: Viewer) -> RedirectResponse:
    """The site's root leads to the review queue."""
    return RedirectResponse("/desk/", status_code=303)


@router.get("/desk/login", response_class=HTMLResponse)
async def login_page(request: Request, next: str = "/desk/") -> Response:
    """The sign-in form."""
    return _login_form(request, next=next)


@router.post("/desk/login", response_class=HTMLResponse)
async def login(
    request: Request,
    username: str = Form(""),
    password: str = Form(""),
    csrf: str = Form(""),
    next: str = Form("/desk/"),
) -> Response:
    """Check the credentials; on success start a session and go where the user was going."""
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(csrf.encode(), expected.encode()):
        logger.warning("sign-in form from %s refused: csrf mismatch", client_address(request))
        return _login_form(request, next=next, error="The form expired; please try again.")

    services: Services = request.app.state.services
    client = client_address(request)
    name = username.strip().lower()
    async with services.db.session() as session:
        lock = await throttled(session, name, client)
        if lock is None:
            user = await authenticate(session, name, password, client)
            session_id = await open_session(session, user) if user else None
            lock = None if user else await throttled(session, name, client)
            if lock is not None:
                await lock_user(session, name, lock.until)

    if lock is not None:
        when = lock.until.strftime("%H:%M UTC on %d %B")
        error = f"Sign-in is locked: {lock.reason}. It unlocks at {when}."
        return _login_form(request, next=next, username=name, error=error, status=429)
    if session_id is None:
        error = "Wrong username or password, or the account is disabled."
        return _login_form(request, next=next, username=name, error=error, status=401)

    response = RedirectResponse(_safe_next(next), status_code=303)
    set_session_cookie(response, request, session_id)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/desk/login")
    return response


@router.post("/desk/logout")
async def logout(request: Request, user: Viewer) -> Response:
    """End the session and go back to the sign-in page."""
    services: Services = request.app.state.services
    async with services.db.session() as session:
        await close_session(session, request.cookies.get(COOKIE, ""))
    logger.info("staff user %s signed out", user.username)

    response = RedirectResponse("/desk/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


def _login_form(
    request: Request,
    *,
    next: str,
    username: str = "",
    error: str | None = None,
    status: int = 200,
) -> Response:
    token = secrets.token_urlsafe(32)
    request.state.login_csrf = token
    context = {"next": _safe_next(next), "username": username, "error": error}
    response = render(request, "login.html", context, status=status)
    response.set_cookie(
        LOGIN_CSRF_COOKIE, token, max_age=3600, httponly=True, samesite="lax", path="/desk/login"
    )
    return response


def _safe_next(wanted: str) -> str:
    # Only a path on this site: "//host" or "https://host" would send the user away.
    if wanted.startswith("/desk") and not wanted.startswith("//"):
        return wanted
    return "/desk/"
