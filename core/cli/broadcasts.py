"""Commands of distribution: send a bulletin to its community groups, and watch or run
the outbox that delivers every message the service starts."""

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import AsyncIterator
from typing import Annotated

import typer
from sqlalchemy import func, select

from core import broadcasts, outbox
from core.cli.common import fail, run
from core.models import OutboxMessage, SchedulerLease
from core.outbox import DeliveryStats, OutboxWorker, Sender
from core.services import Services

logger = logging.getLogger(__name__)

broadcast_app = typer.Typer(help="Send bulletins to community groups.", no_args_is_help=True)
outbox_app = typer.Typer(help="The delivery ledger: what is queued, sent, failed.")

PROGRESS_SECONDS = 2.0


def register(app: typer.Typer) -> None:
    """Add ``broadcast`` and ``outbox`` to the ``helpdesk`` command."""
    app.add_typer(broadcast_app, name="broadcast")
    app.add_typer(outbox_app, name="outbox")


@broadcast_app.command("send")
def send(bulletin_id: int) -> None:
    """Queue an approved bulletin for its station's groups and deliver it now."""

    async def work(services: Services) -> list[tuple[str, int]]:
        async with services.db.session() as session:
            broadcast = await broadcasts.start_broadcast(session, services.deployment, bulletin_id)
        typer.echo(
            f"broadcast {broadcast.id}: bulletin {bulletin_id} to {broadcast.recipients} groups"
        )

        async with _worker(services) as worker:
            watcher = asyncio.create_task(_progress(services, broadcast.id))
            try:
                stats = await _deliver_when_free(worker, wait=False)
            finally:
                watcher.cancel()
        if not stats.lease_held:
            typer.echo("another process holds the outbox lease and is delivering it;")
            typer.echo("follow it with: helpdesk outbox status")
        return await _states(services, broadcast.id)

    for state, number in run(work):
        typer.echo(f"{state:<10} {number}")


@outbox_app.command("status")
def status() -> None:
    """Messages by state and purpose, then the ones that will not be delivered."""

    async def work(services: Services) -> tuple[list[tuple[str, str, int]], list[OutboxMessage]]:
        async with services.db.session() as session:
            return await outbox.counts(session), await outbox.failures(session)

    counted, failed = run(work)
    if not counted:
        typer.echo("the outbox is empty")
        return
    typer.echo(f"{'state':<10} {'purpose':<13} {'messages':>8}")
    for state, purpose, number in counted:
        typer.echo(f"{state:<10} {purpose:<13} {number:>8}")
    if failed:
        typer.echo("\nnot delivered (newest first):")
    for row in failed:
        typer.echo(
            f"  {row.id:>6} {row.state:<9} {row.channel}:{row.address:<16} "
            f"{row.dedupe_key}  [{row.error_code or '-'}] {row.last_error or ''}"
        )


@outbox_app.command("deliver")
def deliver(
    until_empty: Annotated[
        bool, typer.Option(help="Stop once nothing is queued, instead of running on")
    ] = False,
) -> None:
    """Run the outbox worker in the foreground (Ctrl-C stops it after the part in flight)."""

    async def work(services: Services) -> DeliveryStats:
        async with _worker(services) as worker:
            if until_empty:
                return await _deliver_when_free(worker, wait=True)
            await _run_until_signal(worker)
            return worker.stats

    stats = run(work)
    typer.echo(
        f"sent {stats.sent} messages ({stats.parts} parts); retried {stats.retried}, "
        f"flood-limited {stats.rate_limited}, moved {stats.migrated}, blocked "
        f"{stats.blocked}, chat gone {stats.not_found}, failed {stats.failed}"
    )


@contextlib.asynccontextmanager
async def _worker(services: Services) -> AsyncIterator[OutboxWorker]:
    senders = _senders(services)
    worker = OutboxWorker(
        services.db, services.settings, senders, services.settings.resolved_media_dir
    )
    try:
        yield worker
    finally:
        for sender in senders.values():
            close = getattr(sender, "close", None)
            if close is not None:
                await close()


def _senders(services: Services) -> dict[str, Sender]:
    """A sender for each configured channel; rows of other channels stay queued."""
    settings = services.settings
    senders: dict[str, Sender] = {}
    if settings.telegram_token is not None:
        from bot.channels.telegram import create_bot
        from bot.channels.telegram_delivery import CHANNEL, TelegramSender

        bot = create_bot(settings.telegram_token.get_secret_value(), settings.telegram_api_base)
        senders[CHANNEL] = TelegramSender(bot)
    if settings.whatsapp_enabled:
        from bot.channels.whatsapp_delivery import CHANNEL as WHATSAPP
        from bot.channels.whatsapp_delivery import WhatsAppSender
        from core.web import whatsapp_channel

        channel = whatsapp_channel(settings, services)
        senders[WHATSAPP] = WhatsAppSender(channel.wa, services.db, settings)
    if not senders:
        fail(
            "no channel to deliver through: set HELPDESK_TELEGRAM_TOKEN, or the "
            "HELPDESK_WHATSAPP_* settings (see the README)"
        )
    return senders


async def _deliver_when_free(worker: OutboxWorker, *, wait: bool) -> DeliveryStats:
    """Deliver until nothing is queued; with ``wait``, first wait for the lease."""
    while wait and not await worker.lease.acquire():
        holder = await _lease_holder(worker)
        typer.echo(f"waiting for the outbox lease, held by {holder}", err=True)
        await asyncio.sleep(min(worker.settings.lease_seconds / 3, 5.0))
    try:
        return await worker.deliver_until_empty()
    finally:
        await worker.lease.release()


async def _run_until_signal(worker: OutboxWorker) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await worker.run(stop)


async def _lease_holder(worker: OutboxWorker) -> str:
    async with worker.db.session() as session:
        lease = await session.get(SchedulerLease, outbox.LEASE_NAME)
    return f"{lease.holder} until {lease.expires_at:%H:%M:%S} UTC" if lease else "nobody"


async def _progress(services: Services, broadcast_id: int) -> None:
    started = time.monotonic()
    while True:
        await asyncio.sleep(PROGRESS_SECONDS)
        states = dict(await _states(services, broadcast_id))
        done = sum(states.values()) - states.get("queued", 0)
        typer.echo(
            f"  {time.monotonic() - started:6.1f} s  {done}/{sum(states.values())} done  "
            + "  ".join(f"{state} {number}" for state, number in sorted(states.items()))
        )


async def _states(services: Services, broadcast_id: int) -> list[tuple[str, int]]:
    async with services.db.session() as session:
        result = await session.execute(
            select(OutboxMessage.state, func.count())
            .where(OutboxMessage.broadcast_id == broadcast_id)
            .group_by(OutboxMessage.state)
            .order_by(OutboxMessage.state)
        )
        return [(state, int(number)) for state, number in result.all()]
