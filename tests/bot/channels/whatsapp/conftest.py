"""The real FastAPI app with its lifespan, served in-process over httpx's ASGI transport,
with real pywa inside talking to the fake Graph API; webhook bodies in Meta's shape,
signed as Meta signs them."""

import copy
import hashlib
import hmac
import itertools
import json
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.channels.whatsapp import WhatsAppChannel
from core.config import Settings
from core.services import Services
from core.web import create_app
from tests.conftest import settings_for
from tests.fakes.graph_api import BASE_URL, PHONE_ID, TOKEN, FakeGraphApi, Request, choices_of

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "whatsapp"
APP_SECRET = "app-secret-for-tests"
VERIFY_TOKEN = "verify-token-for-tests"
NUMBER = "9779800000001"
TEMPLATES = {
    "notification": {"ne": {"name": "report_status_ne", "language": "en"}},
    "reminder": {"ne": {"name": "survey_reminder_ne", "language": "en"}},
    "broadcast": {"ne": {"name": "bulletin_ne", "language": "en"}},
}


def load(name: str) -> dict[str, Any]:
    """A webhook body from tests/fixtures/whatsapp."""
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def meta_encoding(body: dict[str, Any]) -> bytes:
    """The body as Meta sends it: non-ASCII and "@" as \\u escapes, which is what the
    signature covers; re-encoding the parsed JSON would give other bytes."""
    return json.dumps(body).replace("@", "\\u0040").encode()


def signature(raw: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


class Service:
    """The app with its lifespan entered, and a client that reaches it in-process."""

    def __init__(self, settings: Settings, graph: FakeGraphApi) -> None:
        self.settings = settings
        self.graph = graph
        self.app: Any = None
        self.client: httpx.AsyncClient | None = None
        self._stack: AsyncExitStack | None = None

    async def start(self) -> None:
        self.app = create_app(self.settings, graph_transport=self.graph.transport)
        self._stack = AsyncExitStack()
        await self._stack.enter_async_context(self.app.router.lifespan_context(self.app))
        transport = httpx.ASGITransport(app=self.app)
        self.client = await self._stack.enter_async_context(
            httpx.AsyncClient(transport=transport, base_url="http://helpdesk.test")
        )
        await self.channel.drain()

    async def stop(self) -> None:
        assert self._stack is not None
        await self._stack.aclose()

    @property
    def services(self) -> Services:
        return self.app.state.services  # type: ignore[no-any-return]

    @property
    def channel(self) -> WhatsAppChannel:
        return self.app.state.whatsapp  # type: ignore[no-any-return]


class WhatsAppUser:
    """A person writing to the business number, by webhook."""

    _ids = itertools.count(1)

    def __init__(self, service: Service, number: str = NUMBER, name: str = "Sita Tamang"):
        self.service = service
        self.number = number
        self.name = name
        self.seen = 0

    def body(self, template: str, **message_fields: Any) -> dict[str, Any]:
        """A fixture body re-addressed from this person, with a fresh wamid and time."""
        body = copy.deepcopy(load(template))
        value = body["entry"][0]["changes"][0]["value"]
        for contact in value.get("contacts", []):
            contact.update(wa_id=self.number, profile={"name": self.name})
        for message in value.get("messages", []):
            message.update(
                {
                    "from": self.number,
                    "id": f"wamid.IN{next(self._ids):08d}",
                    "timestamp": str(int(time.time())),
                },
                **message_fields,
            )
        return body

    async def post(
        self, body: dict[str, Any] | bytes, sign: str | None = APP_SECRET
    ) -> httpx.Response:
        raw = body if isinstance(body, bytes) else meta_encoding(body)
        headers = {"Content-Type": "application/json"}
        if sign is not None:
            headers["X-Hub-Signature-256"] = signature(raw, sign)
        assert self.service.client is not None
        return await self.service.client.post("/webhooks/whatsapp", content=raw, headers=headers)

    async def deliver(self, body: dict[str, Any]) -> list[Request]:
        """Post a body, wait until it is handled, return what was sent to this person."""
        response = await self.post(body)
        assert response.status_code == 200, response.text
        await self.service.channel.drain()
        return self.new()

    def new(self) -> list[Request]:
        sent = self.service.graph.messages(self.number)
        fresh, self.seen = sent[self.seen :], len(sent)
        return fresh

    async def say(self, text: str) -> list[Request]:
        return await self.deliver(self.body("text", text={"body": text}))

    async def tap(self, wanted: str) -> list[Request]:
        """Press the button or list row whose id is, or whose title contains, ``wanted``."""
        for request in reversed(self.service.graph.messages(self.number)):
            for data, title in choices_of(request):
                if wanted == data or wanted in title:
                    return await self.press(data, title, request)
        raise AssertionError(f"no choice {wanted!r} was shown")

    async def press(self, data: str, title: str, shown: Request | None = None) -> list[Request]:
        action = shown.body["interactive"]["action"] if shown else {"buttons": []}
        kind = "button_reply" if "buttons" in action else "list_reply"
        body = self.body(kind)
        message = body["entry"][0]["changes"][0]["value"]["messages"][0]
        message["interactive"] = {"type": kind, kind: {"id": data, "title": title}}
        return await self.deliver(body)


def whatsapp_settings(url: str, tmp_path: Path, **overrides: object) -> Settings:
    return settings_for(
        url,
        tmp_path,
        whatsapp_phone_number_id=PHONE_ID,
        whatsapp_access_token=TOKEN,
        whatsapp_app_secret=APP_SECRET,
        whatsapp_verify_token=VERIFY_TOKEN,
        whatsapp_api_base=BASE_URL,
        whatsapp_business_number="+977 980-0000000",
        whatsapp_templates=TEMPLATES,
        # Tests deliver the outbox themselves, and pace nothing.
        whatsapp_overall_per_second=1000.0,
        whatsapp_chat_per_second=1000.0,
        outbox_enabled=False,
        scheduler_enabled=False,
        **overrides,
    )


@pytest.fixture
def graph() -> FakeGraphApi:
    return FakeGraphApi()


@pytest.fixture
async def service(sqlite_url: str, tmp_path: Path, graph: FakeGraphApi) -> AsyncIterator[Service]:
    running = Service(whatsapp_settings(sqlite_url, tmp_path), graph)
    await running.start()
    yield running
    await running.stop()


@pytest.fixture
async def any_db_service(
    db_url: str, tmp_path: Path, graph: FakeGraphApi
) -> AsyncIterator[Service]:
    running = Service(whatsapp_settings(db_url, tmp_path), graph)
    await running.start()
    yield running
    await running.stop()


@pytest.fixture
def sita(service: Service) -> WhatsAppUser:
    return WhatsAppUser(service)
