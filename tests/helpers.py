"""Helpers the tests share: invites, and driving the engine as a person would."""

import asyncio
from datetime import datetime, timedelta

from sqlalchemy import func, select
from typer.testing import CliRunner, Result

from bot import store
from bot.channels.base import read_typed
from bot.messages import Incoming, Kind, Reply
from core.config import Settings, get_settings
from core.db import utcnow
from core.models import Community, Invite, Report
from core.services import Services


async def make_invite(
    services: Services,
    code: str,
    *,
    language: str = "ne",
    name: str | None = "Sita",
    community: str = "dhading-gajuri-3",
    role: str = "reporter",
) -> Invite:
    """Create an invite for the sample deployment's community."""
    async with services.db.session() as session:
        return await store.create_invite(
            session,
            community=community,
            language=language,
            code=code,
            valid_for=timedelta(days=7),
            name=name,
            role=role,
        )


class Person:
    """Someone typing into the engine on the terminal channel, with what they were told."""

    def __init__(self, services: Services, address: str = "p1", channel: str = "terminal"):
        self.services = services
        self.address = address
        self.channel = channel
        self.replies: list[Reply] = []

    async def send(self, incoming: Incoming) -> list[Reply]:
        replies = await self.services.engine.handle(self.channel, self.address, incoming)
        self.replies.extend(replies)
        return replies

    async def say(self, text: str) -> list[Reply]:
        return await self.send(read_typed(text, client_language="ne"))

    async def tap(self, label_or_data: str) -> list[Reply]:
        """Tap the button of the last reply whose label contains, or data equals, the text."""
        for reply in reversed(self.replies):
            for button in reply.flat_buttons:
                if button.data == label_or_data or label_or_data in button.label:
                    return await self.send(Incoming(Kind.BUTTON, data=button.data))
        raise AssertionError(f"no button {label_or_data!r} in {self.last.text!r}")

    async def walk_report(
        self, description: str, place: str, category: str = "health", urgency: str = "high"
    ) -> list[Reply]:
        """Send a problem report without photo or voice; returns the receipt."""
        await self.tap("start:report")
        await self.tap(f"a:category:{category}")
        await self.say(description)
        await self.say(place)
        await self.tap(f"a:urgency:{urgency}")
        await self.tap("skip:photo")
        await self.tap("skip:voice_note")
        return await self.tap("review:send")

    @property
    def last(self) -> Reply:
        return self.replies[-1]

    def texts(self) -> str:
        return "\n".join(filter(None, (f"{r.title or ''}\n{r.text}" for r in self.replies)))


async def make_report(
    services: Services,
    *,
    community: str = "dhading-gajuri-3",
    category: str = "service_delivery",
    summary: dict[str, str] | None = None,
    validated_at: datetime | None = None,
    cfa_name: str = "Sita Tamang",
    answers: dict[str, object] | None = None,
) -> Report:
    """A report as the intake would store it, validated when a summary is given."""
    from core.models import Cfa, ChannelIdentity, SurveyDefinition

    async with services.db.session() as session:
        place = await session.scalar(select(Community).where(Community.code == community))
        survey = await session.scalar(
            select(SurveyDefinition).where(SurveyDefinition.survey_id == "report")
        )
        assert place is not None and survey is not None
        cfa = Cfa(name=cfa_name, community_id=place.id, language="ne")
        session.add(cfa)
        await session.flush()
        count = await session.scalar(select(func.count()).select_from(Report)) or 0
        session.add(
            ChannelIdentity(cfa_id=cfa.id, channel="telegram", address=str(700100200 + count))
        )
        report = Report(
            reference=f"NP-2026-{count + 1:06d}",
            cfa_id=cfa.id,
            community_id=place.id,
            survey_definition_id=survey.id,
            kind="report",
            category=category,
            language="ne",
            channel="telegram",
            answers=answers or {"description": "raw words of the CFA"},
            summary=summary,
            status="validated" if summary else "received",
            validated_at=validated_at or (utcnow() if summary else None),
            sensitive=category in services.deployment.config.sensitive_categories,
        )
        session.add(report)
    return report


async def run_helpdesk(settings: Settings, *args: str, stdin: str = "") -> Result:
    """``helpdesk ARGS`` on ``settings``' database and data folder, as staff run it.

    The command runs in this process, in a thread with its own event loop and database
    connections as it would have in its own process: starting ``helpdesk`` anew costs
    seconds of imports, and the settings it reads from the environment are what differs.
    """
    from core.cli import app

    environment = {
        "HELPDESK_DATA_DIR": str(settings.data_dir),
        "HELPDESK_DATABASE_URL": settings.resolved_database_url,
    }
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        return await asyncio.to_thread(
            lambda: runner.invoke(app, list(args), input=stdin, env=environment)
        )
    finally:
        get_settings.cache_clear()
