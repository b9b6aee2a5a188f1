"""A lease in the database that lets one process at a time do a singular duty.

Two service processes may share a database; only the holder of the ``scheduler`` lease
fires scheduled jobs and only the holder of the ``outbox`` lease delivers messages. The
holder renews its lease well before it expires; if it dies, another process takes over
once the lease has run out.

Taking or renewing is one conditional write, so two processes racing for a free lease
cannot both win: the insert of a new row conflicts on the primary key, and the update
of an expired row matches for only the first of them.
"""

import logging
import os
import socket
import uuid
from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError

from core.db import Database, utcnow
from core.models import SchedulerLease

logger = logging.getLogger(__name__)


def process_name() -> str:
    """A name for this process that is unique across hosts and restarts."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Lease:
    """One named lease, as seen by one process.

    Args:
        db: the shared database.
        name: what the lease guards, such as ``scheduler``.
        holder: this process's name (see :func:`process_name`).
        ttl_seconds: how long a lease lasts without renewal.
    """

    def __init__(self, db: Database, name: str, holder: str, ttl_seconds: float) -> None:
        self.db = db
        self.name = name
        self.holder = holder
        self.ttl = timedelta(seconds=ttl_seconds)
        self.held = False

    async def acquire(self) -> bool:
        """Take the lease if it is free or expired, or renew it if held; True if held."""
        now = utcnow()
        async with self.db.session() as session:
            result = await session.execute(
                update(SchedulerLease)
                .where(
                    SchedulerLease.name == self.name,
                    or_(SchedulerLease.holder == self.holder, SchedulerLease.expires_at < now),
                )
                .values(holder=self.holder, expires_at=now + self.ttl)
                .execution_options(synchronize_session=False)
            )
            held = bool(getattr(result, "rowcount", 0) == 1)
        if not held:
            held = await self._insert(now)
        self._note(held)
        return held

    async def _insert(self, now: datetime) -> bool:
        try:
            async with self.db.session() as session:
                session.add(
                    SchedulerLease(
                        name=self.name,
                        holder=self.holder,
                        acquired_at=now,
                        expires_at=now + self.ttl,
                    )
                )
        except IntegrityError:
            return False
        return True

    def _note(self, held: bool) -> None:
        if held and not self.held:
            logger.info("lease %s taken by %s", self.name, self.holder)
        elif self.held and not held:
            logger.warning("lease %s lost by %s; another process holds it", self.name, self.holder)
        self.held = held

    async def release(self) -> None:
        """Give the lease up at once, so another process need not wait for it to expire."""
        if not self.held:
            return
        async with self.db.session() as session:
            await session.execute(
                update(SchedulerLease)
                .where(SchedulerLease.name == self.name, SchedulerLease.holder == self.holder)
                .values(expires_at=utcnow())
            )
        self.held = False
        logger.info("lease %s released by %s", self.name, self.holder)
