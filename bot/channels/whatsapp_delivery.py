"""Delivering outbox parts through WhatsApp: the :class:`core.outbox.Sender` of the
WhatsApp channel, and the delivery statuses Meta reports afterwards.

WhatsApp lets a business write freely only within 24 hours of the person's last message
(the customer-service window). Inside it a part goes as written: a text, or a voice
message in OGG Opus with its caption as a text after it (WhatsApp voice messages have no
caption), the file uploaded once and its media id reused. Outside it, a part goes as
the approved template configured for the message's purpose and the recipient's
language, with the part's text (a voice part's caption) as the template's one body
parameter; with no such template the part fails rather than go unseen.

Meta accepting a message is not delivery: the outcome comes later by webhook. Every
accepted message is recorded in :class:`core.models.SentMessage` under its ``wamid``, and
each status moves it forward only::

    sent ──> delivered ──> read          failed (final, from any earlier state)

so a ``delivered`` arriving after ``read`` changes nothing. A failure (131047: the window
had closed) marks the outbox row failed too, since the worker had counted it sent.
"""

import asyncio
import logging
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pywa_async.client import WhatsApp
from pywa_async.errors import WhatsAppError
from pywa_async.types.media import Media
from pywa_async.types.templates import TemplateLanguage
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.config import Settings, WhatsAppTemplate
from core.db import Database, utcnow
from core.models import Cfa, ChannelIdentity, OutboxMessage, Recipient, SentMessage
from core.outbox import Delivery, Outcome, Part
from core.pacing import Pacer, Rates

logger = logging.getLogger(__name__)

CHANNEL = "whatsapp"
WINDOW = timedelta(hours=24)
# Meta refuses template parameters with new lines, tabs or more than four spaces in a
# row, and body parameters beyond 1024 characters.
PARAMETER_LIMIT = 1024
STATUS_RANK = {"sent": 1, "delivered": 2, "read": 3}
# Cloud API error codes (developers.facebook.com, "Cloud API error codes").
RATE_LIMITED = frozenset({4, 80007, 130429, 131048, 131056})
NOT_ON_WHATSAPP = frozenset({131026})
BLOCKED = frozenset({131031, 131050})
WINDOW_CLOSED = 131047
TOKEN_PROBLEMS = frozenset({0, 190})
# Temporary faults on Meta's side, worth another try.
TRANSIENT = frozenset({1, 2, 131000, 131016, 133004})
# How long to wait after a rate limit, as Meta's answers carry no retry-after.
RATE_LIMIT_PAUSE_S = 6.0


@dataclass(frozen=True)
class _Delivery:
    """What the sender needs to know about the outbox row it is sending."""

    outbox_id: int | None
    part_index: int | None
    purpose: str
    language: str | None


