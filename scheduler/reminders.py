"""Who has not answered this month's survey, and the reminder they are sent.

"This month" is the calendar month in the reminders' time zone, so a survey sent at
00:30 on the 1st in Kathmandu counts for the new month even though it is still the
previous day in UTC.
"""

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import store
from bot.prompts import N_
from core.i18n import translator
from core.models import Cfa, Report, SurveyDefinition
from core.outbox import Part, enqueue

logger = logging.getLogger(__name__)

REMINDER_TEXT = N_(
    "It is time for this month's survey. It takes a few minutes: tap the button to start."
)
REMINDER_BUTTON = N_("Answer the survey")


@dataclass(frozen=True)
class MissingCfa:
    """An active reporter who has not sent the survey this month."""

    cfa: Cfa
    last_answered: datetime | None


def month_bounds(month: str, timezone: str) -> tuple[datetime, datetime]:
    """The UTC instants that start ``month`` (``2026-12``) and the month after it."""
    year, number = (int(part) for part in month.split("-"))
    zone = ZoneInfo(timezone)
    start = datetime(year, number, 1, tzinfo=zone)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def local_month(moment: datetime, timezone: str) -> str:
    """The ``YYYY-MM`` of ``moment`` in ``timezone``."""
    return moment.astimezone(ZoneInfo(timezone)).strftime("%Y-%m")


async def missing_cfas(
    session: AsyncSession, survey_id: str, month: str, timezone: str
) -> list[MissingCfa]:
    """Active reporters (opted out or not) with no ``survey_id`` report in ``month``."""
    start, end = month_bounds(month, timezone)
    answered = (
        select(Report.cfa_id)
        .join(SurveyDefinition, Report.survey_definition_id == SurveyDefinition.id)
        .where(
            SurveyDefinition.survey_id == survey_id,
            Report.submitted_at >= start,
            Report.submitted_at < end,
        )
    )
    cfas = await session.scalars(
        select(Cfa)
        .where(Cfa.status == "active", Cfa.role == "reporter", Cfa.id.not_in(answered))
        .order_by(Cfa.community_id, Cfa.name)
    )
    return [MissingCfa(cfa, await _last_answered(session, cfa.id, survey_id)) for cfa in cfas]


async def _last_answered(session: AsyncSession, cfa_id: int, survey_id: str) -> datetime | None:
    latest: datetime | None = await session.scalar(
        select(Report.submitted_at)
        .join(SurveyDefinition, Report.survey_definition_id == SurveyDefinition.id)
        .where(Report.cfa_id == cfa_id, SurveyDefinition.survey_id == survey_id)
        .order_by(Report.submitted_at.desc())
        .limit(1)
    )
    return latest


async def queue_reminders(
    session: AsyncSession, survey_id: str, month: str, timezone: str, day: date
) -> tuple[int, int]:
    """Queue one reminder per missing CFA who has not opted out, for ``day``.

    Queueing is keyed by survey, day and CFA, so running this twice for the same day
    sends nothing twice.

    Returns:
        How many were queued now, and how many were left out (opted out, or no channel).
    """
    queued = left_out = 0
    for missing in await missing_cfas(session, survey_id, month, timezone):
        cfa = missing.cfa
        identity = await store.reachable(session, cfa.id)
        if cfa.opted_out_at is not None or identity is None:
            left_out += 1
            continue
        t = translator(cfa.language)
        part = Part(
            kind="text",
            text=t.gettext(REMINDER_TEXT),
            buttons=(((t.gettext(REMINDER_BUTTON), f"start:{survey_id}"),),),
        )
        queued += await enqueue(
            session,
            dedupe_key=f"reminder:{survey_id}:{day.isoformat()}:{cfa.id}",
            channel=identity.channel,
            address=identity.address,
            purpose="reminder",
            parts=[part],
            cfa_id=cfa.id,
        )
    logger.info(
        "survey %s reminders for %s (%s): %d queued, %d left out",
        survey_id,
        month,
        day,
        queued,
        left_out,
    )
    return queued, left_out
