"""The FastAPI app: health check, the Telegram and WhatsApp webhooks and the radio
stations' feeds and downloads; its lifespan runs the background work of the service (the
Telegram connection, the WhatsApp client, the outbox worker and the scheduler). The staff
desk comes with a later issue.

The webhooks answer as soon as the update is recorded in the ledger; the conversation
step runs in the background, so neither platform waits on the database or our replies.

WhatsApp's routes are ours rather than the ones pywa can add to an app: pywa's declare
the signature header required, so a missing one would get FastAPI's unlogged 422, and
they run the handlers in-process with no ledger. Ours use pywa's own challenge and
signature checks, then the channel's ledger.
"""

import asyncio
import contextlib
import hmac
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import ValidationError
from pywa_async.client import WhatsApp
from pywa_async.utils import HUB_CH, HUB_SIG, HUB_VT
from sqlalchemy import text

from bot.channels.telegram import CHANNEL, TelegramChannel, create_bot
from bot.channels.telegram_delivery import TelegramSender
from bot.channels.whatsapp import WhatsAppChannel
from bot.channels.whatsapp_delivery import CHANNEL as WHATSAPP
from bot.channels.whatsapp_delivery import WhatsAppSender
from core import desk
from core.config import Settings
from core.outbox import OutboxWorker
from core.services import Services
from core.stations import router as stations_router
from scheduler.service import SchedulerService

logger = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
WHATSAPP_PATH = "/webhooks/whatsapp"


def create_app(
    settings: Settings,
    services: Services | None = None,
    graph_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """Build the web app.

    Args:
        settings: the configuration; Telegram runs when ``telegram_token`` is set, by
            webhook when ``telegram_webhook_url`` is set too, else by long polling;
            WhatsApp when its number, token and app secret are set.
        services: prebuilt services (tests pass their own); built from settings if None.
        graph_transport: how to reach the Graph API (tests pass a fake's transport).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        built = services or Services.build(settings)
        await built.sync_content()
        app.state.services = built
        app.state.telegram = None
        app.state.outbox = None
        app.state.scheduler = None
        app.state.whatsapp = None
        background: list[asyncio.Task[None]] = []
        senders: dict[str, Any] = {}

        if settings.telegram_token:
            telegram = _telegram_channel(settings, built)
            app.state.telegram = telegram
            background.append(asyncio.create_task(_connect(telegram, settings, built)))
            senders[CHANNEL] = TelegramSender(telegram.bot)
        if settings.whatsapp_enabled:
            app.state.whatsapp = whatsapp_channel(settings, built, graph_transport)
            app.state.whatsapp.start()
            senders[WHATSAPP] = WhatsAppSender(app.state.whatsapp.wa, built.db, settings)
        if senders and settings.outbox_enabled:
            app.state.outbox = OutboxWorker(
                built.db, settings, senders, settings.resolved_media_dir
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
        if app.state.whatsapp is not None:
            await app.state.whatsapp.close()
        if services is None:
            await built.close()
        logger.info("service stopped")

    app = FastAPI(title="Citizen Helpdesk", lifespan=lifespan)
    app.add_api_route("/healthz", _healthz, methods=["GET"])
    app.add_api_route("/webhooks/telegram", _telegram_webhook(settings), methods=["POST"])
    app.add_api_route(WHATSAPP_PATH, _whatsapp_challenge, methods=["GET"])
    app.add_api_route(WHATSAPP_PATH, _whatsapp_webhook, methods=["POST"])
    app.include_router(stations_router)
    desk.install(app)
    app.middleware("http")(_desk_headers)
    return app


# The desk's pages carry CFAs' names and answers: no cache keeps them, no other site
# frames them, and no file is taken for what it is not.
DESK_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # Styles are inline in the templates; no page runs a script.
    "Content-Security-Policy": (
        "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "script-src 'none'; frame-ancestors 'none'"
    ),
}


async def _desk_headers(request: Request, call_next: Any) -> Any:
    response = await call_next(request)
    if request.url.path.startswith("/desk"):
        for name, value in DESK_HEADERS.items():
            response.headers.setdefault(name, value)
    return response


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


def whatsapp_channel(
    settings: Settings, services: Services, transport: httpx.AsyncBaseTransport | None = None
) -> WhatsAppChannel:
    """The WhatsApp channel on a pywa client for the configured number."""
    assert settings.whatsapp_access_token is not None
    assert settings.whatsapp_app_secret is not None
    http = httpx.AsyncClient(transport=transport, timeout=30)
    verify = settings.whatsapp_verify_token
    wa = WhatsApp(
        phone_id=settings.whatsapp_phone_number_id,
        token=settings.whatsapp_access_token.get_secret_value(),
        session=http,
        verify_token=verify.get_secret_value() if verify else None,
        app_secret=settings.whatsapp_app_secret.get_secret_value(),
        webhook_endpoint=WHATSAPP_PATH,
        # Our ledger drops redeliveries, across restarts and processes; pywa's memory
        # of recent updates would also drop the replay of an interrupted one.
        skip_duplicate_updates=False,
    )
    # pywa always aims its client at graph.facebook.com; keep its API version, use ours.
    version = str(http.base_url).rsplit("/v", 1)[-1]
    http.base_url = httpx.URL(f"{settings.whatsapp_api_base.rstrip('/')}/v{version}")
    logger.info("whatsapp number %s via %s", settings.whatsapp_phone_number_id, http.base_url)
    return WhatsAppChannel(services.engine, wa, settings.resolved_media_dir, http)


async def _whatsapp_challenge(request: Request) -> Response:
    channel: WhatsAppChannel | None = request.app.state.whatsapp
    if channel is None:
        return JSONResponse({"detail": "whatsapp is not configured"}, status_code=404)
    params = request.query_params
    # pywa compares the given token with the configured one, and without a verify token
    # configured a request without one would match; an empty token never verifies.
    given = params.get(HUB_VT) or None
    answer: str | None = "Forbidden"
    status = 403
    if given is not None:
        answer, status = await channel.wa.webhook_challenge_handler(
            vt=given, ch=params.get(HUB_CH)
        )
    if status != 200:
        client = request.client.host if request.client else "?"
        logger.warning("whatsapp verification from %s refused: wrong verify token", client)
    return PlainTextResponse(answer or "", status_code=status)


async def _whatsapp_webhook(request: Request) -> Response:
    channel: WhatsAppChannel | None = request.app.state.whatsapp
    client = request.client.host if request.client else "?"
    if channel is None:
        return JSONResponse({"detail": "whatsapp is not configured"}, status_code=404)

    # The signature is over the exact bytes Meta sent, so the raw body is checked, never
    # a re-encoding of parsed JSON (which would change "@" escapes and non-ASCII).
    body = await request.body()
    refused = await channel.wa.webhook_update_validator(body, request.headers.get(HUB_SIG))
    if refused is not None:
        logger.warning(
            "whatsapp webhook from %s refused (%s): %s signature",
            client,
            refused[1],
            "missing" if HUB_SIG not in request.headers else "wrong",
        )
        return PlainTextResponse(refused[0], status_code=refused[1])

    try:
        await channel.accept(body)
    except ValueError as error:
        logger.warning("whatsapp webhook from %s refused: malformed body (%s)", client, error)
        return JSONResponse({"detail": "malformed update"}, status_code=400)
    return PlainTextResponse("OK")
