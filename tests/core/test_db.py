"""Storage behaviour that must be the same on SQLite and PostgreSQL."""

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from bot import store
from core.db import Database
from core.models import Counter, ProcessedUpdate


async def test_timestamps_come_back_identical_and_aware(db_url: str) -> None:
    db = Database(db_url)
    kathmandu = timezone(timedelta(hours=5, minutes=45))
    moment = datetime(2026, 3, 7, 18, 30, 15, 123456, tzinfo=UTC)

    async with db.session() as session:
        session.add(
            ProcessedUpdate(channel="t", update_key="a", received_at=moment.astimezone(kathmandu))
        )
    async with db.session() as session:
        row = await session.scalar(select(ProcessedUpdate))
    await db.dispose()

    assert row is not None
    assert row.received_at == moment
    assert row.received_at.utcoffset() == timedelta(0)
    assert row.received_at.microsecond == 123456


async def test_naive_timestamps_are_refused(db_url: str) -> None:
    db = Database(db_url)
    try:
        with pytest.raises(Exception, match="naive datetime"):
            async with db.session() as session:
                session.add(
                    ProcessedUpdate(channel="t", update_key="n", received_at=datetime(2026, 1, 1))
                )
    finally:
        await db.dispose()


async def test_two_identical_deliveries_at_once_record_one(db_url: str) -> None:
    db = Database(db_url)

    async def deliver() -> bool:
        async with db.session() as session:
            return await store.record_update(session, "telegram", "910000001", {"x": 1})

    results = await asyncio.gather(*(deliver() for _ in range(8)))
    await db.dispose()

    assert sorted(results) == [False] * 7 + [True]


async def test_reference_counter_never_repeats_under_concurrency(db_url: str) -> None:
    db = Database(db_url)

    async def take() -> int:
        async with db.session() as session:
            return await store.next_number(session, "report:2026")

    numbers = await asyncio.gather(*(take() for _ in range(25)))
    async with db.session() as session:
        counter = await session.get(Counter, "report:2026")
    await db.dispose()

    assert sorted(numbers) == list(range(1, 26))
    assert counter is not None and counter.value == 25


async def test_sqlite_runs_in_wal_mode(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    async with db.engine.connect() as connection:
        mode = (await connection.exec_driver_sql("PRAGMA journal_mode")).scalar()
    await db.dispose()

    assert mode == "wal"
