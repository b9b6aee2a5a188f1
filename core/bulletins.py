"""The editorial pipeline: from validated reports to a bulletin's script, edited by a
person, then rendered to audio.

Only an editor's summary of a report reaches a script, never the CFA's own answers, name,
number or chat id; reports in sensitive categories (security, justice, trafficking by
default) are left out unless an editor adds them by hand with :func:`add_report`.
"""

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from babel.dates import format_date
from babel.numbers import format_decimal
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.deployment import WEEKDAYS, Deployment, StationConfig
from core.errors import HelpdeskError
from core.i18n import translator
from core.models import (
    Bulletin,
    BulletinItem,
    Community,
    Recording,
    Report,
    Station,
)
from core.templates import BulletinTemplate

logger = logging.getLogger(__name__)


class BulletinError(HelpdeskError):
    """A bulletin cannot be composed, edited or rendered as asked."""


@dataclass
class Composed:
    """A composed bulletin and what the editor should know about it."""

    bulletin: Bulletin
    warnings: list[str] = field(default_factory=list)


def air_time(station: StationConfig, air_date: date) -> datetime:
    """When a bulletin dated ``air_date`` airs: the station's slot that day, else 19:00.

    Returns:
        The moment in UTC.
    """
    zone = ZoneInfo(station.timezone)
    weekday = WEEKDAYS[air_date.weekday()]
    slot = next((s.time for s in station.airtime if s.day == weekday), "19:00")
    hours, minutes = (int(part) for part in slot.split(":"))
    return datetime.combine(air_date, time(hours, minutes), tzinfo=zone).astimezone(
        ZoneInfo("UTC")
    )


async def compose(
    session: AsyncSession,
    deployment: Deployment,
    station_code: str,
    air_at: datetime,
    *,
    replace: bool = False,
) -> Composed:
    """Write the script of a station's bulletin airing at ``air_at``, in each language.

    The air date is the station's local date at ``air_at`` (a Nepali bulletin at
    2026-03-07T18:30Z is dated 8 March). Items are the validated reports of the
    station's communities not yet in one of its bulletins, oldest first.

    Raises:
        BulletinError: unknown station, or a bulletin for that date exists and
            ``replace`` is not set (composing again would lose an editor's changes).
    """
    config, station = await _station(session, deployment, station_code)
    local_date = air_at.astimezone(ZoneInfo(config.timezone)).date()
    existing = await session.scalar(
        select(Bulletin).where(Bulletin.station_id == station.id, Bulletin.air_date == local_date)
    )
    if existing is not None and not replace:
        raise BulletinError(
            f"station {station_code} already has bulletin {existing.id} for "
            f"{local_date}; edit it, or compose again with --replace"
        )
    if existing is not None:
        await session.delete(existing)
        await session.flush()

    bulletin = Bulletin(station_id=station.id, air_date=local_date, air_at=air_at)
    session.add(bulletin)
    await session.flush()

    reports = await _fresh_reports(session, deployment, station, air_at)
    composed = Composed(bulletin)
    for language in config.languages:
        items = _script(deployment, config, language, local_date, reports, composed.warnings)
        for position, (kind, text, report_id) in enumerate(items):
            session.add(
                BulletinItem(
                    bulletin_id=bulletin.id,
                    language=language,
                    position=position,
                    kind=kind,
                    text=text,
                    report_id=report_id,
                )
            )
    await session.flush()
    await session.refresh(bulletin, ["items", "station"])
    logger.info(
        "bulletin %s composed for %s on %s: %d reports",
        bulletin.id,
        station_code,
        local_date,
        len(reports),
    )
    return composed


def _script(
    deployment: Deployment,
    station: StationConfig,
    language: str,
    air_date: date,
    reports: list[Report],
    warnings: list[str],
) -> list[tuple[str, str, int | None]]:
    template = deployment.templates[language]
    locale = translator(language).locale
    frame = {
        "station": station.spoken_name.get(language) or station.name,
        "programme": station.programme_name(language),
        "date": format_date(air_date, "long", locale=locale),
        "weekday": format_date(air_date, "EEEE", locale=locale),
        "count": format_decimal(len(reports), locale=locale),
    }

    items: list[tuple[str, str, int | None]] = [("intro", template.fill("intro", **frame), None)]
    for report in reports:
        summary = (report.summary or {}).get(language)
        if not summary:
            warnings.append(
                f"{report.reference} has no summary in {language}; left out of "
                f"the {language} script (helpdesk reports validate "
                f"{report.reference} --language {language} --summary ...)"
            )
            continue
        items.append(("report", _report_text(template, report, summary, language), report.id))
    if len(items) == 1:
        items.append(("nothing_new", template.fill("nothing_new", **frame), None))
    items.append(("outro", template.fill("outro", **frame), None))
    return items


