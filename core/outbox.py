"""The outbox: every message the service starts (bulletin broadcasts, reminders, status
notifications) is queued here as a row of the delivery ledger, then delivered by one
worker that paces itself to the channel's limits and survives restarts.

A message is one or more :class:`Part` (texts and voice messages) to one address on one
channel. Channels plug in a :class:`Sender`, which sends one part and classifies what
happened as an :class:`Outcome`; this module decides what that means for the ledger:

======================  ============================================================
outcome                 what the ledger does
======================  ============================================================
sent                    ``parts_sent`` + 1, committed before the next part; ``sent``
                        once all parts are out
retry_after(seconds)    the chat pauses at least that long; the row waits as long
retry                   network fault or server error: the row waits 2, 4, 8 ... s;
                        ``failed`` after ``outbox_max_attempts`` tries
blocked                 the row, and every queued row to that chat, ``blocked``; the
                        recipient set ``inactive`` with the reason; never retried
not_found               the same with ``not_found``
migrated(address)       the recipient and the queued rows take the new address; the
                        part is sent again once
failed                  this row ``failed``; other rows to the chat go on
======================  ============================================================

Delivery order: rows are taken oldest first; one chat's rows go out one after the other
and a row's parts in order, while different chats are served concurrently. A chat whose
oldest row waits for a retry is left alone until it is due, so a later row never
overtakes it.

Crash safety: ``parts_sent`` is committed after every part, so a restart sends only
what was not yet sent. The one gap is the part in flight at the instant of a crash: if
the channel accepted it but the answer never came back, it goes again after the
restart (the Telegram Bot API has no idempotency key to prevent that).

Only the holder of the ``outbox`` lease delivers (see :mod:`core.lease`), so two
service processes sharing a database never both send.
"""

import asyncio
import contextlib
import dataclasses
import html
import logging
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.channels.base import split_escaped, utf16_length
from core.config import Settings
from core.db import Database, conflict_insert, utcnow
from core.errors import HelpdeskError
from core.lease import Lease, process_name
from core.models import OutboxMessage, Recipient
from core.pacing import Pacer, Rates

logger = logging.getLogger(__name__)

PURPOSES = ("broadcast", "reminder", "notification")
PART_KINDS = ("text", "voice")
LEASE_NAME = "outbox"
# The longest pause between two tries after a network fault or server error.
MAX_BACKOFF_SECONDS = 300.0
# The smallest limits of the channels we serve (Telegram's; WhatsApp's are larger).
TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
# How often to look for more rows while those in memory run low.
TOP_UP_SECONDS = 0.05


class OutboxError(HelpdeskError):
    """A message cannot be queued as asked."""


Buttons = tuple[tuple[tuple[str, str], ...], ...]


@dataclass(frozen=True)
class Part:
    """One piece of a message: a text, or a voice message with an optional caption.

    ``path`` is the media file relative to the media folder; ``buttons`` are rows of
    (label, callback data) shown under the part.
    """

    kind: str
    text: str = ""
    path: str | None = None
    caption: str = ""
    buttons: Buttons = ()

    def __post_init__(self) -> None:
        if self.kind not in PART_KINDS:
            raise OutboxError(f"a part is {' or '.join(PART_KINDS)}, not '{self.kind}'")
        if self.kind == "text" and not self.text:
            raise OutboxError("a text part needs some text")
        if self.kind == "voice" and not self.path:
            raise OutboxError("a voice part needs the path of its file")

    def to_json(self) -> dict[str, Any]:
        """The part as the ledger stores it (only what is set)."""
        data: dict[str, Any] = {"kind": self.kind}
        for name in ("text", "path", "caption"):
            if value := getattr(self, name):
                data[name] = value
        if self.buttons:
            data["buttons"] = [[list(button) for button in row] for row in self.buttons]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Part":
        """A part read back from the ledger."""
        buttons = tuple(
            tuple((str(label), str(payload)) for label, payload in row)
            for row in data.get("buttons", ())
        )
        return cls(
            kind=str(data["kind"]),
            text=str(data.get("text", "")),
            path=data.get("path"),
            caption=str(data.get("caption", "")),
            buttons=buttons,
        )


