"""The conversation's storage: CFAs and their identities, invites, saved conversations,
reports and the intake ledger, all in the project's database.

Every function takes the caller's session and never commits: the engine commits once per
update, after every change of that update is made, and only then replies.
"""

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import conflict_insert, utcnow
from core.errors import HelpdeskError
from core.models import (
    Cfa,
    ChannelIdentity,
    Community,
    ConversationSession,
    Counter,
    Invite,
    Media,
    ProcessedUpdate,
    Report,
    SurveyDefinition,
)

logger = logging.getLogger(__name__)


class StoreError(HelpdeskError):
    """A stored record that was asked for does not exist or cannot be made."""


async def record_update(
    session: AsyncSession, channel: str, key: str, payload: dict[str, Any] | None
) -> bool:
    """Enter a delivered update in the ledger.

    Returns:
        False when the update was already there: a redelivery, to be ignored. The
        database decides, so two identical deliveries at the same moment cannot both win.
    """
    statement = (
        conflict_insert(session, ProcessedUpdate)
        .values(channel=channel, update_key=key, received_at=utcnow(), payload=payload)
        .on_conflict_do_nothing(index_elements=["channel", "update_key"])
    )
    result: Any = await session.execute(statement)
    return bool(result.rowcount)


async def mark_processed(session: AsyncSession, channel: str, key: str) -> None:
    """Mark an update handled and forget its payload (it may hold personal details)."""
    await session.execute(
        update(ProcessedUpdate)
        .where(ProcessedUpdate.channel == channel, ProcessedUpdate.update_key == key)
        .values(processed_at=utcnow(), payload=None)
    )


async def unprocessed_updates(session: AsyncSession, channel: str) -> list[ProcessedUpdate]:
    """Updates accepted but not handled, oldest first: what a crash interrupted."""
    rows = await session.scalars(
        select(ProcessedUpdate)
        .where(ProcessedUpdate.channel == channel, ProcessedUpdate.processed_at.is_(None))
        .order_by(ProcessedUpdate.received_at)
    )
    return list(rows)


async def find_cfa(session: AsyncSession, channel: str, address: str) -> Cfa | None:
    """The CFA who is ``address`` on ``channel``, if registered."""
    identity = await session.scalar(
        select(ChannelIdentity).where(
            ChannelIdentity.channel == channel, ChannelIdentity.address == address
        )
    )
    return identity.cfa if identity else None


async def load_conversation(session: AsyncSession, cfa: Cfa) -> ConversationSession:
    """The CFA's saved conversation, locked for this transaction; created when missing.

    On PostgreSQL the row is locked so two updates of one CFA handled by two processes
    take turns; SQLite's immediate transactions already serialise every writer.
    """
    conversation = await session.scalar(
        select(ConversationSession)
        .where(ConversationSession.cfa_id == cfa.id)
        .with_for_update(of=ConversationSession)
    )
    if conversation is None:
        conversation = ConversationSession(cfa_id=cfa.id, state="idle", answers={})
        session.add(conversation)
        await session.flush()
    return conversation


async def latest_definition(session: AsyncSession, survey_id: str) -> SurveyDefinition | None:
    """The newest stored version of a survey."""
    return await session.scalar(
        select(SurveyDefinition)
        .where(SurveyDefinition.survey_id == survey_id)
        .order_by(SurveyDefinition.id.desc())
        .limit(1)
    )


async def claim_invite(session: AsyncSession, code: str) -> Invite | None:
    """Use an invite code once: the first caller gets the invite, later ones None.

    The code is compared without regard to case, since people retype it.
    """
    now = utcnow()
    result = await session.execute(
        update(Invite)
        .where(
            func.upper(Invite.code) == code.strip().upper(),
            Invite.used_at.is_(None),
            Invite.expires_at > now,
        )
        .values(used_at=now)
        .returning(Invite.id)
    )
    invite_id = result.scalar_one_or_none()
    return await session.get(Invite, invite_id) if invite_id is not None else None


ROLES = ("reporter", "journalist")


async def create_invite(
    session: AsyncSession,
    *,
    community: str,
    language: str,
    code: str,
    valid_for: timedelta,
    name: str | None = None,
    role: str = "reporter",
) -> Invite:
    """A one-time invite for a new CFA of ``community`` (a community code).

    Raises:
        StoreError: the community is unknown or the role is not one of ``ROLES``.
    """
    if role not in ROLES:
        raise StoreError(f"role '{role}' is not {' or '.join(ROLES)}")
    found = await session.scalar(select(Community).where(Community.code == community))
    if found is None:
        codes = (await session.scalars(select(Community.code))).all()
        known = ", ".join(codes) or "none (run: helpdesk content load)"
        raise StoreError(f"no community '{community}'; known: {known}")

    invite = Invite(
        code=code,
        community_id=found.id,
        language=language,
        name=name,
        role=role,
        expires_at=utcnow() + valid_for,
    )
    session.add(invite)
    await session.flush()
    return invite


