"""The read API for partners under ``/api/v1``: reports, issues and the figures.

A partner sends ``Authorization: Bearer <token>``; tokens come from ``helpdesk api-token
create`` and only their SHA-256 is stored (:class:`core.models.ApiToken`). No token, or
one we do not know, is 401; a revoked one is 403.

What a partner sees is what the desk shows a viewer: a report's reference, community,
category, status, dates and the editor's summary, never the CFA's answers, name, number,
chat id, place or coordinates; a sensitive report (security, justice, trafficking) is
listed without its summary. Issues come with their status, authority, dates and outcome.
"""

import hashlib
import logging
import secrets
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Generic, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from core import figures
from core.db import utcnow
from core.errors import HelpdeskError
from core.models import ApiToken, Community, Issue, Report
from core.services import Services

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1", tags=["partner API"])

# Writing last_used_at on every call would make each read a write; every few minutes says
# as much about whether a partner still uses its token.
USED_EVERY = timedelta(minutes=5)
MAX_PAGE = 500
# Far beyond any listing we will hold, and far inside the 64-bit integers SQLite and
# PostgreSQL take: a larger offset overflowed in the driver and answered 500.
MAX_OFFSET = 1_000_000_000
T = TypeVar("T")

Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"at most {MAX_PAGE} a page")]
Offset = Annotated[
    int, Query(ge=0, le=MAX_OFFSET, description=f"how many to skip, at most {MAX_OFFSET:,}")
]
Since = Annotated[
    datetime | None,
    Query(
        description="sent at or after this: a date (`2026-12-03`, from the start of that day "
        "in UTC), or a time (`2026-12-03T19:56:00`), read as UTC unless it carries a zone "
        "(`2026-12-03T19:56:00+05:45`)"
    ),
]

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="partner token",
    description="A token from `helpdesk api-token create NAME`, sent as a Bearer token.",
)


class ApiTokenError(HelpdeskError):
    """A partner token cannot be created or revoked as asked."""


# Tokens -------------------------------------------------------------------------------


def token_digest(token: str) -> str:
    """The SHA-256 of a token, as :class:`ApiToken` stores it."""
    return hashlib.sha256(token.encode()).hexdigest()


async def create_token(session: AsyncSession, name: str) -> tuple[ApiToken, str]:
    """A new partner token named ``name``; returns the row and the token, shown once.

    Raises:
        ApiTokenError: the name is empty.
    """
    name = " ".join(name.split())
    if not name:
        raise ApiTokenError("a token needs a name that says whose it is")
    token = "hp_" + secrets.token_urlsafe(32)
    row = ApiToken(name=name[:200], token_hash=token_digest(token))
    session.add(row)
    await session.flush()
    logger.info("api token %s created for %r", row.id, row.name)
    return row, token


async def list_tokens(session: AsyncSession) -> list[ApiToken]:
    """Every partner token, revoked ones too, oldest first."""
    return list(await session.scalars(select(ApiToken).order_by(ApiToken.id)))


async def revoke_token(session: AsyncSession, token_id: int) -> ApiToken:
    """Stop a token from working; revoking it again changes nothing.

    Raises:
        ApiTokenError: no such token.
    """
    row = await session.get(ApiToken, token_id)
    if row is None:
        raise ApiTokenError(f"no api token {token_id} (helpdesk api-token list)")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        logger.info("api token %s (%r) revoked", row.id, row.name)
    return row


async def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ApiToken:
    """FastAPI dependency: the partner's live token.

    Raises:
        HTTPException: 401 without a bearer token or with an unknown one, 403 when it was
            revoked.
    """
    client = request.client.host if request.client else "?"
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(401, "send a partner token", headers={"WWW-Authenticate": "Bearer"})

    services: Services = request.app.state.services
    async with services.db.session() as session:
        row = await session.scalar(
            select(ApiToken).where(ApiToken.token_hash == token_digest(credentials.credentials))
        )
        if row is None:
            logger.warning("api %s from %s refused: unknown token", request.url.path, client)
            raise HTTPException(401, "unknown token", headers={"WWW-Authenticate": "Bearer"})
        if row.revoked_at is not None:
            logger.warning(
                "api %s from %s refused: token %s revoked", request.url.path, client, row.id
            )
            raise HTTPException(403, "this token was revoked")
        now = utcnow()
        if row.last_used_at is None or now - row.last_used_at > USED_EVERY:
            row.last_used_at = now
    return row


Partner = Annotated[ApiToken, Depends(require_token)]


# What a partner gets ------------------------------------------------------------------


class ReportOut(BaseModel):
    """A report as a partner sees it: no answers, names, numbers, places or chat ids."""

    reference: str
    community: str = Field(description="community code, as in the deployment file")
    category: str
    kind: str = Field(description="'survey' (the monthly survey) or 'report' (a problem)")
    status: str
    submitted_at: datetime
    validated_at: datetime | None
    sensitive: bool
    summary: dict[str, str] | None = Field(
        description="the editor's summary per language; none until validated, never "
        "for a sensitive report"
    )
    issue: str | None = Field(description="reference of the issue it is attached to")


class IssueOut(BaseModel):
    """An issue followed with the authorities."""

    reference: str
    community: str | None
    category: str | None
    status: str
    authority: str | None
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    outcome: dict[str, str] | None = Field(description="what the CFAs were told, per language")
    reports: list[str] = Field(description="references of its reports")


class Page(BaseModel, Generic[T]):
    """One page of a listing."""

    total: int
    limit: int
    offset: int
    items: list[T]


class FiguresOut(BaseModel):
    """The figures of :mod:`core.figures`, one row per month and community and one per
    month for the programme (community ``all``)."""

    months: list[str]
    timezone: str
    rows: list[dict[str, Any]]