def _report_text(template: BulletinTemplate, report: Report, summary: str, language: str) -> str:
    community: Community = report.community
    return template.fill(
        "report",
        community=community.display_name(language),
        district=community.district,
        category=template.categories.get(report.category, report.category.replace("_", " ")),
        summary=summary,
    )


async def _fresh_reports(
    session: AsyncSession, deployment: Deployment, station: Station, air_at: datetime
) -> list[Report]:
    already = (
        select(BulletinItem.report_id)
        .join(Bulletin)
        .where(Bulletin.station_id == station.id, BulletinItem.report_id.is_not(None))
    )
    rows = await session.scalars(
        select(Report)
        .join(Community)
        .where(
            Report.status == "validated",
            Report.sensitive.is_(False),
            Community.code.in_(station.communities),
            Report.validated_at <= air_at,
            Report.id.not_in(already),
        )
        .order_by(Report.validated_at, Report.id)
    )
    return list(rows.unique())


async def _station(
    session: AsyncSession, deployment: Deployment, code: str
) -> tuple[StationConfig, Station]:
    config = deployment.stations.get(code)
    station = await session.scalar(select(Station).where(Station.code == code))
    if config is None or station is None:
        known = ", ".join(sorted(deployment.stations)) or "none"
        raise BulletinError(f"no station '{code}' (known: {known}; run helpdesk content load)")
    return config, station


# Editing ------------------------------------------------------------------------------


async def get_bulletin(session: AsyncSession, bulletin_id: int) -> Bulletin:
    """A bulletin with its items; raises BulletinError when there is none."""
    bulletin = await session.get(Bulletin, bulletin_id)
    if bulletin is None:
        raise BulletinError(f"no bulletin {bulletin_id}")
    await session.refresh(bulletin, ["items"])
    return bulletin


def script(bulletin: Bulletin, language: str) -> list[BulletinItem]:
    """The items of one language, in order."""
    return sorted((i for i in bulletin.items if i.language == language), key=lambda i: i.position)


async def edit_item(
    session: AsyncSession, bulletin_id: int, language: str, number: int, text: str
) -> BulletinItem:
    """Replace the text of item ``number`` (from 1) of one language's script."""
    item = _item(await editable(session, bulletin_id), language, number)
    item.text = " ".join(text.split())
    return item


async def drop_item(session: AsyncSession, bulletin_id: int, language: str, number: int) -> None:
    """Remove item ``number`` from one language's script."""
    bulletin = await editable(session, bulletin_id)
    item = _item(bulletin, language, number)
    bulletin.items.remove(item)
    _renumber(bulletin, language)


async def move_item(
    session: AsyncSession, bulletin_id: int, language: str, number: int, to: int
) -> None:
    """Move item ``number`` to position ``to`` (both from 1) in one language's script."""
    bulletin = await editable(session, bulletin_id)
    items = script(bulletin, language)
    item = _item(bulletin, language, number)
    items.remove(item)
    items.insert(max(0, min(to - 1, len(items))), item)
    for position, each in enumerate(items):
        each.position = position


async def add_announcement(
    session: AsyncSession,
    deployment: Deployment,
    bulletin_id: int,
    language: str,
    text: str,
    at: int | None = None,
) -> BulletinItem:
    """Insert an announcement at position ``at`` (from 1), by default before the outro."""
    bulletin = await editable(session, bulletin_id)
    template = _template(deployment, bulletin, language)
    return _insert(
        bulletin,
        language,
        "announcement",
        template.fill("announcement", text=" ".join(text.split())),
        None,
        at,
    )


