"""Delivering outbox parts through Telegram: the :class:`core.outbox.Sender` of the
Telegram channel.

Texts and captions are sent with HTML parse mode and escaped, so what a script says
arrives as written. A voice message is uploaded once per process: the first send
uploads the OGG Opus file and every later recipient gets Telegram's ``file_id`` of it.

Telegram's answers are classified by aiogram's exception class (which follows the
HTTP status), the ``retry_after`` and ``migrate_to_chat_id`` parameters, and for the
400s that mean "this chat is gone" by their exact description, never by looking for
words in it.
"""

import asyncio
import html
import logging
from collections import defaultdict
from pathlib import Path

from aiogram import Bot
from aiogram.enums import ParseMode
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramConflictError,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.types import FSInputFile, InlineKeyboardButton, InlineKeyboardMarkup

from bot.channels.base import utf16_length
from core.outbox import Buttons, Delivery, Outcome, Part

logger = logging.getLogger(__name__)

CHANNEL = "telegram"
TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024

# 400 answers that mean the chat no longer exists for this bot.
CHAT_GONE = frozenset(
    {
        "Bad Request: chat not found",
        "Bad Request: user not found",
        "Bad Request: PEER_ID_INVALID",
    }
)
# 400 answers of a group where the bot lost the right to post: as good as removed.
NO_RIGHTS = frozenset(
    {
        "Bad Request: have no rights to send a message",
        "Bad Request: not enough rights to send text messages to the chat",
        "Bad Request: not enough rights to send voice notes to the chat",
        "Bad Request: CHAT_WRITE_FORBIDDEN",
    }
)


class _Unsendable(Exception):
    """A part that cannot be sent as it is (too long, file missing); not retried."""


class TelegramSender:
    """Sends outbox parts with one aiogram Bot.

    Args:
        bot: the Bot; its session is closed by :meth:`close`.
    """

    def __init__(self, bot: Bot) -> None:
        self.bot = bot
        self._file_ids: dict[tuple[str, int, int], str] = {}
        self._uploads: defaultdict[tuple[str, int, int], asyncio.Lock] = defaultdict(asyncio.Lock)
        self.uploads = 0

    async def send(
        self, address: str, part: Part, media_path: Path | None, delivery: Delivery | None = None
    ) -> Outcome:
        """Send one part to the chat ``address``; never raises for Telegram's answers."""
        chat_id = _chat_id(address)
        try:
            if part.kind == "voice":
                await self._voice(chat_id, part, media_path)
            else:
                await self._text(chat_id, part.text, part.buttons)
        except TelegramAPIError as error:
            return classify(error)
        except _Unsendable as problem:
            logger.error("chat %s: part not sendable: %s", chat_id, problem)
            return Outcome.failed(str(problem))
        return Outcome.sent()

    async def close(self) -> None:
        """Close the Bot's HTTP session."""
        await self.bot.session.close()

    async def _text(self, chat_id: int | str, text: str, buttons: Buttons) -> None:
        escaped = html.escape(text, quote=False)
        if utf16_length(escaped) > TEXT_LIMIT:
            # Parts are cut to fit when they are built (core.outbox.text_parts).
            raise _Unsendable(f"text of {utf16_length(escaped)} units is over {TEXT_LIMIT}")
        await self.bot.send_message(
            chat_id, escaped, parse_mode=ParseMode.HTML, reply_markup=keyboard(buttons)
        )

    async def _voice(self, chat_id: int | str, part: Part, media_path: Path | None) -> None:
        if media_path is None or not media_path.is_file():
            raise _Unsendable(f"voice file {part.path} is missing from the media folder")
        caption = html.escape(part.caption, quote=False)
        # A caption over Telegram's limit follows as a message of its own.
        follow = part.caption if utf16_length(caption) > CAPTION_LIMIT else ""
        caption = "" if follow else caption
        markup = None if follow else keyboard(part.buttons)

        stat = media_path.stat()
        key = (str(media_path), stat.st_mtime_ns, stat.st_size)
        if key not in self._file_ids:
            async with self._uploads[key]:
                if key not in self._file_ids:
                    await self._upload(chat_id, key, media_path, caption, markup)
                    await self._follow(chat_id, follow, part.buttons)
                    return
        await self.bot.send_voice(
            chat_id,
            self._file_ids[key],
            caption=caption or None,
            parse_mode=ParseMode.HTML,
            reply_markup=markup,
        )
        await self._follow(chat_id, follow, part.buttons)

    async def _upload(
        self,
        chat_id: int | str,
        key: tuple[str, int, int],
        media_path: Path,
        caption: str,
        markup: InlineKeyboardMarkup | None,
    ) -> None:
        message = await self.bot.send_voice(
            chat_id,
            FSInputFile(media_path),
            caption=caption or None,
            parse_mode=ParseMode.HTML,
            reply_markup=markup,
        )
        self.uploads += 1
        if message.voice is not None:
            self._file_ids[key] = message.voice.file_id
            logger.info("voice %s uploaded via chat %s; reused from now on", media_path, chat_id)

    async def _follow(self, chat_id: int | str, text: str, buttons: Buttons) -> None:
        if text:
            await self._text(chat_id, text, buttons)


def classify(error: TelegramAPIError) -> Outcome:
    """What a Bot API error means for the outbox."""
    description = error.message
    match error:
        case TelegramRetryAfter():
            return Outcome.retry_after(float(error.retry_after), description)
        case TelegramMigrateToChat():
            return Outcome.migrated(str(error.migrate_to_chat_id), description)
        case TelegramForbiddenError():
            return Outcome.blocked(description, 403)
        case TelegramNotFound():
            return Outcome.not_found(description, 404)
        case TelegramBadRequest() if description in CHAT_GONE:
            return Outcome.not_found(description, 400)
        case TelegramBadRequest() if description in NO_RIGHTS:
            return Outcome.blocked(description, 400)
        case TelegramEntityTooLarge():
            return Outcome.failed(description, 413)
        case TelegramNetworkError():
            return Outcome.retry(description)
        case TelegramServerError():
            return Outcome.retry(description, 500)
        case TelegramUnauthorizedError():
            # The bot's token, not this chat: worth trying again once it is fixed.
            logger.error("telegram refused the bot's token: %s", description)
            return Outcome.retry(description, 401)
        case TelegramConflictError():
            return Outcome.retry(description, 409)
        case TelegramBadRequest():
            return Outcome.failed(description, 400)
    return Outcome.failed(description)


def keyboard(buttons: Buttons) -> InlineKeyboardMarkup | None:
    """A part's rows of (label, callback data) as an inline keyboard."""
    if not buttons:
        return None
    rows = [
        [InlineKeyboardButton(text=label, callback_data=data) for label, data in row]
        for row in buttons
    ]
    return InlineKeyboardMarkup(inline_keyboard=rows)


def _chat_id(address: str) -> int | str:
    """Chat ids are stored as text; the Bot API takes numbers, or ``@channelname``."""
    return address if address.startswith("@") else int(address)