def report_out(report: Report, codes: dict[int, str], issues: dict[int, str]) -> ReportOut:
    """What a partner sees of ``report``."""
    shown = report.summary if report.summary and not report.sensitive else None
    return ReportOut(
        reference=report.reference,
        community=codes.get(report.community_id, ""),
        category=report.category,
        kind=report.kind,
        status=report.status,
        submitted_at=report.submitted_at,
        validated_at=report.validated_at,
        sensitive=report.sensitive,
        summary={str(k): str(v) for k, v in shown.items()} if shown else None,
        issue=issues.get(report.issue_id) if report.issue_id else None,
    )


def issue_out(issue: Issue, codes: dict[int, str]) -> IssueOut:
    """What a partner sees of ``issue``."""
    return IssueOut(
        reference=issue.reference,
        community=codes.get(issue.community_id) if issue.community_id else None,
        category=issue.category,
        status=issue.status,
        authority=issue.authority,
        created_at=issue.created_at,
        updated_at=issue.updated_at,
        resolved_at=issue.resolved_at,
        outcome={str(k): str(v) for k, v in issue.outcome.items()} if issue.outcome else None,
        reports=sorted(report.reference for report in issue.reports),
    )


# Routes -------------------------------------------------------------------------------


@router.get("/reports", response_model=Page[ReportOut])
async def reports(
    request: Request,
    partner: Partner,
    status: str | None = None,
    community: Annotated[str | None, Query(description="a community code")] = None,
    since: Since = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[ReportOut]:
    """Reports, newest first, optionally of one status or community."""
    services: Services = request.app.state.services
    async with services.db.session() as session:
        codes = await _codes(session)
        query = select(Report)
        if status:
            query = query.where(Report.status == status)
        if community:
            query = query.where(Report.community_id.in_(_ids_of(codes, community)))
        if since:
            query = query.where(Report.submitted_at >= as_utc(since))
        total = await _count(session, query)
        rows = (
            await session.scalars(
                query.order_by(Report.submitted_at.desc(), Report.id.desc())
                .limit(limit)
                .offset(offset)
            )
        ).unique()
        found = list(rows)
        issues = await _issue_references(session, {r.issue_id for r in found if r.issue_id})
        items = [report_out(report, codes, issues) for report in found]
    logger.info("api reports for token %s: %d of %d", partner.id, len(items), total)
    return Page(total=total, limit=limit, offset=offset, items=items)


@router.get("/reports/{reference}", response_model=ReportOut)
async def report(request: Request, partner: Partner, reference: str) -> ReportOut:
    """One report by its reference."""
    services: Services = request.app.state.services
    async with services.db.session() as session:
        found = await session.scalar(select(Report).where(Report.reference == reference))
        if found is None:
            raise HTTPException(404, f"no report {reference}")
        issues = await _issue_references(session, {found.issue_id} if found.issue_id else set())
        return report_out(found, await _codes(session), issues)


@router.get("/issues", response_model=Page[IssueOut])
async def issues(
    request: Request,
    partner: Partner,
    status: str | None = None,
    community: Annotated[str | None, Query(description="a community code")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[IssueOut]:
    """Issues, most recently changed first, optionally of one status or community."""
    services: Services = request.app.state.services
    async with services.db.session() as session:
        codes = await _codes(session)
        query = select(Issue)
        if status:
            query = query.where(Issue.status == status)
        if community:
            query = query.where(Issue.community_id.in_(_ids_of(codes, community)))
        total = await _count(session, query)
        rows = await session.scalars(
            query.options(selectinload(Issue.reports))
            .order_by(Issue.updated_at.desc(), Issue.id.desc())
            .limit(limit)
            .offset(offset)
        )
        items = [issue_out(issue, codes) for issue in rows.unique()]
    logger.info("api issues for token %s: %d of %d", partner.id, len(items), total)
    return Page(total=total, limit=limit, offset=offset, items=items)


@router.get("/figures", response_model=FiguresOut)
async def figures_of(
    request: Request,
    partner: Partner,
    first: Annotated[str | None, Query(alias="from", description="first month, YYYY-MM")] = None,
    last: Annotated[str | None, Query(alias="to", description="last month, YYYY-MM")] = None,
) -> FiguresOut:
    """The programme's figures per month and community (the last six months by default)."""
    services: Services = request.app.state.services
    deployment = services.deployment
    try:
        months = _months(deployment, first, last)
    except figures.FiguresError as error:
        raise HTTPException(422, str(error)) from error
    async with services.db.session() as session:
        counted = await figures.compute(session, deployment, months)
    logger.info("api figures for token %s: %s to %s", partner.id, months[0], months[-1])
    return FiguresOut(
        months=months,
        timezone=figures.programme_timezone(deployment),
        rows=figures.records(counted),
    )


def as_utc(moment: datetime) -> datetime:
    """``moment`` in UTC; one without a zone (a date parses as its midnight) is taken as
    UTC, since the columns refuse naive values."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _months(deployment: Any, first: str | None, last: str | None) -> list[str]:
    recent = figures.recent_months(deployment, 6)
    return figures.month_range(first or recent[0], last or recent[-1])


async def _codes(session: AsyncSession) -> dict[int, str]:
    rows = await session.execute(select(Community.id, Community.code))
    return dict(iter(rows.all()))


def _ids_of(codes: dict[int, str], community: str) -> list[int]:
    return [community_id for community_id, code in codes.items() if code == community]


async def _count(session: AsyncSession, query: Any) -> int:
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    return int(total or 0)


async def _issue_references(session: AsyncSession, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = await session.execute(select(Issue.id, Issue.reference).where(Issue.id.in_(ids)))
    return dict(iter(rows.all()))
