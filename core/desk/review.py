"""The review queue: reports as they came in, by community, category and date, and what
staff do with each one (validate, reject, mark duplicate, attach to an issue, ask the
CFA, flag sensitive). The rules themselves are :mod:`core.review`'s and
:mod:`core.issues`'s; this module only reads forms and renders pages.

Viewers see reports anonymised: category, community, date, status and the editor's
summary, never the CFA, their answers, media or location.
"""

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import store
from bot.answers import show_answer
from bot.prompts import text_of
from bot.surveys import MEDIA_TYPES, QuestionType
from core import audit, issues, review
from core.desk.auth import Editor, Viewer
from core.desk.params import RowId
from core.desk.templating import render
from core.errors import HelpdeskError
from core.i18n import translator
from core.models import AuditEntry, Community, InfoRequest, Issue, Media, Report, StaffUser
from core.services import Services

logger = logging.getLogger(__name__)

router = APIRouter()

STATUSES = ("received", "validated", "in_progress", "resolved", "rejected", "duplicate")
QUEUE_LIMIT = 200


@dataclass(frozen=True)
class Answer:
    """One answer as the desk shows it: the question's label and the readable value."""

    question: str
    value: str
    media: Media | None = None


@router.get("/desk/")
async def queue(
    request: Request,
    user: Viewer,
    status: str = "received",
    community: str = "",
    category: str = "",
    since: str = "",
    until: str = "",
) -> Response:
    """The reports waiting for review (or of another status), newest first."""
    services: Services = request.app.state.services
    query = select(Report).order_by(Report.submitted_at.desc()).limit(QUEUE_LIMIT)
    if status in STATUSES:
        query = query.where(Report.status == status)
    if community:
        query = query.join(Community, Community.id == Report.community_id).where(
            Community.code == community
        )
    if category:
        query = query.where(Report.category == category)
    if start := _day(since):
        query = query.where(Report.submitted_at >= start)
    if end := _day(until):
        query = query.where(Report.submitted_at < end + timedelta(days=1))

    async with services.db.session() as session:
        reports = list((await session.scalars(query)).unique().all())
        communities = list(await session.scalars(select(Community).order_by(Community.code)))
        categories = sorted(set(await session.scalars(select(Report.category).distinct())))
    context = {
        "reports": reports,
        "communities": communities,
        "categories": categories,
        "statuses": STATUSES,
        "filters": {
            "status": status,
            "community": community,
            "category": category,
            "since": since,
            "until": until,
        },
    }
    return render(request, "review_queue.html", context)


def _day(value: str) -> datetime | None:
    try:
        return datetime.combine(date.fromisoformat(value), time(), tzinfo=UTC)
    except ValueError:
        return None


@router.get("/desk/reports/{reference}")
async def report_page(request: Request, user: Viewer, reference: str) -> Response:
    """One report with its answers, media, location, questions to the CFA and history."""
    return await _report_page(request, reference)


async def _report_page(
    request: Request, reference: str, error: str | None = None, status: int = 200
) -> Response:
    services: Services = request.app.state.services
    async with services.db.session() as session:
        report = await _report(session, reference)
        context = await _report_context(session, services, report)
    notice = request.query_params.get("done")
    context |= {"error": error, "notice": f"Done: {notice}." if notice else None}
    return render(request, "report.html", context, status=status)


async def _report(session: AsyncSession, reference: str) -> Report:
    report = await session.scalar(select(Report).where(Report.reference == reference))
    if report is None:
        raise HTTPException(404, f"no report {reference}")
    return report


async def _report_context(
    session: AsyncSession, services: Services, report: Report
) -> dict[str, Any]:
    media = list(await session.scalars(select(Media).where(Media.report_id == report.id)))
    requests = list(
        await session.scalars(
            select(InfoRequest)
            .where(InfoRequest.report_id == report.id)
            .order_by(InfoRequest.asked_at)
        )
    )
    open_issues = list(
        await session.scalars(
            select(Issue)
            .where(Issue.status.not_in(issues.FINAL))
            .order_by(Issue.created_at.desc())
        )
    )
    duplicate_of = (
        await session.get(Report, report.duplicate_of_id) if report.duplicate_of_id else None
    )
    return {
        "report": report,
        "answers": await _answers(session, services, report, media),
        "requests": requests,
        "history": await _history(session, report.id),
        "open_issues": open_issues,
        "duplicate_of": duplicate_of,
        "issue": await session.get(Issue, report.issue_id or 0),
        "languages": review.summary_languages(services.deployment),
        "identity": await store.reachable(session, report.cfa_id),
    }


async def _answers(
    session: AsyncSession, services: Services, report: Report, media: list[Media]
) -> list[Answer]:
    survey = await services.engine.survey_version(session, report.survey_definition_id)
    by_id = {item.id: item for item in media}
    t = translator("en")
    shown = []
    for question in survey.questions:
        if question.id not in report.answers:
            continue
        value = report.answers[question.id]
        label = text_of(question.label, "en")
        if question.type in MEDIA_TYPES and isinstance(value, int):
            shown.append(Answer(label, question.type.value, by_id.get(value)))
        elif question.type != QuestionType.LOCATION:
            shown.append(Answer(label, show_answer(question, value, t)))
    return shown


