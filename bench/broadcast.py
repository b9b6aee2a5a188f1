"""Broadcast benchmark: one bulletin to 10,000 recipients through the outbox, against the
fake Telegram Bot API in its own process enforcing Telegram's flood limits.

Run::

    .venv/bin/python -m bench.broadcast [--recipients 10000] [--groups 500]
                                        [--time-scale 0.1] [--rate-429 0.005]
                                        [--databases sqlite,postgresql]

Per database (a SQLite file in a temporary folder, or a PostgreSQL database created for
the run and dropped after): the sample deployment is loaded, an approved bulletin of
radio-melamchi with a voice message is stored, and ``--groups`` group chats plus private
chats up to ``--recipients`` are approved recipients of its community. The broadcast is
started with :func:`core.broadcasts.start_broadcast` (two parts each: the script's text
and the voice message) and delivered by one :class:`core.outbox.OutboxWorker` with
real aiogram, in this process.

The fake runs with ``--enforce-limits`` and ``time_scale``: its windows (30 a second
overall, 20 a minute per group, 3 in 3 seconds per chat) shrink by that factor, and so
do our rates, through the settings (``outbox_overall_per_second = 30 / time_scale`` and
the others alike). A share ``--rate-429`` of sends is also answered 429 at random
(seeded), on top of any the limits cause.

Printed per database: sends accepted, wall time of the delivery, the achieved rate over
the allowed overall rate (target >= 0.97), duplicates and losses counted from the fake's
own per-chat tally of accepted sends, the 429s it answered, and the time taken to queue.
"""

import argparse
import asyncio
import logging
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bench.intake import DEFAULT_PG, PROJECT_ROOT, database

logger = logging.getLogger(__name__)

STATION = "radio-melamchi"
COMMUNITY = "sindhupalchok-melamchi-4"
AIR_DATE = date(2026, 12, 5)
TARGET = 0.97


@dataclass
class Result:
    """What one database's run measured."""

    label: str
    recipients: int
    accepted: int
    expected: int
    seconds: float
    allowed_rate: float
    duplicates: int
    lost: int
    rate_limited: int
    queue_seconds: float

    @property
    def rate(self) -> float:
        return self.accepted / self.seconds if self.seconds else 0.0

    def line(self) -> str:
        ratio = self.rate / self.allowed_rate
        verdict = "ok" if ratio >= TARGET and not self.duplicates and not self.lost else "MISS"
        return (
            f"{self.label:<10} {self.recipients:>6} recipients  {self.accepted:>6}/{self.expected}"
            f" sends in {self.seconds:6.1f} s  {self.rate:7.1f}/s of {self.allowed_rate:.0f}/s"
            f" allowed = {ratio:5.3f}  duplicates {self.duplicates}  lost {self.lost}"
            f"  429s {self.rate_limited}  (queued in {self.queue_seconds:.1f} s)  {verdict}"
        )


def settings_for(url: str, data_dir: Path, api_base: str, token: str, scale: float) -> Any:
    from core.config import Settings

    return Settings(
        _env_file=None,
        data_dir=data_dir,
        database_url=url,
        content_dir=PROJECT_ROOT / "content",
        locales_dir=PROJECT_ROOT / "locales",
        log_level="WARNING",
        telegram_token=token,
        telegram_api_base=api_base,
        outbox_overall_per_second=30.0 / scale,
        outbox_group_per_minute=20.0 / scale,
        outbox_chat_per_second=1.0 / scale,
        outbox_poll_seconds=max(0.05, scale),
    )


async def prepare(services: Any, recipients: int, groups: int) -> int:
    """Store an approved bulletin and the recipients; returns the bulletin's id."""
    from sqlalchemy import select

    from core.models import Bulletin, BulletinItem, Station

    media = services.settings.resolved_media_dir
    path = f"bulletins/{STATION}/{AIR_DATE}/{STATION}-{AIR_DATE}-ne.ogg"
    (media / path).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(PROJECT_ROOT / "content" / "jingles" / "intro.ogg", media / path)

    async with services.db.session() as session:
        station = await session.scalar(select(Station).where(Station.code == STATION))
        zone = ZoneInfo(station.timezone)
        bulletin = Bulletin(
            station_id=station.id,
            air_date=AIR_DATE,
            air_at=datetime(2026, 12, 5, 18, tzinfo=zone),
            status="approved",
        )
        session.add(bulletin)
        await session.flush()
        for language in station.languages:
            texts = [f"{language}: this week's reports from the ward, item {n}." for n in range(5)]
            session.add_all(
                BulletinItem(
                    bulletin_id=bulletin.id, language=language, position=n, kind="report", text=t
                )
                for n, t in enumerate(texts)
            )
            session.add(_voice(bulletin.id, language, path, (media / path).stat().st_size))
        session.add_all(_recipient(n, groups) for n in range(recipients))
        return bulletin.id


