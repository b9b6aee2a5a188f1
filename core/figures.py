"""The programme's figures per month and community, and their CSV and XLSX exports.

What each figure counts (months are calendar months in the programme's time zone, the
reminders' own, so "December" means the same here as in the survey reminders):

- **conversations**: surveys and reports started that month, as reports sent plus the
  conversations still under way; a conversation cancelled before sending leaves no row.
- **reports**: reports sent that month (surveys and problem reports).
- **validated**: reports an editor validated that month.
- **issues resolved**: issues moved to resolved that month, in the issue's community or,
  for an issue without one, in the communities of its reports.
- **people reached**: broadcast deliveries the outbox sent to community groups that month,
  plus the audience each station states (``audience`` in ``stations.yaml``) once for a
  month in which it had an approved bulletin on air.
- **survey compliance**: reporters who sent the monthly survey that month, of the active
  reporters registered by the month's end, by the rule of
  :func:`scheduler.reminders.missing_cfas`.

A group or station serving several communities counts in each of them, and once in the
programme's total: the total is counted, never summed from the rows.

Only counts and community codes and names leave this module: no CFA name, number or chat
id, so the figures are safe for viewers and partners.
"""

import csv
import io
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from openpyxl import Workbook
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import utcnow
from core.deployment import Deployment
from core.errors import HelpdeskError
from core.models import (
    Bulletin,
    Cfa,
    Community,
    ConversationSession,
    Issue,
    OutboxMessage,
    Recipient,
    Report,
    Station,
    SurveyDefinition,
)
from scheduler.reminders import local_month, month_bounds

logger = logging.getLogger(__name__)

# The programme's total in exports and charts, where a community code would stand.
ALL = "all"
ON_AIR = ("approved", "aired")


class FiguresError(HelpdeskError):
    """The figures cannot be computed as asked (a month that is not YYYY-MM, say)."""


@dataclass
class MonthFigures:
    """One month's figures for one community, or for the programme (``community`` ALL)."""

    month: str
    community: str
    conversations: int = 0
    reports: int = 0
    validated: int = 0
    issues_resolved: int = 0
    group_deliveries: int = 0
    station_audience: int = 0
    active_cfas: int = 0
    surveyed_cfas: int = 0

    @property
    def people_reached(self) -> int:
        """Group deliveries plus the stations' stated audience."""
        return self.group_deliveries + self.station_audience

    @property
    def compliance(self) -> float | None:
        """Share of active reporters who sent the monthly survey; None without any."""
        return self.surveyed_cfas / self.active_cfas if self.active_cfas else None


@dataclass(frozen=True)
class CommunityLabel:
    """How a community is shown: its code (charts), English and local names (tables)."""

    code: str
    english: str
    local: str


@dataclass
class Figures:
    """The figures of a range of months: per community, and the programme's total."""

    months: list[str]
    communities: list[CommunityLabel]
    rows: dict[tuple[str, str], MonthFigures] = field(default_factory=dict)

    def row(self, month: str, community: str) -> MonthFigures:
        """The figures of ``month`` for a community code, or ALL for the programme."""
        return self.rows[(month, community)]

    def totals(self) -> list[MonthFigures]:
        """The programme's figures, one per month, oldest first."""
        return [self.rows[(month, ALL)] for month in self.months]

    def ordered(self) -> list[MonthFigures]:
        """Every row: per month, its communities in deployment order, then the total."""
        codes = [label.code for label in self.communities] + [ALL]
        return [self.rows[(month, code)] for month in self.months for code in codes]


def programme_timezone(deployment: Deployment) -> str:
    """The time zone months are counted in: the reminders', else the first community's."""
    if deployment.config.reminders is not None:
        return deployment.config.reminders.timezone
    return deployment.config.communities[0].timezone


def month_range(first: str, last: str) -> list[str]:
    """Every ``YYYY-MM`` from ``first`` to ``last``, both included.

    Raises:
        FiguresError: a month is not ``YYYY-MM``, ``last`` is before ``first``, or the
            range is longer than ten years (a typo, more likely than a question).
    """
    start, end = _month_number(first), _month_number(last)
    if end < start:
        raise FiguresError(f"the range ends ({last}) before it starts ({first})")
    if end - start >= 120:
        raise FiguresError(f"{first} to {last} is more than ten years; ask for less")
    return [f"{n // 12:04d}-{n % 12 + 1:02d}" for n in range(start, end + 1)]


def recent_months(deployment: Deployment, count: int, now: datetime | None = None) -> list[str]:
    """The last ``count`` months up to the current one, in the programme's time zone."""
    current = local_month(now or utcnow(), programme_timezone(deployment))
    number = _month_number(current)
    first = number - count + 1
    return month_range(f"{first // 12:04d}-{first % 12 + 1:02d}", current)


def _month_number(month: str) -> int:
    try:
        year, number = (int(part) for part in month.split("-"))
    except ValueError:
        raise FiguresError(f"'{month}' is not a month written YYYY-MM") from None
    if not (1 <= number <= 12 and 2000 <= year <= 2999) or len(month) != 7:
        raise FiguresError(f"'{month}' is not a month written YYYY-MM")
    return year * 12 + number - 1


