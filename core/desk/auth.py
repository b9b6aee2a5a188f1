"""Who may use the staff desk: staff accounts, passwords, sessions, roles and CSRF.

A signed-in browser holds a random session id in an ``HttpOnly`` cookie; the database
keeps only its SHA-256 (:class:`core.models.StaffSession`), so a copy of the database
cannot sign anyone in. Each session has its own CSRF token, which every form carries and
every POST of a signed-in page is checked against (:func:`require_user` does it).

Roles, from most to least trusted::

    admin   everything an editor may, and staff accounts
    editor  validate reports, follow issues, compose bulletins
    viewer  read-only, anonymised: no CFA names, numbers, chat ids or raw answers

Sign-in is throttled from :class:`core.models.LoginAttempt`: a username with too many
recent failures is locked for a while (whether the account exists or not, so a lock
tells nobody which usernames are real), and so is a client address that keeps failing.
"""

import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Depends, HTTPException, Request, Response
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import utcnow
from core.errors import HelpdeskError
from core.models import LoginAttempt, StaffSession, StaffUser
from core.services import Services

logger = logging.getLogger(__name__)

ROLES = ("viewer", "editor", "admin")
COOKIE = "helpdesk_session"
LOGIN_CSRF_COOKIE = "helpdesk_login_csrf"
CSRF_FIELD = "csrf"
LOGIN_PATH = "/desk/login"
SESSION_LIFETIME = timedelta(hours=12)
# Writing last_seen_at on every request would make each page view a write on SQLite.
SEEN_EVERY = timedelta(minutes=5)
THROTTLE_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_USERNAME = 5
ATTEMPTS_KEPT = timedelta(days=90)
# Higher than one person's limit: an office may share one address behind its router.
MAX_FAILURES_PER_CLIENT = 20
MIN_PASSWORD_LENGTH = 10
# A username is one segment of the desk's paths (/desk/staff/NAME/disable) and a word on
# the command line: "/", "?", "#" or a space in it broke the staff page's Disable form.
USERNAME_PATTERN = re.compile(r"[a-z0-9._-]{2,64}")
USERNAME_RULE = "2 to 64 letters, digits, '.', '_' or '-' (no spaces or other signs)"

_hasher = PasswordHasher()
# Verified against when the username is unknown, so both cases take as long.
_DUMMY_HASH = _hasher.hash("not a password of anyone")


class AccessError(HelpdeskError):
    """A staff account cannot be created or changed as asked."""


class Forbidden(Exception):
    """The signed-in user's role is too low for the page; shown as a 403 page."""

    def __init__(self, user: StaffUser, needed: str) -> None:
        super().__init__(f"{user.username} is {user.role}; this needs {needed}")
        self.user = user
        self.needed = needed


@dataclass(frozen=True)
class Throttle:
    """Why a sign-in is refused before the password is even checked, and until when."""

    reason: str
    until: datetime


# Accounts -----------------------------------------------------------------------------


def hash_password(password: str) -> str:
    """An argon2id hash of ``password``, as :class:`StaffUser` stores it."""
    return _hasher.hash(password)


def normal_username(username: str) -> str:
    """``username`` as accounts store it (trimmed, lowercase) once it is checked.

    Raises:
        AccessError: it is outside :data:`USERNAME_PATTERN`.
    """
    normal = username.strip().lower()
    if not USERNAME_PATTERN.fullmatch(normal):
        raise AccessError(f"a username is {USERNAME_RULE}, not '{username}'")
    return normal


def check_password_rules(password: str) -> None:
    """Raise :class:`AccessError` when ``password`` is too weak to accept."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccessError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")


async def create_user(
    session: AsyncSession, *, username: str, name: str, role: str, password: str
) -> StaffUser:
    """Add a staff account.

    Raises:
        AccessError: unknown role, a username outside :data:`USERNAME_PATTERN` or taken,
            an empty name or a weak password.
    """
    if role not in ROLES:
        raise AccessError(f"role is one of {', '.join(ROLES)}, not '{role}'")
    if not username.strip() or not name.strip():
        raise AccessError("a staff account needs a username and a name")
    username = normal_username(username)
    check_password_rules(password)
    if await session.scalar(select(StaffUser).where(StaffUser.username == username)):
        raise AccessError(f"the username '{username}' is taken")

    user = StaffUser(
        username=username, name=name.strip(), role=role, password_hash=hash_password(password)
    )
    session.add(user)
    await session.flush()
    logger.info("staff user %s (%s) created as %s", user.id, username, role)
    return user


async def disable_user(session: AsyncSession, username: str) -> StaffUser:
    """Disable an account and end its sessions.

    Raises:
        AccessError: no such account.
    """
    user = await session.scalar(
        select(StaffUser).where(StaffUser.username == username.strip().lower())
    )
    if user is None:
        raise AccessError(f"no staff user '{username}'")
    user.active = False
    await session.execute(delete(StaffSession).where(StaffSession.user_id == user.id))
    logger.info("staff user %s (%s) disabled, sessions ended", user.id, user.username)
    return user


def has_role(user: StaffUser, needed: str) -> bool:
    """Whether ``user``'s role is ``needed`` or a more trusted one."""
    return ROLES.index(user.role) >= ROLES.index(needed)