def _voice(bulletin_id: int, language: str, path: str, size: int) -> Any:
    from core.models import BulletinFile

    return BulletinFile(
        bulletin_id=bulletin_id,
        language=language,
        format="opus",
        path=path,
        size=size,
        duration_s=2.0,
        lufs=-16.0,
        true_peak_dbtp=-1.5,
        sha256="0" * 64,
        engines=["espeak"],
    )


def _recipient(n: int, groups: int) -> Any:
    from core.models import Recipient

    address = f"-100{5_000_000_000 + n}" if n < groups else str(800_000_000 + n)
    return Recipient(
        channel="telegram",
        address=address,
        kind="group" if n < groups else "private",
        title=f"Recipient {n}",
        language="ne",
        communities=[COMMUNITY],
        status="approved",
    )


async def bench_database(label: str, args: argparse.Namespace, pg_server: str) -> Result:
    from bot.channels.telegram import create_bot
    from bot.channels.telegram_delivery import TelegramSender
    from core.broadcasts import start_broadcast
    from core.outbox import OutboxWorker
    from core.services import Services
    from tests.fakes.bot_api import FakeBotApi

    workdir = Path(tempfile.mkdtemp(prefix=f"bench-broadcast-{label}-"))
    try:
        async with database(label, workdir, pg_server) as url:
            with FakeBotApi.spawn_process(enforce_limits=True, time_scale=args.time_scale) as fake:
                fake.inject_429(args.rate_429, seed=args.seed)
                settings = settings_for(url, workdir, fake.base_url, fake.token, args.time_scale)
                services = Services.build(settings)
                await services.sync_content()
                bulletin_id = await prepare(services, args.recipients, args.groups)

                started = time.perf_counter()
                async with services.db.session() as session:
                    await start_broadcast(session, services.deployment, bulletin_id)
                queued = time.perf_counter() - started

                sender = TelegramSender(create_bot(fake.token, fake.base_url))
                worker = OutboxWorker(
                    services.db, settings, {"telegram": sender}, settings.resolved_media_dir
                )
                started = time.perf_counter()
                stats = await worker.deliver_until_empty()
                seconds = time.perf_counter() - started
                await worker.lease.release()
                await sender.close()
                await services.close()
                tally = fake.deliveries()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    return _result(label, args, tally, seconds, queued, stats.rate_limited)


def _result(
    label: str,
    args: argparse.Namespace,
    tally: dict[str, Any],
    seconds: float,
    queued: float,
    seen_429: int,
) -> Result:
    expected = {"sendMessage": 1, "sendVoice": 1}
    duplicates = lost = accepted = 0
    chats = tally["by_chat"]
    for n in range(args.recipients):
        address = f"-100{5_000_000_000 + n}" if n < args.groups else str(800_000_000 + n)
        got = chats.get(address, {})
        for method, wanted in expected.items():
            count = got.get(method, 0)
            accepted += count
            duplicates += max(0, count - wanted)
            lost += max(0, wanted - count)
    if seen_429 != tally["rate_limited"]:
        logger.warning(
            "429s: the worker saw %d, the fake answered %d", seen_429, tally["rate_limited"]
        )
    return Result(
        label=label,
        recipients=args.recipients,
        accepted=accepted,
        expected=args.recipients * len(expected),
        seconds=seconds,
        allowed_rate=30.0 / args.time_scale,
        duplicates=duplicates,
        lost=lost,
        rate_limited=tally["rate_limited"],
        queue_seconds=queued,
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--groups", type=int, default=500)
    parser.add_argument("--time-scale", type=float, default=0.1)
    parser.add_argument("--rate-429", type=float, default=0.005)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--pg", default=DEFAULT_PG, help="PostgreSQL server for the run")
    return parser.parse_args(argv)


async def main_async(args: argparse.Namespace) -> list[Result]:
    results = []
    for label in args.databases.split(","):
        result = await bench_database(label, args, args.pg)
        print(result.line(), flush=True)
        results.append(result)
    return results


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark on each database and print one line per database."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    args = parse_args(argv)
    print(
        f"{args.recipients} recipients ({args.groups} groups), 2 parts each, time scale "
        f"{args.time_scale}, random 429s {args.rate_429:.1%}",
        flush=True,
    )
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