class OutcomeKind(StrEnum):
    """What became of one part, as a channel's sender classified it."""

    SENT = "sent"
    RETRY_AFTER = "retry_after"
    RETRY = "retry"
    BLOCKED = "blocked"
    NOT_FOUND = "not_found"
    MIGRATED = "migrated"
    FAILED = "failed"


@dataclass(frozen=True)
class Outcome:
    """The result of sending one part; build it with the class methods.

    ``delay`` is the wait a flood limit asked for, ``address`` the chat's new address
    after a migration, ``error_code`` and ``description`` what the channel answered.
    """

    kind: OutcomeKind
    delay: float = 0.0
    address: str | None = None
    error_code: int | None = None
    description: str = ""

    @classmethod
    def sent(cls) -> "Outcome":
        """The channel accepted the part."""
        return cls(OutcomeKind.SENT)

    @classmethod
    def retry_after(cls, seconds: float, description: str = "") -> "Outcome":
        """A flood limit: try again after ``seconds``."""
        return cls(OutcomeKind.RETRY_AFTER, delay=seconds, error_code=429, description=description)

    @classmethod
    def retry(cls, description: str, error_code: int | None = None) -> "Outcome":
        """A fault that may pass (network, server error): try again later."""
        return cls(OutcomeKind.RETRY, error_code=error_code, description=description)

    @classmethod
    def blocked(cls, description: str, error_code: int | None = 403) -> "Outcome":
        """The bot was blocked, removed from the chat, or the user deactivated."""
        return cls(OutcomeKind.BLOCKED, error_code=error_code, description=description)

    @classmethod
    def not_found(cls, description: str, error_code: int | None = 400) -> "Outcome":
        """The chat does not exist (any more)."""
        return cls(OutcomeKind.NOT_FOUND, error_code=error_code, description=description)

    @classmethod
    def migrated(cls, address: str, description: str = "") -> "Outcome":
        """The chat moved to ``address`` (a group upgraded to a supergroup)."""
        return cls(OutcomeKind.MIGRATED, address=address, error_code=400, description=description)

    @classmethod
    def failed(cls, description: str, error_code: int | None = None) -> "Outcome":
        """A permanent refusal of this part; trying again would not help."""
        return cls(OutcomeKind.FAILED, error_code=error_code, description=description)


@dataclass(frozen=True)
class Delivery:
    """Which ledger row a part belongs to, for senders whose sending depends on it
    (WhatsApp picks a template by purpose and the recipient's language)."""

    outbox_id: int
    part_index: int
    purpose: str
    cfa_id: int | None = None
    recipient_id: int | None = None


class Sender(Protocol):
    """What a channel implements to deliver outbox parts."""

    async def send(
        self, address: str, part: Part, media_path: Path | None, delivery: Delivery
    ) -> Outcome:
        """Send one part to ``address``; ``media_path`` is the part's file, if it has one.

        Must classify every answer of the channel as an :class:`Outcome` rather than
        raise; an exception is taken as a fault worth retrying.
        """
        ...


@dataclass
class DeliveryStats:
    """What one delivery pass did: messages and parts sent, and what went wrong."""

    sent: int = 0
    parts: int = 0
    retried: int = 0
    rate_limited: int = 0
    migrated: int = 0
    blocked: int = 0
    not_found: int = 0
    failed: int = 0
    lease_held: bool = True

    def since(self, earlier: "DeliveryStats") -> "DeliveryStats":
        """The counts added after ``earlier`` was copied."""
        counts = {
            f.name: getattr(self, f.name) - getattr(earlier, f.name)
            for f in dataclasses.fields(self)
            if f.name != "lease_held"
        }
        return DeliveryStats(**counts, lease_held=self.lease_held)


def text_parts(text: str, limit: int = TEXT_LIMIT) -> list[Part]:
    """``text`` as text parts that each fit in one message, cut between paragraphs.

    The limit holds for the text as HTML-escaped, the longest form a channel sends
    (``&`` is five characters in Telegram's HTML), so no channel has to cut it again.
    """
    return [Part("text", text=piece) for piece in split_escaped(text, limit)]


