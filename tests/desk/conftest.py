"""The desk under test: the real app with its lifespan, driven over httpx's ASGI
transport, on each database kind; staff accounts of each role; a signed-in client.
"""

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI

from core.config import Settings
from core.desk import auth
from core.desk.auth import create_user
from core.services import Services
from core.web import create_app
from tests.bot.channels import conftest as telegram_fixtures
from tests.conftest import settings_for

PASSWORD = "correct horse battery"

# The Telegram service's fixtures, for the browser test that starts from a chat.
fake_api = telegram_fixtures.fake_api
telegram_settings = telegram_fixtures.telegram_settings
service = telegram_fixtures.service
client = telegram_fixtures.client
sita = telegram_fixtures.sita


class Desk:
    """The running app, its services, and a way to sign in as any role."""

    def __init__(self, app: FastAPI, services: Services) -> None:
        self.app = app
        self.services = services
        self.clients: list[httpx.AsyncClient] = []

    def client(self) -> httpx.AsyncClient:
        """A new browser without a session; closed with the desk."""
        transport = httpx.ASGITransport(app=self.app, client=("127.0.0.1", 50000))
        client = httpx.AsyncClient(transport=transport, base_url="http://desk.test")
        self.clients.append(client)
        return client

    async def add_user(self, username: str, role: str, name: str | None = None) -> None:
        async with self.services.db.session() as session:
            await create_user(
                session,
                username=username,
                name=name or username.title(),
                role=role,
                password=PASSWORD,
            )

    async def signed_in(self, role: str) -> httpx.AsyncClient:
        """A client signed in as a new user of ``role`` (username = the role)."""
        await self.add_user(role, role)
        client = self.client()
        await sign_in(client, role, PASSWORD)
        return client


async def sign_in(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    form = await client.get("/desk/login")
    return await client.post(
        "/desk/login",
        data={"username": username, "password": password, "csrf": csrf_of(form.text)},
    )


def csrf_of(page: str) -> str:
    """The CSRF token of the first form on a page."""
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "no csrf field on the page"
    return found.group(1)


def desk_settings(url: str, data_dir: Path, **overrides: Any) -> Settings:
    return settings_for(url, data_dir, scheduler_enabled=False, outbox_enabled=False, **overrides)


@pytest.fixture
async def desk(db_url: str, tmp_path: Path) -> AsyncIterator[Desk]:
    """The desk on each database kind."""
    async for running in _desk(desk_settings(db_url, tmp_path)):
        yield running


@pytest.fixture
async def sqlite_desk(sqlite_url: str, tmp_path: Path) -> AsyncIterator[Desk]:
    """The desk on SQLite, for tests about behaviour rather than storage."""
    async for running in _desk(desk_settings(sqlite_url, tmp_path)):
        yield running


async def _desk(settings: Settings) -> AsyncIterator[Desk]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        desk = Desk(app, app.state.services)
        yield desk
        for client in desk.clients:
            await client.aclose()


@pytest.fixture(autouse=True)
def light_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2 with small costs: the production costs make each sign-in take ~0.1 s."""
    light = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(auth, "_hasher", light)
    monkeypatch.setattr(auth, "_DUMMY_HASH", light.hash("dummy"))
