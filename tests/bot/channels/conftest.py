"""A running service for Telegram tests: the real FastAPI app under uvicorn on
127.0.0.1, real aiogram inside it, and the fake Bot API server it talks to over HTTP.
"""

import asyncio
import copy
import html
import itertools
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from core.config import Settings
from core.services import Services
from core.web import SECRET_HEADER, create_app
from tests.conftest import settings_for
from tests.fakes.bot_api import Call, FakeBotApi, load_update

SECRET = "webhook-secret-for-tests"
CHAT_ID = 700100200


class RunningService:
    """The app served by uvicorn on a free port; start and stop it like a process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app: Any = None
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self.url = ""

    async def start(self, wait_for_telegram: bool = True) -> None:
        self.app = create_app(self.settings)
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                await self._task
            await asyncio.sleep(0.01)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        if wait_for_telegram:
            await asyncio.wait_for(self.app.state.telegram.ready.wait(), timeout=10)

    async def stop(self) -> None:
        assert self._server is not None and self._task is not None
        self._server.should_exit = True
        await self._task

    @property
    def services(self) -> Services:
        return self.app.state.services

    async def settle(self) -> None:
        """Wait until every accepted update has been handled."""
        await self.app.state.telegram.drain()


class TelegramUser:
    """A person in a private chat with the bot, sending real-shaped updates by webhook."""

    _ids = itertools.count(920000000)

    def __init__(
        self,
        service: RunningService,
        api: FakeBotApi,
        client: httpx.AsyncClient,
        chat_id: int = CHAT_ID,
        language: str = "ne",
    ) -> None:
        self.service = service
        self.api = api
        self.client = client
        self.chat_id = chat_id
        self.language = language
        self.seen = 0

    def update(self, template: str, **message_fields: Any) -> dict[str, Any]:
        """A fixture update re-addressed to this user, with a fresh update id."""
        update = copy.deepcopy(load_update(template))
        update["update_id"] = next(self._ids)
        key = next(k for k in ("message", "edited_message", "callback_query") if k in update)
        body = update[key]
        people = [
            body.get("from"),
            body.get("chat"),
            body.get("message", {}).get("chat"),
            body.get("message", {}).get("from"),
        ]
        for person in filter(None, people):
            person["id"] = self.chat_id
        if body.get("from"):
            body["from"]["language_code"] = self.language
        body.update(message_fields)
        return update

    async def post(self, update: dict[str, Any], secret: str | None = SECRET) -> httpx.Response:
        headers = {SECRET_HEADER: secret} if secret is not None else {}
        return await self.client.post(
            f"{self.service.url}/webhooks/telegram", json=update, headers=headers
        )

    async def deliver(self, update: dict[str, Any]) -> list[str]:
        """Post an update, wait for its handling, return the texts the bot sent since."""
        response = await self.post(update)
        assert response.status_code == 200, response.text
        await self.service.settle()
        return self.new_texts()

    def new_texts(self) -> list[str]:
        calls = self.messages()
        fresh = calls[self.seen :]
        self.seen = len(calls)
        return [plain(call) for call in fresh]

    def messages(self) -> list[Call]:
        return [
            c
            for c in self.api.calls_of("sendMessage")
            if c.params.get("chat_id") == self.chat_id and c.status == 200
        ]

    async def say(self, text: str) -> list[str]:
        entities = [{"offset": 0, "length": len(text.split()[0]), "type": "bot_command"}]
        fields: dict[str, Any] = {"text": text}
        if text.startswith("/"):
            fields["entities"] = entities
        return await self.deliver(self.update("text_nepali_answer", **fields))

    async def tap(self, wanted: str) -> list[str]:
        """Press the button whose data equals, or label contains, ``wanted``."""
        shown = self.api.calls_of("sendMessage") + self.api.calls_of("editMessageText")
        for call in sorted(shown, key=lambda c: c.seq, reverse=True):
            markup = call.params.get("reply_markup") or {}
            for row in markup.get("inline_keyboard", []):
                for button in row:
                    if wanted in (button["callback_data"],) or wanted in button["text"]:
                        return await self.press(button["callback_data"], call)
        raise AssertionError(f"no button {wanted!r} was shown")

    async def press(self, data: str, call: Call | None = None) -> list[str]:
        update = self.update("callback_choice")
        update["callback_query"]["data"] = data
        update["callback_query"]["id"] = str(update["update_id"])
        if call is not None:
            update["callback_query"]["message"]["message_id"] = call.params.get("message_id", 1)
        return await self.deliver(update)


def plain(call: Call) -> str:
    """The text of a sent message as the person sees it: tags removed, entities decoded."""
    text = str(call.params.get("text", ""))
    assert call.params.get("parse_mode") == "HTML"
    return html.unescape(re.sub(r"</?b>", "", text))


@pytest.fixture
async def fake_api() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as api:
        yield api


@pytest.fixture
def telegram_settings(sqlite_url: str, tmp_path: Path, fake_api: FakeBotApi) -> Settings:
    return settings_for(
        sqlite_url,
        tmp_path,
        telegram_token=fake_api.token,
        telegram_api_base=fake_api.base_url,
        telegram_bot_username=fake_api.bot_username,
        telegram_webhook_url="https://helpdesk.example.org/webhooks/telegram",
        telegram_webhook_secret=SECRET,
    )


@pytest.fixture
async def service(telegram_settings: Settings) -> AsyncIterator[RunningService]:
    running = RunningService(telegram_settings)
    await running.start()
    yield running
    await running.stop()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10, trust_env=False) as http:
        yield http


@pytest.fixture
def sita(service: RunningService, fake_api: FakeBotApi, client: httpx.AsyncClient) -> TelegramUser:
    return TelegramUser(service, fake_api, client)