# Signing in ---------------------------------------------------------------------------


async def throttled(session: AsyncSession, username: str, client: str | None) -> Throttle | None:
    """Whether sign-in for ``username`` from ``client`` is locked now, and until when."""
    since = utcnow() - THROTTLE_WINDOW
    failures = select(LoginAttempt.attempted_at).where(
        LoginAttempt.succeeded.is_(False), LoginAttempt.attempted_at > since
    )

    # A success clears the username's count: only failures after it are held against it.
    last_success = await session.scalar(
        select(func.max(LoginAttempt.attempted_at)).where(
            LoginAttempt.username == username, LoginAttempt.succeeded.is_(True)
        )
    )
    by_name = failures.where(LoginAttempt.username == username)
    if last_success is not None:
        by_name = by_name.where(LoginAttempt.attempted_at > last_success)
    named = await _times(session, by_name)
    if len(named) >= MAX_FAILURES_PER_USERNAME:
        until = named[-MAX_FAILURES_PER_USERNAME] + THROTTLE_WINDOW
        return Throttle(f"too many failed sign-ins for '{username}'", until)

    if client is not None:
        from_client = await _times(session, failures.where(LoginAttempt.client == client))
        if len(from_client) >= MAX_FAILURES_PER_CLIENT:
            until = from_client[-MAX_FAILURES_PER_CLIENT] + THROTTLE_WINDOW
            return Throttle("too many failed sign-ins from this address", until)
    return None


async def _times(session: AsyncSession, query: Any) -> list[datetime]:
    return list(await session.scalars(query.order_by(LoginAttempt.attempted_at)))


async def authenticate(
    session: AsyncSession, username: str, password: str, client: str | None
) -> StaffUser | None:
    """Check a sign-in and record the attempt; the user, or None when it failed.

    The caller checks :func:`throttled` first; a locked username is not tried at all.
    """
    username = username.strip().lower()
    user = await session.scalar(select(StaffUser).where(StaffUser.username == username))
    valid = _verify(user.password_hash if user else _DUMMY_HASH, password)
    succeeded = bool(user is not None and user.active and valid)

    session.add(LoginAttempt(username=username[:120], client=client, succeeded=succeeded))
    await _forget_old_attempts(session)
    if user is not None and succeeded:
        user.failed_logins = 0
        user.locked_until = None
        user.last_login_at = utcnow()
    elif user is not None:
        user.failed_logins += 1
    logger.info("sign-in of %r from %s: %s", username, client, "ok" if succeeded else "failed")
    return user if succeeded else None


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def _forget_old_attempts(session: AsyncSession) -> None:
    # Kept a while as a record of who signed in from where; the throttle needs 15 minutes.
    await session.execute(
        delete(LoginAttempt).where(LoginAttempt.attempted_at < utcnow() - ATTEMPTS_KEPT)
    )


async def lock_user(session: AsyncSession, username: str, until: datetime) -> None:
    """Note on the account (if there is one) until when it is locked, for staff list."""
    user = await session.scalar(select(StaffUser).where(StaffUser.username == username))
    if user is not None and user.locked_until != until:
        user.locked_until = until
        logger.warning("staff user %s locked until %s", user.username, until.isoformat())


# Sessions -----------------------------------------------------------------------------


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


async def open_session(session: AsyncSession, user: StaffUser) -> str:
    """Start a browser session for ``user``; returns the id to put in the cookie."""
    session_id = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(
        StaffSession(
            id_hash=_digest(session_id),
            user_id=user.id,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            last_seen_at=now,
            expires_at=now + SESSION_LIFETIME,
        )
    )
    # Expired sessions of anyone go at each sign-in: they are useless and small.
    await session.execute(delete(StaffSession).where(StaffSession.expires_at < now))
    return session_id