async def compute(session: AsyncSession, deployment: Deployment, months: list[str]) -> Figures:
    """Count the figures of ``months`` (consecutive ``YYYY-MM``, oldest first).

    Raises:
        FiguresError: no month asked for.
    """
    if not months:
        raise FiguresError("no month to count")
    started = utcnow()
    timezone = programme_timezone(deployment)
    start, _ = month_bounds(months[0], timezone)
    _, end = month_bounds(months[-1], timezone)
    communities = await _communities(session, deployment)
    figures = _empty(months, communities)
    window = _Window(figures, timezone, start, end, {c.id: c.code for c in communities})

    await _count_reports(session, window)
    await _count_open_conversations(session, window)
    await _count_issues(session, window)
    await _count_deliveries(session, window)
    await _count_audience(session, deployment, window)
    await _count_compliance(session, deployment, window)

    logger.info(
        "figures for %s to %s counted in %.2f s: %d communities",
        months[0],
        months[-1],
        (utcnow() - started).total_seconds(),
        len(communities),
    )
    return figures


@dataclass(frozen=True)
class _Window:
    """What every counting step needs: where to add, and which instants count."""

    figures: Figures
    timezone: str
    start: datetime
    end: datetime
    codes: dict[int, str]

    def month_of(self, moment: datetime | None) -> str | None:
        if moment is None or not self.start <= _aware(moment) < self.end:
            return None
        return local_month(_aware(moment), self.timezone)

    def add(self, moment: datetime | None, codes: Iterable[str], measure: str, n: int = 1) -> None:
        """Add ``n`` to ``measure`` of each community in ``codes`` and once to the total."""
        month = self.month_of(moment)
        if month is None:
            return
        for code in set(codes):
            row = self.figures.rows.get((month, code))
            if row is not None:
                setattr(row, measure, getattr(row, measure) + n)
        total = self.figures.rows[(month, ALL)]
        setattr(total, measure, getattr(total, measure) + n)


def _aware(moment: datetime) -> datetime:
    # SQLite hands back what it stored; the column type makes it UTC, but be sure.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def _communities(session: AsyncSession, deployment: Deployment) -> list[Community]:
    order = {entry.code: n for n, entry in enumerate(deployment.config.communities)}
    found = list(await session.scalars(select(Community)))
    return sorted(found, key=lambda c: (order.get(c.code, len(order)), c.code))


def _empty(months: list[str], communities: list[Community]) -> Figures:
    labels = [
        CommunityLabel(c.code, c.display_name("en"), c.display_name(c.languages[0]))
        for c in communities
    ]
    figures = Figures(months=months, communities=labels)
    for month in months:
        for code in [label.code for label in labels] + [ALL]:
            figures.rows[(month, code)] = MonthFigures(month=month, community=code)
    return figures


async def _count_reports(session: AsyncSession, window: _Window) -> None:
    sent = await session.execute(
        select(Report.community_id, Report.submitted_at).where(
            Report.submitted_at >= window.start, Report.submitted_at < window.end
        )
    )
    for community_id, submitted_at in sent.all():
        code = [window.codes.get(community_id, "")]
        window.add(submitted_at, code, "reports")
        window.add(submitted_at, code, "conversations")

    validated = await session.execute(
        select(Report.community_id, Report.validated_at).where(
            Report.validated_at >= window.start, Report.validated_at < window.end
        )
    )
    for community_id, validated_at in validated.all():
        window.add(validated_at, [window.codes.get(community_id, "")], "validated")


async def _count_open_conversations(session: AsyncSession, window: _Window) -> None:
    # A sent conversation is already counted as its report; only those under way are
    # added, since the session row is reused and keeps no history of earlier ones.
    rows = await session.execute(
        select(Cfa.community_id, ConversationSession.started_at)
        .join(Cfa, ConversationSession.cfa_id == Cfa.id)
        .where(
            ConversationSession.state != "idle",
            ConversationSession.started_at >= window.start,
            ConversationSession.started_at < window.end,
        )
    )
    for community_id, started_at in rows.all():
        window.add(started_at, [window.codes.get(community_id, "")], "conversations")


async def _count_issues(session: AsyncSession, window: _Window) -> None:
    issues = (
        await session.execute(
            select(Issue.id, Issue.community_id, Issue.resolved_at).where(
                Issue.status == "resolved",
                Issue.resolved_at >= window.start,
                Issue.resolved_at < window.end,
            )
        )
    ).all()
    without_place = [issue_id for issue_id, community_id, _ in issues if community_id is None]
    report_places: dict[int, set[str]] = defaultdict(set)
    if without_place:
        rows = await session.execute(
            select(Report.issue_id, Report.community_id).where(Report.issue_id.in_(without_place))
        )
        for attached_to, place_id in rows.all():
            if attached_to is not None:
                report_places[attached_to].add(window.codes.get(place_id, ""))

    for issue_id, community_id, resolved_at in issues:
        if community_id is None:
            window.add(resolved_at, report_places[issue_id], "issues_resolved")
        else:
            window.add(resolved_at, [window.codes.get(community_id, "")], "issues_resolved")


