"""The WhatsApp channel, on pywa and the WhatsApp Business Cloud API, through the same
engine and the same ledger as Telegram.

Update lifecycle::

    webhook POST ──signature──> one ledger row per wamid ──200──> pywa parses, engine step
        │ forged/missing: 401/403       │ already recorded: dropped    │ crash: replayed at start

The webhook body is cut into one body per message before it is recorded, so each
``wamid`` is entered (and processed) exactly once whatever Meta batches together; the
database's unique key decides between two identical deliveries. Parsing into pywa's
types and the conversation step happen in the background, and a failure there is
logged with the wamid (the row stays for the replay at the next start).

Cutting checks the body's shape first, all of it, so a body of the wrong shape is
refused whole (400) before anything is recorded. A timestamp that cannot be read is not
a reason to refuse: the message is taken at the time it was received, with a warning,
as refusing it would also refuse the good messages batched with it, every time Meta
retries.

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
from core.errors import HelpdeskError

logger = logging.getLogger(__name__)

TEXT_LIMIT = 4096
# An interactive message's body is limited to 1024 characters.
BODY_LIMIT = 1024
REPLY_BUTTONS, BUTTON_TITLE = 3, 20
LIST_ROWS, ROW_TITLE = 10, 24
LIST_BUTTON = N_("Choose")

_key: ContextVar[str] = ContextVar("whatsapp_update_key")

# One status list and one single-message body per change, as accept() records them.
_Piece = tuple[dict[str, Any] | None, list[dict[str, Any]]]


class MalformedWebhook(HelpdeskError, ValueError):
    """A webhook body that is not in the shape of Meta's: where in it, and what was found.

    A ValueError too, the error the web layer answers with 400.

    Args:
        where: the place in the body, as a path such as ``entry[0].changes[1].value``.
        problem: what was found there and what was expected.
    """

    def __init__(self, where: str, problem: str) -> None:
        self.where = where
        self.problem = problem
        super().__init__(f"{where}: {problem}")


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
            ValueError: the body is not a WhatsApp Business webhook (not JSON, another
                object); :class:`MalformedWebhook` when its shape is wrong.
        """
        payload = json.loads(body)
        if not isinstance(payload, dict) or payload.get("object") != "whatsapp_business_account":
            raise ValueError("not a whatsapp_business_account webhook")

        fresh = 0
        for single, statuses in _split(payload, received=datetime.now(UTC)):
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
            self._spawn(f"message {key}", self._feed(key, single))
        return fresh

    def start(self) -> None:
        """Replay what a crash interrupted, in the background so the service's start
        (and the webhook) never waits on the Graph API."""
        self._spawn("replay", self._replay())

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
            # One message failing again must not keep the others from their replay.
            await _logging_failure(
                f"message {row.update_key}", self._feed(row.update_key, row.payload)
            )
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
        # Rows recorded before timestamps were checked may still carry an unreadable one.
        sent_at = _time_of(message.get("timestamp")) or datetime.now(UTC)
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

    def _spawn(self, what: str, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(_logging_failure(what, work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


async def _logging_failure(what: str, work: Awaitable[None]) -> None:
    """Await background work and log its failure with what it was (a wamid): nothing
    else awaits the task, and asyncio would only report it when it is collected, as
    "Task exception was never retrieved", with no wamid."""
    started = time.perf_counter()
    try:
        await work
    except Exception:
        logger.exception(
            "whatsapp %s failed in the background after %.1f ms; "
            "a message it left unprocessed is replayed at the next start",
            what,
            (time.perf_counter() - started) * 1000,
        )


def _row(button: Button) -> SectionRow:
    """A list row; a label over the title's limit is cut there and shown whole below it."""
    if len(button.label) <= ROW_TITLE:
        return SectionRow(title=button.label, callback_data=button.data)
    title = button.label[: ROW_TITLE - 1] + "…"
    return SectionRow(title=title, callback_data=button.data, description=button.label[:72])


def _split(payload: dict[str, Any], received: datetime) -> list[_Piece]:
    """Each change's statuses, and one webhook body per message with its sender's contact.

    The whole body is checked before anything is cut, so a fault anywhere refuses all of
    it and nothing of it is recorded. An unreadable timestamp is replaced by
    ``received``, with a warning.

    Raises:
        MalformedWebhook: where the body's shape is not Meta's.
    """
    pieces: list[_Piece] = []
    for e, entry in enumerate(_objects(payload, "entry", "entry")):
        for c, change in enumerate(_objects(entry, "changes", f"entry[{e}].changes")):
            where = f"entry[{e}].changes[{c}].value"
            value = _checked_value(change.get("value"), where)
            statuses = _checked_statuses(value, f"{where}.statuses", received)
            pieces.append((None, statuses))
            change = {**change, "value": value}
            for message in _checked_messages(value, f"{where}.messages", received):
                pieces.append((_single(payload, entry, change, message), []))
    return pieces


def _checked_value(value: Any, where: str) -> dict[str, Any]:
    """A change's value, its metadata and contacts checked; missing is empty."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MalformedWebhook(where, f"is {_kind(value)}, not an object")
    metadata = value.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise MalformedWebhook(f"{where}.metadata", f"is {_kind(metadata)}, not an object")
    _objects(value, "contacts", f"{where}.contacts")
    return value


def _checked_messages(
    value: dict[str, Any], where: str, received: datetime
) -> list[dict[str, Any]]:
    messages = _objects(value, "messages", where)
    for n, message in enumerate(messages):
        wamid = message.get("id")
        # The wamid is the ledger's key: without one a message cannot be entered once.
        if not isinstance(wamid, str) or not wamid:
            raise MalformedWebhook(f"{where}[{n}].id", f"is {_kind(wamid)}, not a wamid")
    return [_readable_time(m, f"{where}[{n}]", received) for n, m in enumerate(messages)]


def _checked_statuses(
    value: dict[str, Any], where: str, received: datetime
) -> list[dict[str, Any]]:
    statuses = _objects(value, "statuses", where)
    for n, status in enumerate(statuses):
        for e, error in enumerate(_objects(status, "errors", f"{where}[{n}].errors")):
            data = error.get("error_data")
            if data is not None and not isinstance(data, dict):
                place = f"{where}[{n}].errors[{e}].error_data"
                raise MalformedWebhook(place, f"is {_kind(data)}, not an object")
    return [_readable_time(s, f"{where}[{n}]", received) for n, s in enumerate(statuses)]


def _objects(container: dict[str, Any], key: str, where: str) -> list[dict[str, Any]]:
    """The list of objects under ``key``; missing or null is empty, as Meta leaves out
    what a webhook does not carry."""
    found = container.get(key)
    if found is None:
        return []
    if not isinstance(found, list):
        raise MalformedWebhook(where, f"is {_kind(found)}, not a list")
    for n, item in enumerate(found):
        if not isinstance(item, dict):
            raise MalformedWebhook(f"{where}[{n}]", f"is {_kind(item)}, not an object")
    return found


def _readable_time(item: dict[str, Any], where: str, received: datetime) -> dict[str, Any]:
    """``item`` (a message or a status), with ``received`` for a timestamp that cannot be
    read: the webhook is answered 200, so what it carries is kept, not refused."""
    stamp = item.get("timestamp")
    if _time_of(stamp) is not None:
        return item
    logger.warning(
        "whatsapp %s %s at %s: unusable timestamp %r; taken as received at %s",
        "status for" if "status" in item else "message",
        item.get("id"),
        where,
        stamp,
        received.isoformat(),
    )
    return {**item, "timestamp": str(int(received.timestamp()))}


def _time_of(stamp: Any) -> datetime | None:
    """A webhook timestamp as a time, or None; read as pywa reads it (``int()`` of it
    as seconds), so what passes here also passes there."""
    try:
        return datetime.fromtimestamp(int(stamp), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _kind(found: Any) -> str:
    """What was found instead, for an error message: a JSON type's name, or missing."""
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if found is None:
        return "missing"
    return names.get(type(found), "a number")


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