class WhatsAppSender:
    """Sends outbox parts with one pywa client, inside the window or as templates.

    Args:
        wa: the pywa client.
        db: the database with the identities (for the window) and the ledgers.
        settings: the templates (``whatsapp_templates``) and WhatsApp's rates.
        pacer: the pacing to use; by default ``whatsapp_overall_per_second`` overall and
            ``whatsapp_chat_per_second`` to one number (Meta refuses more than about one
            message every 6 seconds to one person, error 131056).
    """

    def __init__(
        self, wa: WhatsApp, db: Database, settings: Settings, pacer: Pacer | None = None
    ) -> None:
        self.wa = wa
        self.db = db
        self.templates = settings.whatsapp_templates
        self._media: dict[tuple[str, int, int], Media] = {}
        self._uploads: defaultdict[tuple[str, int, int], asyncio.Lock] = defaultdict(asyncio.Lock)
        self.uploads = 0
        self.pacer = pacer or Pacer(
            Rates(
                overall_per_second=settings.whatsapp_overall_per_second,
                chat_per_second=settings.whatsapp_chat_per_second,
            )
        )

    async def send(
        self,
        address: str,
        part: Part,
        media_path: Path | None,
        row: Delivery | None = None,
    ) -> Outcome:
        """Send one part of outbox ``row`` to the number ``address``; never raises for
        Meta's answers."""
        async with self.db.session() as session:
            delivery = await _delivery_of(session, row)
            inside = await window_open(session, address)

        await self.pacer.wait_turn(address)
        try:
            if inside:
                sent = await self._free_form(address, part, media_path, delivery)
            else:
                sent = await self._template(address, part, delivery)
        except WhatsAppError as error:
            return classify(error)
        except _Unsendable as problem:
            logger.error("whatsapp %s: outbox %s not sendable: %s", address, delivery, problem)
            return Outcome.failed(str(problem))

        async with self.db.session() as session:
            for wamid, kind in sent:
                await record_sent(session, wamid, address, kind, delivery)
        return Outcome.sent()

    async def _free_form(
        self, address: str, part: Part, media_path: Path | None, delivery: _Delivery
    ) -> list[tuple[str, str]]:
        if part.kind == "text":
            message = await self.wa.send_message(address, part.text)
            return [(message.id, "text")]

        if media_path is None or not media_path.is_file():
            raise _Unsendable(f"voice file {part.path} is missing from the media folder")
        uploaded = await self._uploaded(media_path)
        voice = await self.wa.send_voice(address, voice=uploaded)
        sent = [(voice.id, "voice")]
        if part.caption:
            caption = await self.wa.send_message(address, part.caption)
            sent.append((caption.id, "text"))
        return sent

    async def _uploaded(self, media_path: Path) -> Media:
        # A bulletin goes to many numbers: upload its voice message once per process and
        # send Meta's media id after (ids stay valid for 30 days, far beyond a broadcast).
        stat = media_path.stat()
        key = (str(media_path), stat.st_mtime_ns, stat.st_size)
        async with self._uploads[key]:
            if key not in self._media:
                self._media[key] = await self.wa.upload_media(media_path, mime_type="audio/ogg")
                self.uploads += 1
                logger.info("whatsapp voice %s uploaded as %s", media_path, self._media[key].id)
        return self._media[key]

    async def _template(
        self, address: str, part: Part, delivery: _Delivery
    ) -> list[tuple[str, str]]:
        template = self._template_for(delivery)
        if template is None:
            raise _Unsendable(
                f"outside the 24-hour window and no template for {delivery.purpose} "
                f"in {delivery.language}; set HELPDESK_WHATSAPP_TEMPLATES"
            )
        text = part.text if part.kind == "text" else part.caption
        sent = await self.wa.send_template(
            address,
            name=template.name,
            language=_meta_language(template),
            params=[{"type": "body", "parameters": [{"type": "text", "text": parameter(text)}]}],
        )
        logger.info(
            "whatsapp %s: outbox %s outside the window, sent as template %s (%s)",
            address,
            delivery.outbox_id,
            template.name,
            template.language,
        )
        return [(sent.id, "template")]

    def _template_for(self, delivery: _Delivery) -> WhatsAppTemplate | None:
        by_language = self.templates.get(delivery.purpose, {})
        if delivery.language in by_language:
            return by_language[delivery.language]
        # A recipient without a language gets the purpose's first configured template.
        return next(iter(by_language.values()), None) if delivery.language is None else None


class _Unsendable(Exception):
    """A part that cannot be sent as it is (file missing, no template); not retried."""


def _meta_language(template: WhatsAppTemplate) -> TemplateLanguage:
    try:
        return TemplateLanguage(template.language)
    except (TypeError, ValueError) as error:
        raise _Unsendable(
            f"template {template.name}: '{template.language}' is not one of Meta's "
            "template language codes"
        ) from error


def parameter(text: str) -> str:
    """``text`` as a template parameter Meta accepts: one line, within its limit."""
    flat = re.sub(r"\s+", " ", text).strip() or "-"
    return flat if len(flat) <= PARAMETER_LIMIT else flat[: PARAMETER_LIMIT - 1] + "…"


def classify(error: WhatsAppError) -> Outcome:
    """What a Cloud API error means for the outbox."""
    code, description = int(error.code), f"{error.code}: {error.message}"
    if code in RATE_LIMITED:
        return Outcome.retry_after(RATE_LIMIT_PAUSE_S, description)
    if code in NOT_ON_WHATSAPP:
        return Outcome.not_found(description, code)
    if code in BLOCKED:
        return Outcome.blocked(description, code)
    if code in TOKEN_PROBLEMS:
        # The access token, not this number: worth trying again once it is fixed.
        logger.error("whatsapp refused the access token: %s", description)
        return Outcome.retry(description, code)
    if code in TRANSIENT:
        return Outcome.retry(description, code)
    return Outcome.failed(description, code)


