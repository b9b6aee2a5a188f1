"""Issues on the desk: the list, opening one, and following it with the authorities.

The rules (allowed moves, the audit entry, telling the CFAs) are :mod:`core.issues`'s.
Viewers see issues and the anonymised reports in them, without staff notes.
"""

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core import audit, issues, review
from core.desk.auth import Editor, Viewer
from core.desk.params import RowId
from core.desk.templating import render
from core.errors import HelpdeskError
from core.models import Community, Issue, Report, StaffUser
from core.services import Services

logger = logging.getLogger(__name__)

router = APIRouter()


@router.get("/desk/issues")
async def issue_list(request: Request, user: Viewer, status: str = "") -> Response:
    """Every issue, newest first, and the form that opens a new one."""
    return await _list_page(request, status)


async def _list_page(
    request: Request, status: str = "", error: str | None = None, code: int = 200
) -> Response:
    services: Services = request.app.state.services
    query = select(Issue).order_by(Issue.created_at.desc())
    if status in issues.STATUSES:
        query = query.where(Issue.status == status)
    async with services.db.session() as session:
        found = list(await session.scalars(query))
        communities = list(await session.scalars(select(Community).order_by(Community.code)))
    context = {
        "issues": found,
        "communities": {c.id: c for c in communities},
        "statuses": issues.STATUSES,
        "status": status,
        "error": error,
    }
    return render(request, "issues.html", context, status=code)


@router.post("/desk/issues")
async def issue_create(
    request: Request,
    user: Editor,
    title: Annotated[str, Form()] = "",
    authority: Annotated[str, Form()] = "",
    community: Annotated[str, Form()] = "",
    category: Annotated[str, Form()] = "",
) -> Response:
    """Open an issue."""
    services: Services = request.app.state.services
    try:
        async with services.db.session() as session:
            place = await session.scalar(select(Community).where(Community.code == community))
            issue = await issues.create(
                session,
                title=title,
                staff_user_id=user.id,
                community_id=place.id if place else None,
                category=category,
                authority=authority,
            )
    except HelpdeskError as error:
        return await _list_page(request, error=str(error), code=400)
    return RedirectResponse(f"/desk/issues/{issue.id}", status_code=303)


@router.get("/desk/issues/{issue_id}")
async def issue_page(request: Request, user: Viewer, issue_id: RowId) -> Response:
    """One issue: its reports, its status and what may come next, its history."""
    return await _issue_page(request, issue_id)


async def _issue_page(
    request: Request, issue_id: int, error: str | None = None, code: int = 200
) -> Response:
    services: Services = request.app.state.services
    async with services.db.session() as session:
        context = await _issue_context(session, services, issue_id)
    notice = request.query_params.get("done")
    context |= {"error": error, "notice": f"Done: {notice}." if notice else None}
    return render(request, "issue.html", context, status=code)


async def _issue_context(
    session: AsyncSession, services: Services, issue_id: int
) -> dict[str, Any]:
    issue = await session.get(Issue, issue_id)
    if issue is None:
        raise HTTPException(404, f"no issue {issue_id}")
    reports = (
        await session.scalars(
            select(Report).where(Report.issue_id == issue.id).order_by(Report.id)
        )
    ).unique()
    names = {u.id: u.name for u in await session.scalars(select(StaffUser))}
    entries = await audit.history(session, "issue", issue.id)
    return {
        "issue": issue,
        "community": await session.get(Community, issue.community_id)
        if issue.community_id
        else None,
        "reports": list(reports),
        "next_statuses": issues.next_statuses(issue),
        "history": [(e, names.get(e.staff_user_id or 0, "—")) for e in entries],
        "languages": review.summary_languages(services.deployment),
    }


@router.post("/desk/issues/{issue_id}/status")
async def issue_status(request: Request, user: Editor, issue_id: RowId) -> Response:
    """Move the issue on; the CFAs of its reports are told in their language."""
    services: Services = request.app.state.services
    form = await request.form()
    outcome = {
        str(key).removeprefix("outcome_"): str(value)
        for key, value in form.items()
        if str(key).startswith("outcome_")
    }
    try:
        async with services.db.session() as session:
            issue = await session.get(Issue, issue_id)
            if issue is None:
                raise HTTPException(404, f"no issue {issue_id}")
            told = await issues.change_status(
                session,
                issue,
                str(form.get("status", "")),
                user.id,
                note=str(form.get("note", "")),
                authority=str(form.get("authority", "")),
                outcome=outcome,
            )
    except HelpdeskError as error:
        return await _issue_page(request, issue_id, error=str(error), code=400)

    outbox = getattr(request.app.state, "outbox", None)
    if outbox is not None:
        outbox.wake()
    done = f"now {issue.status}; {told} CFA(s) told"
    return RedirectResponse(f"/desk/issues/{issue_id}?done={done}", status_code=303)
