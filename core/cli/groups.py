"""Commands about community groups: list them, approve a group for its communities and
language, or reject it. Telegram groups register themselves by adding the bot; WhatsApp
numbers that agreed to receive bulletins are added by staff."""

from typing import Annotated

import typer

from core import groups
from core.cli.common import run
from core.models import Recipient
from core.services import Services

group_app = typer.Typer(
    help="Community groups and channels that receive bulletins.", no_args_is_help=True
)


@group_app.command("list")
def group_list(
    status: Annotated[
        str | None, typer.Option(help=f"Only this status: {', '.join(groups.STATUSES)}")
    ] = None,
) -> None:
    """List groups in the order they registered: id, status, kind, chat, settings, title."""

    async def work(services: Services) -> list[tuple[Recipient, str | None]]:
        async with services.db.session() as session:
            rows = await groups.listing(session, status)
            return [(row, await groups.station_code(session, row)) for row in rows]

    rows = run(work)
    if not rows:
        typer.echo(f"no {status} groups" if status else "no groups yet: add the bot to one")
        return
    typer.echo(
        f"{'id':>4}  {'status':<9} {'kind':<10} {'chat':<16} {'lng':<3} "
        f"{'communities':<28} {'station':<14} title"
    )
    for recipient, station in rows:
        typer.echo(
            f"{recipient.id:>4}  {recipient.status:<9} {recipient.kind:<10} "
            f"{recipient.address:<16} {recipient.language or '-':<3} "
            f"{','.join(recipient.communities) or '-':<28} {station or '-':<14} "
            f"{recipient.title}"
        )


@group_app.command("add-whatsapp")
def group_add_whatsapp(
    number: Annotated[str, typer.Argument(help="International number, e.g. +9779801234567")],
    title: Annotated[str, typer.Option(help="Who it is, for staff, e.g. 'Ward 4 chair'")],
) -> None:
    """Add a WhatsApp number that agreed to receive bulletins; approve it like a group."""

    async def work(services: Services) -> Recipient:
        async with services.db.session() as session:
            return await groups.register_number(session, number, title)

    recipient = run(work)
    typer.echo(
        f"whatsapp {recipient.address} is recipient {recipient.id} ({recipient.status}); "
        f"approve it with: helpdesk group approve {recipient.id} --community C --language L"
    )


@group_app.command("approve")
def group_approve(
    recipient_id: Annotated[int, typer.Argument(help="The group's id, as `group list` prints it")],
    community: Annotated[
        list[str], typer.Option(help="A community the group belongs to; repeat for several")
    ],
    language: Annotated[str, typer.Option(help="The language of its bulletins, e.g. ne")],
    station: Annotated[
        str | None, typer.Option(help="A station's code, when this is the station's own chat")
    ] = None,
) -> None:
    """Let a group receive the bulletins of its communities in one language."""

    async def work(services: Services) -> Recipient:
        async with services.db.session() as session:
            return await groups.approve(
                session, recipient_id, community, language.strip().lower(), station
            )

    recipient = run(work)
    linked = f", station {station}" if station else ""
    typer.echo(
        f"group {recipient.id} ({recipient.title}) approved: "
        f"{', '.join(recipient.communities)} in {recipient.language}{linked}"
    )


@group_app.command("reject")
def group_reject(
    recipient_id: Annotated[int, typer.Argument(help="The group's id, as `group list` prints it")],
    reason: Annotated[str, typer.Option(help="Why, for whoever looks at this group next")],
) -> None:
    """Refuse a group: it gets nothing, and adding the bot again does not reopen it."""

    async def work(services: Services) -> Recipient:
        async with services.db.session() as session:
            return await groups.reject(session, recipient_id, reason)

    recipient = run(work)
    typer.echo(f"group {recipient.id} ({recipient.title}) rejected: {recipient.status_reason}")
