"""``helpdesk staff add/list/disable`` and ``reports validate``, run in this process on a
migrated SQLite file (a new ``helpdesk`` process costs seconds of imports)."""

from pathlib import Path

from sqlalchemy import select
from typer.testing import Result

from core.models import Report, StaffUser
from tests.desk.conftest import Desk, sign_in
from tests.helpers import make_report, run_helpdesk


async def helpdesk(desk: Desk, *args: str, stdin: str = "") -> Result:
    return await run_helpdesk(desk.services.settings, *args, stdin=stdin)


async def test_first_admin_from_the_command_line_signs_in_and_is_disabled(
    sqlite_desk: Desk, tmp_path: Path
) -> None:
    added = await helpdesk(
        sqlite_desk,
        "staff", "add", "--role", "admin", "--username", "Mina", "--name", "Mina Rai",
        "--password-stdin",
        stdin="a long admin password\n",
    )  # fmt: skip
    listed = await helpdesk(sqlite_desk, "staff", "list")
    async with sqlite_desk.client() as client:
        signed = await sign_in(client, "mina", "a long admin password")
    disabled = await helpdesk(sqlite_desk, "staff", "disable", "mina")

    assert added.exit_code == 0, added.output
    assert "staff user mina (admin) created" in added.output
    assert "mina" in listed.output and "Mina Rai" in listed.output and "active" in listed.output
    assert signed.status_code == 303
    assert disabled.exit_code == 0
    async with sqlite_desk.services.db.session() as session:
        user = await session.scalar(select(StaffUser))
    assert user is not None and not user.active
    assert user.password_hash.startswith("$argon2id$")


async def test_a_short_password_or_unknown_role_is_refused(sqlite_desk: Desk) -> None:
    short = await helpdesk(
        sqlite_desk, "staff", "add", "--username", "a", "--name", "A", "--password-stdin",
        stdin="short\n",
    )  # fmt: skip
    role = await helpdesk(
        sqlite_desk, "staff", "add", "--username", "a", "--name", "A", "--role", "boss",
        "--password-stdin", stdin="a long enough password\n",
    )  # fmt: skip

    assert short.exit_code == 1 and "at least 10 characters" in short.output
    assert role.exit_code == 1 and "role is one of" in role.output


async def test_reports_validate_applies_the_desk_s_rule(sqlite_desk: Desk) -> None:
    report = await make_report(sqlite_desk.services)

    empty = await helpdesk(
        sqlite_desk, "reports", "validate", report.reference, "--summary", " ", "--language", "ne"
    )
    done = await helpdesk(
        sqlite_desk,
        "reports",
        "validate",
        report.reference,
        "--summary",
        "पानी",
        "--language",
        "ne",
    )

    assert empty.exit_code == 1 and "the summary is empty" in empty.output
    assert done.exit_code == 0, done.output
    async with sqlite_desk.services.db.session() as session:
        stored = await session.get_one(Report, report.id)
    assert stored.status == "validated" and stored.summary == {"ne": "पानी"}