async def create_link_invite(
    session: AsyncSession, *, cfa_id: int, code: str, valid_for: timedelta
) -> Invite:
    """A one-time invite for an existing CFA to add a second channel (WhatsApp beside
    Telegram, say): whoever uses it becomes another identity of that same CFA.

    Raises:
        StoreError: there is no CFA ``cfa_id``.
    """
    cfa = await session.get(Cfa, cfa_id)
    if cfa is None:
        raise StoreError(f"no CFA {cfa_id}; see helpdesk cfa list")

    invite = Invite(
        code=code,
        community_id=cfa.community_id,
        language=cfa.language,
        name=cfa.name,
        role=cfa.role,
        cfa_id=cfa.id,
        expires_at=utcnow() + valid_for,
    )
    session.add(invite)
    await session.flush()
    return invite


async def register_cfa(
    session: AsyncSession, invite: Invite, channel: str, address: str, name: str
) -> Cfa:
    """Create the CFA an invite was for, with their first channel identity; an invite
    made for an existing CFA (``Invite.cfa_id`` set before use) adds the identity to them.
    """
    if invite.cfa_id is not None:
        return await _link_identity(session, invite, channel, address)

    cfa = Cfa(
        name=invite.name or name,
        community_id=invite.community_id,
        language=invite.language,
        status="active",
        role=invite.role,
    )
    session.add(cfa)
    await session.flush()
    session.add(ChannelIdentity(cfa_id=cfa.id, channel=channel, address=address))
    invite.cfa_id = cfa.id
    await session.flush()
    await session.refresh(cfa)
    logger.info("registered CFA %s (%s:%s) from invite %s", cfa.id, channel, address, invite.id)
    return cfa


async def _link_identity(session: AsyncSession, invite: Invite, channel: str, address: str) -> Cfa:
    assert invite.cfa_id is not None
    cfa = await session.get(Cfa, invite.cfa_id)
    if cfa is None:
        raise StoreError(f"invite {invite.id} is for CFA {invite.cfa_id}, who no longer exists")

    session.add(ChannelIdentity(cfa_id=cfa.id, channel=channel, address=address))
    await session.flush()
    await session.refresh(cfa)
    logger.info("CFA %s linked %s:%s from invite %s", cfa.id, channel, address, invite.id)
    return cfa


async def touch_inbound(session: AsyncSession, channel: str, address: str, at: datetime) -> None:
    """Note when the person last wrote, by the platform's clock; never moves back, so a
    late redelivery of an old message cannot shorten WhatsApp's 24-hour window."""
    await session.execute(
        update(ChannelIdentity)
        .where(
            ChannelIdentity.channel == channel,
            ChannelIdentity.address == address,
            (ChannelIdentity.last_inbound_at.is_(None)) | (ChannelIdentity.last_inbound_at < at),
        )
        .values(last_inbound_at=at)
    )


async def next_number(session: AsyncSession, name: str) -> int:
    """Advance the named counter and return its new value, atomically on both databases."""
    statement = conflict_insert(session, Counter).values(name=name, value=1)
    statement = statement.on_conflict_do_update(
        index_elements=["name"], set_={"value": Counter.value + 1}
    ).returning(Counter.value)
    return int((await session.execute(statement)).scalar_one())


async def add_media(session: AsyncSession, cfa_id: int, question_id: str, **fields: Any) -> int:
    """Record a stored photo or voice note; returns its id for the answer."""
    media = Media(cfa_id=cfa_id, question_id=question_id, **fields)
    session.add(media)
    await session.flush()
    return media.id


async def create_report(
    session: AsyncSession,
    *,
    reference: str,
    media_ids: list[int],
    **fields: Any,
) -> Report:
    """Store a submitted report and attach its media."""
    report = Report(reference=reference, status="received", submitted_at=utcnow(), **fields)
    session.add(report)
    await session.flush()
    if media_ids:
        await session.execute(
            update(Media).where(Media.id.in_(media_ids)).values(report_id=report.id)
        )
    return report


async def cfa_reports(session: AsyncSession, cfa_id: int, limit: int = 10) -> list[Report]:
    """The CFA's latest reports, newest first."""
    rows = await session.scalars(
        select(Report)
        .where(Report.cfa_id == cfa_id)
        .order_by(Report.submitted_at.desc(), Report.id.desc())
        .limit(limit)
    )
    return list(rows)


async def reachable(session: AsyncSession, cfa_id: int) -> ChannelIdentity | None:
    """The channel identity to write to a CFA on outside a conversation (reminders,
    notifications, questions from staff): the one registered last."""
    identity: ChannelIdentity | None = await session.scalar(
        select(ChannelIdentity)
        .where(ChannelIdentity.cfa_id == cfa_id, ChannelIdentity.channel != "terminal")
        .order_by(ChannelIdentity.created_at.desc())
        .limit(1)
    )
    return identity
