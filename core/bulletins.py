"""The editorial pipeline: from validated reports to a bulletin's script, edited by a
person, then rendered to audio.

Only an editor's summary of a report reaches a script, never the CFA's own answers, name,
number or chat id; reports in sensitive categories (security, justice, trafficking by
default) are left out unless an editor adds them by hand with :func:`add_report`.
"""

import logging
from collections.abc import Awaitable, Collection
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.dates import format_date
from babel.numbers import format_decimal
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import utcnow
from core.deployment import WEEKDAYS, Deployment, StationConfig
from core.errors import HelpdeskError
from core.i18n import translator
from core.models import (
    Bulletin,
    BulletinFile,
    BulletinItem,
    Community,
    Issue,
    Recording,
    Report,
    Station,
)
from core.templates import BulletinTemplate

logger = logging.getLogger(__name__)


# Report statuses an editor may put on air: validated, and still so once its issue is
# followed (a resolved issue airs as its outcome instead).
PICKABLE = ("validated", "in_progress")


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


def next_air_date(station: StationConfig, now: datetime | None = None) -> date:
    """The local date of the station's next slot after ``now``; tomorrow without slots."""
    moment = now or utcnow()
    today = moment.astimezone(ZoneInfo(station.timezone)).date()
    days = {slot.day for slot in station.airtime}
    for ahead in range(8):
        day = today + timedelta(days=ahead)
        if WEEKDAYS[day.weekday()] in days and air_time(station, day) > moment:
            return day
    return today + timedelta(days=1)


