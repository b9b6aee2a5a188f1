"""The Telegram channel, on aiogram 3: long polling for development, a webhook in
production, and the same ledger behind both so every update is handled once.

Update lifecycle::

    delivered ──ledger insert──> recorded ──engine step + mark, one commit──> processed
        │ already processed: dropped            │ crash before the commit: replayed at start

Texts are sent with HTML parse mode; everything that comes from a person or a survey
file is escaped, so ``<how>``, ``&`` and Markdown specials arrive as typed.

Community groups and channels are handled here too, never by the engine: adding the bot
registers the chat for staff approval (:mod:`core.groups`), removing it deactivates the
chat, an admin's ``/stop`` and ``/start`` opt the group out and back in, and a station's
own chat confirms airings with the ``aired:<bulletin>`` button. Nothing about a group's
members is stored, and every other group message is ignored.
"""

import asyncio
import html
import logging
import re
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
)
from aiogram.methods import SendMessage, TelegramMethod
from aiogram.methods.base import Response
from aiogram.types import (
    BotCommand,
    BotCommandScopeAllPrivateChats,
    CallbackQuery,
    Chat,
    ChatMemberUnion,
    ChatMemberUpdated,
    File,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    ResultChatMemberUnion,
    TelegramObject,
    Update,
    User,
)
from sqlalchemy.ext.asyncio import AsyncSession

from bot import store
from bot.channels.base import read_typed, split_escaped
from bot.engine import Engine
from bot.media import save_media
from bot.messages import Incoming, Kind, Reply
from bot.prompts import COMMANDS
from core import bulletins, groups
from core.errors import HelpdeskError
from core.i18n import Translator, negotiate
from core.models import Bulletin, ProcessedUpdate, Recipient

logger = logging.getLogger(__name__)

CHANNEL = "telegram"
# Telegram's limit is 4096 characters after parsing; the margin covers a bold title.
TEXT_LIMIT = 3900
SEND_ATTEMPTS = 4
ALLOWED_UPDATES = ["message", "edited_message", "callback_query", "my_chat_member", "channel_post"]

# aiogram parses every Bot API answer as Response[<result type>]. Pydantic keeps its
# parametrised generic classes only weakly, so garbage collection drops them and each is
# rebuilt (several ms) on a later call; holding them here keeps them built.
_RESPONSE_TYPES: list[type] = [
    Response[Message],
    Response[bool],
    Response[File],
    Response[list[BotCommand]],
    Response[User],
    Response[ResultChatMemberUnion],
]
PRIVATE = F.chat.type == "private"
IN_GROUP = F.chat.type.in_({"group", "supergroup"})
GROUP_KINDS = frozenset(groups.KINDS)
ADMIN_STATUSES = frozenset({"creator", "administrator"})
# In a group every bot sees "/stop@other_bot" too (and all messages when it is an admin),
# so a command names this bot or none.
GROUP_COMMAND = re.compile(r"^/(start|stop)(?:@([A-Za-z0-9_]+))?(?:\s|$)", re.IGNORECASE)

T = TypeVar("T")


class TelegramError(HelpdeskError):
    """Telegram refused or could not be reached for something the channel had to do."""


def create_bot(token: str, api_base: str | None = None) -> Bot:
    """An aiogram Bot, pointed at ``api_base`` (a local Bot API server) when given."""
    session = AiohttpSession(api=TelegramAPIServer.from_base(api_base)) if api_base else None
    return Bot(token, session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML))


