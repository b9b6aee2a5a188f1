"""Commands about staff accounts of the desk: add, list, disable.

The first admin is made here (the desk cannot make one before anyone can sign in);
later accounts can be made here or on the desk's staff page.
"""

import sys
from typing import Annotated

import typer
from sqlalchemy import select

from core.cli.common import fail, run
from core.desk.auth import (
    ROLES,
    USERNAME_RULE,
    AccessError,
    check_password_rules,
    create_user,
    disable_user,
)
from core.models import StaffUser
from core.services import Services

staff_app = typer.Typer(help="Staff accounts of the desk.", no_args_is_help=True)


@staff_app.command("add")
def staff_add(
    username: Annotated[
        str, typer.Option(help=f"What they sign in with, e.g. asha: {USERNAME_RULE}")
    ],
    name: Annotated[str, typer.Option(help="Their full name, shown on the desk")],
    role: Annotated[str, typer.Option(help=f"One of: {', '.join(ROLES)}")] = "editor",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input")
    ] = False,
) -> None:
    """Create a staff account; the password is asked twice unless given on stdin."""
    if role not in ROLES:
        fail(f"role is one of {', '.join(ROLES)}, not '{role}'")
    password = _read_password(password_stdin)

    async def work(services: Services) -> StaffUser:
        async with services.db.session() as session:
            return await create_user(
                session, username=username, name=name, role=role, password=password
            )

    user = run(work)
    typer.echo(f"staff user {user.username} ({user.role}) created; sign in at /desk/login")


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    try:
        check_password_rules(password)
    except AccessError as error:
        fail(str(error))
    return password


@staff_app.command("list")
def staff_list() -> None:
    """List staff accounts: username, role, whether active, last sign-in."""

    async def work(services: Services) -> list[StaffUser]:
        async with services.db.session() as session:
            return list(await session.scalars(select(StaffUser).order_by(StaffUser.username)))

    users = run(work)
    if not users:
        typer.echo("no staff accounts yet: create an admin with helpdesk staff add --role admin")
        return
    typer.echo(f"{'username':<20} {'role':<7} {'state':<9} {'last sign-in':<17} name")
    for user in users:
        state = "active" if user.active else "disabled"
        last = f"{user.last_login_at:%Y-%m-%d %H:%M}" if user.last_login_at else "never"
        typer.echo(f"{user.username:<20} {user.role:<7} {state:<9} {last:<17} {user.name}")


@staff_app.command("disable")
def staff_disable(username: str) -> None:
    """Disable an account: it can no longer sign in, and its open sessions end."""

    async def work(services: Services) -> StaffUser:
        async with services.db.session() as session:
            return await disable_user(session, username)

    user = run(work)
    typer.echo(f"staff user {user.username} disabled; their sessions are ended")
