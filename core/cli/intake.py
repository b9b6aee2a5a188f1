"""Commands about CFAs and what they report: invites, the list of CFAs, reports, and the
terminal chat.
"""

import asyncio
import re
import secrets
from datetime import timedelta
from typing import Annotated
from urllib.parse import quote

import typer
from sqlalchemy import func, select

from bot import store
from bot.prompts import STATUS_LABELS
from core import review
from core.cli.common import fail, run
from core.config import get_settings
from core.db import utcnow
from core.errors import HelpdeskError
from core.figures import programme_timezone
from core.models import Cfa, ChannelIdentity, Invite, Report
from core.services import Services
from scheduler.reminders import MissingCfa, local_month, missing_cfas

cfa_app = typer.Typer(help="Community Frontline Associates.", no_args_is_help=True)
reports_app = typer.Typer(help="Reports sent by CFAs.", no_args_is_help=True)

INVITE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


@cfa_app.command("invite")
def cfa_invite(
    community: Annotated[
        str | None, typer.Option(help="Community code, e.g. dhading-gajuri-3")
    ] = None,
    language: Annotated[str | None, typer.Option(help="The CFA's language, e.g. ne")] = None,
    name: Annotated[str | None, typer.Option(help="The CFA's name, if known")] = None,
    role: Annotated[
        str, typer.Option(help="reporter, or journalist (may /record bulletins)")
    ] = "reporter",
    cfa: Annotated[
        int | None,
        typer.Option("--cfa", help="An existing CFA's id: invite them to link another channel"),
    ] = None,
) -> None:
    """Create a one-time invite and print the links that register a CFA (or, with
    --cfa, that add a second channel to one already registered)."""
    settings = get_settings()
    if cfa is None and (community is None or language is None):
        fail("give --community and --language for a new CFA, or --cfa ID to link a channel")
    if cfa is not None and (community or language or name):
        fail("--cfa links a channel to an existing CFA; it takes no community, language or name")
    code = "".join(secrets.choice(INVITE_ALPHABET) for _ in range(10))
    valid_for = timedelta(days=settings.invite_valid_days)

    async def work(services: Services) -> Invite:
        async with services.db.session() as session:
            if cfa is not None:
                return await store.create_link_invite(
                    session, cfa_id=cfa, code=code, valid_for=valid_for
                )
            assert community is not None and language is not None
            wanted = language.strip().lower()
            if wanted not in services.deployment.languages:
                raise HelpdeskError(
                    f"language '{wanted}' is not one of the deployment's: "
                    f"{', '.join(services.deployment.languages)}"
                )
            return await store.create_invite(
                session,
                community=community,
                language=wanted,
                code=code,
                valid_for=valid_for,
                name=(name or "").strip() or None,
                role=role,
            )

    invite = run(work)
    username = settings.telegram_bot_username or "<your_bot_username>"
    typer.echo(f"invite code: {invite.code} (valid {settings.invite_valid_days} days)")
    if cfa is not None:
        typer.echo(f"for CFA:     {cfa} ({invite.name}), to link another channel")
    typer.echo(f"Telegram:    https://t.me/{username}?start={invite.code}")
    typer.echo(f"WhatsApp:    {whatsapp_link(settings.whatsapp_business_number, invite.code)}")
    typer.echo(f"terminal:    .venv/bin/helpdesk chat --cfa {invite.code}")


def whatsapp_link(business_number: str | None, code: str) -> str:
    """A ``wa.me`` link that opens a chat with the business number with the invite as
    the first message (``/start CODE``, read like Telegram's deep link)."""
    number = re.sub(r"\D", "", business_number or "") or "<your_whatsapp_number>"
    return f"https://wa.me/{number}?text={quote(f'/start {code}')}"


@cfa_app.command("list")
def cfa_list() -> None:
    """List registered CFAs with their community, language and channels."""

    async def work(services: Services) -> list[tuple[Cfa, list[str]]]:
        async with services.db.session() as session:
            cfas = (await session.scalars(select(Cfa).order_by(Cfa.id))).unique().all()
            rows = []
            for cfa in cfas:
                channels = await session.scalars(
                    select(ChannelIdentity.channel).where(ChannelIdentity.cfa_id == cfa.id)
                )
                rows.append((cfa, sorted(set(channels))))
            return rows

    rows = run(work)
    if not rows:
        typer.echo("no CFAs yet: create an invite with helpdesk cfa invite")
        return
    typer.echo(f"{'id':>4}  {'name':<24} {'community':<24} {'lng':<3} {'status':<8} channels")
    for cfa, channels in rows:
        typer.echo(
            f"{cfa.id:>4}  {cfa.name:<24} {cfa.community.code:<24} {cfa.language:<3} "
            f"{cfa.status:<8} {','.join(channels)}"
        )


