"""Issues followed with the authorities: one problem, the reports about it, who it was
taken to, and every step until it is solved, each told to the reports' CFAs.

Lifecycle (a status may skip steps forward; resolved and closed are final)::

    open ──> referred ──> responded ──> in_progress ──> resolved
      └────────┴─────────────┴──────────────┴──────> closed (without resolution)

Attached reports follow their issue: ``in_progress`` while it is referred, responded or
in progress, ``resolved`` when it is. Each change is an audit entry (who, when, from,
to, note) and a notification through the outbox to each CFA whose report is attached,
in the CFA's language. An opted-out CFA is told too: ``/stop`` stops reminders and
bulletins, not news of their own reports.
"""

import logging
from datetime import datetime
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import store
from bot.prompts import AIRING, ISSUE_OUTCOME, ISSUE_UPDATES, UNNAMED_AUTHORITY
from core import audit
from core.db import utcnow
from core.errors import HelpdeskError
from core.i18n import translator
from core.models import Bulletin, BulletinItem, Issue, Report
from core.outbox import Part, enqueue

logger = logging.getLogger(__name__)

STATUSES = ("open", "referred", "responded", "in_progress", "resolved", "closed")
FINAL = ("resolved", "closed")
# What an attached report's status becomes when its issue reaches each status.
REPORT_STATUS = {
    "referred": "in_progress",
    "responded": "in_progress",
    "in_progress": "in_progress",
    "resolved": "resolved",
}


class IssueError(HelpdeskError):
    """An issue cannot be created or changed as asked."""


def next_statuses(issue: Issue) -> list[str]:
    """The statuses ``issue`` may move to now."""
    if issue.status in FINAL:
        return []
    later = STATUSES[STATUSES.index(issue.status) + 1 :]
    return list(later)


async def create(
    session: AsyncSession,
    *,
    title: str,
    staff_user_id: int | None,
    community_id: int | None = None,
    category: str | None = None,
    authority: str | None = None,
) -> Issue:
    """Open an issue with a new reference (``IS-2026-0001``).

    Raises:
        IssueError: the title is empty.
    """
    title = " ".join(title.split())
    if not title:
        raise IssueError("an issue needs a title")
    year = utcnow().year
    number = await store.next_number(session, f"issue:{year}")

    issue = Issue(
        reference=f"IS-{year}-{number:04d}",
        title=title,
        community_id=community_id,
        category=(category or "").strip() or None,
        authority=(authority or "").strip() or None,
        status="open",
        created_by=staff_user_id,
    )
    session.add(issue)
    await session.flush()
    await _audit(session, issue, "created", staff_user_id, {"title": title})
    return issue


async def attach(
    session: AsyncSession, issue: Issue, report: Report, staff_user_id: int | None
) -> None:
    """Attach a validated report to ``issue``; it takes the issue's progress, and its
    CFA is told the issue's status unless it is still open.

    Raises:
        IssueError: the report is not validated yet, or the issue is final.
    """
    if report.status not in ("validated", "in_progress", "resolved"):
        raise IssueError(f"validate {report.reference} before attaching it to an issue")
    if issue.status in FINAL:
        raise IssueError(f"{issue.reference} is {issue.status}; open a new issue instead")
    report.issue_id = issue.id
    report.status = REPORT_STATUS.get(issue.status, "validated")
    await _audit(session, issue, "attached", staff_user_id, {"report": report.reference})

    # Joining an issue already under way: its CFA hears where it stands (once per status).
    if issue.status != "open":
        await _notify(session, issue, [report])


async def change_status(
    session: AsyncSession,
    issue: Issue,
    status: str,
    staff_user_id: int | None,
    *,
    note: str | None = None,
    authority: str | None = None,
    outcome: dict[str, str] | None = None,
) -> int:
    """Move ``issue`` to ``status`` and tell the attached reports' CFAs.

    Args:
        authority: who the issue was taken to, when it is named or changed now.
        outcome: what to tell the CFAs about the result, per language.

    Returns:
        How many notifications were queued.

    Raises:
        IssueError: the move is not allowed from the current status.
    """
    if status not in next_statuses(issue):
        allowed = ", ".join(next_statuses(issue)) or "none (it is final)"
        raise IssueError(f"{issue.reference} is {issue.status}; it may move to: {allowed}")

    previous = issue.status
    issue.status = status
    issue.authority = (authority or "").strip() or issue.authority
    cleaned = {k: v.strip() for k, v in (outcome or {}).items() if v.strip()}
    issue.outcome = {**(issue.outcome or {}), **cleaned} or None
    if status == "resolved":
        issue.resolved_at = utcnow()
    detail: dict[str, object] = {"from": previous, "to": status, "authority": issue.authority}
    await _audit(session, issue, "status", staff_user_id, detail, note)

    reports = await _reports(session, issue.id)
    for report in reports:
        report.status = REPORT_STATUS.get(status, report.status)
    return await _notify(session, issue, reports)


