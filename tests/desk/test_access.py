"""Signing in and out, sessions, CSRF and throttling, on the real app and database."""

import hashlib
import re
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update

from core.config import PROJECT_ROOT
from core.db import utcnow
from core.models import LoginAttempt, StaffSession
from tests.desk.conftest import PASSWORD, Desk, _desk, csrf_of, desk_settings, sign_in


async def test_sign_in_stores_only_the_hash_of_the_session_id(desk: Desk) -> None:
    await desk.add_user("asha", "editor")
    async with desk.client() as client:
        response = await sign_in(client, "asha", PASSWORD)

        assert response.status_code == 303
        assert response.headers["location"] == "/desk/"
        cookie = response.headers["set-cookie"]
        assert "HttpOnly" in cookie and "samesite=lax" in cookie.lower()
        assert "Secure" not in cookie
        session_id = client.cookies["helpdesk_session"]
        async with desk.services.db.session() as session:
            stored = list(await session.scalars(select(StaffSession.id_hash)))
        assert stored == [hashlib.sha256(session_id.encode()).hexdigest()]
        assert (await client.get("/desk/")).status_code == 200


async def test_session_cookie_is_secure_when_the_public_url_is_https(
    sqlite_url: str, tmp_path: Path
) -> None:
    settings = desk_settings(sqlite_url, tmp_path, public_url="https://desk.example.org")
    async for desk in _desk(settings):
        await desk.add_user("asha", "editor")
        async with desk.client() as client:
            response = await sign_in(client, "asha", PASSWORD)
        assert "Secure" in response.headers["set-cookie"]


async def test_wrong_password_is_refused_and_recorded(sqlite_desk: Desk) -> None:
    await sqlite_desk.add_user("asha", "editor")
    async with sqlite_desk.client() as client:
        response = await sign_in(client, "asha", "not the password")

        assert response.status_code == 401
        assert "Wrong username or password" in response.text
        assert "helpdesk_session" not in client.cookies
    async with sqlite_desk.services.db.session() as session:
        attempts = list(await session.scalars(select(LoginAttempt)))
    assert [(a.username, a.client, a.succeeded) for a in attempts] == [
        ("asha", "127.0.0.1", False)
    ]


async def test_five_failures_lock_the_username_and_say_until_when(sqlite_desk: Desk) -> None:
    await sqlite_desk.add_user("asha", "editor")
    async with sqlite_desk.client() as client:
        for _ in range(4):
            assert (await sign_in(client, "asha", "wrong")).status_code == 401
        fifth = await sign_in(client, "asha", "wrong")
        right = await sign_in(client, "asha", PASSWORD)

    assert fifth.status_code == 429
    assert right.status_code == 429
    assert "Sign-in is locked: too many failed sign-ins for &#39;asha&#39;" in right.text
    assert "It unlocks at" in right.text and "UTC" in right.text


async def test_a_client_failing_on_many_usernames_is_locked(sqlite_desk: Desk) -> None:
    await sqlite_desk.add_user("asha", "editor")
    async with sqlite_desk.client() as client:
        for number in range(20):
            await sign_in(client, f"guess{number}", "wrong")
        response = await sign_in(client, "asha", PASSWORD)

    assert response.status_code == 429
    assert "too many failed sign-ins from this address" in response.text


async def test_a_success_clears_earlier_failures(sqlite_desk: Desk) -> None:
    await sqlite_desk.add_user("asha", "editor")
    async with sqlite_desk.client() as client:
        for _ in range(4):
            await sign_in(client, "asha", "wrong")
        assert (await sign_in(client, "asha", PASSWORD)).status_code == 303
        for _ in range(4):
            await sign_in(client, "asha", "wrong")
        assert (await sign_in(client, "asha", PASSWORD)).status_code == 303


async def test_sign_in_form_without_its_csrf_cookie_is_refused(sqlite_desk: Desk) -> None:
    await sqlite_desk.add_user("asha", "editor")
    async with sqlite_desk.client() as client:
        form = await client.get("/desk/login")
        client.cookies.clear()
        response = await client.post(
            "/desk/login",
            data={"username": "asha", "password": PASSWORD, "csrf": csrf_of(form.text)},
        )
    assert "The form expired" in response.text
    assert "helpdesk_session" not in response.headers.get("set-cookie", "")


async def test_a_post_without_the_session_csrf_token_is_refused(sqlite_desk: Desk) -> None:
    client = await sqlite_desk.signed_in("editor")
    missing = await client.post("/desk/issues", data={"title": "Broken pump"})
    wrong = await client.post("/desk/issues", data={"title": "Broken pump", "csrf": "x"})
    page = await client.get("/desk/issues")
    right = await client.post(
        "/desk/issues", data={"title": "Broken pump", "csrf": csrf_of(page.text)}
    )

    assert missing.status_code == 403 and wrong.status_code == 403
    assert right.status_code == 303


async def test_sign_out_ends_the_session_for_good(sqlite_desk: Desk) -> None:
    client = await sqlite_desk.signed_in("editor")
    session_id = client.cookies["helpdesk_session"]
    page = await client.get("/desk/")
    out = await client.post("/desk/logout", data={"csrf": csrf_of(page.text)})
    client.cookies.set("helpdesk_session", session_id)
    after = await client.get("/desk/")

    assert out.status_code == 303
    assert after.status_code == 303
    assert after.headers["location"].startswith("/desk/login")


async def test_disabling_a_user_ends_their_sessions(sqlite_desk: Desk) -> None:
    editor = await sqlite_desk.signed_in("editor")
    admin = await sqlite_desk.signed_in("admin")
    page = await admin.get("/desk/staff")
    disabled = await admin.post("/desk/staff/editor/disable", data={"csrf": csrf_of(page.text)})
    after = await editor.get("/desk/")

    assert disabled.status_code == 303
    assert after.status_code == 303


async def test_admin_adds_an_account_that_can_sign_in(sqlite_desk: Desk) -> None:
    admin = await sqlite_desk.signed_in("admin")
    page = await admin.get("/desk/staff")
    added = await admin.post(
        "/desk/staff",
        data={
            "username": "bina",
            "name": "Bina",
            "role": "viewer",
            "password": "a long first password",
            "csrf": csrf_of(page.text),
        },
    )
    async with sqlite_desk.client() as client:
        signed = await sign_in(client, "bina", "a long first password")
        queue = await client.get("/desk/")

    assert added.status_code == 303
    assert signed.status_code == 303
    assert "Bina (viewer)" in queue.text


async def test_an_expired_session_sends_the_browser_to_sign_in(sqlite_desk: Desk) -> None:
    client = await sqlite_desk.signed_in("editor")
    async with sqlite_desk.services.db.session() as session:
        await session.execute(
            update(StaffSession).values(expires_at=utcnow() - timedelta(seconds=1))
        )

    response = await client.get("/desk/issues")

    assert response.status_code == 303
    assert response.headers["location"] == "/desk/login?next=/desk/issues"


def test_no_code_updates_or_deletes_audit_entries() -> None:
    # The trail is append-only by construction: nothing but an insert may touch it.
    packages = ("core", "bot", "scheduler")
    sources = [p for name in packages for p in (PROJECT_ROOT / name).rglob("*.py")]
    changes = re.compile(r"(update|delete)\(\s*AuditEntry|AuditEntry\)\.(update|delete)")
    offenders = [str(p) for p in sources if changes.search(p.read_text(encoding="utf-8"))]
    assert offenders == []
