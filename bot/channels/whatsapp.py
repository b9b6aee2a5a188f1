"""The WhatsApp channel, on pywa and the WhatsApp Business Cloud API, through the same
engine and the same ledger as Telegram.

Update lifecycle::

    webhook POST ──signature──> one ledger row per wamid ──200──> pywa parses, engine step
        │ forged/missing: 401/403       │ already recorded: dropped    │ crash: replayed at start

The webhook body is cut into one body per message before it is recorded, so each
``wamid`` is entered (and processed) exactly once whatever Meta batches together; the
database's unique key decides between two identical deliveries. Parsing into pywa's
types and the conversation step happen in the background.

Status entries (sent, delivered, read, failed) are applied at once, in the webhook's
own transaction: they are one conditional UPDATE each (see
:mod:`bot.channels.whatsapp_delivery`), and pywa cannot parse them without a
``contacts`` list that Meta leaves out of status webhooks.

Survey choices become reply buttons (up to 3, titles up to 20 characters) or a list
(up to 10 rows; a title over 24 characters is cut and the whole label shown as the
row's description), else numbered lines; a typed number stands for the button it
numbers.
"""

import asyncio
import copy
import json
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from pywa_async.client import WhatsApp
from pywa_async.errors import WhatsAppError
from pywa_async.handlers import CallbackButtonHandler, CallbackSelectionHandler, MessageHandler
from pywa_async.types.callback import Button as WaButton
from pywa_async.types.callback import (
    CallbackButton,
    CallbackSelection,
    Section,
    SectionList,
    SectionRow,
)
from pywa_async.types.message import Message

from bot import store
from bot.channels.base import read_typed, split_text
from bot.channels.whatsapp_delivery import CHANNEL, apply_status, record_sent
from bot.engine import Engine
from bot.media import save_media
from bot.messages import Button, Incoming, Kind, MediaFile, Reply
from bot.prompts import N_

logger = logging.getLogger(__name__)

TEXT_LIMIT = 4096
# An interactive message's body is limited to 1024 characters.
BODY_LIMIT = 1024
REPLY_BUTTONS, BUTTON_TITLE = 3, 20
LIST_ROWS, ROW_TITLE = 10, 24
LIST_BUTTON = N_("Choose")

_key: ContextVar[str] = ContextVar("whatsapp_update_key")


