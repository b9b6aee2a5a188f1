"""Commands about CFAs and what they report: invites, the list of CFAs, reports, and the
terminal chat.
"""

import asyncio
import re
import secrets
from datetime import timedelta
from typing import Annotated

import typer
from sqlalchemy import func, select

from bot import store
from bot.prompts import STATUS_LABELS
from core.cli.common import fail, run
from core.config import get_settings
from core.db import utcnow
from core.errors import HelpdeskError
from core.models import Cfa, ChannelIdentity, Invite, Report
from core.services import Services
from scheduler.reminders import MissingCfa, local_month, missing_cfas

cfa_app = typer.Typer(help="Community Frontline Associates.", no_args_is_help=True)
reports_app = typer.Typer(help="Reports sent by CFAs.", no_args_is_help=True)

INVITE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


@cfa_app.command("invite")
def cfa_invite(
    community: Annotated[str, typer.Option(help="Community code, e.g. dhading-gajuri-3")],
    language: Annotated[str, typer.Option(help="The CFA's language, e.g. ne")],
    name: Annotated[str | None, typer.Option(help="The CFA's name, if known")] = None,
    role: Annotated[
        str, typer.Option(help="reporter, or journalist (may /record bulletins)")
    ] = "reporter",
) -> None:
    """Create a one-time invite and print the link that registers a CFA."""
    settings = get_settings()
    language = language.strip().lower()
    name = (name or "").strip() or None

    async def work(services: Services) -> Invite:
        if language not in services.deployment.languages:
            raise HelpdeskError(
                f"language '{language}' is not one of the deployment's: "
                f"{', '.join(services.deployment.languages)}"
            )
        async with services.db.session() as session:
            return await store.create_invite(
                session,
                community=community,
                language=language,
                code="".join(secrets.choice(INVITE_ALPHABET) for _ in range(10)),
                valid_for=timedelta(days=settings.invite_valid_days),
                name=name,
                role=role,
            )

    invite = run(work)
    username = settings.telegram_bot_username or "<your_bot_username>"
    typer.echo(f"invite code: {invite.code} (valid {settings.invite_valid_days} days)")
    typer.echo(f"Telegram:    https://t.me/{username}?start={invite.code}")
    typer.echo(f"terminal:    .venv/bin/helpdesk chat --cfa {invite.code}")


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
    if month is not None and not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month):
        fail(f"month '{month}' is not YYYY-MM, e.g. 2026-12")

    async def work(services: Services) -> tuple[str, str, list[MissingCfa]]:
        reminders = services.deployment.config.reminders
        zone = reminders.timezone if reminders else "UTC"
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
    add another). Until the staff desk exists, this is how reports reach bulletins."""

    async def work(services: Services) -> Report:
        text = " ".join(summary.split())
        if not text:
            raise HelpdeskError("the summary is empty")
        aired = {*services.deployment.languages, *services.deployment.templates}
        if language.strip().lower() not in aired:
            raise HelpdeskError(
                f"'{language}' is not a language of this deployment ({', '.join(sorted(aired))})"
            )
        async with services.db.session() as session:
            report = await session.scalar(select(Report).where(Report.reference == reference))
            if report is None:
                raise HelpdeskError(f"no report {reference} (see helpdesk reports list)")
            report.summary = {**(report.summary or {}), language.strip().lower(): text}
            report.status = "validated"
            report.validated_at = report.validated_at or utcnow()
            sensitive = services.deployment.config.sensitive_categories
            report.sensitive = report.sensitive or report.category in sensitive
            return report

    report = run(work)
    note = " (sensitive: left out of bulletins unless added by hand)" if report.sensitive else ""
    typer.echo(f"{report.reference} validated; summary in {', '.join(report.summary or {})}{note}")
