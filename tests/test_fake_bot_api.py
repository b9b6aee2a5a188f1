"""The fake Bot API must be indistinguishable from Telegram for a real aiogram Bot."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramRetryAfter,
    TelegramUnauthorizedError,
)
from aiogram.filters import CommandStart
from aiogram.types import (
    BotCommand,
    BufferedInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)

from tests.fakes.bot_api import FakeBotApi, RateLimits, load_error, load_update

USER_CHAT = 700100200
GROUP_CHAT = -1004123456789


def make_bot(base_url: str, token: str) -> Bot:
    """Build a real aiogram Bot pointed at ``base_url``."""
    return Bot(token, session=AiohttpSession(api=TelegramAPIServer.from_base(base_url)))


@pytest.fixture
async def api() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as fake:
        yield fake


@pytest.fixture
async def bot(api: FakeBotApi) -> AsyncIterator[Bot]:
    client = make_bot(api.base_url, api.token)
    yield client
    await client.session.close()


def keyboard() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(text="हो", callback_data="answer:yes"),
                InlineKeyboardButton(text="होइन", callback_data="answer:no"),
            ]
        ]
    )


async def test_send_message_round_trips_and_is_recorded(api: FakeBotApi, bot: Bot) -> None:
    sent = await bot.send_message(
        USER_CHAT, "*नमस्ते* 123", parse_mode="MarkdownV2", reply_markup=keyboard()
    )
    second = await bot.send_message(USER_CHAT, "123")

    assert sent.message_id == 1 and second.message_id == 2
    assert sent.chat.id == USER_CHAT and sent.chat.type == "private"
    assert sent.text == "*नमस्ते* 123"
    assert sent.reply_markup is not None
    assert sent.reply_markup.model_dump() == keyboard().model_dump()
    assert sent.from_user is not None and sent.from_user.username == "helpdesk_test_bot"

    first_call, second_call = api.calls_of("sendMessage")
    assert first_call.params["chat_id"] == USER_CHAT
    assert first_call.params["parse_mode"] == "MarkdownV2"
    assert first_call.params["reply_markup"] == {
        "inline_keyboard": [
            [
                {"text": "हो", "callback_data": "answer:yes"},
                {"text": "होइन", "callback_data": "answer:no"},
            ]
        ]
    }
    # A numeric-looking text must stay a string.
    assert second_call.params["text"] == "123"
    assert api.sent_texts(chat_id=USER_CHAT) == ["*नमस्ते* 123", "123"]


async def test_group_chat_ids_build_group_chats(bot: Bot) -> None:
    sent = await bot.send_message(GROUP_CHAT, "hello group")

    assert sent.chat.type == "supergroup"
    assert sent.chat.id == GROUP_CHAT


async def test_get_file_and_download_return_the_bytes(api: FakeBotApi, bot: Bot) -> None:
    voice = load_update("voice_note")["message"]["voice"]
    api.add_file(voice["file_id"], b"OggS\x00fake-opus", file_path="voice/file_7.oga")

    file = await bot.get_file(voice["file_id"])
    downloaded = await bot.download(voice["file_id"])

    assert file.file_path == "voice/file_7.oga"
    assert downloaded is not None and downloaded.read() == b"OggS\x00fake-opus"
    with pytest.raises(TelegramBadRequest, match="invalid file_id"):
        await bot.get_file("no-such-file")


async def test_voice_upload_is_recorded_with_size_and_filename(api: FakeBotApi, bot: Bot) -> None:
    audio = b"\x01" * 5000
    sent = await bot.send_voice(
        USER_CHAT, BufferedInputFile(audio, filename="bulletin.ogg"), caption="Bulletin"
    )

    call = api.calls_of("sendVoice")[0]
    assert call.files == {"voice": audio}
    assert call.filenames == {"voice": "bulletin.ogg"}
    assert sent.voice is not None and sent.voice.file_size == 5000
    assert sent.caption == "Bulletin"
    # The uploaded file is served back like Telegram would.
    downloaded = await bot.download(sent.voice.file_id)
    assert downloaded is not None and downloaded.read() == audio


async def test_fail_next_maps_to_aiogram_exceptions(api: FakeBotApi, bot: Bot) -> None:
    api.fail_next("sendMessage", load_error("blocked_by_user"), chat_id=USER_CHAT)
    api.fail_next("sendMessage", load_error("too_many_requests"))

    with pytest.raises(TelegramForbiddenError, match="blocked by the user"):
        await bot.send_message(USER_CHAT, "first")
    with pytest.raises(TelegramRetryAfter) as retry:
        await bot.send_message(GROUP_CHAT, "second")
    await bot.send_message(USER_CHAT, "third")

    assert retry.value.retry_after == 30
    assert [call.status for call in api.calls_of("sendMessage")] == [403, 429, 200]
    assert api.sent_texts() == ["third"]


async def test_long_polling_delivers_a_pushed_update(api: FakeBotApi, bot: Bot) -> None:
    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.2)
    assert not poll.done(), "getUpdates must wait while the queue is empty"

    started = time.monotonic()
    api.push_update(load_update("text_start"))
    updates = await asyncio.wait_for(poll, timeout=2)

    assert time.monotonic() - started < 1.0
    assert [u.update_id for u in updates] == [910000001]
    assert updates[0].message is not None and updates[0].message.text == "/start"
    # Asking past the update acknowledges it.
    assert await bot.get_updates(offset=910000002, timeout=0) == []
    assert api.pending_updates == []


async def test_wrong_token_is_unauthorized(api: FakeBotApi) -> None:
    intruder = make_bot(api.base_url, "654321:WRONG")
    try:
        with pytest.raises(TelegramUnauthorizedError, match="Unauthorized"):
            await intruder.get_me()
    finally:
        await intruder.session.close()

    assert api.calls == []


async def test_raw_http_errors_and_case_insensitive_methods(api: FakeBotApi) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{api.base_url}/bot{api.token}/noSuchMethod") as resp:
            unknown = (resp.status, await resp.json())
        async with http.get(f"{api.base_url}/bot{api.token}/GETME") as resp:
            me = (resp.status, await resp.json())
        async with http.get(f"{api.base_url}/bot1:bad/getMe") as resp:
            bad_token = (resp.status, await resp.json())

    assert unknown == (
        404,
        {
            "ok": False,
            "error_code": 404,
            "description": "Not Found: method not found",
        },
    )
    assert me[0] == 200 and me[1]["result"]["username"] == "helpdesk_test_bot"
    assert bad_token == (401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
    assert [call.method for call in api.calls] == ["noSuchMethod", "getMe"]


async def test_commands_and_edits(api: FakeBotApi, bot: Bot) -> None:
    commands = [
        BotCommand(command="start", description="Start"),
        BotCommand(command="help", description="Help"),
    ]
    assert await bot.set_my_commands(commands)
    sent = await bot.send_message(USER_CHAT, "Question?", reply_markup=keyboard())
    edited = await bot.edit_message_text("Thanks!", chat_id=USER_CHAT, message_id=sent.message_id)

    fetched = await bot.get_my_commands()
    assert [c.model_dump() for c in fetched] == [c.model_dump() for c in commands]
    assert api.calls_of("setMyCommands")[0].params["commands"] == [
        {"command": "start", "description": "Start"},
        {"command": "help", "description": "Help"},
    ]
    assert not isinstance(edited, bool)
    assert edited.text == "Thanks!" and edited.reply_markup is None


async def test_wait_for_explains_a_timeout(api: FakeBotApi, bot: Bot) -> None:
    await bot.get_me()

    with pytest.raises(AssertionError, match=r"2 sendMessage call\(s\); got 0(.|\n)*getMe"):
        await api.wait_for("sendMessage", count=2, timeout=0.2)


async def test_wait_for_returns_when_calls_arrive(api: FakeBotApi, bot: Bot) -> None:
    sender = asyncio.create_task(bot.send_message(USER_CHAT, "later"))

    calls = await api.wait_for("sendmessage", count=1, timeout=5)

    assert [call.params["text"] for call in calls] == ["later"]
    await sender


async def test_rate_limits_answer_429_when_enabled() -> None:
    limits = RateLimits(per_chat=(2, 10.0))
    async with FakeBotApi(enforce_limits=True, time_scale=0.5, limits=limits) as api:
        bot = make_bot(api.base_url, api.token)
        try:
            await bot.send_message(USER_CHAT, "one")
            await bot.send_message(USER_CHAT, "two")
            with pytest.raises(TelegramRetryAfter) as retry:
                await bot.send_message(USER_CHAT, "three")
            await bot.send_message(USER_CHAT + 1, "other chat is fine")
        finally:
            await bot.session.close()

    # 10 s window scaled by 0.5 leaves just under 5 s to wait.
    assert retry.value.retry_after == 5
    assert api.sent_texts() == ["one", "two", "other chat is fine"]


async def test_limits_are_off_by_default(api: FakeBotApi, bot: Bot) -> None:
    await asyncio.gather(*(bot.send_message(USER_CHAT, f"m{i}") for i in range(40)))

    assert len(api.sent_texts(chat_id=USER_CHAT)) == 40


async def test_standalone_process_answers_and_reports_stats() -> None:
    with FakeBotApi.spawn_process() as proc:
        bot = make_bot(proc.base_url, proc.token)
        try:
            me = await bot.get_me()
            await bot.send_message(USER_CHAT, "bench")
        finally:
            await bot.session.close()
        stats = proc.stats()
        calls = proc.calls(method="sendMessage")

    assert proc.process.poll() is not None, "close() must stop the child"
    assert me.username == "helpdesk_test_bot"
    assert stats == {"getMe": 1, "sendMessage": 1}
    assert [c["params"]["text"] for c in calls["calls"]] == ["bench"]
    assert calls["next"] == 2


async def test_close_answers_a_pending_long_poll_quickly() -> None:
    server = FakeBotApi()
    await server.start()
    poller = make_bot(server.base_url, server.token)
    try:
        poll = asyncio.create_task(poller.get_updates(timeout=30))
        await asyncio.sleep(0.2)
        started = time.monotonic()
        await server.close()
        updates = await asyncio.wait_for(poll, timeout=5)
    finally:
        await poller.session.close()

    assert updates == []
    assert time.monotonic() - started < 2.0


async def test_dispatcher_polling_replies_end_to_end(api: FakeBotApi, bot: Bot) -> None:
    dispatcher = Dispatcher()

    @dispatcher.message(CommandStart())
    async def on_start(message: Message) -> None:
        await message.answer("स्वागत छ")

    polling = asyncio.create_task(dispatcher.start_polling(bot, handle_signals=False))
    try:
        api.push_update(load_update("text_start"))
        (reply,) = await api.wait_for("sendMessage", timeout=10)
    finally:
        await dispatcher.stop_polling()
        await polling

    assert reply.params == {"chat_id": USER_CHAT, "text": "स्वागत छ"}