async def _reports(session: AsyncSession, issue_id: int) -> list[Report]:
    query = select(Report).where(Report.issue_id == issue_id).order_by(Report.id)
    return list((await session.scalars(query)).unique().all())


async def _notify(session: AsyncSession, issue: Issue, reports: list[Report]) -> int:
    queued = 0
    for cfa_id, mine in _by_cfa(reports).items():
        identity = await store.reachable(session, cfa_id)
        if identity is None:
            logger.warning("issue %s: cfa %s has no channel; not told", issue.reference, cfa_id)
            continue
        queued += await enqueue(
            session,
            dedupe_key=f"issue:{issue.id}:{issue.status}:cfa:{cfa_id}",
            channel=identity.channel,
            address=identity.address,
            purpose="notification",
            parts=[Part(kind="text", text=status_text(issue, mine))],
            cfa_id=cfa_id,
        )
    logger.info("issue %s now %s: %d cfas told", issue.reference, issue.status, queued)
    return queued


def _by_cfa(reports: list[Report]) -> dict[int, list[Report]]:
    grouped: dict[int, list[Report]] = {}
    for report in reports:
        grouped.setdefault(report.cfa_id, []).append(report)
    return grouped


def status_text(issue: Issue, reports: list[Report]) -> str:
    """What one CFA is told of ``issue``'s status, in their language."""
    language = reports[0].cfa.language
    t = translator(language)
    authority = issue.authority or t.gettext(UNNAMED_AUTHORITY)
    references = ", ".join(report.reference for report in reports)
    text = t.gettext(ISSUE_UPDATES[issue.status]) % {
        "reference": references,
        "authority": authority,
    }
    outcome = (issue.outcome or {}).get(language)
    if outcome:
        text += "\n\n" + t.gettext(ISSUE_OUTCOME) % {"outcome": outcome}
    return text


async def tell_airing(session: AsyncSession, bulletin_id: int) -> int:
    """Tell the CFAs of each resolved issue in a bulletin when and where it airs.

    Call it when the bulletin is approved; calling it again queues nothing twice (one
    message per bulletin, issue and CFA).

    Returns:
        How many notifications were queued.
    """
    bulletin = await session.get_one(Bulletin, bulletin_id)
    issue_ids = set(
        await session.scalars(
            select(BulletinItem.issue_id).where(
                BulletinItem.bulletin_id == bulletin_id, BulletinItem.issue_id.is_not(None)
            )
        )
    )
    queued = 0
    for issue_id in sorted(i for i in issue_ids if i is not None):
        issue = await session.get_one(Issue, issue_id)
        if issue.status == "resolved":
            queued += await _tell_airing_of(session, bulletin, issue)
    logger.info("bulletin %s airing told: %d notifications queued", bulletin_id, queued)
    return queued


async def _tell_airing_of(session: AsyncSession, bulletin: Bulletin, issue: Issue) -> int:
    queued = 0
    for cfa_id, mine in _by_cfa(await _reports(session, issue.id)).items():
        identity = await store.reachable(session, cfa_id)
        if identity is None:
            continue
        queued += await enqueue(
            session,
            dedupe_key=f"airing:{bulletin.id}:{issue.id}:cfa:{cfa_id}",
            channel=identity.channel,
            address=identity.address,
            purpose="notification",
            parts=[Part(kind="text", text=airing_text(bulletin, mine))],
            cfa_id=cfa_id,
        )
    return queued


def airing_text(bulletin: Bulletin, reports: list[Report]) -> str:
    """What a CFA is told of the bulletin that carries their resolved issue."""
    language = reports[0].cfa.language
    t = translator(language)
    local: datetime = bulletin.air_at.astimezone(ZoneInfo(bulletin.station.timezone))
    return t.gettext(AIRING) % {
        "reference": ", ".join(report.reference for report in reports),
        "station": bulletin.station.name,
        "date": format_date(local.date(), format="long", locale=t.locale),
        "time": format_time(local.time(), format="short", locale=t.locale),
    }


async def _audit(
    session: AsyncSession,
    issue: Issue,
    action: str,
    staff_user_id: int | None,
    detail: dict[str, object] | None = None,
    note: str | None = None,
) -> None:
    await audit.record(
        session,
        action=action,
        object_type="issue",
        object_id=issue.id,
        staff_user_id=staff_user_id,
        detail=dict(detail or {}),
        note=note,
    )
