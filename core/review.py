"""Reviewing what CFAs report: the rules staff apply to a received report, shared by the
desk and ``helpdesk reports validate``.

A report is validated with an editor's summary per language (what may go on air),
rejected with a reason, or marked a duplicate of another report; it may be flagged
sensitive (left out of bulletins unless added by hand), and staff may ask its CFA for
more information. Every decision is recorded in the audit trail. Report statuses::

    received ──validate──> validated ──(its issue moves)──> in_progress ──> resolved
        ├──reject──> rejected
        └──duplicate──> duplicate
"""

import logging
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import store
from bot.prompts import INFO_REQUEST, INFO_THANKS
from core import audit
from core.db import utcnow
from core.deployment import Deployment
from core.errors import HelpdeskError
from core.i18n import translator
from core.models import Cfa, InfoRequest, Report
from core.outbox import Part, enqueue

logger = logging.getLogger(__name__)

# Beyond this an open question is stale: a CFA's message then is not taken as its answer.
OPEN_REQUEST_DAYS = 14


class ReviewError(HelpdeskError):
    """A review step cannot be done as asked (empty summary, unknown report...)."""


def summary_languages(deployment: Deployment) -> list[str]:
    """The languages a summary may be written in: the deployment's and its templates'."""
    return sorted({*deployment.languages, *deployment.templates})


async def find_report(session: AsyncSession, reference: str) -> Report:
    """The report with ``reference``.

    Raises:
        ReviewError: there is none.
    """
    report = await session.scalar(select(Report).where(Report.reference == reference.strip()))
    if report is None:
        raise ReviewError(f"no report {reference} (see helpdesk reports list)")
    return report


async def validate(
    session: AsyncSession,
    deployment: Deployment,
    report: Report,
    summaries: dict[str, str],
    staff_user_id: int | None,
) -> Report:
    """Mark ``report`` validated with the editor's summaries (merged with earlier ones).

    Args:
        summaries: language code to summary; blank ones are ignored.

    Raises:
        ReviewError: no summary given, or one in a language the deployment does not air.
    """
    cleaned = {
        language.strip().lower(): " ".join(text.split())
        for language, text in summaries.items()
        if text.strip()
    }
    if not cleaned:
        raise ReviewError("the summary is empty")
    allowed = summary_languages(deployment)
    for language in cleaned:
        if language not in allowed:
            raise ReviewError(
                f"'{language}' is not a language of this deployment ({', '.join(allowed)})"
            )

    report.summary = {**(report.summary or {}), **cleaned}
    report.status = "validated"
    report.validated_at = report.validated_at or utcnow()
    report.validated_by = staff_user_id or report.validated_by
    report.sensitive = (
        report.sensitive or report.category in deployment.config.sensitive_categories
    )
    await _audit(session, report, "validated", staff_user_id, {"languages": sorted(cleaned)})
    return report


async def reject(
    session: AsyncSession, report: Report, reason: str, staff_user_id: int | None
) -> Report:
    """Mark ``report`` rejected, with the reason (kept for staff, not sent to the CFA).

    Raises:
        ReviewError: the reason is empty.
    """
    reason = reason.strip()
    if not reason:
        raise ReviewError("say why the report is rejected")
    report.status = "rejected"
    report.rejected_reason = reason
    await _audit(session, report, "rejected", staff_user_id, note=reason)
    return report


async def mark_duplicate(
    session: AsyncSession, report: Report, original_reference: str, staff_user_id: int | None
) -> Report:
    """Mark ``report`` a duplicate of the report with ``original_reference``.

    Raises:
        ReviewError: no such report, or it is the same report.
    """
    original = await find_report(session, original_reference)
    if original.id == report.id:
        raise ReviewError("a report cannot be a duplicate of itself")
    report.status = "duplicate"
    report.duplicate_of_id = original.id
    await _audit(session, report, "duplicate", staff_user_id, {"of": original.reference})
    return report


async def set_sensitive(
    session: AsyncSession, report: Report, sensitive: bool, staff_user_id: int | None
) -> Report:
    """Flag ``report`` sensitive (kept out of bulletins unless added by hand), or unflag it."""
    report.sensitive = sensitive
    action = "flagged_sensitive" if sensitive else "unflagged_sensitive"
    await _audit(session, report, action, staff_user_id)
    return report


async def ask_cfa(
    session: AsyncSession, report: Report, question: str, staff_user_id: int | None
) -> InfoRequest:
    """Ask the report's CFA a question, through the outbox, in the CFA's language.

    The CFA's next message while no survey is under way is taken as the answer (see
    :func:`take_answer`).

    Raises:
        ReviewError: the question is empty, or the CFA has no channel to reach them on.
    """
    question = question.strip()
    if not question:
        raise ReviewError("the question is empty")
    identity = await store.reachable(session, report.cfa_id)
    if identity is None:
        raise ReviewError(f"the CFA of {report.reference} has no channel to ask them on")

    request = InfoRequest(report_id=report.id, question=question, asked_by=staff_user_id)
    session.add(request)
    await session.flush()
    t = translator(report.cfa.language)
    text = t.gettext(INFO_REQUEST) % {"reference": report.reference, "question": question}
    await enqueue(
        session,
        dedupe_key=f"info:{request.id}",
        channel=identity.channel,
        address=identity.address,
        purpose="notification",
        parts=[Part(kind="text", text=text)],
        cfa_id=report.cfa_id,
    )
    await _audit(session, report, "asked_cfa", staff_user_id, note=question)
    return request


async def take_answer(session: AsyncSession, cfa: Cfa, text: str) -> str | None:
    """Store ``text`` as the answer to the CFA's latest open question, if there is one.

    Returns:
        The thank-you to reply with, in the CFA's language; None when nothing was asked.
    """
    since = utcnow() - timedelta(days=OPEN_REQUEST_DAYS)
    request = await session.scalar(
        select(InfoRequest)
        .join(Report, Report.id == InfoRequest.report_id)
        .where(
            Report.cfa_id == cfa.id,
            InfoRequest.answer.is_(None),
            InfoRequest.asked_at > since,
        )
        .order_by(InfoRequest.asked_at.desc())
        .limit(1)
    )
    if request is None or not text.strip():
        return None

    request.answer = text.strip()
    request.answered_at = utcnow()
    report = await session.get_one(Report, request.report_id)
    await audit.record(
        session,
        action="cfa_answered",
        object_type="report",
        object_id=report.id,
        staff_user_id=None,
        detail={"info_request": request.id},
    )
    logger.info("cfa %s answered info request %s on report %s", cfa.id, request.id, report.id)
    return translator(cfa.language).gettext(INFO_THANKS) % {"reference": report.reference}


async def _audit(
    session: AsyncSession,
    report: Report,
    action: str,
    staff_user_id: int | None,
    detail: dict[str, object] | None = None,
    note: str | None = None,
) -> None:
    await audit.record(
        session,
        action=action,
        object_type="report",
        object_id=report.id,
        staff_user_id=staff_user_id,
        detail=dict(detail or {}),
        note=note,
    )
    logger.info("report %s %s by staff %s", report.reference, action, staff_user_id)