async def compose(
    session: AsyncSession,
    deployment: Deployment,
    station_code: str,
    air_at: datetime,
    *,
    replace: bool = False,
    only: Collection[int] | None = None,
) -> Composed:
    """Write the script of a station's bulletin airing at ``air_at``, in each language.

    The air date is the station's local date at ``air_at`` (a Nepali bulletin at
    2026-03-07T18:30Z is dated 8 March). Items are the validated reports of the
    station's communities not yet in one of its bulletins, oldest first; with ``only``,
    just those of them whose ids it holds (what an editor picked in the desk).

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
    if only is not None:
        reports = [report for report in reports if report.id in only]
    composed = Composed(bulletin, _date_warnings(config, local_date))
    if existing is not None:
        composed.warnings.append(
            f"bulletin {existing.id} for that date was replaced: its edits, "
            "recordings and audio are gone"
        )
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
    if only is None:
        # Good news goes on air unattended too: a scheduled build takes the resolved
        # issues no bulletin of the station has carried yet. (The desk picks its own.)
        fresh = await candidates(session, station_code)
        issue_ids = [issue.id for issue in fresh.issues]
        composed.warnings += await include(session, deployment, bulletin.id, issue_ids=issue_ids)
        await session.refresh(bulletin, ["items"])
    logger.info(
        "bulletin %s composed for %s on %s: %d reports",
        bulletin.id,
        station_code,
        local_date,
        len(reports),
    )
    return composed


def _date_warnings(station: StationConfig, air_date: date) -> list[str]:
    warnings: list[str] = []
    today = datetime.now(ZoneInfo(station.timezone)).date()
    if air_date < today:
        warnings.append(f"{air_date} is in the past for {station.code}")
    days = sorted({slot.day for slot in station.airtime})
    if days and WEEKDAYS[air_date.weekday()] not in days:
        warnings.append(
            f"{air_date} is a {WEEKDAYS[air_date.weekday()]}; {station.code} airs "
            f"on {', '.join(days)}"
        )
    return warnings


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


async def listing(
    session: AsyncSession,
    station_code: str | None = None,
) -> list[tuple[Bulletin, int]]:
    """Bulletins with how many files each has, newest air date first."""
    query = (
        select(Bulletin, func.count(BulletinFile.id))
        .outerjoin(BulletinFile)
        .group_by(Bulletin.id)
        .order_by(Bulletin.air_date.desc(), Bulletin.id.desc())
    )
    if station_code:
        query = query.join(Station).where(Station.code == station_code)
    return [(bulletin, int(files)) for bulletin, files in (await session.execute(query)).all()]


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
    item = _item(await editable(session, bulletin_id, language), language, number)
    item.text = _spoken(text)
    return item


async def drop_item(session: AsyncSession, bulletin_id: int, language: str, number: int) -> None:
    """Remove item ``number`` from one language's script.

    The intro and outro name the station and the programme, which stations must air;
    they can be edited but not dropped.
    """
    bulletin = await editable(session, bulletin_id, language)
    item = _item(bulletin, language, number)
    if item.kind in ("intro", "outro"):
        raise BulletinError(
            f"item {number} is the {item.kind}, which names the station and programme; "
            "edit its text instead"
        )
    bulletin.items.remove(item)
    _renumber(bulletin, language)


async def move_item(
    session: AsyncSession, bulletin_id: int, language: str, number: int, to: int
) -> None:
    """Move item ``number`` to position ``to`` (both from 1) in one language's script.

    The intro stays first and the outro last; a position beyond them is taken as the
    nearest place inside them.
    """
    bulletin = await editable(session, bulletin_id, language)
    item = _item(bulletin, language, number)
    if item.kind in ("intro", "outro"):
        raise BulletinError(f"item {number} is the {item.kind}; it stays in its place")
    rest = [each for each in script(bulletin, language) if each is not item]
    rest.insert(_within_frame(rest, to - 1), item)
    for position, each in enumerate(rest):
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
    bulletin = await editable(session, bulletin_id, language)
    spoken = deployment.templates[language].fill("announcement", text=_spoken(text))
    return _insert(bulletin, language, "announcement", spoken, None, at)


async def add_report(
    session: AsyncSession,
    deployment: Deployment,
    bulletin_id: int,
    reference: str,
    language: str,
    at: int | None = None,
) -> BulletinItem:
    """Put a validated report in by hand: the way a sensitive report gets on air.

    Raises:
        BulletinError: the report is not validated, has no summary in the language, is
            already in this script, or comes from a community the station does not serve.
    """
    bulletin = await editable(session, bulletin_id, language)
    report = await session.scalar(select(Report).where(Report.reference == reference))
    if report is None or report.status not in PICKABLE:
        raise BulletinError(f"{reference} is not a validated report")
    summary = (report.summary or {}).get(language)
    if not summary:
        raise BulletinError(f"{reference} has no summary in {language}")
    if any(item.report_id == report.id for item in script(bulletin, language)):
        raise BulletinError(f"{reference} is already in the {language} script")
    if report.community.code not in bulletin.station.communities:
        raise BulletinError(
            f"{reference} is from {report.community.code}, which "
            f"{bulletin.station.code} does not serve"
        )

    text = _report_text(deployment.templates[language], report, summary, language)
    logger.info(
        "bulletin %s: %s added by an editor (sensitive: %s)",
        bulletin_id,
        reference,
        report.sensitive,
    )
    # "No new reports this week" would now be read right before one.
    _drop_nothing_new(bulletin, language)
    return _insert(bulletin, language, "report", text, report.id, at)


@dataclass(frozen=True)
class Candidates:
    """What an editor may still put in a station's bulletins.

    Attributes:
        reports: validated reports of the station's communities in none of its
            bulletins, oldest first; sensitive ones too, which only a person may add.
        issues: resolved issues with an outcome, of a community the station serves
            (the issue's own, else one of its reports'), in none of its bulletins.
    """

    reports: list[Report]
    issues: list[Issue]


async def candidates(session: AsyncSession, station_code: str) -> Candidates:
    """The validated reports and resolved issues not yet in one of the station's bulletins.

    Raises:
        BulletinError: no such station.
    """
    station = await session.scalar(select(Station).where(Station.code == station_code))
    if station is None:
        raise BulletinError(f"no station '{station_code}' (run helpdesk content load)")
    in_bulletins = select(Bulletin.id).where(Bulletin.station_id == station.id)

    used_reports = select(BulletinItem.report_id).where(
        BulletinItem.bulletin_id.in_(in_bulletins), BulletinItem.report_id.is_not(None)
    )
    reports = await session.scalars(
        select(Report)
        .join(Community, Report.community_id == Community.id)
        .where(
            Report.status.in_(PICKABLE),
            Community.code.in_(station.communities),
            Report.id.not_in(used_reports),
        )
        .order_by(Report.validated_at, Report.id)
    )

    used_issues = select(BulletinItem.issue_id).where(
        BulletinItem.bulletin_id.in_(in_bulletins), BulletinItem.issue_id.is_not(None)
    )
    resolved = await session.scalars(
        select(Issue)
        .where(Issue.status == "resolved", Issue.id.not_in(used_issues))
        .order_by(Issue.resolved_at, Issue.id)
    )
    issues = [
        issue
        for issue in resolved
        if issue.outcome and await _issue_place(session, issue, station.communities)
    ]
    return Candidates(list(reports.unique()), issues)


async def _issue_place(session: AsyncSession, issue: Issue, served: list[str]) -> Community | None:
    """The community an issue's item names: its own, else its first report's the station
    serves; None when the station serves neither."""
    if issue.community_id is not None:
        own = await session.get(Community, issue.community_id)
        return own if own is not None and own.code in served else None
    places = await session.scalars(
        select(Community)
        .join(Report, Report.community_id == Community.id)
        .where(Report.issue_id == issue.id, Community.code.in_(served))
        .order_by(Report.id)
    )
    return places.first()


async def add_issue(
    session: AsyncSession,
    deployment: Deployment,
    bulletin_id: int,
    issue_id: int,
    language: str,
    at: int | None = None,
) -> BulletinItem:
    """Put a resolved issue in one language's script, read from its outcome text.

    The item keeps the issue's id, so that its CFAs can be told when it airs.

    Raises:
        BulletinError: the issue is not resolved, has no outcome in the language, is
            already in this script, or no community of it is served by the station.
    """
    bulletin = await editable(session, bulletin_id, language)
    issue = await session.get(Issue, issue_id)
    if issue is None or issue.status != "resolved":
        raise BulletinError(f"issue {issue_id} is not a resolved issue")
    outcome = (issue.outcome or {}).get(language)
    if not outcome:
        raise BulletinError(f"issue {issue.reference} has no outcome in {language}")
    if any(item.issue_id == issue.id for item in script(bulletin, language)):
        raise BulletinError(f"issue {issue.reference} is already in the {language} script")
    place = await _issue_place(session, issue, bulletin.station.communities)
    if place is None:
        raise BulletinError(
            f"issue {issue.reference} is of no community {bulletin.station.code} serves"
        )

    text = deployment.templates[language].fill(
        "resolved_issue",
        community=place.display_name(language),
        district=place.district,
        summary=_spoken(outcome),
    )
    item = _insert(bulletin, language, "resolved_issue", text, None, at)
    item.issue_id = issue.id
    logger.info("bulletin %s: issue %s added in %s", bulletin_id, issue.reference, language)
    return item


async def include(
    session: AsyncSession,
    deployment: Deployment,
    bulletin_id: int,
    *,
    report_ids: Collection[int] = (),
    issue_ids: Collection[int] = (),
) -> list[str]:
    """Add reports and resolved issues to every language of a bulletin, as the desk's
    "pick" does; a "nothing new" line goes from a language that gets an item.

    A report or issue that cannot go into one language (no summary or outcome in it, or
    already there) is left out of that language only.

    Returns:
        Why something was left out of a language, one line each.

    Raises:
        BulletinError: no such bulletin, or it can no longer be edited.
    """
    bulletin = await editable(session, bulletin_id)
    rows = await session.execute(
        select(Report.id, Report.reference).where(Report.id.in_(report_ids))
    )
    references = {report_id: reference for report_id, reference in rows.all()}
    warnings: list[str] = []
    for language in bulletin.station.languages:
        added = 0
        for report_id in report_ids:
            reference = references.get(report_id, f"report {report_id}")
            added += await _try(
                session,
                warnings,
                add_report(session, deployment, bulletin_id, reference, language),
            )
        for issue_id in issue_ids:
            added += await _try(
                session, warnings, add_issue(session, deployment, bulletin_id, issue_id, language)
            )
        if added:
            _drop_nothing_new(bulletin, language)
    return warnings


async def _try(session: AsyncSession, warnings: list[str], adding: Awaitable[BulletinItem]) -> int:
    try:
        await adding
    except BulletinError as error:
        warnings.append(str(error))
        return 0
    # Stored now: the next addition reloads the bulletin's items from the database.
    await session.flush()
    return 1


def _drop_nothing_new(bulletin: Bulletin, language: str) -> None:
    for item in script(bulletin, language):
        if item.kind == "nothing_new":
            bulletin.items.remove(item)
    _renumber(bulletin, language)


async def editable(
    session: AsyncSession, bulletin_id: int, language: str | None = None
) -> Bulletin:
    """A bulletin about to change, set back to draft (its audio is then out of date).

    When one language's script changes, a recording of it no longer matches what is
    written, so it is set aside and has to be made again.

    Raises:
        BulletinError: no such bulletin, it is approved or aired, or the station does not
            broadcast in ``language``.
    """
    bulletin = await get_bulletin(session, bulletin_id)
    if bulletin.status in ("approved", "aired"):
        raise BulletinError(
            f"bulletin {bulletin_id} is {bulletin.status}; it can no longer be edited"
        )
    if language is not None and language not in bulletin.station.languages:
        raise BulletinError(
            f"station {bulletin.station.code} does not broadcast in "
            f"{language} (it airs {', '.join(bulletin.station.languages)})"
        )
    if language is not None:
        await _set_aside_recording(session, bulletin_id, language)
    bulletin.status = "draft"
    return bulletin


async def _set_aside_recording(session: AsyncSession, bulletin_id: int, language: str) -> None:
    recording = await session.scalar(
        select(Recording).where(
            Recording.bulletin_id == bulletin_id, Recording.language == language
        )
    )
    if recording is not None:
        await session.delete(recording)
        logger.warning(
            "bulletin %s: the %s recording no longer matches the edited script and "
            "was set aside; record it again",
            bulletin_id,
            language,
        )


def _spoken(text: str) -> str:
    spoken = " ".join(text.split())
    if not spoken:
        raise BulletinError("an item needs some text; use drop to remove one")
    return spoken


def _item(bulletin: Bulletin, language: str, number: int) -> BulletinItem:
    items = script(bulletin, language)
    if not 1 <= number <= len(items):
        raise BulletinError(
            f"bulletin {bulletin.id} has items 1 to {len(items)} in {language}, not {number}"
        )
    return items[number - 1]


def _within_frame(items: list[BulletinItem], index: int) -> int:
    first = 1 if items and items[0].kind == "intro" else 0
    last = len(items) - 1 if items and items[-1].kind == "outro" else len(items)
    return max(first, min(index, last))


def _insert(
    bulletin: Bulletin, language: str, kind: str, text: str, report_id: int | None, at: int | None
) -> BulletinItem:
    items = script(bulletin, language)
    index = _within_frame(items, len(items) if at is None else at - 1)
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


# Approval and airing ------------------------------------------------------------------

# Who confirmed that a bulletin went on air (``Bulletin.aired_via``).
AIRED_VIA = ("api", "telegram", "staff")


async def approve(
    session: AsyncSession, bulletin_id: int, *, media_dir: Path | None = None
) -> Bulletin:
    """Approve a rendered bulletin: from now on it is in feeds and broadcasts.

    Every language the station airs needs its MP3, since that is what stations download.
    With ``media_dir`` (where :mod:`core.rendering` wrote the files), each file is also
    checked on disk, at the size it was rendered; without it only the records are checked.

    Raises:
        BulletinError: no such bulletin, it is not rendered (a draft, or already approved
            or aired), or a file is missing.
    """
    bulletin = await get_bulletin(session, bulletin_id)
    if bulletin.status != "rendered":
        raise BulletinError(_not_approvable(bulletin))

    files = list(
        await session.scalars(select(BulletinFile).where(BulletinFile.bulletin_id == bulletin_id))
    )
    _check_files(bulletin, files, media_dir)

    bulletin.status, bulletin.approved_at = "approved", utcnow()
    logger.info(
        "bulletin %s of %s for %s approved: %d files",
        bulletin_id,
        bulletin.station.code,
        bulletin.air_date,
        len(files),
    )
    return bulletin


def _not_approvable(bulletin: Bulletin) -> str:
    if bulletin.status == "draft":
        return (
            f"bulletin {bulletin.id} is a draft; render it first "
            f"(helpdesk bulletin render {bulletin.id})"
        )
    return f"bulletin {bulletin.id} is already {bulletin.status}"


def _check_files(bulletin: Bulletin, files: list[BulletinFile], media_dir: Path | None) -> None:
    rendered = {file.language for file in files if file.format == "mp3"}
    missing = [language for language in bulletin.station.languages if language not in rendered]
    if missing:
        raise BulletinError(
            f"bulletin {bulletin.id} has no MP3 in {', '.join(missing)}; render it again "
            f"(helpdesk bulletin render {bulletin.id})"
        )
    if media_dir is None:
        return

    for file in files:
        path = media_dir / file.path
        size = path.stat().st_size if path.is_file() else None
        if size != file.size:
            found = "is missing" if size is None else f"has {size} bytes, not {file.size}"
            raise BulletinError(
                f"bulletin {bulletin.id}: {path} {found}; render it again "
                f"(helpdesk bulletin render {bulletin.id})"
            )


async def mark_aired(session: AsyncSession, bulletin_id: int, via: str) -> Bulletin:
    """Record that a station aired an approved bulletin.

    Idempotent: a bulletin already aired keeps its first confirmation (time and ``via``),
    so a station pressing the button twice, or confirming by API and Telegram, changes
    nothing.

    Args:
        via: who confirmed it, one of :data:`AIRED_VIA`.

    Raises:
        BulletinError: no such bulletin, an unknown ``via``, or the bulletin is not
            approved (a draft or rendered bulletin was not cleared for air).
    """
    if via not in AIRED_VIA:
        raise BulletinError(f"unknown confirmation '{via}' (one of {', '.join(AIRED_VIA)})")
    bulletin = await get_bulletin(session, bulletin_id)
    if bulletin.status == "aired":
        logger.info(
            "bulletin %s already aired (via %s at %s); confirmation via %s changes nothing",
            bulletin_id,
            bulletin.aired_via,
            bulletin.aired_at,
            via,
        )
        return bulletin
    if bulletin.status != "approved":
        raise BulletinError(
            f"bulletin {bulletin_id} is {bulletin.status}, not approved; only an approved "
            "bulletin can be marked aired"
        )

    bulletin.status, bulletin.aired_at, bulletin.aired_via = "aired", utcnow(), via
    logger.info("bulletin %s of %s marked aired via %s", bulletin_id, bulletin.station.code, via)
    return bulletin