def caption_fits(caption: str, limit: int = CAPTION_LIMIT) -> bool:
    """Whether a caption fits under a voice message, measured as escaped HTML."""
    return utf16_length(html.escape(caption, quote=False)) <= limit


# Queueing -----------------------------------------------------------------------------


async def enqueue(
    session: AsyncSession,
    *,
    dedupe_key: str,
    channel: str,
    address: str,
    purpose: str,
    parts: list[Part],
    recipient_id: int | None = None,
    cfa_id: int | None = None,
    broadcast_id: int | None = None,
    not_before: datetime | None = None,
) -> bool:
    """Queue a message once: a second call with the same ``dedupe_key`` does nothing.

    The database decides (insert or ignore on the unique key), so two processes queueing
    the same reminder at the same moment still make one row. Commits nothing itself.

    Returns:
        True if the message was newly queued.

    Raises:
        OutboxError: no parts, or an unknown purpose.
    """
    if purpose not in PURPOSES:
        raise OutboxError(f"purpose is one of {', '.join(PURPOSES)}, not '{purpose}'")
    if not parts:
        raise OutboxError(f"message {dedupe_key} has no parts")

    now = utcnow()
    statement = (
        conflict_insert(session, OutboxMessage)
        .values(
            dedupe_key=dedupe_key,
            channel=channel,
            address=address,
            purpose=purpose,
            broadcast_id=broadcast_id,
            recipient_id=recipient_id,
            cfa_id=cfa_id,
            parts=[part.to_json() for part in parts],
            parts_sent=0,
            state="queued",
            attempts=0,
            next_attempt_at=not_before or now,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
    )
    result: Any = await session.execute(statement)
    queued = bool(result.rowcount)
    logger.debug("outbox %s to %s:%s queued: %s", dedupe_key, channel, address, queued)
    return queued


# Delivery -----------------------------------------------------------------------------


@dataclass
class _Row:
    """What delivering one ledger row needs, held while its chat is served."""

    id: int
    channel: str
    address: str
    purpose: str
    parts: list[Part]
    parts_sent: int
    attempts: int
    recipient_id: int | None
    cfa_id: int | None = None
    migrated: bool = False


class _Done(StrEnum):
    """How a chat task left a row."""

    FINISHED = "finished"  # sent, or given up for good
    WAITING = "waiting"  # retry later; the chat's later rows wait too
    CHAT_CLOSED = "chat_closed"  # blocked or gone: the chat's other rows were closed too
    STOPPED = "stopped"  # the worker is stopping; the row stays as it is


@dataclass
class _Chat:
    rows: deque[_Row] = field(default_factory=deque)
    task: "asyncio.Task[None] | None" = None


class OutboxWorker:
    """Delivers due outbox rows through the channels' senders, paced and resumable.

    Args:
        db: the database holding the ledger.
        settings: rates (``outbox_*``), poll interval and lease length.
        senders: a :class:`Sender` per channel name; rows of other channels stay queued.
        media_dir: the folder that parts' ``path`` is relative to.
        pacer: the pacing to use (built from the settings unless given).
        holder: this process's name for the lease.
    """

    def __init__(
        self,
        db: Database,
        settings: Settings,
        senders: dict[str, Sender],
        media_dir: Path,
        *,
        pacer: Pacer | None = None,
        holder: str | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.senders = senders
        self.media_dir = media_dir
        self.pacer = pacer or Pacer(
            Rates(
                settings.outbox_overall_per_second,
                settings.outbox_group_per_minute,
                settings.outbox_chat_per_second,
            )
        )
        self.lease = Lease(db, LEASE_NAME, holder or process_name(), settings.lease_seconds)
        self.stats = DeliveryStats()
        # Rows in memory: enough for ten seconds at the overall rate, at least 200.
        self.batch = max(200, int(settings.outbox_overall_per_second * 10))
        self._chats: dict[tuple[str, str], _Chat] = {}
        self._held: set[int] = set()
        self._stopping = False
        self._wake = asyncio.Event()
        self._chat_finished = asyncio.Event()
        self._progress = _ProgressWriter(db)
        self._last_take = 0.0
        self._last_full = 0.0
        self._cursor = 0
        self._last_renewal = 0.0

    # Public ---------------------------------------------------------------------------

    def wake(self) -> None:
        """Look for due rows at once (call after queueing) instead of at the next poll."""
        self._wake.set()

    async def deliver_due(self) -> DeliveryStats:
        """Deliver every row that is due, concurrently across chats; wait until done.

        Rows that fall due while this runs (a short flood-limit pause) are delivered
        too; rows due later are left for the next call.

        Returns:
            What was done; ``lease_held`` is False (and nothing was sent) when another
            process holds the outbox lease.
        """
        before = dataclasses.replace(self.stats)
        if not await self._keep_lease(force=True):
            return DeliveryStats(lease_held=False)

        self._stopping = False
        await self._take_due(force=True)
        while self._chats:
            await self._wait_for_chats()
            if not await self._keep_lease():
                await self._stop_chats()
                break
            await self._take_due()
        return self.stats.since(before)

    async def deliver_until_empty(self) -> DeliveryStats:
        """Deliver until no queued row is left, waiting out retries as they fall due.

        Rows of channels without a sender are not waited for.
        """
        before = dataclasses.replace(self.stats)
        while True:
            done = await self.deliver_due()
            if not done.lease_held:
                return done
            next_due = await self.next_due_at()
            if next_due is None:
                return self.stats.since(before)
            wait = (next_due - utcnow()).total_seconds()
            logger.debug("outbox: next row due in %.2f s", wait)
            await asyncio.sleep(min(max(wait, 0.0), self.settings.outbox_poll_seconds))

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Deliver as rows fall due until ``stop`` is set or the task is cancelled.

        Takes and renews the ``outbox`` lease; while another process holds it this only
        waits. On the way out the parts in flight are finished and the lease released.
        """
        stop = stop or asyncio.Event()
        logger.info("outbox worker %s started", self.lease.holder)
        try:
            while not stop.is_set():
                await self._tick()
                await self._pause(stop)
        finally:
            await self._stop_chats()
            await self.lease.release()
            logger.info("outbox worker %s stopped: %s", self.lease.holder, self.stats)

    async def next_due_at(self) -> datetime | None:
        """When the earliest queued row of a channel with a sender is due, if any."""
        async with self.db.session() as session:
            due: datetime | None = await session.scalar(
                select(func.min(OutboxMessage.next_attempt_at)).where(
                    OutboxMessage.state == "queued",
                    OutboxMessage.channel.in_(list(self.senders)),
                )
            )
        return due

    # The loop -------------------------------------------------------------------------

    async def _tick(self) -> None:
        if await self._keep_lease():
            self._stopping = False
            await self._take_due()
        elif self._chats:
            await self._stop_chats()

    async def _pause(self, stop: asyncio.Event) -> None:
        waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
        try:
            await asyncio.wait(
                waits,
                timeout=self.settings.outbox_poll_seconds,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            for waiting in waits:
                waiting.cancel()
        self._wake.clear()

    async def _keep_lease(self, force: bool = False) -> bool:
        # Renewing at a third of the lease leaves two thirds for a slow database.
        due = time.monotonic() - self._last_renewal >= self.settings.lease_seconds / 3
        if force or due or not self.lease.held:
            await self.lease.acquire()
            self._last_renewal = time.monotonic()
        return self.lease.held

    async def _wait_for_chats(self) -> None:
        # One event for all chats: waiting on thousands of tasks at once would cost a
        # callback per task on every turn of the loop.
        self._chat_finished.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                self._chat_finished.wait(), timeout=self.settings.outbox_poll_seconds
            )

    async def _stop_chats(self) -> None:
        """Let every chat finish the part in flight, then leave the rest queued."""
        self._stopping = True
        tasks = [chat.task for chat in self._chats.values() if chat.task is not None]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    # Taking due rows ------------------------------------------------------------------

    async def _take_due(self, force: bool = False) -> int:
        """Hand due rows to their chats' tasks, oldest first; returns how many were new."""
        if not force and not self._may_take():
            return 0
        # Once a poll, look from the oldest row, to find retries that fell due; between
        # those, read only rows newer than any taken, which is cheap with 10,000 queued.
        now_s = time.monotonic()
        full = force or now_s - self._last_full >= self.settings.outbox_poll_seconds
        self._last_take = now_s
        self._last_full = now_s if full else self._last_full
        room = self.batch - len(self._held)

        now = utcnow()
        async with self.db.session() as session:
            waiting = await self._waiting_chats(session, now)
            due = await session.execute(
                select(OutboxMessage.id, OutboxMessage.channel, OutboxMessage.address)
                .where(
                    OutboxMessage.state == "queued",
                    OutboxMessage.next_attempt_at <= now,
                    OutboxMessage.channel.in_(list(self.senders)),
                    OutboxMessage.id > (0 if full else self._cursor),
                )
                .order_by(OutboxMessage.id)
                .limit(room + (len(self._held) if full else 0))
            )
            wanted = [
                row_id
                for row_id, channel, address in due.all()
                if row_id not in self._held and _is_next(waiting, channel, address, row_id)
            ][:room]
            fresh = await self._load(session, wanted)

        for message in fresh:
            self._hold(message)
        if fresh:
            self._cursor = max(self._cursor, fresh[-1].id)
            logger.debug("outbox: %d rows taken, %d chats busy", len(fresh), len(self._chats))
        return len(fresh)

    def _may_take(self) -> bool:
        # Query when rows run low, else once a poll: a query per finished chat would cost
        # more than the sends themselves at 10,000 recipients.
        if len(self._held) >= self.batch:
            return False
        if not self._held:
            return True
        since = time.monotonic() - self._last_take
        running_low = len(self._held) <= self.batch // 2
        return since >= (TOP_UP_SECONDS if running_low else self.settings.outbox_poll_seconds)

    @staticmethod
    async def _load(session: AsyncSession, ids: list[int]) -> list[OutboxMessage]:
        loaded: list[OutboxMessage] = []
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = await session.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(chunk)))
            loaded.extend(rows)
        return sorted(loaded, key=lambda message: message.id)

    async def _waiting_chats(
        self, session: AsyncSession, now: datetime
    ) -> dict[tuple[str, str], int]:
        """Chats whose oldest queued row waits for a retry, with that row's id."""
        result = await session.execute(
            select(OutboxMessage.channel, OutboxMessage.address, func.min(OutboxMessage.id))
            .where(OutboxMessage.state == "queued", OutboxMessage.next_attempt_at > now)
            .group_by(OutboxMessage.channel, OutboxMessage.address)
        )
        return {(channel, address): int(first) for channel, address, first in result.all()}

    def _hold(self, message: OutboxMessage) -> None:
        row = _Row(
            id=message.id,
            channel=message.channel,
            address=message.address,
            purpose=message.purpose,
            parts=[Part.from_json(part) for part in message.parts],
            parts_sent=message.parts_sent,
            attempts=message.attempts,
            recipient_id=message.recipient_id,
            cfa_id=message.cfa_id,
        )
        self._held.add(row.id)
        key = (row.channel, row.address)
        chat = self._chats.get(key)
        if chat is None:
            chat = self._chats[key] = _Chat()
            chat.rows.append(row)
            chat.task = asyncio.create_task(self._serve_chat(key, chat))
        else:
            chat.rows.append(row)

    # One chat -------------------------------------------------------------------------

    async def _serve_chat(self, key: tuple[str, str], chat: _Chat) -> None:
        try:
            while chat.rows and not self._stopping:
                done = await self._deliver_row(chat.rows[0])
                self._held.discard(chat.rows.popleft().id)
                if done is not _Done.FINISHED:
                    break
        except Exception:
            # A database fault: the rows stay queued and are taken again later.
            logger.exception("outbox chat %s:%s stopped by an error", *key)
        finally:
            for row in chat.rows:
                self._held.discard(row.id)
            del self._chats[key]
            self.pacer.forget(key[1])
            self._chat_finished.set()

    async def _deliver_row(self, row: _Row) -> _Done:
        sender = self.senders[row.channel]
        while row.parts_sent < len(row.parts):
            if self._stopping:
                return _Done.STOPPED
            part = row.parts[row.parts_sent]
            sent_at = await self.pacer.wait_turn(row.address)
            if self._stopping:
                return _Done.STOPPED
            outcome = await self._send(sender, row, part)
            if outcome.kind is OutcomeKind.RETRY_AFTER:
                self.pacer.refused(row.address, sent_at, outcome.delay)
            done = await self._apply(row, outcome)
            if done is not None:
                return done
        return _Done.FINISHED

    async def _send(self, sender: Sender, row: _Row, part: Part) -> Outcome:
        media = self.media_dir / part.path if part.path else None
        delivery = Delivery(row.id, row.parts_sent, row.purpose, row.cfa_id, row.recipient_id)
        try:
            return await sender.send(row.address, part, media, delivery)
        except Exception as error:
            logger.exception(
                "outbox %s to %s:%s: the sender raised; retrying later",
                row.id,
                row.channel,
                row.address,
            )
            return Outcome.retry(f"{type(error).__name__}: {error}")

    async def _apply(self, row: _Row, outcome: Outcome) -> _Done | None:
        """Record an outcome; None means go on with the row's next part."""
        match outcome.kind:
            case OutcomeKind.SENT:
                await self._part_sent(row)
                return None
            case OutcomeKind.MIGRATED if not row.migrated and outcome.address:
                await self._migrate(row, outcome.address)
                return None
            case OutcomeKind.RETRY_AFTER:
                self.stats.rate_limited += 1
                await self._wait(row, outcome, outcome.delay)
                return _Done.WAITING
            case OutcomeKind.RETRY if row.attempts + 1 < self.settings.outbox_max_attempts:
                row.attempts += 1
                self.stats.retried += 1
                delay = min(2.0**row.attempts, MAX_BACKOFF_SECONDS)
                self.pacer.pause(row.address, delay)
                await self._wait(row, outcome, delay)
                return _Done.WAITING
            case OutcomeKind.BLOCKED | OutcomeKind.NOT_FOUND:
                await self._close_chat(row, outcome)
                return _Done.CHAT_CLOSED
            case _:
                await self._give_up(row, outcome)
                return _Done.FINISHED

    # Ledger writes --------------------------------------------------------------------

    async def _part_sent(self, row: _Row) -> None:
        row.parts_sent += 1
        values: dict[str, Any] = {"parts_sent": row.parts_sent}
        if row.parts_sent == len(row.parts):
            values.update(state="sent", sent_at=utcnow())
        await self._progress.write(row.id, values)

        self.stats.parts += 1
        if row.parts_sent == len(row.parts):
            self.stats.sent += 1
            logger.debug("outbox %s to %s:%s sent", row.id, row.channel, row.address)

    async def _wait(self, row: _Row, outcome: Outcome, delay: float) -> None:
        async with self.db.session() as session:
            await session.execute(
                _row_update(row.id).values(
                    attempts=row.attempts,
                    next_attempt_at=utcnow() + timedelta(seconds=delay),
                    error_code=outcome.error_code,
                    last_error=outcome.description[:1000],
                )
            )
        logger.info(
            "outbox %s to %s:%s: %s (%s); next try in %.1f s",
            row.id,
            row.channel,
            row.address,
            outcome.kind,
            outcome.description,
            delay,
        )

    async def _give_up(self, row: _Row, outcome: Outcome) -> None:
        async with self.db.session() as session:
            await session.execute(
                _row_update(row.id).values(
                    state="failed",
                    attempts=row.attempts + 1,
                    error_code=outcome.error_code,
                    last_error=outcome.description[:1000],
                )
            )
        self.stats.failed += 1
        logger.warning(
            "outbox %s to %s:%s failed after %d tries: %s",
            row.id,
            row.channel,
            row.address,
            row.attempts + 1,
            outcome.description,
        )

    async def _close_chat(self, row: _Row, outcome: Outcome) -> None:
        """A chat we can no longer write to: close its rows, retire its recipient."""
        state = "blocked" if outcome.kind is OutcomeKind.BLOCKED else "not_found"
        reason = f"{state}: {outcome.description}"[:300]
        async with self.db.session() as session:
            closed: Any = await session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.channel == row.channel,
                    OutboxMessage.address == row.address,
                    OutboxMessage.state == "queued",
                )
                .values(state=state, error_code=outcome.error_code, last_error=reason)
            )
            await session.execute(
                update(Recipient)
                .where(Recipient.channel == row.channel, Recipient.address == row.address)
                .values(status="inactive", status_reason=reason, updated_at=utcnow())
            )
        setattr(self.stats, state, getattr(self.stats, state) + 1)
        logger.warning(
            "outbox %s: chat %s:%s %s (%s); %d queued rows closed, recipient inactive",
            row.id,
            row.channel,
            row.address,
            state,
            outcome.description,
            closed.rowcount,
        )

    async def _migrate(self, row: _Row, new_address: str) -> None:
        """Follow a chat to its new address: recipient, queued rows, pacing, then resend."""
        old = row.address
        try:
            async with self.db.session() as session:
                await session.execute(
                    update(Recipient)
                    .where(Recipient.channel == row.channel, Recipient.address == old)
                    .values(address=new_address, updated_at=utcnow())
                )
        except IntegrityError:
            logger.warning(
                "outbox %s: %s:%s moved to %s, which is already a recipient; kept both",
                row.id,
                row.channel,
                old,
                new_address,
            )
        async with self.db.session() as session:
            await session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.channel == row.channel,
                    OutboxMessage.address == old,
                    OutboxMessage.state == "queued",
                )
                .values(address=new_address)
            )
        self.pacer.rename(old, new_address)
        for held in self._rows_of(row.channel, old):
            held.address = new_address
        row.migrated = True
        self.stats.migrated += 1
        logger.info(
            "outbox %s: chat %s:%s moved to %s; resending", row.id, row.channel, old, new_address
        )

    def _rows_of(self, channel: str, address: str) -> Iterable[_Row]:
        chat = self._chats.get((channel, address))
        return list(chat.rows) if chat else []