async def add_report(
    session: AsyncSession,
    deployment: Deployment,
    bulletin_id: int,
    reference: str,
    language: str,
    at: int | None = None,
) -> BulletinItem:
    """Put a validated report in by hand: the way a sensitive report gets on air."""
    bulletin = await editable(session, bulletin_id)
    report = await session.scalar(select(Report).where(Report.reference == reference))
    if report is None or report.status != "validated":
        raise BulletinError(f"{reference} is not a validated report")
    summary = (report.summary or {}).get(language)
    if not summary:
        raise BulletinError(f"{reference} has no summary in {language}")
    template = _template(deployment, bulletin, language)
    text = _report_text(template, report, summary, language)
    logger.info(
        "bulletin %s: %s added by an editor (sensitive: %s)",
        bulletin_id,
        reference,
        report.sensitive,
    )
    return _insert(bulletin, language, "report", text, report.id, at)


async def editable(session: AsyncSession, bulletin_id: int) -> Bulletin:
    """A bulletin about to change, set back to draft (its audio is then out of date).

    Raises:
        BulletinError: no such bulletin, or it is approved or aired.
    """
    bulletin = await get_bulletin(session, bulletin_id)
    if bulletin.status in ("approved", "aired"):
        raise BulletinError(
            f"bulletin {bulletin_id} is {bulletin.status}; it can no longer be edited"
        )
    bulletin.status = "draft"
    return bulletin


def _template(deployment: Deployment, bulletin: Bulletin, language: str) -> BulletinTemplate:
    if language not in bulletin.station.languages:
        raise BulletinError(f"station {bulletin.station.code} does not broadcast in {language}")
    return deployment.templates[language]


def _item(bulletin: Bulletin, language: str, number: int) -> BulletinItem:
    items = script(bulletin, language)
    if not 1 <= number <= len(items):
        raise BulletinError(
            f"bulletin {bulletin.id} has items 1 to {len(items)} in {language}, not {number}"
        )
    return items[number - 1]


def _insert(
    bulletin: Bulletin, language: str, kind: str, text: str, report_id: int | None, at: int | None
) -> BulletinItem:
    items = script(bulletin, language)
    before_outro = len(items) - 1 if items and items[-1].kind == "outro" else len(items)
    index = before_outro if at is None else max(0, min(at - 1, len(items)))
    item = BulletinItem(
        language=language, kind=kind, text=text, report_id=report_id, position=index
    )
    items.insert(index, item)
    bulletin.items.append(item)
    for position, each in enumerate(items):
        each.position = position
    return item


def _renumber(bulletin: Bulletin, language: str) -> None:
    for position, item in enumerate(script(bulletin, language)):
        item.position = position


# Recordings ---------------------------------------------------------------------------


async def recordable(session: AsyncSession, bulletin_id: int, language: str) -> Bulletin:
    """The bulletin a person is about to read aloud in ``language``.

    Raises:
        BulletinError: no such bulletin, the station does not broadcast in that
            language, or the bulletin can no longer change.
    """
    bulletin = await get_bulletin(session, bulletin_id)
    if language not in bulletin.station.languages:
        raise BulletinError(f"station {bulletin.station.code} does not broadcast in {language}")
    if bulletin.status in ("approved", "aired"):
        raise BulletinError(
            f"bulletin {bulletin_id} is {bulletin.status}; it can no longer be recorded"
        )
    return bulletin


async def save_recording(
    session: AsyncSession,
    bulletin_id: int,
    language: str,
    *,
    path: str,
    mime_type: str,
    source: str,
    cfa_id: int | None = None,
) -> Recording:
    """Keep a reading of the script; a new one replaces the old for that language."""
    bulletin = await recordable(session, bulletin_id, language)
    recording = await session.scalar(
        select(Recording).where(
            Recording.bulletin_id == bulletin_id, Recording.language == language
        )
    )
    if recording is None:
        recording = Recording(bulletin_id=bulletin_id, language=language)
        session.add(recording)
    recording.path, recording.mime_type = path, mime_type
    recording.source, recording.cfa_id = source, cfa_id
    bulletin.status = "draft"
    logger.info(
        "bulletin %s: %s recording saved from %s (cfa %s)", bulletin_id, language, source, cfa_id
    )
    return recording
