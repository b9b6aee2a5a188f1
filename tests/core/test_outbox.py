"""The delivery ledger on both databases, delivered by real aiogram to the fake Bot API."""

import asyncio
import html
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from bot.channels.telegram import create_bot
from bot.channels.telegram_delivery import TelegramSender
from core.config import Settings
from core.db import Database, utcnow
from core.lease import Lease
from core.models import OutboxMessage
from core.outbox import (
    TEXT_LIMIT,
    DeliveryStats,
    OutboxError,
    OutboxWorker,
    Part,
    enqueue,
    text_parts,
)
from tests.conftest import settings_for
from tests.fakes.bot_api import FakeBotApi, error_body

CHAT = 700100200


def fast(db_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    """Settings whose pacing never slows a test down (pacing has its own tests)."""
    values: dict[str, Any] = {
        "outbox_overall_per_second": 10_000.0,
        "outbox_group_per_minute": 600_000.0,
        "outbox_chat_per_second": 10_000.0,
        "outbox_poll_seconds": 0.05,
        "lease_seconds": 5.0,
        **overrides,
    }
    return settings_for(db_url, tmp_path, **values)


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    yield database
    await database.dispose()


@pytest.fixture
async def api() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as fake:
        yield fake


@pytest.fixture
async def sender(api: FakeBotApi) -> AsyncIterator[TelegramSender]:
    telegram = TelegramSender(create_bot(api.token, api.base_url))
    yield telegram
    await telegram.close()


def worker(db: Database, settings: Settings, sender: TelegramSender) -> OutboxWorker:
    return OutboxWorker(db, settings, {"telegram": sender}, settings.resolved_media_dir)


async def once(db: Database, settings: Settings, sender: TelegramSender) -> DeliveryStats:
    """One delivery by a worker that then gives the lease up, as a process ending would."""
    outbox = worker(db, settings, sender)
    try:
        return await outbox.deliver_due()
    finally:
        await outbox.lease.release()


async def queue(db: Database, key: str, *texts: str, address: str = str(CHAT)) -> bool:
    async with db.session() as session:
        return await enqueue(
            session,
            dedupe_key=key,
            channel="telegram",
            address=address,
            purpose="notification",
            parts=[Part("text", text=text) for text in texts],
        )


async def ledger(db: Database) -> list[OutboxMessage]:
    async with db.session() as session:
        return list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def test_a_part_survives_the_ledger_as_it_was() -> None:
    part = Part("voice", path="b/x.ogg", caption="Listen", buttons=((("Aired", "aired:7"),),))

    assert Part.from_json(part.to_json()) == part
    assert Part("text", text="hi").to_json() == {"kind": "text", "text": "hi"}


@pytest.mark.parametrize(
    ("kind", "fields", "problem"),
    [
        ("photo", {"text": "x"}, "not 'photo'"),
        ("text", {}, "needs some text"),
        ("voice", {}, "needs the path"),
    ],
)
def test_a_part_that_cannot_be_sent_is_refused(
    kind: str, fields: dict[str, str], problem: str
) -> None:
    with pytest.raises(OutboxError, match=problem):
        Part(kind, **fields)  # type: ignore[arg-type]


def test_text_parts_fit_the_limit_even_once_escaped() -> None:
    text = "\n\n".join(f"Paragraph {n}: water & roads <ward {n}> " * 20 for n in range(40))

    parts = text_parts(text)

    assert len(parts) > 2
    assert all(len(html.escape(p.text, quote=False)) <= TEXT_LIMIT for p in parts)
    assert " ".join(p.text for p in parts).split() == text.split()


async def test_queueing_twice_under_one_key_makes_one_row(db: Database) -> None:
    first = await queue(db, "reminder:cfa:7:2026-12-03", "Please answer the survey")
    second = await queue(db, "reminder:cfa:7:2026-12-03", "Please answer the survey")

    assert (first, second) == (True, False)
    assert len(await ledger(db)) == 1


async def test_an_unknown_purpose_is_refused(db: Database) -> None:
    with pytest.raises(OutboxError, match="purpose"):
        async with db.session() as session:
            await enqueue(
                session,
                dedupe_key="x",
                channel="telegram",
                address="1",
                purpose="spam",
                parts=[Part("text", text="x")],
            )


async def test_parts_go_out_in_order_and_the_ledger_records_them(
    db: Database, db_url: str, tmp_path: Path, api: FakeBotApi, sender: TelegramSender
) -> None:
    await queue(db, "one", "first <b>&", "second")
    await queue(db, "two", "third", address="700100201")

    stats = await worker(db, fast(db_url, tmp_path), sender).deliver_due()

    assert api.sent_texts(CHAT) == ["first &lt;b&gt;&amp;", "second"]
    assert api.sent_texts(700100201) == ["third"]
    assert (stats.sent, stats.parts) == (2, 3)
    rows = await ledger(db)
    assert [(r.state, r.parts_sent) for r in rows] == [("sent", 2), ("sent", 1)]
    assert all(r.sent_at is not None for r in rows)


async def test_a_resumed_row_sends_only_the_parts_not_yet_sent(
    db: Database, db_url: str, tmp_path: Path, api: FakeBotApi, sender: TelegramSender
) -> None:
    await queue(db, "one", "part 1", "part 2", "part 3")
    async with db.session() as session:
        # As a crash would leave it: part 1 committed, then the process died.
        await session.execute(update(OutboxMessage).values(parts_sent=1))

    await worker(db, fast(db_url, tmp_path), sender).deliver_due()

    assert api.sent_texts(CHAT) == ["part 2", "part 3"]
    assert (await ledger(db))[0].parts_sent == 3


async def test_one_chat_s_rows_go_oldest_first(
    db: Database, db_url: str, tmp_path: Path, api: FakeBotApi, sender: TelegramSender
) -> None:
    for n in range(12):
        await queue(db, f"row:{n}", f"message {n}")

    await worker(db, fast(db_url, tmp_path), sender).deliver_due()

    assert api.sent_texts(CHAT) == [f"message {n}" for n in range(12)]


async def test_nothing_is_sent_while_another_process_holds_the_lease(
    db: Database, db_url: str, tmp_path: Path, api: FakeBotApi, sender: TelegramSender
) -> None:
    settings = fast(db_url, tmp_path)
    await queue(db, "one", "hello")
    assert await Lease(db, "outbox", "other-process", 30).acquire()

    stats = await worker(db, settings, sender).deliver_due()

    assert not stats.lease_held
    assert api.calls_of("sendMessage") == []
    assert (await ledger(db))[0].state == "queued"


async def test_a_server_error_is_retried_with_a_pause_then_sent(
    db: Database, db_url: str, tmp_path: Path, api: FakeBotApi, sender: TelegramSender
) -> None:
    await queue(db, "one", "hello")
    api.fail_next("sendMessage", error_body(502, "Bad Gateway"))
    settings = fast(db_url, tmp_path)
    before = utcnow()

    first = await once(db, settings, sender)
    waiting = (await ledger(db))[0]
    await make_due(db)
    second = await once(db, settings, sender)

    assert first.retried == 1 and first.sent == 0
    assert (waiting.state, waiting.attempts, waiting.error_code) == ("queued", 1, 500)
    assert waiting.next_attempt_at >= before + timedelta(seconds=2)
    assert second.sent == 1
    assert api.sent_texts(CHAT) == ["hello"]


async def test_a_network_fault_is_retried_and_the_row_kept(
    db: Database, db_url: str, tmp_path: Path, api: FakeBotApi, sender: TelegramSender
) -> None:
    await queue(db, "one", "hello")
    settings = fast(db_url, tmp_path)
    # Nothing listens on the port of a stopped server: aiogram raises a network error.
    gone = FakeBotApi()
    await gone.start()
    dead_url = gone.base_url
    await gone.close()
    unreachable = TelegramSender(create_bot(api.token, dead_url))
    try:
        stats = await once(db, settings, unreachable)
    finally:
        await unreachable.close()
    waiting = (await ledger(db))[0]

    await make_due(db)
    await worker(db, settings, sender).deliver_due()

    assert stats.retried == 1
    assert (waiting.state, waiting.attempts, waiting.error_code) == ("queued", 1, None)
    assert waiting.last_error
    assert api.sent_texts(CHAT) == ["hello"]
    assert (await ledger(db))[0].state == "sent"


async def test_a_row_fails_after_the_last_attempt(
    db: Database, db_url: str, tmp_path: Path, api: FakeBotApi, sender: TelegramSender
) -> None:
    await queue(db, "one", "hello")
    api.fail_next("sendMessage", error_body(500, "Internal Server Error"), times=3)
    settings = fast(db_url, tmp_path, outbox_max_attempts=3)

    for _ in range(3):
        await make_due(db)
        # A new worker each time, as the waits have passed: its pacing holds no pause.
        await once(db, settings, sender)

    row = (await ledger(db))[0]
    assert (row.state, row.attempts, row.error_code) == ("failed", 3, 500)
    assert len(api.calls_of("sendMessage")) == 3


async def test_a_permanent_refusal_fails_that_row_only(
    db: Database, db_url: str, tmp_path: Path, api: FakeBotApi, sender: TelegramSender
) -> None:
    await queue(db, "one", "hello")
    await queue(db, "two", "again")
    api.fail_next("sendMessage", error_body(400, "Bad Request: can't parse entities"))

    stats = await worker(db, fast(db_url, tmp_path), sender).deliver_due()

    assert (stats.failed, stats.sent) == (1, 1)
    assert [r.state for r in await ledger(db)] == ["failed", "sent"]
    assert (await ledger(db))[0].last_error == "Bad Request: can't parse entities"
    assert api.sent_texts(CHAT) == ["again"]


async def test_rows_of_a_channel_without_a_sender_stay_queued(
    db: Database, db_url: str, tmp_path: Path, api: FakeBotApi, sender: TelegramSender
) -> None:
    async with db.session() as session:
        await enqueue(
            session,
            dedupe_key="wa",
            channel="whatsapp",
            address="+9779800000000",
            purpose="reminder",
            parts=[Part("text", text="hello")],
        )
    outbox = worker(db, fast(db_url, tmp_path), sender)

    stats = await outbox.deliver_until_empty()

    assert stats.sent == 0
    assert (await ledger(db))[0].state == "queued"


async def test_the_running_worker_delivers_what_is_queued_after_a_wake(
    db: Database, db_url: str, tmp_path: Path, api: FakeBotApi, sender: TelegramSender
) -> None:
    settings = fast(db_url, tmp_path, outbox_poll_seconds=30.0)
    outbox = worker(db, settings, sender)
    stop = asyncio.Event()
    running = asyncio.create_task(outbox.run(stop))
    await asyncio.sleep(0.2)

    await queue(db, "one", "woken")
    outbox.wake()
    await api.wait_for("sendMessage", 1, timeout=5)
    stop.set()
    await asyncio.wait_for(running, 5)

    assert api.sent_texts(CHAT) == ["woken"]
    assert not outbox.lease.held


async def make_due(db: Database) -> None:
    """Move every waiting row's next try to now, as time passing would."""
    async with db.session() as session:
        await session.execute(update(OutboxMessage).values(next_attempt_at=utcnow()))