async def window_open(session: AsyncSession, address: str, now: datetime | None = None) -> bool:
    """Whether ``address`` wrote to us in the last 24 hours (by WhatsApp's timestamps)."""
    last = await session.scalar(
        select(ChannelIdentity.last_inbound_at).where(
            ChannelIdentity.channel == CHANNEL, ChannelIdentity.address == address
        )
    )
    return last is not None and (now or utcnow()) - last < WINDOW


async def _delivery_of(session: AsyncSession, row: Delivery | None) -> _Delivery:
    """The outbox row's purpose and its recipient's language (a CFA's, or a group's)."""
    if row is None:
        return _Delivery(None, None, "notification", None)
    language = None
    if row.cfa_id is not None:
        cfa = await session.get(Cfa, row.cfa_id)
        language = cfa.language if cfa else None
    elif row.recipient_id is not None:
        recipient = await session.get(Recipient, row.recipient_id)
        language = recipient.language if recipient else None
    return _Delivery(row.outbox_id, row.part_index, row.purpose, language)


async def record_sent(
    session: AsyncSession,
    wamid: str,
    address: str,
    kind: str,
    delivery: "_Delivery | None" = None,
) -> None:
    """Remember a message Meta accepted, so its status webhooks can be applied to it."""
    session.add(
        SentMessage(
            channel=CHANNEL,
            external_id=wamid,
            address=address,
            outbox_id=delivery.outbox_id if delivery else None,
            part_index=delivery.part_index if delivery else None,
            kind=kind,
            status="sent",
        )
    )
    await session.flush()


async def apply_status(session: AsyncSession, status: dict[str, Any]) -> bool:
    """Apply one entry of a status webhook's ``statuses``; returns whether it moved.

    The condition is in the UPDATE itself, so two webhooks for one message applied at
    the same moment still only move it forward.
    """
    wamid, new = str(status.get("id", "")), str(status.get("status", ""))
    at = datetime.fromtimestamp(int(status.get("timestamp", 0)), UTC)
    if new not in STATUS_RANK and new != "failed":
        logger.info("whatsapp status %s for %s ignored: not one we track", new, wamid)
        return False

    statement = update(SentMessage).where(
        SentMessage.channel == CHANNEL,
        SentMessage.external_id == wamid,
        SentMessage.status != "failed",
    )
    values: dict[str, Any] = {"status": new, "status_at": at}
    if new == "failed":
        error = (status.get("errors") or [{}])[0]
        values.update(error_code=error.get("code"), error_detail=_detail(error))
    else:
        earlier = [name for name, rank in STATUS_RANK.items() if rank < STATUS_RANK[new]]
        statement = statement.where(SentMessage.status.in_(earlier))
    result: Any = await session.execute(statement.values(**values))
    moved = bool(result.rowcount)

    if moved and new == "failed":
        await _fail_outbox_row(session, wamid, values)
    logger.debug("whatsapp %s %s at %s: %s", wamid, new, at, "applied" if moved else "stale")
    return moved


def _detail(error: dict[str, Any]) -> str:
    details = (error.get("error_data") or {}).get("details")
    return str(details or error.get("message") or error.get("title") or "failed")[:1000]


async def _fail_outbox_row(session: AsyncSession, wamid: str, values: dict[str, Any]) -> None:
    """The worker counted the row sent when Meta accepted it; Meta now says it failed."""
    outbox_id = await session.scalar(
        select(SentMessage.outbox_id).where(
            SentMessage.channel == CHANNEL, SentMessage.external_id == wamid
        )
    )
    if outbox_id is None:
        return
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == outbox_id)
        .values(state="failed", error_code=values["error_code"], last_error=values["error_detail"])
    )
    logger.warning(
        "whatsapp %s failed (%s): outbox %s marked failed", wamid, values["error_code"], outbox_id
    )