async def _count_deliveries(session: AsyncSession, window: _Window) -> None:
    rows = await session.execute(
        select(OutboxMessage.sent_at, Recipient.communities)
        .join(Recipient, OutboxMessage.recipient_id == Recipient.id)
        .where(
            OutboxMessage.purpose == "broadcast",
            OutboxMessage.state == "sent",
            OutboxMessage.sent_at >= window.start,
            OutboxMessage.sent_at < window.end,
        )
    )
    for sent_at, communities in rows.all():
        window.add(sent_at, communities or [], "group_deliveries")


async def _count_audience(session: AsyncSession, deployment: Deployment, window: _Window) -> None:
    # Only what has been on air counts: approved or aired, at a time already past.
    now = min(window.end, utcnow())
    rows = await session.execute(
        select(Station.code, Bulletin.air_at)
        .join(Station, Bulletin.station_id == Station.id)
        .where(
            Bulletin.status.in_(ON_AIR),
            Bulletin.air_at >= window.start,
            Bulletin.air_at < now,
        )
    )
    on_air: dict[str, set[str]] = defaultdict(set)
    for code, air_at in rows.all():
        month = window.month_of(air_at)
        if month is not None:
            on_air[code].add(month)

    for code, months in on_air.items():
        station = deployment.stations.get(code)
        if station is None or not station.audience:
            continue
        for month in months:
            start, _ = month_bounds(month, window.timezone)
            window.add(start, station.communities, "station_audience", station.audience)


async def _count_compliance(
    session: AsyncSession, deployment: Deployment, window: _Window
) -> None:
    survey_id = deployment.config.reminders.survey if deployment.config.reminders else "monthly"
    reporters = (
        await session.execute(
            select(Cfa.id, Cfa.community_id, Cfa.created_at).where(
                Cfa.status == "active", Cfa.role == "reporter"
            )
        )
    ).all()
    answered = await session.execute(
        select(Report.cfa_id, Report.submitted_at)
        .join(SurveyDefinition, Report.survey_definition_id == SurveyDefinition.id)
        .where(
            SurveyDefinition.survey_id == survey_id,
            Report.submitted_at >= window.start,
            Report.submitted_at < window.end,
        )
    )
    months_answered: dict[int, set[str]] = defaultdict(set)
    for cfa_id, submitted_at in answered.all():
        month = window.month_of(submitted_at)
        if month is not None:
            months_answered[cfa_id].add(month)

    for month in window.figures.months:
        start, end = month_bounds(month, window.timezone)
        for cfa_id, community_id, created_at in reporters:
            if _aware(created_at) >= end:
                continue
            code = [window.codes.get(community_id, "")]
            window.add(start, code, "active_cfas")
            if month in months_answered[cfa_id]:
                window.add(start, code, "surveyed_cfas")


# Exports ------------------------------------------------------------------------------

# The columns of both exports, in order; a viewer's export has these and nothing else.
COLUMNS = (
    "month",
    "community",
    "community_name",
    "conversations",
    "reports",
    "validated",
    "issues_resolved",
    "group_deliveries",
    "station_audience",
    "people_reached",
    "active_cfas",
    "surveyed_cfas",
    "survey_compliance",
)


def table(figures: Figures) -> list[list[Any]]:
    """The figures as rows of :data:`COLUMNS` values: per month, communities then total."""
    names = {label.code: label.english for label in figures.communities}
    names[ALL] = "All communities"
    return [
        [
            row.month,
            row.community,
            names[row.community],
            row.conversations,
            row.reports,
            row.validated,
            row.issues_resolved,
            row.group_deliveries,
            row.station_audience,
            row.people_reached,
            row.active_cfas,
            row.surveyed_cfas,
            None if row.compliance is None else round(row.compliance, 4),
        ]
        for row in figures.ordered()
    ]


def records(figures: Figures) -> list[dict[str, Any]]:
    """The rows of :func:`table` as mappings from column to value (for the API)."""
    return [dict(zip(COLUMNS, row, strict=True)) for row in table(figures)]


def to_csv(figures: Figures) -> str:
    """The figures as CSV text with a header row; compliance is a share from 0 to 1."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in table(figures):
        writer.writerow(["" if value is None else value for value in row])
    return buffer.getvalue()


def to_xlsx(figures: Figures) -> bytes:
    """The figures as an XLSX workbook: one sheet of rows, the header frozen."""
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None, "a new workbook has a sheet"
    sheet.title = "Figures"
    sheet.append(list(COLUMNS))
    for row in table(figures):
        sheet.append(row)
    sheet.freeze_panes = "A2"
    for cell in sheet["M"][1:]:
        cell.number_format = "0.0%"

    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def per_community(figures: Figures, measure: str) -> dict[str, list[float]]:
    """One measure per community code, a value per month; a compliance without any
    active reporter is NaN, which a chart leaves out rather than draw as 0 %."""
    series: dict[str, list[float]] = {}
    for label in figures.communities:
        values = []
        for month in figures.months:
            value = getattr(figures.row(month, label.code), measure)
            values.append(float("nan") if value is None else float(value))
        series[label.code] = values
    return series
