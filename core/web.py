"""The FastAPI app: health check, the Telegram webhook and the radio stations' feeds and
downloads; its lifespan runs the background work of the service (the Telegram
connection, the outbox worker and the scheduler). The staff desk comes with a later issue.

The webhook answers as soon as the update is recorded in the ledger; the conversation
step runs in the background, so Telegram never waits on the database or on our replies.
"""

import asyncio
import contextlib
import hmac
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy import text

from bot.channels.telegram import CHANNEL, TelegramChannel, create_bot
from bot.channels.telegram_delivery import TelegramSender
from core import desk
from core.config import Settings
from core.outbox import OutboxWorker
from core.services import Services
from core.stations import router as stations_router
from scheduler.service import SchedulerService

logger = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def create_app(settings: Settings, services: Services | None = None) -> FastAPI:
    """Build the web app.

    Args:
        settings: the configuration; Telegram runs when ``telegram_token`` is set, by
            webhook when ``telegram_webhook_url`` is set too, else by long polling.
        services: prebuilt services (tests pass their own); built from settings if None.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        built = services or Services.build(settings)
        await built.sync_content()
        app.state.services = built
        app.state.telegram = None
        app.state.outbox = None
        app.state.scheduler = None
        background: list[asyncio.Task[None]] = []

        if settings.telegram_token:
            telegram = _telegram_channel(settings, built)
            app.state.telegram = telegram
            background.append(asyncio.create_task(_connect(telegram, settings, built)))
            if settings.outbox_enabled:
                app.state.outbox = OutboxWorker(
                    built.db,
                    settings,
                    {CHANNEL: TelegramSender(telegram.bot)},
                    settings.resolved_media_dir,
                )
                background.append(asyncio.create_task(app.state.outbox.run()))
        if settings.scheduler_enabled:
            wake = app.state.outbox.wake if app.state.outbox else None
            app.state.scheduler = SchedulerService(built, wake_outbox=wake)
            background.append(asyncio.create_task(app.state.scheduler.run()))
        logger.info("service started on %s", built.db.dialect)
        yield

        for task in background:
            task.cancel()
        for task in background:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if app.state.telegram is not None:
            await app.state.telegram.close()
        if services is None:
            await built.close()
        logger.info("service stopped")

    app = FastAPI(title="Citizen Helpdesk", lifespan=lifespan)
    app.add_api_route("/healthz", _healthz, methods=["GET"])
    app.add_api_route("/webhooks/telegram", _telegram_webhook(settings), methods=["POST"])
    app.include_router(stations_router)
    desk.install(app)
    return app


def _telegram_channel(settings: Settings, services: Services) -> TelegramChannel:
    assert settings.telegram_token is not None
    bot = create_bot(settings.telegram_token.get_secret_value(), settings.telegram_api_base)
    return TelegramChannel(services.engine, bot, settings.resolved_media_dir)


async def _connect(telegram: TelegramChannel, settings: Settings, services: Services) -> None:
    config = services.deployment.config
    secret = settings.telegram_webhook_secret
    await telegram.run(
        config.languages,
        config.default_language,
        webhook_url=settings.telegram_webhook_url,
        webhook_secret=secret.get_secret_value() if secret else "",
    )


async def _healthz(request: Request) -> JSONResponse:
    services: Services = request.app.state.services
    async with services.db.session() as session:
        await session.execute(text("SELECT 1"))
    return JSONResponse({"status": "ok", "database": services.db.dialect})


def _telegram_webhook(settings: Settings) -> Any:
    expected = (
        settings.telegram_webhook_secret.get_secret_value()
        if (settings.telegram_webhook_secret)
        else None
    )

    async def telegram_webhook(request: Request) -> JSONResponse:
        channel: TelegramChannel | None = request.app.state.telegram
        client = request.client.host if request.client else "?"
        if channel is None:
            return JSONResponse({"detail": "telegram is not configured"}, status_code=404)

        given = request.headers.get(SECRET_HEADER, "")
        if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
            logger.warning("telegram webhook from %s refused: wrong or missing secret", client)
            return JSONResponse({"detail": "forbidden"}, status_code=403)

        try:
            payload = await request.json()
            if not isinstance(payload, dict) or "update_id" not in payload:
                raise ValueError("not an update")
            await channel.accept(payload)
        except (ValueError, ValidationError) as error:
            logger.warning(
                "telegram webhook from %s refused: malformed body (%s)", client, str(error)[:200]
            )
            return JSONResponse({"detail": "malformed update"}, status_code=400)
        return JSONResponse({"ok": True})

    return telegram_webhook