async def close_session(session: AsyncSession, session_id: str) -> None:
    """End the session whose cookie holds ``session_id`` (sign out)."""
    await session.execute(delete(StaffSession).where(StaffSession.id_hash == _digest(session_id)))


async def find_session(session: AsyncSession, session_id: str) -> StaffSession | None:
    """The live session of an active user for the cookie's id, or None."""
    found = await session.scalar(
        select(StaffSession).where(StaffSession.id_hash == _digest(session_id))
    )
    now = utcnow()
    if found is None or found.expires_at <= now or not found.user.active:
        return None
    if now - found.last_seen_at > SEEN_EVERY:
        found.last_seen_at = now
    return found


def set_session_cookie(response: Response, request: Request, session_id: str) -> None:
    """Put the session id in the cookie: HttpOnly, SameSite=Lax, Secure over https."""
    response.set_cookie(
        COOKIE,
        session_id,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        path="/",
    )


def _secure(request: Request) -> bool:
    services: Services = request.app.state.services
    return services.settings.public_url.startswith("https://")


def client_address(request: Request) -> str | None:
    """The address a request came from, as the throttle counts it."""
    return request.client.host[:64] if request.client else None


# Dependencies -------------------------------------------------------------------------


async def require_user(request: Request) -> StaffUser:
    """FastAPI dependency: the signed-in user, with the CSRF token checked on a POST.

    Raises:
        HTTPException: 303 to the sign-in page when there is no live session, 403 when a
            POST's CSRF token is missing or wrong.
    """
    staff_session = await _live_session(request)
    if staff_session is None:
        raise HTTPException(303, "sign in first", headers={"Location": _login_url(request)})
    request.state.staff_session = staff_session
    request.state.user = staff_session.user

    if request.method == "POST":
        await verify_csrf(request)
    return staff_session.user


async def _live_session(request: Request) -> StaffSession | None:
    session_id = request.cookies.get(COOKIE)
    if not session_id:
        return None
    services: Services = request.app.state.services
    async with services.db.session() as session:
        return await find_session(session, session_id)


def _login_url(request: Request) -> str:
    wanted = request.url.path if request.method == "GET" else "/desk/"
    return f"{LOGIN_PATH}?next={wanted}"


def require_role(role: str) -> Callable[[Request], Awaitable[StaffUser]]:
    """FastAPI dependency factory: the signed-in user if their role is ``role`` or above.

    Raises:
        HTTPException: as :func:`require_user`.
        Forbidden: the role is too low (shown as a 403 page).
    """
    if role not in ROLES:
        raise ValueError(f"role is one of {', '.join(ROLES)}, not '{role}'")

    async def dependency(request: Request) -> StaffUser:
        user = await require_user(request)
        if not has_role(user, role):
            logger.warning(
                "%s (%s) refused %s: needs %s", user.username, user.role, request.url.path, role
            )
            raise Forbidden(user, role)
        return user

    dependency.__name__ = f"require_{role}"
    return dependency


async def verify_csrf(request: Request) -> None:
    """Check the form's CSRF token against the signed-in session's.

    Raises:
        HTTPException: 403 when it is missing or does not match.
    """
    staff_session: StaffSession = request.state.staff_session
    form = await request.form()
    given = str(form.get(CSRF_FIELD, ""))
    if not hmac.compare_digest(given.encode(), staff_session.csrf_token.encode()):
        logger.warning(
            "csrf refused for staff user %s on %s", staff_session.user_id, request.url.path
        )
        raise HTTPException(403, "the form is out of date or not from this desk; reload the page")


def csrf_token(request: Request) -> str:
    """The CSRF token to put in a form's hidden ``csrf`` field (templates call this)."""
    staff_session: StaffSession | None = getattr(request.state, "staff_session", None)
    if staff_session is not None:
        return staff_session.csrf_token
    return str(getattr(request.state, "login_csrf", ""))


async def count_sessions(session: AsyncSession, user_id: int) -> int:
    """How many live sessions a user has (for the staff page)."""
    count = await session.scalar(
        select(func.count())
        .select_from(StaffSession)
        .where(StaffSession.user_id == user_id, StaffSession.expires_at > utcnow())
    )
    return int(count or 0)


# The signed-in user of each least role, for route signatures: ``user: Editor``.
Viewer = Annotated[StaffUser, Depends(require_user)]
Editor = Annotated[StaffUser, Depends(require_role("editor"))]
Admin = Annotated[StaffUser, Depends(require_role("admin"))]
