"""Database engines and sessions, with the per-backend settings that keep writes safe.

SQLite is the embedded default and PostgreSQL the production database. On SQLite every
transaction starts with ``BEGIN IMMEDIATE``: with the default deferred start, two
connections that both read and then write deadlock, and SQLite answers "database is
locked" at once instead of waiting out the busy timeout. WAL mode lets readers go on
while one writer holds the lock.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, event
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as sa_create_async_engine
from sqlalchemy.types import TypeDecorator

logger = logging.getLogger(__name__)


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp that comes back identical from SQLite and PostgreSQL.

    Values are stored in UTC. SQLite keeps no zone, so a naive value read back is UTC by
    construction; PostgreSQL answers in the session's zone, which is converted to UTC.
    Naive datetimes are refused on the way in: a time without its zone is a bug.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


def conflict_insert(session: AsyncSession, table: Any) -> Any:
    """An INSERT for this session's database that can ``on_conflict_do_nothing``: the
    unique keys, not a read before the write, decide what is new."""
    dialect = session.get_bind().dialect.name
    return pg_insert(table) if dialect == "postgresql" else sqlite_insert(table)


def create_engine(url: str, *, busy_timeout_ms: int = 10_000, **kwargs: Any) -> AsyncEngine:
    """Create the async engine for ``url`` with this project's per-backend settings.

    Args:
        url: a SQLAlchemy URL with an async driver (``sqlite+aiosqlite``,
            ``postgresql+asyncpg``); a plain ``sqlite://`` or ``postgresql://`` gets one.
        busy_timeout_ms: how long SQLite waits for another writer before giving up.

    Returns:
        The engine; for SQLite the folder of the file is created.
    """
    url = async_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, busy_timeout_ms, **kwargs)
    return sa_create_async_engine(url, pool_pre_ping=True, **kwargs)


def async_url(url: str) -> str:
    """Give a database URL its async driver if it names none."""
    parsed = make_url(url)
    drivers = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}
    if parsed.drivername in drivers:
        parsed = parsed.set(drivername=drivers[parsed.drivername])
    return parsed.render_as_string(hide_password=False)


def sqlite_pragmas(dbapi_connection: Any, busy_timeout_ms: int) -> None:
    """The settings every SQLite connection of the project gets: WAL, so readers go on
    while one writer works; NORMAL sync, safe in WAL; foreign keys; the busy timeout."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    cursor.close()


def _sqlite_engine(url: str, busy_timeout_ms: int, **kwargs: Any) -> AsyncEngine:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)

    engine = sa_create_async_engine(url, **kwargs)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Hand transaction control to the "begin" hook below instead of the driver.
        dbapi_connection.isolation_level = None
        sqlite_pragmas(dbapi_connection, busy_timeout_ms)

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class Database:
    """The engine and session factory of one database.

    Use :meth:`session` for a unit of work: it commits when the block ends without an
    error and rolls back otherwise.
    """

    def __init__(self, url: str, *, busy_timeout_ms: int = 10_000, **engine_kwargs: Any):
        self.url = async_url(url)
        self.engine = create_engine(self.url, busy_timeout_ms=busy_timeout_ms, **engine_kwargs)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        # SQLite has one writer at a time. Waiting in SQLite's busy handler means sleeping
        # in steps of up to 100 ms; queueing here in the process hands the lock on at once
        # and in arrival order. Other processes still meet the busy timeout.
        self._writer: asyncio.Lock | None = asyncio.Lock() if self.dialect == "sqlite" else None

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session whose transaction commits at the end of the block."""
        async with self._turn(), self.sessionmaker() as session, session.begin():
            yield session

    def _turn(self) -> contextlib.AbstractAsyncContextManager[Any]:
        return self._writer if self._writer is not None else contextlib.nullcontext()

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()
        logger.debug("database %s disposed", make_url(self.url).render_as_string())
