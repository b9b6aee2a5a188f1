"""The append-only audit trail: who did what, when, to which object, with their note.

There is deliberately no function here that changes or deletes an entry: the trail is
what staff answer to, so the code offers only :func:`record` and :func:`history`.
"""

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.models import AuditEntry

logger = logging.getLogger(__name__)


async def record(
    session: AsyncSession,
    *,
    action: str,
    object_type: str,
    object_id: int,
    staff_user_id: int | None,
    detail: dict[str, Any] | None = None,
    note: str | None = None,
) -> AuditEntry:
    """Add one entry to the trail (flushed, so it has its id)."""
    entry = AuditEntry(
        action=action,
        object_type=object_type,
        object_id=object_id,
        staff_user_id=staff_user_id,
        detail=detail or {},
        note=(note or "").strip() or None,
    )
    session.add(entry)
    await session.flush()
    logger.info(
        "audit %s: %s %s %s by staff %s", entry.id, action, object_type, object_id, staff_user_id
    )
    return entry


async def history(session: AsyncSession, object_type: str, object_id: int) -> list[AuditEntry]:
    """The entries about one object, oldest first."""
    query = (
        select(AuditEntry)
        .where(AuditEntry.object_type == object_type, AuditEntry.object_id == object_id)
        .order_by(AuditEntry.at, AuditEntry.id)
    )
    return list(await session.scalars(query))
