"""Rendered bulletins for the station tests, rendered once per module.

Rendering with eSpeak NG and ffmpeg takes a second or two per language, too long to
repeat in every test, and each test has its own database. So a module renders one real
bulletin (:func:`render_once`) and each test publishes copies of its files as the
bulletins of the dates it needs (:func:`publish`): composed by the real pipeline,
recorded as :mod:`core.rendering` records them, then approved by :func:`approve`. The
audio of a bulletin published for another date is the rendered one's, which the
endpoints never listen to.
"""

import asyncio
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from core import bulletins, rendering
from core.config import Settings
from core.models import BulletinFile, Station
from core.services import Services
from core.stations import token_hash
from core.web import create_app
from tests.conftest import migrate, settings_for

TOKEN = "station-token-for-tests-0123456789"


@dataclass(frozen=True)
class RenderedFile:
    """One file of the module's rendered bulletin and what was measured on it."""

    language: str
    format: str
    source: Path
    size: int
    duration_s: float
    lufs: float
    true_peak_dbtp: float
    sha256: str
    engines: list[str]


def render_once(root: Path, content_dir: Path, station: str, day: date) -> list[RenderedFile]:
    """Compose and render a bulletin of ``station`` in a database of its own under
    ``root``; returns its files."""
    url = f"sqlite+aiosqlite:///{root / 'render.db'}"
    migrate(url)
    return asyncio.run(_render(url, root, content_dir, station, day))


async def _render(
    url: str, root: Path, content_dir: Path, station: str, day: date
) -> list[RenderedFile]:
    services = Services.build(quiet_settings(url, root, content_dir))
    try:
        await services.sync_content()
        config = services.deployment.stations[station]
        async with services.db.session() as session:
            composed = await bulletins.compose(
                session, services.deployment, station, bulletins.air_time(config, day)
            )
        await _shorten(services, composed.bulletin.id, config.languages)
        rendered = await rendering.render(
            services.db, services.deployment, services.settings, composed.bulletin.id
        )
    finally:
        await services.close()
    media = services.settings.resolved_media_dir
    return [
        RenderedFile(
            language=language.language,
            format=file.format,
            source=media / file.path,
            size=file.size,
            duration_s=file.duration_s,
            lufs=file.lufs,
            true_peak_dbtp=file.true_peak_dbtp,
            sha256=file.sha256,
            engines=list(file.engines),
        )
        for language in rendered
        for file in language.files
    ]


# A greeting and a farewell: ten seconds of audio render four times faster than the
# forty of the composed script, and are as real a bulletin to the endpoints.
SHORT_SCRIPT = {"ne": ("नमस्कार।", "धन्यवाद।"), "en": ("Hello.", "Thank you.")}


async def _shorten(services: Services, bulletin_id: int, languages: list[str]) -> None:
    async with services.db.session() as session:
        for language in languages:
            hello, thanks = SHORT_SCRIPT[language]
            await bulletins.drop_item(session, bulletin_id, language, 2)
            await bulletins.edit_item(session, bulletin_id, language, 1, hello)
            await bulletins.edit_item(session, bulletin_id, language, 2, thanks)


async def publish(
    services: Services,
    rendered: list[RenderedFile],
    station: str,
    day: date,
    *,
    status: str = "approved",
) -> int:
    """A bulletin of ``station`` for ``day`` with copies of the rendered files, taken to
    ``status`` (``rendered``, ``approved`` or ``aired``) by the real functions."""
    config = services.deployment.stations[station]
    media = services.settings.resolved_media_dir
    async with services.db.session() as session:
        composed = await bulletins.compose(
            session, services.deployment, station, bulletins.air_time(config, day)
        )
        bulletin = composed.bulletin
        for file in rendered:
            relative = (
                f"bulletins/{station}/{day}/{station}-{day}-{file.language}{file.source.suffix}"
            )
            (media / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(file.source, media / relative)
            session.add(
                BulletinFile(
                    bulletin_id=bulletin.id,
                    language=file.language,
                    format=file.format,
                    path=relative,
                    size=file.size,
                    duration_s=file.duration_s,
                    lufs=file.lufs,
                    true_peak_dbtp=file.true_peak_dbtp,
                    sha256=file.sha256,
                    engines=file.engines,
                )
            )
        bulletin.status = "rendered"

    async with services.db.session() as session:
        if status in ("approved", "aired"):
            await bulletins.approve(session, bulletin.id, media_dir=media)
        if status == "aired":
            await bulletins.mark_aired(session, bulletin.id, via="staff")
    return bulletin.id


async def give_token(services: Services, station: str, token: str = TOKEN) -> None:
    """Store ``token``'s hash for ``station``, as ``helpdesk station token`` does."""
    async with services.db.session() as session:
        row = await session.scalar(select(Station).where(Station.code == station))
        assert row is not None
        row.token_hash = token_hash(token)


def quiet_settings(url: str, data_dir: Path, content_dir: Path, **overrides: object) -> Settings:
    """Settings for the station tests: no scheduler or outbox running beside them."""
    return settings_for(
        url,
        data_dir,
        content_dir=content_dir,
        scheduler_enabled=False,
        outbox_enabled=False,
        **overrides,
    )


@asynccontextmanager
async def app_of(services: Services) -> AsyncIterator[FastAPI]:
    """The real app on ``services``, its lifespan running."""
    app = create_app(services.settings, services)
    async with app.router.lifespan_context(app):
        yield app


@asynccontextmanager
async def client_of(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    """The real app on ``services``, lifespan run, reached in-process over ASGI."""
    async with app_of(services) as app:
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://127.0.0.1:8000"
        ) as client:
            yield client