@cfa_app.command("missing")
def cfa_missing(
    month: Annotated[
        str | None, typer.Option(help="YYYY-MM; default: this month in the reminders' zone")
    ] = None,
    survey: Annotated[
        str | None, typer.Option(help="Survey id; default: the reminded one")
    ] = None,
) -> None:
    """CFAs who have not answered the month's survey (whom the reminders go to)."""
    if month is not None and not re.fullmatch(r"(19|20|21)\d\d-(0[1-9]|1[0-2])", month):
        fail(f"month '{month}' is not a month from 1900 to 2199 written YYYY-MM, e.g. 2026-12")

    async def work(services: Services) -> tuple[str, str, list[MissingCfa]]:
        reminders = services.deployment.config.reminders
        # The same months as the desk's compliance figures count.
        zone = programme_timezone(services.deployment)
        survey_id = survey or (reminders.survey if reminders else "monthly")
        if survey_id not in services.deployment.surveys:
            raise HelpdeskError(f"no survey '{survey_id}' in the deployment")
        wanted = month or local_month(utcnow(), zone)
        async with services.db.session() as session:
            return survey_id, wanted, await missing_cfas(session, survey_id, wanted, zone)

    survey_id, wanted, missing = run(work)
    if not missing:
        typer.echo(f"every active CFA has answered {survey_id} for {wanted}")
        return
    typer.echo(f"{len(missing)} CFAs have not answered {survey_id} for {wanted}:")
    for entry in missing:
        cfa = entry.cfa
        last = f"{entry.last_answered:%Y-%m-%d}" if entry.last_answered else "never"
        note = "  (opted out of reminders)" if cfa.opted_out_at else ""
        typer.echo(
            f"{cfa.id:>4}  {cfa.name:<24} {cfa.community.code:<24} {cfa.language:<3} "
            f"last answered {last}{note}"
        )


@reports_app.command("list")
def reports_list(
    status: Annotated[str | None, typer.Option(help="Only this status, e.g. received")] = None,
    limit: int = 50,
) -> None:
    """List reports, newest first: reference, community, category, status, submitted."""
    if status is not None and status not in STATUS_LABELS:
        fail(f"unknown status '{status}'; one of: {', '.join(STATUS_LABELS)}")

    async def work(services: Services) -> list[Report]:
        async with services.db.session() as session:
            query = select(Report).order_by(Report.submitted_at.desc()).limit(limit)
            if status:
                query = query.where(Report.status == status)
            return list((await session.scalars(query)).unique().all())

    reports = run(work)
    if not reports:
        typer.echo(f"no reports with status {status}" if status else "no reports yet")
        return
    typer.echo(f"{'reference':<15} {'community':<24} {'category':<18} {'status':<10} submitted")
    for report in reports:
        submitted = report.submitted_at.strftime("%Y-%m-%d %H:%M UTC")
        typer.echo(
            f"{report.reference}  {report.community.code:<24} {report.category:<18} "
            f"{report.status:<10} {submitted}"
        )


def chat(cfa: Annotated[str, typer.Option(help="A CFA's name or id, or an invite code")]) -> None:
    """Walk the conversation in this terminal, on the same engine as the chat bots."""
    from bot.channels.base import read_typed
    from bot.channels.terminal import TerminalChat

    # One event loop for the whole chat; input is read between its runs (see TerminalChat).
    with asyncio.Runner() as runner:
        services = Services.build(get_settings())
        try:
            runner.run(services.sync_content())
            address, first = runner.run(_terminal_identity(services, cfa))
            terminal = TerminalChat(services.engine, address, services.settings.resolved_media_dir)
            terminal.run(runner, read_typed(first))
        except HelpdeskError as error:
            fail(str(error))
        finally:
            runner.run(services.close())


async def _terminal_identity(services: Services, wanted: str) -> tuple[str, str]:
    """The terminal address for ``wanted`` and the first message to send on it."""
    async with services.db.session() as session:
        invite = await session.scalar(
            select(Invite).where(func.upper(Invite.code) == wanted.strip().upper())
        )
        if invite is not None and invite.used_at is None:
            return f"invite-{invite.code}", f"/start {invite.code}"

        query = select(Cfa).where(func.lower(Cfa.name) == wanted.strip().lower())
        if wanted.strip().isdigit():
            query = select(Cfa).where(Cfa.id == int(wanted))
        matches = (await session.scalars(query)).unique().all()
        if invite is not None and invite.cfa_id is not None:
            matches = [await session.get_one(Cfa, invite.cfa_id)]
        if len(matches) != 1:
            problem = "several CFAs have that name; use the id" if matches else "no such CFA"
            raise HelpdeskError(f"{problem}: {wanted} (see helpdesk cfa list)")

        address = f"cfa-{matches[0].id}"
        if await store.find_cfa(session, "terminal", address) is None:
            session.add(ChannelIdentity(cfa_id=matches[0].id, channel="terminal", address=address))
        return address, "/start"


@reports_app.command("validate")
def reports_validate(
    reference: str,
    summary: Annotated[str, typer.Option(help="The editor's summary, as it may go on air")],
    language: Annotated[str, typer.Option(help="The summary's language, e.g. ne")],
) -> None:
    """Mark a report validated with an editor's summary (one per language; run again to
    add another). The desk's review queue applies the same rule (core.review)."""

    async def work(services: Services) -> Report:
        async with services.db.session() as session:
            report = await review.find_report(session, reference)
            return await review.validate(
                session, services.deployment, report, {language: summary}, staff_user_id=None
            )

    report = run(work)
    note = " (sensitive: left out of bulletins unless added by hand)" if report.sensitive else ""
    typer.echo(f"{report.reference} validated; summary in {', '.join(report.summary or {})}{note}")