class WhatsAppChannel:
    """Connects the engine to one WhatsApp Business number.

    Args:
        engine: the conversation engine; its database also holds the ledger.
        wa: the pywa client (its handlers are registered here).
        media_dir: where photos and voice notes are saved.
        http: the HTTP client pywa was given, closed by :meth:`close`.
    """

    def __init__(
        self,
        engine: Engine,
        wa: WhatsApp,
        media_dir: Path,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.engine = engine
        self.wa = wa
        self.media_dir = media_dir
        self.http = http
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._numbered: dict[str, dict[int, str]] = {}
        self._handled: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        wa.add_handlers(
            MessageHandler(self._on_message),
            CallbackButtonHandler(self._on_button),
            CallbackSelectionHandler(self._on_button),
        )

    # Intake -----------------------------------------------------------------------------

    async def accept(self, body: bytes) -> int:
        """Take a verified webhook body: apply its statuses, record its messages, and
        handle each new message in the background.

        Returns:
            How many messages were new (redeliveries are dropped).

        Raises:
            ValueError: the body is not a WhatsApp Business webhook.
        """
        payload = json.loads(body)
        if not isinstance(payload, dict) or payload.get("object") != "whatsapp_business_account":
            raise ValueError("not a whatsapp_business_account webhook")

        fresh = 0
        for single, statuses in _split(payload):
            async with self.engine.db.session() as session:
                for status in statuses:
                    await apply_status(session, status)
                if single is None:
                    continue
                key = str(single["entry"][0]["changes"][0]["value"]["messages"][0]["id"])
                is_new = await store.record_update(session, CHANNEL, key, single)
            if not is_new:
                logger.info("whatsapp message %s redelivered; already recorded, dropped", key)
                continue
            fresh += 1
            self._spawn(self._feed(key, single))
        return fresh

    def start(self) -> None:
        """Replay what a crash interrupted, in the background so the service's start
        (and the webhook) never waits on the Graph API."""
        self._spawn(self._replay())

    async def _replay(self) -> None:
        replayed = await self.replay_unprocessed()
        if replayed:
            logger.info("whatsapp: %d interrupted messages replayed", replayed)

    async def replay_unprocessed(self) -> int:
        """Handle the messages a crash left recorded but unprocessed; returns how many."""
        async with self.engine.db.session() as session:
            pending = await store.unprocessed_updates(session, CHANNEL)
        for row in pending:
            if row.payload is None:
                continue
            logger.warning(
                "replaying whatsapp message %s interrupted before it was processed", row.update_key
            )
            await self._feed(row.update_key, row.payload)
        return len(pending)

    async def _feed(self, key: str, single: dict[str, Any]) -> None:
        token = _key.set(key)
        try:
            await self.wa.webhook_update_handler(json.dumps(single).encode())
        finally:
            _key.reset(token)
        if key in self._handled:
            self._handled.discard(key)
            return
        await self._unreadable(key, single)

    async def _unreadable(self, key: str, single: dict[str, Any]) -> None:
        """A message pywa could not read (a type newer than it, a shape it does not
        expect) is answered as unsupported, so the person is not left waiting; one for
        another number is only closed, so it is not replayed at every start."""
        value = single["entry"][0]["changes"][0]["value"]
        message = value["messages"][0]
        ours = str((value.get("metadata") or {}).get("phone_number_id")) == str(self.wa.phone_id)
        if not ours or not message.get("from"):
            logger.warning("whatsapp message %s is not for this number; closed", key)
            await self._close(key)
            return

        logger.warning(
            "whatsapp message %s (%s) unreadable; answered as unsupported",
            key,
            message.get("type"),
        )
        incoming = Incoming(Kind.UNSUPPORTED, what=str(message.get("type")))
        sent_at = datetime.fromtimestamp(int(message.get("timestamp") or 0), UTC)
        token = _key.set(key)
        try:
            await self._converse(str(message["from"]), incoming, sent_at)
        finally:
            _key.reset(token)
            self._handled.discard(key)

    # Handlers ---------------------------------------------------------------------------

    # pywa passes its client first; typed Any as pywa's handlers name the sync client.
    async def _on_message(self, _: Any, message: Message) -> None:
        address = str(message.from_user.wa_id)
        incoming = await self._incoming(address, message)
        await self._converse(address, incoming, message.timestamp)

    async def _on_button(
        self, _: Any, pressed: CallbackButton[Any] | CallbackSelection[Any]
    ) -> None:
        # Reply buttons, list rows and a template's quick-reply button all carry our
        # payload back in ``data``.
        address = str(pressed.from_user.wa_id)
        incoming = Incoming(
            Kind.BUTTON, data=str(pressed.data), display_name=pressed.from_user.name
        )
        await self._converse(address, incoming, pressed.timestamp)

    async def _converse(self, address: str, incoming: Incoming, sent_at: datetime) -> None:
        key = _key.get()
        started = time.perf_counter()
        async with self._locks[address]:
            try:
                replies = await self.engine.handle(CHANNEL, address, incoming, update_key=key)
            except Exception:
                logger.exception("whatsapp %s message %s failed; marked processed", address, key)
                await self._close(key)
                await self.send(address, [self.engine.apology(incoming.client_language)])
                return
            finally:
                self._handled.add(key)
            async with self.engine.db.session() as session:
                await store.touch_inbound(session, CHANNEL, address, sent_at)
            await self.send(address, replies)
        logger.debug(
            "whatsapp %s message %s answered in %.1f ms",
            address,
            key,
            (time.perf_counter() - started) * 1000,
        )

    async def _close(self, key: str) -> None:
        async with self.engine.db.session() as session:
            await store.mark_processed(session, CHANNEL, key)

    async def _incoming(self, address: str, message: Message) -> Incoming:
        user = message.from_user
        common: dict[str, Any] = {"display_name": user.name}
        if message.text is not None:
            return self._typed(address, message.text, common)
        if message.location is not None:
            return Incoming(
                Kind.LOCATION,
                latitude=message.location.latitude,
                longitude=message.location.longitude,
                **common,
            )
        if message.image is not None:
            media = await self._download(address, Kind.PHOTO, message.image.id)
            return Incoming(Kind.PHOTO, text=message.caption or "", media=media, **common)
        if message.audio is not None:
            media = await self._download(address, Kind.VOICE, message.audio.id)
            return Incoming(Kind.VOICE, media=media, **common)
        return Incoming(Kind.UNSUPPORTED, what=str(message.type), **common)

    def _typed(self, address: str, text: str, common: dict[str, Any]) -> Incoming:
        numbered = self._numbered.get(address, {})
        word = text.strip()
        if word.isdigit() and int(word) in numbered:
            return Incoming(Kind.BUTTON, data=numbered[int(word)], **common)
        return read_typed(text, **common)

    async def _download(self, address: str, kind: Kind, media_id: str) -> MediaFile | None:
        if not await self.engine.wants_media(CHANNEL, address, kind):
            return None
        try:
            found = await self.wa.get_media_url(media_id)
            content = await self.wa.get_media_bytes(found.url)
        except (WhatsAppError, httpx.HTTPError, OSError) as error:
            logger.warning(
                "whatsapp %s: could not download %s %s: %s", address, kind, media_id, error
            )
            return None
        # Meta gives "audio/ogg; codecs=opus"; the media folder keys suffixes on the type.
        mime = found.mime_type.split(";")[0].strip()
        return save_media(self.media_dir, content, mime, source_id=media_id)

    # Sending ----------------------------------------------------------------------------

    async def send(self, address: str, replies: list[Reply]) -> None:
        """Send the engine's replies to one number, in order (always inside the window:
        they answer a message the person just sent)."""
        for reply in replies:
            for text, buttons in self.render(address, reply):
                try:
                    sent = await self.wa.send_message(address, text, buttons=buttons)
                except WhatsAppError as error:
                    logger.warning(
                        "whatsapp %s: reply not sent: %s %s", address, error.code, error.message
                    )
                    return
                async with self.engine.db.session() as session:
                    await record_sent(session, sent.id, address, "reply")

    def render(
        self, address: str, reply: Reply
    ) -> list[tuple[str, list[WaButton] | SectionList | None]]:
        """A reply as WhatsApp messages: texts within the limits, its choices on the last."""
        text = f"*{reply.title}*\n{reply.text}" if reply.title else reply.text
        choices = reply.flat_buttons
        if not choices:
            self._numbered.pop(address, None)
            return [(piece, None) for piece in split_text(text, TEXT_LIMIT)]

        markup = self._markup(address, choices)
        if markup is None:
            lines = [f"{n}. {b.label}" for n, b in enumerate(choices, start=1)]
            text = "\n".join([text, "", *lines])
            return [(piece, None) for piece in split_text(text, TEXT_LIMIT)]
        pieces = split_text(text, BODY_LIMIT)
        return [*((piece, None) for piece in pieces[:-1]), (pieces[-1], markup)]

    def _markup(self, address: str, choices: list[Button]) -> list[WaButton] | SectionList | None:
        # Numbers stay valid for the last message that showed them, buttons or not.
        self._numbered[address] = {n: b.data for n, b in enumerate(choices, start=1)}
        if len(choices) <= REPLY_BUTTONS and all(len(b.label) <= BUTTON_TITLE for b in choices):
            return [WaButton(title=b.label, callback_data=b.data) for b in choices]
        if len(choices) <= LIST_ROWS:
            t = self.engine.translator(self.engine.deployment.config.default_language)
            title = t.gettext(LIST_BUTTON)[:BUTTON_TITLE]
            rows = [_row(b) for b in choices]
            return SectionList(button_title=title, sections=[Section(title=title, rows=rows)])
        return None

    # Service life -----------------------------------------------------------------------

    async def drain(self) -> None:
        """Wait for messages being handled in the background."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def close(self) -> None:
        """Finish background work and close the HTTP client."""
        await self.drain()
        if self.http is not None:
            await self.http.aclose()

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _row(button: Button) -> SectionRow:
    """A list row; a label over the title's limit is cut there and shown whole below it."""
    if len(button.label) <= ROW_TITLE:
        return SectionRow(title=button.label, callback_data=button.data)
    title = button.label[: ROW_TITLE - 1] + "…"
    return SectionRow(title=title, callback_data=button.data, description=button.label[:72])


def _split(payload: dict[str, Any]) -> list[tuple[dict[str, Any] | None, list[dict[str, Any]]]]:
    """Each change's statuses, and one webhook body per message with its sender's contact."""
    pieces: list[tuple[dict[str, Any] | None, list[dict[str, Any]]]] = []
    for entry in payload.get("entry") or []:
        for change in entry.get("changes") or []:
            value = change.get("value") or {}
            pieces.append((None, list(value.get("statuses") or [])))
            for message in value.get("messages") or []:
                pieces.append((_single(payload, entry, change, message), []))
    return pieces


def _single(
    payload: dict[str, Any], entry: dict[str, Any], change: dict[str, Any], message: dict[str, Any]
) -> dict[str, Any]:
    value = change["value"]
    contacts = [c for c in value.get("contacts") or [] if c.get("wa_id") == message.get("from")]
    single_value = {
        k: v for k, v in value.items() if k not in ("messages", "statuses", "contacts")
    }
    single_value.update(messages=[message], contacts=contacts or value.get("contacts") or [])
    single_change = {**change, "value": single_value}
    return {**copy.copy(payload), "entry": [{**entry, "changes": [single_change]}]}