async def _history(session: AsyncSession, report_id: int) -> list[tuple[AuditEntry, str]]:
    entries = await audit.history(session, "report", report_id)
    names = {u.id: u.name for u in await session.scalars(select(StaffUser))}
    return [(e, names.get(e.staff_user_id or 0, "the CFA")) for e in entries]


# Actions ------------------------------------------------------------------------------


@router.post("/desk/reports/{reference}/validate")
async def validate(request: Request, user: Editor, reference: str) -> Response:
    """Validate with the editor's summary in each language given."""
    form = await request.form()
    summaries = {
        str(key).removeprefix("summary_"): str(value)
        for key, value in form.items()
        if str(key).startswith("summary_")
    }

    async def act(session: AsyncSession, services: Services, report: Report) -> None:
        await review.validate(session, services.deployment, report, summaries, user.id)

    return await _act(request, reference, "validated", act)


@router.post("/desk/reports/{reference}/reject")
async def reject(
    request: Request, user: Editor, reference: str, reason: Annotated[str, Form()] = ""
) -> Response:
    """Reject with a reason (for staff; the CFA sees 'not taken forward')."""

    async def act(session: AsyncSession, services: Services, report: Report) -> None:
        await review.reject(session, report, reason, user.id)

    return await _act(request, reference, "rejected", act)


@router.post("/desk/reports/{reference}/duplicate")
async def duplicate(
    request: Request, user: Editor, reference: str, original: Annotated[str, Form()] = ""
) -> Response:
    """Mark as a duplicate of the report with the given reference."""

    async def act(session: AsyncSession, services: Services, report: Report) -> None:
        await review.mark_duplicate(session, report, original, user.id)

    return await _act(request, reference, "marked duplicate", act)


@router.post("/desk/reports/{reference}/attach")
async def attach(
    request: Request,
    user: Editor,
    reference: str,
    issue: Annotated[str, Form()] = "",
    title: Annotated[str, Form()] = "",
    authority: Annotated[str, Form()] = "",
) -> Response:
    """Attach to the chosen open issue, or to a new one when a title is given."""

    async def act(session: AsyncSession, services: Services, report: Report) -> None:
        target = await _issue_for(session, report, user, issue, title, authority)
        await issues.attach(session, target, report, user.id)

    return await _act(request, reference, "attached to the issue", act)


async def _issue_for(
    session: AsyncSession,
    report: Report,
    user: StaffUser,
    reference: str,
    title: str,
    authority: str,
) -> Issue:
    # An issue named but not found is said so, before a title can make a new one: an
    # editor who mistyped a reference meant an existing issue, not a new one.
    chosen = reference.strip()
    found = (
        await session.scalar(select(Issue).where(Issue.reference == chosen)) if chosen else None
    )
    if chosen and found is None:
        raise issues.IssueError(f"there is no issue {chosen}; choose one from the list")
    if title.strip():
        return await issues.create(
            session,
            title=title,
            staff_user_id=user.id,
            community_id=report.community_id,
            category=report.category,
            authority=authority,
        )
    if found is None:
        raise issues.IssueError("choose an issue, or give a title for a new one")
    return found


@router.post("/desk/reports/{reference}/ask")
async def ask(
    request: Request, user: Editor, reference: str, question: Annotated[str, Form()] = ""
) -> Response:
    """Ask the CFA a question; it reaches them through the outbox in their language."""

    async def act(session: AsyncSession, services: Services, report: Report) -> None:
        await review.ask_cfa(session, report, question, user.id)

    response = await _act(request, reference, "question sent to the CFA", act)
    _wake_outbox(request)
    return response


@router.post("/desk/reports/{reference}/sensitive")
async def sensitive(
    request: Request, user: Editor, reference: str, flag: Annotated[str, Form()] = "on"
) -> Response:
    """Flag as sensitive (kept out of bulletins unless added by hand), or unflag."""

    async def act(session: AsyncSession, services: Services, report: Report) -> None:
        await review.set_sensitive(session, report, flag == "on", user.id)

    return await _act(request, reference, "sensitivity changed", act)


async def _act(request: Request, reference: str, done: str, action: Any) -> Response:
    services: Services = request.app.state.services
    try:
        async with services.db.session() as session:
            await action(session, services, await _report(session, reference))
    except HelpdeskError as error:
        logger.info("report %s: action refused: %s", reference, error)
        return await _report_page(request, reference, error=str(error), status=400)
    return RedirectResponse(f"/desk/reports/{reference}?done={done}", status_code=303)


def _wake_outbox(request: Request) -> None:
    # The worker polls anyway; waking it sends the message now instead of at the next poll.
    outbox = getattr(request.app.state, "outbox", None)
    if outbox is not None:
        outbox.wake()


# Media --------------------------------------------------------------------------------


@router.get("/desk/media/{media_id}")
async def media_file(request: Request, user: Editor, media_id: RowId) -> Response:
    """A report's photo or voice note, from the media folder and nowhere else."""
    services: Services = request.app.state.services
    async with services.db.session() as session:
        media = await session.get(Media, media_id)
    if media is None:
        raise HTTPException(404, "no such media")

    root = services.settings.resolved_media_dir.resolve()
    path = (root / media.path).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        logger.warning(
            "media %s path %r is outside the media folder or gone", media_id, media.path
        )
        raise HTTPException(404, "no such media")
    return FileResponse(Path(path), media_type=media.mime_type)