class _ProgressWriter:
    """Commits sent parts for many chats together: one transaction per turn, not per part.

    A chat's next part waits until the commit of its last one, so ``parts_sent`` is
    still on disk before anything more goes to that chat; only chats served at the same
    moment share a transaction. One commit per part capped delivery at what the
    database could commit one by one (about 150 a second on SQLite under load).
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._pending: list[tuple[int, dict[str, Any], asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None

    async def write(self, row_id: int, values: dict[str, Any]) -> None:
        """Commit ``values`` to row ``row_id``; returns once they are committed."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((row_id, values, done))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._flush())
        await done

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await self._commit(batch)
            except Exception as error:
                for _, _, done in batch:
                    done.set_exception(error)
                continue
            for _, _, done in batch:
                done.set_result(None)

    async def _commit(self, batch: list[tuple[int, dict[str, Any], asyncio.Future[None]]]) -> None:
        shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for row_id, values, _ in batch:
            shapes.setdefault(tuple(sorted(values)), []).append({"id": row_id, **values})
        async with self.db.session() as session:
            for rows in shapes.values():
                await session.execute(update(OutboxMessage), rows)


def _is_next(waiting: dict[tuple[str, str], int], channel: str, address: str, row_id: int) -> bool:
    """Whether a due row may go: no older row of its chat waits for a retry."""
    oldest_waiting = waiting.get((channel, address))
    return oldest_waiting is None or oldest_waiting > row_id


def _row_update(row_id: int) -> Any:
    return update(OutboxMessage).where(OutboxMessage.id == row_id)


async def counts(session: AsyncSession) -> list[tuple[str, str, int]]:
    """Rows per (state, purpose), for ``helpdesk outbox status``."""
    result = await session.execute(
        select(OutboxMessage.state, OutboxMessage.purpose, func.count())
        .group_by(OutboxMessage.state, OutboxMessage.purpose)
        .order_by(OutboxMessage.state, OutboxMessage.purpose)
    )
    return [(state, purpose, int(number)) for state, purpose, number in result.all()]


async def failures(session: AsyncSession, limit: int = 50) -> list[OutboxMessage]:
    """The rows that will not be delivered, newest first, with their errors."""
    rows = await session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.state.in_(("failed", "blocked", "not_found")))
        .order_by(OutboxMessage.id.desc())
        .limit(limit)
    )
    return list(rows)