class TelegramChannel:
    """Connects the engine to one Telegram bot.

    Args:
        engine: the conversation engine; its database also holds the ledger.
        bot: the aiogram Bot.
        media_dir: where photos and voice notes are saved.
    """

    def __init__(self, engine: Engine, bot: Bot, media_dir: Path) -> None:
        self.engine = engine
        self.bot = bot
        self.media_dir = media_dir
        self.dispatcher = Dispatcher()
        self.dispatcher.update.outer_middleware(self._ledger)
        self.dispatcher.include_router(self._router())
        self._chat_locks: defaultdict[int, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._in_flight: set[str] = set()
        # Updates whose ledger row was closed in the transaction of their change, by the
        # engine or by a group handler (see _apply).
        self._marked_by_engine: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.ready = asyncio.Event()

    # Intake -----------------------------------------------------------------------------

    async def accept(self, payload: dict[str, Any]) -> bool:
        """Take a webhook delivery: record it, then handle it in the background.

        Returns:
            False for a redelivery of an update already handled or under way.

        Raises:
            ValueError: the payload is not a Telegram update.
        """
        update = Update.model_validate(payload, context={"bot": self.bot})
        key = str(update.update_id)
        async with self.engine.db.session() as session:
            is_new = await store.record_update(session, CHANNEL, key, payload)
        if not is_new:
            logger.info("update %s redelivered; already recorded, dropped", key)
            return False
        self._spawn(self._feed(update))
        return True

    async def replay_unprocessed(self) -> int:
        """Handle the updates a crash left recorded but unprocessed; returns how many."""
        async with self.engine.db.session() as session:
            pending = await store.unprocessed_updates(session, CHANNEL)
        for row in pending:
            if row.payload is None or row.update_key in self._in_flight:
                continue
            logger.warning(
                "replaying update %s interrupted before it was processed", row.update_key
            )
            await self._feed(Update.model_validate(row.payload, context={"bot": self.bot}))
        return len(pending)

    async def _feed(self, update: Update) -> None:
        await self.dispatcher.feed_update(self.bot, update, recorded=True)

    async def _ledger(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        """Outer middleware: drop redeliveries, and close the ledger row of every update."""
        assert isinstance(event, Update)
        key = str(event.update_id)
        if not data.get("recorded") and not await self._record_polled(key):
            return None

        self._in_flight.add(key)
        data["update_key"] = key
        try:
            return await handler(event, data)
        except Exception:
            logger.exception("update %s failed; marked processed so it is not retried", key)
            return None
        finally:
            self._in_flight.discard(key)
            if key in self._marked_by_engine:
                self._marked_by_engine.discard(key)
            else:
                async with self.engine.db.session() as session:
                    await store.mark_processed(session, CHANNEL, key)

    async def _record_polled(self, key: str) -> bool:
        async with self.engine.db.session() as session:
            if await store.record_update(session, CHANNEL, key, None):
                return True
            # Polling hands back an update until a later getUpdates confirms it; one
            # recorded but not processed was interrupted, so it is handled now.
            row = await session.get(ProcessedUpdate, (CHANNEL, key))
            pending = row is not None and row.processed_at is None and key not in self._in_flight
        if not pending:
            logger.info("update %s delivered again; already handled, dropped", key)
        return pending

    # Handlers ---------------------------------------------------------------------------

    def _router(self) -> Router:
        router = Router(name="cfa-intake")
        router.message.register(self._on_message, PRIVATE)
        router.edited_message.register(self._on_edited, PRIVATE)
        router.my_chat_member.register(self._on_membership, F.chat.type.in_(GROUP_KINDS))
        router.message.register(self._on_migration, F.migrate_to_chat_id | F.migrate_from_chat_id)
        router.message.register(self._on_group_message, IN_GROUP)
        router.channel_post.register(self._on_group_message)
        router.callback_query.register(self._on_aired, F.data.startswith("aired:"))
        router.callback_query.register(self._on_callback, _from_private_chat)
        router.callback_query.register(self._on_other_group_button)
        return router

    async def _on_message(self, message: Message, update_key: str) -> None:
        incoming = await self._incoming(message)
        await self._converse(message.chat.id, incoming, update_key)

    async def _on_edited(self, message: Message, update_key: str) -> None:
        language = message.from_user.language_code if message.from_user else None
        incoming = Incoming(Kind.EDITED, client_language=language)
        await self._converse(message.chat.id, incoming, update_key)

    async def _on_other_group_button(self, query: CallbackQuery) -> None:
        # A group is no CFA: its buttons never reach the engine, which would answer the
        # whole group as a stranger. Answering stops the button's spinner.
        logger.info("callback %s in a group ignored: %s", query.id, (query.data or "")[:64])
        await self._answer_callback(query)

    async def _on_callback(self, query: CallbackQuery, update_key: str) -> None:
        chat_id = query.message.chat.id if query.message else query.from_user.id
        incoming = Incoming(
            Kind.BUTTON, data=query.data or "", client_language=query.from_user.language_code
        )
        message_id = query.message.message_id if query.message else None
        await self._converse(chat_id, incoming, update_key, edit_message_id=message_id)
        await self._answer_callback(query)

    async def _converse(
        self,
        chat_id: int,
        incoming: Incoming,
        update_key: str,
        edit_message_id: int | None = None,
    ) -> None:
        started = time.perf_counter()
        # One chat's updates are applied in order, one at a time, by this process.
        async with self._chat_locks[chat_id]:
            try:
                replies = await self.engine.handle(
                    CHANNEL, str(chat_id), incoming, update_key=update_key
                )
            except Exception:
                # The step was rolled back; say so rather than leave the CFA waiting.
                await self.send(chat_id, [self.engine.apology(incoming.client_language)])
                raise
            self._marked_by_engine.add(update_key)
            await self.send(chat_id, replies, edit_message_id=edit_message_id)
        logger.debug(
            "chat %s update %s answered in %.1f ms",
            chat_id,
            update_key,
            (time.perf_counter() - started) * 1000,
        )

    async def _incoming(self, message: Message) -> Incoming:
        user = message.from_user
        common: dict[str, Any] = {
            "client_language": user.language_code if user else None,
            "display_name": user.full_name if user else None,
        }
        if message.text is not None:
            return read_typed(message.text, **common)
        if message.location is not None:
            return Incoming(
                Kind.LOCATION,
                latitude=message.location.latitude,
                longitude=message.location.longitude,
                **common,
            )
        if message.photo:
            largest = message.photo[-1]
            media = await self._download(
                message.chat.id, Kind.PHOTO, largest.file_id, "image/jpeg"
            )
            return Incoming(Kind.PHOTO, text=message.caption or "", media=media, **common)
        if message.voice is not None:
            voice = message.voice
            media = await self._download(
                message.chat.id, Kind.VOICE, voice.file_id, voice.mime_type or "audio/ogg"
            )
            return Incoming(Kind.VOICE, media=media, **common)
        return Incoming(Kind.UNSUPPORTED, what=str(message.content_type), **common)

    async def _download(self, chat_id: int, kind: Kind, file_id: str, mime: str) -> Any:
        if not await self.engine.wants_media(CHANNEL, str(chat_id), kind):
            return None
        try:
            file = await self.bot.get_file(file_id)
            if file.file_path is None:
                raise TelegramError(f"getFile gave no path for {file_id}")
            content = await self.bot.download_file(file.file_path)
        except (TelegramBadRequest, TelegramNetworkError) as error:
            logger.warning("chat %s: could not download %s %s: %s", chat_id, kind, file_id, error)
            return None
        assert content is not None
        return save_media(self.media_dir, content.read(), mime, source_id=file_id)

    async def _answer_callback(self, query: CallbackQuery, text: str | None = None) -> None:
        try:
            await self.bot.answer_callback_query(query.id, text=text)
        except TelegramBadRequest as error:
            # A query older than about 15 seconds can no longer be answered; harmless.
            logger.debug("callback %s not answered: %s", query.id, error.message)

    # Community groups and channels -------------------------------------------------------

    async def _apply(self, update_key: str, change: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Make a group's change and close its ledger row in one transaction, as the
        engine does for a CFA's step, so a crash can neither lose nor repeat it."""
        async with self.engine.db.session() as session:
            await store.mark_processed(session, CHANNEL, update_key)
            result = await change(session)
        self._marked_by_engine.add(update_key)
        return result

    async def _on_membership(self, event: ChatMemberUpdated, update_key: str) -> None:
        chat, address = event.chat, str(event.chat.id)
        async with self._chat_locks[chat.id]:
            if not _is_present(event.new_chat_member):
                reason = f"bot {event.new_chat_member.status}"
                await self._apply(
                    update_key, lambda s: groups.deactivate(s, CHANNEL, address, reason)
                )
                return

            recipient = await self._apply(
                update_key,
                lambda s: groups.register(s, CHANNEL, address, chat.type, _title(chat)),
            )
            just_added = not _is_present(event.old_chat_member)
            if just_added and recipient.status == "pending":
                await self._welcome_group(chat, recipient, event.new_chat_member, event.from_user)

    async def _welcome_group(
        self, chat: Chat, recipient: Recipient, bot_member: ChatMemberUnion, adder: User
    ) -> None:
        if not _can_post(chat.type, bot_member):
            logger.info(
                "group %s (chat %s): bot cannot post there; not greeted", recipient.id, chat.id
            )
            return
        t = self._group_translator(recipient, adder.language_code)
        await self._say(
            chat.id,
            t.gettext(
                "Hello! Thank you for adding me. The programme's staff will review this "
                "group; once they approve it, the community bulletins will be posted here. "
                "An admin can send /stop at any time to stop them."
            ),
        )

    async def _on_migration(self, message: Message, update_key: str) -> None:
        # Telegram tells both chats: the old group (migrate_to) and the new one (migrate_from).
        if message.migrate_to_chat_id is not None:
            old, new = message.chat.id, message.migrate_to_chat_id
        else:
            assert message.migrate_from_chat_id is not None
            old, new = message.migrate_from_chat_id, message.chat.id
        async with self._chat_locks[message.chat.id]:
            await self._apply(update_key, lambda s: groups.migrate(s, CHANNEL, str(old), str(new)))

    async def _on_group_message(self, message: Message, update_key: str) -> None:
        command = await self._group_command(message.text or "")
        if command is None:
            return
        chat, address = message.chat, str(message.chat.id)
        async with self._chat_locks[chat.id]:
            async with self.engine.db.session() as session:
                recipient = await groups.find(session, CHANNEL, address)
            if recipient is None or recipient.status not in ("approved", "opted_out"):
                logger.info("chat %s: /%s ignored; the group is not approved", chat.id, command)
                return

            t = self._group_translator(recipient, None)
            if not await self._sent_by_admin(message):
                logger.info(
                    "group %s (chat %s): /%s from a non-admin", recipient.id, chat.id, command
                )
                await self._say(
                    chat.id, t.gettext("Only the group's admins can start or stop the bulletins.")
                )
                return

            change = groups.opt_out if command == "stop" else groups.opt_in
            await self._apply(update_key, lambda s: change(s, CHANNEL, address))
            await self._say(chat.id, _group_confirmation(t, command))

    async def _group_command(self, text: str) -> str | None:
        match = GROUP_COMMAND.match(text.strip())
        if match is None:
            return None
        addressed = match.group(2)
        if addressed and addressed.lower() != str((await self.bot.me()).username).lower():
            return None
        return match.group(1).lower()

    async def _sent_by_admin(self, message: Message) -> bool:
        # Only a channel's admins can post in it; an anonymous group admin writes as the
        # group itself (sender_chat is the chat), and getChatMember cannot name them.
        if message.chat.type == "channel":
            return True
        if message.sender_chat is not None and message.sender_chat.id == message.chat.id:
            return True
        if message.from_user is None:
            return False
        try:
            member = await self.bot.get_chat_member(message.chat.id, message.from_user.id)
        except (TelegramBadRequest, TelegramForbiddenError) as error:
            logger.warning(
                "chat %s: getChatMember failed (%s); not an admin", message.chat.id, error.message
            )
            return False
        return member.status in ADMIN_STATUSES

    async def _on_aired(self, query: CallbackQuery, update_key: str) -> None:
        chat = query.message.chat if query.message else None
        number = (query.data or "").removeprefix("aired:")
        bulletin_id = int(number) if number.isdigit() else None
        async with self._chat_locks[chat.id if chat else query.from_user.id]:
            answer = await self._apply(
                update_key,
                lambda s: self._mark_aired(s, chat, bulletin_id, query.from_user.language_code),
            )
        await self._answer_callback(query, answer)

    async def _mark_aired(
        self,
        session: AsyncSession,
        chat: Chat | None,
        bulletin_id: int | None,
        language: str | None,
    ) -> str:
        """Mark a bulletin aired for a station's own chat; returns what to tell the person."""
        recipient = await _station_chat(session, chat)
        t = self._group_translator(recipient, language)
        if recipient is None:
            logger.warning(
                "chat %s: aired button outside a station's chat refused", chat.id if chat else "?"
            )
            return t.gettext("This button works only in a radio station's own group.")

        bulletin = await session.get(Bulletin, bulletin_id) if bulletin_id else None
        if bulletin is None or bulletin.station_id != recipient.station_id:
            logger.warning(
                "group %s: aired button for another station's bulletin %s refused",
                recipient.id,
                bulletin_id,
            )
            return t.gettext("This bulletin is not one of your station's, so it was not marked.")

        try:
            # A refusal must not leave half a change behind in the update's transaction.
            async with session.begin_nested():
                await bulletins.mark_aired(session, bulletin.id, via="telegram")
        except HelpdeskError as error:
            # The refusal names a status in English; the person is told what it means.
            logger.warning(
                "group %s: bulletin %s not marked aired: %s", recipient.id, bulletin.id, error
            )
            return t.gettext(
                "Bulletin %(number)s is not cleared for air yet, so it was not marked."
            ) % {"number": bulletin.id}
        logger.info("group %s: bulletin %s marked aired by telegram", recipient.id, bulletin.id)
        return t.gettext("Thank you! Bulletin %(number)s is marked as aired.") % {
            "number": bulletin.id
        }

    def _group_translator(
        self, recipient: Recipient | None, client_language: str | None
    ) -> Translator:
        # Until staff set a group's language, the language of the person who acted is used.
        config = self.engine.deployment.config
        language = recipient.language if recipient and recipient.language else None
        language = language or negotiate(
            client_language, config.languages, config.default_language
        )
        return self.engine.translator(language)

    async def _say(self, chat_id: int, text: str) -> None:
        try:
            await self.send(chat_id, [Reply(text)])
        except TelegramBadRequest as error:
            # A group may forbid members to post; the change is saved whether or not it is said.
            logger.warning("chat %s: could not post in the group: %s", chat_id, error.message)

    # Sending ----------------------------------------------------------------------------

    async def send(
        self, chat_id: int, replies: list[Reply], edit_message_id: int | None = None
    ) -> None:
        """Send the engine's replies to one chat, in order."""
        for reply in replies:
            if reply.replace and edit_message_id is not None:
                await self._edit(chat_id, edit_message_id, reply)
                continue
            for text, markup in render(reply):
                await self._call(
                    chat_id, SendMessage(chat_id=chat_id, text=text, reply_markup=markup)
                )

    async def _edit(self, chat_id: int, message_id: int, reply: Reply) -> None:
        text, markup = render(reply)[-1]
        try:
            await self.bot.edit_message_text(
                text=text, chat_id=chat_id, message_id=message_id, reply_markup=markup
            )
        except TelegramBadRequest as error:
            # "message is not modified" or too old to edit: send it as a new message.
            logger.debug(
                "chat %s: edit of %s failed (%s); sending anew", chat_id, message_id, error.message
            )
            await self._call(chat_id, SendMessage(chat_id=chat_id, text=text, reply_markup=markup))

    async def _call(self, chat_id: int, method: TelegramMethod[Any]) -> Any:
        """Make one Bot API call, waiting out flood limits and brief network faults."""
        for attempt in range(1, SEND_ATTEMPTS + 1):
            try:
                return await self.bot(method)
            except TelegramRetryAfter as error:
                logger.warning(
                    "chat %s: flood limit, retrying after %s s", chat_id, error.retry_after
                )
                await asyncio.sleep(error.retry_after)
            except TelegramNetworkError as error:
                logger.warning("chat %s: network error on attempt %d: %s", chat_id, attempt, error)
                await asyncio.sleep(min(2**attempt, 30))
            except TelegramForbiddenError as error:
                logger.warning(
                    "chat %s: bot blocked or removed (%s); not sent", chat_id, error.message
                )
                return None
        logger.error(
            "chat %s: giving up on %s after %d attempts",
            chat_id,
            type(method).__name__,
            SEND_ATTEMPTS,
        )
        return None

    # Service life -----------------------------------------------------------------------

    async def set_commands(self, languages: list[str], default_language: str) -> None:
        """Publish the command menu in each language (and the default for the rest)."""
        for language in [*languages, None]:
            t = self.engine.translator(language or default_language)
            commands = [
                BotCommand(command=name, description=t.gettext(text)[:256])
                for name, text in COMMANDS
            ]
            await self.bot.set_my_commands(
                commands, scope=BotCommandScopeAllPrivateChats(), language_code=language
            )
        logger.info("command menus set for %s", ", ".join(languages))

    async def run(
        self,
        languages: list[str],
        default_language: str,
        webhook_url: str | None = None,
        webhook_secret: str = "",
    ) -> None:
        """Connect to Telegram and keep the channel working until cancelled.

        Publishes the command menus, handles what a crash left unprocessed, then sets
        the webhook or long-polls. Telegram being out of reach never stops the service:
        this retries with a growing pause, and ``ready`` is set once connected.
        """
        delay = 1.0
        while True:
            try:
                await self.set_commands(languages, default_language)
                if webhook_url:
                    await self.set_webhook(webhook_url, webhook_secret)
                else:
                    await self.bot.delete_webhook(drop_pending_updates=False)
                break
            except (TelegramNetworkError, TelegramAPIError) as error:
                logger.warning("telegram not reachable (%s); retrying in %.0f s", error, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 300.0)

        await self.replay_unprocessed()
        self.ready.set()
        if not webhook_url:
            await self.start_polling()

    async def start_polling(self) -> None:
        """Long-poll Telegram until cancelled (development, or no public URL)."""
        logger.info("telegram polling started")
        await self.dispatcher.start_polling(
            self.bot, handle_signals=False, allowed_updates=ALLOWED_UPDATES
        )

    async def set_webhook(self, url: str, secret: str) -> None:
        """Ask Telegram to deliver updates to ``url`` with ``secret`` in a header."""
        await self.bot.set_webhook(url, secret_token=secret, allowed_updates=ALLOWED_UPDATES)
        logger.info("telegram webhook set to %s", url)

    async def drain(self) -> None:
        """Wait for updates being handled in the background."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def close(self) -> None:
        """Finish background work and close the HTTP session."""
        await self.drain()
        await self.bot.session.close()

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _from_private_chat(query: CallbackQuery) -> bool:
    """A button pressed in a private chat, or under an inline message, which has no chat."""
    return query.message is None or query.message.chat.type == "private"


def _is_present(member: ChatMemberUnion) -> bool:
    """Whether the bot is in the chat: a member, an admin, or restricted but still in."""
    if member.status == "restricted":
        return bool(getattr(member, "is_member", False))
    return member.status in ("creator", "administrator", "member")


def _can_post(kind: str, member: ChatMemberUnion) -> bool:
    """Whether the bot may send messages in the chat it was just added to."""
    if kind == "channel":
        # In a channel only admins with the right to post may.
        return member.status == "administrator" and bool(
            getattr(member, "can_post_messages", False)
        )
    if member.status == "restricted":
        return bool(getattr(member, "can_send_messages", False))
    return member.status in ("creator", "administrator", "member")


async def _station_chat(session: AsyncSession, chat: Chat | None) -> Recipient | None:
    """The recipient of ``chat`` if it is a station's own approved (or opted-out) chat."""
    if chat is None or chat.type not in GROUP_KINDS:
        return None
    recipient = await groups.find(session, CHANNEL, str(chat.id))
    if recipient is None or recipient.station_id is None:
        return None
    return recipient if recipient.status in ("approved", "opted_out") else None


def _title(chat: Chat) -> str:
    return chat.title or chat.username or str(chat.id)


def _group_confirmation(t: Translator, command: str) -> str:
    if command == "stop":
        return t.gettext(
            "This group will get no more bulletins. An admin can send /start to get them again."
        )
    return t.gettext("This group will get the bulletins. An admin can send /stop to stop them.")


def render(reply: Reply) -> list[tuple[str, InlineKeyboardMarkup | None]]:
    """A reply as HTML messages within Telegram's limit; the keyboard goes on the last.

    The plain text is cut first and each piece escaped after, so a cut can never fall
    inside a tag or an entity. Pieces are kept within the limit even as escaped HTML
    (``&`` becomes five characters), which is stricter than Telegram's count.
    """
    title = f"<b>{html.escape(reply.title, quote=False)}</b>\n" if reply.title else ""
    rendered = [html.escape(piece, quote=False) for piece in split_escaped(reply.text, TEXT_LIMIT)]
    rendered[0] = title + rendered[0]
    markup = keyboard(reply)
    return [(text, markup if i == len(rendered) - 1 else None) for i, text in enumerate(rendered)]


def keyboard(reply: Reply) -> InlineKeyboardMarkup | None:
    """The reply's buttons as an inline keyboard."""
    if not reply.buttons:
        return None
    rows = [
        [InlineKeyboardButton(text=b.label, callback_data=b.data) for b in row]
        for row in reply.buttons
    ]
    return InlineKeyboardMarkup(inline_keyboard=rows)
